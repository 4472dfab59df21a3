package firmware

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeImage writes a size-byte test image without holding it in memory.
func writeImage(t *testing.T, path, version string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	w := io.MultiWriter(f, h)
	r := rand.New(rand.NewPCG(7, 11))
	buf := make([]byte, 1<<20)
	for done := int64(0); done < size; {
		for i := 0; i+8 <= len(buf); i += 8 {
			v := r.Uint64()
			for j := 0; j < 8; j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if done == 0 {
			copy(buf, "PREAU-IMAGE "+version+"\n")
		}
		n := min(int64(len(buf)), size-done)
		if _, err := w.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		done += n
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileSHA256(t *testing.T, path string, n int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, n); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// served is one image request the cutting server answered; kill marks
// that the box's preau was killed before the next request.
type served struct {
	start, written int64
	kill           bool
	checkpoint     int64 // kill: the offset the box had saved
}

// cutServer serves a repository, and its slot images with Range support,
// cutting each image response after a random 16 to 48 MiB.
type cutServer struct {
	dir string
	mu  sync.Mutex
	log []served
	rnd *rand.Rand
}

func (s *cutServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, ".root.img") {
		http.FileServer(http.Dir(s.dir)).ServeHTTP(w, r)
		return
	}
	f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(r.URL.Path)))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, _ := f.Stat()
	size := fi.Size()
	var start int64
	if rg := r.Header.Get("Range"); rg != "" {
		v, _ := strings.CutSuffix(strings.TrimPrefix(rg, "bytes="), "-")
		start, _ = strconv.ParseInt(v, 10, 64)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, size-1, size))
		w.Header().Set("Content-Length", strconv.FormatInt(size-start, 10))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
	}
	s.mu.Lock()
	limit := int64(16<<20 + s.rnd.IntN(32<<20))
	s.mu.Unlock()
	n, _ := io.Copy(w, io.NewSectionReader(f, start, min(limit, size-start)))
	w.(http.Flusher).Flush()
	s.mu.Lock()
	s.log = append(s.log, served{start: start, written: n})
	s.mu.Unlock()
	if start+n < size {
		panic(http.ErrAbortHandler) // cut the connection
	}
}

