package outbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

func openTestDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var n int
	db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'outbox_items'`).Scan(&n)
	if n == 0 {
		for _, m := range Migrations() {
			if _, err := db.Exec(m.SQL); err != nil {
				t.Fatalf("migration %d %s: %v", m.Version, m.Name, err)
			}
		}
	}
	return db
}

// dirBlobs is a content store reduced to files named by their hash.
type dirBlobs struct{ dir string }

func (b dirBlobs) OpenBlob(hash string) (*os.File, error) {
	return os.Open(filepath.Join(b.dir, hash))
}

func (b dirBlobs) put(t *testing.T, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(b.dir, h), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// memConnector is a destination in memory. It behaves as the outbox
// expects of a connector: Upload never overwrites a file.
type memConnector struct {
	mu       sync.Mutex
	files    map[string][]byte
	uploads  map[string]int
	cleanups map[string]int
	noStat   bool
	// hooks, called before the operation; a non-nil error is returned.
	beforeUpload func(path string, n int) error
	beforeStat   func(path string) error
}

func newMem() *memConnector {
	return &memConnector{files: map[string][]byte{}, uploads: map[string]int{}, cleanups: map[string]int{}}
}

func (m *memConnector) Stat(ctx context.Context, p string) (int64, string, bool, error) {
	if m.noStat {
		return 0, "", false, fmt.Errorf("stat %s: %w", p, errors.ErrUnsupported)
	}
	if m.beforeStat != nil {
		if err := m.beforeStat(p); err != nil {
			return 0, "", false, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[p]
	if !ok {
		return 0, "", false, nil
	}
	sum := sha256.Sum256(b)
	return int64(len(b)), hex.EncodeToString(sum[:]), true, nil
}

func (m *memConnector) Upload(ctx context.Context, p string, body io.ReaderAt, size int64, sum string, progress func(int64)) error {
	m.mu.Lock()
	m.uploads[p]++
	n := m.uploads[p]
	m.mu.Unlock()
	if m.beforeUpload != nil {
		if err := m.beforeUpload(p, n); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.NewSectionReader(body, 0, size)); err != nil {
		return err
	}
	progress(size / 2)
	progress(size)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[p]; !ok {
		m.files[p] = buf.Bytes()
	}
	return nil
}

// snapshot copies the connector's state, for the test to read while
// workers run.
func (m *memConnector) snapshot() *memConnector {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := newMem()
	for k, v := range m.files {
		c.files[k] = v
	}
	for k, v := range m.uploads {
		c.uploads[k] = v
	}
	for k, v := range m.cleanups {
		c.cleanups[k] = v
	}
	return c
}

func (m *memConnector) Cleanup(ctx context.Context, p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cleanups[p]++
	return nil
}

func (m *memConnector) Connector(dest string) (Connector, error) {
	if dest != "nuage" {
		return nil, fmt.Errorf("destination %q: %w", dest, ErrUnknownDestination)
	}
	return m, nil
}

// testErr is a connector error of a given kind.
type testErr struct {
	msg        string
	permanent  bool
	retryAfter time.Duration
}

func (e *testErr) Error() string             { return "erreur de test : " + e.msg }
func (e *testErr) English() string           { return "test error: " + e.msg }
func (e *testErr) Permanent() bool           { return e.permanent }
func (e *testErr) RetryAfter() time.Duration { return e.retryAfter }

type env struct {
	t     *testing.T
	db    *sql.DB
	blobs dirBlobs
	mem   *memConnector
	ob    *Outbox
	// changes receives every committed transition.
	changes chan ItemStatus
}

func newEnv(t *testing.T, cfg Config, gate Gate) *env {
	t.Helper()
	return newEnvWith(t, cfg, gate, func(m *memConnector) Connectors { return m })
}

// newEnvWith is newEnv with the connectors conns makes of the memory
// connector (a wrapper that adds an optional interface).
func newEnvWith(t *testing.T, cfg Config, gate Gate, conns func(*memConnector) Connectors) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, db: openTestDB(t, filepath.Join(dir, "preau.db")), blobs: dirBlobs{dir: t.TempDir()}, mem: newMem(),
		changes: make(chan ItemStatus, 1000)}
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = 10*time.Millisecond, 40*time.Millisecond
	}
	ob, err := New(cfg, e.db, e.blobs, conns(e.mem), gate, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ob.OnChange(func(s ItemStatus) {
		select {
		case e.changes <- s:
		default:
		}
	})
	e.ob = ob
	return e
}

// item stores body as a blob and returns an item for it.
func (e *env) item(key, path string, body []byte) Item {
	h := e.blobs.put(e.t, body)
	return Item{Key: key, Destination: "nuage", RemotePath: path, BlobHash: h, Size: int64(len(body)), SHA256: h,
		MediaType: "application/pdf"}
}

// serve runs Serve until the test ends.
func (e *env) serve() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.ob.Serve(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("Serve() = %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// waitState waits until key reaches one of the states.
func (e *env) waitState(key string, states ...State) ItemStatus {
	e.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		st, err := e.ob.Get(context.Background(), key)
		if err == nil {
			for _, s := range states {
				if st.State == s {
					return st
				}
			}
		}
		select {
		case <-e.changes:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			e.t.Fatalf("item %q is %q (%s), want one of %v", key, st.State, st.LastErrorEN, states)
		}
	}
}
