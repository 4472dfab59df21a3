package content

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// checkDemo checks what a good import of demoPack shows.
func checkDemo(t *testing.T, e *testEnv, p testPack) {
	t.Helper()
	ctx := context.Background()
	packs, err := e.store.Packs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) != 1 || packs[0].ID != p.id || packs[0].Version != p.version || packs[0].Items != len(p.items) {
		t.Fatalf("Packs() = %+v, want one pack %s %s with %d items", packs, p.id, p.version, len(p.items))
	}
	var want int64
	for _, f := range p.files() {
		want += int64(len(f.data))
	}
	if packs[0].Bytes != want {
		t.Errorf("pack bytes = %d, want %d", packs[0].Bytes, want)
	}
	items, err := e.store.Items(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, it := range items {
		titles = append(titles, it.Title)
	}
	wantTitles := []string{"atelier SVG", "École d'autrefois", "Fables de La Fontaine", "Le cycle de l'eau"}
	if !slices.Equal(titles, wantTitles) {
		t.Errorf("Items() titles = %q, want %q", titles, wantTitles)
	}
	it, err := e.store.Item(ctx, p.id, "cycle-de-l-eau")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(it.Levels, []string{"cycle3", "cycle4"}) || !slices.Equal(it.Subjects, []string{"sciences"}) ||
		it.Language != "fr" || it.Entry != "articles/cycle-de-l-eau.html" || len(it.Files) != 2 || it.Kind != "article" {
		t.Errorf("Item() = %+v", it)
	}
	if want := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC); !it.Updated.Equal(want) {
		t.Errorf("Updated = %v, want %v", it.Updated, want)
	}
	if _, err := e.store.Item(ctx, p.id, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Item(nope) error = %v, want ErrNotFound", err)
	}
	for _, f := range p.files() {
		fh, meta, err := e.store.Open(ctx, p.id, f.path)
		if err != nil {
			t.Fatalf("Open(%s): %v", f.path, err)
		}
		got, _ := io.ReadAll(fh)
		fh.Close()
		if !bytes.Equal(got, f.data) || meta.MediaType != f.mediaType || meta.Size != int64(len(f.data)) {
			t.Errorf("Open(%s): %d bytes, %+v; want %d bytes of %s", f.path, len(got), meta, len(f.data), f.mediaType)
		}
	}
	st, err := e.store.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Packs != 1 || st.Items != len(p.items) || st.Blobs != len(p.files()) || st.BlobBytes != want {
		t.Errorf("Stats() = %+v", st)
	}
	if bad, err := e.store.Verify(ctx); err != nil || len(bad) != 0 {
		t.Errorf("Verify() = %v, %v", bad, err)
	}
	if probs, err := e.store.Fsck(ctx); err != nil || len(probs) != 0 {
		t.Errorf("Fsck() = %v, %v", probs, err)
	}
}

