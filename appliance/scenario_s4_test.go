package appliance

// Scenario S4 of issue 6 in network namespaces: the real preau binary in a
// "box" namespace with a LAN bridge, device namespaces on it (the
// technician's laptop, a printer announcing _ipp._tcp through avahi, a
// tablet that takes a DHCP lease), and headless Chromium whose every
// request leaves from the technician's laptop. Real peers only: Chromium
// and chromedriver, avahi-daemon on a private D-Bus, busybox udhcpc,
// axe-core, GLPI's JSON schema with a Go validator.
//
// Chromium runs in the test's namespace (chromedriver listens on its
// loopback); a small proxy on 127.0.0.1 opens its connections from inside
// the laptop's namespace, so the box sees the laptop's address and MAC,
// as it would see a technician's on the school LAN.

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"preau/appliance/internal/browsertest"
)

// Addresses of the scenario, all inside the namespaces the test creates.
const (
	s4BoxLAN     = "10.79.0.1"
	s4LaptopIP   = "10.79.0.20"
	s4LaptopMAC  = "02:00:00:79:00:20"
	s4PrinterIP  = "10.79.0.11"
	s4PrinterMAC = "00:80:77:79:00:11" // Brother's OUI
	s4TabletMAC  = "02:00:00:79:00:31"
	s4Printer    = "brother-cdi"
	s4Tablet     = "tablette-cm2"
	s4Password   = "Un mot de passe assez long"
	s4Bridge     = "br0"
)

type s4Scenario struct {
	t               *testing.T
	box             string
	dir, bin, cfg   string
	data            string
	preau           *s1Proc
	ports           int
	talkers         []func()
	avahiEnv        []string
	printer, tablet string
	laptop          string
	browser         *browsertest.Browser
	base            string
}

