package gateway

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

var update = flag.Bool("update", false, "rewrite testdata/ruleset.nft from the kernel's listing")

// Addresses of the lab. They live only inside the namespaces the test
// creates: tablet ─ lan0 [box, router] up0 ─ uplink.
const (
	tablet4 = "10.77.1.2"
	tablet6 = "fd77:1::2"
	box4    = "10.77.1.1"
	boxUp4  = "10.77.2.1"
	uplink4 = "10.77.2.2"
	uplink6 = "fd77:2::2"

	portalPort = 8080
	dnsPort    = 5300
	// dnsMarker is what the box's DNS answers for any A question: seeing
	// it proves a query sent elsewhere reached the box.
	dnsMarker = "192.0.2.53"
	// hardCodedResolver stands for a public resolver set by hand on a
	// device (TEST-NET-2: no host has it, the query never leaves the lab).
	hardCodedResolver = "198.51.100.53"
)

type lab struct {
	t                   *testing.T
	tablet, box, uplink string
	uplinkServiceHits   atomic.Int64 // accepted connections on uplink:2222 and :443
	boxServiceHits      atomic.Int64 // accepted connections on box:9999
}

// newLab builds the three namespaces, addresses, routes and servers. The
// uplink has no IPv4 route back to the LAN: IPv4 only works through the
// gateway's masquerade. IPv6 is routed, not translated.
func newLab(t *testing.T) *lab {
	l := &lab{t: t, tablet: newNS(t, "tab"), box: newNS(t, "box"), uplink: newNS(t, "up")}
	run(t, "ip", "-n", l.box, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", l.tablet)
	run(t, "ip", "-n", l.box, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", l.uplink)
	for _, c := range [][]string{
		{l.box, "addr", "add", box4 + "/24", "dev", "lan0"},
		{l.box, "addr", "add", "fd77:1::1/64", "dev", "lan0", "nodad"},
		{l.box, "addr", "add", boxUp4 + "/24", "dev", "up0"},
		{l.box, "addr", "add", "fd77:2::1/64", "dev", "up0", "nodad"},
		{l.box, "link", "set", "lan0", "up"},
		{l.box, "link", "set", "up0", "up"},
		{l.tablet, "addr", "add", tablet4 + "/24", "dev", "eth0"},
		{l.tablet, "addr", "add", tablet6 + "/64", "dev", "eth0", "nodad"},
		{l.tablet, "link", "set", "eth0", "up"},
		{l.tablet, "route", "add", "default", "via", box4},
		{l.tablet, "-6", "route", "add", "default", "via", "fd77:1::1"},
		{l.uplink, "addr", "add", uplink4 + "/24", "dev", "eth0"},
		{l.uplink, "addr", "add", uplink6 + "/64", "dev", "eth0", "nodad"},
		{l.uplink, "link", "set", "eth0", "up"},
		{l.uplink, "-6", "route", "add", "fd77:1::/64", "via", "fd77:2::1"},
	} {
		run(t, "ip", append([]string{"-n"}, c...)...)
	}
	run(t, "ip", "netns", "exec", l.box, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")

	// The real site on the uplink says who it sees, to prove masquerade.
	serveHTTP(t, listen(t, l.uplink, ":80"), func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "uplink %s", netip.MustParseAddr(host).Unmap())
	})
	serveHTTP(t, listen(t, l.box, fmt.Sprintf(":%d", portalPort)), func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "portal")
	})
	// A non-HTTP service upstream (echo), an "HTTPS" port upstream and a
	// technician-only service on the box: each counts its connections.
	echo := func(hits *atomic.Int64) func(net.Conn) {
		return func(c net.Conn) {
			hits.Add(1)
			io.WriteString(c, "hello\n")
			io.Copy(c, c)
		}
	}
	serveTCP(t, listen(t, l.uplink, ":2222"), echo(&l.uplinkServiceHits))
	serveTCP(t, listen(t, l.uplink, ":443"), echo(&l.uplinkServiceHits))
	serveTCP(t, listen(t, l.box, ":9999"), echo(&l.boxServiceHits))
	serveDNS(t, l.box)
	return l
}

func serveHTTP(t *testing.T, ln net.Listener, h http.HandlerFunc) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func serveTCP(t *testing.T, ln net.Listener, h func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				h(c)
			}()
		}
	}()
}

