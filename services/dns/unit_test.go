package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	miekg "github.com/miekg/dns"
)

func TestConfigValidate(t *testing.T) {
	ok := testConfig("192.0.2.53:53")
	tests := []struct {
		name  string
		edit  func(*Config)
		field string // "" when valid
	}{
		{"valid", func(*Config) {}, ""},
		{"defaults only need box addresses", func(c *Config) { *c = Config{BoxAddrs: []netip.Addr{boxV4}} }, ""},
		{"bare upstream IP", func(c *Config) { c.Upstreams = []string{"9.9.9.9", "[2620:fe::fe]:53"} }, ""},
		{"single-label lan", func(c *Config) { c.Zone = "lan" }, ""},
		{"zone com", func(c *Config) { c.Zone = "com" }, "Zone"},
		{"zone local", func(c *Config) { c.Zone = "ecole.local" }, "Zone"},
		{"zone reverse", func(c *Config) { c.Zone = "168.192.in-addr.arpa" }, "Zone"},
		{"zone wildcard", func(c *Config) { c.Zone = "*.preau.lan" }, "Zone"},
		{"short name with a dot", func(c *Config) { c.ShortNames = []string{"jaures.fr"} }, "ShortNames"},
		{"short name localhost", func(c *Config) { c.ShortNames = []string{"localhost"} }, "ShortNames"},
		{"host without address", func(c *Config) { c.Hosts = map[string][]netip.Addr{"nas": nil} }, "Hosts"},
		{"host bad name", func(c *Config) { c.Hosts = map[string][]netip.Addr{"a..b": {boxV4}} }, "Hosts"},
		{"no box address", func(c *Config) { c.BoxAddrs = nil }, "BoxAddrs"},
		{"unspecified box address", func(c *Config) { c.BoxAddrs = []netip.Addr{netip.IPv4Unspecified()} }, "BoxAddrs"},
		{"upstream name", func(c *Config) { c.Upstreams = []string{"dns.google:53"} }, "Upstreams"},
		{"upstream port 0", func(c *Config) { c.Upstreams = []string{"9.9.9.9:0"} }, "Upstreams"},
		{"open resolver", func(c *Config) { c.LANPrefixes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} }, "LANPrefixes"},
		{"empty LAN prefixes", func(c *Config) { c.LANPrefixes = []netip.Prefix{} }, "LANPrefixes"},
		{"probe wildcard", func(c *Config) { c.ProbeNames = []string{"*.gstatic.com"} }, "ProbeNames"},
		{"DNS-only probe without address", func(c *Config) { c.DNSOnlyProbes = map[string][]netip.Addr{"dns.msftncsi.com": nil} }, "DNSOnlyProbes"},
		{"negative cache", func(c *Config) { c.CacheEntries = -1 }, "CacheEntries"},
		{"stale TTL too small", func(c *Config) { c.StaleTTL = time.Millisecond }, "StaleTTL"},
		{"negative client timeout", func(c *Config) { c.ClientTimeout = -time.Second }, "ClientTimeout"},
		{"serve-stale off", func(c *Config) { c.StaleMaxAge = -1 }, ""},
		{"RRL off", func(c *Config) { c.RRL.Rate = -1 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			_, err := New(c, nil, nil, nil)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want a ConfigError on %s", err, tt.field)
			}
			if ce.Field != tt.field || !strings.HasPrefix(ce.Error(), "dns : ") || !strings.HasPrefix(ce.English(), "dns: ") {
				t.Errorf("got field %q, %q / %q; want field %q with French and English texts", ce.Field, ce.Error(), ce.English(), tt.field)
			}
		})
	}
}

