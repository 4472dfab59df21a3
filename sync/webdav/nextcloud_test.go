package webdav

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ncClient is a client of the fake Nextcloud with 5 MiB chunks from 5 MiB.
func ncClient(t *testing.T, f *fakeNextcloud, now func() time.Time) *Client {
	return newClient(t, Config{URL: f.filesURL() + "Devoirs/", User: f.user, Password: f.pass,
		ChunkThreshold: 5 << 20, ChunkSize: 5 << 20, Now: now})
}

// failOnce answers the first request matching with status.
func failOnce(match func(r *http.Request) bool, status int) func(*http.Request) (int, http.Header) {
	var mu sync.Mutex
	done := false
	return func(r *http.Request) (int, http.Header) {
		mu.Lock()
		defer mu.Unlock()
		if !done && match(r) {
			done = true
			return status, http.Header{"Retry-After": {"1"}}
		}
		return 0, nil
	}
}

func isChunk(n string) func(r *http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/"+n) && strings.Contains(r.URL.Path, "/uploads/")
	}
}

func TestChunkedUpload(t *testing.T) {
	const size = 12<<20 + 123
	body := randomBytes(size, 10)
	rel := "CM2-A/Vidéo de Léa.mp4"
	type step struct {
		inject     func(*http.Request) (int, http.Header)
		advance    time.Duration // of the client's clock, before the step
		serverGap  time.Duration // of the server's clock, before the step
		wantErr    bool
		wantChunks int64 // chunk bytes received by the server so far
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in one go", []step{{wantChunks: size}}},
		{"resumes without sending stored chunks again", []step{
			{inject: failOnce(isChunk("00003"), 503), wantErr: true, wantChunks: 10 << 20},
			{wantChunks: size},
		}},
		{"restarts a session older than the lifetime", []step{
			{inject: failOnce(isChunk("00002"), 503), wantErr: true, wantChunks: 5 << 20},
			{advance: 23*time.Hour + time.Minute, wantChunks: 5<<20 + size},
		}},
		{"restarts when the server expired the session", []step{
			{inject: failOnce(isChunk("00002"), 503), wantErr: true, wantChunks: 5 << 20},
			{serverGap: 25 * time.Hour, wantChunks: 5<<20 + size},
		}},
		{"assembled file is not sent again when the answer was lost", []step{
			{inject: failOnce(func(r *http.Request) bool {
				return r.Method == "MOVE" && !strings.Contains(r.URL.Path, "/uploads/")
			}, 502), wantErr: true, wantChunks: size},
			{wantChunks: size},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeNextcloud(t)
			var clock atomic.Int64
			clock.Store(time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC).UnixNano())
			f.now = time.Unix(0, clock.Load())
			c := ncClient(t, f, func() time.Time { return time.Unix(0, clock.Load()) })
			ctx := context.Background()
			for i, s := range tt.steps {
				clock.Add(int64(s.advance))
				f.mu.Lock()
				f.now = time.Unix(0, clock.Load()).Add(s.serverGap)
				f.mu.Unlock()
				f.inject = s.inject
				err := c.Upload(ctx, rel, bytes.NewReader(body), size, sumOf(body), nil)
				if (err != nil) != s.wantErr {
					t.Fatalf("step %d: Upload() = %v, want error %v", i, err, s.wantErr)
				}
				var we *Error
				if err != nil && (!errors.As(err, &we) || we.Permanent()) {
					t.Fatalf("step %d: Upload() = %v, want a transient *Error", i, err)
				}
				if got := f.chunkBytes.Load(); got != s.wantChunks {
					t.Errorf("step %d: the server received %d chunk bytes, want %d", i, got, s.wantChunks)
				}
			}
			if f.putBytes.Load() != 0 {
				t.Errorf("%d bytes went by plain PUT", f.putBytes.Load())
			}
			gotSize, sum, exists, err := c.Stat(ctx, rel)
			if err != nil || !exists || gotSize != size || sum != sumOf(body) {
				t.Fatalf("Stat() = %d, %q, %v, %v; want %d bytes and the SHA-256", gotSize, sum, exists, err, size)
			}
			if err := c.Cleanup(ctx, rel); err != nil {
				t.Fatal(err)
			}
			files := tree(t, f.root)
			if len(files) != 1 || files["Devoirs/"+rel] != sumOf(body) {
				t.Errorf("server holds %v", files)
			}
			noTemporaries(t, files)
			if n := len(f.sessions); n != 0 {
				t.Errorf("%d upload sessions left", n)
			}
		})
	}
}

