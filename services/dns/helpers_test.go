package dns

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	miekg "github.com/miekg/dns"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// needTool skips (or fails under PREAU_REQUIRE_PEERS=1) when a peer tool
// is missing.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s is required (Debian package bind9-dnsutils): %v", name, err)
		}
		t.Skipf("%s not installed (Debian package bind9-dnsutils): skipping the real-peer test", name)
	}
	return p
}

// fakeClock is the injected clock: tests move it to age cached answers.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 9, 1, 8, 30, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeAcceptance is captive's acceptance: our own interface, so a map.
type fakeAcceptance struct {
	mu sync.Mutex
	ok map[netip.Addr]bool
}

func (f *fakeAcceptance) Accepted(a netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ok[a]
}

func (f *fakeAcceptance) Set(a netip.Addr, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ok == nil {
		f.ok = map[netip.Addr]bool{}
	}
	f.ok[a] = ok
}

type fakeUplink struct{ down atomic.Bool }

func (f *fakeUplink) Online() bool { return !f.down.Load() }

// upstream is a real miekg/dns server on loopback (UDP and TCP on one
// port) playing the school's internet resolver for a small zone.
type upstream struct {
	addr       string
	udp, tcp   *miekg.Server
	queries    atomic.Int64
	tcpQueries atomic.Int64
	lastDO     atomic.Bool
	silent     atomic.Bool // drop queries without answering, like a dead link
	once       sync.Once
}

const upstreamZone = `
$ORIGIN example.
$TTL 300
@          3600 IN SOA ns.example. admin.example. 1 3600 600 86400 120
site            IN A    192.0.2.10
site            IN AAAA 2001:db8::10
short       60  IN A    192.0.2.11
www             IN CNAME site
`

var upstreamRRs = func() map[string][]miekg.RR {
	z := map[string][]miekg.RR{}
	add := func(rr miekg.RR) {
		k := strings.ToLower(rr.Header().Name) + " " + miekg.Type(rr.Header().Rrtype).String()
		z[k] = append(z[k], rr)
	}
	zp := miekg.NewZoneParser(strings.NewReader(upstreamZone), "example.", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		add(rr)
	}
	if err := zp.Err(); err != nil {
		panic(err)
	}
	for _, s := range []string{
		"connectivitycheck.gstatic.com. 300 IN A 142.250.1.1",
		"captive.apple.com. 300 IN A 17.253.1.1",
	} {
		rr, err := miekg.NewRR(s)
		if err != nil {
			panic(err)
		}
		add(rr)
	}
	// big.example TXT: about 2.8 kB, more than any UDP answer may carry.
	for i := range 40 {
		add(&miekg.TXT{Hdr: hdr("big.example.", miekg.TypeTXT, 300), Txt: []string{fmt.Sprintf("%02d-%s", i, strings.Repeat("x", 60))}})
	}
	return z
}()

// upstreamAnswer is the upstream's answer to r, without transport concerns.
func upstreamAnswer(r *miekg.Msg) *miekg.Msg {
	m := new(miekg.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if len(r.Question) != 1 {
		m.Rcode = miekg.RcodeFormatError
		return m
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	if q.Qtype == miekg.TypeA || q.Qtype == miekg.TypeAAAA {
		if c := upstreamRRs[name+" CNAME"]; c != nil {
			m.Answer = append(m.Answer, c...)
			name = c[0].(*miekg.CNAME).Target
		}
	}
	m.Answer = append(m.Answer, upstreamRRs[name+" "+miekg.Type(q.Qtype).String()]...)
	if len(m.Answer) == 0 {
		exists := false
		for k := range upstreamRRs {
			if strings.HasPrefix(k, name+" ") {
				exists = true
			}
		}
		if !exists {
			m.Rcode = miekg.RcodeNameError
		}
		if miekg.IsSubDomain("example.", name) {
			m.Ns = []miekg.RR{upstreamRRs["example. SOA"][0]}
		}
	}
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(1232, opt.Do())
	}
	return m
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	pc, l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: pc.LocalAddr().String()}
	handler := miekg.HandlerFunc(func(w miekg.ResponseWriter, r *miekg.Msg) {
		u.queries.Add(1)
		_, isTCP := w.RemoteAddr().(*net.TCPAddr)
		if isTCP {
			u.tcpQueries.Add(1)
		}
		if opt := r.IsEdns0(); opt != nil {
			u.lastDO.Store(opt.Do())
		}
		if u.silent.Load() {
			return
		}
		m := upstreamAnswer(r)
		if !isTCP {
			size := miekg.MinMsgSize
			if opt := r.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
			}
			m.Truncate(size)
		}
		w.WriteMsg(m)
	})
	started := make(chan struct{}, 2)
	u.udp = &miekg.Server{PacketConn: pc, Handler: handler, NotifyStartedFunc: func() { started <- struct{}{} }}
	u.tcp = &miekg.Server{Listener: l, Handler: handler, NotifyStartedFunc: func() { started <- struct{}{} }}
	go u.udp.ActivateAndServe()
	go u.tcp.ActivateAndServe()
	<-started
	<-started
	t.Cleanup(u.cut)
	return u
}

// cut stops the upstream: its port then answers ICMP "unreachable".
func (u *upstream) cut() {
	u.once.Do(func() {
		u.udp.Shutdown()
		u.tcp.Shutdown()
	})
}