func TestScenarioS4Console(t *testing.T) {
	s1RequireRoot(t)
	for _, tool := range []string{"ip", "udhcpc", "dbus-daemon", "avahi-daemon", "avahi-publish"} {
		requirePeer(t, tool)
	}
	if _, err := os.Stat(browsertest.AxePath()); err != nil {
		msg := "axe-core missing: run make test-deps"
		if os.Getenv(browsertest.RequireEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	start := time.Now()
	s := &s4Scenario{t: t, dir: t.TempDir()}
	s.bin = preauBinary(t)
	s.box = s1NewNS(t, "s4box")
	s1Must(t, "ip", "-n", s.box, "link", "add", s4Bridge, "type", "bridge")
	s1Must(t, "ip", "-n", s.box, "addr", "add", s4BoxLAN+"/24", "dev", s4Bridge)
	s1Must(t, "ip", "-n", s.box, "link", "set", s4Bridge, "up")
	s.echo()
	s.laptop = s.device("s4lap", s4LaptopMAC, s4LaptopIP)
	s.startBox()

	// The printer is on the LAN before anyone looks: it announces itself
	// over mDNS and talks to the box.
	s.printer = s.device("s4prn", s4PrinterMAC, s4PrinterIP)
	s.publishPrinter()
	s.talk(s.printer)

	s.browser = browsertest.Start(t, browsertest.WithWindow(1280, 1000),
		browsertest.WithArgs("--proxy-server=http://"+s.proxy(s.laptop)))
	s.base = "http://" + s4BoxLAN
	t.Logf("setup: box, laptop and printer namespaces, preau and Chromium up in %v", time.Since(start).Round(time.Millisecond))

	s.setUp()
	s.deviceAppearsLive()
	s.glpiExport()
	s.energy()
	s.cli()
	if d := time.Since(start); d > 2*time.Minute {
		t.Errorf("scenario took %v, want under 2 minutes", d)
	} else {
		t.Logf("scenario S4 done in %v", d.Round(time.Millisecond))
	}
}

// device creates a namespace joined to the box's bridge, with its own MAC
// and, when ip is set, a static address.
func (s *s4Scenario) device(role, mac, ip string) string {
	t := s.t
	ns := s1NewNS(t, role)
	s.ports++
	port := fmt.Sprintf("vb%d", s.ports)
	s1Must(t, "ip", "link", "add", port, "netns", s.box, "type", "veth", "peer", "name", "eth0", "netns", ns)
	s1Must(t, "ip", "-n", s.box, "link", "set", port, "master", s4Bridge)
	s1Must(t, "ip", "-n", s.box, "link", "set", port, "up")
	s1Must(t, "ip", "-n", ns, "link", "set", "eth0", "address", mac)
	if ip != "" {
		s1Must(t, "ip", "-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
	}
	s1Must(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	return ns
}

func (s *s4Scenario) startBox() {
	t := s.t
	s.data = filepath.Join(s.dir, "data")
	s.cfg = filepath.Join(s.dir, "preau.toml")
	// Today and tomorrow (in the school's zone) are closed days, so that
	// now is out of school hours even across midnight: every device
	// present for more than left_on_after raises a "left on" alert.
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(paris)
	day := func(t time.Time) string { return strings.ToLower(t.Weekday().String()[:3]) }
	conf := fmt.Sprintf(`version = 1

[box]
name = "École Jean-Macé"
uai = "0350002B"

[http]
listen = [":80"]
shutdown_timeout = "2s"

[uplink]
probe_urls = []

[log]
level = "debug"
format = "text"

[dns]
listen = [":53"]
addresses = [%q]
upstreams = ["127.0.0.1:9"]
lan_prefixes = ["10.79.0.0/24"]

[dhcp]
enabled = true
interface = %q
server_ip = %q
subnet = "10.79.0.0/24"
pool_start = "10.79.0.100"
pool_end = "10.79.0.150"

[energy]
sample_period = "1s"
left_on_after = "2s"

[energy.school_hours]
%s = "-"
%s = "-"
`, s4BoxLAN, s4Bridge, s4BoxLAN, day(now), day(now.AddDate(0, 0, 1)))
	if err := os.WriteFile(s.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.preau = s1Start(t, "preau run", exec.Command("ip", "netns", "exec", s.box, s.bin, "run", "--config", s.cfg, "--data", s.data))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("preau log:\n%s", s.preau.out.String())
		}
	})
	if !waitUntil(20*time.Second, 100*time.Millisecond, func() bool {
		return s.preau.exited() || strings.Contains(s.preau.out.String(), "dhcp serving")
	}) || s.preau.exited() {
		t.Fatalf("preau did not start its DHCP server within 20 s:\n%s", s.preau.out.String())
	}
}

// cli runs preau with args against the running box.
func (s *s4Scenario) cliRun(args ...string) (string, error) {
	return s1Run(30*time.Second, s.bin, append(args, "--config", s.cfg, "--data", s.data)...)
}

// echo answers UDP datagrams on the box's port 7, so that the box sends
// to every device that talks to it and confirms its neighbour entries
// (this machine has no ping).
func (s *s4Scenario) echo() {
	var conn *net.UDPConn
	if err := s1InNS(s.box, func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(s4BoxLAN), Port: 7})
		return err
	}); err != nil {
		s.t.Fatal(err)
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
	s.t.Cleanup(func() { conn.Close() })
}

// talk sends a datagram to the box twice a second from ns.
func (s *s4Scenario) talk(ns string) {
	var conn *net.UDPConn
	if err := s1InNS(ns, func() (err error) {
		conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(s4BoxLAN), Port: 7})
		return err
	}); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		buf := make([]byte, 64)
		for {
			conn.Write([]byte("bonjour la box"))
			conn.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
			conn.Read(buf)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	s.t.Cleanup(sync.OnceFunc(func() { close(done); conn.Close() }))
}

