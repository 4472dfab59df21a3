package energy

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openDB opens a database file like appliance/store does and applies the
// energy migrations, tracking them in user_version.
func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	for _, m := range Migrations()[v:] {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(m.SQL); err != nil {
			t.Fatalf("migration %d: %v", m.Version, err)
		}
		if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", m.Version)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// materialize writes a txtar-like fixture ("-- path --" lines start a
// file) under a new temporary directory and returns it. The fixtures
// hold sysfs paths with ':' that a module file name may not have.
func materialize(t testing.TB, fixture string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for name, content := range parseTxtar(string(b)) {
		writeFile(t, filepath.Join(root, name), content)
	}
	return root
}

// parseTxtar splits a txtar archive into its files.
func parseTxtar(s string) map[string]string {
	files := map[string]string{}
	var name string
	var buf strings.Builder
	flush := func() {
		if name != "" {
			files[name] = buf.String()
		}
		buf.Reset()
	}
	for line := range strings.Lines(s) {
		l := strings.TrimRight(line, "\n")
		if strings.HasPrefix(l, "-- ") && strings.HasSuffix(l, " --") && len(l) > 6 {
			flush()
			name = strings.TrimSpace(l[3 : len(l)-3])
			continue
		}
		if name != "" {
			buf.WriteString(line)
		}
	}
	flush()
	return files
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
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

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeCPU is busy a fixed share of the time: each reading advances the
// counters by the clock's elapsed time × number of CPUs.
type fakeCPU struct {
	clock *fakeClock
	util  float64
	cpus  float64
	mu    sync.Mutex
	last  time.Time
	times CPUTimes
	fail  bool
}

func (f *fakeCPU) CPUTimes(context.Context) (CPUTimes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return CPUTimes{}, fmt.Errorf("no /proc/stat")
	}
	now := f.clock.Now()
	if !f.last.IsZero() {
		d := now.Sub(f.last).Seconds() * f.cpus
		f.times.Total += d
		f.times.Busy += d * f.util
	}
	f.last = now
	return f.times, nil
}

// fakePresence is an inventory whose presence intervals are known in
// advance but revealed only up to the clock's now, as the real one.
type fakePresence struct {
	clock   *fakeClock
	devices []Device
	ivs     map[string][]Interval
}

func (p *fakePresence) Devices(context.Context) ([]Device, error) { return p.devices, nil }

func (p *fakePresence) Intervals(_ context.Context, from, to time.Time) (map[string][]Interval, error) {
	now := p.clock.Now()
	out := map[string][]Interval{}
	for id, list := range p.ivs {
		for _, iv := range list {
			if !iv.From.Before(now) {
				continue
			}
			if iv.To.After(now) {
				iv.To = time.Time{} // still present
			}
			end := iv.To
			if end.IsZero() {
				end = now
			}
			if iv.From.Before(to) && end.After(from) {
				out[id] = append(out[id], iv)
			}
		}
	}
	return out, nil
}

var paris = func() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err)
	}
	return l
}()

// at is a wall-clock time in Paris: at(10, 9, 30) is 10 Nov 2025 09:30.
func at(day, hour, minute int) time.Time {
	return time.Date(2025, time.November, day, hour, minute, 0, 0, paris)
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9+1e-6*math.Abs(b) }

// newTestMeter builds a Meter on a fresh database file.
func newTestMeter(t *testing.T, cfg Config, d Deps) *Meter {
	t.Helper()
	if d.DB == nil {
		d.DB = openDB(t, filepath.Join(t.TempDir(), "preau.db"))
		t.Cleanup(func() { d.DB.Close() })
	}
	if d.Log == nil {
		d.Log = quiet()
	}
	if cfg.SysRoot == "" {
		cfg.SysRoot = t.TempDir() // no powercap, no power_supply
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = t.TempDir()
	}
	m, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// run drives the sampler from the clock's time to end, one sample every
// step, as Serve would.
func run(t *testing.T, m *Meter, clock *fakeClock, end time.Time, step time.Duration) {
	t.Helper()
	ctx := context.Background()
	if !m.started {
		m.start(ctx)
	}
	for clock.Now().Before(end) {
		clock.Add(step)
		m.sample(ctx)
	}
}
