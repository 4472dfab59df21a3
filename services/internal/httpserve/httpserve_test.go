package httpserve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		header string
		size   int64
		want   []Range
		err    error
	}{
		{"bytes=0-0", 10, []Range{{0, 1}}, nil},
		{"bytes=0-9", 10, []Range{{0, 10}}, nil},
		{"bytes=0-100", 10, []Range{{0, 10}}, nil},
		{"bytes=5-", 10, []Range{{5, 5}}, nil},
		{"bytes=-3", 10, []Range{{7, 3}}, nil},
		{"bytes=-30", 10, []Range{{0, 10}}, nil},
		{"bytes=-0", 10, nil, ErrUnsatisfiable},
		{"bytes=10-", 10, nil, ErrUnsatisfiable},
		{"bytes=10-20,30-", 10, nil, ErrUnsatisfiable},
		{"bytes=0-", 0, nil, ErrUnsatisfiable},
		{"bytes=-1", 0, nil, ErrUnsatisfiable},
		{"bytes=0-1,10-12,4-", 10, []Range{{0, 2}, {4, 6}}, nil},
		{"bytes=0-1, 3-4 ,,", 10, []Range{{0, 2}, {3, 2}}, nil},
		{"Bytes=1-1", 10, []Range{{1, 1}}, nil},
		{"bytes=99999999999999999999-", 10, nil, ErrUnsatisfiable},
		{"bytes=0-99999999999999999999", 10, []Range{{0, 10}}, nil},
		{"bytes=-99999999999999999999", 10, []Range{{0, 10}}, nil},
		{"bytes=5-3", 10, nil, ErrInvalid},
		{"bytes=+1-2", 10, nil, ErrInvalid},
		{"bytes=1 - 2", 10, nil, ErrInvalid},
		{"bytes=0--1", 10, nil, ErrInvalid},
		{"bytes=-", 10, nil, ErrInvalid},
		{"bytes=", 10, nil, ErrInvalid},
		{"bytes", 10, nil, ErrInvalid},
		{"bytes=a-b", 10, nil, ErrInvalid},
		{"items=0-1", 10, nil, ErrUnknownUnit},
		{"bytes=" + strings.Repeat("0-0,", MaxRanges+1), 10, nil, ErrTooManyRanges},
	}
	for _, tt := range tests {
		got, err := ParseRange(tt.header, tt.size)
		if !errors.Is(err, tt.err) {
			t.Errorf("ParseRange(%q, %d) error = %v, want %v", tt.header, tt.size, err, tt.err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRange(%q, %d) = %v, want %v", tt.header, tt.size, got, tt.want)
		}
	}
}

// rangeGrammar is RFC 9110's ranges-specifier for the bytes unit, written
// independently of ParseRange's hand-written scanner.
var rangeGrammar = regexp.MustCompile(`^(?i:bytes)=([ \t]*,)*[ \t]*(\d+-\d*|-\d+)([ \t]*,([ \t]*(\d+-\d*|-\d+))?)*[ \t]*$`)

func FuzzParseRange(f *testing.F) {
	f.Add("bytes=0-1,5-", int64(10))
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			size = -size
			if size < 0 {
				size = 0
			}
		}
		got, err := ParseRange(header, size)
		if err != nil {
			if len(got) != 0 {
				t.Fatalf("ParseRange(%q, %d) returned ranges with error %v", header, size, err)
			}
			if errors.Is(err, ErrInvalid) && rangeGrammar.MatchString(header) && !hasBackwardsRange(header) {
				t.Fatalf("ParseRange(%q, %d) = invalid, but it follows the grammar", header, size)
			}
			return
		}
		if !rangeGrammar.MatchString(header) {
			t.Fatalf("ParseRange(%q, %d) accepted a header outside the grammar: %v", header, size, got)
		}
		if len(got) > MaxRanges {
			t.Fatalf("ParseRange(%q, %d) returned %d ranges, more than %d", header, size, len(got), MaxRanges)
		}
		for _, r := range got {
			if r.Start < 0 || r.Length <= 0 || r.Start+r.Length > size || r.Start+r.Length < r.Start {
				t.Fatalf("ParseRange(%q, %d) returned %+v, outside [0,%d)", header, size, r, size)
			}
		}
	})
}

// hasBackwardsRange reports a first-pos greater than last-pos, which the
// grammar allows but RFC 9110 §14.1.1 makes invalid.
func hasBackwardsRange(header string) bool {
	_, set, _ := strings.Cut(header, "=")
	for spec := range strings.SplitSeq(set, ",") {
		a, b, _ := strings.Cut(strings.Trim(spec, " \t"), "-")
		if a == "" || b == "" {
			continue
		}
		na, oa, _ := parseDigits(a)
		nb, ob, _ := parseDigits(b)
		if !ob && (oa || na > nb) {
			return true
		}
	}
	return false
}

