package content

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	_ "github.com/mattn/go-sqlite3"
)

// openTestDB opens a database like appliance/store does and applies the
// content migrations, tracking them in user_version.
func openTestDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := openDB(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openDB(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func migrate(db *sql.DB) error {
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	for _, m := range Migrations()[v:] {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(m.SQL); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", m.Version, err)
		}
		if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", m.Version)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

type testEnv struct {
	t     testing.TB
	dir   string
	db    *sql.DB
	store *Store
}

func newTestEnv(t testing.TB, cfg Config, doer Doer) *testEnv {
	t.Helper()
	dir := t.TempDir()
	cfg.Dir = filepath.Join(dir, "content")
	db := openTestDB(t, filepath.Join(dir, "preau.db"))
	s, err := New(cfg, db, doer, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, dir: dir, db: db, store: s}
}

func (e *testEnv) blobs() map[string]bool {
	e.t.Helper()
	out := make(map[string]bool)
	if err := e.store.blobNames(func(h, _ string, _ os.FileInfo) error { out[h] = true; return nil }); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *testEnv) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// testFile is a file of a test pack.
type testFile struct {
	path, mediaType string
	data            []byte
}

// testPack builds packs for tests.
type testPack struct {
	id, version string
	items       []testItem
	// edit changes the manifest before it is encoded.
	edit func(m map[string]any)
}

type testItem struct {
	id, title, kind string
	levels          []string
	subjects        []string
	files           []testFile
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (p testPack) manifest() []byte {
	items := []any{}
	for _, it := range p.items {
		files := []any{}
		for _, f := range it.files {
			files = append(files, map[string]any{"path": f.path, "size": len(f.data), "sha256": sum(f.data), "media_type": f.mediaType})
		}
		kind := it.kind
		if kind == "" {
			kind = "article"
		}
		item := map[string]any{
			"id": it.id, "title": it.title, "kind": kind, "levels": nonNil(it.levels), "subjects": nonNil(it.subjects),
			"licence": "CC-BY-4.0", "entry": it.files[0].path, "files": files,
		}
		items = append(items, item)
	}
	m := map[string]any{
		"format": 1, "id": p.id, "version": p.version, "title": "Paquet " + p.id,
		"language": "fr", "created": "2026-11-23T00:00:00Z", "items": items,
	}
	if p.edit != nil {
		p.edit(m)
	}
	data, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		panic(err)
	}
	return data
}

// files returns the pack's distinct files sorted by path.
func (p testPack) files() []testFile {
	seen := map[string]bool{}
	var out []testFile
	for _, it := range p.items {
		for _, f := range it.files {
			if !seen[f.path] {
				seen[f.path] = true
				out = append(out, f)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// writeFolder writes the pack as a folder.
func (p testPack) writeFolder(t testing.TB, dir string) string {
	t.Helper()
	for _, f := range p.files() {
		fp := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fp, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), p.manifest(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

type tarEntry struct {
	hdr  tar.Header
	body []byte
}

// entries returns the tar entries of the pack: "./" root, the manifest
// first unless manifestLast, folders, then files.
func (p testPack) entries(manifestLast bool) []tarEntry {
	mtime := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	man := tarEntry{tar.Header{Typeflag: tar.TypeReg, Name: "./" + ManifestName, Mode: 0o644, ModTime: mtime}, p.manifest()}
	out := []tarEntry{{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755, ModTime: mtime}}}
	if !manifestLast {
		out = append(out, man)
	}
	dirs := map[string]bool{}
	for _, f := range p.files() {
		for d := parentDir(f.path); d != "" && !dirs[d]; d = parentDir(d) {
			dirs[d] = true
			out = append(out, tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./" + d + "/", Mode: 0o755, ModTime: mtime}})
		}
		out = append(out, tarEntry{tar.Header{Typeflag: tar.TypeReg, Name: "./" + f.path, Mode: 0o644, ModTime: mtime}, f.data})
	}
	if manifestLast {
		out = append(out, man)
	}
	return out
}

// writeTar writes entries as path; compression is "", "zst" or "gz".
func writeTar(t testing.TB, path string, entries []tarEntry, compression string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if len(e.body) > 0 {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := compress(t, buf.Bytes(), compression)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func compress(t testing.TB, data []byte, compression string) []byte {
	t.Helper()
	var out bytes.Buffer
	var w io.WriteCloser
	switch compression {
	case "":
		return data
	case "zst":
		zw, err := zstd.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	case "gz":
		w = gzip.NewWriter(&out)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// demoPack is a small French pack with an article, an image shared by two
// items, a PDF and a video.
func demoPack(version string) testPack {
	img := testFile{"images/eau.png", "image/png", bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 3000)}
	return testPack{id: "demo-preau", version: version, items: []testItem{
		{id: "cycle-de-l-eau", title: "Le cycle de l'eau", levels: []string{"cycle3", "cycle4"}, subjects: []string{"sciences"},
			files: []testFile{
				{"articles/cycle-de-l-eau.html", "text/html; charset=utf-8", []byte(`<!doctype html><html><head><title>Eau</title><style>p{color:red}</style><script>alert("évaporation")</script></head><body><h1>Le cycle de l'eau</h1><p>L'eau s'évapore, forme des nuages puis retombe en précipitations.</p></body></html>`)},
				img,
			}},
		{id: "ecole-d-autrefois", title: "École d'autrefois", kind: "pdf", levels: []string{"cycle2"}, subjects: []string{"histoire-geographie"},
			files: []testFile{{"pdf/ecole.pdf", "application/pdf", bytes.Repeat([]byte("%PDF-1.4 école\n"), 5000)}, img}},
		{id: "fables", title: "Fables de La Fontaine", kind: "video", subjects: []string{"francais"},
			files: []testFile{{"videos/fables.mp4", "video/mp4", pseudoRandom(300000, 1)}}},
		{id: "atelier-svg", title: "atelier SVG", kind: "image",
			files: []testFile{{"images/dessin.svg", "image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)}}},
	}}
}

func pseudoRandom(n int, seed uint64) []byte {
	b := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

func mustImport(t testing.TB, s *Store, source string) PackInfo {
	t.Helper()
	info, err := s.Import(context.Background(), source, nil)
	if err != nil {
		if pe, ok := err.(*PackError); ok {
			t.Fatalf("import %s: %s (%s)", source, pe.English(), pe.Code)
		}
		t.Fatalf("import %s: %v", source, err)
	}
	return info
}