func TestImportGoodPacks(t *testing.T) {
	p := demoPack("2026.11.23")
	tests := []struct {
		name  string
		write func(t *testing.T, dir string) string
	}{
		{"folder", func(t *testing.T, dir string) string { return p.writeFolder(t, filepath.Join(dir, "pack")) }},
		{"tar", func(t *testing.T, dir string) string {
			return writeTar(t, filepath.Join(dir, "pack.tar"), p.entries(false), "")
		}},
		{"tar manifest last", func(t *testing.T, dir string) string {
			return writeTar(t, filepath.Join(dir, "pack.tar"), p.entries(true), "")
		}},
		{"tar.zst", func(t *testing.T, dir string) string {
			return writeTar(t, filepath.Join(dir, "pack.tar.zst"), p.entries(false), "zst")
		}},
		{"tar.zst manifest last", func(t *testing.T, dir string) string {
			return writeTar(t, filepath.Join(dir, "pack.tar.zst"), p.entries(true), "zst")
		}},
		{"tar.gz", func(t *testing.T, dir string) string {
			return writeTar(t, filepath.Join(dir, "pack.tgz"), p.entries(false), "gz")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, Config{}, nil)
			src := tt.write(t, t.TempDir())
			var phases []string
			info, err := e.store.Import(context.Background(), src, func(pr Progress) {
				if pr.FilesDone > pr.FilesTotal || pr.BytesDone > pr.BytesTotal {
					t.Errorf("progress %+v beyond total", pr)
				}
				if len(phases) == 0 || phases[len(phases)-1] != pr.Phase {
					phases = append(phases, pr.Phase)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if info.AlreadyPresent || info.Copied != len(p.files()) {
				t.Errorf("Import() = %+v, want %d files copied", info, len(p.files()))
			}
			if len(phases) == 0 || phases[len(phases)-1] != "commit" || !slices.Contains(phases, "copy") {
				t.Errorf("progress phases = %v, want copy … commit", phases)
			}
			checkDemo(t, e, p)
			if entries, _ := os.ReadDir(e.store.tmpDir); len(entries) != 0 {
				t.Errorf("tmp holds %d files after import", len(entries))
			}
		})
	}
}

func TestSearch(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	p := demoPack("1")
	mustImport(t, e.store, p.writeFolder(t, t.TempDir()))
	tests := []struct {
		query string
		want  []string
	}{
		{"evapore", []string{"cycle-de-l-eau"}},  // body text, accent-insensitive
		{"ÉCOLE", []string{"ecole-d-autrefois"}}, // title, case and accents
		{"fab", []string{"fables"}},              // prefix
		{"sciences", []string{"cycle-de-l-eau"}}, // subject
		{"alert", nil},                           // script text is not indexed
		{`"eau" OR (nuages NEAR/2 *)`, nil},      // FTS syntax is neutralised, every word required
		{`cycle" ^"eau`, []string{"cycle-de-l-eau"}},
		{"", nil},
		{"   ***   ", nil},
	}
	for _, tt := range tests {
		items, err := e.store.Search(context.Background(), tt.query, 10)
		if err != nil {
			t.Errorf("Search(%q) error: %v", tt.query, err)
			continue
		}
		var got []string
		for _, it := range items {
			got = append(got, it.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Search(%q) = %v, want %v", tt.query, got, tt.want)
		}
	}
}

func FuzzSearchQuery(f *testing.F) {
	dir := f.TempDir()
	db, err := openDB(filepath.Join(dir, "db"))
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	s, err := New(Config{Dir: filepath.Join(dir, "c")}, db, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{`"`, `a OR b`, `NEAR(`, `*`, `^x`, `col:val`, "é\x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if _, err := s.Search(context.Background(), q, 5); err != nil {
			t.Fatalf("Search(%q): %v", q, err)
		}
	})
}

// flakyServer serves one file with ETag and Range support; the first
// request is cut after cutAt bytes.
type flakyServer struct {
	data     []byte
	cutAt    int
	requests atomic.Int32
	ranges   []string
}

func (fs *flakyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := fs.requests.Add(1)
	fs.ranges = append(fs.ranges, r.Header.Get("Range")+"|"+r.Header.Get("If-Range"))
	w.Header().Set("ETag", `"v1"`)
	if n == 1 {
		w.Header().Set("Content-Length", itoa(len(fs.data)))
		w.WriteHeader(200)
		w.Write(fs.data[:fs.cutAt])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	http.ServeContent(w, r, "pack.tar.zst", time.Time{}, bytes.NewReader(fs.data))
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestImportURLResumes(t *testing.T) {
	p := demoPack("1")
	data, err := os.ReadFile(writeTar(t, filepath.Join(t.TempDir(), "p.tar.zst"), p.entries(false), "zst"))
	if err != nil {
		t.Fatal(err)
	}
	fs := &flakyServer{data: data, cutAt: len(data) / 2}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	e := newTestEnv(t, Config{}, srv.Client())
	url := srv.URL + "/packs/demo.tar.zst"

	var downloaded int64
	_, err = e.store.Import(context.Background(), url, func(pr Progress) {
		if pr.Phase == "download" {
			downloaded = pr.BytesDone
		}
	})
	if err == nil {
		t.Fatal("first import succeeded over a cut connection")
	}
	var pe *PackError
	if errors.As(err, &pe) {
		t.Fatalf("cut download refused as a bad pack: %v", err)
	}
	if n := e.count("content_packs"); n != 0 {
		t.Fatalf("%d packs after a cut download", n)
	}
	fi, err := os.Stat(e.store.downloadPath(url))
	if err != nil || fi.Size() != int64(fs.cutAt) {
		t.Fatalf("partial download: %v, %v; want %d bytes kept", fi, err, fs.cutAt)
	}
	// A restart of the store keeps the partial download.
	if _, err := New(Config{Dir: e.store.cfg.Dir}, e.db, srv.Client(), nil); err != nil {
		t.Fatal(err)
	}
	info, err := e.store.Import(context.Background(), url, func(pr Progress) {
		if pr.Phase == "download" {
			downloaded = pr.BytesDone
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != p.id || downloaded != int64(len(data)) {
		t.Errorf("Import() = %+v, downloaded %d; want %s and %d bytes", info, downloaded, p.id, len(data))
	}
	wantRange := "bytes=" + itoa(fs.cutAt) + "-|\"v1\""
	if len(fs.ranges) != 2 || fs.ranges[1] != wantRange {
		t.Errorf("requests = %q, want second with %q", fs.ranges, wantRange)
	}
	if _, err := os.Stat(e.store.downloadPath(url)); !os.IsNotExist(err) {
		t.Errorf("download kept after a successful import: %v", err)
	}
	checkDemo(t, e, p)
}

func TestReimport(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	ctx := context.Background()
	v1 := demoPack("1")
	first := mustImport(t, e.store, v1.writeFolder(t, t.TempDir()))
	again := mustImport(t, e.store, writeTar(t, filepath.Join(t.TempDir(), "p.tar"), v1.entries(false), ""))
	if !again.AlreadyPresent || again.Copied != 0 || !again.ImportedAt.Equal(first.ImportedAt) {
		t.Errorf("same pack again: %+v, want AlreadyPresent and nothing done", again)
	}
	oldVideo := sum(v1.items[2].files[0].data)
	v2 := demoPack("2")
	v2.items[2].files[0].data = pseudoRandom(200000, 2)
	v2.items = v2.items[:3] // the SVG item is gone
	info := mustImport(t, e.store, v2.writeFolder(t, t.TempDir()))
	if info.AlreadyPresent || info.Version != "2" || info.Copied != 1 || info.Items != 3 {
		t.Errorf("new version: %+v, want version 2 with 1 file copied", info)
	}
	blobs := e.blobs()
	if blobs[oldVideo] || blobs[sum(v1.items[3].files[0].data)] {
		t.Errorf("blobs of the old version are still there")
	}
	if !blobs[sum(v2.items[2].files[0].data)] || len(blobs) != len(v2.files()) {
		t.Errorf("blobs = %d, want %d", len(blobs), len(v2.files()))
	}
	if _, err := e.store.Item(ctx, "demo-preau", "atelier-svg"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed item still there: %v", err)
	}
	if n := e.count("content_search"); n != 3 {
		t.Errorf("search rows = %d, want 3", n)
	}
	if _, _, err := e.store.Open(ctx, "demo-preau", "images/dessin.svg"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a removed file: %v, want ErrNotFound", err)
	}
}

func TestDedupAndRemove(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	ctx := context.Background()
	a := demoPack("1")
	b := demoPack("1")
	b.id = "autre-pack"
	b.items = b.items[:2] // shares the article, the image and the PDF
	b.items[1].files[0].path = "docs/ecole-copie.pdf"
	mustImport(t, e.store, a.writeFolder(t, t.TempDir()))
	info := mustImport(t, e.store, b.writeFolder(t, t.TempDir()))
	if info.Copied != 0 {
		t.Errorf("second pack copied %d files, want 0 (all deduplicated)", info.Copied)
	}
	if got, want := len(e.blobs()), len(a.files()); got != want {
		t.Errorf("blobs = %d, want %d", got, want)
	}
	if err := e.store.Remove(ctx, "demo-preau"); err != nil {
		t.Fatal(err)
	}
	if got, want := len(e.blobs()), len(b.files()); got != want {
		t.Errorf("after removing one pack: %d blobs, want %d", got, want)
	}
	if err := e.store.Remove(ctx, "demo-preau"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: %v, want ErrNotFound", err)
	}
	if err := e.store.Remove(ctx, "autre-pack"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.blobs()); n != 0 {
		t.Errorf("after removing every pack: %d blobs", n)
	}
	for _, table := range []string{"content_packs", "content_items", "content_files", "content_search", "content_item_files", "content_item_levels", "content_item_subjects"} {
		if n := e.count(table); n != 0 {
			t.Errorf("%s has %d rows after removing every pack", table, n)
		}
	}
}

func TestGC(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	e := newTestEnv(t, Config{Now: func() time.Time { return now }}, nil)
	p := demoPack("1")
	mustImport(t, e.store, p.writeFolder(t, t.TempDir()))
	// An orphan blob, as an interrupted import leaves, and a stale download.
	orphan := pseudoRandom(1000, 9)
	h := sum(orphan)
	os.MkdirAll(filepath.Dir(e.store.blobPath(h)), 0o750)
	if err := os.WriteFile(e.store.blobPath(h), orphan, 0o600); err != nil {
		t.Fatal(err)
	}
	dl := filepath.Join(e.store.tmpDir, downloadPrefix+"x")
	os.WriteFile(dl, []byte("partial"), 0o600)
	old := now.Add(-48 * time.Hour)
	os.Chtimes(dl, old, old)

	removed, _, err := e.store.GC(context.Background(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if removed != 1 || !e.blobs()[h] {
		t.Errorf("GC removed %d files; the fresh orphan must stay, the old download go", removed)
	}
	os.Chtimes(e.store.blobPath(h), old, old)
	removed, freed, err := e.store.GC(context.Background(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if removed != 1 || freed != 1000 || e.blobs()[h] {
		t.Errorf("GC removed %d files (%d bytes), want the old orphan", removed, freed)
	}
	if got, want := len(e.blobs()), len(p.files()); got != want {
		t.Errorf("GC left %d blobs, want the %d referenced", got, want)
	}
}

// bomb adds folders whose pax headers hold 1 MiB of comment each: a few
// kilobytes compressed, 40 MiB for the importer to read.
func bomb(es []tarEntry) []tarEntry {
	comment := strings.Repeat("A", 1<<20-1024)
	for i := range 40 {
		es = append(es, tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./pad-" + itoa(i) + "/", Mode: 0o755,
			PAXRecords: map[string]string{"comment": comment}}})
	}
	return es
}

// hostile describes one refused pack.
type hostile struct {
	name string
	cfg  func(*Config)
	make func(t *testing.T, dir string) string
	code string
	path string
}

func hostileCases() []hostile {
	base := func() testPack { return demoPack("1") }
	tarOf := func(name string, edit func([]tarEntry) []tarEntry, compression string) func(*testing.T, string) string {
		return func(t *testing.T, dir string) string {
			return writeTar(t, filepath.Join(dir, "p.tar"+compression), edit(base().entries(false)), strings.TrimPrefix(compression, "."))
		}
	}
	withManifest := func(edit func(map[string]any)) func(*testing.T, string) string {
		return func(t *testing.T, dir string) string {
			p := base()
			p.edit = edit
			return p.writeFolder(t, filepath.Join(dir, "pack"))
		}
	}
	rawManifest := func(data string) func(*testing.T, string) string {
		return func(t *testing.T, dir string) string {
			d := base().writeFolder(t, filepath.Join(dir, "pack"))
			os.WriteFile(filepath.Join(d, ManifestName), []byte(data), 0o644)
			return d
		}
	}
	firstFile := func(m map[string]any) map[string]any {
		return m["items"].([]any)[0].(map[string]any)["files"].([]any)[0].(map[string]any)
	}
	find := func(es []tarEntry, name string) int {
		for i, e := range es {
			if e.hdr.Name == "./"+name {
				return i
			}
		}
		panic(name)
	}
	video := "videos/fables.mp4"
	add := func(e tarEntry) func([]tarEntry) []tarEntry {
		return func(es []tarEntry) []tarEntry { return append(es, e) }
	}
	inFolder := func(fn func(t *testing.T, d string)) func(*testing.T, string) string {
		return func(t *testing.T, dir string) string {
			d := base().writeFolder(t, filepath.Join(dir, "pack"))
			fn(t, d)
			return d
		}
	}
	return []hostile{
		{name: "bad hash", make: tarOf("", func(es []tarEntry) []tarEntry {
			i := find(es, video)
			es[i].body = bytes.Clone(es[i].body)
			es[i].body[1000] ^= 1
			return es
		}, ""), code: CodeHashMismatch, path: video},
		{name: "size smaller than manifest", make: tarOf("", func(es []tarEntry) []tarEntry {
			i := find(es, video)
			es[i].body = es[i].body[:1000]
			return es
		}, ""), code: CodeSizeMismatch, path: video},
		{name: "tar header larger than manifest", make: tarOf("", func(es []tarEntry) []tarEntry {
			i := find(es, video)
			es[i].body = append(bytes.Clone(es[i].body), 0)
			return es
		}, ".zst"), code: CodeFileTooLarge, path: video},
		{name: "larger than max file bytes", cfg: func(c *Config) { c.MaxFileBytes = 100000 },
			make: tarOf("", func(es []tarEntry) []tarEntry { return es }, ""), code: CodeFileTooLarge, path: video},
		{name: "dot-dot entry", make: tarOf("", add(tarEntry{tar.Header{Typeflag: tar.TypeReg, Name: "../evil.sh", Mode: 0o755}, []byte("x")}), ""), code: CodeBadPath, path: "../evil.sh"},
		{name: "absolute entry", make: tarOf("", add(tarEntry{tar.Header{Typeflag: tar.TypeReg, Name: "/etc/cron.d/evil", Mode: 0o644}, []byte("x")}), ".gz"), code: CodeBadPath, path: "/etc/cron.d/evil"},
		{name: "dot-dot in manifest", make: withManifest(func(m map[string]any) { firstFile(m)["path"] = "articles/../../x.html" }), code: CodeBadPath, path: "articles/../../x.html"},
		{name: "backslash in manifest", make: withManifest(func(m map[string]any) { firstFile(m)["path"] = `articles\x.html` }), code: CodeBadPath, path: `articles\x.html`},
		{name: "symlink entry", make: tarOf("", add(tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "./link", Linkname: "/etc/passwd"}}), ""), code: CodeSymlink, path: "link"},
		{name: "hardlink entry", make: tarOf("", add(tarEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "./hard", Linkname: "etc/passwd"}}), ""), code: CodeHardlink, path: "hard"},
		{name: "device entry", make: tarOf("", add(tarEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "./null", Devmajor: 1, Devminor: 3}}), ""), code: CodeSpecialFile, path: "null"},
		{name: "fifo entry", make: tarOf("", add(tarEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "./fifo"}}), ".zst"), code: CodeSpecialFile, path: "fifo"},
		{name: "directory where a file is expected", make: tarOf("", func(es []tarEntry) []tarEntry {
			i := find(es, video)
			es[i] = tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./" + video + "/", Mode: 0o755}}
			return es
		}, ""), code: CodeNotAFile, path: video},
		{name: "truncated archive", make: func(t *testing.T, dir string) string {
			p := writeTar(t, filepath.Join(dir, "p.tar"), base().entries(false), "")
			data, _ := os.ReadFile(p)
			// Cut inside the video, the last file.
			os.WriteFile(p, data[:len(data)-1024-100000], 0o644)
			return p
		}, code: CodeTruncated, path: video},
		{name: "unlisted file", make: tarOf("", add(tarEntry{tar.Header{Typeflag: tar.TypeReg, Name: "./extra.txt", Mode: 0o644}, []byte("x")}), ""), code: CodeUnlistedFile, path: "extra.txt"},
		{name: "duplicated entry", make: tarOf("", func(es []tarEntry) []tarEntry { return append(es, es[find(es, video)]) }, ".zst"), code: CodeDuplicateEntry, path: video},
		{name: "duplicated manifest", make: tarOf("", func(es []tarEntry) []tarEntry { return append(es, es[1]) }, ""), code: CodeDuplicateEntry, path: ManifestName},
		{name: "missing file", make: tarOf("", func(es []tarEntry) []tarEntry { return slices.Delete(es, find(es, video), find(es, video)+1) }, ""), code: CodeMissingFile, path: video},
		{name: "no manifest", make: tarOf("", func(es []tarEntry) []tarEntry { return slices.Delete(es, 1, 2) }, ".zst"), code: CodeManifestMissing},
		{name: "malformed manifest", make: rawManifest(`{"format": 1, "id": `), code: CodeManifestInvalid},
		{name: "unknown field", make: withManifest(func(m map[string]any) { m["script"] = "rm -rf /" }), code: CodeManifestInvalid},
		{name: "unknown nested field", make: withManifest(func(m map[string]any) { firstFile(m)["mode"] = 0o4755 }), code: CodeManifestInvalid},
		{name: "size as a string", make: withManifest(func(m map[string]any) { firstFile(m)["size"] = "12" }), code: CodeManifestInvalid},
		{name: "fractional size", make: withManifest(func(m map[string]any) { firstFile(m)["size"] = 1.5 }), code: CodeManifestInvalid},
		{name: "bad media type", make: withManifest(func(m map[string]any) { firstFile(m)["media_type"] = "text/html; charset" }), code: CodeManifestInvalid},
		{name: "bad pack id", make: withManifest(func(m map[string]any) { m["id"] = "../demo" }), code: CodeManifestInvalid},
		{name: "shared path differs", make: withManifest(func(m map[string]any) {
			f := m["items"].([]any)[1].(map[string]any)["files"].([]any)[1].(map[string]any)
			f["media_type"] = "image/jpeg"
		}), code: CodeManifestInvalid},
		{name: "trailing data after manifest", make: rawManifest(string(demoPack("1").manifest()) + `{}`), code: CodeManifestInvalid},
		{name: "oversized manifest", cfg: func(c *Config) { c.MaxManifestBytes = 1024 }, make: tarOf("", func(es []tarEntry) []tarEntry { return es }, ""), code: CodeManifestTooLarge},
		{name: "pack larger than max pack bytes", cfg: func(c *Config) { c.MaxPackBytes = 300000 }, make: tarOf("", func(es []tarEntry) []tarEntry { return es }, ".zst"), code: CodePackTooLarge},
		{name: "too many files", cfg: func(c *Config) { c.MaxFiles = 3 }, make: tarOf("", func(es []tarEntry) []tarEntry { return es }, ""), code: CodePackTooLarge},
		{name: "more than the free disk", cfg: func(c *Config) { c.MaxFileBytes, c.MaxPackBytes = 1<<60, 1<<60 },
			make: withManifest(func(m map[string]any) {
				m["items"].([]any)[2].(map[string]any)["files"].([]any)[0].(map[string]any)["size"] = int64(1) << 55
			}), code: CodeDiskFull},
		{name: "zstd bomb", make: tarOf("", bomb, ".zst"), code: CodeBomb},
		{name: "gzip bomb", make: tarOf("", bomb, ".gz"), code: CodeBomb},
		{name: "folder symlink", make: inFolder(func(t *testing.T, d string) {
			os.Remove(filepath.Join(d, video))
			os.Symlink("/etc/passwd", filepath.Join(d, video))
		}), code: CodeSymlink, path: video},
		{name: "folder symlinked manifest", make: inFolder(func(t *testing.T, d string) {
			os.Rename(filepath.Join(d, ManifestName), filepath.Join(d, "..", "m.json"))
			os.Symlink(filepath.Join(d, "..", "m.json"), filepath.Join(d, ManifestName))
		}), code: CodeSymlink, path: ManifestName},
		{name: "folder fifo", make: inFolder(func(t *testing.T, d string) {
			if err := syscall.Mkfifo(filepath.Join(d, "fifo"), 0o644); err != nil {
				t.Skip("mkfifo:", err)
			}
		}), code: CodeSpecialFile, path: "fifo"},
		{name: "folder unlisted file", make: inFolder(func(t *testing.T, d string) {
			os.WriteFile(filepath.Join(d, "videos", "extra.mp4"), []byte("x"), 0o644)
		}), code: CodeUnlistedFile, path: "videos/extra.mp4"},
		{name: "folder directory where a file is expected", make: inFolder(func(t *testing.T, d string) {
			os.Remove(filepath.Join(d, video))
			os.Mkdir(filepath.Join(d, video), 0o755)
		}), code: CodeNotAFile, path: video},
		{name: "folder corrupt file", make: inFolder(func(t *testing.T, d string) {
			data, _ := os.ReadFile(filepath.Join(d, video))
			data[5] ^= 0xff
			os.WriteFile(filepath.Join(d, video), data, 0o644)
		}), code: CodeHashMismatch, path: video},
		{name: "not a pack", make: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "x.tar")
			os.WriteFile(p, bytes.Repeat([]byte("not a tar "), 100), 0o644)
			return p
		}, code: CodeBadArchive},
	}
}

