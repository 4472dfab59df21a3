package httpcache

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestCollapsedRequests checks that requests arriving while a response is
// being stored read it as it grows instead of going upstream, whole or by
// range, and that a fill cut short upstream fails for every reader.
func TestCollapsedRequests(t *testing.T) {
	const size = 1 << 20
	body := strings.Repeat("0123456789abcdef", size/16)
	for _, cut := range []bool{false, true} {
		t.Run(fmt.Sprintf("cut=%v", cut), func(t *testing.T) {
			e := newEnv(t)
			release := make(chan struct{})
			e.origin.set(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=600")
				w.Header().Set("Content-Length", fmt.Sprint(size))
				w.Write([]byte(body[:size/2]))
				w.(http.Flusher).Flush()
				<-release
				if cut {
					panic(http.ErrAbortHandler)
				}
				w.Write([]byte(body[size/2:]))
			})
			var wg sync.WaitGroup
			results := make([]result, 4)
			hdrs := [][]string{nil, nil, nil, {"Range: bytes=100-199"}}
			wg.Add(1)
			go func() { defer wg.Done(); results[0] = e.get("/v") }()
			waitFor(t, "first request upstream", func() bool { return e.origin.count() == 1 })
			waitFor(t, "fill registered", func() bool { return e.c.findInflight(primaryKey(mustURL(e.origin.URL+"/v")), http.Header{}) != nil })
			for i := 1; i < len(results); i++ {
				wg.Add(1)
				go func() { defer wg.Done(); results[i] = e.get("/v", hdrs[i]...) }()
			}
			// Let the followers attach before the rest of the body comes.
			waitFor(t, "followers", func() bool { return e.c.Status(t.Context()).Hits >= int64(len(results)-1) })
			close(release)
			wg.Wait()
			if n := e.origin.count(); n != 1 {
				t.Errorf("origin saw %d requests, want 1", n)
			}
			for i, r := range results {
				if cut {
					if r.err == nil && (i == 3 && r.body == body[100:200]) {
						continue // its range was complete before the cut
					}
					if r.err == nil {
						t.Errorf("reader %d: no error after the cut (%d bytes)", i, len(r.body))
					}
					continue
				}
				want := body
				if i == 3 {
					want = body[100:200]
				}
				if r.err != nil || r.body != want {
					t.Errorf("reader %d: %v, %d bytes", i, r.err, len(r.body))
				}
				if i > 0 && !strings.Contains(r.header.Get("Cache-Status"), "collapsed") {
					t.Errorf("reader %d: Cache-Status %q", i, r.header.Get("Cache-Status"))
				}
			}
		})
	}
}
