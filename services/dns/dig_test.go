package dns

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests ask the real dig (BIND 9) against a Server on loopback whose
// upstream is a real miekg/dns server, also on loopback.

func TestLocalZoneWithDig(t *testing.T) {
	u := startUpstream(t)
	b := startBox(t, testConfig(u.addr))
	soa := "preau.lan. 60 IN SOA preau.lan. hostmaster.preau.lan. 1756715400 3600 600 86400 60"
	tests := []struct {
		args       []string
		status     string
		answer     []string
		authority  []string
		additional []string
	}{
		{[]string{"preau.lan", "A"}, "NOERROR", []string{"preau.lan. 60 IN A 192.168.50.1"}, nil, nil},
		{[]string{"preau.lan", "AAAA"}, "NOERROR", []string{"preau.lan. 60 IN AAAA fd00:50::1"}, nil, nil},
		{[]string{"PREAU.Lan", "A"}, "NOERROR", []string{"PREAU.Lan. 60 IN A 192.168.50.1"}, nil, nil},
		{[]string{"www.preau.lan", "A"}, "NOERROR", []string{"www.preau.lan. 60 IN A 192.168.50.1"}, nil, nil},
		{[]string{"portail.preau.lan", "AAAA"}, "NOERROR", []string{"portail.preau.lan. 60 IN AAAA fd00:50::1"}, nil, nil},
		{[]string{"preau.lan", "SOA"}, "NOERROR", []string{soa}, nil, nil},
		{[]string{"preau.lan", "NS"}, "NOERROR", []string{"preau.lan. 60 IN NS preau.lan."}, nil,
			[]string{"preau.lan. 60 IN A 192.168.50.1", "preau.lan. 60 IN AAAA fd00:50::1"}},
		{[]string{"preau.lan", "MX"}, "NOERROR", nil, []string{soa}, nil},
		{[]string{"nope.preau.lan", "A"}, "NXDOMAIN", nil, []string{soa}, nil},
		{[]string{"x.www.preau.lan", "A"}, "NXDOMAIN", nil, []string{soa}, nil},
		{[]string{"salle.preau.lan", "A"}, "NOERROR", nil, []string{soa}, nil}, // empty non-terminal
		{[]string{"a.salle.preau.lan", "A"}, "NOERROR", []string{"a.salle.preau.lan. 60 IN A 192.168.50.30"}, nil, nil},
		{[]string{"imprimante.preau.lan", "A"}, "NOERROR", []string{"imprimante.preau.lan. 60 IN A 192.168.50.20"}, nil, nil},
		{[]string{"nas.preau.lan", "AAAA"}, "NOERROR", []string{"nas.preau.lan. 60 IN AAAA fd00:50::21"}, nil, nil},
		{[]string{"jaures", "A"}, "NOERROR", []string{"jaures. 60 IN A 192.168.50.1"}, nil, nil},
		{[]string{"jaures", "AAAA"}, "NOERROR", []string{"jaures. 60 IN AAAA fd00:50::1"}, nil, nil},
		{[]string{"jaures.preau.lan", "A"}, "NOERROR", []string{"jaures.preau.lan. 60 IN A 192.168.50.1"}, nil, nil},
		{[]string{"jaures", "TXT"}, "NOERROR", nil, nil, nil},
		{[]string{"-x", "192.168.50.1"}, "NOERROR", []string{"1.50.168.192.in-addr.arpa. 60 IN PTR preau.lan."}, nil, nil},
		{[]string{"-x", "192.168.50.20"}, "NOERROR", []string{"20.50.168.192.in-addr.arpa. 60 IN PTR imprimante.preau.lan."}, nil, nil},
		{[]string{"localhost", "A"}, "NOERROR", []string{"localhost. 60 IN A 127.0.0.1"}, nil, nil},
		{[]string{"dns.msftncsi.com", "A"}, "NOERROR", []string{"dns.msftncsi.com. 60 IN A 131.107.255.255"}, nil, nil},
		{[]string{"dns.msftncsi.com", "AAAA"}, "NOERROR", []string{"dns.msftncsi.com. 60 IN AAAA fd3e:4f5a:5b81::1"}, nil, nil},
		{[]string{"preau.lan", "ANY"}, "NOERROR", []string{"preau.lan. 60 IN A 192.168.50.1", "preau.lan. 60 IN AAAA fd00:50::1"}, nil, nil},
		{[]string{"-c", "CH", "version.bind", "TXT"}, "REFUSED", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := b.dig(t, tt.args...)
			if r.Status != tt.status {
				t.Fatalf("status %q, want %q\n%s", r.Status, tt.status, r.Raw)
			}
			if tt.status != "REFUSED" && !strings.HasPrefix(tt.args[0], "dns.msftncsi") && !r.Flags["aa"] {
				t.Errorf("no aa flag on a local answer\n%s", r.Raw)
			}
			if !r.Flags["ra"] {
				t.Errorf("no ra flag for a LAN client\n%s", r.Raw)
			}
			if !slices.Equal(r.Answer, tt.answer) {
				t.Errorf("answer\n got %q\nwant %q", r.Answer, tt.answer)
			}
			if !slices.Equal(r.Authority, tt.authority) {
				t.Errorf("authority\n got %q\nwant %q", r.Authority, tt.authority)
			}
			if !slices.Equal(r.Additional, tt.additional) {
				t.Errorf("additional\n got %q\nwant %q", r.Additional, tt.additional)
			}
		})
	}
	// No zone transfer: dig asks over TCP and gets REFUSED.
	if r := b.dig(t, "preau.lan", "AXFR"); !strings.Contains(r.Raw, "Transfer failed") || len(r.Answer) != 0 {
		t.Errorf("AXFR not refused\n%s", r.Raw)
	}
	if n := u.queries.Load(); n != 0 {
		t.Errorf("upstream got %d queries for local names, want 0", n)
	}
	if st := b.srv.Stats(); st.Local == 0 || st.Forwarded != 0 {
		t.Errorf("stats %+v, want local answers only", st)
	}
}

