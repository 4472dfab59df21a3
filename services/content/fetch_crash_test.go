package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestFetchHelperProcess is not a test: TestFetchBlobSurvivesKill runs the
// test binary again with PREAU_FETCH_HELPER=1 to fetch a blob in a process
// it can kill. It calls FetchBlob until it succeeds, as the catalogue does.
func TestFetchHelperProcess(t *testing.T) {
	if os.Getenv("PREAU_FETCH_HELPER") != "1" {
		t.Skip("helper process for TestFetchBlobSurvivesKill")
	}
	data, url := os.Getenv("PREAU_DATA"), os.Getenv("PREAU_URL")
	size, _ := strconv.ParseInt(os.Getenv("PREAU_SIZE"), 10, 64)
	db, err := openDB(filepath.Join(data, "preau.db"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	s, err := New(Config{Dir: filepath.Join(data, "content")}, db, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	client := &http.Client{Transport: &http.Transport{}} // no proxy from the environment
	for range 100 {
		res, err := s.FetchBlob(context.Background(), FetchRequest{Owner: "catalog:test", URL: url, Size: size, Doer: client})
		if err == nil {
			out, _ := json.Marshal(res)
			fmt.Println(string(out))
			os.Exit(0)
		}
		if errors.Is(err, ErrFetchRefused) {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "too many transient errors")
	os.Exit(4)
}

// TestFetchBlobSurvivesKill fetches a 200 MB body from a server that cuts
// connections at random offsets, in a child process killed with SIGKILL
// at random points several times, then lets one child finish. The blob
// must be byte-identical to the body, and no byte below a checkpoint
// recorded before a kill may be served again after it.
func TestFetchBlobSurvivesKill(t *testing.T) {
	if os.Getenv("PREAU_FETCH_HELPER") == "1" {
		t.Skip("inside the helper")
	}
	size, kills := int64(200<<20), 6
	if testing.Short() {
		size, kills = 32<<20, 3
	}
	body := seededBody{seed: 42, size: size}
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var rndMu sync.Mutex
	cuts := 0
	rs := &rangeServer{body: body, etag: `"video-v1"`, cut: func(int) int64 {
		rndMu.Lock()
		defer rndMu.Unlock()
		if cuts < 8 && rnd.IntN(3) == 0 {
			cuts++
			return rnd.Int64N(size / 4)
		}
		return -1
	}}
	srv := httptest.NewServer(rs)
	defer srv.Close()
	url := srv.URL + "/videos/cycle-de-l-eau-480p.mp4"
	want := make(chan string, 1)
	go func() { want <- body.sha256() }()

	data := t.TempDir()
	os.MkdirAll(filepath.Join(data, "content"), 0o750)
	s := &Store{tmpDir: filepath.Join(data, "content", "tmp")}
	statePath := s.fetchPath(url) + ".json"
	verified := func() int64 {
		b, err := os.ReadFile(statePath)
		if err != nil {
			return 0
		}
		var st downloadState
		if json.Unmarshal(b, &st) != nil {
			t.Fatalf("state file unreadable after a kill: %q", b)
		}
		return st.Verified
	}
	start := func() (*exec.Cmd, *strings.Builder, chan error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFetchHelperProcess$")
		cmd.Env = append(os.Environ(), "PREAU_FETCH_HELPER=1", "PREAU_DATA="+data, "PREAU_URL="+url, "PREAU_SIZE="+strconv.FormatInt(size, 10))
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			err := cmd.Wait()
			if err != nil && stderr.Len() > 0 {
				err = fmt.Errorf("%w: %s", err, stderr.String())
			}
			done <- err
		}()
		return cmd, &stdout, done
	}

	type mark struct {
		requests int   // requests the server had seen at the kill
		verified int64 // checkpoint recorded before the kill
	}
	var marks []mark
	began := time.Now()
	finished := false
	for k := 0; k < kills && !finished; k++ {
		cmd, _, done := start()
		// Kill once the checkpoint passes a random point of this slice of the
		// body, a random moment later (between two checkpoints, most often).
		slice := size / int64(kills+1)
		target := int64(k)*slice + rnd.Int64N(slice) + 1
		deadline := time.Now().Add(30 * time.Second)
	wait:
		for verified() < target {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("child %d: %v", k, err)
				}
				finished = true
				break wait
			case <-time.After(2 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("child %d: no checkpoint past %d in 30 s (at %d)", k, target, verified())
			}
		}
		if finished {
			break
		}
		time.Sleep(time.Duration(rnd.IntN(30)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		m := mark{requests: len(rs.served()), verified: verified()}
		marks = append(marks, m)
		t.Logf("kill %d: %d requests so far, checkpoint at %d bytes", k+1, m.requests, m.verified)
	}
	_, stdout, done := start()
	if err := <-done; err != nil {
		t.Fatalf("last child: %v", err)
	}
	var res FetchResult
	if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
		t.Fatalf("last child printed %q: %v", stdout.String(), err)
	}
	t.Logf("%d kills, %d cuts, %v in all; the last run resumed %d bytes", len(marks), cuts, time.Since(began), res.Resumed)

	if w := <-want; res.SHA256 != w || res.Size != size {
		t.Fatalf("FetchBlob() = %+v, want sha256 %s and %d bytes", res, w, size)
	}
	db := openTestDB(t, filepath.Join(data, "preau.db"))
	st, err := New(Config{Dir: filepath.Join(data, "content")}, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := st.Verify(context.Background())
	if err != nil || len(bad) != 0 {
		t.Fatalf("Verify() = %v, %v", bad, err)
	}
	if !st.blobExists(res.SHA256) {
		t.Fatalf("blob %s missing", res.SHA256)
	}
	log := rs.served()
	var total int64
	for _, s := range log {
		total += s.sent
	}
	for i, s := range log {
		for _, m := range marks {
			if i >= m.requests && s.start < m.verified {
				t.Errorf("request %d started at byte %d, below the checkpoint %d recorded before a kill", i+1, s.start, m.verified)
			}
		}
	}
	t.Logf("%d requests served %d bytes for a %d-byte file", len(log), total, size)
	if ents, _ := os.ReadDir(st.tmpDir); len(ents) != 0 {
		t.Errorf("Dir/tmp keeps %d files after success", len(ents))
	}
}
