package console

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// openDB opens a database file as appliance/store does and applies the
// console's migrations in order.
func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	for _, m := range Migrations() {
		if m.Version <= v {
			continue
		}
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatalf("migration %d %s: %v", m.Version, m.Name, err)
		}
		if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", m.Version)); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeSource is a Source whose snapshot a test changes.
type fakeSource struct {
	mu    sync.Mutex
	snap  Snapshot
	err   error
	calls int
}

func (f *fakeSource) Snapshot(ctx context.Context) (Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	s := f.snap
	s.Devices.Recent = append([]DeviceBrief(nil), f.snap.Devices.Recent...)
	return s, f.err
}

func (f *fakeSource) set(change func(*Snapshot)) {
	f.mu.Lock()
	change(&f.snap)
	f.mu.Unlock()
}

func (f *fakeSource) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeDevices is a Devices with a fixed list that records corrections.
type fakeDevices struct {
	mu    sync.Mutex
	devs  []Device
	set   []string // "mac class by"
	calls int
}

func (f *fakeDevices) Devices(ctx context.Context) ([]Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return append([]Device(nil), f.devs...), nil
}

func (f *fakeDevices) SetClass(ctx context.Context, mac, class, by string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	for i := range f.devs {
		if f.devs[i].MAC == mac {
			f.devs[i].Class, f.devs[i].ClassSet = class, true
			f.set = append(f.set, mac+" "+class+" "+by)
			return nil
		}
	}
	return errors.New("no such device")
}

func (f *fakeDevices) ExportCSV(ctx context.Context, w io.Writer) error {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	_, err := io.WriteString(w, "mac;nom\n02:00:00:00:00:01;tablette-cm2\n")
	return err
}

func (f *fakeDevices) ExportGLPI(ctx context.Context, w io.Writer) error {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	_, err := w.Write([]byte("PK\x05\x06" + strings.Repeat("\x00", 18))) // an empty zip
	return err
}

func (f *fakeDevices) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

type fakeEnergy struct {
	mu    sync.Mutex
	view  EnergyView
	calls int
}

func (f *fakeEnergy) Energy(ctx context.Context) (EnergyView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.view, nil
}

type fakeUpdates struct {
	mu    sync.Mutex
	view  UpdateView
	calls int
}

func (f *fakeUpdates) Status(ctx context.Context) (UpdateView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.view, nil
}

// harness is a console on a real SQLite file, served on loopback.
type harness struct {
	t       testing.TB
	c       *Console
	db      *sql.DB
	dbPath  string
	clock   *fakeClock
	src     *fakeSource
	devs    *fakeDevices
	energy  *fakeEnergy
	updates *fakeUpdates
	srv     *httptest.Server
	cfg     Config
}

// testStart is a Monday in March, 14:32 UTC.
var testStart = time.Date(2026, 3, 9, 14, 32, 0, 0, time.UTC)

func newHarness(t testing.TB, tune ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: &fakeClock{t: testStart}}
	h.dbPath = filepath.Join(t.TempDir(), "preau.db")
	h.db = openDB(t, h.dbPath)
	h.src = &fakeSource{snap: sampleSnapshot()}
	h.devs = &fakeDevices{devs: sampleDevices()}
	h.energy = &fakeEnergy{view: sampleEnergy()}
	h.updates = &fakeUpdates{view: UpdateView{State: "idle", Version: "1.4.2", LastResult: "mise à jour 1.4.2 validée", LastAt: testStart.Add(-48 * time.Hour)}}
	h.cfg = Config{Location: time.UTC, PollInterval: 100 * time.Millisecond, PingInterval: time.Second}
	for _, f := range tune {
		f(&h.cfg)
	}
	h.start()
	return h
}

// start (re)creates the console on the same database, as a restart does.
func (h *harness) start() {
	h.t.Helper()
	c, err := New(h.cfg, Deps{DB: h.db, Now: h.clock.Now, Source: h.src, Devices: h.devs, Energy: h.energy, Updates: h.updates})
	if err != nil {
		h.t.Fatal(err)
	}
	h.c = c
	if h.srv != nil {
		h.srv.Config.Handler = c.Handler()
		return
	}
	h.srv = httptest.NewServer(c.Handler())
	h.t.Cleanup(h.srv.Close)
}

// serve runs the console's Serve until the test ends.
func (h *harness) serve() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.c.Serve(ctx)
	}()
	h.t.Cleanup(func() {
		cancel()
		<-done
	})
}

func sampleSnapshot() Snapshot {
	return Snapshot{
		Uplink:  UplinkStatus{State: UplinkOnline, DownBitsPerSec: 12_300_000, UpBitsPerSec: 1_200_000, Since: testStart.Add(-30 * time.Minute)},
		Sync:    SyncStatus{Items: 3, Bytes: 12_400_000},
		Storage: StorageStatus{CacheBytes: 1_200_000_000, CacheLimitBytes: 4_000_000_000, StoreBytes: 52_000_000_000, DiskBytes: 500_000_000_000},
		Devices: DevicesNow{Present: 2, Known: 3, Recent: []DeviceBrief{
			{MAC: "f0:18:98:00:00:01", IP: "10.20.0.21", Name: "ipad-cm2-01", Class: ClassTablet},
			{MAC: "3c:2a:f4:00:00:02", IP: "10.20.0.5", Name: "imprimante-salle-maitres", Class: ClassPrinter},
		}},
		Energy: EnergyToday{TodayKWh: 3.42, LastWeekSameDay: 3.9, BoxWatts: 7.2},
		Update: UpdateBrief{State: "idle", Version: "1.4.2"},
		Errors: []RecentError{{At: testStart.Add(-10 * time.Minute), Component: "sync", Message: "serveur WebDAV injoignable"}},
	}
}

