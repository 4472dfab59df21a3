package webdav

// End to end: the real outbox (package sync/outbox, as appliance wires it)
// sending through this connector to real WebDAV servers, across a fault
// proxy that cuts and stalls connections, and across kill -9 of a worker
// process at random instants.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"preau/sync/outbox"
)

var _ outbox.Connector = (*Client)(nil)

var chaos = flag.Bool("chaos", false, "kill -9 the worker 200 times instead of 20 (also PREAU_CHAOS=1)")

type connectors map[string]*Client

func (m connectors) Connector(dest string) (outbox.Connector, error) {
	c, ok := m[dest]
	if !ok {
		return nil, fmt.Errorf("%q: %w", dest, outbox.ErrUnknownDestination)
	}
	return c, nil
}

type dirBlobs string

func (d dirBlobs) OpenBlob(hash string) (*os.File, error) {
	return os.Open(filepath.Join(string(d), hash))
}

func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'outbox_items'`).Scan(&n)
	if n == 0 {
		for _, m := range outbox.Migrations() {
			if _, err := db.Exec(m.SQL); err != nil {
				t.Fatal(err)
			}
		}
	}
	return db
}

// testItem is a file to send, its body stored as a blob.
type testItem struct {
	Key, Path, Hash string
	Size            int64
}

func makeItems(t testing.TB, blobs string, prefix string, sizes []int, seed uint64) []testItem {
	t.Helper()
	var out []testItem
	for i, size := range sizes {
		body := randomBytes(size, seed+uint64(i))
		sum := sha256.Sum256(body)
		h := hex.EncodeToString(sum[:])
		if err := os.WriteFile(filepath.Join(blobs, h), body, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, testItem{Key: fmt.Sprintf("%s-%02d", prefix, i), Hash: h, Size: int64(size),
			Path: fmt.Sprintf("%s/CM2-A/Élève %02d/devoir %d.bin", prefix, i%5, i)})
	}
	return out
}

func (it testItem) outbox() outbox.Item {
	return outbox.Item{Key: it.Key, Destination: "nuage", RemotePath: it.Path, BlobHash: it.Hash, Size: it.Size,
		SHA256: it.Hash, MediaType: "application/octet-stream"}
}

// runOutbox enqueues items and serves until every item of the outbox is
// delivered or failed.
func runOutbox(ctx context.Context, db *sql.DB, blobs string, c *Client, items []testItem, workers int) (*outbox.Outbox, error) {
	ob, err := outbox.New(outbox.Config{Workers: workers, RetryMin: 10 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		MaxRecoveries: 1000}, db, dirBlobs(blobs), connectors{"nuage": c}, nil, c.log)
	if err != nil {
		return nil, err
	}
	changed := make(chan struct{}, 1)
	ob.OnChange(func(outbox.ItemStatus) {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	for _, it := range items {
		if err := ob.Enqueue(ctx, it.outbox()); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ob.Serve(ctx) }()
	for {
		st, err := ob.Status(ctx)
		if err != nil {
			return ob, err
		}
		if st.Counts[outbox.StateQueued]+st.Counts[outbox.StateSending]+st.Counts[outbox.StateVerifying] == 0 {
			cancel()
			return ob, <-done
		}
		select {
		case <-changed:
		case <-time.After(500 * time.Millisecond):
		case err := <-done:
			return ob, fmt.Errorf("Serve() returned early: %v", err)
		case <-ctx.Done():
			return ob, ctx.Err()
		}
	}
}

// checkDelivered checks every item is on the server exactly once, with its
// hash, and nothing else under prefix: no duplicate, no temporary file. A
// server may still be dropping the temporary file of a request cut a
// moment ago: it is given a few seconds.
func checkDelivered(t *testing.T, dir, prefix string, items []testItem) {
	t.Helper()
	want := map[string]string{}
	for _, it := range items {
		want[it.Path] = it.Hash
	}
	var problems []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		problems = problems[:0]
		got := tree(t, dir)
		for p, h := range want {
			if got[p] != h {
				problems = append(problems, fmt.Sprintf("%s: sha256 %.12s on the server, want %.12s", p, got[p], h))
			}
		}
		for p := range got {
			if _, ok := want[p]; !ok && (strings.HasPrefix(p, prefix+"/") || strings.Contains(p, tempPrefix)) {
				problems = append(problems, "unexpected file on the server: "+p)
			}
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// destination is a server under test: its client URL and folder on disk.
type destination struct {
	name     string
	url      string // of the folder
	dir      string
	user     string
	pass     string
	chunked  bool
	sessions func() int
	hostPort string
}

func destinations(t *testing.T) []func(t *testing.T) destination {
	hostOf := func(u string) string { pu, _ := url.Parse(u); return pu.Host }
	return []func(t *testing.T) destination{
		func(t *testing.T) destination {
			p := startRclone(t, "", "u", "p")
			return destination{name: "rclone", url: p.url, dir: p.dir, user: p.user, pass: p.pass, hostPort: hostOf(p.url)}
		},
		func(t *testing.T) destination {
			p := startApache(t, apacheOptions{})
			return destination{name: "apache", url: p.url, dir: p.dir, user: p.user, pass: p.pass, hostPort: hostOf(p.url)}
		},
		func(t *testing.T) destination {
			f := newFakeNextcloud(t)
			return destination{name: "nextcloud", url: f.filesURL(), dir: f.root, user: f.user, pass: f.pass, chunked: true,
				hostPort: hostOf(f.srv.URL), sessions: func() int { f.expire(); f.mu.Lock(); defer f.mu.Unlock(); return len(f.sessions) }}
		},
	}
}

func sizesFor(d destination) []int {
	sizes := []int{0, 1, 900, 64 << 10, 300 << 10, 700 << 10, 1 << 20, 2<<20 + 3, 150 << 10, 5000, 40 << 10, 1<<20 + 1}
	if d.chunked {
		sizes = append(sizes, 11<<20+7, 6<<20)
	}
	return sizes
}

func TestOutboxThroughCutsAndStalls(t *testing.T) {
	for i, start := range destinations(t) {
		for _, keepAlive := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d/keepalive=%v", i, keepAlive), func(t *testing.T) {
				outboxThroughFaults(t, start(t), uint64(i), keepAlive)
			})
		}
	}
}

// outboxThroughFaults sends items through a proxy that cuts or stalls
// each of its first 60 connections at a random byte. Without keep-alive,
// every request has its own connection, so faults hit every kind of
// request (PROPFIND, MKCOL, PUT, MOVE, DELETE) and both directions.
func outboxThroughFaults(t *testing.T, d destination, seed uint64, keepAlive bool) {
	t.Logf("destination %s", d.name)
	rng := rand.New(rand.NewPCG(seed, 42))
	// Offsets spread evenly on a log scale: a request line, headers, a
	// small body or deep inside a large one are all hit.
	at := func(most float64) int64 { return 1 + int64(math.Exp(rng.Float64()*math.Log(most))) }
	plans := make([]fault, 60)
	for n := range plans {
		switch rng.IntN(3) {
		case 0:
			plans[n] = fault{up: at(3 << 20)}
		case 1:
			plans[n] = fault{down: at(2000)}
		case 2:
			plans[n] = fault{stall: at(3 << 20)}
		}
	}
	proxy := newFaultProxy(t, d.hostPort, func(n int) fault {
		if n <= len(plans) {
			return plans[n-1]
		}
		return fault{}
	})
	u := strings.Replace(d.url, d.hostPort, proxy.addr(), 1)
	hc := httpClient()
	hc.Transport.(*http.Transport).DisableKeepAlives = !keepAlive
	t.Cleanup(hc.CloseIdleConnections)
	c, err := New(Config{URL: u, User: d.user, Password: d.pass, IdleTimeout: 300 * time.Millisecond,
		ResponseTimeout: time.Second, ChunkThreshold: 5 << 20, ChunkSize: 5 << 20}, hc, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	items := makeItems(t, work, "faults", append(sizesFor(d), sizesFor(d)...), 100*seed)
	db := openDB(t, filepath.Join(work, "preau.db"))
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ob, err := runOutbox(ctx, db, work, c, items, 3)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := ob.Status(ctx)
	if st.Counts[outbox.StateDelivered] != len(items) {
		for _, it := range st.Items {
			t.Errorf("%s: %s: %s", it.Key, it.State, it.LastErrorEN)
		}
	}
	checkDelivered(t, d.dir, "faults", items)
	if d.sessions != nil && d.sessions() != 0 {
		t.Errorf("%d chunked upload sessions left", d.sessions())
	}
	t.Logf("%s: %d connections, %d cut, %d stalled", d.name, proxy.n.Load(), proxy.cuts.Load(), proxy.stalls.Load())
	if proxy.cuts.Load() == 0 || proxy.stalls.Load() == 0 {
		t.Errorf("the proxy cut %d and stalled %d connections; the test did not test much", proxy.cuts.Load(), proxy.stalls.Load())
	}
}

func TestOutboxPermanentFailures(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) peer
		pass  string
		fr    string
	}{
		{"rclone bad password", func(t *testing.T) peer { return startRclone(t, "", "u", "p") }, "faux", "mot de passe d'application"},
		{"apache bad password", func(t *testing.T) peer { return startApache(t, apacheOptions{}) }, "faux", "mot de passe d'application"},
		{"apache forbidden", func(t *testing.T) peer { return startApache(t, apacheOptions{forbidden: "perm"}) }, "", "interdit"},
		{"apache disk full", func(t *testing.T) peer { return startApache(t, apacheOptions{fullAfter: 256 << 10}) }, "", "plein"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.start(t)
			pass := p.pass
			if tt.pass != "" {
				pass = tt.pass
			}
			c := newClient(t, Config{URL: p.url, User: p.user, Password: pass})
			work := t.TempDir()
			items := makeItems(t, work, "perm", []int{600 << 10}, 7)
			db := openDB(t, filepath.Join(work, "preau.db"))
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ob, err := runOutbox(ctx, db, work, c, items, 1)
			if err != nil {
				t.Fatal(err)
			}
			st, err := ob.Get(ctx, items[0].Key)
			if err != nil || st.State != outbox.StateFailed || !strings.Contains(st.LastError, tt.fr) || st.LastErrorEN == "" {
				t.Fatalf("item %s after %d attempts: %q / %q; want failed-permanent saying %q", st.State, st.Attempts, st.LastError, st.LastErrorEN, tt.fr)
			}
			if st.Attempts != 1 {
				t.Errorf("%d attempts, want 1: a permanent error is not retried", st.Attempts)
			}
			t.Logf("message: %s", st.LastError)
		})
	}
}

// helperSpec tells the worker process what to do.
type helperSpec struct {
	DB, Blobs, URL, User, Pass string
	Items                      []testItem
}

// TestHelperProcess is not a test: TestKill9AtRandomInstants runs the test
// binary again with PREAU_WEBDAV_HELPER set to a spec file, as a worker it
// can kill.
func TestHelperProcess(t *testing.T) {
	specFile := os.Getenv("PREAU_WEBDAV_HELPER")
	if specFile == "" {
		t.Skip("helper process for TestKill9AtRandomInstants")
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	b, err := os.ReadFile(specFile)
	if err != nil {
		fail(err)
	}
	var s helperSpec
	if err := json.Unmarshal(b, &s); err != nil {
		fail(err)
	}
	db := openDB(t, s.DB)
	c, err := New(Config{URL: s.URL, User: s.User, Password: s.Pass, ChunkThreshold: 5 << 20, ChunkSize: 5 << 20,
		IdleTimeout: 2 * time.Second}, httpClient(), nil)
	if err != nil {
		fail(err)
	}
	ob, err := runOutbox(context.Background(), db, s.Blobs, c, s.Items, 3)
	if err != nil {
		fail(err)
	}
	st, err := ob.Status(context.Background())
	if err != nil {
		fail(err)
	}
	if st.Counts[outbox.StateFailed] != 0 {
		fail(fmt.Errorf("items failed: %v", st.Items))
	}
	os.Exit(0)
}

func runHelper(t *testing.T, spec string, killAfter time.Duration) (completed bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "PREAU_WEBDAV_HELPER="+spec)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timeout <-chan time.Time
	if killAfter > 0 {
		timeout = time.After(killAfter)
	} else {
		timeout = time.After(3 * time.Minute)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker failed: %v: %s", err, stderr.String())
		}
		return true
	case <-timeout:
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		if killAfter == 0 {
			t.Fatalf("worker did not finish: %s", stderr.String())
		}
		return false
	}
}

// TestKill9AtRandomInstants kills a worker process with SIGKILL at random
// instants while it sends; each trial brings a new batch of hand-ins (as
// pupils keep handing in), re-enqueuing the previous one (as appliance
// does after a crash). A last run finishes the work; then every item is on
// the server exactly once with its hash, and nothing else is left.
func TestKill9AtRandomInstants(t *testing.T) {
	if os.Getenv("PREAU_WEBDAV_HELPER") != "" {
		t.Skip("inside the helper")
	}
	trials := 20
	if *chaos || os.Getenv("PREAU_CHAOS") == "1" {
		trials = 200
	}
	for i, start := range destinations(t) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			d := start(t)
			work := t.TempDir()
			// A pool of bodies shared by the batches: the blob store
			// holds each once, the server a copy per item.
			pool := makeItems(t, work, "pool", []int{0, 900, 70 << 10, 300 << 10, 1<<20 + 5, 180 << 10, 2 << 20, 40 << 10}, 900)
			big := makeItems(t, work, "big", []int{6<<20 + 11}, 901)[0]
			batch := func(k int) []testItem {
				var out []testItem
				for j := range 3 {
					it := pool[(3*k+j)%len(pool)]
					if d.chunked && k%5 == 0 && j == 0 {
						it = big // a chunked upload now and then
					}
					it.Key = fmt.Sprintf("run-%03d-%d", k, j)
					it.Path = fmt.Sprintf("run/CM2-A/Élève %02d/devoir %d.bin", k, j)
					out = append(out, it)
				}
				return out
			}
			writeSpec := func(name string, items []testItem) string {
				b, _ := json.Marshal(helperSpec{DB: filepath.Join(work, "preau.db"), Blobs: work, URL: d.url,
					User: d.user, Pass: d.pass, Items: items})
				f := filepath.Join(work, name+".json")
				if err := os.WriteFile(f, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return f
			}
			// How long a batch takes in a fresh worker; kills spread over it.
			started := time.Now()
			runHelper(t, writeSpec("calib", batch(trials+1)), 0)
			full := time.Since(started)
			var all []testItem
			all = append(all, batch(trials+1)...)
			killed := 0
			for k := range trials {
				items := batch(k)
				all = append(all, items...)
				if k > 0 {
					items = append(batch(k-1), items...)
				}
				if runHelper(t, writeSpec("trial", items), time.Duration(rand.Int64N(int64(full)))+time.Millisecond) {
					full = full * 4 / 5 // finished first: aim earlier
				} else {
					killed++
					// A request whose client was killed may still be on its
					// way to the server (bytes in the kernel's buffers) and
					// create its temporary file a moment later. A real box
					// takes seconds to restart; wait until the server has
					// finished with every connection of the killed worker,
					// so the next run's clean-up sees what it left.
					waitServerIdle(t, d.url)
				}
			}
			runHelper(t, writeSpec("final", all), 0)
			checkDelivered(t, d.dir, "run", all)
			if d.sessions != nil && d.sessions() != 0 {
				t.Errorf("%d chunked upload sessions left", d.sessions())
			}
			db := openDB(t, filepath.Join(work, "preau.db"))
			defer db.Close()
			var recovered, attempts int
			db.QueryRow(`SELECT sum(recoveries), sum(attempts) FROM outbox_items`).Scan(&recovered, &attempts)
			t.Logf("%s: a batch takes %v; %d of %d workers killed; %d items found in flight at a restart; %d attempts for %d items",
				d.name, full.Round(time.Millisecond), killed, trials, recovered, attempts, len(all))
			if killed < trials/2 {
				t.Errorf("only %d of %d workers were killed before they finished", killed, trials)
			}
		})
	}
}

// waitServerIdle waits until the server at rawURL holds no connection
// but its listener (and closed ones in TIME_WAIT): every request of a
// killed client has then been handled to its end.
func waitServerIdle(t *testing.T, rawURL string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.ParseUint(u.Port(), 10, 16)
	if err != nil {
		t.Fatalf("port of %s: %v", rawURL, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := serverConns(t, uint16(port))
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server on port %d still holds %d connections 20 s after the worker was killed", port, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serverConns counts the TCP sockets of this network namespace bound to
// local port port that are neither listening nor in TIME_WAIT/CLOSE.
func serverConns(t *testing.T, port uint16) int {
	n := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 4 {
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			p, err := strconv.ParseUint(fs[1][i+1:], 16, 16)
			if err != nil || uint16(p) != port {
				continue
			}
			switch fs[3] {
			case "0A", "06", "07": // LISTEN, TIME_WAIT, CLOSE
			default:
				n++
			}
		}
	}
	return n
}
