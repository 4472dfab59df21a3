package dhcp

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"preau/services/internal/netnstest"
)

// These tests run our server in a "box" namespace and real DHCP clients
// (busybox udhcpc, ISC dhclient) or a rival server in a "tablet" namespace,
// joined by a veth pair. They need root; CI runs them with
// PREAU_REQUIRE_PEERS=1.

const (
	boxIf    = "lan0"
	tabletIf = "wlan0"
	portal   = "https://preau.example.fr/captive-portal/api"
)

type lan struct {
	box, tablet *netnstest.NS
	dir         string
}

// newLAN makes the two namespaces; the tablet end has no address unless
// tabletAddr is valid.
func newLAN(t *testing.T, tabletAddr netip.Prefix) *lan {
	t.Helper()
	netnstest.RequireRoot(t)
	l := &lan{
		box:    netnstest.NewNS(t, "pdh-box"),
		tablet: netnstest.NewNS(t, "pdh-tab"),
		dir:    t.TempDir(),
	}
	netnstest.Veth(t, l.box, boxIf, netip.MustParsePrefix("10.234.0.1/24"), l.tablet, tabletIf, tabletAddr)
	// DHCP clients may rewrite resolv.conf: give them the namespace's own.
	l.tablet.ResolvConf()
	return l
}

func lanConfig() Config {
	return Config{
		Interface:  boxIf,
		ServerIP:   addr("10.234.0.1"),
		Subnet:     netip.MustParsePrefix("10.234.0.0/24"),
		PoolStart:  addr("10.234.0.100"),
		PoolEnd:    addr("10.234.0.120"),
		LeaseTime:  time.Hour,
		CaptiveURI: portal,
		ProbeWait:  500 * time.Millisecond,
	}
}

// running is a Serve call in a namespace.
type running struct {
	srv   *Server
	ready chan struct{}
	done  chan error
	stop  func() error
}

// serveIn starts srv.Serve inside ns and returns at once; ready closes when
// the server logs that it serves.
func serveIn(t *testing.T, ns *netnstest.NS, cfg Config, dbPath string) *running {
	t.Helper()
	r := &running{ready: make(chan struct{}), done: make(chan error, 1)}
	log := slog.New(&readyHandler{Handler: slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}), ready: r.ready})
	srv, err := New(cfg, openDB(t, dbPath), log)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- ns.Do(func() error { return srv.Serve(ctx) }) }()
	r.stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-r.done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("Serve did not return 10 s after its context ended")
		}
	})
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *running) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-r.ready:
	case err := <-r.done:
		t.Fatalf("Serve returned before serving: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server not serving after 10 s")
	}
}

// readyHandler closes ready when the "dhcp serving" line is logged.
type readyHandler struct {
	slog.Handler
	ready chan struct{}
	once  sync.Once
}

func (h *readyHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "dhcp serving" {
		h.once.Do(func() { close(h.ready) })
	}
	return h.Handler.Handle(ctx, r)
}

// udhcpc runs busybox udhcpc once in the tablet namespace (-q: quit once
// bound, keeping the lease) and returns the environment its script got for
// the "bound" event.
func (l *lan) udhcpc(t *testing.T, extra ...string) map[string]string {
	t.Helper()
	netnstest.RequireTool(t, "udhcpc")
	script := filepath.Join(l.dir, "udhcpc.sh")
	out := filepath.Join(l.dir, "udhcpc.bound")
	os.Remove(out)
	writeScript(t, script, fmt.Sprintf("#!/bin/sh\n[ \"$1\" = bound ] && env > %q\nexit 0\n", out))
	args := append([]string{"-f", "-q", "-n", "-i", tabletIf, "-O", "114", "-s", script, "-t", "5", "-T", "1"}, extra...)
	res, err := runWithTimeout(l.tablet.Exec("udhcpc", args...), 20*time.Second)
	if err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, res)
	}
	return readEnv(t, out)
}

