package inventory

import (
	"context"
	"database/sql"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// openDB opens a real SQLite file as appliance/store does and applies the
// migrations in order.
func openDB(t testing.TB) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "box.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, m := range Migrations() {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(m.SQL); err != nil {
			t.Fatalf("migration %d %s: %v", m.Version, m.Name, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.Local)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// testOUIDir is the excerpt of Debian's ieee-data of the oui package.
const testOUIDir = "internal/oui/testdata"

func newTestInventory(t testing.TB, cfg Config, clock *fakeClock) *Inventory {
	t.Helper()
	if cfg.Interfaces == nil {
		cfg.Interfaces = []string{"lan0"}
	}
	if cfg.OUIDir == "" {
		cfg.OUIDir = testOUIDir
	}
	inv, err := New(cfg, openDB(t), slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func mustMAC(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func observe(t testing.TB, inv *Inventory, o Observation) {
	t.Helper()
	if err := inv.Observe(context.Background(), o); err != nil {
		t.Fatalf("Observe(%+v): %v", o, err)
	}
}

func device(t testing.TB, inv *Inventory, mac string) Device {
	t.Helper()
	d, err := inv.Device(context.Background(), mac)
	if err != nil {
		t.Fatalf("Device(%s): %v", mac, err)
	}
	return d
}

// drain returns the events waiting in ch.
func drain(ch <-chan Event) []Event {
	var out []Event
	for {
		select {
		case ev := <-ch:
			out = append(out, ev)
		default:
			return out
		}
	}
}
