package httpcache

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// seedLines returns the non-comment lines of testdata/name.
func seedLines(f *testing.F, name string) []string {
	fh, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if l := sc.Text(); !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func FuzzCacheControl(f *testing.F) {
	for _, l := range seedLines(f, "cache-control.txt") {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := parseCacheControl([]string{s, s})
		for _, v := range []int64{d.maxAge, d.sMaxAge, d.staleWhileRevalid, d.staleIfError, d.maxStale, d.minFresh} {
			if v < -1 || v > maxDelta {
				t.Fatalf("parseCacheControl(%q): delta %d out of range", s, v)
			}
		}
		if d.maxAgeInvalid && d.maxAge != -1 {
			t.Fatalf("parseCacheControl(%q): invalid max-age with value %d", s, d.maxAge)
		}
		// A response with these fields must get a sane lifetime.
		e := newEntry(&entry{header: http.Header{"Cache-Control": {s}, "Cdn-Cache-Control": {s}}, respTime: time.Unix(1e9, 0), reqTime: time.Unix(1e9, 0), status: 200})
		for _, mirror := range []bool{false, true} {
			if l := e.lifetime(mirror, time.Hour); l < 0 || l > maxDelta*time.Second {
				t.Fatalf("lifetime(%q) = %v", s, l)
			}
		}
	})
}

func FuzzTargeted(f *testing.F) {
	for _, l := range seedLines(f, "cache-control.txt") {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, s string) {
		members, ok := parseSFDictionary(s)
		if !ok && members != nil {
			t.Fatalf("parseSFDictionary(%q): members of an invalid field", s)
		}
		seen := map[string]bool{}
		for _, m := range members {
			if seen[m.key] {
				t.Fatalf("parseSFDictionary(%q): key %q twice", s, m.key)
			}
			seen[m.key] = true
		}
		d, ok := parseTargeted(http.Header{"Cdn-Cache-Control": {s}}, "Cdn-Cache-Control")
		if ok && (d.maxAge < -1 || d.maxAge > maxDelta) {
			t.Fatalf("parseTargeted(%q) max-age %d", s, d.maxAge)
		}
	})
}

func FuzzHTTPDate(f *testing.F) {
	for _, l := range seedLines(f, "dates.txt") {
		f.Add(l)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseHTTPDate(s, now)
		if !ok {
			return
		}
		if d.Year() < 0 || d.Year() > 9999 {
			t.Fatalf("parseHTTPDate(%q) = %v", s, d)
		}
		again, ok := parseHTTPDate(d.Format(http.TimeFormat), now)
		if d.Year() >= 1000 && (!ok || !again.Equal(d)) {
			t.Fatalf("parseHTTPDate(%q) = %v does not round-trip: %v %v", s, d, again, ok)
		}
	})
}

func FuzzVary(f *testing.F) {
	for _, l := range seedLines(f, "vary.txt") {
		v, r, _ := strings.Cut(l, "|")
		f.Add(v, r)
	}
	f.Fuzz(func(t *testing.T, vary, value string) {
		names, star := parseVary([]string{vary})
		if star {
			return
		}
		req := http.Header{}
		for _, n := range names {
			req[n] = []string{value}
		}
		fs := varyFields(names, req)
		back, ok := decodeVary(encodeVary(fs))
		if !ok || len(back) != len(fs) {
			t.Fatalf("vary %q / %q: key does not decode", vary, value)
		}
		if !strings.ContainsAny(value, "\t\r\n") && !varyMatches(back, req, "") {
			t.Fatalf("vary %q / %q: a request does not match its own key", vary, value)
		}
		for _, n := range names {
			v := normaliseField(n, []string{value})
			if again := normaliseField(n, []string{v}); again != v {
				t.Fatalf("normaliseField(%s, %q) = %q, then %q", n, value, v, again)
			}
		}
	})
}

// FuzzRange serves a stored response with arbitrary Range fields: the
// answer is always 200, 206 or 416, and a single-range 206 carries exactly
// the bytes its Content-Range names.
func FuzzRange(f *testing.F) {
	for _, l := range seedLines(f, "ranges.txt") {
		f.Add(l, "")
	}
	f.Add("bytes=0-1", `"r"`)
	e := newEnv(f)
	const content = "0123456789abcdefghij"
	e.origin.set(reply(200, content, "Cache-Control: max-age=600", `ETag: "r"`)(e.clock.Now))
	if r := e.get("/f"); r.body != content {
		f.Fatalf("setup: %q", r.body)
	}
	vs := e.c.store.lookup(primaryKey(mustURL(e.origin.URL + "/f")))
	if len(vs) != 1 {
		f.Fatal("setup: not stored")
	}
	f.Fuzz(func(t *testing.T, rng, ifRange string) {
		req := httptest.NewRequest(http.MethodGet, "/f", nil)
		req.Header.Set("Range", rng)
		if ifRange != "" {
			req.Header.Set("If-Range", ifRange)
		}
		w := httptest.NewRecorder()
		q := &request{w: w, r: req, pkey: vs[0].pkey, mode: modeMirror}
		func() {
			defer func() {
				if v := recover(); v != nil && v != http.ErrAbortHandler {
					panic(v)
				}
			}()
			e.c.serveStored(q, vs[0], e.clock.Now(), "hit")
		}()
		body := w.Body.String()
		switch w.Code {
		case http.StatusOK:
			if body != content {
				t.Fatalf("Range %q: 200 with %q", rng, body)
			}
		case http.StatusRequestedRangeNotSatisfiable:
		case http.StatusPartialContent:
			cr := w.Header().Get("Content-Range")
			if cr == "" {
				return // multipart
			}
			var first, last, size int
			if _, err := fmtSscanf(cr, &first, &last, &size); err != nil || size != len(content) || first > last || last >= size {
				t.Fatalf("Range %q: Content-Range %q", rng, cr)
			}
			if body != content[first:last+1] || w.Header().Get("Content-Length") != strconv.Itoa(len(body)) {
				t.Fatalf("Range %q: %q for %q", rng, body, cr)
			}
		default:
			t.Fatalf("Range %q: status %d", rng, w.Code)
		}
	})
}

func fmtSscanf(cr string, first, last, size *int) (int, error) {
	return fmt.Sscanf(cr, "bytes %d-%d/%d", first, last, size)
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
