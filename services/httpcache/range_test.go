package httpcache

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// rangeOrigin serves content with ranges, like a video server.
func rangeOrigin(content string) http.HandlerFunc {
	mod := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "video/mp4")
		http.ServeContent(w, r, "", mod, strings.NewReader(content))
	}
}

func TestRangeMiss(t *testing.T) {
	const content = "0123456789abcdefghijklmnopqrstuvwxyz"
	t.Run("from the first byte: cut from the whole, stored", func(t *testing.T) {
		e := newEnv(t)
		e.origin.set(rangeOrigin(content))
		r := e.get("/v.mp4", "Range: bytes=0-3")
		if r.status != 206 || r.body != "0123" || r.header.Get("Content-Range") != "bytes 0-3/36" {
			t.Fatalf("first range: %d %q %q", r.status, r.body, r.header.Get("Content-Range"))
		}
		if got := e.origin.last().Header.Get("Range"); got != "" {
			t.Errorf("origin got Range %q, want the whole body asked", got)
		}
		waitFor(t, "whole body stored", func() bool { return e.c.Status(t.Context()).Entries == 1 })
		before := e.origin.count()
		for _, tc := range []struct{ rng, want string }{{"bytes=30-", "uvwxyz"}, {"bytes=0-", content}, {"bytes=-2", "yz"}} {
			r := e.get("/v.mp4", "Range: "+tc.rng)
			if r.status != 206 || r.body != tc.want || !r.fromCache() {
				t.Errorf("%s: %d %q %q", tc.rng, r.status, r.body, r.header.Get("Cache-Status"))
			}
		}
		if e.origin.count() != before {
			t.Error("stored video went upstream")
		}
	})
	t.Run("a seek forwards the range and fills a large body in the background", func(t *testing.T) {
		e := newEnv(t)
		video := strings.Repeat("0123456789", rangeFillMin/10+1)
		e.origin.set(rangeOrigin(video))
		r := e.get("/v.mp4", "Range: bytes=30-39")
		e.origin.mu.Lock()
		firstRange := e.origin.requests[0].Header.Get("Range")
		e.origin.mu.Unlock()
		if r.status != 206 || r.body != "0123456789" || firstRange != "bytes=30-39" {
			t.Fatalf("seek: %d %q", r.status, r.body)
		}
		waitFor(t, "background fill", func() bool { return e.c.Status(t.Context()).Bytes == int64(len(video)) })
		r = e.get("/v.mp4")
		if r.body != video || !r.fromCache() {
			t.Errorf("after fill: %d bytes, %q", len(r.body), r.header.Get("Cache-Status"))
		}
	})
	t.Run("a seek into a small body only forwards", func(t *testing.T) {
		e := newEnv(t)
		e.origin.set(rangeOrigin(content))
		if r := e.get("/v.mp4", "Range: bytes=30-"); r.status != 206 || r.body != "uvwxyz" {
			t.Fatalf("seek: %d %q", r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
		if n := e.origin.count(); n != 1 {
			t.Errorf("origin saw %d requests, want 1", n)
		}
	})
	t.Run("not storable: the whole answer", func(t *testing.T) {
		e := newEnv(t)
		e.origin.set(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			w.Write([]byte(content))
		})
		r := e.get("/v.mp4", "Range: bytes=0-3")
		if r.status != 200 || r.body != content {
			t.Errorf("got %d %q", r.status, r.body)
		}
	})
	t.Run("client leaves after its range, fill completes", func(t *testing.T) {
		e := newEnv(t)
		big := strings.Repeat("v", 3<<20)
		e.origin.set(rangeOrigin(big))
		r := e.get("/big.mp4", "Range: bytes=0-99")
		if r.status != 206 || len(r.body) != 100 {
			t.Fatalf("got %d, %d bytes", r.status, len(r.body))
		}
		waitFor(t, "fill", func() bool { return e.c.Status(t.Context()).Entries == 1 })
		if r := e.get("/big.mp4"); len(r.body) != len(big) || !r.fromCache() {
			t.Errorf("stored: %d bytes, %q", len(r.body), r.header.Get("Cache-Status"))
		}
	})
}