// publishPrinter runs a private D-Bus and avahi-daemon in the printer's
// namespace (a tmpfs on /run in the mount namespace ip netns exec gives
// it) and announces an IPP printer.
func (s *s4Scenario) publishPrinter() {
	t := s.t
	dir, err := os.MkdirTemp("", "preau-s4-avahi-") // a socket path must fit in 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "bus")
	busConf, avahiConf := filepath.Join(dir, "bus.conf"), filepath.Join(dir, "avahi-daemon.conf")
	if err := os.WriteFile(busConf, []byte(fmt.Sprintf(s1BusConfig, sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(fmt.Sprintf(s1AvahiConfig, "eth0"), "host-name=tablette", "host-name="+s4Printer, 1)
	if err := os.WriteFile(avahiConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.avahiEnv = s1Env("DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + sock)
	bus := s1Start(t, "dbus-daemon", exec.Command("dbus-daemon", "--config-file="+busConf, "--nofork", "--nopidfile"))
	if !waitUntil(5*time.Second, 50*time.Millisecond, func() bool { _, err := os.Stat(sock); return err == nil || bus.exited() }) || bus.exited() {
		t.Fatalf("private dbus-daemon did not start: %s", bus.out.String())
	}
	daemon, err := exec.LookPath("avahi-daemon")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", s.printer, "sh", "-c",
		`mount -t tmpfs -o mode=0755 preau-s4-run /run && mkdir -p /run/avahi-daemon && exec "$0" "$@"`,
		daemon, "--no-chroot", "--no-drop-root", "--no-rlimits", "-f", avahiConf)
	cmd.Env = s.avahiEnv
	av := s1Start(t, "avahi-daemon", cmd)
	if !waitUntil(10*time.Second, 50*time.Millisecond, func() bool {
		return strings.Contains(av.out.String(), "Server startup complete") || av.exited()
	}) || av.exited() {
		t.Fatalf("avahi-daemon did not start in the printer's namespace: %s", av.out.String())
	}
	pub := exec.Command("ip", "netns", "exec", s.printer, "avahi-publish", "-s", "Brother HL-L2350DW", "_ipp._tcp", "631",
		"txtvers=1", "ty=Brother HL-L2350DW series", "rp=ipp/print", "pdl=application/pdf,image/urf")
	pub.Env = s.avahiEnv
	p := s1Start(t, "avahi-publish", pub)
	if !waitUntil(10*time.Second, 50*time.Millisecond, func() bool {
		return strings.Contains(p.out.String(), "Established") || p.exited()
	}) || p.exited() {
		t.Fatalf("avahi-publish: %s", p.out.String())
	}
}

// proxy is an HTTP proxy on 127.0.0.1 whose outgoing connections are
// opened inside namespace ns (CONNECT tunnels too: Chromium's WebSockets
// go through them). It returns its address.
func (s *s4Scenario) proxy(ns string) string {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := s1InNS(ns, func() (err error) {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.Out.Host = pr.In.Host },
		Transport:     &http.Transport{DialContext: dial, DisableCompression: true, Proxy: nil},
		FlushInterval: -1,
		// Chromium's own background requests (component updates) fail
		// here, with no DNS beyond the LAN: not worth a line each.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			rp.ServeHTTP(w, r)
			return
		}
		up, err := dial(r.Context(), "tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		io.WriteString(c, "HTTP/1.1 200 Connection Established\r\n\r\n")
		go func() { io.Copy(up, rw); up.Close() }()
		io.Copy(c, up)
		c.Close()
	})}
	go srv.Serve(ln)
	s.t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

var s4CodeRe = regexp.MustCompile(`[23456789A-HJ-NP-Z]{4}(-[23456789A-HJ-NP-Z]{4}){3}`)

// setUp: the technician reads the code with `preau setup-code` (the same
// the journal shows), signs in on the console from the laptop, which has
// not accepted the captive portal's charter, and creates the technicien
// account.
func (s *s4Scenario) setUp() {
	t, b := s.t, s.browser
	out, err := s.cliRun("setup-code")
	if err != nil {
		t.Fatal(err)
	}
	code := s4CodeRe.FindString(out)
	if code == "" || !strings.Contains(out, "http://"+s4BoxLAN+"/console/installation") && !strings.Contains(out, "/console/installation") {
		t.Fatalf("preau setup-code: %q, want a code and the installation page", out)
	}
	if !strings.Contains(s.preau.out.String(), "code d'installation de la console : "+code) {
		t.Errorf("the journal does not show the code %s that preau setup-code printed", code)
	}
	mustOK(t, b.Open(s.base+"/console/connexion?lang=fr"))
	waitText(t, b, "main", "Créer le premier compte technicien", 10*time.Second)
	checkAxe(t, b, "connexion")
	mustOK(t, b.Click(`a[href="/console/installation"]`))
	waitText(t, b, "h1", "Installation de la console", 10*time.Second)
	checkAxe(t, b, "installation")
	mustOK(t, b.Type("#code", strings.ToLower(code)))
	mustOK(t, b.Type("#identifiant", "camille"))
	mustOK(t, b.Type("#nom", "Camille Technicienne"))
	mustOK(t, b.Type("#motdepasse", s4Password))
	mustOK(t, b.Type("#confirmation", s4Password))
	mustOK(t, b.Click("form.stack button[type=submit]"))
	waitText(t, b, "h1", "Tableau de bord", 15*time.Second)
	waitText(t, b, "#live-status", "Mise à jour en direct.", 15*time.Second)
	waitText(t, b, "#devices-now", s4Printer, 30*time.Second)
	checkAxe(t, b, "tableau-de-bord")
	if out, err := s.cliRun("setup-code"); err != nil || !strings.Contains(out, "déjà installée") {
		t.Errorf("preau setup-code after the setup: %q, %v; want « déjà installée »", out, err)
	}
	t.Logf("setup code %s from preau setup-code (same as the journal's), technicien account created from the laptop %s (charter not accepted), dashboard live", code, s4LaptopIP)
}

// deviceAppearsLive: a tablet joins the LAN (DHCP with a host name) after
// the dashboard loaded; the dashboard shows it without a reload.
func (s *s4Scenario) deviceAppearsLive() {
	t, b := s.t, s.browser
	_, err := b.Exec(`window.__sameDocument = 42;`)
	mustOK(t, err)
	joined := time.Now()
	s.tablet = s.device("s4tab", s4TabletMAC, "")
	script := filepath.Join(s.dir, "udhcpc.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncase \"$1\" in bound|renew) ip addr add \"$ip/$subnet\" dev \"$interface\" ;; esac\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join("/etc/netns", s.tablet), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := s1Run(30*time.Second, "ip", "netns", "exec", s.tablet, "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", script,
		"-t", "5", "-T", "2", "-x", "hostname:"+s4Tablet); err != nil {
		t.Fatalf("udhcpc in the tablet's namespace: %v\n%s", err, out)
	}
	s.talk(s.tablet)
	waitText(t, b, "#devices-now", s4Tablet, 30*time.Second)
	same, err := b.Exec(`return window.__sameDocument === 42;`)
	mustOK(t, err)
	if same != true {
		t.Error("the dashboard reloaded instead of updating live")
	}
	text, _ := b.Text("#devices-now")
	if !strings.Contains(text, "tablette") {
		t.Errorf("dashboard devices %q: want the tablet shown as a tablette", text)
	}
	if err := b.Screenshot(filepath.Join(browsertest.ArtefactDir(t), "tableau-de-bord.png")); err != nil {
		t.Log(err)
	}
	t.Logf("the tablet (DHCP host name %s) appeared on the open dashboard %v after joining, without a reload: %q",
		s4Tablet, time.Since(joined).Round(time.Millisecond), text)
}

// glpiExport downloads the GLPI export with the browser's session and
// validates every document against GLPI's own schema.
func (s *s4Scenario) glpiExport() {
	t, b := s.t, s.browser
	mustOK(t, b.Open(s.base+"/console/appareils"))
	waitText(t, b, "h1", "Appareils", 10*time.Second)
	waitText(t, b, "main", "imprimante", 10*time.Second)
	checkAxe(t, b, "appareils")
	raw, err := b.ExecAsync(`const done = arguments[arguments.length - 1];
fetch('/console/appareils/inventaire-glpi.zip').then(r => r.arrayBuffer().then(buf => {
  const u = new Uint8Array(buf); let s = '';
  for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
  done({status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), b64: btoa(s)});
})).catch(e => done({error: String(e)}));`)
	mustOK(t, err)
	res, _ := raw.(map[string]any)
	if res == nil || res["error"] != nil || res["status"] != float64(200) {
		t.Fatalf("download the GLPI export: %v", raw)
	}
	data, err := base64.StdEncoding.DecodeString(res["b64"].(string))
	mustOK(t, err)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("the GLPI export (%v, %v) is not a zip: %v", res["type"], res["disposition"], err)
	}
	sch := s4GLPISchema(t)
	types := map[string]string{} // MAC → itemtype
	for _, f := range zr.File {
		rc, err := f.Open()
		mustOK(t, err)
		doc, err := io.ReadAll(rc)
		rc.Close()
		mustOK(t, err)
		s4ValidateGLPI(t, sch, f.Name, doc)
		var d struct {
			ItemType string `json:"itemtype"`
			Content  struct {
				Networks []struct {
					MAC string `json:"mac"`
				} `json:"networks"`
				NetworkDevice struct {
					MAC string `json:"mac"`
				} `json:"network_device"`
			} `json:"content"`
		}
		if err := json.Unmarshal(doc, &d); err == nil {
			for _, n := range d.Content.Networks {
				types[n.MAC] = d.ItemType
			}
			if m := d.Content.NetworkDevice.MAC; m != "" {
				types[m] = d.ItemType
			}
		}
	}
	for mac, want := range map[string]string{s4PrinterMAC: "Printer", s4TabletMAC: "Computer"} {
		if types[mac] != want {
			t.Errorf("GLPI export: device %s has itemtype %q, want %q (documents: %v)", mac, types[mac], want, types)
		}
	}
	t.Logf("GLPI export downloaded in the browser: %d documents, each valid against GLPI's inventory schema (%v)", len(zr.File), types)
}

func s4GLPISchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("inventory", "testdata", "glpi", "inventory.schema.json"))
	mustOK(t, err)
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	mustOK(t, err)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	mustOK(t, c.AddResource("inventory.schema.json", doc))
	sch, err := c.Compile("inventory.schema.json")
	mustOK(t, err)
	return sch
}

