package webdav

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost:   8,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       30 * time.Second,
	}}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	hc := httpClient()
	t.Cleanup(hc.CloseIdleConnections)
	c, err := New(cfg, hc, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sumOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// tree lists the files under dir: relative path → SHA-256.
func tree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = sumOf(b)
		return nil
	})
	return out
}

func noTemporaries(t testing.TB, files map[string]string) {
	t.Helper()
	for p := range files {
		if strings.Contains(p, tempPrefix) || strings.HasSuffix(p, ".part") {
			t.Errorf("leftover temporary file %s", p)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"webdav", Config{URL: "https://nuage.example/remote.php/dav/files/alice/Devoirs", User: "alice", Password: "x"}, ""},
		{"share link", Config{URL: "https://nuage.example/s/AbC123xyz"}, ""},
		{"share link with password", Config{URL: "https://nuage.example/index.php/s/AbC123xyz", Password: "secret"}, ""},
		{"no url", Config{}, "URL"},
		{"ftp", Config{URL: "ftp://x/"}, "URL"},
		{"login in url", Config{URL: "https://a:b@x/dav/"}, "URL"},
		{"query", Config{URL: "https://x/dav/?a=1"}, "URL"},
		{"password alone", Config{URL: "https://x/dav/", Password: "p"}, "Password"},
		{"small chunks", Config{URL: "https://x/dav/", ChunkSize: 1 << 20}, "ChunkSize"},
		{"nickname", Config{URL: "https://x/s/abc", Nickname: "../x"}, "Nickname"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, httpClient(), nil)
			if tt.field == "" && err != nil {
				t.Fatalf("New() = %v, want nil", err)
			}
			if tt.field != "" && (err == nil || !strings.Contains(err.Error(), tt.field)) {
				t.Fatalf("New() = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

func TestURLs(t *testing.T) {
	tests := []struct {
		cfg           Config
		rel           string
		wantURL       string
		wantPublic    bool
		wantUploadURL string
	}{
		{Config{URL: "https://n.example/remote.php/dav/files/alice/Devoirs", User: "alice"}, "CM2 A/Léa (2).pdf",
			"https://n.example/remote.php/dav/files/alice/Devoirs/CM2%20A/L%C3%A9a%20%282%29.pdf", false,
			"https://n.example/remote.php/dav/uploads/alice/"},
		{Config{URL: "https://n.example/cloud/remote.php/dav/files/bob%40ac.fr/", User: "bob@ac.fr"}, "a#b?.txt",
			"https://n.example/cloud/remote.php/dav/files/bob@ac.fr/a%23b%3F.txt", false,
			"https://n.example/cloud/remote.php/dav/uploads/bob@ac.fr/"},
		{Config{URL: "https://n.example/s/Tok3n"}, "x/y.txt", "https://n.example/public.php/dav/files/Tok3n/x/y.txt", true, ""},
		{Config{URL: "https://n.example/nc/index.php/s/Tok3n/"}, "y.txt", "https://n.example/nc/public.php/dav/files/Tok3n/y.txt", true, ""},
		{Config{URL: "http://127.0.0.1:8080/dav", User: "u"}, "y.txt", "http://127.0.0.1:8080/dav/y.txt", false, ""},
		{Config{URL: "https://n.example/remote.php/dav/files/alice/", User: "alice", ChunkThreshold: -1}, "y", "https://n.example/remote.php/dav/files/alice/y", false, ""},
	}
	for _, tt := range tests {
		c := newClient(t, tt.cfg)
		if got := c.urlOf(tt.rel); got != tt.wantURL {
			t.Errorf("%s: urlOf(%q) = %q, want %q", tt.cfg.URL, tt.rel, got, tt.wantURL)
		}
		if c.public != tt.wantPublic {
			t.Errorf("%s: public = %v, want %v", tt.cfg.URL, c.public, tt.wantPublic)
		}
		got := ""
		if c.uploads != nil {
			got = c.uploads.String()
		}
		if got != tt.wantUploadURL {
			t.Errorf("%s: uploads = %q, want %q", tt.cfg.URL, got, tt.wantUploadURL)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{" 5 ", 5 * time.Second},
		{"Mon, 10 Mar 2025 09:30:00 GMT", 30 * time.Minute},
		{"Mon, 10 Mar 2025 08:30:00 GMT", 0},
		{"99999999999999999999", 7 * 24 * time.Hour},
		{"-3", 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestStatusErrors(t *testing.T) {
	tests := []struct {
		code      int
		public    bool
		permanent bool
		fr        string
	}{
		{401, false, true, "mot de passe d'application"},
		{401, true, true, "mot de passe du partage"},
		{403, false, true, "interdit"},
		{404, true, true, "n'existe plus"},
		{413, false, true, "trop gros"},
		{507, false, true, "plein"},
		{400, false, true, "refuse la requête"},
		{423, false, false, "nouvel essai"},
		{429, false, false, "nouvel essai"},
		{500, false, false, "indisponible"},
		{503, false, false, "indisponible"},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.code, Status: http.StatusText(tt.code), Header: http.Header{"Retry-After": {"30"}}}
		e := statusError("PUT a.pdf", resp, tt.public, time.Now())
		if e.Permanent() != tt.permanent || !strings.Contains(e.Error(), tt.fr) || e.English() == "" {
			t.Errorf("%d public=%v: permanent %v, %q; want %v and %q", tt.code, tt.public, e.Permanent(), e.Error(), tt.permanent, tt.fr)
		}
		if e.RetryAfter() != 30*time.Second {
			t.Errorf("%d: RetryAfter() = %v", tt.code, e.RetryAfter())
		}
	}
}

// realPeers starts rclone and Apache; each runs fn in a subtest.
func realPeers(t *testing.T, fn func(t *testing.T, p peer)) {
	for _, s := range []struct {
		name  string
		start func(t *testing.T) peer
	}{
		{"rclone", func(t *testing.T) peer { return startRclone(t, "", "u", "p") }},
		{"apache", func(t *testing.T) peer { return startApache(t, apacheOptions{}) }},
	} {
		t.Run(s.name, func(t *testing.T) {
			p := s.start(t)
			t.Logf("peer %s at %s", p.name, p.url)
			fn(t, p)
		})
	}
}

func TestUploadOnRealServers(t *testing.T) {
	realPeers(t, func(t *testing.T, p peer) {
		ctx := context.Background()
		c := newClient(t, Config{URL: p.url, User: p.user, Password: p.pass})
		body := randomBytes(300<<10, 1)
		cases := []struct {
			rel  string
			body []byte
		}{
			{"CM2-A/Rédaction (12)/Léa M. K7Q-4PD/photo été.jpg", body},
			{"racine.txt", []byte("à la racine")},
			{"vide/zéro.txt", nil},
			{"CM2-A/Rédaction (12)/Tom B. 8XR-2KD/copie #1 100%.pdf", randomBytes(70000, 2)},
		}
		for _, tc := range cases {
			if _, _, exists, err := c.Stat(ctx, tc.rel); err != nil || exists {
				t.Fatalf("Stat(%q) before = %v, %v; want absent", tc.rel, exists, err)
			}
			var last atomic.Int64
			if err := c.Upload(ctx, tc.rel, bytes.NewReader(tc.body), int64(len(tc.body)), sumOf(tc.body), func(n int64) { last.Store(n) }); err != nil {
				t.Fatalf("Upload(%q) = %v", tc.rel, err)
			}
			if last.Load() != int64(len(tc.body)) {
				t.Errorf("last progress %d, want %d", last.Load(), len(tc.body))
			}
			size, _, exists, err := c.Stat(ctx, tc.rel)
			if err != nil || !exists || size != int64(len(tc.body)) {
				t.Fatalf("Stat(%q) after = %d, %v, %v; want %d bytes", tc.rel, size, exists, err, len(tc.body))
			}
		}
		// The same upload again, or another body under the same name,
		// leaves the file as it is: the final name is never overwritten.
		other := randomBytes(1000, 3)
		for _, b := range [][]byte{body, other} {
			if err := c.Upload(ctx, cases[0].rel, bytes.NewReader(b), int64(len(b)), sumOf(b), nil); err != nil {
				t.Fatalf("second Upload = %v", err)
			}
		}
		got := tree(t, p.dir)
		want := map[string]string{}
		for _, tc := range cases {
			want[tc.rel] = sumOf(tc.body)
		}
		for rel, sum := range want {
			if got[rel] != sum {
				t.Errorf("%s: sha256 %q on the server, want %q", rel, got[rel], sum)
			}
		}
		if len(got) != len(want) {
			t.Errorf("server holds %d files, want %d: %v", len(got), len(want), got)
		}
		noTemporaries(t, got)
		if err := c.Cleanup(ctx, cases[0].rel); err != nil {
			t.Errorf("Cleanup() = %v", err)
		}
	})
}

func TestCleanupRemovesLeftovers(t *testing.T) {
	realPeers(t, func(t *testing.T, p peer) {
		ctx := context.Background()
		c := newClient(t, Config{URL: p.url, User: p.user, Password: p.pass})
		rel := "d/devoir.pdf"
		body := []byte("%PDF-1.7 devoir")
		// Leftovers of attempts cut before their MOVE.
		if err := c.ensureDir(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := c.putTemp(ctx, rel, bytes.NewReader(body), int64(len(body)), sumOf(body), func(int64) {}); err != nil {
				t.Fatal(err)
			}
		}
		other := "d/autre.pdf"
		if _, err := c.putTemp(ctx, other, bytes.NewReader(body), int64(len(body)), sumOf(body), func(int64) {}); err != nil {
			t.Fatal(err)
		}
		if err := c.Upload(ctx, rel, bytes.NewReader(body), int64(len(body)), sumOf(body), nil); err != nil {
			t.Fatal(err)
		}
		if n := len(tree(t, p.dir)); n != 4 {
			t.Fatalf("%d files before Cleanup, want 4", n)
		}
		if err := c.Cleanup(ctx, rel); err != nil {
			t.Fatal(err)
		}
		got := tree(t, p.dir)
		if len(got) != 2 || got[rel] != sumOf(body) {
			t.Fatalf("after Cleanup: %v; want the file and the other item's temporary file", got)
		}
	})
}

func TestPermanentErrorsOnRealServers(t *testing.T) {
	ctx := context.Background()
	body := randomBytes(200<<10, 4)
	tests := []struct {
		name   string
		start  func(t *testing.T) peer
		pass   string
		rel    string
		status int
		fr     string
	}{
		{"rclone bad password", func(t *testing.T) peer { return startRclone(t, "", "u", "p") }, "faux", "a.bin", 401, "mot de passe"},
		{"apache bad password", func(t *testing.T) peer { return startApache(t, apacheOptions{}) }, "faux", "a.bin", 401, "mot de passe"},
		{"apache forbidden folder", func(t *testing.T) peer { return startApache(t, apacheOptions{forbidden: "interdit"}) }, "", "interdit/a.bin", 403, "interdit"},
		{"apache disk full", func(t *testing.T) peer { return startApache(t, apacheOptions{fullAfter: 64 << 10}) }, "", "a.bin", 507, "plein"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.start(t)
			pass := p.pass
			if tt.pass != "" {
				pass = tt.pass
			}
			c := newClient(t, Config{URL: p.url, User: p.user, Password: pass})
			_, _, _, err := c.Stat(ctx, tt.rel)
			if err == nil {
				err = c.Upload(ctx, tt.rel, bytes.NewReader(body), int64(len(body)), sumOf(body), nil)
			}
			var we *Error
			if !errors.As(err, &we) || we.Status != tt.status || !we.Permanent() || !strings.Contains(we.FR, tt.fr) {
				t.Fatalf("error %v (%#v), want a permanent %d saying %q", err, we, tt.status, tt.fr)
			}
		})
	}
}

func TestPlainPutWhereNoChunking(t *testing.T) {
	const prefix = "/remote.php/dav/files/u"
	for _, s := range []struct {
		name  string
		start func(t *testing.T) peer
	}{
		{"rclone", func(t *testing.T) peer { return startRclone(t, prefix, "u", "p") }},
		{"apache", func(t *testing.T) peer { return startApache(t, apacheOptions{prefix: prefix}) }},
	} {
		t.Run(s.name, func(t *testing.T) {
			p := s.start(t)
			c := newClient(t, Config{URL: p.url, User: p.user, Password: p.pass, ChunkThreshold: 5 << 20, ChunkSize: 5 << 20})
			if c.uploads == nil {
				t.Fatal("the client does not try chunking on a Nextcloud-like URL")
			}
			body := randomBytes(11<<20+17, 5)
			ctx := context.Background()
			if err := c.Upload(ctx, "gros/vidéo.mp4", bytes.NewReader(body), int64(len(body)), sumOf(body), nil); err != nil {
				t.Fatalf("Upload() = %v", err)
			}
			if !c.noChunking.Load() {
				t.Error("chunking was not found missing")
			}
			got := tree(t, p.dir)
			if len(got) != 1 || got["gros/vidéo.mp4"] != sumOf(body) {
				t.Fatalf("server holds %v", got)
			}
		})
	}
}

// TestDamagedBlobIsNeverMovedIntoPlace: a body whose last byte differs
// from what its SHA-256 says never arrives whole nor under its name.
func TestDamagedBlobIsNeverMovedIntoPlace(t *testing.T) {
	good := randomBytes(100<<10, 6)
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	check := func(t *testing.T, c *Client, dir string) {
		ctx := context.Background()
		err := c.Upload(ctx, "x/a.bin", bytes.NewReader(bad), int64(len(bad)), sumOf(good), nil)
		var we *Error
		if !errors.As(err, &we) || !we.Permanent() || !strings.Contains(we.FR, "abîmé") {
			t.Fatalf("Upload() = %v, want a permanent damaged-file error", err)
		}
		if _, _, exists, err := c.Stat(ctx, "x/a.bin"); exists || err != nil {
			t.Fatalf("final file exists=%v err=%v", exists, err)
		}
		c.Cleanup(ctx, "x/a.bin")
		noTemporaries(t, tree(t, dir))
	}
	t.Run("rclone", func(t *testing.T) {
		p := startRclone(t, "", "u", "p")
		check(t, newClient(t, Config{URL: p.url, User: p.user, Password: p.pass}), p.dir)
	})
	t.Run("nextcloud chunked", func(t *testing.T) {
		f := newFakeNextcloud(t)
		big := randomBytes(11<<20, 7)
		badBig := bytes.Clone(big)
		badBig[len(badBig)-1] ^= 1
		c := newClient(t, Config{URL: f.filesURL(), User: f.user, Password: f.pass, ChunkThreshold: 5 << 20, ChunkSize: 5 << 20})
		err := c.Upload(context.Background(), "x/big.bin", bytes.NewReader(badBig), int64(len(badBig)), sumOf(big), nil)
		var we *Error
		if !errors.As(err, &we) || !we.Permanent() {
			t.Fatalf("Upload() = %v, want a permanent damaged-file error", err)
		}
		if len(tree(t, f.root)) != 0 || len(f.sessions) != 0 {
			t.Fatalf("left %v and %d sessions", tree(t, f.root), len(f.sessions))
		}
	})
}

func TestReaderAtIsStreamed(t *testing.T) {
	// A body read only through ReadAt, as the blob file is: Upload must
	// not need more than io.ReaderAt.
	p := startRclone(t, "", "u", "p")
	c := newClient(t, Config{URL: p.url, User: p.user, Password: p.pass})
	body := randomBytes(3<<20, 8)
	r := readerAtOnly{bytes.NewReader(body)}
	if err := c.Upload(context.Background(), "s.bin", r, int64(len(body)), sumOf(body), nil); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, p.dir)["s.bin"]; got != sumOf(body) {
		t.Fatalf("sha256 %q", got)
	}
}

type readerAtOnly struct{ r io.ReaderAt }

func (r readerAtOnly) ReadAt(p []byte, off int64) (int, error) { return r.r.ReadAt(p, off) }
