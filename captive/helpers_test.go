package captive

import (
	"context"
	"database/sql"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// openTestDB opens a SQLite file like appliance/store does and applies the
// captive migrations in order, recording the version in user_version so a
// reopen applies nothing twice.
func openTestDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var have int
	if err := db.QueryRow("PRAGMA user_version").Scan(&have); err != nil {
		t.Fatal(err)
	}
	for _, m := range Migrations() {
		if m.Version <= have {
			continue
		}
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatalf("migration %d (%s): %v", m.Version, m.Name, err)
		}
		if _, err := db.Exec("PRAGMA user_version = " + strconv.Itoa(m.Version)); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// neighbours is a settable neighbour table (our own interface: a fake is
// fine here; the real table is tested in internal/neigh and netns_test.go).
type neighbours struct {
	mu   sync.Mutex
	macs map[netip.Addr]net.HardwareAddr
}

func (n *neighbours) MAC(ip netip.Addr) (net.HardwareAddr, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	mac, ok := n.macs[ip]
	return mac, ok
}

func (n *neighbours) set(ip string, mac string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.macs == nil {
		n.macs = map[netip.Addr]net.HardwareAddr{}
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		panic(err)
	}
	n.macs[netip.MustParseAddr(ip)] = hw
}

// recorder collects OnChange calls.
type recorder struct {
	mu  sync.Mutex
	got []Device
}

func (r *recorder) OnChange(d Device) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, d)
}

func (r *recorder) all() []Device {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Device(nil), r.got...)
}

// paris is the school's time zone in these tests.
var paris = func() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return l
}()

type env struct {
	c     *Captive
	db    *sql.DB
	path  string
	clock *clock
	neigh *neighbours
	rec   *recorder
}

// newEnv builds a Captive over a fresh database, a test clock at 10:00 on a
// school day and an empty fake neighbour table, and loads it.
func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "preau.db")
	e := &env{
		path:  path,
		db:    openTestDB(t, path),
		clock: newClock(time.Date(2025, 3, 10, 10, 0, 0, 0, paris)),
		neigh: &neighbours{},
		rec:   &recorder{},
	}
	if cfg.Location == nil {
		cfg.Location = paris
	}
	e.c = e.newCaptive(t, cfg)
	return e
}

func (e *env) newCaptive(t testing.TB, cfg Config) *Captive {
	t.Helper()
	c, err := New(cfg, Deps{DB: e.db, Now: e.clock.Now, Neighbours: e.neigh, OnChange: e.rec.OnChange})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

func charterOn() Config { return Config{Charter: Charter{Enabled: true}, Location: paris} }

func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := execLookPath(name); err != nil {
		if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s is required (PREAU_REQUIRE_PEERS=1) but missing: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
}