// serveDNS runs a tiny resolver on the box's DNS port (UDP and TCP) that
// answers dnsMarker to any A question.
func serveDNS(t *testing.T, ns string) {
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if len(q.Question) == 1 && q.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.ParseIP(dnsMarker)}}
		}
		w.WriteMsg(m)
	})
	addr := fmt.Sprintf(":%d", dnsPort)
	for _, s := range []*dns.Server{{PacketConn: listenUDP(t, ns, addr), Handler: h}, {Listener: listen(t, ns, addr), Handler: h}} {
		go s.ActivateAndServe()
		t.Cleanup(func() { s.Shutdown() })
	}
}

// curl fetches url from the tablet with the real curl.
func (l *lab) curl(url string) string {
	out, err := runErr("ip", "netns", "exec", l.tablet, "curl", "-sS", "-g", "--max-time", "3", url)
	if err != nil {
		return "error: " + err.Error()
	}
	return out
}

// dig asks server on port 53 (UDP, or TCP when tcp) from the tablet with
// the real dig.
func (l *lab) dig(server string, tcp bool) string { return l.digPort(server, 53, tcp) }

func (l *lab) digPort(server string, port int, tcp bool) string {
	args := []string{"netns", "exec", l.tablet, "dig", "+short", "+time=2", "+tries=1", "-p", fmt.Sprint(port), "@" + server, "anything.example", "A"}
	if tcp {
		args = append(args, "+tcp")
	}
	out, err := runErr("ip", args...)
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(out)
}

// tcpEcho connects from the tablet and checks the greeting; it returns
// nil only if the service answered.
func (l *lab) tcpEcho(addr string) error {
	c, err := dial(l.tablet, "tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "hello\n" {
		return fmt.Errorf("greeting %q", line)
	}
	return nil
}

// udpReaches sends a datagram from the tablet to the box and reports
// whether pc (listening in the box) got it.
func (l *lab) udpReaches(pc net.PacketConn, port int) bool {
	c, err := dial(l.tablet, "udp", fmt.Sprintf("%s:%d", box4, port), time.Second)
	if err != nil {
		l.t.Fatal(err)
	}
	defer c.Close()
	msg := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	c.Write([]byte(msg))
	buf := make([]byte, 64)
	pc.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) == msg {
			return true
		}
	}
}

// ping sends one ICMP echo from the tablet and waits for the reply.
func (l *lab) ping(addr string) error {
	var pc *icmp.PacketConn
	if err := inNS(l.tablet, func() (err error) {
		pc, err = icmp.ListenPacket("ip4:icmp", tablet4)
		return err
	}); err != nil {
		return err
	}
	defer pc.Close()
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: 1, Data: []byte("preau")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return err
	}
	if _, err := pc.WriteTo(b, &net.IPAddr{IP: net.ParseIP(addr)}); err != nil {
		return err
	}
	pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err == nil && m.Type == ipv4.ICMPTypeEchoReply && from.String() == addr {
			return nil
		}
	}
}

func (l *lab) nft(args ...string) string {
	return run(l.t, "ip", append([]string{"netns", "exec", l.box, "nft"}, args...)...)
}

// nftScript loads an nft script in the box, as `nft -f` would.
func (l *lab) nftScript(script string) {
	cmd := exec.Command("ip", "netns", "exec", l.box, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("nft -f: %v: %s", err, out)
	}
}

func (l *lab) gateway(cfg Config) *Gateway {
	l.t.Helper()
	cfg.LANInterface, cfg.UplinkInterface = "lan0", "up0"
	cfg.PortalPort, cfg.DNSPort = portalPort, dnsPort
	g, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		l.t.Fatal(err)
	}
	g.netns = nsPath(l.box)
	return g
}

// want checks one observation from the tablet.
func want(t *testing.T, what, got, wantPrefix string) {
	t.Helper()
	if !strings.HasPrefix(got, wantPrefix) {
		t.Errorf("%s = %q, want %q…", what, got, wantPrefix)
	}
}

const (
	httpV4 = "http://" + uplink4 + "/"
	httpV6 = "http://[" + uplink6 + "]/"
)

