package mdns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"

	"preau/services/internal/netnstest"
)

// browsed is one resolved line of avahi-browse -p.
type browsed struct {
	name, stype, host, addr, port string
	txt                           []string
}

// parseBrowse reads the "=" lines of avahi-browse -rtp output:
// =;iface;proto;name;type;domain;host;address;port;"txt" "txt"…
func parseBrowse(t *testing.T, out string) []browsed {
	t.Helper()
	var got []browsed
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, ";", 10)
		if len(f) < 10 || f[0] != "=" {
			continue
		}
		name, err := unescapeLabel(f[3])
		if err != nil {
			t.Fatalf("avahi-browse name %q: %v", f[3], err)
		}
		b := browsed{name: name, stype: f[4], host: f[6], addr: f[7], port: f[8]}
		for _, s := range strings.Split(f[9], "\" \"") {
			b.txt = append(b.txt, strings.Trim(s, "\""))
		}
		slices.Sort(b.txt)
		got = append(got, b)
	}
	return got
}

// The box announces in its namespace; an avahi-daemon in the tablet's
// namespace, started after the announcements so that its cache is empty,
// must resolve the host name and see both services by asking.
func TestAnnounceSeenByAvahi(t *testing.T) {
	netnstest.RequireRoot(t)
	box := netnstest.NewNS(t, "pmd-box")
	tablet := netnstest.NewNS(t, "pmd-tab")
	netnstest.Veth(t, box, "lan0", netip.MustParsePrefix("10.233.0.1/24"), tablet, "wlan0", netip.MustParsePrefix("10.233.0.2/24"))

	const want = "Préau — École élémentaire J. Ferry"
	ann, err := New(Config{
		SchoolName: "École élémentaire J. Ferry",
		Interfaces: []string{"lan0"},
		Port:       8080,
		Version:    "1.4.2",
		UAI:        "0751234A",
	}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := ann.Config().InstanceName; got != want {
		t.Fatalf("instance name: got %q, want %q", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- box.Do(func() error { return ann.Serve(ctx) }) }()
	stop := sync.OnceValue(func() error {
		cancel()
		return <-served
	})
	t.Cleanup(func() { stop() })

	// zeroconf announces for about 3.5 s; avahi starts after that.
	time.Sleep(4 * time.Second)
	if ctx.Err() == nil && len(served) > 0 {
		t.Fatalf("Serve ended early: %v", stop())
	}
	av := netnstest.StartAvahi(t, tablet, "wlan0", "tablet")

	// The host name, answered by our responder (zeroconf does not).
	resolve := func() string {
		c, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		out, _ := av.Command(c, "avahi-resolve", "-4", "-n", "preau.local").CombinedOutput()
		return string(out)
	}
	if got, want := strings.Fields(resolve()), []string{"preau.local", "10.233.0.1"}; !slices.Equal(got, want) {
		t.Fatalf("avahi-resolve -n preau.local: got %q, want %q", got, want)
	}

	wantTXT := []string{"path=/", "uai=0751234A", "version=1.4.2"}
	for _, svc := range []string{ServiceHTTP, ServicePreau} {
		var found []browsed
		netnstest.WaitFor(10*time.Second, func() bool {
			c, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			defer cancel()
			out, _ := av.Command(c, "avahi-browse", "-rtpk", svc).CombinedOutput()
			found = parseBrowse(t, string(out))
			return len(found) > 0
		})
		if len(found) != 1 {
			t.Fatalf("avahi-browse %s: got %d resolved entries %+v, want 1", svc, len(found), found)
		}
		got := found[0]
		if got.name != want || got.stype != svc || got.host != "preau.local" || got.addr != "10.233.0.1" || got.port != "8080" || !slices.Equal(got.txt, wantTXT) {
			t.Errorf("avahi-browse %s:\n got  %+v\n want name %q host preau.local addr 10.233.0.1 port 8080 txt %q", svc, got, want, wantTXT)
		}
	}

	// A direct question for the instance (QU bit, answered by unicast): the
	// escaped UTF-8 name must match what zeroconf registered.
	instance := escapeInstance(want) + "." + ServicePreau + ".local."
	var srv *dns.SRV
	err = tablet.Do(func() error {
		var err error
		srv, err = askSRV(instance, "wlan0")
		return err
	})
	if err != nil {
		t.Fatalf("SRV %s: %v", instance, err)
	}
	if srv.Port != 8080 || srv.Target != "preau.local." {
		t.Errorf("SRV %s: got port %d target %s, want 8080 preau.local.", instance, srv.Port, srv.Target)
	}

	// Goodbye: a live browser sees the services leave when Serve ends.
	browser := av.Start(t, "avahi-browse", "-pk", ServicePreau)
	if !netnstest.WaitFor(5*time.Second, func() bool { return strings.Contains(browser.Output(), "+;wlan0;") }) {
		t.Fatalf("avahi-browse -p did not list the service: %s", browser.Output())
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if !netnstest.WaitFor(5*time.Second, func() bool { return strings.Contains(browser.Output(), "-;wlan0;") }) {
		t.Errorf("no goodbye: avahi-browse did not see the service leave: %s", browser.Output())
	}
}

// askSRV sends one mDNS question with the unicast-response bit from an
// ephemeral port, on ifname, and returns the SRV answer.
func askSRV(name, ifname string) (*dns.SRV, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The namespace has no route for the group: name the interface.
	if err := ipv4.NewPacketConn(conn).SetMulticastInterface(ifi); err != nil {
		return nil, err
	}
	q := new(dns.Msg)
	q.Question = []dns.Question{{Name: name, Qtype: dns.TypeSRV, Qclass: dns.ClassINET | classCacheBit}}
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 9000)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		if _, err := conn.WriteToUDP(wire, &net.UDPAddr{IP: mdnsGroup, Port: mdnsPort}); err != nil {
			return nil, err
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				break
			}
			var m dns.Msg
			if m.Unpack(buf[:n]) != nil {
				continue
			}
			for _, rr := range append(m.Answer, m.Extra...) {
				if s, ok := rr.(*dns.SRV); ok && s.Hdr.Name == name {
					return s, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no SRV answer for %s", name)
}
