package assignments

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestHelperProcess is not a test: the crash test runs the test binary
// again with PREAU_ASSIGNMENTS_HELPER=1 to serve hand-ins from a process it
// can kill -9.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("PREAU_ASSIGNMENTS_HELPER") != "1" {
		t.Skip("helper process for TestHandInsSurviveKill")
	}
	data := os.Getenv("PREAU_DATA")
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	db, err := openDB(filepath.Join(data, "preau.db"))
	if err != nil {
		fail(err)
	}
	blobs := &diskBlobs{dir: filepath.Join(data, "blobs")}
	svc, err := New(Config{Destinations: testDestinations, OnHandIn: func(context.Context, HandIn) {}}, db, blobs, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		fail(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	go svc.Serve(context.Background())
	fmt.Printf("addr %s\n", l.Addr())
	fail(http.Serve(l, svc.Handler()))
}

// sent is a hand-in a pupil got a receipt for, with the files it sent.
type sent struct {
	code  string
	files map[string]string // sha256 → name sent
}

// TestHandInsSurviveKill kills the server with SIGKILL at random instants
// while pupils hand in work, again and again, then checks the promise of
// the receipt: every receipt a pupil was shown names a committed hand-in
// whose files are all stored and read back with the right bytes; no
// committed hand-in lacks a blob; after a restart, interrupted uploads are
// released and every hand-in has been given to OnHandIn.
func TestHandInsSurviveKill(t *testing.T) {
	if os.Getenv("PREAU_ASSIGNMENTS_HELPER") == "1" {
		t.Skip("inside the helper")
	}
	data := t.TempDir()
	blobs := newDiskBlobs(t, filepath.Join(data, "blobs"))
	db, err := openDB(filepath.Join(data, "preau.db"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Destinations: testDestinations}, db, blobs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := svc.CreateTeacher(ctx, "mmartin", "Mme Martin", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	var teacherID int64
	db.QueryRow("SELECT id FROM assignments_teachers").Scan(&teacherID)
	id, err := svc.createAssignment(ctx, assignment{TeacherID: teacherID, Title: "Crash", Class: "CM2-A",
		Due: time.Now().Add(24 * time.Hour), Destination: "usb", Kinds: AllKinds, MaxFileBytes: DefaultMaxFileBytes})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	budget, minKills := 10*time.Second, 20
	if testing.Short() {
		budget, minKills = 4*time.Second, 6
	}
	if raceEnabled {
		minKills /= 2
	}
	var receipts []sent
	deadline := time.Now().Add(budget)
	kills := 0
	for kills < minKills || time.Now().Before(deadline) {
		if time.Now().After(deadline.Add(budget)) {
			break
		}
		got := crashRound(t, data, id, time.Duration(rand.Int64N(int64(400*time.Millisecond)))+20*time.Millisecond)
		receipts = append(receipts, got...)
		kills++
		checkCommitted(t, data, receipts)
	}
	t.Logf("%d kills, %d receipts shown to pupils", kills, len(receipts))
	if len(receipts) == 0 {
		t.Fatal("no hand-in completed between kills: the test proves nothing")
	}

	// A last start: Serve hands pending hand-ins to the hook and releases
	// interrupted uploads.
	db, err = openDB(filepath.Join(data, "preau.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var interrupted, pending int
	db.QueryRow("SELECT COUNT(*) FROM assignments_uploads").Scan(&interrupted)
	db.QueryRow("SELECT COUNT(*) FROM assignments_handins WHERE notified_at IS NULL").Scan(&pending)
	t.Logf("before the last start: %d interrupted uploads, %d hand-ins whose hook did not return", interrupted, pending)
	cmd, _ := startHelper(t, data)
	waitFor(t, func() bool {
		var uploads, pending int
		db.QueryRow("SELECT COUNT(*) FROM assignments_uploads").Scan(&uploads)
		db.QueryRow("SELECT COUNT(*) FROM assignments_handins WHERE notified_at IS NULL").Scan(&pending)
		return uploads == 0 && pending == 0
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	owners := map[string]bool{}
	rows, _ := db.Query("SELECT blob_owner FROM assignments_handins")
	for rows.Next() {
		var o string
		rows.Scan(&o)
		owners[o] = true
	}
	rows.Close()
	for _, o := range blobs.owners(t) {
		if !owners[o] {
			t.Errorf("blobs pinned by %s, which is no hand-in, after the restart", o)
		}
	}
}

func startHelper(t *testing.T, data string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "PREAU_ASSIGNMENTS_HELPER=1", "PREAU_DATA="+data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "addr ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper did not start: %q %v: %s", line, err, stderr.String())
	}
	go io.Copy(io.Discard, out)
	return cmd, strings.TrimSpace(strings.TrimPrefix(line, "addr "))
}

// crashRound starts a server, lets four pupils hand in work in a loop and
// kills the server after delay. It returns the receipts the pupils got.
func crashRound(t *testing.T, data string, id int64, delay time.Duration) []sent {
	cmd, addr := startHelper(t, data)
	base := "http://" + addr
	var mu sync.Mutex
	var got []sent
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s, ok := pupilHandsIn(t, base, id, w, i)
				if !ok {
					return // the server is gone
				}
				mu.Lock()
				got = append(got, s)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(delay)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	close(stop)
	wg.Wait()
	return got
}

// pupilHandsIn sends one hand-in with one to three files of random sizes
// (up to 400 kB, so that writes are under way when the kill comes).
func pupilHandsIn(t *testing.T, base string, id int64, worker, i int) (sent, bool) {
	c := &client{t: t, base: base, hc: &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	jar := newJar()
	c.hc.Jar = jar
	path := fmt.Sprintf("/devoirs/devoir/%d", id)
	resp, err := c.hc.Get(base + path)
	if err != nil {
		return sent{}, false
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfPattern.FindSubmatch(b)
	if m == nil {
		return sent{}, false
	}
	s := sent{files: map[string]string{}}
	parts := append([]part{field("csrf", string(m[1]))}, pupil("Élève", "K")...)
	for f := range 1 + rand.IntN(3) {
		data := append([]byte("%PDF-1.4\n"), make([]byte, rand.IntN(400_000))...)
		copy(data[9:], fmt.Sprintf("worker %d hand-in %d file %d %d", worker, i, f, rand.Int64()))
		sum := sha256.Sum256(data)
		name := fmt.Sprintf("f%d.pdf", f)
		s.files[hex.EncodeToString(sum[:])] = name
		parts = append(parts, filePart("fichiers", name, data))
	}
	ctype, body := multipartBody(t, parts)
	req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	resp, err = c.hc.Do(req)
	if err != nil {
		return sent{}, false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	loc := codeInLocation.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc == nil {
		t.Errorf("hand-in answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
		return sent{}, false
	}
	s.code = loc[1]
	return s, true
}

// checkCommitted opens what the killed server left and checks every
// receipt, then every committed hand-in.
func checkCommitted(t *testing.T, data string, receipts []sent) {
	t.Helper()
	db, err := openDB(filepath.Join(data, "preau.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blobs := &diskBlobs{dir: filepath.Join(data, "blobs")}
	svc, err := New(Config{Destinations: testDestinations}, db, blobs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	all, err := svc.loadHandIns(context.Background(), "1")
	if err != nil {
		t.Fatal(err)
	}
	byCode := map[string]HandIn{}
	for _, h := range all {
		byCode[h.Code] = h
		for _, f := range h.Files {
			b, err := os.ReadFile(filepath.Join(data, "blobs", "blobs", f.SHA256))
			sum := sha256.Sum256(b)
			if err != nil || hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(b)) != f.Size {
				t.Fatalf("hand-in %s: file %s unreadable or corrupt (%v)", h.Code, f.Name, err)
			}
		}
	}
	for _, s := range receipts {
		h, ok := byCode[s.code]
		if !ok {
			t.Fatalf("receipt %s was shown but its hand-in is not in the database", s.code)
		}
		if len(h.Files) != len(s.files) {
			t.Fatalf("receipt %s: %d files committed, %d sent", s.code, len(h.Files), len(s.files))
		}
		for _, f := range h.Files {
			if s.files[f.SHA256] != f.Name {
				t.Fatalf("receipt %s: committed file %s (%s) was not sent", s.code, f.Name, f.SHA256[:12])
			}
		}
	}
}
