package budget

import (
	"context"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

type direction int

const (
	up   direction = iota // from the box to the internet
	down                  // from the internet to the box
)

func (d direction) String() string { return [...]string{"up", "down"}[d] }

// pacedConn is one of the scheduler's connections: Write and Read move at
// most a chunk at a time and pay for it at the class's bucket of that
// direction; bytes count toward the daily cap.
type pacedConn struct {
	net.Conn
	s     *Scheduler
	class Class
	raw   syscall.RawConn // nil when the connection gives no socket
	mss   int             // segment size of the connection
	done  chan struct{}
	once  sync.Once

	// Where each direction's last sample ended; owned by the sampler.
	marks [2]mark
}

// mark is a connection's counters at the end of its last sample.
type mark struct {
	bytes  uint64
	losses uint32
	at     time.Time
	rate   float64 // smoothed delivery rate, bytes/s
}

func (c *pacedConn) Write(p []byte) (int, error) {
	b := c.s.buckets[c.class][up]
	n := 0
	for n < len(p) {
		if err := c.s.capCheck(); err != nil {
			return n, err
		}
		k := min(len(p)-n, b.chunk(c.mss))
		if err := b.take(k, c.done); err != nil {
			return n, err
		}
		start := time.Now()
		m, err := c.Conn.Write(p[n : n+k])
		if d := time.Since(start); d > time.Millisecond {
			b.held(d) // the socket was full: the kernel paces at our rate
		}
		n += m
		c.s.count(c.class, up, m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (c *pacedConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return c.Conn.Read(p)
	}
	if err := c.s.capCheck(); err != nil {
		return 0, err
	}
	b := c.s.buckets[c.class][down]
	n, err := c.Conn.Read(p[:min(len(p), b.chunk(c.mss))])
	if n > 0 {
		c.s.count(c.class, down, n)
		// Pay after the fact: a slow reader lets the receive window
		// close, which paces the sender.
		b.take(n, c.done)
	}
	return n, err
}

func (c *pacedConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.s.forget(c)
	})
	return c.Conn.Close()
}

// maxRTO is the retransmission-timeout ceiling of new connections: 1 s,
// or four base RTTs on a longer path (a satellite link), so that the cap
// never fires before an ACK could come back.
func (s *Scheduler) maxRTO() time.Duration {
	s.mu.Lock()
	base := s.ctl[up].base
	s.mu.Unlock()
	return max(minMaxRTO, 4*base)
}

// dialer returns the DialContext of class's transport.
func (s *Scheduler) dialer(class Class) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := s.cfg.Dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		pc := &pacedConn{Conn: conn, s: s, class: class, done: make(chan struct{}), mss: mss}
		if sc, ok := conn.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				pc.raw = raw
				if st, ok := readTCP(raw); ok && st.mss >= 536 {
					pc.mss = st.mss
				}
				if err := tuneTCP(raw, s.cfg.Congestion, s.maxRTO()); err != nil {
					s.ccOnce.Do(func() {
						s.log.Info("congestion control unavailable, keeping the system's", "want", s.cfg.Congestion, "err", err)
					})
				}
				setMaxPacing(raw, kernelPacing*s.buckets[class][up].currentRate())
			}
		}
		s.register(pc)
		return pc, nil
	}
}

// trackedBody ends a transfer when the response body is read to its end
// or closed.
type trackedBody struct {
	io.ReadCloser
	once sync.Once
	end  func()
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.end)
	}
	return n, err
}

func (b *trackedBody) Close() error {
	b.once.Do(b.end)
	return b.ReadCloser.Close()
}
