package dhcp

import (
	"context"
	"database/sql"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	_ "github.com/mattn/go-sqlite3"
)

// openDB opens a real SQLite file the way appliance does and applies the
// migrations in order.
func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var version int
	db.QueryRow(`PRAGMA user_version`).Scan(&version)
	for _, m := range Migrations() {
		if m.Version <= version {
			continue
		}
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatalf("migration %d %s: %v", m.Version, m.Name, err)
		}
		if _, err := db.Exec(`PRAGMA user_version = ` + strconv.Itoa(m.Version)); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func mustMAC(s string) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// pkt builds a client message.
func pkt(t dhcpv4.MessageType, mac string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	all := append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(mustMAC(mac)), dhcpv4.WithMessageType(t)}, mods...)
	m, err := dhcpv4.New(all...)
	if err != nil {
		panic(err)
	}
	return m
}

func requested(ip string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip)))
}

func serverID(ip string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(ip)))
}

func ciaddr(ip string) dhcpv4.Modifier { return dhcpv4.WithClientIP(net.ParseIP(ip)) }

func hostname(h string) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptHostName(h)) }

// testConfig is a /24 with the box at .1, pool .100–.103.
func testConfig() Config {
	return Config{
		Interface:  "lan0",
		ServerIP:   addr("10.20.0.1"),
		Subnet:     netip.MustParsePrefix("10.20.0.0/24"),
		PoolStart:  addr("10.20.0.100"),
		PoolEnd:    addr("10.20.0.103"),
		CaptiveURI: "https://preau.example.fr/captive-portal/api",
		LeaseTime:  time.Hour,
		Static:     map[string]netip.Addr{"02:00:00:00:00:5A": addr("10.20.0.50")},
	}
}

// newTestServer returns a server on a fresh database with a fake clock,
// its table loaded as Serve would.
func newTestServer(t testing.TB, cfg Config, clock *fakeClock) *Server {
	t.Helper()
	db := openDB(t, filepath.Join(t.TempDir(), "preau.db"))
	cfg.Now = clock.Now
	s, err := New(cfg, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.tbl, err = loadTable(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