// dhclient runs ISC dhclient in the tablet namespace with a private
// configuration, lease file and script, until its script sees BOUND.
func (l *lan) dhclient(t *testing.T, hostName string) map[string]string {
	t.Helper()
	netnstest.RequireTool(t, "dhclient")
	script := filepath.Join(l.dir, "dhclient.sh")
	out := filepath.Join(l.dir, "dhclient.BOUND")
	os.Remove(out)
	writeScript(t, script, fmt.Sprintf("#!/bin/sh\n[ \"$reason\" = BOUND ] && env > %q\nexit 0\n", out))
	conf := filepath.Join(l.dir, "dhclient.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`option captive-portal code 114 = text;
send host-name %q;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, captive-portal;
`, hostName)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := l.tablet.StartProcess("dhclient", "-d", "-1", "-v", "-cf", conf,
		"-lf", filepath.Join(l.dir, "dhclient.leases"), "-pf", filepath.Join(l.dir, "dhclient.pid"),
		"-sf", script, tabletIf)
	defer p.Stop()
	if !netnstest.WaitFor(20*time.Second, func() bool { _, err := os.Stat(out); return err == nil || p.Exited() }) {
		t.Fatalf("dhclient got no lease in 20 s:\n%s", p.Output())
	}
	netnstest.WaitFor(time.Second, func() bool { env := readEnvQuiet(out); return env["reason"] == "BOUND" })
	env := readEnvQuiet(out)
	if env == nil {
		t.Fatalf("dhclient exited without a lease:\n%s", p.Output())
	}
	return env
}

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	env := readEnvQuiet(path)
	if env == nil {
		t.Fatalf("no environment dump at %s", path)
	}
	return env
}

func readEnvQuiet(path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env
}

// runWithTimeout runs cmd and kills it (by its PID) after d.
func runWithTimeout(cmd *exec.Cmd, d time.Duration) (string, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	timer := time.AfterFunc(d, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.String(), err
}

// decodeOpt reads udhcpc's optNNN variable: hex bytes of the option.
func decodeOpt(t *testing.T, env map[string]string, key string) string {
	t.Helper()
	raw, ok := env[key]
	if !ok {
		t.Fatalf("udhcpc environment has no %s: %v", key, env)
	}
	b, err := hex.DecodeString(raw)
	if err != nil {
		return raw // a udhcpc that knows the option prints it as text
	}
	return string(b)
}

func TestRealClientsGetLeases(t *testing.T) {
	l := newLAN(t, netip.Prefix{})
	cfg := lanConfig()
	const staticMAC = "02:00:00:00:01:99"
	cfg.Static = map[string]netip.Addr{staticMAC: addr("10.234.0.50")}
	r := serveIn(t, l.box, cfg, filepath.Join(l.dir, "preau.db"))
	r.waitReady(t)

	t.Run("udhcpc", func(t *testing.T) {
		l.tablet.SetMAC(tabletIf, mustMAC("02:00:00:00:01:01"))
		env := l.udhcpc(t, "-x", "hostname:tablette-1")
		want := map[string]string{
			"ip":       "10.234.0.100",
			"subnet":   "255.255.255.0",
			"dns":      "10.234.0.1",
			"domain":   "preau.lan",
			"serverid": "10.234.0.1",
			"lease":    "3600",
		}
		for k, w := range want {
			if got := env[k]; got != w {
				t.Errorf("udhcpc $%s: got %q, want %q", k, got, w)
			}
		}
		if got := decodeOpt(t, env, "opt114"); got != portal {
			t.Errorf("udhcpc option 114: got %q, want %q", got, portal)
		}
		if _, ok := env["router"]; ok {
			t.Errorf("udhcpc got a router %q; the box is not a gateway by default", env["router"])
		}
	})

	t.Run("dhclient", func(t *testing.T) {
		l.tablet.SetMAC(tabletIf, mustMAC("02:00:00:00:01:02"))
		env := l.dhclient(t, "tablette-2")
		want := map[string]string{
			"new_ip_address":             "10.234.0.101",
			"new_subnet_mask":            "255.255.255.0",
			"new_domain_name_servers":    "10.234.0.1",
			"new_domain_name":            "preau.lan",
			"new_dhcp_server_identifier": "10.234.0.1",
			"new_captive_portal":         portal,
		}
		for k, w := range want {
			if got := strings.Trim(env[k], "'"); got != w {
				t.Errorf("dhclient $%s: got %q, want %q", k, got, w)
			}
		}
	})

	t.Run("static lease", func(t *testing.T) {
		l.tablet.SetMAC(tabletIf, mustMAC(staticMAC))
		env := l.udhcpc(t)
		if got := env["ip"]; got != "10.234.0.50" {
			t.Errorf("static client: got %q, want 10.234.0.50", got)
		}
	})

	leases, err := r.srv.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, le := range leases {
		got = append(got, fmt.Sprintf("%s %s %s static=%v", le.IP, le.MAC, le.Hostname, le.Static))
	}
	want := []string{
		"10.234.0.50 02:00:00:00:01:99  static=true",
		"10.234.0.100 02:00:00:00:01:01 tablette-1 static=false",
		"10.234.0.101 02:00:00:00:01:02 tablette-2 static=false",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Leases:\n got  %q\n want %q", got, want)
	}
	if err := r.stop(); err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestRestartKeepsLeases(t *testing.T) {
	l := newLAN(t, netip.Prefix{})
	db := filepath.Join(l.dir, "preau.db")
	mac1, mac2 := mustMAC("02:00:00:00:02:01"), mustMAC("02:00:00:00:02:02")

	first := serveIn(t, l.box, lanConfig(), db)
	first.waitReady(t)
	l.tablet.SetMAC(tabletIf, mac1)
	if got := l.udhcpc(t)["ip"]; got != "10.234.0.100" {
		t.Fatalf("first lease: got %q, want 10.234.0.100", got)
	}
	if err := first.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}

	second := serveIn(t, l.box, lanConfig(), db)
	leases, err := second.srv.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 1 || leases[0].MAC != mac1.String() || leases[0].IP != addr("10.234.0.100") {
		t.Fatalf("leases after restart: got %+v, want %s on 10.234.0.100", leases, mac1)
	}
	second.waitReady(t)
	l.tablet.SetMAC(tabletIf, mac2)
	if got := l.udhcpc(t)["ip"]; got != "10.234.0.101" {
		t.Errorf("another client after restart: got %q, want 10.234.0.101 (10.234.0.100 is still leased)", got)
	}
	l.tablet.SetMAC(tabletIf, mac1)
	if got := l.udhcpc(t)["ip"]; got != "10.234.0.100" {
		t.Errorf("first client after restart: got %q, want its lease 10.234.0.100", got)
	}
}

// A second DHCP server on the segment makes ours refuse to start.
func TestRefusesWhenAnotherServerAnswers(t *testing.T) {
	rivals := []struct {
		name  string
		start func(t *testing.T, l *lan)
	}{
		{"busybox udhcpd", func(t *testing.T, l *lan) {
			netnstest.RequireTool(t, "busybox")
			conf := filepath.Join(l.dir, "udhcpd.conf")
			leases := filepath.Join(l.dir, "udhcpd.leases")
			os.WriteFile(leases, nil, 0o644)
			os.WriteFile(conf, []byte(fmt.Sprintf("start 10.234.0.150\nend 10.234.0.160\ninterface %s\nlease_file %s\npidfile %s\nopt subnet 255.255.255.0\n",
				tabletIf, leases, filepath.Join(l.dir, "udhcpd.pid"))), 0o644)
			// -a: ARP-check offered addresses for 100 ms instead of 2 s.
			p := l.tablet.StartProcess("busybox", "udhcpd", "-f", "-a", "100", conf)
			time.Sleep(300 * time.Millisecond)
			if p.Exited() {
				t.Fatalf("udhcpd did not start: %s", p.Output())
			}
		}},
		{"a second Préau", func(t *testing.T, l *lan) {
			cfg := lanConfig()
			cfg.Interface = tabletIf
			cfg.ServerIP = addr("10.234.0.2")
			cfg.PoolStart, cfg.PoolEnd = addr("10.234.0.200"), addr("10.234.0.210")
			serveIn(t, l.tablet, cfg, filepath.Join(l.dir, "rival.db")).waitReady(t)
		}},
	}
	for _, rival := range rivals {
		t.Run(rival.name, func(t *testing.T) {
			l := newLAN(t, netip.MustParsePrefix("10.234.0.2/24"))
			rival.start(t, l)
			cfg := lanConfig()
			cfg.ProbeWait = 2 * time.Second
			r := serveIn(t, l.box, cfg, filepath.Join(l.dir, "preau.db"))
			var err error
			select {
			case err = <-r.done:
			case <-r.ready:
				t.Fatal("our server started although another one answers")
			case <-time.After(10 * time.Second):
				t.Fatal("Serve neither refused nor started in 10 s")
			}
			r.done <- err // for the cleanup
			var ose *OtherServerError
			if !errors.Is(err, ErrOtherServer) || !errors.As(err, &ose) {
				t.Fatalf("Serve: got %v, want ErrOtherServer", err)
			}
			if ose.Server != addr("10.234.0.2") || ose.Interface != boxIf {
				t.Errorf("other server: got %v on %s, want 10.234.0.2 on %s", ose.Server, ose.Interface, boxIf)
			}
			wantFR := "un autre serveur DHCP (10.234.0.2) répond déjà sur lan0 : le serveur DHCP de Préau ne démarre pas"
			if !strings.HasPrefix(err.Error(), wantFR) {
				t.Errorf("message: got %q, want it to start with %q", err.Error(), wantFR)
			}
			// Nothing bound port 67 in the box namespace.
			err = l.box.Do(func() error {
				c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: 67})
				if err != nil {
					return err
				}
				return c.Close()
			})
			if err != nil {
				t.Errorf("port 67 still taken after the refusal: %v", err)
			}
		})
	}
}
