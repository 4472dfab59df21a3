package content

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// seededBody is a file of size bytes generated from a seeded PRNG, block by
// block, so that any range of a large body is produced without keeping it.
type seededBody struct {
	seed uint64
	size int64
}

const seededBlock = 64 << 10

// readAt fills p with the bytes at off.
func (b seededBody) readAt(p []byte, off int64) {
	for len(p) > 0 {
		blk := off / seededBlock
		var key [32]byte
		binary.LittleEndian.PutUint64(key[:], b.seed)
		binary.LittleEndian.PutUint64(key[8:], uint64(blk))
		r := rand.NewChaCha8(key)
		skip := off - blk*seededBlock
		var tmp [seededBlock]byte
		r.Read(tmp[:])
		n := copy(p, tmp[skip:])
		p, off = p[n:], off+int64(n)
	}
}

func (b seededBody) bytes() []byte {
	p := make([]byte, b.size)
	b.readAt(p, 0)
	return p
}

func (b seededBody) sha256() string {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < b.size; off += int64(len(buf)) {
		n := min(int64(len(buf)), b.size-off)
		b.readAt(buf[:n], off)
		h.Write(buf[:n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// served is one request the fixture answered.
type served struct {
	start, sent int64
	status      int
}

// rangeServer serves one seeded body with a strong ETag, Range and
// If-Range, and logs what it sent. Faults: cut(n) returns how many bytes
// to send to the n-th request (from 1) before cutting the connection, or
// -1; chunked leaves out Content-Length.
type rangeServer struct {
	body    seededBody
	etag    string
	chunked bool
	cut     func(n int) int64

	mu       sync.Mutex
	requests int
	log      []served
}

func (rs *rangeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	rs.requests++
	n := rs.requests
	rs.mu.Unlock()
	size := rs.body.size
	start := int64(0)
	status := http.StatusOK
	if rng := r.Header.Get("Range"); rng != "" && (r.Header.Get("If-Range") == "" || r.Header.Get("If-Range") == rs.etag) {
		v, ok := strings.CutPrefix(rng, "bytes=")
		v, ok2 := strings.CutSuffix(v, "-")
		a, err := strconv.ParseInt(v, 10, 64)
		if !ok || !ok2 || err != nil {
			http.Error(w, "bad range", http.StatusBadRequest)
			return
		}
		if a >= size {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start, status = a, http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, size-1, size))
	}
	w.Header().Set("ETag", rs.etag)
	if !rs.chunked {
		w.Header().Set("Content-Length", strconv.FormatInt(size-start, 10))
	}
	w.WriteHeader(status)
	limit := int64(-1)
	if rs.cut != nil {
		limit = rs.cut(n)
	}
	// Logged when the request arrives, so that the log's order is the
	// order of requests; sent is filled in at the end.
	rs.mu.Lock()
	idx := len(rs.log)
	rs.log = append(rs.log, served{start: start, status: status})
	rs.mu.Unlock()
	var sent int64
	defer func() {
		rs.mu.Lock()
		rs.log[idx].sent = sent
		rs.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for off := start; off < size; {
		k := min(int64(len(buf)), size-off)
		if limit >= 0 && sent+k > limit {
			k = limit - sent
		}
		if k > 0 {
			rs.body.readAt(buf[:k], off)
			m, err := w.Write(buf[:k])
			sent += int64(m)
			off += int64(m)
			if err != nil {
				return
			}
		}
		if limit >= 0 && sent >= limit {
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
	}
}

func (rs *rangeServer) served() []served {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]served(nil), rs.log...)
}

func readBlob(t *testing.T, s *Store, hash string) []byte {
	t.Helper()
	f, err := s.OpenBlob(hash)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFetchBlob(t *testing.T) {
	body := seededBody{seed: 7, size: 9<<20 + 12345} // more than two checkpoints
	data := body.bytes()
	hash := sum(data)
	tests := []struct {
		name    string
		srv     *rangeServer
		size    int64
		sha     string
		tries   int   // calls until success
		resumed int64 // Resumed of the last call
		starts  []int64
	}{
		{name: "known size and hash", srv: &rangeServer{body: body, etag: `"a"`}, size: body.size, sha: hash, tries: 1, starts: []int64{0}},
		{name: "unknown size, chunked", srv: &rangeServer{body: body, etag: `"a"`, chunked: true}, size: -1, tries: 1, starts: []int64{0}},
		{name: "cut twice, resumes from the verified bytes", srv: &rangeServer{body: body, etag: `"a"`, cut: func(n int) int64 {
			switch n {
			case 1:
				return 5<<20 + 1000
			case 2:
				return 3 << 20
			}
			return -1
		}}, size: body.size, tries: 3, resumed: 8<<20 + 1000, starts: []int64{0, 5<<20 + 1000, 8<<20 + 1000}},
		{name: "cut, chunked, unknown size", srv: &rangeServer{body: body, etag: `"a"`, chunked: true, cut: func(n int) int64 {
			if n == 1 {
				return 100
			}
			return -1
		}}, size: -1, sha: hash, tries: 2, resumed: 100, starts: []int64{0, 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.srv)
			defer srv.Close()
			e := newTestEnv(t, Config{}, srv.Client())
			var res FetchResult
			var err error
			var calls []int64
			for i := range tt.tries {
				res, err = e.store.FetchBlob(context.Background(), FetchRequest{Owner: "catalog:test", URL: srv.URL + "/v.mp4", Size: tt.size, SHA256: tt.sha,
					Progress: func(done, total int64) { calls = append(calls, done) }})
				if i < tt.tries-1 {
					if err == nil || errors.Is(err, ErrFetchRefused) {
						t.Fatalf("call %d: err = %v, want a transient error", i+1, err)
					}
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.SHA256 != hash || res.Size != body.size || res.Resumed != tt.resumed {
				t.Errorf("FetchBlob() = %+v, want %s, %d bytes, %d resumed", res, hash[:12], body.size, tt.resumed)
			}
			if got := readBlob(t, e.store, hash); !bytes.Equal(got, data) {
				t.Errorf("blob differs from the served body")
			}
			var starts []int64
			for _, s := range tt.srv.served() {
				starts = append(starts, s.start)
			}
			if fmt.Sprint(starts) != fmt.Sprint(tt.starts) {
				t.Errorf("requests started at %v, want %v", starts, tt.starts)
			}
			if len(calls) == 0 || calls[len(calls)-1] != body.size {
				t.Errorf("progress calls end at %v, want %d", calls[max(len(calls)-1, 0):], body.size)
			}
			if n := e.count("content_pins WHERE owner = 'catalog:test' AND fetched = 1"); n != 1 {
				t.Errorf("%d fetch pins, want 1", n)
			}
			if ents, _ := os.ReadDir(e.store.tmpDir); len(ents) != 0 {
				t.Errorf("Dir/tmp keeps %d files after success", len(ents))
			}
		})
	}
}

// TestFetchBlobChangedFile: a 200 answer to a resume means the file
// changed; the download starts again from 0 and the blob is the new file.
func TestFetchBlobChangedFile(t *testing.T) {
	old := seededBody{seed: 1, size: 6 << 20}
	rs := &rangeServer{body: old, etag: `"v1"`, cut: func(n int) int64 {
		if n == 1 {
			return 5 << 20
		}
		return -1
	}}
	srv := httptest.NewServer(rs)
	defer srv.Close()
	e := newTestEnv(t, Config{}, srv.Client())
	req := FetchRequest{Owner: "o", URL: srv.URL + "/f", Size: -1}
	if _, err := e.store.FetchBlob(context.Background(), req); err == nil {
		t.Fatal("cut fetch succeeded")
	}
	rs.mu.Lock()
	rs.body, rs.etag = seededBody{seed: 2, size: 7 << 20}, `"v2"`
	rs.mu.Unlock()
	res, err := e.store.FetchBlob(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if want := rs.body.sha256(); res.SHA256 != want || res.Resumed != 0 || res.Size != 7<<20 {
		t.Errorf("FetchBlob() = %+v, want the new file %s, nothing resumed", res, want[:12])
	}
	log := rs.served()
	if len(log) != 2 || log[1].status != http.StatusOK {
		t.Errorf("served %+v, want a 200 for the resume", log)
	}
}

// lie answers every request with a fixed status, headers and body.
type lie struct {
	status  int
	header  map[string]string
	body    []byte
	chunked bool
}

func (l lie) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range l.header {
		w.Header().Set(k, v)
	}
	if !l.chunked && w.Header().Get("Content-Length") == "" {
		w.Header().Set("Content-Length", strconv.Itoa(len(l.body)))
	}
	w.WriteHeader(l.status)
	w.Write(l.body)
}

func TestFetchBlobRefusesLyingServers(t *testing.T) {
	data := pseudoRandom(100000, 3)
	good := sum(data)
	const partial = 40000
	tests := []struct {
		name    string
		srv     http.Handler
		size    int64
		sha     string
		refused bool // else a transient error
	}{
		{"longer body than the expected size", lie{status: 200, body: append(data, 'x'), chunked: true}, int64(len(data)), "", true},
		{"shorter body than the expected size", lie{status: 200, body: data[:len(data)-1], chunked: true}, int64(len(data)), "", true},
		{"Content-Length other than the expected size", lie{status: 200, body: data[:10]}, int64(len(data)), "", true},
		{"wrong hash", lie{status: 200, body: data}, -1, sum([]byte("autre")), true},
		{"too large", lie{status: 200, body: data}, 1 << 40, "", true},
		{"not found", lie{status: 404, body: []byte("no")}, -1, "", true},
		{"gone", lie{status: 410, body: []byte("no")}, -1, "", true},
		{"server error is transient", lie{status: 503, body: []byte("later")}, -1, "", false},
		{"too many requests is transient", lie{status: 429, body: []byte("later")}, -1, "", false},
		{"206 to a request without Range", lie{status: 206, header: map[string]string{"Content-Range": fmt.Sprintf("bytes 0-%d/%d", len(data)-1, len(data))}, body: data}, -1, "", true},
	}
	// Resumed requests: the first request is cut after partial bytes.
	resumed := []struct {
		name string
		srv  lie
	}{
		{"Content-Range starting elsewhere", lie{status: 206, header: map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/%d", partial+1, len(data)-1, len(data))}, body: data[partial+1:]}},
		{"Content-Range of another total", lie{status: 206, header: map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/%d", partial, len(data), len(data)+1)}, body: append(data[partial:], 'x')}},
		{"Content-Length other than the range", lie{status: 206, header: map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/%d", partial, len(data)-1, len(data)), "Content-Length": strconv.Itoa(len(data) - partial - 1)}, body: data[partial : len(data)-1]}},
		{"longer body than the range", lie{status: 206, header: map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/%d", partial, len(data)-1, len(data))}, body: append(data[partial:], "en trop"...), chunked: true}},
		{"shorter body than the range", lie{status: 206, header: map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/%d", partial, len(data)-1, len(data))}, body: data[partial : len(data)-5], chunked: true}},
		{"unparsable Content-Range", lie{status: 206, header: map[string]string{"Content-Range": fmt.Sprintf("bytes %d-/%d", partial, len(data))}, body: data[partial:]}},
	}
	for _, r := range resumed {
		var n int
		var mu sync.Mutex
		h := r.srv
		tests = append(tests, struct {
			name    string
			srv     http.Handler
			size    int64
			sha     string
			refused bool
		}{"resume: " + r.name, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			mu.Lock()
			n++
			first := n == 1
			mu.Unlock()
			if first {
				w.Header().Set("ETag", `"e"`)
				w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				w.WriteHeader(200)
				w.Write(data[:partial])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			h.ServeHTTP(w, req)
		}), -1, "", true})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.srv)
			defer srv.Close()
			e := newTestEnv(t, Config{}, srv.Client())
			req := FetchRequest{Owner: "o", URL: srv.URL + "/f", Size: tt.size, SHA256: tt.sha}
			_, err := e.store.FetchBlob(context.Background(), req)
			if strings.HasPrefix(tt.name, "resume: ") {
				if err == nil || errors.Is(err, ErrFetchRefused) {
					t.Fatalf("first (cut) call: err = %v, want transient", err)
				}
				_, err = e.store.FetchBlob(context.Background(), req)
			}
			if err == nil {
				t.Fatal("FetchBlob succeeded")
			}
			if got := errors.Is(err, ErrFetchRefused); got != tt.refused {
				t.Fatalf("err = %v; refused = %v, want %v", err, got, tt.refused)
			}
			if len(e.blobs()) != 0 || e.count("content_pins") != 0 {
				t.Errorf("a refused fetch left %d blobs, %d pins", len(e.blobs()), e.count("content_pins"))
			}
			if _, statErr := os.Stat(e.store.fetchPath(req.URL)); tt.refused && !os.IsNotExist(statErr) {
				t.Errorf("a refused fetch kept its partial download: %v", statErr)
			}
		})
	}
	_ = good
}

func TestFetchBlobAlreadyStored(t *testing.T) {
	e := newTestEnv(t, Config{}, http.DefaultClient)
	body := []byte("vignette")
	h, _, err := e.store.PutBlob(context.Background(), "handin:1", bytes.NewReader(body), 0)
	if err != nil {
		t.Fatal(err)
	}
	// No request at all: the address does not even answer.
	res, err := e.store.FetchBlob(context.Background(), FetchRequest{Owner: "catalog:gar:x", URL: "http://127.0.0.1:1/v", Size: int64(len(body)), SHA256: h})
	if err != nil || res.SHA256 != h || res.Size != int64(len(body)) {
		t.Fatalf("FetchBlob of a stored blob = %+v, %v", res, err)
	}
	if n := e.count("content_pins"); n != 2 {
		t.Errorf("%d pins, want 2", n)
	}
	if _, err := e.store.FetchBlob(context.Background(), FetchRequest{Owner: "o", URL: "http://127.0.0.1:1/v", Size: 3, SHA256: h}); !errors.Is(err, ErrFetchRefused) {
		t.Errorf("FetchBlob with a size other than the stored blob's: err = %v, want ErrFetchRefused", err)
	}
	for _, bad := range []FetchRequest{{URL: "http://x/"}, {Owner: "o", URL: "ftp://x/"}, {Owner: "o", URL: "http://x/", SHA256: "ABC"}, {Owner: "o", URL: "http://x/", Size: -2}} {
		if _, err := e.store.FetchBlob(context.Background(), bad); err == nil {
			t.Errorf("FetchBlob(%+v) succeeded", bad)
		}
	}
}

func FuzzContentRange(f *testing.F) {
	seeds, err := os.ReadFile("testdata/content-ranges.txt")
	if err != nil {
		f.Fatal(err)
	}
	for line := range strings.Lines(string(seeds)) {
		f.Add(strings.TrimRight(line, "\n"))
	}
	f.Fuzz(func(t *testing.T, v string) {
		a, b, size, ok := parseByteRange(v)
		if !ok {
			return
		}
		switch {
		case a == -1 && (b != -1 || size < 0):
			t.Fatalf("%q: */size gave %d-%d/%d", v, a, b, size)
		case a != -1 && (a < 0 || b < a || size < -1):
			t.Fatalf("%q: gave %d-%d/%d", v, a, b, size)
		}
		if a >= 0 {
			sz := "*"
			if size >= 0 {
				sz = strconv.FormatInt(size, 10)
			}
			again := fmt.Sprintf("bytes %d-%d/%s", a, b, sz)
			if a2, b2, s2, ok := parseByteRange(again); !ok || a2 != a || b2 != b || s2 != size {
				t.Fatalf("%q parsed as %d-%d/%d, but %q does not round-trip", v, a, b, size, again)
			}
		}
	})
}