func TestProbeNamesFollowAcceptanceAndUplink(t *testing.T) {
	u := startUpstream(t)
	b := startBox(t, testConfig(u.addr))
	me := netip.MustParseAddr("127.0.0.1")
	steps := []struct {
		name     string
		accepted bool
		down     bool
		qtype    string
		answer   []string
		upstream int64 // queries the upstream has seen after the step
	}{
		{"not accepted", false, false, "A", []string{"connectivitycheck.gstatic.com. 5 IN A 192.168.50.1"}, 0},
		{"not accepted AAAA", false, false, "AAAA", []string{"connectivitycheck.gstatic.com. 5 IN AAAA fd00:50::1"}, 0},
		{"not accepted HTTPS", false, false, "HTTPS", nil, 0},
		{"accepted", true, false, "A", []string{"connectivitycheck.gstatic.com. 5 IN A 142.250.1.1"}, 1},
		{"accepted, cached", true, false, "A", []string{"connectivitycheck.gstatic.com. 5 IN A 142.250.1.1"}, 1},
		{"accepted, uplink down", true, true, "A", []string{"connectivitycheck.gstatic.com. 5 IN A 192.168.50.1"}, 1},
		{"not accepted, uplink down", false, true, "A", []string{"connectivitycheck.gstatic.com. 5 IN A 192.168.50.1"}, 1},
		{"revoked", false, false, "A", []string{"connectivitycheck.gstatic.com. 5 IN A 192.168.50.1"}, 1},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			b.acc.Set(me, st.accepted)
			b.up.down.Store(st.down)
			r := b.dig(t, "connectivitycheck.gstatic.com", st.qtype)
			if r.Status != "NOERROR" || !slices.Equal(r.Answer, st.answer) {
				t.Errorf("got %s %q, want NOERROR %q\n%s", r.Status, r.Answer, st.answer, r.Raw)
			}
			if len(r.Authority) != 0 {
				t.Errorf("authority %q, want none (no negative caching of a hijack)", r.Authority)
			}
			if got := u.queries.Load(); got != st.upstream {
				t.Errorf("upstream saw %d queries, want %d", got, st.upstream)
			}
		})
	}
	// Accepted, and the uplink monitor has not seen a cut yet: a probe name
	// the upstream cannot resolve gets the box rather than SERVFAIL.
	b.acc.Set(me, true)
	b.up.down.Store(false)
	u.cut()
	if r := b.dig(t, "captive.apple.com", "A"); r.Status != "NOERROR" || !slices.Equal(r.Answer, []string{"captive.apple.com. 5 IN A 192.168.50.1"}) {
		t.Errorf("probe name with the upstream cut: %s %q\n%s", r.Status, r.Answer, r.Raw)
	}
	// The DNS-only probe is answered locally in every state.
	b.up.down.Store(false)
	b.acc.Set(me, true)
	if r := b.dig(t, "dns.msftncsi.com", "A"); !slices.Equal(r.Answer, []string{"dns.msftncsi.com. 60 IN A 131.107.255.255"}) {
		t.Errorf("dns.msftncsi.com: %q", r.Answer)
	}
	if st := b.srv.Stats(); st.Hijacked != 7 {
		t.Errorf("hijacked %d, want 7", st.Hijacked)
	}
}

