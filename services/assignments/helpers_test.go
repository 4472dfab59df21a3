package assignments

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// openDB opens a database the way appliance/store does and applies the
// assignments migrations, tracking them in user_version.
func openDB(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000&_txlock=immediate&_synchronous=NORMAL")
	if err != nil {
		return nil, err
	}
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		db.Close()
		return nil, err
	}
	for _, m := range Migrations()[v:] {
		tx, err := db.Begin()
		if err != nil {
			db.Close()
			return nil, err
		}
		if _, err := tx.Exec(m.SQL); err != nil {
			tx.Rollback()
			db.Close()
			return nil, fmt.Errorf("migration %d: %w", m.Version, err)
		}
		if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", m.Version)); err != nil {
			tx.Rollback()
			db.Close()
			return nil, err
		}
		if err := tx.Commit(); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

func openTestDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := openDB(filepath.Join(t.TempDir(), "preau.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// diskBlobs is a small on-disk blob store with the content store's
// contract: blobs named by SHA-256 under dir/blobs, written to a temp file,
// fsynced and renamed; pins are empty files dir/pins/<owner>/<hash>,
// written after the blob is durable. It is our own interface, not a peer.
type diskBlobs struct {
	dir string
	mu  sync.Mutex
	// failAfter makes PutBlob fail once it has stored this many blobs (0: never).
	failAfter int
	puts      int
}

var errTestBlobTooLarge = errors.New("test blob store: too large")

func newDiskBlobs(t testing.TB, dir string) *diskBlobs {
	t.Helper()
	for _, d := range []string{"blobs", "tmp", "pins"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &diskBlobs{dir: dir}
}

func (b *diskBlobs) PutBlob(ctx context.Context, owner string, r io.Reader, max int64) (string, int64, error) {
	b.mu.Lock()
	b.puts++
	fail := b.failAfter > 0 && b.puts > b.failAfter
	b.mu.Unlock()
	if fail {
		return "", 0, errors.New("test blob store: disk full")
	}
	tmp, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "put-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, max+1))
	if err != nil {
		return "", 0, fmt.Errorf("put blob: %w", err)
	}
	if n > max {
		return "", 0, errTestBlobTooLarge
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, err
	}
	hash := hex.EncodeToString(h.Sum(nil))
	// Like the content store, Unpin must not judge a blob between its
	// rename and its pin.
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := os.Rename(tmp.Name(), filepath.Join(b.dir, "blobs", hash)); err != nil {
		return "", 0, err
	}
	if err := syncDir(filepath.Join(b.dir, "blobs")); err != nil {
		return "", 0, err
	}
	pins := filepath.Join(b.dir, "pins", owner)
	if err := os.MkdirAll(pins, 0o755); err != nil {
		return "", 0, err
	}
	if err := os.WriteFile(filepath.Join(pins, hash), nil, 0o644); err != nil {
		return "", 0, err
	}
	return hash, n, syncDir(pins)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (b *diskBlobs) OpenBlob(hash string) (*os.File, error) {
	if len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
		return nil, os.ErrNotExist
	}
	return os.Open(filepath.Join(b.dir, "blobs", hash))
}

// Unpin drops owner's pins and removes blobs no one pins any more.
func (b *diskBlobs) Unpin(ctx context.Context, owner string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := os.RemoveAll(filepath.Join(b.dir, "pins", owner)); err != nil {
		return err
	}
	pinned := b.pinnedLocked()
	entries, err := os.ReadDir(filepath.Join(b.dir, "blobs"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !pinned[e.Name()] {
			os.Remove(filepath.Join(b.dir, "blobs", e.Name()))
		}
	}
	return nil
}

func (b *diskBlobs) pinnedLocked() map[string]bool {
	out := map[string]bool{}
	owners, _ := os.ReadDir(filepath.Join(b.dir, "pins"))
	for _, o := range owners {
		hs, _ := os.ReadDir(filepath.Join(b.dir, "pins", o.Name()))
		for _, h := range hs {
			out[h.Name()] = true
		}
	}
	return out
}

// owners returns the pin owners that hold at least one pin.
func (b *diskBlobs) owners(t testing.TB) []string {
	t.Helper()
	var out []string
	owners, _ := os.ReadDir(filepath.Join(b.dir, "pins"))
	for _, o := range owners {
		if hs, _ := os.ReadDir(filepath.Join(b.dir, "pins", o.Name())); len(hs) > 0 {
			out = append(out, o.Name())
		}
	}
	return out
}

// fakeDelivery is the outbox as Delivery sees it: states by key.
type fakeDelivery struct {
	mu sync.Mutex
	m  map[string]DeliveryState
}

func (f *fakeDelivery) State(ctx context.Context, key string) (DeliveryState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.m[key]
	if !ok {
		return DeliveryState{}, fmt.Errorf("outbox item %s: %w", key, ErrNotQueued)
	}
	return st, nil
}

func (f *fakeDelivery) set(key string, st DeliveryState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]DeliveryState{}
	}
	f.m[key] = st
}

// env is a running Service on a loopback test server.
type env struct {
	t        *testing.T
	svc      *Service
	db       *sql.DB
	blobs    *diskBlobs
	delivery *fakeDelivery
	srv      *httptest.Server
	now      time.Time
	clockMu  sync.Mutex

	hookMu sync.Mutex
	hooked []HandIn
}

var testDestinations = []Destination{{ID: "nuage-cm2", Label: "Nuage de Mme Martin"}, {ID: "usb", Label: "Clé USB"}}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, db: openTestDB(t), delivery: &fakeDelivery{},
		now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	e.blobs = newDiskBlobs(t, t.TempDir())
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	cfg := Config{
		Destinations: testDestinations,
		Location:     paris,
		Now:          e.clock,
		OnHandIn: func(ctx context.Context, h HandIn) {
			e.hookMu.Lock()
			e.hooked = append(e.hooked, h)
			e.hookMu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	e.svc, err = New(cfg, e.db, e.blobs, e.delivery, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.svc.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) clock() time.Time {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	e.now = e.now.Add(d)
}

func (e *env) hooks() []HandIn {
	e.hookMu.Lock()
	defer e.hookMu.Unlock()
	return append([]HandIn(nil), e.hooked...)
}

func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// client is a browser: a cookie jar and no automatic redirects.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newJar() http.CookieJar {
	jar, _ := cookiejar.New(nil)
	return jar
}

func (e *env) client() *client {
	jar := newJar()
	return &client{t: e.t, base: e.srv.URL, hc: &http.Client{
		Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// response keeps the raw body and, in body, its text with HTML character
// references decoded (so that tests can look for "n'est").
type response struct {
	status int
	header http.Header
	body   string
	raw    string
}

func (c *client) do(req *http.Request) response {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, html.UnescapeString(string(b)), string(b)}
}

func (c *client) get(path string) response {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+path, nil)
	return c.do(req)
}

func (c *client) postForm(path string, v url.Values) response {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.base+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.base)
	return c.do(req)
}

var csrfPattern = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf loads a page and returns the form's token.
func (c *client) csrf(path string) string {
	c.t.Helper()
	r := c.get(path)
	m := csrfPattern.FindStringSubmatch(r.body)
	if m == nil {
		c.t.Fatalf("GET %s: no csrf field (status %d): %s", path, r.status, r.body)
	}
	return m[1]
}

// part is one part of a multipart body, in order.
type part struct {
	name, filename, contentType string
	data                        []byte
}

func field(name, value string) part { return part{name: name, data: []byte(value)} }

func filePart(name, filename string, data []byte) part {
	return part{name: name, filename: filename, contentType: "application/octet-stream", data: data}
}

func multipartBody(t testing.TB, parts []part) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		if p.filename != "" || p.contentType != "" {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, p.name, strings.ReplaceAll(p.filename, `"`, `\"`)))
			h.Set("Content-Type", p.contentType)
		} else {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"`, p.name))
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(p.data)
	}
	w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

func (c *client) postMultipart(path string, parts []part) response {
	c.t.Helper()
	ctype, body := multipartBody(c.t, parts)
	req, _ := http.NewRequest("POST", c.base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Origin", c.base)
	return c.do(req)
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "files", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// teacher creates a teacher account and returns a logged-in client.
func (e *env) teacher(login string) *client {
	e.t.Helper()
	if err := e.svc.CreateTeacher(context.Background(), login, "Mme "+login, "correct horse battery"); err != nil && !errors.Is(err, ErrTeacherExists) {
		e.t.Fatal(err)
	}
	c := e.client()
	tok := c.csrf("/enseignant/connexion")
	r := c.postForm("/enseignant/connexion", url.Values{"csrf": {tok}, "identifiant": {login}, "motdepasse": {"correct horse battery"}})
	if r.status != http.StatusSeeOther {
		e.t.Fatalf("login %s: status %d: %s", login, r.status, r.body)
	}
	return c
}

// newAssignment creates an assignment through the teacher's form and
// returns its id.
func (e *env) newAssignment(c *client, mod func(url.Values)) int64 {
	e.t.Helper()
	v := url.Values{
		"csrf":        {c.csrf("/enseignant/devoirs/nouveau")},
		"titre":       {"Rédaction : mon week-end"},
		"classe":      {"cm2-a"},
		"echeance":    {"2026-11-30"},
		"heure":       {"18:00"},
		"consignes":   {"Une page.\nAvec un dessin."},
		"destination": {"nuage-cm2"},
		"types":       {"image", "pdf", "office", "audio", "text"},
		"taille":      {"20"},
	}
	if mod != nil {
		mod(v)
	}
	r := c.postForm("/enseignant/devoirs", v)
	if r.status != http.StatusSeeOther {
		e.t.Fatalf("create assignment: status %d: %s", r.status, r.body)
	}
	var id int64
	if _, err := fmt.Sscanf(r.header.Get("Location"), "/enseignant/devoirs/%d", &id); err != nil {
		e.t.Fatalf("create assignment: location %q", r.header.Get("Location"))
	}
	return id
}

// handIn posts a hand-in from c with the form's token first.
func (c *client) handIn(id int64, parts ...part) response {
	c.t.Helper()
	path := fmt.Sprintf("/devoirs/devoir/%d", id)
	tok := c.csrf(path)
	return c.postMultipart(path, append([]part{field("csrf", tok)}, parts...))
}

func pupil(first, initial string) []part {
	return []part{field("prenom", first), field("initiale", initial)}
}
