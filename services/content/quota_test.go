package content

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// bodies serves seeded bodies of any size at /{seed}/{size}, with ranges.
type bodies struct {
	mu      sync.Mutex
	servers map[string]*rangeServer
	chunked bool
}

func (b *bodies) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var seed, size int64
	if _, err := fmt.Sscanf(r.URL.Path, "/%d/%d", &seed, &size); err != nil {
		http.NotFound(w, r)
		return
	}
	b.mu.Lock()
	rs := b.servers[r.URL.Path]
	if rs == nil {
		rs = &rangeServer{body: seededBody{seed: uint64(seed), size: size}, etag: `"1"`, chunked: b.chunked}
		if b.servers == nil {
			b.servers = make(map[string]*rangeServer)
		}
		b.servers[r.URL.Path] = rs
	}
	b.mu.Unlock()
	rs.ServeHTTP(w, r)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// videoManifest is a one-item pack of a fetched video.
func videoManifest(id string, res FetchResult) []byte {
	m := map[string]any{
		"format": 1, "id": id, "version": "1", "title": "Vidéo " + id, "language": "fr",
		"items": []any{map[string]any{
			"id": "video", "title": "La vidéo " + id, "kind": "video", "levels": []string{}, "subjects": []string{},
			"licence": "CC-BY-SA-4.0", "entry": "video.mp4",
			"files": []any{map[string]any{"path": "video.mp4", "size": res.Size, "sha256": res.SHA256, "media_type": "video/mp4"}},
		}},
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// fetchPack fetches a seeded body and commits it as a catalogue pack.
func fetchPack(t *testing.T, s *Store, base, id string, seed, size int64) error {
	t.Helper()
	ctx := context.Background()
	res, err := s.FetchBlob(ctx, FetchRequest{Owner: "catalog:tube:" + id, URL: fmt.Sprintf("%s/%d/%d", base, seed, size), Size: size})
	if err != nil {
		return err
	}
	if _, err := s.CommitPack(ctx, videoManifest(id, res), CommitOptions{Source: "tube"}); err != nil {
		t.Fatalf("CommitPack(%s): %v", id, err)
	}
	return nil
}

func packIDs(t *testing.T, s *Store) []string {
	t.Helper()
	packs, err := s.Packs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range packs {
		ids = append(ids, p.ID)
	}
	return ids
}

func serveStatus(s *Store, path string) (int, []byte) {
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.Bytes()
}

// TestEvictionLeastRecentlyUsed runs the quota on an ordinary disk: the
// pack a teacher pinned, the pack imported by hand and a hand-in stay;
// the catalogue pack served least recently goes first; a fetch that cannot
// fit even after evicting everything evictable is refused and evicts
// nothing.
func TestEvictionLeastRecentlyUsed(t *testing.T) {
	const mib = 1 << 20
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	srv := httptest.NewServer(&bodies{})
	defer srv.Close()
	e := newTestEnv(t, Config{MaxBytes: 40 * mib, MinFreeBytes: -1, Now: clk.now}, srv.Client())
	s := e.store

	demo := demoPack("1")
	mustImport(t, s, demo.writeFolder(t, t.TempDir()))
	if _, _, err := s.PutBlob(ctx, "handin:1", bytes.NewReader(pseudoRandom(mib, 5)), 0); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b", "c", "d"} {
		clk.add(time.Minute)
		if err := fetchPack(t, s, srv.URL, id, int64(i+1), 8*mib); err != nil {
			t.Fatalf("fetch %s: %v", id, err)
		}
	}
	if err := s.PinPack(ctx, "a", clk.now().Add(7*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.PinPack(ctx, "inconnu", clk.now()); !errors.Is(err, ErrNotFound) {
		t.Errorf("PinPack of an unknown pack: err = %v, want ErrNotFound", err)
	}
	clk.add(time.Minute)
	if code, _ := serveStatus(s, "/c/b/video.mp4"); code != 200 {
		t.Fatalf("serving b: %d", code)
	}
	var dbAccess int64
	e.db.QueryRow("SELECT last_access FROM content_packs WHERE id = 'b'").Scan(&dbAccess)
	if dbAccess == clk.now().UnixMilli() {
		t.Errorf("serving a file wrote its access time to SQLite at once")
	}

	u, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.PinnedBytes != 8*mib || u.EvictableBytes != 24*mib || u.PinnedPacks != 1 || u.EvictablePacks != 3 || u.CatalogPacks != 4 || u.Packs != 5 || u.QuotaBytes != 40*mib {
		t.Errorf("Usage() = %+v", u)
	}

	clk.add(time.Minute)
	if err := fetchPack(t, s, srv.URL, "e", 5, 8*mib); err != nil {
		t.Fatalf("fetch e: %v", err)
	}
	if got, want := packIDs(t, s), []string{"a", "b", "d", "demo-preau", "e"}; !slices.Equal(got, want) {
		t.Errorf("after a fetch over the quota, packs = %v, want %v (c, the least recently used, evicted)", got, want)
	}
	if code, _ := serveStatus(s, "/c/c/video.mp4"); code != 404 {
		t.Errorf("an evicted pack's file answers %d, want 404", code)
	}

	// 35 MiB cannot fit: 40 - 33.x used, 24 MiB freeable (b, d, e).
	before := packIDs(t, s)
	err = fetchPack(t, s, srv.URL, "f", 6, 35*mib)
	var full *StoreFullError
	if !errors.Is(err, ErrStoreFull) || !errors.As(err, &full) {
		t.Fatalf("fetch over what eviction can free: err = %v, want ErrStoreFull", err)
	}
	if want := "stockage plein : 35 Mo nécessaires, 24 Mo libérables ; désépinglez des contenus (preau catalog unpin) ou augmentez le quota (réglage content.max_store_size)"; full.Error() != want {
		t.Errorf("message = %q, want %q", full.Error(), want)
	}
	if want := "storage full: 35 MB needed, 24 MB can be freed; unpin some content (preau catalog unpin) or raise the quota (setting content.max_store_size)"; full.English() != want {
		t.Errorf("English() = %q, want %q", full.English(), want)
	}
	if got := packIDs(t, s); !slices.Equal(got, before) {
		t.Errorf("a refused fetch evicted packs: %v, was %v", got, before)
	}

	// The pin expires: a becomes the oldest evictable pack.
	clk.add(8 * 24 * time.Hour)
	cands, err := s.evictionCandidates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cands) == 0 || cands[0] != "a" {
		t.Errorf("after the pin expired, eviction order = %v, want a first", cands)
	}
	for _, tc := range [][2]string{{"content_pins", "owner LIKE 'catalog:%'"}} {
		var n int
		e.db.QueryRow("SELECT COUNT(*) FROM " + tc[0] + " WHERE " + tc[1]).Scan(&n)
		// a, b, d, e keep their fetch pins until their packs go; c's went
		// with it.
		if n != 4 {
			t.Errorf("%d fetch pins, want 4 (c's released with its eviction)", n)
		}
	}
	probs, err := s.Fsck(ctx)
	if err != nil || len(probs) != 0 {
		t.Errorf("Fsck() = %v, %v", probs, err)
	}
	if !e.blobs()[sum(pseudoRandom(mib, 5))] {
		t.Errorf("the hand-in blob was evicted")
	}
}

// TestPinsAndRecommit: a teacher's pin survives a new version of the pack
// committed by the catalogue; removing the pack removes the pin and
// releases the fetch pins, so the blobs go.
func TestPinsAndRecommit(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	srv := httptest.NewServer(&bodies{})
	defer srv.Close()
	e := newTestEnv(t, Config{Now: clk.now}, srv.Client())
	s := e.store
	if err := fetchPack(t, s, srv.URL, "nuage", 1, 1000); err != nil {
		t.Fatal(err)
	}
	until := clk.now().Add(48 * time.Hour)
	if err := s.PinPack(ctx, "nuage", until); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Hour)
	res, err := s.FetchBlob(ctx, FetchRequest{Owner: "catalog:nuage:x", URL: srv.URL + "/2/2000", Size: 2000})
	if err != nil {
		t.Fatal(err)
	}
	m := videoManifest("nuage", res)
	m = bytes.Replace(m, []byte(`"version":"1"`), []byte(`"version":"2"`), 1)
	info, err := s.CommitPack(ctx, m, CommitOptions{Source: "nuage"})
	if err != nil {
		t.Fatal(err)
	}
	if !info.PinnedUntil.Equal(until) || info.Source != "nuage" || info.Version != "2" {
		t.Errorf("after a new version, PackInfo = %+v, want pinned until %v", info, until)
	}
	if again, err := s.CommitPack(ctx, m, CommitOptions{Source: "nuage"}); err != nil || !again.AlreadyPresent {
		t.Errorf("same commit again = %+v, %v; want AlreadyPresent", again, err)
	}
	if got := len(e.blobs()); got != 1 {
		t.Errorf("%d blobs after replacing version 1, want 1 (the old blob released)", got)
	}
	if err := s.UnpinPack(ctx, "nuage"); err != nil {
		t.Fatal(err)
	}
	if err := s.PinPack(ctx, "nuage", until); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "nuage"); err != nil {
		t.Fatal(err)
	}
	if n := e.count("content_pack_pins") + e.count("content_pins"); n != 0 {
		t.Errorf("%d pins left after removing the pack", n)
	}
	if got := len(e.blobs()); got != 0 {
		t.Errorf("%d blobs left after removing the pack", got)
	}
}