func TestForwardingAndCacheWithDig(t *testing.T) {
	u := startUpstream(t)
	b := startBox(t, testConfig(u.addr))

	r := b.dig(t, "site.example", "A")
	if r.Status != "NOERROR" || !slices.Equal(r.Answer, []string{"site.example. 300 IN A 192.0.2.10"}) {
		t.Fatalf("forwarded answer %s %q\n%s", r.Status, r.Answer, r.Raw)
	}
	if r.Flags["aa"] || !r.Flags["ra"] || !r.Flags["rd"] {
		t.Errorf("flags %v, want rd ra and no aa", r.Flags)
	}
	if got := u.queries.Load(); got != 1 {
		t.Fatalf("upstream queries %d, want 1", got)
	}

	// Cache hits: the upstream is not asked again and the TTL counts down.
	for _, tt := range []struct {
		advance time.Duration
		ttl     uint32
	}{{0, 300}, {10 * time.Second, 290}, {4*time.Minute + 49*time.Second, 1}} {
		b.clock.Advance(tt.advance)
		r := b.dig(t, "SITE.example", "A")
		if got := r.answerTTLs(); !slices.Equal(got, []uint32{tt.ttl}) {
			t.Errorf("after +%s: TTL %v, want %d\n%s", tt.advance, got, tt.ttl, r.Raw)
		}
	}
	if got := u.queries.Load(); got != 1 {
		t.Errorf("upstream queries %d after cache hits, want 1", got)
	}
	// Expired: asked again.
	b.clock.Advance(2 * time.Second)
	if r := b.dig(t, "site.example", "A"); !slices.Equal(r.answerTTLs(), []uint32{300}) {
		t.Errorf("after expiry: TTL %v, want a fresh 300", r.answerTTLs())
	}
	if got := u.queries.Load(); got != 2 {
		t.Errorf("upstream queries %d after expiry, want 2", got)
	}

	// CNAME chains are kept whole.
	r = b.dig(t, "www.example", "A")
	if want := []string{"site.example. 300 IN A 192.0.2.10", "www.example. 300 IN CNAME site.example."}; !slices.Equal(r.Answer, want) {
		t.Errorf("CNAME answer %q, want %q", r.Answer, want)
	}

	// Negative caching from the SOA minimum (RFC 2308): 120 s.
	before := u.queries.Load()
	for range 2 {
		r = b.dig(t, "gone.example", "A")
		if r.Status != "NXDOMAIN" || len(r.Authority) != 1 || !strings.HasPrefix(r.Authority[0], "example. 120 IN SOA") {
			t.Errorf("NXDOMAIN: %s %q\n%s", r.Status, r.Authority, r.Raw)
		}
	}
	r = b.dig(t, "site.example", "MX") // NODATA
	if r.Status != "NOERROR" || len(r.Answer) != 0 || len(r.Authority) != 1 {
		t.Errorf("NODATA: %s %q %q", r.Status, r.Answer, r.Authority)
	}
	if got := u.queries.Load() - before; got != 2 {
		t.Errorf("upstream queries for NXDOMAIN twice and NODATA: %d, want 2", got)
	}
	b.clock.Advance(121 * time.Second)
	b.dig(t, "gone.example", "A")
	if got := u.queries.Load() - before; got != 3 {
		t.Errorf("negative answer not refreshed after its TTL: %d queries, want 3", got)
	}

	// DO is passed on and echoed; DNSSEC answers are cached apart.
	before = u.queries.Load()
	r = b.dig(t, "+dnssec", "site.example", "AAAA")
	if !r.DO || !u.lastDO.Load() {
		t.Errorf("DO bit: answer %v, upstream saw %v; want both set", r.DO, u.lastDO.Load())
	}
	r = b.dig(t, "site.example", "AAAA")
	if r.DO || u.lastDO.Load() {
		t.Errorf("DO bit without +dnssec: answer %v, upstream saw %v; want neither", r.DO, u.lastDO.Load())
	}
	if got := u.queries.Load() - before; got != 2 {
		t.Errorf("DO and plain answers share a cache entry: %d upstream queries, want 2", got)
	}

	// ANY: minimal answer, never forwarded (RFC 8482).
	before = u.queries.Load()
	r = b.dig(t, "site.example", "ANY")
	if !slices.Equal(r.Answer, []string{`site.example. 3600 IN HINFO "RFC8482" ""`}) || u.queries.Load() != before {
		t.Errorf("ANY: %q, upstream +%d", r.Answer, u.queries.Load()-before)
	}
	st := b.srv.Stats()
	if st.Forwarded == 0 || st.Cached == 0 || st.CacheEntries == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestServeStaleWithDig(t *testing.T) {
	u := startUpstream(t)
	cfg := testConfig(u.addr)
	cfg.ClientTimeout = 300 * time.Millisecond
	cfg.UpstreamTimeout = 3 * time.Second
	b := startBox(t, cfg)
	for _, q := range [][]string{{"site.example", "A"}, {"short.example", "A"}, {"gone.example", "A"}} {
		if r := b.dig(t, q...); r.Status == "" {
			t.Fatalf("warm-up %v: %s", q, r.Raw)
		}
	}

	// The link is cut: the upstream's port is closed.
	b.clock.Advance(10 * time.Minute)
	u.cut()
	r := b.dig(t, "site.example", "A")
	if r.Status != "NOERROR" || !slices.Equal(r.Answer, []string{"site.example. 30 IN A 192.0.2.10"}) || !slices.Equal(r.EDE, []int{3}) {
		t.Errorf("stale answer: %s %q EDE %v, want NOERROR TTL 30 EDE 3\n%s", r.Status, r.Answer, r.EDE, r.Raw)
	}
	r = b.dig(t, "+noedns", "short.example", "A")
	if r.Status != "NOERROR" || !slices.Equal(r.Answer, []string{"short.example. 30 IN A 192.0.2.11"}) || r.EDNS {
		t.Errorf("stale answer without EDNS: %s %q edns %v\n%s", r.Status, r.Answer, r.EDNS, r.Raw)
	}
	r = b.dig(t, "gone.example", "A")
	if r.Status != "NXDOMAIN" || !slices.Equal(r.EDE, []int{19}) {
		t.Errorf("stale NXDOMAIN: %s EDE %v, want EDE 19\n%s", r.Status, r.EDE, r.Raw)
	}
	r = b.dig(t, "never.example", "A")
	if r.Status != "SERVFAIL" || !slices.Equal(r.EDE, []int{22}) {
		t.Errorf("uncached name with the link cut: %s EDE %v, want SERVFAIL EDE 22\n%s", r.Status, r.EDE, r.Raw)
	}
	if st := b.srv.Stats(); st.Stale != 3 || st.Failed != 1 || st.UpstreamErrors == 0 {
		t.Errorf("stats %+v, want 3 stale, 1 failed", st)
	}
	// Past StaleMaxAge (3 days) nothing is left.
	b.clock.Advance(3*24*time.Hour + time.Minute)
	if r := b.dig(t, "site.example", "A"); r.Status != "SERVFAIL" {
		t.Errorf("after the stale window: %s, want SERVFAIL\n%s", r.Status, r.Raw)
	}
}

// TestServeStaleOnSlowUpstream: an upstream that swallows queries (a link
// that drops packets) gets a stale answer after ClientTimeout, not after
// the upstream timeout, and the refresh goes on behind.
func TestServeStaleOnSlowUpstream(t *testing.T) {
	u := startUpstream(t)
	cfg := testConfig(u.addr)
	cfg.ClientTimeout = 300 * time.Millisecond
	cfg.UpstreamTimeout = 1500 * time.Millisecond
	b := startBox(t, cfg)
	b.dig(t, "site.example", "A")
	b.clock.Advance(time.Hour)
	u.silent.Store(true)
	start := time.Now()
	r := b.dig(t, "site.example", "A")
	took := time.Since(start)
	if r.Status != "NOERROR" || !slices.Equal(r.EDE, []int{3}) || !slices.Equal(r.answerTTLs(), []uint32{30}) {
		t.Errorf("got %s %q EDE %v, want a stale answer\n%s", r.Status, r.Answer, r.EDE, r.Raw)
	}
	if took > 1200*time.Millisecond {
		t.Errorf("stale answer took %s, want about ClientTimeout (300ms)", took)
	}
	// Within the failure recheck time, stale comes at once.
	time.Sleep(1600 * time.Millisecond) // let the background refresh fail
	n := u.queries.Load()
	start = time.Now()
	r = b.dig(t, "site.example", "A")
	// The upstream count below is the real check; the bound is loose for
	// a loaded machine.
	if took := time.Since(start); took > time.Second || !slices.Equal(r.EDE, []int{3}) {
		t.Errorf("second stale answer took %s (EDE %v), want at once", took, r.EDE)
	}
	if u.queries.Load() != n {
		t.Errorf("upstream asked again within the failure recheck time")
	}
}

func TestTCPAndEDNSWithDig(t *testing.T) {
	u := startUpstream(t)
	b := startBox(t, testConfig(u.addr))

	// The 2.8 kB answer comes truncated from the upstream over UDP; the box
	// asks again over TCP, and gives it whole to a TCP client.
	r := b.dig(t, "+tcp", "big.example", "TXT")
	if r.Status != "NOERROR" || len(r.Answer) != 40 || r.Flags["tc"] {
		t.Fatalf("over TCP: %s, %d records, flags %v\n%s", r.Status, len(r.Answer), r.Flags, r.Raw)
	}
	if u.tcpQueries.Load() != 1 {
		t.Errorf("upstream TCP queries %d, want 1 (fallback after TC)", u.tcpQueries.Load())
	}
	tests := []struct {
		args    []string
		tc      bool
		edns    bool
		udpSize int
	}{
		{[]string{"+bufsize=4096", "+ignore", "big.example", "TXT"}, true, true, 1232},
		{[]string{"+bufsize=1232", "+ignore", "big.example", "TXT"}, true, true, 1232},
		{[]string{"+noedns", "+ignore", "big.example", "TXT"}, true, false, 0},
		{[]string{"+bufsize=4096", "site.example", "A"}, false, true, 1232},
		{[]string{"+bufsize=512", "site.example", "A"}, false, true, 1232},
		{[]string{"+noedns", "site.example", "A"}, false, false, 0},
		{[]string{"+tcp", "preau.lan", "A"}, false, true, 1232},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := b.dig(t, tt.args...)
			if r.Status != "NOERROR" || r.Flags["tc"] != tt.tc || r.EDNS != tt.edns || r.UDPSize != tt.udpSize {
				t.Errorf("got %s tc=%v edns=%v udp=%d, want NOERROR tc=%v edns=%v udp=%d\n%s",
					r.Status, r.Flags["tc"], r.EDNS, r.UDPSize, tt.tc, tt.edns, tt.udpSize, r.Raw)
			}
			if !tt.tc && len(r.Answer) == 0 {
				t.Errorf("no answer\n%s", r.Raw)
			}
		})
	}
	// Without fallback dig gets the truncated answer; with it, dig retries
	// over TCP by itself and gets all of it.
	if r := b.dig(t, "big.example", "TXT"); len(r.Answer) != 40 {
		t.Errorf("dig with TCP fallback got %d records, want 40", len(r.Answer))
	}
	// EDNS version 1 is not spoken (RFC 6891 §6.1.3).
	if r := b.dig(t, "+edns=1", "+noednsnegotiation", "preau.lan", "A"); r.Status != "BADVERS" || !r.EDNS {
		t.Errorf("EDNS version 1: %s, want BADVERS\n%s", r.Status, r.Raw)
	}
}

