package inventory

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// glpiSchema compiles the GLPI inventory schema, formats asserted (the
// schema checks IP addresses with "format").
func glpiSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/glpi/inventory.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("inventory.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("inventory.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func validateGLPI(t testing.TB, sch *jsonschema.Schema, doc []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("document is not JSON: %v\n%s", err, doc)
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("document does not validate: %v\n%s", err, doc)
	}
}

// The validator is the real thing: GLPI's own examples pass, and broken
// documents fail.
func TestGLPISchemaSelfCheck(t *testing.T) {
	sch := glpiSchema(t)
	for _, name := range []string{"example-computer_1.json", "example-phone_1.json", "example-printer_1.json"} {
		data, err := os.ReadFile(filepath.Join("testdata/glpi", name))
		if err != nil {
			t.Fatal(err)
		}
		validateGLPI(t, sch, data)
	}
	for _, bad := range []string{
		`{"content": {"versionclient": "x"}}`,                                         // no deviceid
		`{"deviceid": "x", "content": {}}`,                                            // no versionclient
		`{"deviceid": "x", "itemtype": "Toaster", "content": {"versionclient": "x"}}`, // item type
		`{"deviceid": "x", "content": {"versionclient": "x", "networks": [{"description": "LAN", "ipaddress": "10.0.0.300"}]}}`, // format
		`{"deviceid": "x", "content": {"versionclient": "x", "accesslog": {"logdate": "23/11/2026"}}}`,
	} {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if err := sch.Validate(v); err == nil {
			t.Errorf("invalid document accepted: %s", bad)
		}
	}
}

