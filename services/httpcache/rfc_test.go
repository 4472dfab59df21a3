package httpcache

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An RFC 9111 test is a list of steps against a mirror of a real origin
// on 127.0.0.1. Each step may change what the origin answers, move the
// cache's clock, send a request, and say whether the origin saw it and
// what the client got.
type step struct {
	advance  time.Duration
	origin   originFunc // nil: keep the previous answer
	method   string
	path     string
	req      []string // request fields, "Name: value"
	upstream bool     // the origin saw a request during this step
	status   int      // 0: 200
	body     string   // "" with bodyAny: not checked
	bodyAny  bool
	header   map[string]string // exact field values; "" means absent
	contains map[string]string // substrings of field values
	sent     map[string]string // fields of the request the origin got ("" means absent)
	wait     bool              // wait for a background request before checking upstream
}

// originFunc builds the origin's handler; now is the test clock.
type originFunc func(now func() time.Time) http.HandlerFunc

// reply answers status, body and fields. In field values "{date±N}" is the
// test clock's time plus N seconds as an HTTP-date.
func reply(status int, body string, fields ...string) originFunc {
	return func(now func() time.Time) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			writeFields(w, now(), fields)
			w.WriteHeader(status)
			if r.Method != http.MethodHead {
				w.Write([]byte(body))
			}
		}
	}
}

// validator answers 304 to a matching If-None-Match or If-Modified-Since
// (with the fields), else 200 with body and fields.
func validator(etag, lastMod, body string, fields ...string) originFunc {
	return func(now func() time.Time) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			all := append([]string{}, fields...)
			if etag != "" {
				all = append(all, "ETag: "+etag)
			}
			if lastMod != "" {
				all = append(all, "Last-Modified: "+lastMod)
			}
			writeFields(w, now(), all)
			inm, ims := r.Header.Get("If-None-Match"), r.Header.Get("If-Modified-Since")
			if etag != "" && inm == etag || etag == "" && lastMod != "" && ims == expand(lastMod, now()) {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Write([]byte(body))
		}
	}
}

// hangUp closes the connection without answering: the uplink is down.
func hangUp() originFunc {
	return func(func() time.Time) http.HandlerFunc {
		return func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }
	}
}

func writeFields(w http.ResponseWriter, now time.Time, fields []string) {
	hasDate := false
	for _, f := range fields {
		k, v, _ := strings.Cut(f, ":")
		k = strings.TrimSpace(k)
		hasDate = hasDate || strings.EqualFold(k, "Date")
		w.Header().Add(k, expand(strings.TrimSpace(v), now))
	}
	if !hasDate {
		w.Header().Set("Date", httpDate(now))
	}
}

func expand(v string, now time.Time) string {
	for {
		i := strings.Index(v, "{date")
		if i < 0 {
			return v
		}
		j := strings.IndexByte(v[i:], '}')
		n, _ := strconv.Atoi(strings.TrimPrefix(v[i+5:i+j], "+"))
		v = v[:i] + httpDate(now.Add(time.Duration(n)*time.Second)) + v[i+j+1:]
	}
}

func runSteps(t *testing.T, e *env, steps []step) {
	t.Helper()
	for i, s := range steps {
		e.clock.Advance(s.advance)
		if s.origin != nil {
			e.origin.set(s.origin(e.clock.Now))
		}
		before := e.origin.count()
		method, path := s.method, s.path
		if method == "" {
			method = http.MethodGet
		}
		if path == "" {
			path = "/r"
		}
		req := make([]string, len(s.req))
		for i, h := range s.req {
			req[i] = expand(h, e.clock.Now())
		}
		r := e.do(method, path, req...)
		if r.err != nil {
			t.Fatalf("step %d: %v", i+1, r.err)
		}
		if s.wait && s.upstream {
			waitFor(t, "background request", func() bool { return e.origin.count() > before })
			time.Sleep(50 * time.Millisecond) // let it be stored
		}
		if got := e.origin.count() > before; got != s.upstream {
			t.Errorf("step %d: origin saw a request = %v, want %v (Cache-Status %q)", i+1, got, s.upstream, r.header.Get("Cache-Status"))
		}
		want := s.status
		if want == 0 {
			want = http.StatusOK
		}
		if r.status != want {
			t.Errorf("step %d: status %d, want %d", i+1, r.status, want)
		}
		if !s.bodyAny && method != http.MethodHead && r.body != s.body {
			t.Errorf("step %d: body %q, want %q", i+1, r.body, s.body)
		}
		for k, v := range s.header {
			if got := strings.Join(r.header.Values(k), ", "); got != v {
				t.Errorf("step %d: %s = %q, want %q", i+1, k, got, v)
			}
		}
		for k, v := range s.contains {
			if got := strings.Join(r.header.Values(k), ", "); !strings.Contains(got, v) {
				t.Errorf("step %d: %s = %q, want it to contain %q", i+1, k, got, v)
			}
		}
		if len(s.sent) > 0 {
			last := e.origin.last()
			for k, v := range s.sent {
				if got := last.Header.Get(k); got != v {
					t.Errorf("step %d: origin got %s = %q, want %q", i+1, k, got, v)
				}
			}
		}
	}
}