func TestImportRefusesHostilePacks(t *testing.T) {
	// Another pack shares the article and the image: its blobs must survive
	// every refusal.
	shared := demoPack("1")
	shared.id = "deja-la"
	shared.items = shared.items[:1]
	for _, tt := range hostileCases() {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{}
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			e := newTestEnv(t, cfg, nil)
			mustImport(t, e.store, shared.writeFolder(t, t.TempDir()))
			before := e.blobs()
			src := tt.make(t, t.TempDir())
			_, err := e.store.Import(context.Background(), src, nil)
			var pe *PackError
			if !errors.As(err, &pe) {
				t.Fatalf("Import() error = %v, want a PackError %s", err, tt.code)
			}
			if pe.Code != tt.code || pe.Path != tt.path {
				t.Errorf("refused with %s %q (%s), want %s %q", pe.Code, pe.Path, pe.English(), tt.code, tt.path)
			}
			if !strings.HasPrefix(pe.Error(), "paquet refusé") || !strings.HasPrefix(pe.English(), "pack refused") {
				t.Errorf("messages: %q / %q", pe.Error(), pe.English())
			}
			if tt.path != "" && (!strings.Contains(pe.Error(), tt.path) || !strings.Contains(pe.English(), tt.path)) {
				t.Errorf("messages do not name %q: %q / %q", tt.path, pe.Error(), pe.English())
			}
			if n := e.count("content_packs"); n != 1 {
				t.Errorf("%d packs after a refusal, want the 1 already there", n)
			}
			if n, want := e.count("content_items"), len(shared.items); n != want {
				t.Errorf("%d items after a refusal, want %d", n, want)
			}
			if after := e.blobs(); len(after) != len(before) {
				t.Errorf("blobs: %d before, %d after a refusal", len(before), len(after))
			}
			if entries, _ := os.ReadDir(e.store.tmpDir); len(entries) != 0 {
				t.Errorf("tmp holds %d files after a refusal", len(entries))
			}
		})
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		cfg Config
		ok  bool
	}{
		{Config{Dir: "/var/lib/preau/content"}, true},
		{Config{}, false},
		{Config{Dir: "relative"}, false},
		{Config{Dir: "/x", MaxFiles: -1}, false},
	}
	for _, tt := range tests {
		err := tt.cfg.WithDefaults().Validate()
		if (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tt.cfg, err, tt.ok)
		}
	}
	c := Config{Dir: "/x"}.WithDefaults()
	if c.MaxPackBytes != 64<<30 || c.MaxFileBytes != 16<<30 || c.MaxFiles != 100000 || c.MaxManifestBytes != 8<<20 {
		t.Errorf("defaults = %+v", c)
	}
}

// TestImportRealArchivers imports packs made by GNU tar, zstd and gzip, the
// way a publisher or a technician builds them.
func TestImportRealArchivers(t *testing.T) {
	for _, tool := range []string{"tar", "zstd", "gzip", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing", tool)
		}
	}
	p := demoPack("1")
	work := t.TempDir()
	folder := p.writeFolder(t, filepath.Join(work, "pack"))
	tests := []struct{ name, cmd string }{
		{"tar dot", "tar -C " + folder + " -cf " + work + "/a.tar ."},
		{"tar.zst manifest first", "cd " + folder + " && tar -cf - preau-pack.json articles images pdf videos | zstd -q -19 --long=26 -o " + work + "/b.tar.zst"},
		{"tar.gz", "tar -C " + folder + " -czf " + work + "/c.tgz ."},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out, err := exec.Command("sh", "-c", tt.cmd).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v: %s", tt.cmd, err, out)
			}
			e := newTestEnv(t, Config{}, nil)
			src := filepath.Join(work, []string{"a.tar", "b.tar.zst", "c.tgz"}[i])
			mustImport(t, e.store, src)
			checkDemo(t, e, p)
		})
	}
}