func TestCommitPackRefusesMissingBlobs(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	data := []byte("pas encore téléchargé")
	m := videoManifest("x", FetchResult{SHA256: sum(data), Size: int64(len(data))})
	_, err := e.store.CommitPack(context.Background(), m, CommitOptions{Source: "tube"})
	var pe *PackError
	if !errors.As(err, &pe) || pe.Code != CodeMissingFile || pe.Path != "video.mp4" {
		t.Fatalf("CommitPack with a missing blob: err = %v, want %s on video.mp4", err, CodeMissingFile)
	}
	h, _, err := e.store.PutBlob(context.Background(), "o", bytes.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	bad := videoManifest("x", FetchResult{SHA256: h, Size: int64(len(data)) + 1})
	if _, err := e.store.CommitPack(context.Background(), bad, CommitOptions{}); !errors.As(err, &pe) || pe.Code != CodeSizeMismatch {
		t.Fatalf("CommitPack with a wrong size: err = %v, want %s", err, CodeSizeMismatch)
	}
	if _, err := e.store.CommitPack(context.Background(), []byte(`{"format":1}`), CommitOptions{}); !errors.As(err, &pe) || pe.Code != CodeManifestInvalid {
		t.Fatalf("CommitPack of an invalid manifest: err = %v", err)
	}
	if n := e.count("content_packs"); n != 0 {
		t.Errorf("%d packs after refused commits", n)
	}
	if code, _ := serveStatus(e.store, "/c/x/video.mp4"); code != 404 {
		t.Errorf("file of a refused pack answers %d", code)
	}
}

// TestAccessFlush: serving records the access in memory only; Serve's
// flush writes it.
func TestAccessFlush(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	e := newTestEnv(t, Config{Now: clk.now}, nil)
	mustImport(t, e.store, demoPack("1").writeFolder(t, t.TempDir()))
	access := func() int64 {
		var ms int64
		if err := e.db.QueryRow("SELECT last_access FROM content_packs WHERE id = 'demo-preau'").Scan(&ms); err != nil {
			t.Fatal(err)
		}
		return ms
	}
	imported := access()
	clk.add(time.Hour)
	for range 100 {
		if code, _ := serveStatus(e.store, "/c/demo-preau/images/eau.png"); code != 200 {
			t.Fatal(code)
		}
	}
	if got := access(); got != imported {
		t.Fatalf("last_access = %d after serving, want %d until the flush", got, imported)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.store.Serve(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := access(), clk.now().UnixMilli(); got != want {
		t.Errorf("last_access = %d after Serve's flush, want %d", got, want)
	}
	info, _ := e.store.pack(context.Background(), "demo-preau")
	if !info.LastAccess.Equal(clk.now()) {
		t.Errorf("PackInfo.LastAccess = %v, want %v", info.LastAccess, clk.now())
	}
}

func requirePeers(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// mountTmpfs mounts a tmpfs of size bytes on a new folder and unmounts it
// at the end of the test.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		requirePeers(t, "mounting a tmpfs needs root")
	}
	if _, err := exec.LookPath("mount"); err != nil {
		requirePeers(t, "mount is missing")
	}
	dir := filepath.Join(t.TempDir(), "store")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0750", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

func checkNothingCorrupt(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	if probs, err := s.Fsck(ctx); err != nil || len(probs) != 0 {
		t.Errorf("Fsck() = %v, %v", probs, err)
	}
	if bad, err := s.Verify(ctx); err != nil || len(bad) != 0 {
		t.Errorf("Verify() = %v, %v", bad, err)
	}
}

// TestFullDisk fills a real 64 MiB tmpfs by fetching: the pinned pack
// survives, the least recently used catalogue pack goes, the fetch that
// cannot fit returns ErrStoreFull, nothing is corrupt.
func TestFullDisk(t *testing.T) {
	const mib = 1 << 20
	dir := mountTmpfs(t, "64m")
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	srv := httptest.NewServer(&bodies{})
	defer srv.Close()
	db := openTestDB(t, filepath.Join(t.TempDir(), "preau.db"))
	s, err := New(Config{Dir: dir, MinFreeBytes: 4 * mib, Now: clk.now}, db, srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The default quota, 90 % of 64 MiB, lets five packs of 10 MiB in.
	for i := 1; i <= 5; i++ {
		clk.add(time.Minute)
		if err := fetchPack(t, s, srv.URL, fmt.Sprintf("p%d", i), int64(i), 10*mib); err != nil {
			t.Fatalf("fetch p%d: %v", i, err)
		}
		if i == 1 {
			if err := s.PinPack(ctx, "p1", clk.now().Add(7*24*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	clk.add(time.Minute)
	if err := fetchPack(t, s, srv.URL, "p6", 6, 10*mib); err != nil {
		t.Fatalf("fetch p6: %v", err)
	}
	if got, want := packIDs(t, s), []string{"p1", "p3", "p4", "p5", "p6"}; !slices.Equal(got, want) {
		t.Errorf("packs = %v, want %v", got, want)
	}
	err = fetchPack(t, s, srv.URL, "grosse", 7, 60*mib)
	if !errors.Is(err, ErrStoreFull) || !strings.HasPrefix(err.Error(), "fetch blob") {
		t.Fatalf("fetch of 60 MiB on a 64 MiB disk: err = %v, want ErrStoreFull", err)
	}
	var full *StoreFullError
	errors.As(err, &full)
	t.Logf("refused: %s / %s", full.Error(), full.English())
	if got, want := packIDs(t, s), []string{"p1", "p3", "p4", "p5", "p6"}; !slices.Equal(got, want) {
		t.Errorf("after the refusal packs = %v, want %v", got, want)
	}
	code, body := serveStatus(s, "/c/p1/video.mp4")
	if code != 200 || sum(body) != (seededBody{seed: 1, size: 10 * mib}).sha256() {
		t.Errorf("the pinned pack's video: %d, %d bytes, not the fetched body", code, len(body))
	}
	checkNothingCorrupt(t, s)
}

// TestDiskFullMidWrite: no quota, no free margin, and another writer fills
// the real disk while a fetch writes: the fetch fails with ErrStoreFull,
// gives its space back and leaves no corrupt blob; PutBlob and an import
// on the full disk fail cleanly too.
func TestDiskFullMidWrite(t *testing.T) {
	const mib = 1 << 20
	dir := mountTmpfs(t, "24m")
	ctx := context.Background()
	srv := httptest.NewServer(&bodies{})
	defer srv.Close()
	db := openTestDB(t, filepath.Join(t.TempDir(), "preau.db"))
	s, err := New(Config{Dir: dir, MaxBytes: -1, MinFreeBytes: -1}, db, srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := fetchPack(t, s, srv.URL, "petite", 1, 2*mib); err != nil {
		t.Fatal(err)
	}
	if err := s.PinPack(ctx, "petite", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	// fill leaves leave bytes free.
	fill := func(leave int64) {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.Copy(f, io.LimitReader(zeros{}, int64(st.Bavail)*st.Bsize-leave)); err != nil {
			t.Fatal(err)
		}
	}
	// Once the fetch has made room and sent its request, another writer
	// leaves it 5 MiB: it writes a checkpoint at 4 MiB, then meets ENOSPC.
	filled := false
	_, err = s.FetchBlob(ctx, FetchRequest{Owner: "o", URL: srv.URL + "/2/16777216", Size: 16 * mib,
		Progress: func(done, total int64) {
			if !filled {
				filled = true
				fill(5 * mib)
			}
		}})
	var full *StoreFullError
	if !filled || !errors.As(err, &full) || !full.Disk {
		t.Fatalf("fetch while the disk fills: err = %v (filled %v), want a full disk", err, filled)
	}
	t.Logf("refused: %s / %s", full.Error(), full.English())
	if ents, _ := os.ReadDir(s.tmpDir); len(ents) != 0 {
		t.Errorf("Dir/tmp keeps %d files: the partial download was not given back", len(ents))
	}
	if _, _, err := s.PutBlob(ctx, "handin:9", bytes.NewReader(pseudoRandom(8*mib, 3)), 0); !errors.Is(err, ErrStoreFull) {
		t.Errorf("PutBlob on a full disk: err = %v, want ErrStoreFull", err)
	}
	small := testPack{id: "petit-paquet", version: "1", items: []testItem{{id: "v", title: "Fiche", kind: "document",
		files: []testFile{{"a.bin", "application/octet-stream", pseudoRandom(8*mib, 4)}}}}}
	if _, err := s.Import(ctx, small.writeFolder(t, t.TempDir()), nil); err == nil {
		t.Errorf("import on a full disk succeeded")
	}
	if ents, _ := os.ReadDir(s.tmpDir); len(ents) != 0 {
		t.Errorf("Dir/tmp keeps %d files", len(ents))
	}
	checkNothingCorrupt(t, s)
	if got, want := packIDs(t, s), []string{"petite"}; !slices.Equal(got, want) {
		t.Errorf("packs = %v, want %v", got, want)
	}
	// Space back: the same fetch resumes nothing and completes.
	os.Remove(filler)
	res, err := s.FetchBlob(ctx, FetchRequest{Owner: "o", URL: srv.URL + "/2/16777216", Size: 16 * mib})
	if err != nil || res.SHA256 != (seededBody{seed: 2, size: 16 * mib}).sha256() {
		t.Errorf("fetch once the disk has room = %+v, %v", res, err)
	}
	checkNothingCorrupt(t, s)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestMigrationFromVersion2: a box with packs imported before the storage
// budget upgrades; its packs are hand-imported (never evicted) and their
// last access is their import.
func TestMigrationFromVersion2(t *testing.T) {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "preau.db")+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, m := range Migrations()[:2] {
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO content_packs (id, version, title, language, manifest_sha256, bytes, imported_at)
		VALUES ('ancien', '1', 'Ancien', 'fr', 'x', 10, 1700000000000)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO content_pins (owner, sha256, pinned_at) VALUES ('handin:1', 'y', 1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(Migrations()[2].SQL); err != nil {
		t.Fatal(err)
	}
	var source string
	var access, fetched int64
	if err := db.QueryRow("SELECT source, last_access FROM content_packs").Scan(&source, &access); err != nil || source != "" || access != 1700000000000 {
		t.Errorf("migrated pack: source %q, last_access %d, %v", source, access, err)
	}
	if err := db.QueryRow("SELECT fetched FROM content_pins").Scan(&fetched); err != nil || fetched != 0 {
		t.Errorf("migrated pin: fetched %d, %v", fetched, err)
	}
}

// handPack writes a folder pack holding one file of size bytes (seeded)
// and returns the folder.
func handPack(t *testing.T, id string, seed uint64, size int) string {
	t.Helper()
	dir := t.TempDir()
	body := pseudoRandom(size, seed)
	if err := os.WriteFile(filepath.Join(dir, "video.mp4"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	m := videoManifest(id, FetchResult{Size: int64(size), SHA256: sum(body)})
	if err := os.WriteFile(filepath.Join(dir, ManifestName), m, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestHandImportMakesRoom: a pack imported by hand that does not fit in
// the quota evicts catalogue packs, least recently used first and never a
// pinned one; one that cannot fit even so is refused with "disk full"
// and evicts nothing.
func TestHandImportMakesRoom(t *testing.T) {
	const mib = 1 << 20
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	srv := httptest.NewServer(&bodies{})
	defer srv.Close()
	e := newTestEnv(t, Config{MaxBytes: 40 * mib, MinFreeBytes: -1, Now: clk.now}, srv.Client())
	s := e.store
	for i, id := range []string{"a", "b", "c"} {
		clk.add(time.Minute)
		if err := fetchPack(t, s, srv.URL, id, int64(i+1), 8*mib); err != nil {
			t.Fatalf("fetch %s: %v", id, err)
		}
	}
	if err := s.PinPack(ctx, "a", clk.now().Add(7*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Minute)
	mustImport(t, s, handPack(t, "manuel-1", 11, 20*mib))
	if got, want := packIDs(t, s), []string{"a", "c", "manuel-1"}; !slices.Equal(got, want) {
		t.Fatalf("after a 20 MiB hand import into 16 MiB of room, packs = %v, want %v (b evicted, a pinned)", got, want)
	}

	before := packIDs(t, s)
	_, err := s.Import(ctx, handPack(t, "manuel-2", 12, 30*mib), nil)
	var pe *PackError
	if !errors.As(err, &pe) || pe.Code != CodeDiskFull {
		t.Fatalf("a hand import beyond what eviction frees: err = %v, want a %s refusal", err, CodeDiskFull)
	}
	t.Logf("refusal: %s", pe.Error())
	if got := packIDs(t, s); !slices.Equal(got, before) {
		t.Errorf("a refused import evicted packs: %v, was %v", got, before)
	}
	if probs, err := s.Fsck(ctx); err != nil || len(probs) != 0 {
		t.Errorf("Fsck() = %v, %v", probs, err)
	}
}
