package dns

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	miekg "github.com/miekg/dns"
)

// fakeWriter records the answer the handler writes. It stands in for the
// miekg/dns connection only in the fuzz and concurrency tests; every other
// test goes through real sockets and dig.
type fakeWriter struct {
	remote net.Addr
	msg    *miekg.Msg
	wire   []byte
	err    error
}

func (w *fakeWriter) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *fakeWriter) RemoteAddr() net.Addr { return w.remote }
func (w *fakeWriter) WriteMsg(m *miekg.Msg) error {
	w.msg = m
	w.wire, w.err = m.Pack()
	return w.err
}
func (w *fakeWriter) Write(b []byte) (int, error) { w.wire = b; return len(b), nil }
func (w *fakeWriter) Close() error                { return nil }
func (w *fakeWriter) TsigStatus() error           { return nil }
func (w *fakeWriter) TsigTimersOnly(bool)         {}
func (w *fakeWriter) Hijack()                     {}

func udpFrom(a string) net.Addr {
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(a), 40000))
}

func tcpFrom(a string) net.Addr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(a), 40000))
}

// seedQueries reads testdata/queries.txt into packed queries.
func seedQueries(t testing.TB) [][]byte {
	t.Helper()
	f, err := os.Open("testdata/queries.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		m := new(miekg.Msg)
		m.SetQuestion(fields[0], miekg.StringToType[fields[1]])
		var opt *miekg.OPT
		edns := func() *miekg.OPT {
			if opt == nil {
				m.SetEdns0(512, false)
				opt = m.IsEdns0()
			}
			return opt
		}
		for _, o := range fields[2:] {
			k, v, _ := strings.Cut(o, "=")
			n, _ := strconv.Atoi(v)
			switch k {
			case "edns":
				edns().SetUDPSize(uint16(n))
			case "do":
				edns().SetDo()
			case "ednsver":
				edns().SetVersion(uint8(n))
			case "ad":
				m.AuthenticatedData = true
			case "cd":
				m.CheckingDisabled = true
			case "norec":
				m.RecursionDesired = false
			case "class":
				m.Question[0].Qclass = miekg.StringToClass[v]
			default:
				t.Fatalf("queries.txt: unknown option %q", o)
			}
		}
		wire, err := m.Pack()
		if err != nil {
			t.Fatalf("queries.txt: %q: %v", sc.Text(), err)
		}
		out = append(out, wire)
	}
	if len(out) == 0 {
		t.Fatal("queries.txt: no query")
	}
	return out
}