func TestRefusesOutsideClientsWithDig(t *testing.T) {
	u := startUpstream(t)
	cfg := testConfig(u.addr)
	cfg.LANPrefixes = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	b := startBox(t, cfg)
	tests := []struct {
		args   []string
		status string
		aa     bool
		ede    []int
	}{
		{[]string{"site.example", "A"}, "REFUSED", false, []int{18}},
		{[]string{"+norecurse", "site.example", "A"}, "REFUSED", false, []int{18}},
		{[]string{"connectivitycheck.gstatic.com", "A"}, "REFUSED", false, []int{18}},
		{[]string{"dns.msftncsi.com", "A"}, "REFUSED", false, []int{18}},
		{[]string{"-x", "192.168.50.1"}, "REFUSED", false, []int{18}},
		{[]string{".", "NS"}, "REFUSED", false, []int{18}},
		{[]string{"site.example", "ANY"}, "REFUSED", false, []int{18}},
		// The local zone stays answered: it is the box's own data.
		{[]string{"preau.lan", "A"}, "NOERROR", true, nil},
		{[]string{"jaures", "A"}, "NOERROR", true, nil},
		{[]string{"nope.preau.lan", "A"}, "NXDOMAIN", true, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := b.dig(t, tt.args...)
			if r.Status != tt.status || r.Flags["aa"] != tt.aa || !slices.Equal(r.EDE, tt.ede) {
				t.Errorf("got %s aa=%v EDE %v, want %s aa=%v EDE %v\n%s", r.Status, r.Flags["aa"], r.EDE, tt.status, tt.aa, tt.ede, r.Raw)
			}
			if r.Flags["ra"] {
				t.Errorf("recursion offered to an outside client\n%s", r.Raw)
			}
			if tt.status == "REFUSED" && len(r.Answer)+len(r.Authority)+len(r.Additional) != 0 {
				t.Errorf("a refusal carries records\n%s", r.Raw)
			}
		})
	}
	if n := u.queries.Load(); n != 0 {
		t.Errorf("upstream got %d queries from an outside client, want 0", n)
	}
	if st := b.srv.Stats(); st.Refused != 7 {
		t.Errorf("refused %d, want 7", st.Refused)
	}
}

