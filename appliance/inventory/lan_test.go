package inventory

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

	"preau/appliance/inventory/internal/lantest"
)

// lanDevice is one device namespace of the test LAN.
type lanDevice struct {
	name, mac, ip, host string
	publish             [][]string // avahi-publish argument lists
	ns                  *lantest.NS
	stopTalking         func()
}

// A LAN of network namespaces: a box with a bridge, four devices with
// their own MACs (three with a real vendor OUI, one randomised), three
// announcing over mDNS through avahi (a printer with _ipp._tcp and TXT, a
// MacBook with _device-info, an interactive display with _googlecast),
// all talking to the box so that its neighbour table fills. The inventory
// runs in the box namespace and must list them with the right vendors and
// classes, present; a device removed from the LAN goes absent after the
// (short) presence timeout and is announced as left.
func TestLANInventory(t *testing.T) {
	lantest.RequireRoot(t)
	for _, tool := range []string{"ip", "sysctl", "dbus-daemon", "avahi-daemon", "avahi-publish"} {
		lantest.RequireTool(t, tool)
	}
	box := lantest.NewNS(t, "pinv-box")
	box.MustRun("ip", "link", "add", "br0", "type", "bridge")
	box.MustRun("ip", "addr", "add", "10.77.0.1/24", "dev", "br0")
	box.MustRun("ip", "link", "set", "br0", "up")
	// Short neighbour timers on the box, so that a device that left goes
	// from REACHABLE to STALE within seconds rather than half a minute.
	box.MustRun("sysctl", "-q", "-w", "net.ipv4.neigh.br0.base_reachable_time_ms=1000")
	box.MustRun("sysctl", "-q", "-w", "net.ipv4.neigh.br0.delay_first_probe_time=1")
	stopEcho := udpEcho(t, box, "10.77.0.1:7")
	defer stopEcho()

	devices := []*lanDevice{
		{name: "printer", mac: "00:80:77:12:34:56", ip: "10.77.0.11", host: "brother-cdi", publish: [][]string{
			{"-s", "Brother HL-L2350DW", "_ipp._tcp", "631", "txtvers=1", "ty=Brother HL-L2350DW series", "rp=ipp/print", "pdl=application/pdf,image/urf"},
		}},
		{name: "macbook", mac: "3c:22:fb:aa:bb:01", ip: "10.77.0.12", host: "macbook-salle-3", publish: [][]string{
			{"-s", "MacBook de la salle 3", "_device-info._tcp", "0", "model=MacBookAir10,1"},
			{"-s", "MacBook de la salle 3", "_smb._tcp", "445"},
			{"-s", "MacBook de la salle 3", "_ssh._tcp", "22"}, // not browsed by default: found by enumeration
		}},
		{name: "display", mac: "6c:dc:6a:00:00:12", ip: "10.77.0.14", host: "activpanel-12", publish: [][]string{
			{"-s", "ActivPanel salle 12", "_googlecast._tcp", "8009", "md=ActivPanel 9", "fn=Salle 12"},
		}},
		{name: "tablet", mac: "5a:1e:2d:3c:4b:5a", ip: "10.77.0.13"}, // randomised, silent on mDNS
	}
	for i, d := range devices {
		d.ns = lantest.NewNS(t, "pinv-"+d.name)
		port := fmt.Sprintf("vb%d", i)
		box.MustRun("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", d.ns.Name)
		box.MustRun("ip", "link", "set", port, "master", "br0")
		box.MustRun("ip", "link", "set", port, "up")
		d.ns.MustRun("ip", "link", "set", "eth0", "address", d.mac)
		d.ns.MustRun("ip", "addr", "add", d.ip+"/24", "dev", "eth0")
		d.ns.MustRun("ip", "link", "set", "eth0", "up")
		if len(d.publish) > 0 {
			av := lantest.StartAvahi(t, d.ns, "eth0", d.host)
			for _, args := range d.publish {
				av.Publish(t, args...)
			}
		}
	}
	for _, d := range devices {
		d.stopTalking = talkToBox(t, d.ns, "10.77.0.1:7")
	}

	inv, err := New(Config{
		Interfaces:      []string{"br0"},
		PresenceTimeout: 8 * time.Second,
		NeighbourPoll:   time.Second,
		BrowseInterval:  time.Minute,
		OUIDir:          testOUIDir,
	}, openDB(t), slog.New(slog.NewTextHandler(t.Output(), nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	events, unsubscribe := inv.Subscribe()
	defer unsubscribe()
	var evMu sync.Mutex
	var evs []string
	go func() {
		for ev := range events {
			evMu.Lock()
			evs = append(evs, string(ev.Kind)+" "+ev.Device.ID)
			evMu.Unlock()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- box.Do(func() error { return inv.Serve(ctx) }) }()
	stop := sync.OnceValue(func() error { cancel(); return <-served })
	defer stop()

	// The portal sees the tablet's browser, and knows only its address.
	ipad := "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
	lantest.WaitFor(10*time.Second, func() bool { return inv.lan.Load() != nil })
	if err := inv.Observe(ctx, Observation{Source: SourcePortal, IP: netip.MustParseAddr("10.77.0.13"), UserAgent: ipad}); err != nil {
		t.Fatal(err)
	}

	type row struct {
		class        Class
		vendor       string
		status       VendorStatus
		name, model  string
		service      string
		randomised   bool
		present      bool
		ip           string
		sourcesNeigh bool
	}
	want := map[string]row{
		"00:80:77:12:34:56": {ClassPrinter, "Brother industries, LTD.", VendorKnown, "brother-cdi", "Brother HL-L2350DW series", "_ipp._tcp", false, true, "10.77.0.11", true},
		"3c:22:fb:aa:bb:01": {ClassLaptop, "Apple, Inc.", VendorKnown, "macbook-salle-3", "MacBookAir10,1", "_device-info._tcp", false, true, "10.77.0.12", true},
		"6c:dc:6a:00:00:12": {ClassInteractiveDisplay, "Promethean Limited", VendorKnown, "activpanel-12", "ActivPanel 9", "_googlecast._tcp", false, true, "10.77.0.14", true},
		"5a:1e:2d:3c:4b:5a": {ClassTablet, "", VendorRandomised, "", "", "", true, true, "10.77.0.13", true},
	}
	snapshot := func() map[string]row {
		devs, err := inv.Devices(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := make(map[string]row)
		for _, d := range devs {
			svc := ""
			if len(want[d.ID].service) > 0 && slices.Contains(d.Services, want[d.ID].service) {
				svc = want[d.ID].service
			}
			got[d.ID] = row{d.Class, d.Vendor, d.VendorStatus, d.Name, d.Model, svc, d.Randomised, d.Present, d.IP,
				slices.Contains(d.Sources, SourceNeighbour)}
		}
		return got
	}
	var got map[string]row
	if !lantest.WaitFor(45*time.Second, func() bool {
		got = snapshot()
		return fmt.Sprint(got) == fmt.Sprint(want)
	}) {
		t.Fatalf("inventory of the namespace LAN:\n got  %v\n want %v", got, want)
	}
	// A type only the enumeration (_services._dns-sd._udp) revealed.
	if !lantest.WaitFor(20*time.Second, func() bool {
		d, err := inv.Device(context.Background(), "3c:22:fb:aa:bb:01")
		return err == nil && slices.Contains(d.Services, "_ssh._tcp")
	}) {
		d, _ := inv.Device(context.Background(), "3c:22:fb:aa:bb:01")
		t.Errorf("services of the MacBook: %q, want _ssh._tcp found through the enumeration", d.Services)
	}
	devs, _ := inv.Devices(context.Background())
	for _, d := range devs {
		t.Logf("%s %-20s %-28s %-20s %d%% (%s) neighbour %s, services %v", d.ID, d.DisplayName(), d.VendorLabel("fr"),
			d.Class.Label("fr"), d.ClassConfidence, d.ClassReason, d.Neighbour, d.Services)
	}
	// Every document of this LAN validates.
	sch := glpiSchema(t)
	for _, d := range devs {
		doc, err := inv.GLPIDocument(d)
		if err != nil {
			t.Fatal(err)
		}
		validateGLPI(t, sch, doc)
	}

	// The display leaves the LAN: absent after the timeout, the others
	// stay present.
	display := devices[2]
	display.stopTalking() // its socket would keep the namespace alive
	display.ns.Remove()
	left := time.Now()
	wantGone := func() bool {
		g := snapshot()
		return !g[display.mac].present && g["00:80:77:12:34:56"].present && g["3c:22:fb:aa:bb:01"].present && g["5a:1e:2d:3c:4b:5a"].present
	}
	if !lantest.WaitFor(40*time.Second, wantGone) {
		dd, _ := inv.Device(context.Background(), display.mac)
		t.Fatalf("after the display left %v ago: %v\nlast seen %v (%s ago) neighbour %s\n%s", time.Since(left), snapshot(),
			dd.LastSeen, time.Since(dd.LastSeen), dd.Neighbour, box.MustRun("ip", "-s", "neigh"))
	}
	if after := time.Since(left); after < 8*time.Second {
		t.Errorf("the display went absent %v after leaving, before the presence timeout", after)
	}
	if !lantest.WaitFor(10*time.Second, func() bool {
		evMu.Lock()
		defer evMu.Unlock()
		return slices.Contains(evs, "left "+display.mac)
	}) {
		t.Errorf("no left event for the display")
	}
	evMu.Lock()
	for _, d := range devices {
		if !slices.Contains(evs, "appeared "+d.mac) {
			t.Errorf("no appeared event for %s: %q", d.name, evs)
		}
	}
	evMu.Unlock()
	ivs, err := inv.Presence(context.Background(), display.mac, time.Now().Add(-time.Hour), time.Now())
	if err != nil || len(ivs) != 1 || ivs[0].Open {
		t.Errorf("presence of the display: %+v, %v; want one closed interval", ivs, err)
	}
	if err := stop(); err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// udpEcho answers UDP datagrams on addr inside ns, so that the box sends
// to every device that talks to it (its neighbour entries then get
// confirmed, as with ping, which this machine lacks).
func udpEcho(t *testing.T, ns *lantest.NS, addr string) func() {
	t.Helper()
	var conn *net.UDPConn
	err := ns.Do(func() error {
		a, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			return err
		}
		conn, err = net.ListenUDP("udp4", a)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			conn.WriteToUDP(buf[:n], from)
		}
	}()
	return func() { conn.Close() }
}

// talkToBox sends a datagram to the box twice a second from ns until the
// returned function or the end of the test stops it.
func talkToBox(t *testing.T, ns *lantest.NS, box string) func() {
	t.Helper()
	var conn *net.UDPConn
	err := ns.Do(func() error {
		a, err := net.ResolveUDPAddr("udp4", box)
		if err != nil {
			return err
		}
		conn, err = net.DialUDP("udp4", nil, a)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		buf := make([]byte, 64)
		for {
			conn.Write([]byte("ping " + strings.Repeat(".", 8)))
			conn.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
			conn.Read(buf)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	stop := sync.OnceFunc(func() { close(done); conn.Close() })
	t.Cleanup(stop)
	return stop
}