func sampleDevices() []Device {
	return []Device{
		{MAC: "f0:18:98:00:00:01", IP: "10.20.0.21", Name: "ipad-cm2-01", Vendor: "Apple, Inc.", Class: ClassTablet,
			FirstSeen: testStart.Add(-72 * time.Hour), LastSeen: testStart.Add(-time.Minute), Present: true},
		{MAC: "3c:2a:f4:00:00:02", IP: "10.20.0.5", Name: "imprimante-salle-maitres", Vendor: "Brother Industries, Ltd.", Class: ClassPrinter,
			ClassSet: true, FirstSeen: testStart.Add(-240 * time.Hour), LastSeen: testStart.Add(-2 * time.Minute), Present: true},
		{MAC: "da:a1:19:00:00:03", IP: "10.20.0.33", Name: "", Vendor: "", Class: ClassPhone, Randomised: true,
			FirstSeen: testStart.Add(-26 * time.Hour), LastSeen: testStart.Add(-25 * time.Hour)},
	}
}

func sampleEnergy() EnergyView {
	day := func(offset int, box, tablet, printer float64, noData bool) EnergyDay {
		d := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC).AddDate(0, 0, offset)
		return EnergyDay{Date: d, ByClass: map[string]float64{ClassBox: box, ClassTablet: tablet, ClassPrinter: printer}, NoData: noData}
	}
	v := EnergyView{BoxWatts: 7.2, BoxSource: PowerEstimate, BoxModel: "N100", CO2eKgPerKWh: 0.052,
		FactorSource: "ADEME Base Empreinte", FactorDate: time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC), WeekCO2eKg: 1.23}
	for i := -13; i <= -7; i++ {
		v.PreviousWeek = append(v.PreviousWeek, day(i, 0.17, 1.5, 0.4, i == -8))
	}
	for i := -6; i <= 0; i++ {
		v.Week = append(v.Week, day(i, 0.17, 1.2, 0.35, i == -3))
	}
	v.Alerts = []LeftOn{{MAC: "3c:2a:f4:00:00:02", Name: "imprimante-salle-maitres", Class: ClassPrinter,
		From: time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 8, 23, 59, 0, 0, time.UTC), KWh: 0.58}}
	return v
}

// user is a browser-like HTTP client with its own cookies.
type user struct {
	t    testing.TB
	h    *harness
	http *http.Client
}

func (h *harness) newUser() *user {
	jar, _ := cookiejar.New(nil)
	return &user{t: h.t, h: h, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type answer struct {
	status int
	body   string
	header http.Header
}

func (u *user) do(req *http.Request) answer {
	u.t.Helper()
	resp, err := u.http.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

func (u *user) get(path string) answer {
	u.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u.h.srv.URL+path, nil)
	return u.do(req)
}

// post sends a form as a same-origin browser form would (Origin and
// Sec-Fetch-Site set).
func (u *user) post(path string, form url.Values) answer {
	u.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u.h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", u.h.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return u.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the form token of a page.
func (u *user) csrf(path string) string {
	u.t.Helper()
	a := u.get(path)
	m := csrfRE.FindStringSubmatch(a.body)
	if m == nil {
		u.t.Fatalf("GET %s: no csrf field (status %d)\n%s", path, a.status, a.body)
	}
	return html.UnescapeString(m[1])
}

// signIn signs in with a password (no TOTP) and checks it worked.
func (u *user) signIn(login, password string) {
	u.t.Helper()
	tok := u.csrf("/console/connexion")
	a := u.post("/console/connexion", url.Values{"csrf": {tok}, "identifiant": {login}, "motdepasse": {password}})
	if a.status != http.StatusSeeOther {
		u.t.Fatalf("sign in %s: status %d\n%s", login, a.status, a.body)
	}
}

func (u *user) cookie(name string) *http.Cookie {
	srv, _ := url.Parse(u.h.srv.URL)
	for _, c := range u.http.Jar.Cookies(srv) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

const testPassword = "correct horse battery"

// account creates an account with testPassword.
func (h *harness) account(login string, role Role) Account {
	h.t.Helper()
	a, err := h.c.CreateAccount(context.Background(), login, strings.ToUpper(login[:1])+login[1:], role, testPassword)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// signedIn returns a user signed in with a new account of role.
func (h *harness) signedIn(login string, role Role) *user {
	h.t.Helper()
	h.account(login, role)
	u := h.newUser()
	u.signIn(login, testPassword)
	return u
}

func (h *harness) auditActions() []string {
	h.t.Helper()
	entries, err := h.c.AuditLog(context.Background(), AuditQuery{Limit: 500})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for i := len(entries) - 1; i >= 0; i-- {
		out = append(out, entries[i].Action)
	}
	return out
}

// text strips tags and collapses spaces, to look for sentences in a page.
func text(body string) string {
	s := regexp.MustCompile(`(?s)<[^>]*>`).ReplaceAllString(body, " ")
	s = html.UnescapeString(s)
	return strings.Join(strings.Fields(s), " ")
}

func contains(body, want string) bool { return bytes.Contains([]byte(text(body)), []byte(want)) }
