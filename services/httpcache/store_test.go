package httpcache

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPersistence checks that stored responses survive a restart, and
// that load drops entries whose body is missing or of the wrong size and
// removes unreferenced bodies and temporary files.
func TestPersistence(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/a", "/b", "/c"} {
		e.origin.set(reply(200, "body"+p, "Cache-Control: max-age=3600", "Vary: Accept-Language")(e.clock.Now))
		if r := e.get(p, "Accept-Language: fr"); r.body != "body"+p {
			t.Fatalf("%s: %q", p, r.body)
		}
	}
	e.stop()
	cache := filepath.Join(e.dir, "cache")
	var nameB, nameC string
	e.db.QueryRow(`SELECT name FROM httpcache_entries WHERE pkey LIKE '%/b'`).Scan(&nameB)
	e.db.QueryRow(`SELECT name FROM httpcache_entries WHERE pkey LIKE '%/c'`).Scan(&nameC)
	os.Remove(filepath.Join(cache, "bodies", nameB[:2], nameB))                        // lost body
	os.WriteFile(filepath.Join(cache, "bodies", nameC[:2], nameC), []byte("x"), 0o600) // wrong size
	orphan := filepath.Join(cache, "bodies", "ff", "ffffffffffffffffffffffffffffffff")
	os.MkdirAll(filepath.Dir(orphan), 0o750)
	os.WriteFile(orphan, []byte("orphan"), 0o600)
	os.WriteFile(filepath.Join(cache, "tmp", "fill-123"), []byte("partial"), 0o600)

	e.start()
	before := e.origin.count()
	if r := e.get("/a", "Accept-Language: fr"); !r.fromCache() || r.body != "body/a" {
		t.Errorf("/a after restart: %q %q", r.body, r.header.Get("Cache-Status"))
	}
	if e.origin.count() != before {
		t.Error("/a went upstream after restart")
	}
	if st := e.c.Status(t.Context()); st.Entries != 1 {
		t.Errorf("entries after load = %d, want 1", st.Entries)
	}
	var rows int
	e.db.QueryRow(`SELECT count(*) FROM httpcache_entries`).Scan(&rows)
	if rows != 1 {
		t.Errorf("rows after load = %d, want 1", rows)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Error("orphan body not removed")
	}
	if n := tmpFiles(t, e); len(n) != 0 {
		t.Errorf("temporary files left: %v", n)
	}
}

