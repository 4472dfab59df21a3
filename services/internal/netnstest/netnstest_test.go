package netnstest

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVethAndDo(t *testing.T) {
	a := NewNS(t, "pnt-a")
	b := NewNS(t, "pnt-b")
	Veth(t, a, "left0", netip.MustParsePrefix("10.231.0.1/24"), b, "right0", netip.MustParsePrefix("10.231.0.2/24"))

	// Do runs on a thread inside the namespace and leaves the caller's alone.
	var inside []string
	if err := a.Do(func() error {
		ifs, err := net.Interfaces()
		for _, ifi := range ifs {
			inside = append(inside, ifi.Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(inside, ","), "lo,left0"; got != want {
		t.Errorf("interfaces inside %s: got %s, want %s", a.Name, got, want)
	}
	if _, err := net.InterfaceByName("left0"); err == nil {
		t.Errorf("left0 is visible outside the namespace: Do leaked its namespace")
	}

	// A socket opened inside Do stays in the namespace after Do returns,
	// and is reachable from the other namespace only.
	var ln net.Listener
	if err := a.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "10.231.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	var got []byte
	if err := b.Do(func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		got, err = io.ReadAll(c)
		return err
	}); err != nil {
		t.Fatalf("dial from %s: %v", b.Name, err)
	}
	if string(got) != "hello" {
		t.Errorf("read from the listener inside %s: got %q, want %q", a.Name, got, "hello")
	}

	if got := a.Interface("left0").Name; got != "left0" {
		t.Errorf("Interface: got %q, want left0", got)
	}
}

func TestDoReportsErrorsAndPanics(t *testing.T) {
	ns := NewNS(t, "pnt-e")
	if err := ns.Do(func() error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic inside Do: got %v, want an error naming it", err)
	}
	if err := ns.Do(func() error { return io.EOF }); err != io.EOF {
		t.Errorf("error inside Do: got %v, want io.EOF", err)
	}
}

func TestResolvConfIsPrivate(t *testing.T) {
	ns := NewNS(t, "pnt-r")
	p := ns.ResolvConf()
	ns.MustRun("sh", "-c", "echo 'nameserver 10.9.9.9' > /etc/resolv.conf")
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "10.9.9.9") {
		t.Errorf("write inside the namespace did not reach %s: %q", p, got)
	}
	if host, _ := os.ReadFile("/etc/resolv.conf"); strings.Contains(string(host), "10.9.9.9") {
		t.Fatalf("the host's /etc/resolv.conf was changed")
	}
	if got, want := filepath.Dir(p), filepath.Join("/etc/netns", ns.Name); got != want {
		t.Errorf("resolv.conf folder: got %s, want %s", got, want)
	}
}

// Two avahi-daemons at once, each on its own private bus, see each other.
func TestAvahiPrivateBuses(t *testing.T) {
	a := NewNS(t, "pnt-m")
	b := NewNS(t, "pnt-n")
	Veth(t, a, "m0", netip.MustParsePrefix("10.232.0.1/24"), b, "n0", netip.MustParsePrefix("10.232.0.2/24"))
	box := StartAvahi(t, a, "m0", "kit-box")
	tablet := StartAvahi(t, b, "n0", "kit-tablet")
	RequireTool(t, "avahi-publish")
	box.Start(t, "avahi-publish", "-s", "Kit service", "_preaukit._tcp", "4242", "k=v")

	var out []byte
	ok := WaitFor(10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, _ = tablet.Command(ctx, "avahi-browse", "-rtp", "_preaukit._tcp").CombinedOutput()
		return strings.Contains(string(out), ";4242;")
	})
	if !ok {
		t.Fatalf("avahi-browse in %s did not see the service published in %s: %s", b.Name, a.Name, out)
	}
	if !strings.Contains(string(out), `"k=v"`) || !strings.Contains(string(out), "10.232.0.1") {
		t.Errorf("avahi-browse: got %s, want TXT k=v and address 10.232.0.1", out)
	}
	if _, err := os.Stat("/run/avahi-daemon/pid"); err == nil {
		t.Logf("note: the host has its own /run/avahi-daemon/pid; the test daemons did not use it")
	}
}