// glpiFixture observes one device of each kind.
func glpiFixture(t testing.TB, inv *Inventory, clock *fakeClock) map[Class]string {
	t.Helper()
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	obs := []struct {
		class Class
		o     []Observation
	}{
		{ClassPrinter, []Observation{{Source: SourceMDNS, MAC: mustMAC(t, "00:80:77:12:34:56"), IP: ip("10.0.0.11"), Services: []string{"_ipp._tcp"},
			Hints: map[string]string{"ty": "Brother HL-L2350DW series"}, Name: "Brother HL-L2350DW"}}},
		{ClassLaptop, []Observation{{Source: SourceMDNS, MAC: mustMAC(t, "3c:22:fb:aa:bb:01"), IP: ip("10.0.0.12"), Services: []string{"_device-info._tcp"},
			Hints: map[string]string{"model": "MacBookAir10,1"}}, {Source: SourceNeighbour, MAC: mustMAC(t, "3c:22:fb:aa:bb:01"), IP: ip("fe80::3e22:fbff:feaa:bb01")}}},
		{ClassTablet, []Observation{{Source: SourceDHCP, MAC: mustMAC(t, "5a:1e:2d:3c:4b:5a"), IP: ip("10.0.0.13"), Hostname: "iPad-de-Lucie"},
			{Source: SourcePortal, MAC: mustMAC(t, "5a:1e:2d:3c:4b:5a"), UserAgent: "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X)"}}},
		{ClassInteractiveDisplay, []Observation{{Source: SourceMDNS, MAC: mustMAC(t, "6c:dc:6a:00:00:12"), IP: ip("10.0.0.14"), Services: []string{"_googlecast._tcp"},
			Hints: map[string]string{"md": "ActivPanel 9", "fn": "Salle 12"}}}},
		{ClassPhone, []Observation{{Source: SourcePortal, MAC: mustMAC(t, "f0:18:98:00:00:07"), IP: ip("10.0.0.15"),
			UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X)"}}},
		{ClassAccessPoint, []Observation{{Source: SourceDHCP, MAC: mustMAC(t, "74:83:c2:00:00:01"), IP: ip("10.0.0.2"), Hostname: "U6-Lite-CDI"}}},
		{ClassDesktop, []Observation{{Source: SourceDHCP, MAC: mustMAC(t, "00:50:c2:7d:51:00"), IP: ip("10.0.0.16"), Hostname: "DESKTOP-4F2K9Q1"}}},
		{ClassUnknown, []Observation{{Source: SourceNeighbour, MAC: mustMAC(t, "00:00:01:00:00:01"), IP: ip("10.0.0.17")}}},
	}
	out := make(map[Class]string)
	for _, c := range obs {
		for _, o := range c.o {
			observe(t, inv, o)
			clock.Advance(time.Second)
		}
		out[c.class] = c.o[0].MAC.String()
	}
	return out
}

// Every exported document validates against the GLPI schema, for each
// kind of device, with the item type of its class.
func TestGLPIDocuments(t *testing.T) {
	sch := glpiSchema(t)
	clock := newClock()
	inv := newTestInventory(t, Config{GLPITag: "0751234A", Version: "1.4.2"}, clock)
	macs := glpiFixture(t, inv, clock)
	tests := []struct {
		class    Class
		itemtype string
		action   string
		check    func(t *testing.T, doc map[string]any)
	}{
		{ClassPrinter, "Printer", "netinventory", func(t *testing.T, doc map[string]any) {
			nd := doc["content"].(map[string]any)["network_device"].(map[string]any)
			if nd["type"] != "Printer" || nd["model"] != "Brother HL-L2350DW series" || nd["manufacturer"] != "Brother industries, LTD." ||
				nd["mac"] != "00:80:77:12:34:56" || nd["name"] != "Brother HL-L2350DW" {
				t.Errorf("network_device: %v", nd)
			}
		}},
		{ClassLaptop, "Computer", "inventory", func(t *testing.T, doc map[string]any) {
			c := doc["content"].(map[string]any)
			hw, bios := c["hardware"].(map[string]any), c["bios"].(map[string]any)
			if hw["chassis_type"] != "Laptop" || bios["smodel"] != "MacBookAir10,1" || bios["smanufacturer"] != "Apple, Inc." {
				t.Errorf("hardware %v bios %v", hw, bios)
			}
			n := c["networks"].([]any)[0].(map[string]any)
			if n["ipaddress"] != "10.0.0.12" || n["ipaddress6"] != "fe80::3e22:fbff:feaa:bb01" || n["status"] != "up" {
				t.Errorf("networks: %v", n)
			}
		}},
		{ClassTablet, "Computer", "inventory", func(t *testing.T, doc map[string]any) {
			c := doc["content"].(map[string]any)
			if hw := c["hardware"].(map[string]any); hw["chassis_type"] != "Tablet" || hw["name"] != "iPad-de-Lucie" ||
				!strings.Contains(hw["description"].(string), "aléatoire") {
				t.Errorf("hardware: %v", hw)
			}
			if _, ok := c["bios"]; ok {
				t.Error("a randomised MAC got a maker")
			}
			if os := c["operatingsystem"].(map[string]any); os["name"] != "iPadOS" {
				t.Errorf("operatingsystem: %v", os)
			}
		}},
		{ClassInteractiveDisplay, "Computer", "inventory", nil},
		{ClassPhone, "Phone", "inventory", nil},
		{ClassAccessPoint, "NetworkEquipment", "netinventory", func(t *testing.T, doc map[string]any) {
			nd := doc["content"].(map[string]any)["network_device"].(map[string]any)
			if nd["type"] != "Networking" || nd["manufacturer"] != "Ubiquiti Networks Inc." {
				t.Errorf("network_device: %v", nd)
			}
		}},
		{ClassDesktop, "Computer", "inventory", nil},
		{ClassUnknown, "Unmanaged", "netdiscovery", nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.class), func(t *testing.T) {
			d := device(t, inv, macs[tt.class])
			if d.Class != tt.class {
				t.Fatalf("fixture: class %s, want %s (%s)", d.Class, tt.class, d.ClassReason)
			}
			data, err := inv.GLPIDocument(d)
			if err != nil {
				t.Fatal(err)
			}
			validateGLPI(t, sch, data)
			var doc map[string]any
			json.Unmarshal(data, &doc)
			wantID := "preau-" + strings.ReplaceAll(d.ID, ":", "") + "-" + d.FirstSeen.UTC().Format("2006-01-02-15-04-05")
			if doc["itemtype"] != tt.itemtype || doc["action"] != tt.action || doc["deviceid"] != wantID || doc["tag"] != "0751234A" ||
				doc["content"].(map[string]any)["versionclient"] != "Preau-Inventory_v1.4.2" {
				t.Errorf("envelope: itemtype %v action %v deviceid %v tag %v", doc["itemtype"], doc["action"], doc["deviceid"], doc["tag"])
			}
			if tt.check != nil {
				tt.check(t, doc)
			}
		})
	}
	// The deviceid is stable: later sightings do not change it.
	before, _ := inv.Devices(context.Background())
	clock.Advance(time.Hour)
	for _, d := range before {
		observe(t, inv, Observation{Source: SourceCaptive, MAC: mustMAC(t, d.MAC), Hostname: "renamed"})
		if again := device(t, inv, d.ID); again.GLPIDeviceID() != d.GLPIDeviceID() || again.Name != "renamed" {
			t.Errorf("deviceid changed: %s then %s", d.GLPIDeviceID(), again.GLPIDeviceID())
		}
	}
	// A technician's class chooses the item type.
	if err := inv.SetClass(context.Background(), macs[ClassUnknown], ClassPrinter, "m.durand"); err != nil {
		t.Fatal(err)
	}
	data, _ := inv.GLPIDocument(device(t, inv, macs[ClassUnknown]))
	validateGLPI(t, sch, data)
	if !bytes.Contains(data, []byte(`"itemtype": "Printer"`)) {
		t.Errorf("corrected class not exported:\n%s", data)
	}
}

func TestGLPIDirAndZip(t *testing.T) {
	sch := glpiSchema(t)
	clock := newClock()
	inv := newTestInventory(t, Config{}, clock)
	glpiFixture(t, inv, clock)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "glpi")
	n, err := inv.WriteGLPIDir(ctx, dir)
	if err != nil || n != 8 {
		t.Fatalf("WriteGLPIDir = %d, %v; want 8", n, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 8 {
		t.Errorf("folder holds %d files, want 8 (no temporary file left): %v", len(files), files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		validateGLPI(t, sch, data)
	}
	var buf bytes.Buffer
	if n, err := inv.WriteGLPIZip(ctx, &buf); err != nil || n != 8 {
		t.Fatalf("WriteGLPIZip = %d, %v", n, err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		rc, _ := f.Open()
		data, _ := io.ReadAll(rc)
		rc.Close()
		validateGLPI(t, sch, data)
		if _, err := os.Stat(filepath.Join(dir, f.Name)); err != nil {
			t.Errorf("zip entry %s is not in the folder export", f.Name)
		}
	}
	if len(names) != 8 {
		t.Errorf("zip entries: %q", names)
	}
}

func TestWriteCSV(t *testing.T) {
	clock := newClock()
	inv := newTestInventory(t, Config{}, clock)
	glpiFixture(t, inv, clock)
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, "00:80:77:00:00:99"), Hostname: "=HYPERLINK(\"http://x\";\"y\")"})
	devs, err := inv.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, devs); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "\uFEFFAdresse MAC;Autres adresses MAC;Adresse IPv4;") || !strings.Contains(out, "\r\n") {
		t.Errorf("header, BOM or line ends:\n%q", out[:min(len(out), 200)])
	}
	lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
	if len(lines) != 1+len(devs) {
		t.Errorf("%d lines for %d devices", len(lines), len(devs))
	}
	for _, want := range []string{
		"5a:1e:2d:3c:4b:5a;;10.0.0.13;;iPad-de-Lucie;adresse aléatoire;tablette;90;;;iPadOS;;",
		"00:80:77:12:34:56;;10.0.0.11;;Brother HL-L2350DW;Brother industries, LTD.;imprimante;99;;Brother HL-L2350DW series;;_ipp._tcp;",
		`;"'=HYPERLINK(""http://x"";""y"")";`,
		";oui",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("CSV lacks %q:\n%s", want, out)
		}
	}
}

