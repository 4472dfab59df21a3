package neigh

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// needRoot skips (or fails under PREAU_REQUIRE_PEERS=1) when the test cannot
// create network namespaces.
func needRoot(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root to create network namespaces"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs the ip tool (iproute2)"
	} else if _, err := exec.LookPath("bash"); err != nil {
		why = "needs bash (its /dev/udp sends the packet that fills the neighbour table)"
	}
	if why == "" {
		return
	}
	if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

var nsCounter atomic.Int64

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// pair creates two namespaces joined by a veth pair, with an IPv4 and an
// IPv6 address on each end, and removes them at cleanup.
type pair struct{ a, b, macB string }

func newPair(t *testing.T) pair {
	t.Helper()
	n := nsCounter.Add(1)
	p := pair{a: fmt.Sprintf("pnA%d_%d", os.Getpid(), n), b: fmt.Sprintf("pnB%d_%d", os.Getpid(), n)}
	run(t, "ip", "netns", "add", p.a)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", p.a).Run() })
	run(t, "ip", "netns", "add", p.b)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", p.b).Run() })
	run(t, "ip", "-n", p.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", p.b)
	run(t, "ip", "-n", p.a, "addr", "add", "192.0.2.1/24", "dev", "va")
	run(t, "ip", "-n", p.b, "addr", "add", "192.0.2.2/24", "dev", "vb")
	run(t, "ip", "-n", p.a, "addr", "add", "2001:db8::1/64", "dev", "va", "nodad")
	run(t, "ip", "-n", p.b, "addr", "add", "2001:db8::2/64", "dev", "vb", "nodad")
	for _, ns := range []string{p.a, p.b} {
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "-n", p.a, "link", "set", "va", "up")
	run(t, "ip", "-n", p.b, "link", "set", "vb", "up")
	out := run(t, "ip", "-n", p.b, "-o", "link", "show", "vb")
	f := strings.Fields(out[strings.Index(out, "link/ether"):])
	p.macB = f[1]
	return p
}

// poke sends one UDP datagram from namespace ns to addr, which makes the
// kernel resolve addr's MAC (ARP or neighbour solicitation).
func poke(t *testing.T, ns, addr string) {
	t.Helper()
	run(t, "ip", "netns", "exec", ns, "bash", "-c", "echo x > /dev/udp/"+addr+"/9")
}

func TestMACInNamespace(t *testing.T) {
	needRoot(t)
	p := newPair(t)
	tab := New(Options{Namespace: p.a})
	defer tab.Close()

	ip4 := netip.MustParseAddr("192.0.2.2")
	if mac, ok := tab.MAC(ip4); ok {
		t.Fatalf("MAC(%s) before any traffic = %s, want unknown", ip4, mac)
	}
	if err := tab.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	tests := []struct{ addr string }{{"192.0.2.2"}, {"2001:db8::2"}}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			poke(t, p.a, tc.addr)
			ip := netip.MustParseAddr(tc.addr)
			var got net.HardwareAddr
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if err := tab.Refresh(); err != nil {
					t.Fatalf("Refresh: %v", err)
				}
				if mac, ok := tab.MAC(ip); ok {
					got = mac
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if got.String() != p.macB {
				t.Fatalf("MAC(%s) = %q, want %q (the peer's veth)", ip, got, p.macB)
			}
		})
	}
	// An IPv4-mapped form of the address names the same device.
	mapped := netip.AddrFrom16(ip4.As16())
	if mac, ok := tab.MAC(mapped); !ok || mac.String() != p.macB {
		t.Errorf("MAC(%s) = %v, %v; want %s", mapped, mac, ok, p.macB)
	}
	// The box's own address is not a neighbour.
	if mac, ok := tab.MAC(netip.MustParseAddr("192.0.2.1")); ok {
		t.Errorf("MAC(own address) = %s, want unknown", mac)
	}
}

// TestMissRefreshIsThrottled checks that misses within MissAge reuse the
// snapshot: a lookup of an address that appears later is not seen until
// the snapshot is old enough.
func TestMissRefreshIsThrottled(t *testing.T) {
	needRoot(t)
	p := newPair(t)
	now := time.Unix(1_700_000_000, 0)
	tab := New(Options{Namespace: p.a, Now: func() time.Time { return now }, MissAge: time.Second, MaxAge: time.Minute})
	defer tab.Close()
	ip := netip.MustParseAddr("192.0.2.2")
	if _, ok := tab.MAC(ip); ok {
		t.Fatal("known before traffic")
	}
	poke(t, p.a, "192.0.2.2")
	time.Sleep(200 * time.Millisecond) // let the ARP reply arrive
	if _, ok := tab.MAC(ip); ok {
		t.Fatal("a miss within MissAge refreshed the snapshot")
	}
	now = now.Add(2 * time.Second)
	if mac, ok := tab.MAC(ip); !ok || mac.String() != p.macB {
		t.Fatalf("after MissAge: MAC = %v, %v; want %s", mac, ok, p.macB)
	}
}

func TestUsable(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	tests := []struct {
		name  string
		state int
		mac   net.HardwareAddr
		want  bool
	}{
		{"reachable", 0x02, mac, true},
		{"stale", 0x04, mac, true},
		{"permanent", 0x80, mac, true},
		{"incomplete", 0x01, nil, false},
		{"failed", 0x20, mac, false},
		{"noarp zero", 0x40, net.HardwareAddr{0, 0, 0, 0, 0, 0}, false},
		{"none", 0x00, mac, false},
	}
	for _, tc := range tests {
		n := neighFor(tc.state, tc.mac)
		if got := usable(n); got != tc.want {
			t.Errorf("%s: usable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func neighFor(state int, mac net.HardwareAddr) netlink.Neigh {
	return netlink.Neigh{State: state, HardwareAddr: mac}
}
