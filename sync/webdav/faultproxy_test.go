package webdav

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// fault is what the proxy does to one connection.
type fault struct {
	up    int64 // cut after this many bytes towards the server; 0: never
	down  int64 // cut after this many bytes towards the client; 0: never
	stall int64 // stop forwarding (both ways) after this many bytes up; 0: never
}

// faultProxy forwards TCP connections on 127.0.0.1 to a server, doing to
// the n-th connection what plan(n) says: a cut link (both sides closed
// with a reset), or a stalled one (nothing moves until the client gives
// up).
type faultProxy struct {
	ln     net.Listener
	target string
	plan   func(n int) fault
	n      atomic.Int64
	cuts   atomic.Int64
	stalls atomic.Int64
	wg     sync.WaitGroup
	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
}

func newFaultProxy(t testing.TB, target string, plan func(n int) fault) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, plan: plan, open: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		p.closed = true
		for c := range p.open {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		n := int(p.n.Add(1))
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c.(*net.TCPConn), p.plan(n))
		}()
	}
}

func (p *faultProxy) handle(client *net.TCPConn, f fault) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	server := s.(*net.TCPConn)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.open[client], p.open[server] = struct{}{}, struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.open, client)
		delete(p.open, server)
		p.mu.Unlock()
	}()
	var once sync.Once
	cut := func() {
		once.Do(func() {
			// A reset, as a dropped link or a killed peer gives.
			client.SetLinger(0)
			server.SetLinger(0)
			client.Close()
			server.Close()
		})
	}
	defer cut()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		switch _, why := pipe(server, client, f.up, f.stall); why {
		case "limit":
			p.cuts.Add(1)
			cut()
		case "stall":
			// Nothing goes through any more; when the client gives up,
			// the link is dropped.
			p.stalls.Add(1)
			io.Copy(io.Discard, client)
			cut()
		}
	}()
	go func() {
		defer wg.Done()
		if _, why := pipe(client, server, f.down, 0); why == "limit" {
			p.cuts.Add(1)
		}
		cut()
	}()
	wg.Wait()
}

// pipe copies src to dst until EOF, an error, limit bytes ("limit") or
// stallAt bytes ("stall").
func pipe(dst, src net.Conn, limit, stallAt int64) (int64, string) {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		want := int64(len(buf))
		if limit > 0 && limit-n < want {
			want = limit - n
		}
		if stallAt > 0 && stallAt-n < want {
			want = stallAt - n
		}
		m, err := src.Read(buf[:want])
		if m > 0 {
			if _, werr := dst.Write(buf[:m]); werr != nil {
				return n, ""
			}
			n += int64(m)
		}
		if limit > 0 && n >= limit {
			return n, "limit"
		}
		if stallAt > 0 && n >= stallAt {
			return n, "stall"
		}
		if err != nil {
			if err != io.EOF {
				return n, ""
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return n, ""
		}
	}
}