func s4ValidateGLPI(t *testing.T, sch *jsonschema.Schema, name string, doc []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Errorf("GLPI document %s is not JSON: %v", name, err)
		return
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("GLPI document %s does not validate: %v\n%s", name, err, doc)
	}
}

// energy: the week's chart and a "left on" alert (today is a closed day).
func (s *s4Scenario) energy() {
	t, b := s.t, s.browser
	var alerts int
	ok := waitUntil(20*time.Second, time.Second, func() bool {
		if err := b.Open(s.base + "/console/energie"); err != nil {
			return false
		}
		n, err := b.Count("ul.alerts li")
		alerts = n
		return err == nil && n > 0
	})
	if !ok {
		main, _ := b.Text("main")
		t.Fatalf("no left-on alert on the energy page within 20 s:\n%s", main)
	}
	waitText(t, b, "h1", "Énergie", 5*time.Second)
	if n, err := b.Count("figure.chart-box svg.chart"); err != nil || n != 1 {
		t.Errorf("energy page: %d SVG charts (%v), want 1", n, err)
	}
	if n, err := b.Count("table.list tbody tr"); err != nil || n != 7 {
		t.Errorf("energy page: %d day rows (%v), want 7", n, err)
	}
	list, _ := b.Text("ul.alerts")
	if !strings.Contains(list, s4Printer) {
		t.Errorf("left-on alerts %q: want the printer %s", list, s4Printer)
	}
	checkAxe(t, b, "energie")
	if err := b.Screenshot(filepath.Join(browsertest.ArtefactDir(t), "energie.png")); err != nil {
		t.Log(err)
	}
	t.Logf("energy page: the week's SVG chart, 7 days in the table, %d left-on alert(s): %q", alerts, list)
}

