package usb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// openDB opens a real SQLite file with the appliance's options and applies
// this package's migrations.
func openDB(t testing.TB, dir string) *sql.DB {
	t.Helper()
	path := filepath.Join(dir, "preau.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := migrate(db); err != nil {
		t.Fatal(err)
	}
	return db
}

func migrate(db *sql.DB) error {
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS test_migrations (version INTEGER PRIMARY KEY)"); err != nil {
		return err
	}
	for _, m := range Migrations() {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM test_migrations WHERE version = ?", m.Version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		if _, err := db.Exec(m.SQL); err != nil {
			return fmt.Errorf("migration %d: %w", m.Version, err)
		}
		if _, err := db.Exec("INSERT INTO test_migrations VALUES (?)", m.Version); err != nil {
			return err
		}
	}
	return nil
}

// blobs is a stand-in for the content store: files named by their SHA-256.
type blobs struct{ dir string }

func newBlobs(t testing.TB) *blobs {
	return &blobs{dir: t.TempDir()}
}

func (b *blobs) put(t testing.TB, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	p := filepath.Join(b.dir, h)
	if fi, err := os.Stat(p); err == nil && fi.Size() == int64(len(data)) {
		return h // content-addressed: already there (crash helpers share blobs)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

func (b *blobs) open(sum string) (*os.File, error) {
	return os.Open(filepath.Join(b.dir, sum))
}

// sampleItems stores n pseudo-random files (sizes up to maxSize) and returns
// their items; items 0 and 1 share content when n > 1, as two teachers
// receiving the same document would.
func sampleItems(t testing.TB, b *blobs, n, maxSize int, seed uint64) []Item {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	items := make([]Item, 0, n)
	var shared []byte
	for i := range n {
		data := make([]byte, 1+rng.IntN(maxSize))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		if i == 1 {
			data = shared
		}
		if i == 0 {
			shared = data
		}
		h := b.put(t, data)
		dest := "nuage-6a"
		if i%2 == 1 {
			dest = "nuage-cm2"
		}
		items = append(items, Item{
			Key:         fmt.Sprintf("devoir-%03d", i),
			Destination: dest,
			RemotePath:  fmt.Sprintf("Devoirs/Élève %d/copie-%d.pdf", i, i),
			Size:        int64(len(data)),
			SHA256:      h,
			MediaType:   "application/pdf",
		})
	}
	return items
}

func newCourier(t testing.TB, cfg Config) *Courier {
	t.Helper()
	if cfg.BoxID == "" {
		cfg.BoxID = "École Jules-Ferry (Dax)"
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC) }
	}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countingSink wraps a sink and counts the calls that reach it.
type countingSink struct {
	Sink
	mu         sync.Mutex
	stats      int
	puts       int
	beforePut  func(it Item) // runs before the wrapped Put, if set
	putFailure error         // returned instead of calling Put, if set
}

func (s *countingSink) Stat(ctx context.Context, it Item) (Remote, error) {
	s.mu.Lock()
	s.stats++
	s.mu.Unlock()
	return s.Sink.Stat(ctx, it)
}

func (s *countingSink) Put(ctx context.Context, it Item, body io.Reader) error {
	s.mu.Lock()
	s.puts++
	s.mu.Unlock()
	if s.beforePut != nil {
		s.beforePut(it)
	}
	if s.putFailure != nil {
		return s.putFailure
	}
	return s.Sink.Put(ctx, it, body)
}

// memSeen is a Seen in memory; failMark makes the first n Marks fail.
type memSeen struct {
	mu       sync.Mutex
	keys     map[string]bool
	failMark int
}

func (m *memSeen) Seen(_ context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keys[key], nil
}

func (m *memSeen) Mark(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failMark > 0 {
		m.failMark--
		return errors.New("disk full")
	}
	if m.keys == nil {
		m.keys = map[string]bool{}
	}
	m.keys[key] = true
	return nil
}

// delivered lists every regular file under dir with its SHA-256, by path
// relative to dir, and fails on anything else (temporary files included).
func delivered(t testing.TB, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if !d.Type().IsRegular() {
			t.Errorf("%s: not a regular file", rel)
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		got[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantDelivered(items []Item) map[string]string {
	want := map[string]string{}
	for _, it := range items {
		want[it.Destination+"/"+it.RemotePath] = it.SHA256
	}
	return want
}

func diffMaps(got, want map[string]string) string {
	var out string
	for k, v := range want {
		if got[k] != v {
			out += fmt.Sprintf("  %s: got %q, want %q\n", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			out += fmt.Sprintf("  %s: unexpected (%s)\n", k, v)
		}
	}
	return out
}