func TestChecksumsAreVerified(t *testing.T) {
	f := newFakeNextcloud(t)
	f.computeSHA1 = true
	f.corrupt = 1
	c := ncClient(t, f, nil)
	body := randomBytes(200<<10, 11)
	ctx := context.Background()
	err := c.Upload(ctx, "a.bin", bytes.NewReader(body), int64(len(body)), sumOf(body), nil)
	var we *Error
	if !errors.As(err, &we) || we.Permanent() || !strings.Contains(we.FR, "SHA1") {
		t.Fatalf("Upload() with a corrupting server = %v, want a transient SHA1 mismatch", err)
	}
	if files := tree(t, f.root); len(files) != 0 {
		t.Fatalf("the damaged upload was kept: %v", files)
	}
	if err := c.Upload(ctx, "a.bin", bytes.NewReader(body), int64(len(body)), sumOf(body), nil); err != nil {
		t.Fatalf("second Upload() = %v", err)
	}
	if got := tree(t, f.root)["Devoirs/a.bin"]; got != sumOf(body) {
		t.Fatalf("sha256 on the server %q", got)
	}
}

func TestFileDropLink(t *testing.T) {
	f := newFakeNextcloud(t)
	f.shares["Dr0pT0ken"] = ncShare{dir: "Devoirs reçus", drop: true}
	if err := mkdirAll(f.abs("Devoirs reçus")); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, Config{URL: f.srv.URL + "/s/Dr0pT0ken", Nickname: "École Jules Ferry"})
	ctx := context.Background()
	_, _, _, err := c.Stat(ctx, "CM2/a.pdf")
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Stat() on a file drop = %v, want ErrUnsupported", err)
	}
	body := []byte("%PDF-1.4 devoir")
	if err := c.Upload(ctx, "CM2/a.pdf", bytes.NewReader(body), int64(len(body)), sumOf(body), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Cleanup(ctx, "CM2/a.pdf"); err != nil {
		t.Fatal(err)
	}
	files := tree(t, f.root)
	if len(files) != 1 || files["Devoirs reçus/École Jules Ferry/CM2/a.pdf"] != sumOf(body) {
		t.Fatalf("server holds %v", files)
	}
	if n := f.count("PROPFIND"); n != 1 {
		t.Errorf("%d PROPFIND, want only the first Stat's", n)
	}
}

func TestReadableShareLink(t *testing.T) {
	ctx := context.Background()
	body := randomBytes(50000, 12)
	check := func(t *testing.T, c *Client, dir string) {
		rel := "CM2/Léa/a.bin"
		if _, _, exists, err := c.Stat(ctx, rel); err != nil || exists {
			t.Fatalf("Stat() = %v, %v", exists, err)
		}
		for range 2 {
			if err := c.Upload(ctx, rel, bytes.NewReader(body), int64(len(body)), sumOf(body), nil); err != nil {
				t.Fatal(err)
			}
		}
		if size, _, exists, err := c.Stat(ctx, rel); err != nil || !exists || size != int64(len(body)) {
			t.Fatalf("Stat() = %d, %v, %v", size, exists, err)
		}
		files := tree(t, dir)
		if len(files) != 1 || files[rel] != sumOf(body) {
			t.Fatalf("share holds %v", files)
		}
	}
	t.Run("nextcloud", func(t *testing.T) {
		f := newFakeNextcloud(t)
		f.shares["RwT0ken"] = ncShare{dir: "Partage"}
		mkdirAll(f.abs("Partage"))
		check(t, newClient(t, Config{URL: f.srv.URL + "/index.php/s/RwT0ken"}), f.abs("Partage"))
	})
	t.Run("rclone", func(t *testing.T) {
		// rclone serving the public WebDAV path of a share, without login.
		p := startRclone(t, "/public.php/dav/files/RwT0ken", "", "")
		base := strings.TrimSuffix(p.url, "/public.php/dav/files/RwT0ken/")
		check(t, newClient(t, Config{URL: base + "/s/RwT0ken"}), p.dir)
	})
}

