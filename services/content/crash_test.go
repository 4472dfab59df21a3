package content

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelperProcess is not a test: the crash test runs the test binary
// again with PREAU_CONTENT_HELPER=1 to import a pack in a process it can
// kill.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("PREAU_CONTENT_HELPER") != "1" {
		t.Skip("helper process for TestImportSurvivesKill")
	}
	data, src := os.Getenv("PREAU_DATA"), os.Getenv("PREAU_SRC")
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
	info, err := s.Import(context.Background(), src, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Printf("copied %d\n", info.Copied)
	os.Exit(0)
}

// crashPack has 40 files, four of them large enough to take a while.
func crashPack() testPack {
	var items []testItem
	for i := range 40 {
		size := 20000 + i*997
		if i%10 == 9 {
			size = 1 << 20
		}
		items = append(items, testItem{
			id: fmt.Sprintf("item-%02d", i), title: fmt.Sprintf("Élément %d", i), kind: "document",
			files: []testFile{{fmt.Sprintf("f/%02d.bin", i), "application/octet-stream", pseudoRandom(size, uint64(i+100))}},
		})
	}
	return testPack{id: "crash", version: "1", items: items}
}

func runHelper(t *testing.T, data, src string, killAfter time.Duration) (exited bool, out string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "PREAU_CONTENT_HELPER=1", "PREAU_DATA="+data, "PREAU_SRC="+src)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if killAfter > 0 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("helper failed: %v: %s", err, stderr.String())
			}
			return true, stdout.String()
		case <-time.After(killAfter):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			return false, ""
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("helper failed: %v: %s", err, stderr.String())
	}
	return true, stdout.String()
}

// checkConsistent opens the data left by a killed import and checks the
// pack is either wholly there, with good blobs, or absent without a row.
func checkConsistent(t *testing.T, data string, p testPack) (present bool) {
	t.Helper()
	db, err := openDB(filepath.Join(data, "preau.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(Config{Dir: filepath.Join(data, "content")}, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, db: db, store: s}
	ctx := context.Background()
	switch n := e.count("content_packs"); n {
	case 0:
		for _, table := range []string{"content_items", "content_files", "content_search", "content_item_files"} {
			if c := e.count(table); c != 0 {
				t.Fatalf("pack absent but %s has %d rows", table, c)
			}
		}
	case 1:
		present = true
		if c := e.count("content_files"); c != len(p.files()) {
			t.Fatalf("pack present with %d files, want %d", c, len(p.files()))
		}
		if c := e.count("content_search"); c != len(p.items) {
			t.Fatalf("pack present with %d search rows, want %d", c, len(p.items))
		}
		probs, err := s.Fsck(ctx)
		if err != nil || len(probs) != 0 {
			t.Fatalf("Fsck() = %v, %v", probs, err)
		}
	default:
		t.Fatalf("%d packs", n)
	}
	bad, err := s.Verify(ctx)
	if err != nil || len(bad) != 0 {
		t.Fatalf("blobs not matching their names: %v, %v", bad, err)
	}
	return present
}

func blobInodes(t *testing.T, data string) map[string]uint64 {
	out := make(map[string]uint64)
	root := filepath.Join(data, "content", "blobs")
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			out[filepath.Base(p)] = fi.Sys().(*syscall.Stat_t).Ino
		}
		return nil
	})
	return out
}

func TestImportSurvivesKill(t *testing.T) {
	if os.Getenv("PREAU_CONTENT_HELPER") == "1" {
		t.Skip("inside the helper")
	}
	p := crashPack()
	work := t.TempDir()
	sources := []string{
		p.writeFolder(t, filepath.Join(work, "folder")),
		writeTar(t, filepath.Join(work, "p.tar"), p.entries(false), ""),
		writeTar(t, filepath.Join(work, "p.tar.zst"), p.entries(true), "zst"),
	}
	// Calibrate: how long a whole import takes in a helper.
	start := time.Now()
	calib := filepath.Join(work, "calib")
	os.MkdirAll(calib, 0o755)
	runHelper(t, calib, sources[0], 0)
	full := time.Since(start)
	t.Logf("a whole import in a helper process takes %v", full)

	// The loop stops at minTrials kills; the budget only caps a machine
	// so slow or loaded that they would take longer.
	budget, minTrials := 3*time.Minute, 50
	if testing.Short() {
		budget, minTrials = 5*time.Second, 10
	}
	if raceEnabled {
		minTrials = 15
	}
	deadline := time.Now().Add(budget)
	trials, rounds, present := 0, 0, 0
	for (trials < minTrials || rounds < len(sources)) && time.Now().Before(deadline) {
		src := sources[rounds%len(sources)]
		data := filepath.Join(work, "round-"+strconv.Itoa(rounds))
		os.MkdirAll(data, 0o755)
		rounds++
		completed := false
		for k := 0; k < 6 && !completed; k++ {
			delay := time.Duration(rand.Int64N(int64(full)*11/10)) + time.Millisecond
			completed, _ = runHelper(t, data, src, delay)
			trials++
			if checkConsistent(t, data, p) {
				present++
			}
		}
		// Resume to the end: the blobs already there are not written again.
		before := blobInodes(t, data)
		_, out := runHelper(t, data, src, 0)
		var copied int
		fmt.Sscanf(out, "copied %d", &copied)
		if want := len(p.files()) - len(before); copied != want {
			t.Errorf("round %d (%s): resumed import copied %d files, want %d (%d blobs were there)", rounds, filepath.Base(src), copied, want, len(before))
		}
		after := blobInodes(t, data)
		for h, ino := range before {
			if after[h] != ino {
				t.Errorf("round %d: blob %s was written again", rounds, h[:12])
			}
		}
		if !checkConsistent(t, data, p) {
			t.Errorf("round %d: pack absent after a complete import", rounds)
		}
		os.RemoveAll(data)
	}
	t.Logf("%d kills in %d rounds; pack found committed after %d of them", trials, rounds, present)
	if trials < minTrials {
		t.Errorf("only %d kill trials within %v, want %d", trials, budget, minTrials)
	}
}
