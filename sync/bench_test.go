package sync

// TestBenchSync is issue 4's benchmark, run by `make bench-sync`
// (bench/sync.sh): on the emulated uplink of the chaos test (2 Mbit/s,
// 300 ms RTT, 1 % loss, a 96 KiB modem buffer), the same files go to the
// same WebDAV server (rclone serve webdav) sent by preau (pupils'
// hand-ins, delivered by the outbox under the WAN budget) and by
// `rclone copy` (Debian's rclone: its default, which is 4 transfers, and
// --transfers 1), with the same link cuts at the same instants. A UDP ping
// train (one 160-byte packet every 100 ms, box → server and back) plays a
// teacher's call. It prints, for each tool: wall time, goodput as a share
// of the link rate, bytes on the wire per payload byte, files the server
// received more than once (and their bytes), files found wrong or extra
// on the server, and the ping train's RTT inflation over the idle link
// (median, p90) and its losses.
//
// Env: PREAU_BENCH_SYNC=1 runs it; PREAU_BENCH_SMALL (40), PREAU_BENCH_BIG
// (1 of 8 MB), PREAU_BENCH_CUTS (3 cuts of 5 s), PREAU_BENCH_WORKERS
// (preau's sync.workers, default the box's default), PREAU_BENCH_SEED.

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"preau/sync/internal/linkemu"
)

type benchRun struct {
	tool       string
	wall       time.Duration
	payload    int64
	wire       int64 // uplink bytes delivered by the link
	resentN    int   // files PUT more than once
	resentB    int64 // their bytes, once per extra PUT
	wrong      int   // files missing, wrong, duplicated or left over
	inflMed    time.Duration
	inflP90    time.Duration
	pingLoss   float64
	base       time.Duration
	cuts       int
	unfinished bool
}

func TestBenchSync(t *testing.T) {
	if os.Getenv("PREAU_BENCH_SYNC") != "1" {
		t.Skip("benchmark: make bench-sync (PREAU_BENCH_SYNC=1)")
	}
	linkemu.RequireRoot(t)
	chaosRequire(t, "rclone")
	seed := chaosSeed(t, "PREAU_BENCH_SEED")
	rng := rand.New(rand.NewPCG(seed, seed^0xbe4c))
	files := makeFiles(rng, envInt("PREAU_BENCH_SMALL", 40), envInt("PREAU_BENCH_BIG", 1), 8_000_000)
	total := totalBytes(files)
	ideal := time.Duration(float64(total) / chaosLinkBytesPerSec * float64(time.Second))
	// Cuts of 5 s at the same instants for every tool.
	var cutAt []time.Duration
	for i := range envInt("PREAU_BENCH_CUTS", 3) {
		cutAt = append(cutAt, ideal*time.Duration(15+25*i)/100)
	}
	t.Logf("%d files, %.1f MB: %v at the link's full rate; cuts of 5 s at %v", len(files), float64(total)/1e6,
		ideal.Round(time.Second), cutAt)
	bin := buildPreau(t)

	var runs []benchRun
	runs = append(runs, benchPreau(t, bin, seed, files, cutAt))
	if os.Getenv("PREAU_BENCH_ONLY") == "preau" {
		t.Logf("preau: %v, goodput %.0f%%, RTT+ median %v p90 %v", runs[0].wall.Round(100*time.Millisecond),
			100*float64(runs[0].payload)/chaosLinkBytesPerSec/runs[0].wall.Seconds(), runs[0].inflMed, runs[0].inflP90)
		return
	}
	runs = append(runs, benchRclone(t, seed, files, cutAt, "rclone copy (défaut, 4 transferts)"))
	runs = append(runs, benchRclone(t, seed, files, cutAt, "rclone copy --transfers 1", "--transfers", "1"))

	var b strings.Builder
	fmt.Fprintf(&b, "\nbench-sync: %d files, %.1f MB, link 2 Mbit/s, RTT 300 ms, loss 1 %%, %d cuts of 5 s\n",
		len(files), float64(total)/1e6, len(cutAt))
	fmt.Fprintf(&b, "%-36s %9s %8s %10s %16s %6s %14s %14s %7s\n", "tool", "wall", "goodput", "wire/data",
		"re-sent files/MB", "wrong", "RTT+ median", "RTT+ p90", "ping%")
	for _, r := range runs {
		wall := r.wall.Round(100 * time.Millisecond).String()
		if r.unfinished {
			wall = "unfinished"
		}
		fmt.Fprintf(&b, "%-36s %9s %7.0f%% %10.3f %9d/%6.2f %6d %14v %14v %6.1f%%\n", r.tool, wall,
			100*float64(r.payload)/chaosLinkBytesPerSec/r.wall.Seconds(), float64(r.wire)/float64(r.payload),
			r.resentN, float64(r.resentB)/1e6, r.wrong, r.inflMed.Round(time.Millisecond), r.inflP90.Round(time.Millisecond),
			100*r.pingLoss)
	}
	best := runs[1]
	for _, r := range runs[2:] {
		if r.wall < best.wall {
			best = r
		}
	}
	fmt.Fprintf(&b, "goodput preau / best rclone: %.2f× (target ≥ 1.2×); base RTT %v\n",
		best.wall.Seconds()/runs[0].wall.Seconds(), runs[0].base.Round(time.Millisecond))
	fmt.Print(b.String())
	t.Log(b.String())
	if runs[0].wrong > 0 {
		t.Errorf("preau: %d files wrong on the server", runs[0].wrong)
	}
}