// TestLastUsedPersisted checks that LRU order survives a restart.
func TestLastUsedPersisted(t *testing.T) {
	e := newEnv(t)
	e.origin.set(reply(200, "x", "Cache-Control: max-age=3600")(e.clock.Now))
	e.get("/x")
	e.clock.Advance(time.Hour)
	e.get("/x")
	if err := e.c.store.flushUsed(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	var used int64
	e.db.QueryRow(`SELECT last_used FROM httpcache_entries`).Scan(&used)
	if want := e.clock.Now().UnixMilli(); used != want {
		t.Errorf("last_used = %d, want %d", used, want)
	}
}

// crashBody is the deterministic body of path in the crash test.
func crashBody(path string) string {
	sum := sha256.Sum256([]byte(path))
	h := hex.EncodeToString(sum[:])
	n := int(sum[0])*int(sum[1])%4000 + 1
	return strings.Repeat(h, n) // up to about 256 KB
}

// TestCrashConsistency kills (SIGKILL) a process that stores, freshens and
// invalidates responses at random instants, then checks that every entry
// the next start loads has exactly the body it was stored with.
func TestCrashConsistency(t *testing.T) {
	if dir := os.Getenv("HTTPCACHE_CRASH_CHILD"); dir != "" {
		crashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	dir := t.TempDir()
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashConsistency$", "-test.v")
		cmd.Env = append(os.Environ(), "HTTPCACHE_CRASH_CHILD="+dir)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the child works, then kill it at a random instant.
		buf := make([]byte, 64)
		out.Read(buf)
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		db := openDB(t, dir)
		c, err := New(Config{Dir: filepath.Join(dir, "cache")}, db, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.store.load(t.Context()); err != nil {
			t.Fatalf("round %d: load: %v", round, err)
		}
		checked := 0
		for pkey, vs := range c.store.byKey {
			for _, v := range vs {
				b, err := os.ReadFile(c.store.bodyPath(v.name))
				if err != nil {
					t.Fatalf("round %d: %s: %v", round, pkey, err)
				}
				path := pkey[strings.LastIndex(pkey, "/"):]
				if string(b) != crashBody(path) {
					t.Fatalf("round %d: %s: corrupt body (%d bytes, want %d)", round, pkey, len(b), len(crashBody(path)))
				}
				if v.header.Get("X-Path") != path {
					t.Fatalf("round %d: %s: header of another response: %v", round, pkey, v.header)
				}
				checked++
			}
		}
		t.Logf("round %d: %d entries intact", round, checked)
		db.Close()
	}
}

func crashChild(t *testing.T, dir string) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		w.Header().Set("X-Path", p)
		w.Header().Set("ETag", `"`+p+`"`)
		w.Header().Set("Cache-Control", "max-age=0")
		if r.Header.Get("If-None-Match") == `"`+p+`"` && rand.IntN(2) == 0 {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, crashBody(p))
	}))
	defer origin.Close()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "state.db")+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'httpcache_entries'`).Scan(&n)
	if n == 0 {
		for _, m := range Migrations() {
			db.Exec(m.SQL)
		}
	}
	c, err := New(Config{Dir: filepath.Join(dir, "cache"), MaxBytes: 8 << 20}, db, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	go c.Serve(context.Background())
	<-c.Ready()
	fmt.Println("working")
	tr := c.Transport(UpstreamClient(c.cfg))
	for i := 0; ; i++ {
		p := fmt.Sprintf("/%d", rand.IntN(200))
		method := http.MethodGet
		if i%17 == 0 {
			method = http.MethodDelete
		}
		req, _ := http.NewRequest(method, origin.URL+p, nil)
		resp, err := tr.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

// TestDiskFull fills a small tmpfs: on ENOSPC the cache evicts and retries
// once, and a body that still does not fit is served unstored. Nothing
// stored is ever corrupt.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
			t.Fatal("TestDiskFull needs root to mount a tmpfs")
		}
		t.Skip("TestDiskFull needs root to mount a tmpfs")
	}
	e := newEnvDeferred(t)
	cache := filepath.Join(e.dir, "cache")
	os.MkdirAll(cache, 0o750)
	if err := syscall.Mount("tmpfs", cache, "tmpfs", 0, "size=2m"); err != nil {
		if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
			t.Fatalf("mount tmpfs: %v", err)
		}
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(cache, syscall.MNT_DETACH) })
	e.start(func(c *Config) { c.MaxBytes = 1 << 30 })
	body := func(p string) string { return strings.Repeat(p[1:2], 600<<10) }
	e.origin.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		if r.URL.Path == "/huge" {
			io.WriteString(w, strings.Repeat("h", 3<<20))
			return
		}
		io.WriteString(w, body(r.URL.Path))
	})
	for i, p := range []string{"/1", "/2", "/3", "/4", "/5"} {
		e.clock.Advance(time.Second)
		if r := e.get(p); r.body != body(p) {
			t.Fatalf("%s: %d bytes", p, len(r.body))
		}
		if i < 2 {
			continue
		}
		// The newest always fits after eviction.
		if r := e.get(p); !r.fromCache() || r.body != body(p) {
			t.Errorf("%s not stored after ENOSPC: %q", p, r.header.Get("Cache-Status"))
		}
	}
	if r := e.get("/huge"); len(r.body) != 3<<20 {
		t.Errorf("/huge: %d bytes, want it streamed whole", len(r.body))
	}
	if r := e.get("/huge"); r.fromCache() {
		t.Error("/huge stored on a 2 MB disk")
	}
	for pkey, vs := range e.c.store.byKey {
		for _, v := range vs {
			b, err := os.ReadFile(e.c.store.bodyPath(v.name))
			p := pkey[strings.LastIndex(pkey, "/"):]
			if err != nil || string(b) != body(p) {
				t.Errorf("%s corrupt after ENOSPC", pkey)
			}
		}
	}
	if n := tmpFiles(t, e); len(n) != 0 {
		t.Errorf("temporary files left: %v", n)
	}
	if st := e.c.Status(t.Context()); st.Evictions == 0 {
		t.Errorf("no eviction on a full disk: %+v", st)
	}
}

// newEnvDeferred is newEnv without starting the cache.
func newEnvDeferred(t *testing.T) *env {
	dir := t.TempDir()
	e := &env{t: t, clock: newFakeClock(), dir: dir}
	e.db = openDB(t, dir)
	e.origin = newOrigin(t)
	return e
}