// cli: the same data through the command line.
func (s *s4Scenario) cli() {
	t := s.t
	out, err := s.cliRun("status", "--json")
	mustOK(t, err)
	var rep StatusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("preau status --json: %v\n%s", err, out)
	}
	if rep.Status != "ok" || rep.Snapshot.Devices.Present < 3 || rep.Snapshot.Update.State == "" {
		t.Errorf("preau status --json: status %q, %d devices present, update %q; want ok, at least 3 (laptop, printer, tablet), a state",
			rep.Status, rep.Snapshot.Devices.Present, rep.Snapshot.Update.State)
	}
	text, err := s.cliRun("status")
	mustOK(t, err)
	if !strings.Contains(text, "Appareils : "+strconv.Itoa(rep.Snapshot.Devices.Present)) {
		t.Errorf("preau status:\n%s\nwant the devices count", text)
	}
	devs, err := s.cliRun("devices")
	mustOK(t, err)
	for _, want := range []string{s4Printer, s4Tablet, s4PrinterMAC, "imprimante", "tablette"} {
		if !strings.Contains(devs, want) {
			t.Errorf("preau devices: no %q in\n%s", want, devs)
		}
	}
	dir := filepath.Join(s.dir, "glpi")
	_, err = s.cliRun("devices", "--glpi", dir)
	mustOK(t, err)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) < 3 {
		t.Errorf("preau devices --glpi wrote %d files, want at least 3", len(files))
	}
	sch := s4GLPISchema(t)
	for _, f := range files {
		doc, err := os.ReadFile(f)
		mustOK(t, err)
		s4ValidateGLPI(t, sch, filepath.Base(f), doc)
	}
	week, err := s.cliRun("energy", "--week")
	mustOK(t, err)
	if !strings.Contains(week, "Restés allumés hors des heures de classe") || !strings.Contains(week, s4Printer) {
		t.Errorf("preau energy --week:\n%s\nwant the printer's left-on alert", week)
	}
	t.Logf("CLI: status --json (%d present), devices, devices --glpi (%d valid documents), energy --week:\n%s",
		rep.Snapshot.Devices.Present, len(files), week)
}

// The console's browser-test helpers, for the box-level scenario.

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitText(t *testing.T, b *browsertest.Browser, sel, want string, d time.Duration) {
	t.Helper()
	_, err := b.Wait(d, `const e = document.querySelector(arguments[0]); return !!e && e.textContent.includes(arguments[1]);`, sel, want)
	if err != nil {
		got, _ := b.Exec(`const e = document.querySelector(arguments[0]); return e ? e.textContent : "(none)";`, sel)
		t.Fatalf("%s never showed %q (shows %q): %v", sel, want, got, err)
	}
}

func checkAxe(t *testing.T, b *browsertest.Browser, name string) {
	t.Helper()
	vs, err := b.Axe()
	if err != nil {
		t.Fatalf("axe on %s: %v", name, err)
	}
	for _, v := range vs {
		t.Logf("axe %s: %s", name, v)
	}
	if s := browsertest.Serious(vs); len(s) > 0 {
		t.Errorf("%s: %d serious or critical accessibility violations: %v", name, len(s), s)
	}
}