func TestServerErrorsAreSorted(t *testing.T) {
	f := newFakeNextcloud(t)
	ctx := context.Background()
	body := []byte("abc")
	tests := []struct {
		status    int
		permanent bool
		retry     time.Duration
	}{
		{401, true, time.Second},
		{403, true, time.Second},
		{507, true, time.Second},
		{503, false, time.Second},
		{429, false, time.Second},
		{423, false, time.Second},
	}
	for _, tt := range tests {
		f.inject = failOnce(func(r *http.Request) bool { return r.Method == http.MethodPut }, tt.status)
		c := ncClient(t, f, nil)
		err := c.Upload(ctx, "e.txt", bytes.NewReader(body), 3, sumOf(body), nil)
		var we *Error
		if !errors.As(err, &we) || we.Status != tt.status || we.Permanent() != tt.permanent || we.RetryAfter() != tt.retry {
			t.Errorf("%d: Upload() = %#v, want permanent %v", tt.status, err, tt.permanent)
		}
	}
}

// TestBodiesBoundsUploadsOnTheWire: with Config.Bodies of one slot, four
// items uploaded at once never have two PUT bodies on the wire, while
// their other requests (folders, checks, moves) go on meanwhile.
func TestBodiesBoundsUploadsOnTheWire(t *testing.T) {
	f := newFakeNextcloud(t)
	var inPut, maxPut, besidePut atomic.Int32
	f.inject = func(r *http.Request) (int, http.Header) {
		if r.Method != http.MethodPut {
			if inPut.Load() > 0 {
				besidePut.Add(1)
			}
			return 0, nil
		}
		n := inPut.Add(1)
		for m := maxPut.Load(); n > m && !maxPut.CompareAndSwap(m, n); m = maxPut.Load() {
		}
		time.Sleep(100 * time.Millisecond)
		inPut.Add(-1)
		return 0, nil
	}
	c := newClient(t, Config{URL: f.filesURL() + "Devoirs/", User: f.user, Password: f.pass, Bodies: NewSlots(1)})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := randomBytes(20<<10, uint64(i))
			rel := fmt.Sprintf("CM2/Élève %d/devoir.pdf", i)
			if err := c.Upload(context.Background(), rel, bytes.NewReader(body), int64(len(body)), sumOf(body), nil); err != nil {
				t.Errorf("Upload(%s) = %v", rel, err)
			}
		}()
	}
	wg.Wait()
	if maxPut.Load() != 1 {
		t.Errorf("%d PUT bodies on the wire at once, want 1", maxPut.Load())
	}
	if besidePut.Load() == 0 {
		t.Error("no other request went on while a body was sent")
	}
	if files := tree(t, f.root); len(files) != 4 {
		t.Errorf("server holds %v, want 4 files", files)
	}
}

// TestCleanupSurvivesACutListing: golang.org/x/net/webdav (rclone serve
// webdav) answers a folder listing whose walk met a file deleted meanwhile
// with a well-formed but shortened multistatus. Here the first listing of
// the folder leaves one temporary file out; Cleanup still removes both.
func TestCleanupSurvivesACutListing(t *testing.T) {
	f := newFakeNextcloud(t)
	rel := "CM2/Léa M/devoir.pdf"
	dir := filepath.Join(f.root, "Devoirs", "CM2", "Léa M")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"aaaa", "bbbb"} {
		if err := os.WriteFile(filepath.Join(dir, tempPrefix+pathHash(rel)+"-"+s+".upload"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	responseRe := regexp.MustCompile(`(?s)<d:response>.*?</d:response>`)
	var cut atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "PROPFIND" || !strings.HasSuffix(r.URL.Path, "/L%C3%A9a%20M/") && !strings.HasSuffix(r.URL.Path, "/Léa M/") || cut.Swap(true) {
			f.serve(w, r)
			return
		}
		rec := httptest.NewRecorder()
		f.serve(rec, r)
		body := responseRe.ReplaceAllStringFunc(rec.Body.String(), func(s string) string {
			if strings.Contains(s, "bbbb") {
				return ""
			}
			return s
		})
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, Config{URL: srv.URL + "/remote.php/dav/files/alice/Devoirs/", User: f.user, Password: f.pass})
	if err := c.Cleanup(context.Background(), rel); err != nil {
		t.Fatalf("Cleanup() = %v", err)
	}
	if !cut.Load() {
		t.Fatal("the listing was never cut: the test did not test")
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left on the server: %v", left)
	}
}
