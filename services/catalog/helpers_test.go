package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// openDB opens a real SQLite file with the catalog's migrations applied.
func openDB(t testing.TB) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "box.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, m := range Migrations() {
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatalf("migration %d %s: %v", m.Version, m.Name, err)
		}
	}
	return db
}

// testStore is a small content store for the tests: blobs in a temp folder
// named by their real SHA-256, resumable fetches (Range + If-Range from the
// partial file), pins per owner, packs whose manifests are checked against
// the pack format. Appliance's end-to-end test uses the real store.
type testStore struct {
	dir    string
	client *http.Client

	mu        sync.Mutex
	pins      map[string]map[string]bool // owner → hashes
	packs     map[string]storedPack
	fetches   []Fetch
	resumed   int64
	fetchHook func(context.Context, Fetch) error // called before each fetch; an error fails it
	imports   atomic.Int32
}

type storedPack struct {
	manifest manifest
	raw      []byte
	source   string
}

func newTestStore(t testing.TB) *testStore {
	dir := t.TempDir()
	for _, d := range []string{"blobs", "partial"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	return &testStore{dir: dir, client: &http.Client{Timeout: 30 * time.Second},
		pins: map[string]map[string]bool{}, packs: map[string]storedPack{}}
}

func (s *testStore) blobPath(h string) string { return filepath.Join(s.dir, "blobs", h) }

func (s *testStore) Fetch(ctx context.Context, f Fetch) (Fetched, error) {
	if f.Owner == "" {
		return Fetched{}, errors.New("fetch: no owner")
	}
	s.mu.Lock()
	s.fetches = append(s.fetches, f)
	hook := s.fetchHook
	s.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, f); err != nil {
			return Fetched{}, err
		}
	}
	part := filepath.Join(s.dir, "partial", shortHash(f.URL, 32))
	pf, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return Fetched{}, err
	}
	defer pf.Close()
	have, _ := pf.Seek(0, io.SeekEnd)
	etag, _ := os.ReadFile(part + ".etag")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return Fetched{}, err
	}
	if have > 0 && len(etag) > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
		req.Header.Set("If-Range", string(etag))
	} else {
		have = 0
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return Fetched{}, fmt.Errorf("fetch %s: %w", f.URL, err)
	}
	defer resp.Body.Close()
	resumed := int64(0)
	switch resp.StatusCode {
	case http.StatusOK:
		have = 0
		pf.Truncate(0)
		os.WriteFile(part+".etag", []byte(resp.Header.Get("ETag")), 0o644)
	case http.StatusPartialContent:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", have)) {
			return Fetched{}, fmt.Errorf("fetch %s: bad Content-Range %q", f.URL, resp.Header.Get("Content-Range"))
		}
		resumed = have
	default:
		return Fetched{}, fmt.Errorf("fetch %s: %s", f.URL, resp.Status)
	}
	pf.Seek(have, io.SeekStart)
	total := f.Size
	buf := make([]byte, 32<<10)
	done := have
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := pf.Write(buf[:n]); err != nil {
				return Fetched{}, err
			}
			done += int64(n)
			if f.Size >= 0 && done > f.Size {
				os.Remove(part)
				return Fetched{}, fmt.Errorf("fetch %s: longer than %d bytes", f.URL, f.Size)
			}
			if f.Progress != nil {
				f.Progress(done, total)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return Fetched{}, fmt.Errorf("fetch %s: cut at %d: %w", f.URL, done, rerr)
		}
	}
	if f.Size >= 0 && done != f.Size {
		return Fetched{}, fmt.Errorf("fetch %s: got %d bytes of %d", f.URL, done, f.Size)
	}
	pf.Seek(0, io.SeekStart)
	h := sha256.New()
	if _, err := io.Copy(h, pf); err != nil {
		return Fetched{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if f.SHA256 != "" && f.SHA256 != sum {
		os.Remove(part)
		return Fetched{}, fmt.Errorf("fetch %s: hash mismatch", f.URL)
	}
	pf.Close()
	if err := os.Rename(part, s.blobPath(sum)); err != nil {
		return Fetched{}, err
	}
	os.Remove(part + ".etag")
	s.mu.Lock()
	if s.pins[f.Owner] == nil {
		s.pins[f.Owner] = map[string]bool{}
	}
	s.pins[f.Owner][sum] = true
	s.resumed += resumed
	s.mu.Unlock()
	return Fetched{SHA256: sum, Size: done, Resumed: resumed}, nil
}

func (s *testStore) CommitPack(ctx context.Context, data []byte, source string) error {
	m, err := checkManifest(data)
	if err != nil {
		return fmt.Errorf("commit pack: %w", err)
	}
	for _, it := range m.Items {
		for _, f := range it.Files {
			st, err := os.Stat(s.blobPath(f.SHA256))
			if err != nil || st.Size() != f.Size {
				return fmt.Errorf("commit pack %s: blob of %s missing", m.ID, f.Path)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.packs[m.ID] = storedPack{manifest: m, raw: data, source: source}
	return nil
}

func (s *testStore) RemovePack(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.packs[id]; !ok {
		return fmt.Errorf("remove %s: %w", id, ErrNoPack)
	}
	delete(s.packs, id)
	return nil
}

// ImportURL downloads a .tar pack, checks it and stores its files.
func (s *testStore) ImportURL(ctx context.Context, u string, progress func(done, total int64)) (string, error) {
	s.imports.Add(1)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("import %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if progress != nil {
		progress(int64(len(data)), int64(len(data)))
	}
	tr := tar.NewReader(bytes.NewReader(data))
	var raw []byte
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		b, _ := io.ReadAll(tr)
		if h.Name == "preau-pack.json" {
			raw = b
		} else {
			files[h.Name] = b
		}
	}
	m, err := checkManifest(raw)
	if err != nil {
		return "", err
	}
	for _, it := range m.Items {
		for _, f := range it.Files {
			b := files[f.Path]
			sum := sha256.Sum256(b)
			if hex.EncodeToString(sum[:]) != f.SHA256 {
				return "", fmt.Errorf("import: %s hash mismatch", f.Path)
			}
			os.WriteFile(s.blobPath(f.SHA256), b, 0o644)
		}
	}
	s.mu.Lock()
	s.packs[m.ID] = storedPack{manifest: m, raw: raw}
	s.mu.Unlock()
	return m.ID, nil
}

func (s *testStore) OpenBlob(hash string) (*os.File, error) {
	if !hashPattern.MatchString(hash) {
		return nil, errors.New("bad hash")
	}
	return os.Open(s.blobPath(hash))
}

func (s *testStore) Unpin(ctx context.Context, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pins, owner)
	return nil
}

func (s *testStore) pack(id string) (storedPack, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.packs[id]
	return p, ok
}

func (s *testStore) packIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id := range s.packs {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func (s *testStore) pinOwners() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for o, hs := range s.pins {
		if len(hs) > 0 {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return out
}

func (s *testStore) blob(t testing.TB, hash string) []byte {
	t.Helper()
	b, err := os.ReadFile(s.blobPath(hash))
	if err != nil {
		t.Fatalf("blob %s: %v", hash, err)
	}
	return b
}

func (s *testStore) fetchCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fetches)
}

// checkManifest validates a manifest against the pack format, version 1
// (docs/content-pack.md), as strictly as the content store: unknown fields,
// ids, version, title, language, kinds, levels, subjects, paths, sizes,
// hashes, media types, entry and thumbnail, shared paths, file/folder
// clashes.
func checkManifest(data []byte) (manifest, error) {
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("manifest JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return m, errors.New("data after the manifest")
	}
	// Sizes must be integers in the JSON itself.
	if bytes.Contains(data, []byte(`"size": "`)) {
		return m, errors.New("size as a string")
	}
	kinds := []string{"article", "video", "audio", "pdf", "image", "document"}
	levels := []string{"cycle1", "cycle2", "cycle3", "cycle4", "lycee"}
	subj := `^[a-z0-9][a-z0-9-]{0,63}$`
	switch {
	case m.Format != 1:
		return m, fmt.Errorf("format %d", m.Format)
	case !idPattern.MatchString(m.ID):
		return m, fmt.Errorf("pack id %q", m.ID)
	case m.Version == "" || len(m.Version) > 64:
		return m, fmt.Errorf("version %q", m.Version)
	case strings.TrimSpace(m.Title) == "" || len(m.Title) > 64<<10:
		return m, errors.New("title")
	case !langPattern.MatchString(m.Language):
		return m, fmt.Errorf("language %q", m.Language)
	case len(m.Items) == 0:
		return m, errors.New("no items")
	case len(m.Description) > 64<<10 || len(m.Publisher) > 64<<10:
		return m, errors.New("description or publisher too long")
	}
	if m.Created != "" {
		if _, err := time.Parse(time.RFC3339, m.Created); err != nil {
			return m, fmt.Errorf("created %q", m.Created)
		}
	}
	ids := map[string]bool{}
	all := map[string]manifestFile{}
	for _, it := range m.Items {
		if !idPattern.MatchString(it.ID) || ids[it.ID] {
			return m, fmt.Errorf("item id %q", it.ID)
		}
		ids[it.ID] = true
		if strings.TrimSpace(it.Title) == "" || len(it.Title) > 64<<10 || len(it.Description) > 64<<10 ||
			len(it.Licence) > 64<<10 || len(it.Source) > 64<<10 {
			return m, fmt.Errorf("item %s: text fields", it.ID)
		}
		if !slices.Contains(kinds, it.Kind) {
			return m, fmt.Errorf("item %s: kind %q", it.ID, it.Kind)
		}
		if it.Language != "" && !langPattern.MatchString(it.Language) {
			return m, fmt.Errorf("item %s: language", it.ID)
		}
		for _, l := range it.Levels {
			if !slices.Contains(levels, l) {
				return m, fmt.Errorf("item %s: level %q", it.ID, l)
			}
		}
		for _, s := range it.Subjects {
			if ok, _ := regexpMatch(subj, s); !ok {
				return m, fmt.Errorf("item %s: subject %q", it.ID, s)
			}
		}
		for _, a := range it.Authors {
			if strings.TrimSpace(a) == "" {
				return m, fmt.Errorf("item %s: empty author", it.ID)
			}
		}
		own := map[string]bool{}
		for _, f := range it.Files {
			if !validPackPath(f.Path) || own[f.Path] {
				return m, fmt.Errorf("item %s: path %q", it.ID, f.Path)
			}
			own[f.Path] = true
			if f.Size < 0 || !hashPattern.MatchString(f.SHA256) || len(f.MediaType) > 255 {
				return m, fmt.Errorf("item %s: file %s size/hash/type", it.ID, f.Path)
			}
			if _, _, err := mime.ParseMediaType(f.MediaType); err != nil {
				return m, fmt.Errorf("item %s: media type %q", it.ID, f.MediaType)
			}
			if prev, ok := all[f.Path]; ok && prev != f {
				return m, fmt.Errorf("shared path %s differs", f.Path)
			}
			all[f.Path] = f
		}
		if len(it.Files) == 0 || !own[it.Entry] {
			return m, fmt.Errorf("item %s: entry %q", it.ID, it.Entry)
		}
		if it.Thumbnail != "" && !own[it.Thumbnail] {
			return m, fmt.Errorf("item %s: thumbnail %q", it.ID, it.Thumbnail)
		}
	}
	for p := range all {
		for d := p; strings.Contains(d, "/"); {
			d = d[:strings.LastIndex(d, "/")]
			if _, ok := all[d]; ok {
				return m, fmt.Errorf("%s is a file and a folder", d)
			}
		}
	}
	return m, nil
}

func regexpMatch(pattern, s string) (bool, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return false, err
	}
	return re.MatchString(s), nil
}

// newCatalog builds a catalogue on a fresh database with fast retries.
func newCatalog(t testing.TB, cfg Config, st Store) (*Catalog, *sql.DB) {
	t.Helper()
	db := openDB(t)
	if cfg.RetryMin == 0 {
		cfg.RetryMin = 20 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 200 * time.Millisecond
	}
	c, err := New(cfg, db, st, nil, &http.Client{Timeout: 30 * time.Second}, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return c, db
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// serve runs c.Serve until the test ends.
func serve(t testing.TB, c *Catalog) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v", err)
		}
	})
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allDone reports whether every item of c is done or failed.
func allSettled(t testing.TB, c *Catalog) bool {
	t.Helper()
	ps, err := c.Progress(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.State != StateFailed {
			return false
		}
	}
	return true
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func itoa(n int) string { return strconv.Itoa(n) }

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
