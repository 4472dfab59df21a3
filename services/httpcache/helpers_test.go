package httpcache

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// fakeClock is the cache's clock in tests: time moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// openDB opens a real SQLite file in dir with the cache's migrations.
func openDB(t testing.TB, dir string) *sql.DB {
	t.Helper()
	path := filepath.Join(dir, "state.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var n int
	db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'httpcache_entries'`).Scan(&n)
	if n == 0 {
		for _, m := range Migrations() {
			if _, err := db.Exec(m.SQL); err != nil {
				t.Fatalf("migration %d: %v", m.Version, err)
			}
		}
	}
	return db
}

// originServer is a real HTTP server on 127.0.0.1 whose answers the test
// scripts; it records the requests it gets.
type originServer struct {
	*httptest.Server
	mu       sync.Mutex
	handler  http.HandlerFunc
	requests []*http.Request
}

func newOrigin(t testing.TB) *originServer {
	o := &originServer{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := r.Clone(context.Background())
		rec.Body = io.NopCloser(strings.NewReader(string(body)))
		o.mu.Lock()
		o.requests = append(o.requests, rec)
		h := o.handler
		o.mu.Unlock()
		if h == nil {
			http.Error(w, "no handler", http.StatusInternalServerError)
			return
		}
		h(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *originServer) set(h http.HandlerFunc) {
	o.mu.Lock()
	o.handler = h
	o.mu.Unlock()
}

func (o *originServer) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.requests)
}

func (o *originServer) last() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.requests) == 0 {
		return nil
	}
	return o.requests[len(o.requests)-1]
}

// env is a cache serving a mirror of a scripted origin.
type env struct {
	t      testing.TB
	c      *Cache
	clock  *fakeClock
	origin *originServer
	mirror *httptest.Server
	dir    string
	db     *sql.DB
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("HTTPCACHE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t testing.TB, tune ...func(*Config)) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, clock: newFakeClock(), dir: dir}
	e.db = openDB(t, dir)
	e.origin = newOrigin(t)
	e.start(tune...)
	return e
}

// start (re)creates the cache on the same folder and database.
func (e *env) start(tune ...func(*Config)) {
	t := e.t
	cfg := Config{Dir: filepath.Join(e.dir, "cache"), Now: e.clock.Now}
	for _, f := range tune {
		f(&cfg)
	}
	c, err := New(cfg, e.db, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Serve(ctx); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	select {
	case <-c.Ready():
	case <-done:
		t.Fatal("cache did not start")
	}
	u, _ := url.Parse(e.origin.URL)
	up := UpstreamClient(cfg)
	m := httptest.NewServer(c.Mirror(u, up))
	e.c, e.mirror = c, m
	t.Cleanup(func() {
		m.Close()
		cancel()
		<-done
	})
}

// stop closes the mirror and the cache's Serve, for a restart.
func (e *env) stop() {
	e.mirror.Close()
}

// result is a response with its body read.
type result struct {
	status int
	header http.Header
	body   string
	err    error
}

func (r result) fromCache() bool {
	return strings.Contains(r.header.Get("Cache-Status"), "; hit")
}

// do sends method path with header pairs ("Name: value") to the mirror.
func (e *env) do(method, path string, hdrs ...string) result {
	e.t.Helper()
	req, err := http.NewRequest(method, e.mirror.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, h := range hdrs {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return send(req)
}

func send(req *http.Request) result {
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

func (e *env) get(path string, hdrs ...string) result {
	e.t.Helper()
	return e.do(http.MethodGet, path, hdrs...)
}

// httpDate formats t for a Date, Expires or Last-Modified field.
func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