// TestResume300MB: a 300 MB image over a link that cuts every 16–48 MiB,
// with the box's preau killed three times during the download: the slot
// ends byte-identical, no byte below a saved checkpoint is fetched again,
// and within a process a cut resumes exactly where it stopped. Then the
// same image from a USB bundle, killed twice, and a bundle tampered with
// between two runs, refused.
func TestResume300MB(t *testing.T) {
	if testing.Short() {
		t.Skip("300 MB resume: -short")
	}
	const size = 300 << 20
	repo := newTestRepo(t)
	src := t.TempDir()
	sum := writeImage(t, filepath.Join(src, "root.img"), "1.1", size)
	os.WriteFile(filepath.Join(src, "linux"), imageBytes("kernel-1.1", 16<<10, 2), 0o644)
	runRelease(t, "sign", "--keys", repo.keys, "--repo", repo.dir, "--version", "1.1", "--quiet",
		"--part", "root="+filepath.Join(src, "root.img"), "--part", "linux="+filepath.Join(src, "linux"))
	os.Remove(filepath.Join(src, "root.img"))
	cs := &cutServer{dir: repo.dir, rnd: rand.New(rand.NewPCG(1, 2))}
	srv := httptest.NewServer(cs)
	defer srv.Close()
	now := nightAfter(time.Now())
	root := filepath.Join(repo.dir, "metadata", "1.root.json")

	t.Run("network", func(t *testing.T) {
		m := &machine{box: newBox(t, systemdBoot, root), url: srv.URL, now: now, health: "ok"}
		ckpt := "PREAU_FW_CHECKPOINT=" + strconv.Itoa(8<<20)
		kills := 0
		for step := 0; ; step++ {
			if step > 10 {
				t.Fatalf("no end: %v", m.log)
			}
			env := []string{ckpt}
			if kills < 3 {
				env = append(env, "PREAU_FW_CRASH=downloading:checkpoint#8")
			}
			out, killed := m.run(t, env...)
			if killed {
				kills++
				r := m.dbRow(t)
				cs.mu.Lock()
				cs.log = append(cs.log, served{kill: true, checkpoint: r.Offset})
				cs.mu.Unlock()
				continue
			}
			if out != "apply: rebooting" {
				t.Fatalf("preau said %q; life %v", out, m.log)
			}
			break
		}
		if got := fileSHA256(t, m.box.path("slots", "root-b.img"), size); got != sum {
			t.Fatalf("slot b sha256 %s, want %s", got, sum)
		}
		if fi, _ := os.Stat(m.box.path("slots", "root-b.img")); fi.Size() != size {
			t.Fatalf("slot b has %d bytes", fi.Size())
		}
		// Replay the requests.
		var next, total, refetched int64
		cuts := 0
		for i, s := range cs.log {
			if s.kill {
				if s.checkpoint > next {
					t.Fatalf("request %d: checkpoint %d beyond what was served (%d)", i, s.checkpoint, next)
				}
				refetched += next - s.checkpoint
				next = s.checkpoint
				continue
			}
			if s.start != next {
				t.Fatalf("request %d starts at %d, want %d (the saved checkpoint or the end of the cut response): %+v", i, s.start, next, cs.log)
			}
			next = s.start + s.written
			total += s.written
			if next < size {
				cuts++
			}
		}
		if next != size || total != size+refetched {
			t.Fatalf("served %d bytes, refetched %d, ended at %d", total, refetched, next)
		}
		// Only bytes past the last checkpoint before a kill come again.
		if refetched > 3*(8<<20+4<<20) {
			t.Fatalf("refetched %d bytes after 3 kills", refetched)
		}
		t.Logf("%d requests, %d cuts, 3 kills, %d bytes fetched again (after kills, beyond their checkpoints)", len(cs.log)-3, cuts, refetched)
	})

	t.Run("usb", func(t *testing.T) {
		bundle := bundleOf(t, repo)
		var img string
		filepath.Walk(bundle, func(p string, fi os.FileInfo, err error) error {
			if err == nil && strings.HasSuffix(p, ".root.img") {
				img = p
			}
			return nil
		})
		m := &machine{box: newBox(t, systemdBoot, root), now: now, health: "ok", file: bundle}
		ckpt := "PREAU_FW_CHECKPOINT=" + strconv.Itoa(8<<20)
		var offsets []int64
		for range 2 {
			if _, killed := m.run(t, ckpt, "PREAU_FW_CRASH=downloading:checkpoint#10"); !killed {
				t.Fatalf("not killed: %v", m.log)
			}
			offsets = append(offsets, m.dbRow(t).Offset)
		}
		if offsets[0] < 10*(8<<20) || offsets[1] < offsets[0]+10*(8<<20) {
			t.Fatalf("checkpoints after the kills %v: the second run did not resume", offsets)
		}
		if out, _ := m.run(t, ckpt); out != "apply: rebooting" {
			t.Fatalf("preau said %q", out)
		}
		if got := fileSHA256(t, m.box.path("slots", "root-b.img"), size); got != sum {
			t.Fatalf("slot b sha256 %s, want %s", got, sum)
		}

		// Tampered between two runs, past the checkpoint: refused.
		m2 := &machine{box: newBox(t, systemdBoot, root), now: now, health: "ok", file: bundle}
		if _, killed := m2.run(t, ckpt, "PREAU_FW_CRASH=downloading:checkpoint#5"); !killed {
			t.Fatal("not killed")
		}
		flipByte(t, img, size-1000)
		out, _ := m2.run(t, ckpt)
		r := m2.dbRow(t)
		if out != "apply: "+CodeTampered || r.State != StateFailed || r.Reason.Code != CodeTampered {
			t.Fatalf("tampered bundle: preau said %q, state %s %s", out, r.State, r.Reason.Code)
		}
		if got := m2.box.boot(t, false); got != "a" {
			t.Fatalf("booted %s after a refused USB update", got)
		}
	})
}
