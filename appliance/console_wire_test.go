package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"preau/appliance/console"
	"preau/appliance/energy"
)

// The configuration keys become the energy component's settings: a listed
// weekday replaces the default week's, "-" closes it; watts replace a
// class's estimate and say so.
func TestEnergyConfigFromKeys(t *testing.T) {
	c := Defaults()
	c.Energy.SchoolHours = map[string]string{"wed": "-", "sam": "08:30-11:30"}
	c.Energy.Watts = map[string]float64{"interactive-display": 180}
	c.Energy.Holidays = []string{"2026-12-19..2027-01-03"}
	c.Energy.Closed = []string{"2027-05-07"}
	c.Energy.LeftOnAfter = "45m"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got := c.energyConfig()
	want := energy.DefaultHours()
	want[time.Wednesday] = []energy.Span{}
	want[time.Saturday] = []energy.Span{{Start: 8*60 + 30, End: 11*60 + 30}}
	if !reflect.DeepEqual(got.Calendar.Hours, want) {
		t.Errorf("hours: got %v\nwant %v", got.Calendar.Hours, want)
	}
	if got.Calendar.Timezone != "Europe/Paris" || len(got.Calendar.Holidays) != 1 || len(got.Calendar.Closed) != 1 {
		t.Errorf("calendar: %+v", got.Calendar)
	}
	if got.LeftOn.Threshold != 45*time.Minute {
		t.Errorf("threshold %v, want 45m", got.LeftOn.Threshold)
	}
	if len(got.Classes) != 1 || got.Classes[0].Class != energy.ClassDisplay || got.Classes[0].Watts != 180 ||
		!strings.Contains(got.Classes[0].WattsSource, "technicien") || got.Classes[0].LifeYears == 0 {
		t.Errorf("classes: %+v, want the display at 180 W set by the technician, other figures kept", got.Classes)
	}
	if got.Electricity != energy.DefaultElectricity() {
		t.Errorf("electricity %+v, want the default", got.Electricity)
	}
	// Without school_hours, the package's default week.
	if d := Defaults().energyConfig(); d.Calendar.Hours != nil {
		t.Errorf("default hours %v, want nil (the package's default week)", d.Calendar.Hours)
	}
}

func TestInventoryInterfaces(t *testing.T) {
	tests := []struct {
		name string
		set  func(c *Config)
		want []string
	}{
		{"none", func(c *Config) {}, nil},
		{"dhcp", func(c *Config) { c.DHCP.Enabled, c.DHCP.Interface = true, "eth1" }, []string{"eth1"}},
		{"dhcp and mdns", func(c *Config) {
			c.DHCP.Enabled, c.DHCP.Interface, c.MDNS.Interfaces = true, "eth1", []string{"eth1", "wlan0"}
		}, []string{"eth1", "wlan0"}},
		{"gateway", func(c *Config) { c.Gateway.Enabled, c.Gateway.LANInterface = true, "br0" }, []string{"br0"}},
		{"configured wins", func(c *Config) {
			c.DHCP.Enabled, c.DHCP.Interface, c.Inventory.Interfaces = true, "eth1", []string{"br0"}
		}, []string{"br0"}},
	}
	for _, tt := range tests {
		c := Defaults()
		tt.set(&c)
		if got := c.lanInterfaces(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := Defaults().inventoryConfig(nil).Interfaces; !reflect.DeepEqual(got, []string{noInterface}) {
		t.Errorf("no LAN interface: inventory gets %v, want the stand-in %q", got, noInterface)
	}
}

// The dashboard's recent errors: WARN and ERROR only, with the component
// and the error, newest first, at most recentErrorsKept.
func TestRecentErrors(t *testing.T) {
	var out bytes.Buffer
	rec := newRecentErrors()
	log := slog.New(rec.handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelError})))
	log.With("component", "dhcp").Info("lease")
	log.With("component", "outbox").Warn("envoi impossible", "err", errors.New("connexion refusée"))
	log.Error("arrêt", "component", "budget")
	log.With("component", "glpi").WithGroup("g").With("component", "other").Warn("push")
	got := rec.list()
	want := []struct{ comp, msg string }{{"glpi", "push"}, {"budget", "arrêt"}, {"outbox", "envoi impossible : connexion refusée"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %v", got, want)
	}
	for i, w := range want {
		if got[i].Component != w.comp || got[i].Message != w.msg || got[i].At.IsZero() {
			t.Errorf("entry %d: got %+v, want %v", i, got[i], w)
		}
	}
	// The next handler keeps its own level: the warnings were not printed.
	if strings.Contains(out.String(), "envoi impossible") || !strings.Contains(out.String(), "arrêt") {
		t.Errorf("text handler got %q, want only the ERROR record", out.String())
	}
	for i := range 30 {
		log.Warn("encore", "n", i)
	}
	if l := rec.list(); len(l) != recentErrorsKept || l[0].Message != "encore" {
		t.Errorf("after 30 more: %d entries, first %+v; want %d, newest first", len(l), l[0], recentErrorsKept)
	}
}