// benchPing starts the foreground flow: an echo in the server namespace,
// a ping train from the box's.
func benchPing(t *testing.T, bed *chaosBed) *linkemu.PingTrain {
	t.Helper()
	echo, err := linkemu.ListenPacket(bed.Server, "udp4", netip.AddrPortFrom(bed.ServerAddr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go linkemu.ServeEcho(echo)
	c, err := linkemu.ListenPacket(bed.Box, "udp4", netip.AddrPortFrom(bed.BoxAddr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return linkemu.StartPingTrain(c, echo.LocalAddr(), 100*time.Millisecond, 160)
}

// benchCuts cuts the link for 5 s at each instant after start.
func benchCuts(bed *chaosBed, start time.Time, at []time.Duration, stop <-chan struct{}) <-chan int {
	done := make(chan int, 1)
	go func() {
		n := 0
		defer func() { bed.Link.Cut(false); done <- n }()
		for _, d := range at {
			select {
			case <-stop:
				return
			case <-time.After(time.Until(start.Add(d))):
			}
			bed.Link.Cut(true)
			n++
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Second):
			}
			bed.Link.Cut(false)
		}
	}()
	return done
}

// benchFinish fills in the link, ping and server figures of r.
func benchFinish(t *testing.T, r *benchRun, bed *chaosBed, pt *linkemu.PingTrain, idleFrom, start, end time.Time) {
	t.Helper()
	samples := pt.Stop(time.Second)
	idle, _ := linkemu.RTTs(samples, idleFrom, start)
	busy, lost := linkemu.RTTs(samples, start, end)
	if len(idle) > 0 {
		sort.Slice(idle, func(i, j int) bool { return idle[i] < idle[j] })
		r.base = idle[0]
	}
	if len(busy) > 0 {
		r.inflMed = linkemu.Percentile(busy, 50) - r.base
		r.inflP90 = linkemu.Percentile(busy, 90) - r.base
		r.pingLoss = float64(lost) / float64(len(busy)+lost)
	}
	r.wire = bed.Link.Stats().AB.Bytes
	// Files PUT more than once, from the server's request log: one folder
	// per file (a pupil's hand-in folder; rclone's source is laid out so).
	puts := map[string]int{}
	f, err := os.Open(bed.davLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	putRe := regexp.MustCompile(`INFO\s+: (/.*): PUT from`)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := putRe.FindStringSubmatch(sc.Text()); m != nil {
			puts[strings.TrimPrefix(path.Dir(m[1]), "/")]++
		}
	}
	for _, sf := range tree(t, bed.davDir) {
		if n := puts[path.Dir(sf.Path)]; n > 1 {
			r.resentN++
			r.resentB += int64(n-1) * sf.Size
		}
	}
}

func benchPreau(t *testing.T, bin string, seed uint64, files []handFile, cutAt []time.Duration) benchRun {
	t.Helper()
	r := benchRun{tool: "preau", payload: totalBytes(files)}
	bed := startChaosBed(t, seed, "INFO")
	pt := benchPing(t, bed)
	idleFrom := time.Now()
	box := newChaosBox(t, bin, bed, envInt("PREAU_BENCH_WORKERS", 0))
	box.start()
	id := box.newAssignment(max(1, 8+1))
	time.Sleep(3 * time.Second) // the idle link's RTT
	start := time.Now()
	stop := make(chan struct{})
	cuts := benchCuts(bed, start, cutAt, stop)
	if os.Getenv("PREAU_BENCH_TRACE") == "1" {
		go benchTrace(t, box, stop)
	}
	box.handInAll(id, files)
	ok := waitFor(20*time.Minute, 250*time.Millisecond, func() bool {
		n, _, st := box.progress()
		return n == len(files) && len(st.Outbox.Items) == 0
	})
	end := time.Now()
	close(stop)
	r.cuts = <-cuts
	r.wall, r.unfinished = end.Sub(start), !ok
	box.stop()
	r.wrong = len(checkExactlyOnce(t, bed.davDir, files))
	benchFinish(t, &r, bed, pt, idleFrom, start, end)
	rec := box.record()
	t.Logf("preau: %d items, %d delivered, %d verified, %d attempts, %d recoveries", rec.Items, rec.Delivered, rec.Verified,
		rec.Attempts, rec.Recoveries)
	return r
}

func benchRclone(t *testing.T, seed uint64, files []handFile, cutAt []time.Duration, name string, args ...string) benchRun {
	t.Helper()
	r := benchRun{tool: name, payload: totalBytes(files)}
	bed := startChaosBed(t, seed, "INFO")
	src := filepath.Join(t.TempDir(), "src")
	for i, f := range files {
		dir := filepath.Join(src, fmt.Sprintf("f%03d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	obscured, err := exec.Command("rclone", "obscure", chaosDavPass).Output()
	if err != nil {
		t.Fatal(err)
	}
	pt := benchPing(t, bed)
	idleFrom := time.Now()
	time.Sleep(3 * time.Second)
	logf, err := os.Create(filepath.Join(t.TempDir(), "rclone-copy.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	start := time.Now()
	stop := make(chan struct{})
	cuts := benchCuts(bed, start, cutAt, stop)
	cmd := append([]string{"rclone", "copy", src, ":webdav:", "--webdav-url", bed.davURL, "--webdav-user", chaosDavUser,
		"--webdav-pass", strings.TrimSpace(string(obscured)), "--config", filepath.Join(t.TempDir(), "rclone.conf"),
		"--log-level", "INFO"}, args...)
	p := startIn(t, bed.Box, logf, cmd...)
	ok := waitFor(20*time.Minute, 100*time.Millisecond, p.exited)
	end := time.Now()
	if !ok {
		p.signal(syscall.SIGKILL, 5*time.Second)
	}
	close(stop)
	r.cuts = <-cuts
	r.wall = end.Sub(start)
	r.unfinished = !ok || p.cmd.ProcessState.ExitCode() != 0
	if r.unfinished {
		out, _ := os.ReadFile(logf.Name())
		t.Logf("%s did not finish cleanly:\n%s", name, out)
	}
	// The same check as preau's, by file name.
	r.wrong = len(checkExactlyOnce(t, bed.davDir, files))
	benchFinish(t, &r, bed, pt, idleFrom, start, end)
	return r
}

// benchTrace logs the budget's view every second (PREAU_BENCH_TRACE=1).
func benchTrace(t *testing.T, box *chaosBox, stop <-chan struct{}) {
	re := regexp.MustCompile(`(?m)^preau_budget_(rate_bytes_per_second|queueing_delay_seconds)\{direction="up"\} (\S+)$`)
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Second):
		}
		resp, err := box.hc.Get(box.base() + "/metrics")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var line []string
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			line = append(line, m[1]+"="+m[2])
		}
		t.Log(strings.Join(line, " "))
	}
}