// box is a Server under test, serving on a loopback port.
type box struct {
	srv   *Server
	ip    string
	port  string
	clock *fakeClock
	acc   *fakeAcceptance
	up    *fakeUplink
}

var boxV4 = netip.MustParseAddr("192.168.50.1")
var boxV6 = netip.MustParseAddr("fd00:50::1")

// testConfig is the configuration most tests use; RRL is off so that
// bursts of dig do not trip it.
func testConfig(upstreams ...string) Config {
	return Config{
		Zone:       "preau.lan",
		ShortNames: []string{"jaures"},
		Hosts: map[string][]netip.Addr{
			"imprimante":        {netip.MustParseAddr("192.168.50.20")},
			"nas.preau.lan":     {netip.MustParseAddr("192.168.50.21"), netip.MustParseAddr("fd00:50::21")},
			"a.salle.preau.lan": {netip.MustParseAddr("192.168.50.30")},
		},
		BoxAddrs:      []netip.Addr{boxV4, boxV6},
		Upstreams:     upstreams,
		ProbeNames:    []string{"connectivitycheck.gstatic.com", "captive.apple.com"},
		DNSOnlyProbes: map[string][]netip.Addr{"dns.msftncsi.com": {netip.MustParseAddr("131.107.255.255"), netip.MustParseAddr("fd3e:4f5a:5b81::1")}},
		RRL:           RateLimit{Rate: -1},
	}
}

func startBox(t *testing.T, cfg Config) *box {
	t.Helper()
	return startBoxOn(t, cfg, "127.0.0.1")
}

// startBoxOn serves on ip (a loopback address) and a free port.
func startBoxOn(t *testing.T, cfg Config, ip string) *box {
	t.Helper()
	b := &box{ip: ip, clock: newClock(), acc: &fakeAcceptance{}, up: &fakeUplink{}}
	cfg.Now = b.clock.Now
	srv, err := New(cfg, b.acc, b.up, quiet())
	if err != nil {
		t.Fatal(err)
	}
	b.srv = srv
	pc, l, err := Listen(net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	_, b.port, _ = net.SplitHostPort(pc.LocalAddr().String())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
		pc.Close()
		l.Close()
	})
	waitServing(t, net.JoinHostPort(ip, b.port))
	return b
}

// waitServing waits until a query over UDP gets an answer.
func waitServing(t *testing.T, addr string) {
	t.Helper()
	c := &miekg.Client{Timeout: 200 * time.Millisecond}
	m := new(miekg.Msg)
	m.SetQuestion("localhost.", miekg.TypeA)
	for range 50 {
		if _, _, err := c.Exchange(m, addr); err == nil {
			return
		}
	}
	t.Fatalf("no DNS answer on %s", addr)
}

// digResult is what dig printed, parsed.
type digResult struct {
	Status     string
	Flags      map[string]bool
	EDNS       bool
	DO         bool
	UDPSize    int
	EDE        []int
	Answer     []string // records, fields joined by one space
	Authority  []string
	Additional []string
	TimedOut   bool
	Raw        string
}

func (r digResult) answerTTLs() []uint32 {
	var ttls []uint32
	for _, a := range r.Answer {
		f := strings.Fields(a)
		n, _ := strconv.Atoi(f[1])
		ttls = append(ttls, uint32(n))
	}
	return ttls
}

var (
	reStatus = regexp.MustCompile(`status: ([A-Z]+)`)
	reFlags  = regexp.MustCompile(`;; flags:([a-z ]*);`)
	reEDNS   = regexp.MustCompile(`; EDNS: version: \d+, flags:([a-z ]*); udp: (\d+)`)
	reEDE    = regexp.MustCompile(`; EDE: (\d+)`)
)

// dig runs the real dig against the box and parses its output.
func (b *box) dig(t *testing.T, args ...string) digResult {
	t.Helper()
	bin := needTool(t, "dig")
	all := append([]string{"@" + b.ip, "-p", b.port, "+tries=1", "+time=2", "+nocookie"}, args...)
	out, err := exec.Command(bin, all...).CombinedOutput()
	res := parseDig(string(out))
	if err != nil && !res.TimedOut {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return res
}

func parseDig(out string) digResult {
	res := digResult{Raw: out, Flags: map[string]bool{}}
	if strings.Contains(out, "timed out") || strings.Contains(out, "no servers could be reached") {
		res.TimedOut = true
	}
	if m := reStatus.FindStringSubmatch(out); m != nil {
		res.Status = m[1]
	}
	if m := reFlags.FindStringSubmatch(out); m != nil {
		for _, f := range strings.Fields(m[1]) {
			res.Flags[f] = true
		}
	}
	if m := reEDNS.FindStringSubmatch(out); m != nil {
		res.EDNS = true
		res.DO = strings.Contains(m[1], "do")
		res.UDPSize, _ = strconv.Atoi(m[2])
	}
	for _, m := range reEDE.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		res.EDE = append(res.EDE, n)
	}
	var section *[]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ";; ANSWER SECTION:"):
			section = &res.Answer
		case strings.HasPrefix(line, ";; AUTHORITY SECTION:"):
			section = &res.Authority
		case strings.HasPrefix(line, ";; ADDITIONAL SECTION:"):
			section = &res.Additional
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, ";"):
			section = nil
		case section != nil:
			*section = append(*section, strings.Join(strings.Fields(line), " "))
		}
	}
	sort.Strings(res.Answer)
	return res
}