type fixture struct {
	srv  *httptest.Server
	body []byte
	meta Meta
}

// newFixture serves a 100 kB body from a file (Serve) or, with inMemory,
// from a byte slice (ServeBytes): both must answer the same.
func newFixture(t *testing.T, inMemory bool) fixture {
	t.Helper()
	body := make([]byte, 100000)
	for i := range body {
		body[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	meta := Meta{
		Size:        int64(len(body)),
		ETag:        `"0123456789abcdef0123456789abcdef"`,
		ContentType: "video/mp4",
		ModTime:     time.Date(2026, 11, 23, 8, 30, 0, 0, time.UTC),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inMemory {
			ServeBytes(w, r, body, meta)
			return
		}
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		Serve(w, r, f, meta)
	}))
	t.Cleanup(srv.Close)
	return fixture{srv: srv, body: body, meta: meta}
}

func TestServe(t *testing.T) {
	t.Run("file", func(t *testing.T) { testServe(t, newFixture(t, false)) })
	t.Run("bytes", func(t *testing.T) { testServe(t, newFixture(t, true)) })
}

func testServe(t *testing.T, fx fixture) {
	lm := fx.meta.ModTime.Format(http.TimeFormat)
	before := fx.meta.ModTime.Add(-time.Hour).Format(http.TimeFormat)
	tests := []struct {
		name         string
		method       string
		header       map[string]string
		status       int
		body         []byte // nil: no body check
		contentRange string
		parts        []Range
	}{
		{"full", "GET", nil, 200, fx.body, "", nil},
		{"head", "HEAD", nil, 200, []byte{}, "", nil},
		{"single", "GET", map[string]string{"Range": "bytes=10-19"}, 206, fx.body[10:20], "bytes 10-19/100000", nil},
		{"suffix", "GET", map[string]string{"Range": "bytes=-5"}, 206, fx.body[99995:], "bytes 99995-99999/100000", nil},
		{"head range", "HEAD", map[string]string{"Range": "bytes=0-0"}, 206, []byte{}, "bytes 0-0/100000", nil},
		{"multi", "GET", map[string]string{"Range": "bytes=0-9,500-,-3"}, 206, nil, "", []Range{{0, 10}, {500, 99500}, {99997, 3}}},
		{"overlapping multi is whole", "GET", map[string]string{"Range": "bytes=0-99999,0-99999"}, 200, fx.body, "", nil},
		{"unsatisfiable", "GET", map[string]string{"Range": "bytes=100000-"}, 416, nil, "bytes */100000", nil},
		{"malformed", "GET", map[string]string{"Range": "bytes=9-1"}, 416, nil, "bytes */100000", nil},
		{"unknown unit ignored", "GET", map[string]string{"Range": "pages=1-2"}, 200, fx.body, "", nil},
		{"if-range etag match", "GET", map[string]string{"Range": "bytes=1-2", "If-Range": fx.meta.ETag}, 206, fx.body[1:3], "bytes 1-2/100000", nil},
		{"if-range etag mismatch", "GET", map[string]string{"Range": "bytes=1-2", "If-Range": `"other"`}, 200, fx.body, "", nil},
		{"if-range weak never matches", "GET", map[string]string{"Range": "bytes=1-2", "If-Range": "W/" + fx.meta.ETag}, 200, fx.body, "", nil},
		{"if-range date match", "GET", map[string]string{"Range": "bytes=1-2", "If-Range": lm}, 206, fx.body[1:3], "bytes 1-2/100000", nil},
		{"if-range date mismatch", "GET", map[string]string{"Range": "bytes=1-2", "If-Range": before}, 200, fx.body, "", nil},
		{"if-none-match", "GET", map[string]string{"If-None-Match": fx.meta.ETag}, 304, []byte{}, "", nil},
		{"if-none-match weak", "GET", map[string]string{"If-None-Match": `"x", W/` + fx.meta.ETag}, 304, []byte{}, "", nil},
		{"if-none-match star", "HEAD", map[string]string{"If-None-Match": "*"}, 304, []byte{}, "", nil},
		{"if-none-match other", "GET", map[string]string{"If-None-Match": `"x"`}, 200, fx.body, "", nil},
		{"if-modified-since same", "GET", map[string]string{"If-Modified-Since": lm}, 304, []byte{}, "", nil},
		{"if-modified-since before", "GET", map[string]string{"If-Modified-Since": before}, 200, fx.body, "", nil},
		{"inm wins over ims", "GET", map[string]string{"If-None-Match": `"x"`, "If-Modified-Since": lm}, 200, fx.body, "", nil},
		{"if-match ok", "GET", map[string]string{"If-Match": fx.meta.ETag}, 200, fx.body, "", nil},
		{"if-match weak fails", "GET", map[string]string{"If-Match": "W/" + fx.meta.ETag}, 412, nil, "", nil},
		{"if-match other", "GET", map[string]string{"If-Match": `"x"`}, 412, nil, "", nil},
		{"if-unmodified-since before", "GET", map[string]string{"If-Unmodified-Since": before}, 412, nil, "", nil},
		{"if-unmodified-since same", "GET", map[string]string{"If-Unmodified-Since": lm}, 200, fx.body, "", nil},
		{"if-match beats ius", "GET", map[string]string{"If-Match": fx.meta.ETag, "If-Unmodified-Since": before}, 200, fx.body, "", nil},
		{"412 before 304", "GET", map[string]string{"If-Match": `"x"`, "If-None-Match": fx.meta.ETag}, 412, nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, fx.srv.URL, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := fx.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("ETag"); got != fx.meta.ETag {
				t.Errorf("ETag = %q, want %q", got, fx.meta.ETag)
			}
			if tt.status == 200 || tt.status == 206 {
				if got := resp.Header.Get("Accept-Ranges"); got != "bytes" {
					t.Errorf("Accept-Ranges = %q, want bytes", got)
				}
				if got := resp.Header.Get("Last-Modified"); got != fx.meta.ModTime.Format(http.TimeFormat) {
					t.Errorf("Last-Modified = %q", got)
				}
			}
			if tt.body != nil && !bytes.Equal(body, tt.body) {
				t.Errorf("body: got %d bytes, want %d bytes", len(body), len(tt.body))
			}
			if got := resp.Header.Get("Content-Range"); got != tt.contentRange {
				t.Errorf("Content-Range = %q, want %q", got, tt.contentRange)
			}
			if tt.parts == nil {
				if (tt.status == 200 || tt.status == 206) && resp.Header.Get("Content-Type") != "video/mp4" {
					t.Errorf("Content-Type = %q, want video/mp4", resp.Header.Get("Content-Type"))
				}
				return
			}
			mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			if err != nil || mt != "multipart/byteranges" {
				t.Fatalf("Content-Type = %q, want multipart/byteranges", resp.Header.Get("Content-Type"))
			}
			if got, want := resp.ContentLength, int64(len(body)); got != want {
				t.Errorf("Content-Length = %d, body %d", got, want)
			}
			mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
			for i, want := range tt.parts {
				p, err := mr.NextPart()
				if err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
				got, _ := io.ReadAll(p)
				if !bytes.Equal(got, fx.body[want.Start:want.Start+want.Length]) {
					t.Errorf("part %d: wrong bytes (%d)", i, len(got))
				}
				if cr := p.Header.Get("Content-Range"); cr != want.ContentRange(fx.meta.Size) {
					t.Errorf("part %d Content-Range = %q, want %q", i, cr, want.ContentRange(fx.meta.Size))
				}
				if ct := p.Header.Get("Content-Type"); ct != "video/mp4" {
					t.Errorf("part %d Content-Type = %q", i, ct)
				}
			}
			if _, err := mr.NextPart(); err != io.EOF {
				t.Errorf("after the last part: %v, want EOF", err)
			}
		})
	}
}

// readFromRecorder records what reaches the writer's ReadFrom, which is where
// net/http decides on sendfile.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	sources []string
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	switch s := src.(type) {
	case *os.File:
		r.sources = append(r.sources, "file")
	case *io.LimitedReader:
		if _, ok := s.R.(*os.File); ok {
			r.sources = append(r.sources, "limited-file")
		} else {
			r.sources = append(r.sources, fmt.Sprintf("limited-%T", s.R))
		}
	default:
		r.sources = append(r.sources, fmt.Sprintf("%T", src))
	}
	return io.Copy(r.ResponseRecorder, src)
}

func TestServeZeroCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, rng := range []string{"", "bytes=10-100"} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
		req := httptest.NewRequest("GET", "/x", nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		Serve(rec, req, f, Meta{Size: 4096, ETag: `"a"`, ContentType: "text/plain"})
		f.Close()
		if len(rec.sources) != 1 || rec.sources[0] != "limited-file" {
			t.Errorf("Range %q: ReadFrom sources = %v, want [limited-file]", rng, rec.sources)
		}
	}
}