// TestGatewayInNamespaces plays the brief's scenarios against the real
// kernel with curl, dig and Go clients in a tablet namespace.
func TestGatewayInNamespaces(t *testing.T) {
	needPeers(t, "ip", "nft", "curl", "dig", "sysctl")
	l := newLab(t)
	// Someone else's table, and a stale "preau" table as a crashed older
	// version might have left (other chains, an old acceptance).
	l.nftScript(fmt.Sprintf(`
table inet other {
	chain input { type filter hook input priority 10; policy accept; tcp dport 9 counter accept; }
}
table inet preau {
	set accepted4 { type ipv4_addr; elements = { %s } }
	chain old { type filter hook forward priority 0; policy accept; ip saddr @accepted4 accept; }
}`, tablet4))
	othersBefore := l.nft("list", "table", "inet", "other")

	g := l.gateway(Config{})
	t.Run("apply replaces a stale table and is idempotent", func(t *testing.T) {
		for i := range 2 {
			if err := g.Apply(); err != nil {
				t.Fatalf("Apply #%d: %v", i+1, err)
			}
		}
		got := l.nft("list", "table", "inet", "preau")
		golden := filepath.Join("testdata", "ruleset.nft")
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		wantRules, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(wantRules) {
			t.Errorf("nft list table inet preau:\n%s\nwant (%s):\n%s", got, golden, wantRules)
		}
	})

	t.Run("unaccepted device", func(t *testing.T) {
		want(t, "HTTP v4 to the uplink", l.curl(httpV4), "portal")
		want(t, "HTTP v6 to the uplink", l.curl(httpV6), "portal")
		for _, tt := range []struct {
			server string
			tcp    bool
		}{{uplink4, false}, {uplink4, true}, {uplink6, false}, {uplink6, true}, {hardCodedResolver, false}} {
			want(t, fmt.Sprintf("DNS to %s (tcp %v)", tt.server, tt.tcp), l.dig(tt.server, tt.tcp), dnsMarker)
		}
		start := time.Now()
		for _, addr := range []string{uplink4 + ":2222", uplink4 + ":443", "[" + uplink6 + "]:2222"} {
			if err := l.tcpEcho(addr); err == nil {
				t.Errorf("TCP to %s from an unaccepted device worked", addr)
			} else if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("TCP to %s: %v, want a quick refusal (reset)", addr, err)
			}
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("refusals took %v, want a quick failure", d)
		}
		if n := l.uplinkServiceHits.Load(); n != 0 {
			t.Errorf("uplink services saw %d connections from an unaccepted device", n)
		}
		// The box itself: DHCP, DNS, portal and ICMP yes; other services no.
		if err := l.tcpEcho(box4 + ":9999"); err == nil || l.boxServiceHits.Load() != 0 {
			t.Errorf("box service reached by an unaccepted device (err %v)", err)
		}
		want(t, "DNS to the box's port", l.digPort(box4, dnsPort, false), dnsMarker)
		if err := l.ping(box4); err != nil {
			t.Errorf("ping the box: %v", err)
		}
	})

	dhcp := listenUDP(t, l.box, box4+":67")
	other := listenUDP(t, l.box, box4+":9998")
	t.Run("input lets DHCP in, not other UDP", func(t *testing.T) {
		if !l.udpReaches(dhcp, 67) {
			t.Error("UDP 67 (DHCP) did not reach the box")
		}
		if l.udpReaches(other, 9998) {
			t.Error("UDP 9998 reached the box from an unaccepted device")
		}
	})

	t.Run("allow, revoke, expire", func(t *testing.T) {
		tab4, tab6 := netip.MustParseAddr(tablet4), netip.MustParseAddr(tablet6)
		if err := g.Allow(tab4, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		want(t, "HTTP v4 after Allow (masqueraded)", l.curl(httpV4), "uplink "+boxUp4)
		want(t, "HTTP v6 with only v4 allowed", l.curl(httpV6), "portal")
		want(t, "DNS after Allow", l.dig(uplink4, false), dnsMarker)
		if err := l.tcpEcho(uplink4 + ":2222"); err != nil {
			t.Errorf("TCP service after Allow: %v", err)
		}
		if err := l.tcpEcho(box4 + ":9999"); err != nil {
			t.Errorf("box service after Allow: %v", err)
		}
		if !l.udpReaches(other, 9998) {
			t.Error("UDP 9998 did not reach the box after Allow")
		}
		if err := g.Allow(tab6, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		want(t, "HTTP v6 after Allow (routed, not translated)", l.curl(httpV6), "uplink "+tablet6)
		// Allowing again moves the end (the kernel shows the timeout left,
		// a few ms under 2 h) and keeps access.
		if err := g.Allow(tab4, time.Now().Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		want(t, "HTTP v4 after a second Allow", l.curl(httpV4), "uplink "+boxUp4)
		if !strings.Contains(l.nft("list", "set", "inet", "preau", "accepted4"), "timeout 1h59m") {
			t.Errorf("accepted4 lacks the new timeout:\n%s", l.nft("list", "set", "inet", "preau", "accepted4"))
		}

		// An open connection dies with the acceptance.
		c, err := dial(l.tablet, "tcp", uplink4+":2222", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if line, err := br.ReadString('\n'); err != nil || line != "hello\n" {
			t.Fatalf("greeting %q, %v", line, err)
		}
		if err := g.Revoke(tab4); err != nil {
			t.Fatal(err)
		}
		if err := g.Revoke(tab4); err != nil {
			t.Errorf("second Revoke: %v", err)
		}
		io.WriteString(c, "ping\n")
		if line, err := br.ReadString('\n'); err == nil {
			t.Errorf("open connection still works after Revoke: %q", line)
		}
		want(t, "HTTP v4 after Revoke", l.curl(httpV4), "portal")
		want(t, "HTTP v6 still allowed", l.curl(httpV6), "uplink "+tablet6)
		if err := g.Revoke(tab6); err != nil {
			t.Fatal(err)
		}

		// The kernel ends the acceptance by itself.
		allowed := time.Now()
		if err := g.Allow(tab4, allowed.Add(1500*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		want(t, "HTTP v4 before the timeout", l.curl(httpV4), "uplink")
		for l.curl(httpV4) != "portal" {
			if time.Since(allowed) > 8*time.Second {
				t.Fatal("acceptance did not expire in the kernel")
			}
			time.Sleep(200 * time.Millisecond)
		}
		if d := time.Since(allowed); d < 1400*time.Millisecond {
			t.Errorf("acceptance ended after %v, want 1.5 s", d)
		}
	})

	t.Run("accept by MAC", func(t *testing.T) {
		mac := macOf(t, l.tablet, "eth0")
		if err := g.AllowMAC(mac, time.Time{}); err != nil {
			t.Fatal(err)
		}
		want(t, "HTTP v4 after AllowMAC", l.curl(httpV4), "uplink "+boxUp4)
		want(t, "HTTP v6 after AllowMAC", l.curl(httpV6), "uplink "+tablet6)
		if err := g.RevokeMAC(mac); err != nil {
			t.Fatal(err)
		}
		want(t, "HTTP v4 after RevokeMAC", l.curl(httpV4), "portal")
	})

	t.Run("crash then apply", func(t *testing.T) {
		// g "crashes": no Close. A new process starts with no memory.
		if err := g.Allow(netip.MustParseAddr(tablet4), time.Time{}); err != nil {
			t.Fatal(err)
		}
		want(t, "HTTP v4 before the crash", l.curl(httpV4), "uplink")
		g2 := l.gateway(Config{})
		if err := g2.Apply(); err != nil {
			t.Fatal(err)
		}
		want(t, "HTTP v4 after restart (acceptance not yet pushed again)", l.curl(httpV4), "portal")
		if err := g2.Close(); err != nil {
			t.Fatal(err)
		}
		if err := g2.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		// Only our table is gone; the other one is untouched.
		if got := l.nft("list", "ruleset"); got != othersBefore {
			t.Errorf("ruleset after Close:\n%s\nwant only the other table:\n%s", got, othersBefore)
		}
	})

	t.Run("serve reinstalls a deleted table and removes it on stop", func(t *testing.T) {
		g3 := l.gateway(Config{})
		if err := g3.Allow(netip.MustParseAddr(tablet4), time.Time{}); err != nil { // before Serve: remembered
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g3.Serve(ctx) }()
		waitFor(t, "table installed by Serve", func() bool { return l.curl(httpV4) == "uplink "+boxUp4 })
		l.nft("flush", "ruleset") // an nftables service reload does this
		waitFor(t, "table back after flush ruleset", func() bool { return l.curl(httpV4) == "uplink "+boxUp4 })
		want(t, "HTTP v6 of an unaccepted address", l.curl(httpV6), "portal")
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if got := l.nft("list", "ruleset"); got != "" {
			t.Errorf("ruleset after Serve ended:\n%s\nwant empty", got)
		}
	})

	t.Run("open mode", func(t *testing.T) {
		g4 := l.gateway(Config{Open: true})
		if err := g4.Apply(); err != nil {
			t.Fatal(err)
		}
		want(t, "HTTP v4 in open mode", l.curl(httpV4), "uplink "+boxUp4)
		want(t, "DNS in open mode", l.dig(uplink4, false), dnsMarker)
		if err := g4.Close(); err != nil {
			t.Fatal(err)
		}
		if got := l.nft("list", "ruleset"); got != "" {
			t.Errorf("ruleset after Close:\n%s\nwant empty", got)
		}
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
