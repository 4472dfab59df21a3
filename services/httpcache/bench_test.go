package httpcache

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkHit measures the hit path without the network: lookup,
// freshness, header copy and the body copy from the stored file.
func BenchmarkHit(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		b.Run(strings.Repeat("x", 0)+map[int]string{4 << 10: "4KB", 1 << 20: "1MB"}[size], func(b *testing.B) {
			e := newEnv(b)
			e.origin.set(reply(200, strings.Repeat("b", size), "Cache-Control: max-age=3600", "Content-Type: application/octet-stream")(e.clock.Now))
			if r := e.get("/obj"); len(r.body) != size {
				b.Fatal("setup")
			}
			target := mustURL(e.origin.URL + "/obj")
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, "/obj", nil)
				req.Header.Set("Accept-Encoding", "gzip")
				for pb.Next() {
					w := &benchWriter{h: http.Header{}}
					e.c.handle(w, req, target, nil, modeMirror)
					if w.code != 200 || w.n != int64(size) {
						b.Fatalf("code %d, %d bytes", w.code, w.n)
					}
				}
			})
		})
	}
}

type benchWriter struct {
	h    http.Header
	code int
	n    int64
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(c int)   { w.code = c }
func (w *benchWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
