package captive

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"preau/captive/internal/neigh"
)

var nsCounter atomic.Int64

func needNetns(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root to create network namespaces"
	}
	for _, tool := range []string{"ip", "curl"} {
		if _, err := exec.LookPath(tool); err != nil && why == "" {
			why = "needs " + tool
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// listenIn opens a TCP listener on addr inside the named namespace.
func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // this thread must not go back to the pool in the wrong namespace
		}
	}()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestTabletInNamespace plays a tablet in its own network namespace, on a
// veth link to the box's namespace, with the kernel's real neighbour
// table: the tablet is redirected, accepts the charter over IPv4 with curl,
// and is then recognised by its MAC address over IPv6 too.
func TestTabletInNamespace(t *testing.T) {
	needNetns(t)
	n := nsCounter.Add(1)
	box, tab := fmt.Sprintf("cpBox%d_%d", os.Getpid(), n), fmt.Sprintf("cpTab%d_%d", os.Getpid(), n)
	sh(t, "ip", "netns", "add", box)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", box).Run() })
	sh(t, "ip", "netns", "add", tab)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", tab).Run() })
	sh(t, "ip", "-n", box, "link", "add", "vbox", "type", "veth", "peer", "name", "vtab", "netns", tab)
	sh(t, "ip", "-n", box, "addr", "add", "192.0.2.1/24", "dev", "vbox")
	sh(t, "ip", "-n", box, "addr", "add", "2001:db8::1/64", "dev", "vbox", "nodad")
	sh(t, "ip", "-n", tab, "addr", "add", "192.0.2.2/24", "dev", "vtab")
	sh(t, "ip", "-n", tab, "addr", "add", "2001:db8::2/64", "dev", "vtab", "nodad")
	for _, l := range [][2]string{{box, "vbox"}, {tab, "vtab"}, {box, "lo"}, {tab, "lo"}} {
		sh(t, "ip", "-n", l[0], "link", "set", l[1], "up")
	}
	out := sh(t, "ip", "-n", tab, "-o", "link", "show", "vtab")
	tabletMAC := strings.Fields(out[strings.Index(out, "link/ether"):])[1]

	e := newEnv(t, charterOn())
	table := neigh.New(neigh.Options{Namespace: box})
	t.Cleanup(table.Close)
	c, err := New(charterOn(), Deps{DB: e.db, Now: e.clock.Now, Neighbours: table, OnChange: e.rec.OnChange})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	portal := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, portalBody) })
	srv := &http.Server{Handler: c.Handler(portal), ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	t.Cleanup(func() { srv.Close() })
	for _, addr := range []string{"192.0.2.1:8080", "[2001:db8::1]:8080"} {
		go srv.Serve(listenIn(t, box, addr))
	}

	curl := func(args ...string) (status, location, body string) {
		t.Helper()
		a := append([]string{"netns", "exec", tab, "curl", "-sS", "--noproxy", "*", "--max-time", "10",
			"-w", "\n%{http_code} %{redirect_url}"}, args...)
		out, err := exec.Command("ip", a...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		s := string(out)
		i := strings.LastIndexByte(s, '\n')
		status, location, _ = strings.Cut(s[i+1:], " ")
		return status, location, s[:i]
	}
	apple := func(boxAddr string) (string, string, string) {
		return curl("-A", "CaptiveNetworkSupport-355.200.27 wispr", "--resolve", "captive.apple.com:8080:"+boxAddr,
			"http://captive.apple.com:8080/hotspot-detect.html")
	}

	if st, loc, _ := apple("192.0.2.1"); st != "302" || loc != "http://preau.lan/charte" {
		t.Fatalf("probe before acceptance: %s %s, want 302 to the charter", st, loc)
	}
	_, _, page := curl("http://192.0.2.1:8080/charte")
	m := tokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no token in the charter page:\n%s", page)
	}
	if st, loc, _ := curl("-d", "t="+m[1], "http://192.0.2.1:8080/charte"); st != "303" || !strings.HasSuffix(loc, "/") {
		t.Fatalf("accept: %s %s, want 303 to the portal home", st, loc)
	}
	for _, boxAddr := range []string{"192.0.2.1", "[2001:db8::1]"} {
		st, _, body := apple(boxAddr)
		if st != "200" || body != "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>\n" {
			t.Errorf("probe via %s after acceptance: %s %q, want Apple's Success page", boxAddr, st, body)
		}
	}
	devs, err := c.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 {
		t.Fatalf("Devices = %+v, want the tablet once", devs)
	}
	d := devs[0]
	if d.MAC != tabletMAC || !d.Accepted ||
		!slices.Contains(d.Addrs, netip.MustParseAddr("192.0.2.2")) || !slices.Contains(d.Addrs, netip.MustParseAddr("2001:db8::2")) {
		t.Fatalf("device = %+v, want MAC %s accepted at both addresses", d, tabletMAC)
	}
}