// glpiServer is a GLPI inventory endpoint for tests: it checks the
// headers, decompresses and validates every document, and answers as GLPI
// does, compressed like the request.
type glpiServer struct {
	t      *testing.T
	sch    *jsonschema.Schema
	mu     sync.Mutex
	got    []string // deviceids received
	status int      // HTTP status to answer; 0 = 200
	refuse string   // deviceid substring GLPI refuses with status "error"
}

func (g *glpiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := g.t
	if r.Method != http.MethodPost || r.URL.Path != "/front/inventory.php" {
		t.Errorf("request %s %s", r.Method, r.URL.Path)
	}
	if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "Preau-Inventory/") {
		t.Errorf("User-Agent %q", ua)
	}
	ctype := r.Header.Get("Content-Type")
	var body io.Reader = r.Body
	var wrap func(io.Writer) io.WriteCloser
	switch ctype {
	case "application/json":
	case "application/x-compress-zlib":
		zr, err := zlib.NewReader(r.Body)
		if err != nil {
			t.Errorf("zlib body: %v", err)
			return
		}
		body, wrap = zr, func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) }
	case "application/x-compress-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Errorf("gzip body: %v", err)
			return
		}
		body, wrap = zr, func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }
	default:
		t.Errorf("Content-Type %q", ctype)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		t.Errorf("body: %v", err)
	}
	validateGLPI(t, g.sch, data)
	var doc struct {
		DeviceID string `json:"deviceid"`
	}
	json.Unmarshal(data, &doc)
	g.mu.Lock()
	status, refuse := g.status, g.refuse
	if status == 0 {
		g.got = append(g.got, doc.DeviceID)
	}
	g.mu.Unlock()
	reply := `{"status":"ok","expiration":24}`
	if refuse != "" && strings.Contains(doc.DeviceID, refuse) {
		status, reply = http.StatusBadRequest, `{"status":"error","message":"Import refused by rule","expiration":24}`
	}
	if status == 0 {
		status = http.StatusOK
	}
	if wrap != nil {
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		zw := wrap(w)
		zw.Write([]byte(reply))
		zw.Close()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, reply)
}

