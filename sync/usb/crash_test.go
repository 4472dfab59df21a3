package usb

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The crash tests run Export and Deliver in a child process (this test
// binary, re-executed) and kill it with SIGKILL at random instants, as a
// power cut or a yanked key would. PREAU_CHAOS=N sets the number of kills.

const helperEnv = "PREAU_USB_CRASH_HELPER"

// TestCrashHelper is the child: it exports (args: blobs dir, key dir) or
// delivers (args: bundle dir, destination, database folder).
func TestCrashHelper(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process of the crash tests")
	}
	args := filepath.SplitList(os.Getenv(helperEnv + "_ARGS"))
	c := newCourier(t, Config{Now: time.Now})
	ctx := context.Background()
	switch mode {
	case "export":
		b := &blobs{dir: args[0]}
		items := sampleItems(t, b, 24, 256<<10, 9)
		if _, err := c.Export(ctx, args[1], items, b.open, nil); err != nil {
			t.Fatal(err)
		}
	case "deliver":
		seen := NewSeenStore(openDB(t, args[2]), nil)
		if _, err := c.Deliver(ctx, args[0], FolderSink{Dir: args[1]}, seen, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func runHelper(t *testing.T, mode string, killAfter time.Duration, args ...string) (killed bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperEnv+"_ARGS="+strings.Join(args, string(filepath.ListSeparator)))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if killAfter > 0 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("helper %s failed before the kill: %v\n%s", mode, err, out)
			}
			return false
		case <-time.After(killAfter):
			cmd.Process.Kill()
			<-done
			return true
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("helper %s: %v\n%s", mode, err, out)
	}
	return false
}

func chaosTrials(t *testing.T, def int) int {
	if s := os.Getenv("PREAU_CHAOS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("PREAU_CHAOS=%q: want a positive count", s)
		}
		return n
	}
	if testing.Short() {
		return 3
	}
	return def
}

// TestCrashExport: whenever an export dies, what is left on the key is
// either a complete bundle that verifies or one without manifest.json,
// refused as incomplete: never a bundle that looks complete and is not.
func TestCrashExport(t *testing.T) {
	blobDir, key := t.TempDir(), t.TempDir()
	start := time.Now()
	runHelper(t, "export", 0, blobDir, t.TempDir())
	full := time.Since(start)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	trials := chaosTrials(t, 12)
	kills := 0
	for range trials {
		if runHelper(t, "export", time.Duration(rng.Int64N(int64(full)))+time.Millisecond, blobDir, key) {
			kills++
		}
		// Two exports in the same second get -2, -3… suffixes; keep names apart.
		time.Sleep(5 * time.Millisecond)
	}
	c := newCourier(t, Config{})
	entries, err := os.ReadDir(key)
	if err != nil {
		t.Fatal(err)
	}
	complete, incomplete := 0, 0
	for _, e := range entries {
		_, err := c.Verify(context.Background(), filepath.Join(key, e.Name()), nil)
		var be *BundleError
		switch {
		case err == nil:
			complete++
		case errors.As(err, &be) && be.Code == CodeIncomplete:
			incomplete++
		default:
			t.Errorf("%s: %v (want a complete bundle or one refused as incomplete)", e.Name(), err)
		}
	}
	t.Logf("%d trials, %d kills: %d complete bundles, %d incomplete, %d killed before creating a folder", trials, kills, complete, incomplete, trials-len(entries))
	if complete < trials-kills {
		t.Errorf("%d complete bundles, want at least the %d exports not killed", complete, trials-kills)
	}
}

// TestCrashDeliver kills deliveries of one bundle at random instants, then
// delivers to the end: every item is at the destination exactly once with
// its hash, whatever instant the kills hit.
func TestCrashDeliver(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	items := sampleItems(t, b, 24, 256<<10, 10)
	bundle, err := newCourier(t, Config{}).Export(ctx, t.TempDir(), items, b.open, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	runHelper(t, "deliver", 0, bundle.Dir, t.TempDir(), t.TempDir())
	full := time.Since(start)

	dest, dbDir := t.TempDir(), t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	trials := chaosTrials(t, 12)
	kills := 0
	for range trials {
		if runHelper(t, "deliver", time.Duration(rng.Int64N(int64(full)))+time.Millisecond, bundle.Dir, dest, dbDir) {
			kills++
		}
	}
	runHelper(t, "deliver", 0, bundle.Dir, dest, dbDir)

	got := delivered(t, dest)
	leftovers := 0
	for name := range got {
		if strings.HasPrefix(filepath.Base(name), ".preau-tmp-") {
			leftovers++
			delete(got, name)
		}
	}
	if d := diffMaps(got, wantDelivered(items)); d != "" {
		t.Errorf("destination after %d kills:\n%s", kills, d)
	}
	seen := NewSeenStore(openDB(t, dbDir), nil)
	for _, it := range items {
		if ok, err := seen.Seen(ctx, it.Key); err != nil || !ok {
			t.Errorf("key %s not marked as delivered (%v)", it.Key, err)
		}
	}
	t.Logf("%d trials, %d kills, %d temporary files left by them", trials, kills, leftovers)
}