// The portal's visitors reach the inventory once per address and browser
// every uaRefresh, never from loopback.
func TestUserAgentsCoalesced(t *testing.T) {
	o := newLANObserver(nil, quietLog())
	h := o.middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	visit := func(addr, ua, path string) {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = addr
		r.Header.Set("User-Agent", ua)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	ipad := "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)"
	for range 20 {
		visit("10.20.0.31:40000", ipad, "/c/pack/page.html") // a page and its assets
	}
	visit("10.20.0.31:40001", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0)", "/") // another browser on the same address
	visit("10.20.0.32:40000", ipad, "/")
	visit("127.0.0.1:5000", ipad, "/")                   // the box itself
	visit("10.20.0.33:1", "Prometheus/2.45", "/metrics") // a scraper
	visit("10.20.0.34:1", "", "/")
	if n := len(o.queue); n != 3 {
		t.Fatalf("%d observations queued, want 3", n)
	}
	first := <-o.queue
	if first.IP.String() != "10.20.0.31" || first.UserAgent != ipad || first.Source != "portal" {
		t.Errorf("first observation %+v", first)
	}
}

// A box's console side: the setup code stays the same until used, the
// teachers of the hand-in pages become enseignant accounts with their own
// password, and `preau status --json` keeps the Health fields at the top.
func TestTechnicianOnABox(t *testing.T) {
	tb := startBox(t, "", false)
	ctx := context.Background()
	code, _, err := tb.tech.setup(ctx)
	if err != nil || len(code) != 19 {
		t.Fatalf("setup code %q, %v", code, err)
	}
	if again, fresh, _ := tb.tech.setup(ctx); again != code || fresh {
		t.Errorf("second call: %q (fresh %v), want the code printed at start %q", again, fresh, code)
	}

	// A teacher created before the console existed is imported once, with
	// its password.
	pw := "mot de passe de Mme Martin"
	if err := tb.handin.assignments.CreateTeacher(ctx, "c.martin", "Claire Martin", pw); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.store.DB().Exec(`DELETE FROM settings WHERE key = ?`, teachersImportedKey); err != nil {
		t.Fatal(err)
	}
	if err := tb.tech.importTeachers(ctx, tb.store.DB()); err != nil {
		t.Fatal(err)
	}
	a, err := tb.tech.console.Authenticate(ctx, "c.martin", pw, "")
	if err != nil || a.Role != console.RoleEnseignant || a.Name != "Claire Martin" {
		t.Errorf("imported teacher: %+v, %v; want an enseignant account with the same password", a, err)
	}
	// `preau teacher add` makes both accounts, through the control socket.
	c := dialControl(tb.cfg.Box.DataDir)
	if c == nil {
		t.Fatal("no control socket")
	}
	resp, err := c.post(ctx, "/v1/teachers", map[string]string{"login": "P.Durand", "name": "Paul Durand", "password": pw})
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("teacher add: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	if a, err := tb.tech.console.Authenticate(ctx, "p.durand", pw, ""); err != nil || a.Role != console.RoleEnseignant {
		t.Errorf("teacher add: console account %+v, %v", a, err)
	}
	var n int
	tb.store.DB().QueryRow(`SELECT count(*) FROM assignments_teachers WHERE login = 'p.durand'`).Scan(&n)
	if n != 1 {
		t.Errorf("teacher add: %d hand-in accounts, want 1", n)
	}
	// The same login again is refused, in French and English.
	resp, err = c.post(ctx, "/v1/teachers", map[string]string{"login": "p.durand", "name": "Paul Durand", "password": pw})
	if err != nil {
		t.Fatal(err)
	}
	var ce controlError
	json.NewDecoder(resp.Body).Decode(&ce)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(ce.FR, "existe déjà") || !strings.Contains(ce.EN, "already exists") {
		t.Errorf("second teacher add: %s %+v", resp.Status, ce)
	}
	// The CLI's actions are audited with the Unix account as actor.
	resp, err = c.post(ctx, "/v1/sync/now", struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	entries, err := tb.tech.console.AuditLog(ctx, console.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, e := range entries {
		actions[e.Action] = e.Actor
	}
	for _, a := range []string{"teacher-add", "sync-now"} {
		if !strings.HasPrefix(actions[a], "cli:") {
			t.Errorf("audit: %s by %q, want a cli: actor (entries %v)", a, actions[a], actions)
		}
	}

	var buf bytes.Buffer
	if err := c.get(ctx, "/v1/status", &buf); err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &top); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"status", "version", "online", "packs", "database", "snapshot"} {
		if _, ok := top[k]; !ok {
			t.Errorf("status --json has no %q at the top: %s", k, buf.String())
		}
	}
	var rep StatusReport
	json.Unmarshal(buf.Bytes(), &rep)
	if rep.Status != "ok" || rep.Snapshot.Update.State != updateNotConfigured || rep.Snapshot.Uplink.State != console.UplinkOffline {
		t.Errorf("status: %+v", rep)
	}

	// Once a technicien account exists, no code.
	if _, err := tb.tech.console.CreateAccount(ctx, "camille", "Camille", console.RoleTechnicien, "un mot de passe long"); err != nil {
		t.Fatal(err)
	}
	if code, _, err := tb.tech.setup(ctx); err != nil || code != "" {
		t.Errorf("after setup: code %q, %v; want none", code, err)
	}
}