// TestRateLimitWithDig fires a burst of parallel dig processes. The clock
// is frozen, so no token comes back during the burst and the counts are
// exact: the burst passes, then half the rest is dropped and half gets a
// truncated answer (slip 2).
func TestRateLimitWithDig(t *testing.T) {
	tests := []struct {
		name            string
		lan             []netip.Prefix
		queries         int
		ok, tc, dropped int
	}{
		{"LAN client, burst of 5 s", nil, 20, 10, 5, 5},
		{"outside client, burst of 1 s", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, 12, 2, 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.LANPrefixes = tt.lan
			cfg.RRL = RateLimit{Rate: 2, Slip: 2}
			b := startBox(t, cfg)
			// startBox's readiness probe spent a token: refill.
			b.clock.Advance(time.Minute)
			var mu sync.Mutex
			var ok, tc, dropped int
			var wg sync.WaitGroup
			for range tt.queries {
				wg.Go(func() {
					r := b.dig(t, "+ignore", "+time=1", "preau.lan", "A")
					mu.Lock()
					defer mu.Unlock()
					switch {
					case r.TimedOut:
						dropped++
					case r.Flags["tc"]:
						tc++
					case r.Status == "NOERROR" && len(r.Answer) == 1:
						ok++
					default:
						t.Errorf("unexpected answer\n%s", r.Raw)
					}
				})
			}
			wg.Wait()
			if ok != tt.ok || tc != tt.tc || dropped != tt.dropped {
				t.Errorf("answered %d, truncated %d, dropped %d; want %d, %d, %d", ok, tc, dropped, tt.ok, tt.tc, tt.dropped)
			}
			// TCP is never limited: the truncated answer's retry works.
			if r := b.dig(t, "+tcp", "preau.lan", "A"); r.Status != "NOERROR" || len(r.Answer) != 1 {
				t.Errorf("over TCP while limited: %s\n%s", r.Status, r.Raw)
			}
			st := b.srv.Stats()
			if int(st.RateLimited) != tt.dropped || int(st.Truncated) != tt.tc {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestIPv6ClientWithDig asks over ::1: forwarding for a LAN client, refusal
// when ::1 is outside the LAN prefixes.
func TestIPv6ClientWithDig(t *testing.T) {
	u := startUpstream(t)
	b := startBoxOn(t, testConfig(u.addr), "::1")
	if r := b.dig(t, "site.example", "AAAA"); r.Status != "NOERROR" || !slices.Equal(r.Answer, []string{"site.example. 300 IN AAAA 2001:db8::10"}) {
		t.Errorf("forwarded over IPv6: %s %q\n%s", r.Status, r.Answer, r.Raw)
	}
	cfg := testConfig(u.addr)
	cfg.LANPrefixes = []netip.Prefix{netip.MustParsePrefix("fd00::/8")}
	out := startBoxOn(t, cfg, "::1")
	if r := out.dig(t, "site.example", "AAAA"); r.Status != "REFUSED" {
		t.Errorf("outside IPv6 client: %s, want REFUSED\n%s", r.Status, r.Raw)
	}
	if r := out.dig(t, "preau.lan", "AAAA"); r.Status != "NOERROR" || !slices.Equal(r.Answer, []string{"preau.lan. 60 IN AAAA fd00:50::1"}) {
		t.Errorf("local zone to an outside IPv6 client: %s %q", r.Status, r.Answer)
	}
}