func TestCacheable(t *testing.T) {
	rr := func(s string) miekg.RR {
		r, err := miekg.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	soa := "example. 3600 IN SOA ns.example. admin.example. 1 3600 600 86400 "
	tests := []struct {
		name   string
		rcode  int
		tc     bool
		answer []miekg.RR
		ns     []miekg.RR
		ttl    uint32
		ok     bool
	}{
		{"shortest record", miekg.RcodeSuccess, false, []miekg.RR{rr("a.example. 300 IN A 192.0.2.1"), rr("a.example. 60 IN A 192.0.2.2")}, nil, 60, true},
		{"capped to a day", miekg.RcodeSuccess, false, []miekg.RR{rr("a.example. 604800 IN A 192.0.2.1")}, nil, 86400, true},
		{"NXDOMAIN from SOA minimum", miekg.RcodeNameError, false, nil, []miekg.RR{rr(soa + "120")}, 120, true},
		{"NXDOMAIN from SOA TTL", miekg.RcodeNameError, false, nil, []miekg.RR{rr("example. 30 IN SOA ns.example. admin.example. 1 3600 600 86400 900")}, 30, true},
		{"negative capped to an hour", miekg.RcodeSuccess, false, nil, []miekg.RR{rr("example. 86400 IN SOA ns.example. admin.example. 1 3600 600 86400 86400")}, 3600, true},
		{"NXDOMAIN without SOA", miekg.RcodeNameError, false, nil, nil, 0, false},
		{"NODATA without SOA", miekg.RcodeSuccess, false, nil, nil, 0, false},
		{"SERVFAIL", miekg.RcodeServerFailure, false, nil, nil, 0, false},
		{"truncated", miekg.RcodeSuccess, true, []miekg.RR{rr("a.example. 300 IN A 192.0.2.1")}, nil, 0, false},
		{"TTL 0 kept for stale", miekg.RcodeSuccess, false, []miekg.RR{rr("a.example. 0 IN A 192.0.2.1")}, nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := new(miekg.Msg)
			m.SetQuestion("a.example.", miekg.TypeA)
			m.Response, m.Rcode, m.Truncated, m.Answer, m.Ns = true, tt.rcode, tt.tc, tt.answer, tt.ns
			m.SetEdns0(1232, false)
			c, ttl, ok := cacheable(m)
			if ok != tt.ok || ttl != tt.ttl {
				t.Fatalf("got ttl %d ok %v, want %d %v", ttl, ok, tt.ttl, tt.ok)
			}
			if ok && c.IsEdns0() != nil {
				t.Errorf("OPT kept in the cached answer")
			}
		})
	}
}

func TestCacheLRUAndStaleWindow(t *testing.T) {
	now := newClock().Now()
	c := newCache(3, time.Hour)
	k := func(n string) cacheKey { return cacheKey{name: n, qtype: miekg.TypeA, qclass: miekg.ClassINET} }
	for _, n := range []string{"a.", "b.", "c."} {
		c.put(k(n), []byte{1}, 60, now)
	}
	c.get(k("a."), now) // a is now the most recently used
	c.put(k("d."), []byte{1}, 60, now)
	tests := []struct {
		name string
		at   time.Duration
		want cacheState
	}{
		{"b.", 0, cacheMiss}, // evicted
		{"a.", 0, cacheFresh},
		{"c.", 59 * time.Second, cacheFresh},
		{"c.", 60 * time.Second, cacheStale},
		{"d.", time.Hour + 60*time.Second, cacheStale},
		{"d.", time.Hour + 61*time.Second, cacheMiss},
	}
	for _, tt := range tests {
		if _, got := c.get(k(tt.name), now.Add(tt.at)); got != tt.want {
			t.Errorf("%s at +%s: state %d, want %d", tt.name, tt.at, got, tt.want)
		}
	}
	// A failure without data is remembered for failureHold only.
	c.failed(k("x."), now)
	if _, st := c.get(k("x."), now.Add(failureHold-time.Second)); st != cacheFailed {
		t.Errorf("failure not remembered: %d", st)
	}
	if _, st := c.get(k("x."), now.Add(failureHold)); st != cacheMiss {
		t.Errorf("failure remembered too long: %d", st)
	}
	// Serve-stale off: expired means gone.
	off := newCache(3, -1)
	off.put(k("a."), []byte{1}, 60, now)
	if _, st := off.get(k("a."), now.Add(61*time.Second)); st != cacheMiss {
		t.Errorf("stale entry served with serve-stale off: %d", st)
	}
}

func TestLimiter(t *testing.T) {
	clock := newClock()
	l := newLimiter(RateLimit{Rate: 2, Slip: 3}, clock.Now)
	a := netip.MustParseAddr("203.0.113.9")
	neighbour := netip.MustParseAddr("203.0.113.200") // same /24
	other := netip.MustParseAddr("198.51.100.1")
	var got []verdict
	for range 8 {
		v, _ := l.check(a, false)
		got = append(got, v)
	}
	want := []verdict{pass, pass, drop, drop, slip, drop, drop, slip}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("verdicts %v, want %v", got, want)
		}
	}
	if v, _ := l.check(neighbour, false); v == pass {
		t.Errorf("same /24 not limited together")
	}
	if v, _ := l.check(other, false); v != pass {
		t.Errorf("another /24 limited")
	}
	clock.Advance(500 * time.Millisecond) // one token back
	if v, _ := l.check(a, false); v != pass {
		t.Errorf("no token after 0.5 s at 2/s")
	}
	// LAN clients: per address, five seconds' worth.
	lan1, lan2 := netip.MustParseAddr("192.168.50.10"), netip.MustParseAddr("192.168.50.11")
	for i := range 10 {
		if v, _ := l.check(lan1, true); v != pass {
			t.Fatalf("LAN query %d limited within the burst", i)
		}
	}
	if v, _ := l.check(lan1, true); v == pass {
		t.Errorf("LAN burst not limited")
	}
	if v, _ := l.check(lan2, true); v != pass {
		t.Errorf("a LAN neighbour shares the bucket")
	}
	if newLimiter(RateLimit{Rate: -1}, clock.Now) != nil {
		t.Errorf("negative rate should turn RRL off")
	}
}