func TestRFC9111(t *testing.T) {
	const hour = time.Hour
	tests := []struct {
		name  string
		tune  func(*Config)
		steps []step
	}{
		{"max-age fresh then stale", nil, []step{
			{origin: reply(200, "v1", "Cache-Control: max-age=60"), upstream: true, body: "v1"},
			{advance: 30 * time.Second, body: "v1", header: map[string]string{"Age": "30"}, contains: map[string]string{"Cache-Status": "preau; hit"}},
			{advance: 31 * time.Second, origin: reply(200, "v2", "Cache-Control: max-age=60"), upstream: true, body: "v2"},
		}},
		{"s-maxage wins for a shared cache", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=3600, s-maxage=1"), upstream: true, body: "a"},
			{advance: 2 * time.Second, upstream: true, body: "a"},
		}},
		{"s-maxage longer than max-age", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=1, s-maxage=3600"), upstream: true, body: "a"},
			{advance: 60 * time.Second, body: "a"},
		}},
		{"expires", nil, []step{
			{origin: reply(200, "a", "Expires: {date+100}"), upstream: true, body: "a"},
			{advance: 99 * time.Second, body: "a"},
			{advance: 2 * time.Second, upstream: true, body: "a"},
		}},
		{"invalid expires is stale", nil, []step{
			{origin: reply(200, "a", "Expires: 0"), upstream: true, body: "a"},
			{upstream: true, body: "a"},
		}},
		{"max-age beats expires", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=3600", "Expires: {date-100}"), upstream: true, body: "a"},
			{advance: 60 * time.Second, body: "a"},
		}},
		{"heuristic freshness capped at a day", nil, []step{
			{origin: reply(200, "a", "Last-Modified: {date-8640000}"), upstream: true, body: "a"},
			{advance: 23 * hour, body: "a"},
			{advance: 2 * hour, upstream: true, body: "a"},
		}},
		{"heuristic needs a heuristically cacheable status", nil, []step{
			{origin: reply(599, "x", "Last-Modified: {date-86400}"), upstream: true, status: 599, body: "x"},
			{upstream: true, status: 599, body: "x"},
		}},
		{"no freshness, no reuse", nil, []step{
			{origin: reply(200, "a"), upstream: true, body: "a"},
			{upstream: true, body: "a"},
		}},
		{"no-store", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=3600, no-store"), upstream: true, body: "a"},
			{upstream: true, body: "a"},
		}},
		{"private not stored by a shared cache", nil, []step{
			{origin: reply(200, "a", "Cache-Control: private, max-age=3600"), upstream: true, body: "a"},
			{upstream: true, body: "a"},
		}},
		{"no-cache revalidates every time", nil, []step{
			{origin: validator(`"v1"`, "", "body1", "Cache-Control: max-age=3600, no-cache"), upstream: true, body: "body1"},
			{upstream: true, body: "body1", sent: map[string]string{"If-None-Match": `"v1"`}, contains: map[string]string{"Cache-Status": "fwd-status=304"}},
		}},
		{"304 freshens stored fields", nil, []step{
			{origin: validator(`"e"`, "", "payload", "Cache-Control: max-age=10", "X-Version: 1"), upstream: true, body: "payload"},
			{advance: 20 * time.Second, origin: validator(`"e"`, "", "unused", "Cache-Control: max-age=100", "X-Version: 2", "Content-Length: 99"),
				upstream: true, body: "payload", header: map[string]string{"X-Version": "2", "Content-Length": "7"}},
			{advance: 50 * time.Second, body: "payload", header: map[string]string{"X-Version": "2"}},
		}},
		{"validation with Last-Modified", nil, []step{
			{origin: validator("", "Mon, 02 Mar 2026 09:00:00 GMT", "lm", "Cache-Control: max-age=1"), upstream: true, body: "lm"},
			{advance: 5 * time.Second, upstream: true, body: "lm", contains: map[string]string{"Cache-Status": "fwd-status=304"}},
		}},
		{"304 for another entity-tag is not applied", nil, []step{
			{origin: validator(`"a"`, "", "A", "Cache-Control: max-age=1"), upstream: true, body: "A"},
			{advance: 5 * time.Second, origin: func(now func() time.Time) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Cache-Control", "max-age=60")
					w.Header().Set("ETag", `"b"`)
					if r.Header.Get("If-None-Match") != "" {
						w.WriteHeader(http.StatusNotModified)
						return
					}
					w.Write([]byte("B"))
				}
			}, upstream: true, body: "B"},
			{body: "B"},
		}},
		{"must-revalidate forbids stale when offline", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=1, must-revalidate"), upstream: true, body: "a"},
			{advance: 5 * time.Second, origin: hangUp(), upstream: true, status: http.StatusBadGateway, bodyAny: true},
		}},
		{"offline serves stale", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=1"), upstream: true, body: "a"},
			{advance: 30 * 24 * hour, origin: hangUp(), upstream: true, body: "a", contains: map[string]string{"Cache-Status": "detail=upstream-unreachable"}},
		}},
		{"uplink known down: stale at once", func(c *Config) { c.Offline = func() bool { return true } }, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=1"), upstream: true, body: "a"},
			{advance: time.Hour, contains: map[string]string{"Cache-Status": "detail=uplink-down"}, body: "a"},
			{path: "/new", upstream: true, body: "a"}, // a miss still tries
		}},
		{"offline with s-maxage does not serve stale", nil, []step{
			{origin: reply(200, "a", "Cache-Control: s-maxage=1"), upstream: true, body: "a"},
			{advance: 5 * time.Second, origin: hangUp(), upstream: true, status: http.StatusBadGateway, bodyAny: true},
		}},
		{"age generated and honoured", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=3600", "Age: 3000"), upstream: true, body: "a"},
			{advance: 100 * time.Second, body: "a", header: map[string]string{"Age": "3100"}},
			{advance: 600 * time.Second, upstream: true, body: "a"},
		}},
		{"age over max-age is stale at once", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=3600", "Age: 7200"), upstream: true, body: "a"},
			{upstream: true, body: "a"},
		}},
		{"apparent age from Date", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=3600", "Date: {date-7200}"), upstream: true, body: "a"},
			{upstream: true, body: "a"},
		}},
		{"vary selects variants", nil, []step{
			{origin: reply(200, "fr", "Cache-Control: max-age=60", "Vary: Accept-Language"), req: []string{"Accept-Language: fr"}, upstream: true, body: "fr"},
			{req: []string{"Accept-Language: fr"}, body: "fr"},
			{origin: reply(200, "en", "Cache-Control: max-age=60", "Vary: Accept-Language"), req: []string{"Accept-Language: en"}, upstream: true, body: "en", contains: map[string]string{"Cache-Status": "fwd=vary-miss"}},
			{req: []string{"Accept-Language: en"}, body: "en"},
			{req: []string{"Accept-Language: fr"}, body: "fr"},
			{req: nil, upstream: true, body: "en"},
		}},
		{"vary star never matches", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=60", "Vary: *"), upstream: true, body: "a"},
			{upstream: true, body: "a"},
		}},
		{"conditional generated from stored vary fields", nil, []step{
			{origin: validator(`"x"`, "", "X", "Cache-Control: max-age=1", "Vary: Abc"), req: []string{"Abc: 123"}, upstream: true, body: "X"},
			{advance: 5 * time.Second, req: []string{"Abc: 123"}, upstream: true, body: "X", sent: map[string]string{"Abc": "123", "If-None-Match": `"x"`}},
		}},
		{"invalidation after unsafe methods", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=3600"), upstream: true, body: "a"},
			{body: "a"},
			{method: http.MethodPost, origin: reply(200, "posted"), upstream: true, body: "posted"},
			{origin: reply(200, "b", "Cache-Control: max-age=3600"), upstream: true, body: "b"},
			{method: http.MethodPut, origin: reply(201, ""), upstream: true, status: 201},
			{origin: reply(200, "c", "Cache-Control: max-age=3600"), upstream: true, body: "c"},
			{method: http.MethodDelete, origin: reply(204, ""), upstream: true, status: 204},
			{origin: reply(200, "d", "Cache-Control: max-age=3600"), upstream: true, body: "d"},
		}},
		{"no invalidation after an error", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=3600"), upstream: true, body: "a"},
			{method: http.MethodPost, origin: reply(500, "boom"), upstream: true, status: 500, body: "boom"},
			{body: "a"},
		}},
		{"invalidation of Location and Content-Location", nil, []step{
			{path: "/other", origin: reply(200, "o", "Cache-Control: max-age=3600"), upstream: true, body: "o"},
			{path: "/other", body: "o"},
			{method: http.MethodPost, origin: reply(201, "", "Location: /other"), upstream: true, status: 201},
			{path: "/other", origin: reply(200, "o2", "Cache-Control: max-age=3600"), upstream: true, body: "o2"},
		}},
		{"stale-if-error", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=1, stale-if-error=60"), upstream: true, body: "a"},
			{advance: 10 * time.Second, origin: reply(503, "down"), upstream: true, body: "a", contains: map[string]string{"Cache-Status": "stale-if-error"}},
			{advance: 100 * time.Second, upstream: true, status: 503, body: "down"},
		}},
		{"503 without stale-if-error passes through", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=1"), upstream: true, body: "a"},
			{advance: 10 * time.Second, origin: reply(503, "down"), upstream: true, status: 503, body: "down"},
		}},
		{"stale-while-revalidate", nil, []step{
			{origin: validator(`"1"`, "", "one", "Cache-Control: max-age=1, stale-while-revalidate=60"), upstream: true, body: "one"},
			{advance: 10 * time.Second, origin: reply(200, "two", "Cache-Control: max-age=100", "ETag: \"2\""), upstream: true, wait: true, body: "one",
				contains: map[string]string{"Cache-Status": "stale-while-revalidate"}},
			{body: "two"},
		}},
		{"stale-while-revalidate window over", nil, []step{
			{origin: reply(200, "one", "Cache-Control: max-age=1, stale-while-revalidate=5"), upstream: true, body: "one"},
			{advance: 10 * time.Second, origin: reply(200, "two"), upstream: true, body: "two"},
		}},
		{"request no-cache validates", nil, []step{
			{origin: validator(`"v"`, "", "v", "Cache-Control: max-age=3600"), upstream: true, body: "v"},
			{req: []string{"Cache-Control: no-cache"}, upstream: true, body: "v", sent: map[string]string{"If-None-Match": `"v"`}},
		}},
		{"request max-age=0 validates", nil, []step{
			{origin: reply(200, "v", "Cache-Control: max-age=3600"), upstream: true, body: "v"},
			{req: []string{"Cache-Control: max-age=0"}, upstream: true, body: "v"},
		}},
		{"request max-stale", nil, []step{
			{origin: reply(200, "v", "Cache-Control: max-age=1"), upstream: true, body: "v"},
			{advance: 30 * time.Second, req: []string{"Cache-Control: max-stale=100"}, body: "v"},
			{req: []string{"Cache-Control: max-stale=10"}, upstream: true, body: "v"},
		}},
		{"request min-fresh", nil, []step{
			{origin: reply(200, "v", "Cache-Control: max-age=100"), upstream: true, body: "v"},
			{req: []string{"Cache-Control: min-fresh=200"}, upstream: true, body: "v"},
		}},
		{"request no-store bypasses", nil, []step{
			{origin: reply(200, "v", "Cache-Control: max-age=100"), upstream: true, body: "v"},
			{req: []string{"Cache-Control: no-store"}, upstream: true, body: "v"},
		}},
		{"only-if-cached", nil, []step{
			{req: []string{"Cache-Control: only-if-cached"}, origin: reply(200, "v", "Cache-Control: max-age=100"), status: http.StatusGatewayTimeout, bodyAny: true},
		}},
		{"authorization not stored unless public", nil, []step{
			{origin: reply(200, "secret", "Cache-Control: max-age=3600"), req: []string{"Authorization: Basic eDp5"}, upstream: true, body: "secret"},
			{upstream: true, body: "secret"},
			{path: "/pub", origin: reply(200, "shared", "Cache-Control: max-age=3600, public"), req: []string{"Authorization: Basic eDp5"}, upstream: true, body: "shared"},
			{path: "/pub", body: "shared"},
		}},
		{"hop-by-hop and listed fields are not stored", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=60", "Connection: x-a", "X-A: 1", "X-B: 2", "Keep-Alive: timeout=5"),
				upstream: true, body: "a", header: map[string]string{"X-A": "", "Keep-Alive": ""}},
			{body: "a", header: map[string]string{"X-A": "", "X-B": "2", "Keep-Alive": ""}},
		}},
		{"no-cache field list", nil, []step{
			{origin: reply(200, "a", `Cache-Control: max-age=60, no-cache="Set-Cookie"`, "Set-Cookie: s=1"), upstream: true, body: "a"},
			{body: "a", header: map[string]string{"Set-Cookie": ""}},
		}},
		{"must-understand", nil, []step{
			{origin: reply(200, "a", "Cache-Control: max-age=60, no-store, must-understand"), upstream: true, body: "a"},
			{body: "a"},
			{path: "/x", origin: reply(599, "b", "Cache-Control: max-age=60, no-store, must-understand"), upstream: true, status: 599, body: "b"},
			{path: "/x", upstream: true, status: 599, body: "b"},
		}},
		{"fresh redirect and error statuses are stored", nil, []step{
			{origin: reply(301, "moved", "Cache-Control: max-age=60", "Location: /new"), upstream: true, status: 301, body: "moved"},
			{status: 301, body: "moved", header: map[string]string{"Location": "/new"}},
			{path: "/gone", origin: reply(404, "nope", "Cache-Control: max-age=60"), upstream: true, status: 404, body: "nope"},
			{path: "/gone", status: 404, body: "nope"},
		}},
		{"HEAD answered from a stored GET", nil, []step{
			{origin: reply(200, "abcdef", "Cache-Control: max-age=60", "Content-Type: text/plain"), upstream: true, body: "abcdef"},
			{method: http.MethodHead, header: map[string]string{"Content-Length": "6", "Content-Type": "text/plain"}},
		}},
		{"client conditional answered by the cache", nil, []step{
			{origin: reply(200, "abc", "Cache-Control: max-age=60", `ETag: "t"`, "Last-Modified: {date-100}"), upstream: true, body: "abc"},
			{req: []string{`If-None-Match: "x", "t"`}, status: 304, body: "", header: map[string]string{"ETag": `"t"`, "Content-Length": ""}},
			{req: []string{`If-None-Match: "x"`}, body: "abc"},
			{req: []string{"If-Modified-Since: {date}"}, status: 304, body: ""},
			{req: []string{`If-Match: "x"`}, status: 412, body: ""},
		}},
		{"ranges from a complete stored response", nil, []step{
			{origin: reply(200, "0123456789", "Cache-Control: max-age=60", `ETag: "r"`), upstream: true, body: "0123456789"},
			{req: []string{"Range: bytes=2-4"}, status: 206, body: "234", header: map[string]string{"Content-Range": "bytes 2-4/10"}},
			{req: []string{"Range: bytes=-3"}, status: 206, body: "789"},
			{req: []string{"Range: bytes=8-"}, status: 206, body: "89"},
			{req: []string{"Range: bytes=20-"}, status: 416, body: "", header: map[string]string{"Content-Range": "bytes */10"}},
			{req: []string{"Range: bytes=0-1", `If-Range: "other"`}, body: "0123456789"},
			{req: []string{"Range: bytes=0-1", `If-Range: "r"`}, status: 206, body: "01"},
			{req: []string{"Range: bytes=0-0,5-5"}, status: 206, bodyAny: true, contains: map[string]string{"Content-Type": "multipart/byteranges"}},
		}},
		{"partial responses stored and reused for ranges inside them", nil, []step{
			{req: []string{"Range: bytes=4-7"}, origin: func(func() time.Time) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Cache-Control", "max-age=60")
					w.Header().Set("Content-Type", "text/plain")
					http.ServeContent(w, r, "", time.Time{}, strings.NewReader("0123456789"))
				}
			}, upstream: true, status: 206, body: "4567"},
			{req: []string{"Range: bytes=5-6"}, status: 206, body: "56", header: map[string]string{"Content-Range": "bytes 5-6/10"}},
			{req: []string{"Range: bytes=3-5"}, upstream: true, status: 206, body: "345", contains: map[string]string{"Cache-Status": "fwd=partial"}},
			{upstream: true, body: "0123456789"},
			{req: []string{"Range: bytes=0-1"}, status: 206, body: "01"},
			{req: []string{"Range: bytes=0-1", "If-None-Match: \"x\""}, status: 206, body: "01"},
		}},
		{"stale partial responses are not used", nil, []step{
			{req: []string{"Range: bytes=4-7"}, origin: func(func() time.Time) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Cache-Control", "max-age=1")
					http.ServeContent(w, r, "", time.Time{}, strings.NewReader("0123456789"))
				}
			}, upstream: true, status: 206, body: "4567"},
			{advance: 5 * time.Second, req: []string{"Range: bytes=4-7"}, upstream: true, status: 206, body: "4567"},
		}},
		{"CDN-Cache-Control governs the mirror", nil, []step{
			{origin: reply(200, "cdn", "Cache-Control: no-store", "CDN-Cache-Control: max-age=60"), upstream: true, body: "cdn"},
			{advance: 30 * time.Second, body: "cdn", header: map[string]string{"Cdn-Cache-Control": "max-age=60"}},
			{path: "/short", origin: reply(200, "s", "Cache-Control: max-age=3600", "CDN-Cache-Control: max-age=1"), upstream: true, body: "s"},
			{path: "/short", advance: 2 * time.Second, upstream: true, body: "s"},
			{path: "/bad", origin: reply(200, "b", "Cache-Control: no-store", "CDN-Cache-Control: max-age=60, &&&"), upstream: true, body: "b"},
			{path: "/bad", upstream: true, body: "b"},
		}},
		{"POST answer stored for GET with Content-Location", nil, []step{
			{method: http.MethodPost, origin: reply(200, "made", "Cache-Control: max-age=60", "Content-Location: /r"), upstream: true, body: "made"},
			{body: "made"},
		}},
		{"quota evicts least recently used", func(c *Config) { c.MaxBytes = 25 }, []step{
			{path: "/1", origin: reply(200, "0123456789", "Cache-Control: max-age=600"), upstream: true, body: "0123456789"},
			{path: "/2", upstream: true, body: "0123456789"},
			{advance: time.Second, path: "/1", body: "0123456789"},
			{advance: time.Second, path: "/3", upstream: true, body: "0123456789"}, // 30 bytes > 25: /2 goes
			{path: "/1", body: "0123456789"},
			{path: "/2", upstream: true, body: "0123456789"},
		}},
		{"objects over the size limit stream unstored", func(c *Config) { c.MaxObjectBytes = 5 }, []step{
			{origin: reply(200, "0123456789", "Cache-Control: max-age=600"), upstream: true, body: "0123456789"},
			{upstream: true, body: "0123456789"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tune []func(*Config)
			if tt.tune != nil {
				tune = append(tune, tt.tune)
			}
			e := newEnv(t, tune...)
			runSteps(t, e, tt.steps)
		})
	}
}

// TestMirrorForwardsEveryMethod checks that the mirror passes methods,
// bodies, paths and queries on, the conformance suite's own needs.
func TestMirrorForwardsEveryMethod(t *testing.T) {
	e := newEnv(t)
	e.origin.set(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.RequestURI())
	})
	for _, m := range []string{"GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "M-SEARCH"} {
		req, _ := http.NewRequest(m, e.mirror.URL+"/a/b%2Fc?x=1&y", strings.NewReader("payload"))
		r := send(req)
		if r.err != nil || r.body != m+" /a/b%2Fc?x=1&y" {
			t.Errorf("%s: got %q, %v", m, r.body, r.err)
		}
		last := e.origin.last()
		if m != "GET" {
			body := make([]byte, 16)
			n, _ := last.Body.Read(body)
			if string(body[:n]) != "payload" {
				t.Errorf("%s: origin got body %q", m, body[:n])
			}
		}
		if !strings.Contains(last.Header.Get("Via"), "1.1 preau-") {
			t.Errorf("%s: Via = %q", m, last.Header.Get("Via"))
		}
	}
}
