package content

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// response is what the Go client or curl saw.
type response struct {
	status int
	header http.Header
	body   []byte
}

type fetcher func(t *testing.T, method, url string, header map[string]string) response

func goFetch(t *testing.T, method, url string, header map[string]string) response {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

func curlFetch(t *testing.T, method, url string, header map[string]string) response {
	dir := t.TempDir()
	args := []string{"-s", "-S", "--noproxy", "*", "-D", filepath.Join(dir, "h"), "-o", filepath.Join(dir, "b")}
	if method == "HEAD" {
		args = append(args, "-I")
	}
	for k, v := range header {
		args = append(args, "-H", k+": "+v)
	}
	out, err := exec.Command("curl", append(args, url)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "h"))
	if err != nil {
		t.Fatal(err)
	}
	if method == "HEAD" {
		raw = bytes.TrimSpace(raw) // -I writes headers to both files
	}
	r := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(raw), strings.NewReader("\r\n\r\n"))))
	line, err := r.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(line)
	status, _ := strconv.Atoi(f[1])
	mh, err := r.ReadMIMEHeader()
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	body, _ := os.ReadFile(filepath.Join(dir, "b"))
	if method == "HEAD" {
		body = nil
	}
	return response{status, http.Header(mh), body}
}

func TestHandler(t *testing.T) {
	e := newTestEnv(t, Config{Now: func() time.Time { return time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) }}, nil)
	p := demoPack("1")
	mustImport(t, e.store, p.writeFolder(t, t.TempDir()))
	srv := httptest.NewServer(e.store.Handler())
	defer srv.Close()

	video := p.items[2].files[0].data
	vhash := sum(video)
	etag := `"` + vhash + `"`
	lm := "Mon, 23 Nov 2026 08:00:00 GMT"
	vurl := srv.URL + "/c/demo-preau/videos/fables.mp4"
	n := len(video)

	tests := []struct {
		name   string
		method string
		url    string
		header map[string]string
		status int
		body   []byte
		ctype  string
		crange string
		parts  [][2]int // multipart: start, end inclusive
		csp    bool
	}{
		{"full", "GET", vurl, nil, 200, video, "video/mp4", "", nil, false},
		{"head", "HEAD", vurl, nil, 200, nil, "video/mp4", "", nil, false},
		{"single range", "GET", vurl, map[string]string{"Range": "bytes=1000-1999"}, 206, video[1000:2000], "video/mp4", "bytes 1000-1999/" + itoa(n), nil, false},
		{"suffix range", "GET", vurl, map[string]string{"Range": "bytes=-500"}, 206, video[n-500:], "video/mp4", "bytes " + itoa(n-500) + "-" + itoa(n-1) + "/" + itoa(n), nil, false},
		{"multi range", "GET", vurl, map[string]string{"Range": "bytes=0-99,200-299,-10"}, 206, nil, "", "", [][2]int{{0, 99}, {200, 299}, {n - 10, n - 1}}, false},
		{"if-range match", "GET", vurl, map[string]string{"Range": "bytes=0-9", "If-Range": etag}, 206, video[:10], "video/mp4", "bytes 0-9/" + itoa(n), nil, false},
		{"if-range mismatch", "GET", vurl, map[string]string{"Range": "bytes=0-9", "If-Range": `"0000"`}, 200, video, "video/mp4", "", nil, false},
		{"if-none-match", "GET", vurl, map[string]string{"If-None-Match": etag}, 304, []byte{}, "", "", nil, false},
		{"if-modified-since", "GET", vurl, map[string]string{"If-Modified-Since": lm}, 304, []byte{}, "", "", nil, false},
		{"bad range", "GET", vurl, map[string]string{"Range": "bytes=" + itoa(n) + "-"}, 416, nil, "", "bytes */" + itoa(n), nil, false},
		{"html is sandboxed", "GET", srv.URL + "/c/demo-preau/articles/cycle-de-l-eau.html", nil, 200, p.items[0].files[0].data, "text/html; charset=utf-8", "", nil, true},
		{"svg is sandboxed", "GET", srv.URL + "/c/demo-preau/images/dessin.svg", nil, 200, nil, "image/svg+xml", "", nil, true},
		{"unknown file", "GET", srv.URL + "/c/demo-preau/nope.txt", nil, 404, nil, "", "", nil, false},
		{"unknown pack", "GET", srv.URL + "/c/autre/videos/fables.mp4", nil, 404, nil, "", "", nil, false},
		{"traversal", "GET", srv.URL + "/c/demo-preau/%2e%2e/%2e%2e/etc/passwd", nil, 404, nil, "", "", nil, false},
		{"post", "POST", vurl, nil, 405, nil, "", "", nil, false},
	}
	fetchers := map[string]fetcher{"go": goFetch}
	if _, err := exec.LookPath("curl"); err == nil {
		fetchers["curl"] = curlFetch
	} else {
		t.Log("curl is missing: serving checked with Go's client only")
	}
	for fname, fetch := range fetchers {
		for _, tt := range tests {
			t.Run(fname+"/"+tt.name, func(t *testing.T) {
				if fname == "curl" && tt.method == "POST" {
					t.Skip("covered by the Go client")
				}
				got := fetch(t, tt.method, tt.url, tt.header)
				if got.status != tt.status {
					t.Fatalf("status = %d, want %d", got.status, tt.status)
				}
				if tt.body != nil && !bytes.Equal(got.body, tt.body) {
					t.Errorf("body: %d bytes, want %d", len(got.body), len(tt.body))
				}
				if tt.ctype != "" && got.header.Get("Content-Type") != tt.ctype {
					t.Errorf("Content-Type = %q, want %q", got.header.Get("Content-Type"), tt.ctype)
				}
				if got.header.Get("Content-Range") != tt.crange {
					t.Errorf("Content-Range = %q, want %q", got.header.Get("Content-Range"), tt.crange)
				}
				if hasCSP := strings.Contains(got.header.Get("Content-Security-Policy"), "sandbox"); hasCSP != tt.csp {
					t.Errorf("Content-Security-Policy = %q, want sandbox: %v", got.header.Get("Content-Security-Policy"), tt.csp)
				}
				if got.header.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("X-Content-Type-Options = %q", got.header.Get("X-Content-Type-Options"))
				}
				if tt.status == 200 || tt.status == 206 || tt.status == 304 {
					if tt.url == vurl && got.header.Get("ETag") != etag {
						t.Errorf("ETag = %q, want %q", got.header.Get("ETag"), etag)
					}
					if got.header.Get("Last-Modified") != lm {
						t.Errorf("Last-Modified = %q, want %q", got.header.Get("Last-Modified"), lm)
					}
				}
				if tt.status == 200 || tt.status == 206 {
					if got.header.Get("Cache-Control") != "public, max-age=3600" || got.header.Get("Accept-Ranges") != "bytes" {
						t.Errorf("Cache-Control %q, Accept-Ranges %q", got.header.Get("Cache-Control"), got.header.Get("Accept-Ranges"))
					}
				}
				if tt.method == "HEAD" && got.header.Get("Content-Length") != itoa(n) {
					t.Errorf("HEAD Content-Length = %q, want %d", got.header.Get("Content-Length"), n)
				}
				if tt.parts == nil {
					return
				}
				mt, params, err := mime.ParseMediaType(got.header.Get("Content-Type"))
				if err != nil || mt != "multipart/byteranges" {
					t.Fatalf("Content-Type = %q, want multipart/byteranges", got.header.Get("Content-Type"))
				}
				mr := multipart.NewReader(bytes.NewReader(got.body), params["boundary"])
				for i, want := range tt.parts {
					part, err := mr.NextPart()
					if err != nil {
						t.Fatalf("part %d: %v", i, err)
					}
					data, _ := io.ReadAll(part)
					if !bytes.Equal(data, video[want[0]:want[1]+1]) {
						t.Errorf("part %d: wrong bytes", i)
					}
					if cr, wantCR := part.Header.Get("Content-Range"), "bytes "+itoa(want[0])+"-"+itoa(want[1])+"/"+itoa(n); cr != wantCR {
						t.Errorf("part %d: Content-Range %q, want %q", i, cr, wantCR)
					}
				}
				if _, err := mr.NextPart(); err != io.EOF {
					t.Errorf("after the parts: %v, want EOF", err)
				}
			})
		}
	}
}

// TestHandlerSeesImports checks that the in-memory index follows imports
// and removals.
func TestHandlerSeesImports(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	h := e.store.Handler()
	get := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/c/demo-preau/videos/fables.mp4", nil))
		return rec.Code
	}
	if got := get(); got != 404 {
		t.Fatalf("before import: %d, want 404", got)
	}
	mustImport(t, e.store, demoPack("1").writeFolder(t, t.TempDir()))
	if got := get(); got != 200 {
		t.Fatalf("after import: %d, want 200", got)
	}
	if err := e.store.Remove(t.Context(), "demo-preau"); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != 404 {
		t.Fatalf("after removal: %d, want 404", got)
	}
}