// TestServeStopsAndRestartsOnTheSameSockets: Serve returns on cancel,
// leaves the caller's sockets open, and can run again on them (the
// supervisor's restart with socket-activated sockets).
func TestServeStopsAndRestartsOnTheSameSockets(t *testing.T) {
	cfg := testConfig()
	srv, err := New(cfg, nil, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	pc, l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	defer l.Close()
	addr := pc.LocalAddr().String()
	if l.Addr().String() != addr {
		t.Fatalf("udp %s and tcp %s differ", addr, l.Addr())
	}
	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, pc, l) }()
		waitServing(t, addr)
		c := &miekg.Client{Net: "tcp", Timeout: time.Second}
		m := new(miekg.Msg)
		m.SetQuestion("preau.lan.", miekg.TypeA)
		if r, _, err := c.Exchange(m, addr); err != nil || len(r.Answer) != 1 {
			t.Fatalf("round %d: TCP query: %v %v", round, r, err)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Serve: %v", round, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Serve did not stop", round)
		}
	}
	// Stopped: nothing answers, but the sockets are still the caller's.
	c := &miekg.Client{Timeout: 300 * time.Millisecond}
	m := new(miekg.Msg)
	m.SetQuestion("preau.lan.", miekg.TypeA)
	if _, _, err := c.Exchange(m, addr); err == nil {
		t.Errorf("answer after Serve returned")
	}
	if err := pc.SetReadDeadline(time.Now()); err != nil {
		t.Errorf("caller's UDP socket closed: %v", err)
	}
	if err := l.(*net.TCPListener).SetDeadline(time.Now()); err != nil {
		t.Errorf("caller's TCP socket closed: %v", err)
	}
}

func TestServeRefusesAForwardingLoop(t *testing.T) {
	pc, l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	defer l.Close()
	srv, err := New(testConfig(pc.LocalAddr().String()), nil, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Serve(context.Background(), pc, l)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "Upstreams" {
		t.Fatalf("Serve with itself upstream: %v, want a ConfigError on Upstreams", err)
	}
	if err := srv.Serve(context.Background(), nil, nil); err == nil {
		t.Errorf("Serve without sockets: no error")
	}
}

// lockedBuffer collects log lines from concurrent goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogsAreThrottled: a dead uplink writes one warning a minute however
// many queries fail, and its recovery one line.
func TestLogsAreThrottled(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	s, clock, _, _ := memServer(t, func(_ context.Context, m *miekg.Msg, _ string) (*miekg.Msg, error) {
		if down.Load() {
			return nil, errors.New("network is unreachable")
		}
		return upstreamAnswer(m), nil
	})
	var buf lockedBuffer
	s.log = slog.New(slog.NewTextHandler(&buf, nil))
	ask := func(name string) {
		q := new(miekg.Msg)
		q.SetQuestion(name, miekg.TypeA)
		s.serveDNS(&fakeWriter{remote: udpFrom("192.168.50.10")}, q)
	}
	for i := range 50 {
		ask(fmt.Sprintf("n%d.example.", i))
	}
	clock.Advance(2 * time.Minute)
	ask("late.example.")
	down.Store(false)
	ask("site.example.")
	out := buf.String()
	if n := strings.Count(out, "upstream resolvers do not answer"); n != 2 {
		t.Errorf("%d warnings, want 2 (one per minute)\n%s", n, out)
	}
	if !strings.Contains(out, "suppressed=49") {
		t.Errorf("the second warning does not count the held ones\n%s", out)
	}
	if n := strings.Count(out, "upstream resolvers answer again"); n != 1 {
		t.Errorf("%d recovery lines, want 1\n%s", n, out)
	}
}
