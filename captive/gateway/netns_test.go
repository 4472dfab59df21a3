package gateway

// Network-namespace helpers for the tests of this package (a shared kit,
// services/internal/netnstest, is out of reach from captive/).

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needPeers skips (or fails under PREAU_REQUIRE_PEERS=1) unless the test
// runs as root with the named tools.
func needPeers(t *testing.T, tools ...string) {
	t.Helper()
	miss := func(msg string) {
		t.Helper()
		if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		miss("needs root (network namespaces and nftables); CI runs it as root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			miss(fmt.Sprintf("needs %s on PATH (Debian packages iproute2, nftables, curl, bind9-dnsutils, iputils-ping)", tool))
		}
	}
}

var nsCount atomic.Int64

// newNS creates a network namespace with lo up, removed in t.Cleanup.
// Names carry the pid and a counter so that parallel runs never clash.
func newNS(t *testing.T, role string) string {
	t.Helper()
	name := fmt.Sprintf("pgw%d-%d-%s", os.Getpid(), nsCount.Add(1), role)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

func nsPath(ns string) string { return "/run/netns/" + ns }

// run runs a command and fails the test if it fails; it returns stdout.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

func runErr(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// inNS runs fn on an OS thread moved into namespace ns. The thread is
// never moved back: it stays locked and Go discards it when the goroutine
// ends. Sockets made by fn keep the namespace for their whole life.
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(nsPath(ns))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// listen opens a TCP listener inside ns, closed in t.Cleanup.
func listen(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := inNS(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// listenUDP opens a UDP socket inside ns, closed in t.Cleanup.
func listenUDP(t *testing.T, ns, addr string) net.PacketConn {
	t.Helper()
	var pc net.PacketConn
	err := inNS(ns, func() (err error) {
		pc, err = net.ListenPacket("udp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen udp %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// dial connects from inside ns.
func dial(ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNS(ns, func() (err error) {
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}

// macOf returns the MAC address of an interface inside ns.
func macOf(t *testing.T, ns, ifname string) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	err := inNS(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mac
}