func (g *glpiServer) take() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.got
	g.got = nil
	slices.Sort(out)
	return out
}

func (g *glpiServer) set(status int, refuse string) {
	g.mu.Lock()
	g.status, g.refuse = status, refuse
	g.mu.Unlock()
}

func TestGLPIPush(t *testing.T) {
	for _, compression := range []string{CompressNone, CompressZlib, CompressGzip} {
		t.Run(compression, func(t *testing.T) {
			srv := &glpiServer{t: t, sch: glpiSchema(t)}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			clock := newClock()
			inv := newTestInventory(t, Config{}, clock)
			macs := glpiFixture(t, inv, clock)
			p, err := NewPusher(GLPIConfig{URL: ts.URL + "/front/inventory.php", Compression: compression}, inv, ts.Client(), nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			push := func() (PushReport, error) { clock.Advance(time.Minute); return p.Push(ctx) }

			// First push: every device.
			rep, err := push()
			if err != nil || rep != (PushReport{Pushed: 8}) {
				t.Fatalf("first push: %+v, %v", rep, err)
			}
			if got := srv.take(); len(got) != 8 {
				t.Errorf("server got %d documents", len(got))
			}
			// Nothing changed: nothing sent, though the devices were seen.
			observe(t, inv, Observation{Source: SourceCaptive, MAC: mustMAC(t, macs[ClassLaptop])})
			if rep, err := push(); err != nil || rep != (PushReport{Unchanged: 8}) {
				t.Errorf("second push: %+v, %v", rep, err)
			}
			// One device changed: only it.
			inv.SetClass(ctx, macs[ClassUnknown], ClassDesktop, "m.durand")
			if rep, err := push(); err != nil || rep != (PushReport{Pushed: 1, Unchanged: 7}) {
				t.Errorf("after a change: %+v, %v", rep, err)
			}
			unknown := device(t, inv, macs[ClassUnknown])
			if got := srv.take(); !slices.Equal(got, []string{unknown.GLPIDeviceID()}) {
				t.Errorf("server got %q, want only %s", got, unknown.GLPIDeviceID())
			}
			// The server fails: the round stops with a retryable error,
			// nothing is marked pushed, and the next round sends it.
			inv.SetClass(ctx, macs[ClassUnknown], ClassLaptop, "m.durand")
			srv.set(http.StatusServiceUnavailable, "")
			_, err = push()
			var pe *PushError
			if !errors.As(err, &pe) || !pe.Retry || pe.Status != 503 || !strings.Contains(pe.Error(), "GLPI") {
				t.Fatalf("server down: got %v, want a retryable PushError", err)
			}
			srv.set(0, "")
			if rep, err := push(); err != nil || rep.Pushed != 1 {
				t.Errorf("after the server is back: %+v, %v", rep, err)
			}
			srv.take()
			// GLPI refuses one document: the others go, it waits.
			inv.SetClass(ctx, macs[ClassPrinter], ClassUnknown, "m.durand")
			inv.SetClass(ctx, macs[ClassPhone], ClassTablet, "m.durand")
			printer := device(t, inv, macs[ClassPrinter])
			srv.set(0, strings.ReplaceAll(printer.ID, ":", ""))
			if rep, err := push(); err != nil || rep != (PushReport{Pushed: 1, Refused: 1, Unchanged: 6}) {
				t.Errorf("with a refusal: %+v, %v", rep, err)
			}
			if rep, err := push(); err != nil || rep != (PushReport{Waiting: 1, Unchanged: 7}) {
				t.Errorf("right after a refusal: %+v, %v", rep, err)
			}
			var lastErr string
			inv.db.QueryRow(`SELECT last_error FROM inventory_glpi_pushes WHERE device = ?`, printer.ID).Scan(&lastErr)
			if !strings.Contains(lastErr, "Import refused by rule") {
				t.Errorf("last error of the refused device: %q", lastErr)
			}
			srv.set(0, "")
			clock.Advance(2 * time.Hour)
			if rep, err := push(); err != nil || rep.Pushed != 1 {
				t.Errorf("after the wait: %+v, %v", rep, err)
			}
			// Unchanged devices seen since are pushed again after Refresh.
			clock.Advance(25 * time.Hour)
			observe(t, inv, Observation{Source: SourceCaptive, MAC: mustMAC(t, macs[ClassLaptop])})
			if rep, err := push(); err != nil || rep != (PushReport{Pushed: 1, Unchanged: 7}) {
				t.Errorf("after a day: %+v, %v", rep, err)
			}
		})
	}
}

func TestGLPIConfigValidate(t *testing.T) {
	tests := []struct {
		cfg     GLPIConfig
		wantErr string
	}{
		{GLPIConfig{URL: "https://glpi.example.fr/front/inventory.php"}, ""},
		{GLPIConfig{URL: "https://glpi.example.fr/marketplace/glpiinventory/", Compression: "zlib"}, ""},
		{GLPIConfig{}, "url is empty"},
		{GLPIConfig{URL: "ftp://glpi.example.fr/"}, "http or https"},
		{GLPIConfig{URL: "https://u:p@glpi.example.fr/"}, "credentials"},
		{GLPIConfig{URL: "https://glpi.example.fr/", Compression: "br"}, "compression"},
		{GLPIConfig{URL: "https://glpi.example.fr/", Interval: time.Second}, "interval"},
	}
	for _, tt := range tests {
		err := tt.cfg.WithDefaults().Validate()
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.cfg, err, tt.wantErr)
		}
	}
}