// memServer is a Server whose upstream exchange is the test zone in
// memory, for fuzzing and concurrency tests.
func memServer(t testing.TB, exchange func(context.Context, *miekg.Msg, string) (*miekg.Msg, error)) (*Server, *fakeClock, *fakeAcceptance, *fakeUplink) {
	t.Helper()
	clock, acc, up := newClock(), &fakeAcceptance{}, &fakeUplink{}
	cfg := testConfig("192.0.2.53:53", "192.0.2.54")
	cfg.Now = clock.Now
	cfg.CacheEntries = 64
	s, err := New(cfg, acc, up, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if exchange == nil {
		exchange = func(_ context.Context, m *miekg.Msg, _ string) (*miekg.Msg, error) { return upstreamAnswer(m), nil }
	}
	s.exchange = exchange
	return s, clock, acc, up
}

// checkReply holds for every answer the handler writes.
func checkReply(t *testing.T, q *miekg.Msg, w *fakeWriter) {
	t.Helper()
	if w.msg == nil {
		return
	}
	if w.err != nil {
		t.Fatalf("answer does not pack: %v\n%v", w.err, w.msg)
	}
	r := w.msg
	if r.Id != q.Id || !r.Response {
		t.Fatalf("answer id %d response %v, want id %d and a response", r.Id, r.Response, q.Id)
	}
	if _, udp := w.remote.(*net.UDPAddr); udp {
		limit := miekg.MinMsgSize
		if opt := q.IsEdns0(); opt != nil {
			limit = int(min(max(opt.UDPSize(), 512), ourUDPSize))
		}
		if len(w.wire) > limit {
			t.Fatalf("UDP answer of %d bytes, client buffer %d", len(w.wire), limit)
		}
	}
	if q.IsEdns0() == nil && r.IsEdns0() != nil {
		t.Fatalf("OPT in the answer to a query without EDNS")
	}
	if r.Rcode == miekg.RcodeSuccess && len(q.Question) == 1 && len(r.Question) == 1 && !strings.EqualFold(r.Question[0].Name, q.Question[0].Name) {
		t.Fatalf("answer question %q, query %q", r.Question[0].Name, q.Question[0].Name)
	}
}

func TestHandlerSeeds(t *testing.T) {
	s, _, _, _ := memServer(t, nil)
	for _, wire := range seedQueries(t) {
		q := new(miekg.Msg)
		if err := q.Unpack(wire); err != nil {
			t.Fatal(err)
		}
		for _, remote := range []net.Addr{udpFrom("192.168.50.10"), tcpFrom("192.168.50.10"), udpFrom("203.0.113.9")} {
			w := &fakeWriter{remote: remote}
			s.serveDNS(w, q.Copy())
			if w.msg == nil {
				t.Fatalf("%v from %v: no answer", q.Question, remote)
			}
			checkReply(t, q, w)
		}
	}
}

// TestOneUpstreamQueryForManyClients: clients asking the same question at
// the same time share one upstream resolution.
func TestOneUpstreamQueryForManyClients(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	s, _, _, _ := memServer(t, func(_ context.Context, m *miekg.Msg, _ string) (*miekg.Msg, error) {
		calls.Add(1)
		<-release
		return upstreamAnswer(m), nil
	})
	var wg sync.WaitGroup
	writers := make([]*fakeWriter, 20)
	for i := range writers {
		writers[i] = &fakeWriter{remote: udpFrom("192.168.50." + strconv.Itoa(10+i))}
		q := new(miekg.Msg)
		q.SetQuestion("Site.Example.", miekg.TypeA)
		wg.Go(func() { s.serveDNS(writers[i], q) })
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Errorf("upstream exchanges %d, want 1", got)
	}
	for _, w := range writers {
		if w.msg == nil || len(w.msg.Answer) != 1 || w.msg.Question[0].Name != "Site.Example." {
			t.Errorf("answer %v", w.msg)
		}
	}
}

// TestUpstreamsInOrder: a failing first upstream is skipped; a wrong answer
// (other question, SERVFAIL) is not used.
func TestUpstreamsInOrder(t *testing.T) {
	tests := []struct {
		name   string
		first  func(m *miekg.Msg) (*miekg.Msg, error)
		rcode  int
		second int64
	}{
		{"first unreachable", func(*miekg.Msg) (*miekg.Msg, error) { return nil, errors.New("connection refused") }, miekg.RcodeSuccess, 1},
		{"first SERVFAIL", func(m *miekg.Msg) (*miekg.Msg, error) {
			r := new(miekg.Msg)
			r.SetRcode(m, miekg.RcodeServerFailure)
			return r, nil
		}, miekg.RcodeSuccess, 1},
		{"first answers another question", func(m *miekg.Msg) (*miekg.Msg, error) {
			q := m.Copy()
			q.Question[0].Name = "evil.example."
			return upstreamAnswer(q), nil
		}, miekg.RcodeSuccess, 1},
		{"first answers", func(m *miekg.Msg) (*miekg.Msg, error) { return upstreamAnswer(m), nil }, miekg.RcodeSuccess, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var second atomic.Int64
			s, _, _, _ := memServer(t, func(_ context.Context, m *miekg.Msg, up string) (*miekg.Msg, error) {
				if up == "192.0.2.53:53" {
					return tt.first(m)
				}
				second.Add(1)
				return upstreamAnswer(m), nil
			})
			q := new(miekg.Msg)
			q.SetQuestion("site.example.", miekg.TypeA)
			w := &fakeWriter{remote: udpFrom("192.168.50.10")}
			s.serveDNS(w, q)
			if w.msg.Rcode != tt.rcode || len(w.msg.Answer) != 1 {
				t.Errorf("answer %v", w.msg)
			}
			if second.Load() != tt.second {
				t.Errorf("second upstream asked %d times, want %d", second.Load(), tt.second)
			}
		})
	}
}

func TestResponseFlags(t *testing.T) {
	s, _, _, _ := memServer(t, nil)
	tests := []struct {
		name   string
		edit   func(*miekg.Msg)
		remote net.Addr
		rcode  int
	}{
		{"notify", func(m *miekg.Msg) { m.Opcode = miekg.OpcodeNotify }, udpFrom("192.168.50.10"), miekg.RcodeNotImplemented},
		{"update", func(m *miekg.Msg) { m.Opcode = miekg.OpcodeUpdate }, udpFrom("192.168.50.10"), miekg.RcodeNotImplemented},
		{"two questions", func(m *miekg.Msg) { m.Question = append(m.Question, m.Question[0]) }, udpFrom("192.168.50.10"), miekg.RcodeFormatError},
		{"no question", func(m *miekg.Msg) { m.Question = nil }, udpFrom("192.168.50.10"), miekg.RcodeFormatError},
		{"IXFR", func(m *miekg.Msg) { m.Question[0].Qtype = miekg.TypeIXFR }, tcpFrom("192.168.50.10"), miekg.RcodeRefused},
		{"EDNS version 1 without OPT in reply possible", func(m *miekg.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }, udpFrom("192.168.50.10"), miekg.RcodeBadVers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := new(miekg.Msg)
			q.SetQuestion("site.example.", miekg.TypeA)
			tt.edit(q)
			w := &fakeWriter{remote: tt.remote}
			s.serveDNS(w, q)
			if w.msg == nil || w.msg.Rcode != tt.rcode {
				t.Fatalf("answer %v, want rcode %s", w.msg, miekg.RcodeToString[tt.rcode])
			}
			checkReply(t, q, w)
		})
	}
	// A message that is itself a response gets no answer.
	q := new(miekg.Msg)
	q.SetQuestion("site.example.", miekg.TypeA)
	q.Response = true
	w := &fakeWriter{remote: udpFrom("192.168.50.10")}
	s.serveDNS(w, q)
	if w.msg != nil {
		t.Errorf("answered a response: %v", w.msg)
	}
}
