package httpcache

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rawReply makes the origin write raw bytes on the connection, then close.
func rawReply(e *env, raw string, stall time.Duration) {
	e.origin.set(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString(raw)
		brw.Flush()
		time.Sleep(stall)
	})
}

func tmpFiles(t *testing.T, e *env) []string {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(e.dir, "cache", "tmp"))
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	return names
}

func TestHostileUpstream(t *testing.T) {
	t.Run("content-length longer than the body", func(t *testing.T) {
		e := newEnv(t)
		rawReply(e, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 50), 0)
		r := e.get("/lie")
		if r.err == nil && len(r.body) == 100 {
			t.Fatalf("client got a complete-looking body: %d bytes", len(r.body))
		}
		if r.err == nil {
			t.Fatalf("client connection not aborted: status %d, %d bytes", r.status, len(r.body))
		}
		e.origin.set(reply(200, "ok", "Cache-Control: max-age=60")(e.clock.Now))
		before := e.origin.count()
		if r := e.get("/lie"); r.body != "ok" || e.origin.count() != before+1 {
			t.Errorf("truncated body was stored: %q", r.body)
		}
		if n := tmpFiles(t, e); len(n) != 0 {
			t.Errorf("temporary files left: %v", n)
		}
	})
	t.Run("body longer than content-length", func(t *testing.T) {
		// HTTP/1.1 framing ends the message at Content-Length: the extra
		// bytes are not part of it, and the stored body has exactly the
		// announced length.
		e := newEnv(t)
		rawReply(e, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 10\r\n\r\n0123456789EXTRAEXTRA", 0)
		if r := e.get("/long"); r.err != nil || r.body != "0123456789" {
			t.Fatalf("got %q, %v", r.body, r.err)
		}
		r := e.get("/long")
		if !r.fromCache() || r.body != "0123456789" || r.header.Get("Content-Length") != "10" {
			t.Errorf("stored: %q, %q, %q", r.body, r.header.Get("Content-Length"), r.header.Get("Cache-Status"))
		}
	})
	t.Run("endless body", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.MaxObjectBytes = 1 << 20 })
		stop := make(chan struct{})
		defer close(stop)
		e.origin.set(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=60")
			chunk := []byte(strings.Repeat("z", 32<<10))
			for {
				select {
				case <-stop:
					return
				case <-r.Context().Done():
					return
				default:
				}
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		resp, err := http.Get(e.mirror.URL + "/endless")
		if err != nil {
			t.Fatal(err)
		}
		// The stream goes on past MaxObjectBytes for the client.
		n, err := io.CopyN(io.Discard, resp.Body, 3<<20)
		resp.Body.Close()
		if n != 3<<20 {
			t.Fatalf("client read %d bytes: %v", n, err)
		}
		waitFor(t, "fill discarded", func() bool { return len(tmpFiles(t, e)) == 0 })
		if st := e.c.Status(t.Context()); st.Entries != 0 {
			t.Errorf("endless body stored: %+v", st)
		}
	})
	t.Run("huge headers", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.MaxHeaderBytes = 8 << 10 })
		e.origin.set(func(w http.ResponseWriter, r *http.Request) {
			for i := range 100 {
				w.Header().Set(fmt.Sprintf("X-Big-%d", i), strings.Repeat("h", 1000))
			}
			w.Header().Set("Cache-Control", "max-age=60")
			w.Write([]byte("body"))
		})
		r := e.get("/big")
		if r.status != http.StatusBadGateway {
			t.Fatalf("status %d, want 502", r.status)
		}
		if st := e.c.Status(t.Context()); st.Entries != 0 {
			t.Errorf("stored: %+v", st)
		}
	})
	t.Run("huge headers through a lenient upstream client", func(t *testing.T) {
		// The cache checks the header size itself, whatever the Doer.
		e := newEnv(t, func(c *Config) { c.MaxHeaderBytes = 8 << 10 })
		e.origin.set(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Big", strings.Repeat("h", 20<<10))
			w.Write([]byte("body"))
		})
		q := e.c.Transport(http.DefaultClient)
		req, _ := http.NewRequest("GET", e.origin.URL+"/big", nil)
		resp, err := q.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.Header.Get("Cache-Status"), "header-too-large") {
			t.Errorf("status %d, Cache-Status %q", resp.StatusCode, resp.Header.Get("Cache-Status"))
		}
	})
	t.Run("no response headers in time", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.HeaderTimeout = 200 * time.Millisecond })
		e.origin.set(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		start := time.Now()
		r := e.get("/slow")
		if r.status != http.StatusGatewayTimeout || time.Since(start) > 3*time.Second {
			t.Errorf("status %d after %v, want 504 quickly", r.status, time.Since(start))
		}
	})
	t.Run("body stalls", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
		e.origin.set(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Content-Length", "1000")
			w.Write([]byte(strings.Repeat("s", 500)))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		start := time.Now()
		r := e.get("/stall")
		if r.err == nil || time.Since(start) > 3*time.Second {
			t.Errorf("stalled body: err %v after %v, want an aborted connection quickly", r.err, time.Since(start))
		}
		waitFor(t, "fill discarded", func() bool { return len(tmpFiles(t, e)) == 0 })
		if st := e.c.Status(t.Context()); st.Entries != 0 {
			t.Errorf("stored: %+v", st)
		}
	})
	t.Run("malformed status line", func(t *testing.T) {
		e := newEnv(t)
		rawReply(e, "HTTP/1.1 OK\r\n\r\n", 0)
		if r := e.get("/bad"); r.status != http.StatusBadGateway {
			t.Errorf("status %d, want 502", r.status)
		}
	})
}

// TestClientLeavesFillContinues checks that a body of known length being
// stored is completed after its client goes away, so that the next pupil
// gets it from the box.
func TestClientLeavesFillContinues(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	const size = 256 << 10
	e.origin.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Length", fmt.Sprint(size))
		w.Write([]byte(strings.Repeat("a", size/2)))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte(strings.Repeat("b", size/2)))
	})
	resp, err := http.Get(e.mirror.URL + "/video")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.Peek(1000); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // the client leaves half-way
	close(release)
	waitFor(t, "fill completed", func() bool { return e.c.Status(t.Context()).Entries == 1 })
	before := e.origin.count()
	r := e.get("/video")
	if len(r.body) != size || !strings.HasSuffix(r.body, "b") || e.origin.count() != before {
		t.Errorf("after the client left: %d bytes, origin requests %d", len(r.body), e.origin.count()-before)
	}
}
