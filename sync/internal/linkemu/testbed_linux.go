package linkemu

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestbedConfig shapes the emulated uplink of a Testbed.
type TestbedConfig struct {
	// Up is the path from the box to the server, Down the way back.
	Up, Down Path
	// Seed of the loss draws.
	Seed uint64
	// TBF moves the rate and the bottleneck queue of each direction into
	// the kernel: a `tc … tbf` qdisc on the egress of the TUN device, with
	// Path.QueueBytes as its limit. The user-space link then adds only
	// delay and loss.
	TBF bool
}

// Testbed is three network namespaces: box —veth— uplink —emulated link—
// server. The box reaches the server at ServerAddr through the uplink
// namespace, which routes between its veth and its TUN device; the
// emulated link joins the uplink's TUN device to the server's.
type Testbed struct {
	Box, Uplink, Server *Netns
	BoxAddr, ServerAddr netip.Addr
	Link                *Link
}

// Addresses inside the testbed's own namespaces; they never reach the
// machine's real interfaces, so parallel testbeds may reuse them.
var (
	boxAddr    = netip.MustParseAddr("10.99.1.2")
	lanGateway = netip.MustParseAddr("10.99.1.1")
	wanUplink  = netip.MustParseAddr("10.99.2.1")
	serverAddr = netip.MustParseAddr("10.99.2.2")
)

var testbedSeq atomic.Int64

// RequireRoot skips t unless the process is root and has the tools a
// Testbed uses; with PREAU_REQUIRE_PEERS=1 (CI) it fails instead.
func RequireRoot(t testing.TB) {
	t.Helper()
	missing := ""
	switch {
	case os.Geteuid() != 0:
		missing = "root (network namespaces and TUN devices)"
	default:
		if _, err := os.Stat("/dev/net/tun"); err != nil {
			missing = "/dev/net/tun"
		}
		for _, tool := range []string{"ip", "tc", "sysctl"} {
			if _, err := exec.LookPath(tool); err != nil {
				missing = tool
			}
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
		t.Fatalf("emulated link needs %s (PREAU_REQUIRE_PEERS=1)", missing)
	}
	t.Skipf("emulated link needs %s; skipping (CI runs it as root with PREAU_REQUIRE_PEERS=1)", missing)
}

// StartTestbed builds the namespaces and starts the link; t.Cleanup
// stops it and removes everything. It calls RequireRoot first.
func StartTestbed(t testing.TB, cfg TestbedConfig) *Testbed {
	t.Helper()
	RequireRoot(t)
	prefix := fmt.Sprintf("pble%d-%d-", os.Getpid(), testbedSeq.Add(1))
	tb := &Testbed{BoxAddr: boxAddr, ServerAddr: serverAddr}
	mk := func(role string) *Netns {
		ns, err := NewNetns(prefix + role)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := ns.Delete(); err != nil {
				t.Error(err)
			}
		})
		return ns
	}
	tb.Box, tb.Uplink, tb.Server = mk("box"), mk("up"), mk("srv")
	must := func(ns *Netns, args ...string) {
		t.Helper()
		if err := ns.Run(args...); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []*Netns{tb.Box, tb.Uplink, tb.Server} {
		// No IPv6: router solicitations and MLD reports would be noise
		// in the link's counters.
		must(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
		must(ns, "ip", "link", "set", "lo", "up")
	}
	must(tb.Uplink, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	must(tb.Box, "ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan0", "netns", tb.Uplink.Name)
	must(tb.Box, "ip", "addr", "add", boxAddr.String()+"/24", "dev", "lan0")
	must(tb.Box, "ip", "link", "set", "lan0", "up")
	must(tb.Box, "ip", "route", "add", "default", "via", lanGateway.String())
	must(tb.Uplink, "ip", "addr", "add", lanGateway.String()+"/24", "dev", "lan0")
	must(tb.Uplink, "ip", "link", "set", "lan0", "up")

	up, err := OpenTUN(tb.Uplink, "wan0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := OpenTUN(tb.Server, "wan0")
	if err != nil {
		up.Close()
		t.Fatal(err)
	}
	link := cfg
	if cfg.TBF {
		link.Up.Rate, link.Down.Rate = 0, 0
	}
	tb.Link, err = New(Config{AB: link.Up, BA: link.Down, Seed: cfg.Seed}, up, srv)
	if err != nil {
		up.Close()
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tb.Link.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("emulated link: %v", err)
		}
	})
	for _, side := range []struct {
		ns         *Netns
		addr, peer netip.Addr
		path       Path
	}{{tb.Uplink, wanUplink, serverAddr, cfg.Up}, {tb.Server, serverAddr, wanUplink, cfg.Down}} {
		must(side.ns, "ip", "addr", "add", side.addr.String()+"/24", "dev", "wan0")
		must(side.ns, "ip", "link", "set", "wan0", "mtu", "1500", "up")
		if cfg.TBF && side.path.Rate > 0 {
			limit := side.path.QueueBytes
			if limit == 0 {
				limit = DefaultQueueBytes
			}
			must(side.ns, "tc", "qdisc", "add", "dev", "wan0", "root", "tbf",
				"rate", strconv.FormatInt(side.path.Rate, 10)+"bit", "burst", "3028", "limit", strconv.Itoa(limit))
		}
	}
	must(tb.Server, "ip", "route", "add", "default", "via", wanUplink.String())
	return tb
}

// DialBox opens a connection from inside the box namespace; it has the
// signature of net.Dialer.DialContext.
func (tb *Testbed) DialBox(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := tb.Box.Do(func() error {
		var err error
		d := net.Dialer{Timeout: 30 * time.Second}
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// ListenServer listens inside the server namespace, e.g. on
// ServerAddr:0.
func (tb *Testbed) ListenServer(network, address string) (net.Listener, error) {
	var l net.Listener
	err := tb.Server.Do(func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// ListenPacket opens a packet socket inside ns (e.g. a UDP echo server
// in Server, or the box's end of a ping train).
func ListenPacket(ns *Netns, network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := ns.Do(func() error {
		var err error
		c, err = net.ListenPacket(network, address)
		return err
	})
	return c, err
}
