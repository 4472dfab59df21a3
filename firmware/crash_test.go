package firmware

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"preau/firmware/bootenv"
	"preau/firmware/internal/powercut"
)

// TestHelperProcess is not a test: the crash tests run the test binary
// again with PREAU_FW_HELPER=1 to play preau's start on a box — Boot,
// then Apply (or ApplyFile) — in a process they can kill.
//
//	PREAU_FW_BOX      the box folder
//	PREAU_FW_REPO     repository URL
//	PREAU_FW_NOW      the clock (RFC 3339)
//	PREAU_FW_FILE     apply this bundle instead of the repository
//	PREAU_FW_HEALTH   ok | fail:CHECK | hang
//	PREAU_FW_CRASH    POINT[#N]: SIGKILL itself the Nth time POINT is reached
//	PREAU_FW_FAIL     POINT[#N] or POINT*: the side effect at POINT fails (once, or always)
//	PREAU_FW_POWERCUT journal folder: write slots and boot files through powercut
//	PREAU_FW_CHECKPOINT checkpoint interval in bytes
func TestHelperProcess(t *testing.T) {
	if os.Getenv("PREAU_FW_HELPER") != "1" {
		t.Skip("helper process for the crash tests")
	}
	dir := os.Getenv("PREAU_FW_BOX")
	now, err := time.Parse(time.RFC3339, os.Getenv("PREAU_FW_NOW"))
	if err != nil {
		fmt.Println("bad PREAU_FW_NOW:", err)
		os.Exit(2)
	}
	o := engineOpts{repoURL: os.Getenv("PREAU_FW_REPO"), now: now}
	if n, err := strconv.ParseInt(os.Getenv("PREAU_FW_CHECKPOINT"), 10, 64); err == nil {
		o.cfg = func(c *Config) { c.CheckpointBytes = n }
	}
	if j := os.Getenv("PREAU_FW_POWERCUT"); j != "" {
		pc, err := powercut.New(j)
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		o.fs = pc
	}
	crash, crashN := splitPoint(os.Getenv("PREAU_FW_CRASH"))
	fail, failN := splitPoint(os.Getenv("PREAU_FW_FAIL"))
	counts := map[string]int{}
	mark := func() { os.WriteFile(filepath.Join(dir, "injected"), []byte("1"), 0o644) }
	o.hook = func(p string) error {
		counts[p]++
		if p == crash && counts[p] == crashN {
			mark()
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		if p == fail && (failN == 0 || counts[p] == failN) {
			mark()
			return fmt.Errorf("injected failure at %s", p)
		}
		return nil
	}
	e, db, err := buildEngine(dir, o)
	if err != nil {
		fmt.Println("build engine:", err)
		os.Exit(2)
	}
	defer db.Close()
	ctx := context.Background()
	h := &health{mode: os.Getenv("PREAU_FW_HEALTH")}
	if err := e.Boot(ctx, h); err != nil {
		fmt.Println("boot:", errCode(err))
		os.Exit(0)
	}
	if f := os.Getenv("PREAU_FW_FILE"); f != "" {
		err = e.ApplyFile(ctx, f, nil)
	} else {
		err = e.Apply(ctx, nil)
	}
	if os.Getenv("PREAU_FW_DEBUG") != "" && err != nil {
		fmt.Fprintln(os.Stderr, "apply error:", err)
	}
	fmt.Println("apply:", errCode(err))
	os.Exit(0)
}

// splitPoint parses POINT, POINT#N or POINT* (N = 0: every time).
func splitPoint(s string) (string, int) {
	if p, ok := strings.CutSuffix(s, "*"); ok {
		return p, 0
	}
	if p, n, ok := strings.Cut(s, "#"); ok {
		v, _ := strconv.Atoi(n)
		return p, v
	}
	return s, 1
}

// machine runs preau on a box in child processes, reboots it through
// the fake firmware when asked, and plays crashes and power cuts.
type machine struct {
	box    *box
	url    string
	now    time.Time
	health string
	file   string
	log    []string
}

// run starts preau once; it reports whether the process was killed.
func (m *machine) run(t *testing.T, extra ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PREAU_FW_HELPER=1", "PREAU_FW_BOX="+m.box.dir, "PREAU_FW_REPO="+m.url,
		"PREAU_FW_NOW="+m.now.Format(time.RFC3339), "PREAU_FW_HEALTH="+m.health, "PREAU_FW_FILE="+m.file)
	cmd.Env = append(cmd.Env, extra...)
	var out bytes.Buffer
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if errb.Len() > 0 && os.Getenv("PREAU_FW_DEBUG") != "" {
		t.Logf("child stderr: %s", errb.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			m.log = append(m.log, "killed")
			return out.String(), true
		}
		t.Fatalf("helper: %v\n%s", err, out.String())
	}
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out.String())
	}
	s := strings.TrimSpace(out.String())
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		s = s[i+1:]
	}
	m.log = append(m.log, s)
	return s, false
}

// dbRow reads the update state the way a technician's tool would.
func (m *machine) dbRow(t *testing.T) row {
	t.Helper()
	db, err := openDB(m.box.path("preau.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e := &Engine{db: db}
	r, err := e.load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (m *machine) history(t *testing.T) []Attempt {
	t.Helper()
	db, err := openDB(m.box.path("preau.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h, err := (&Engine{db: db}).History(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// inject describes one fault.
type inject struct {
	point string // POINT[#N]
	mode  string // error, error-always, kill, powercut
}

// live plays the box's life until the update settles: preau starts,
// reboots when asked, crashes and power cuts as injected.
func (m *machine) live(t *testing.T, in inject) row {
	t.Helper()
	journal := filepath.Join(t.TempDir(), "journal")
	for step := 0; step < 40; step++ {
		var env []string
		_, injected := os.Stat(m.box.path("injected"))
		pending := injected != nil || in.mode == "error-always"
		if pending && in.point != "" {
			switch in.mode {
			case "error":
				env = append(env, "PREAU_FW_FAIL="+in.point)
			case "error-always":
				p, _ := splitPoint(in.point)
				env = append(env, "PREAU_FW_FAIL="+p+"*")
			case "kill":
				env = append(env, "PREAU_FW_CRASH="+in.point)
			case "powercut":
				env = append(env, "PREAU_FW_CRASH="+in.point, "PREAU_FW_POWERCUT="+journal)
			}
		}
		_, killed := m.run(t, env...)
		if os.Getenv("PREAU_FW_DEBUG") != "" {
			r := m.dbRow(t)
			t.Logf("%v | state %s settled %v armed %q asked %v trial %q last %q entries %d", m.log[len(m.log)-1], r.State, r.Settled, r.ArmedBoot, r.RebootAsked, r.TrialBoot, r.LastCheck, r.Entries)
		}
		if killed {
			if in.mode == "powercut" {
				if err := powercut.Cut(journal); err != nil {
					t.Fatal(err)
				}
				m.log = append(m.log, "power cut, boot "+m.box.boot(t, false))
			}
			continue
		}
		rebooted := false
		if asked, try := m.box.rebootAsked(); asked {
			m.log = append(m.log, "reboot, boot "+m.box.boot(t, try))
			rebooted = true
		}
		// Stop at the end of the first attempt: what the box does next
		// (Serve's next check) is not this case's business.
		r := m.dbRow(t)
		if atRest(r.State, r.Settled) && r.State != StateIdle {
			if rebooted {
				// The box starts again after the rollback reboot.
				m.run(t)
			}
			return r
		}
	}
	t.Fatalf("the update never settled: %v", m.log)
	return row{}
}

// crashPoints are where the engine is killed, cut or fails: before and
// after the side effect of every state.
var crashPoints = []string{
	"downloading:before", "downloading:checkpoint#2", "downloading:after",
	"verified:before", "verified:after",
	"written:before", "written:after",
	"trying:before", "trying:after",
	"trial:health",
	"commit:before", "commit:after",
}

// TestCrashTable: for every state × {error, kill -9, power cut}, before
// and after its side effect, the update ends committed or rolled back
// with a reason, the boot loader starts a committed slot, and a slot that
// was never committed is never a fallback.
func TestCrashTable(t *testing.T) {
	if testing.Short() {
		t.Skip("crash table: -short")
	}
	type tcase struct {
		kind   kind
		health string
		in     inject
		want   map[State]string // acceptable end states and their reason codes
	}
	var cases []tcase
	committed := map[State]string{StateCommitted: ""}
	for _, k := range []kind{systemdBoot, piTryboot} {
		for _, p := range crashPoints {
			for _, mode := range []string{"error", "kill", "powercut"} {
				want := committed
				if k == piTryboot && mode == "powercut" && (p == "trial:health" || p == "commit:before") {
					// A power cut during the Pi's single try boots the
					// committed slot: the trial is over.
					want = map[State]string{StateRolledBack: map[string]string{"trial:health": CodeTryNotConfirmed, "commit:before": CodeCommitLost}[p]}
				}
				cases = append(cases, tcase{k, "ok", inject{p, mode}, want})
			}
		}
		for _, p := range []string{"rollback:before", "rollback:after"} {
			for _, mode := range []string{"error", "kill", "powercut"} {
				cases = append(cases, tcase{k, "fail:portal", inject{p, mode}, map[State]string{StateRolledBack: CodeHealthPortal}})
			}
		}
		for _, p := range []string{"downloading:before", "verified:before", "written:before"} {
			cases = append(cases, tcase{k, "ok", inject{p, "error-always"}, map[State]string{StateFailed: CodeReentries}})
		}
		cases = append(cases, tcase{k, "ok", inject{"trying:before", "error-always"}, map[State]string{StateRolledBack: CodeReentries}})
		cases = append(cases, tcase{k, "ok", inject{"trial:health", "error-always"}, map[State]string{StateRolledBack: CodeTrialRestarts}})
		cases = append(cases, tcase{k, "hang", inject{}, map[State]string{StateRolledBack: CodeHealthReady}})
	}
	repos := map[kind]*testRepo{}
	for _, k := range []kind{systemdBoot, piTryboot} {
		r := newTestRepo(t)
		r.sign(t, k, "1.1", 300<<10)
		r.serve(t)
		repos[k] = r
	}
	now := nightAfter(time.Now())
	for _, c := range cases {
		name := fmt.Sprintf("%s/%s/%s/%s", c.kind, c.health, c.in.point, c.in.mode)
		t.Run(name, func(t *testing.T) {
			repo := repos[c.kind]
			m := &machine{box: newBox(t, c.kind, filepath.Join(repo.dir, "metadata", "1.root.json")), url: repo.srv.URL, now: now, health: c.health}
			r := m.live(t, c.in)
			wantReason, ok := c.want[r.State]
			if !ok || r.Reason.Code != wantReason {
				t.Fatalf("ended %s (%s: %s), want one of %v\nlife: %v", r.State, r.Reason.Code, r.Reason.EN, c.want, m.log)
			}
			if c.in.point != "" {
				if _, err := os.Stat(m.box.path("injected")); err != nil {
					t.Fatalf("the fault at %s was never injected; life: %v", c.in.point, m.log)
				}
			}
			checkSettled(t, m, repo, r)
		})
	}
}

// checkSettled checks what must hold once an update settled.
func checkSettled(t *testing.T, m *machine, repo *testRepo, r row) {
	t.Helper()
	hist := m.history(t)
	if len(hist) != 1 || hist[0].Result != string(r.State) || hist[0].Reason.Code != r.Reason.Code {
		t.Fatalf("history = %+v, want one attempt ending %s; life: %v", hist, r.State, m.log)
	}
	if r.State != StateCommitted && (hist[0].Reason.FR == "" || hist[0].Reason.EN == "") {
		t.Fatalf("no reason text: %+v", hist[0].Reason)
	}
	want := bootenv.SlotA
	if r.State == StateCommitted {
		want = bootenv.SlotB
		got, err := os.ReadFile(m.box.path("slots", "root-b.img"))
		if err != nil || !bytes.Equal(got, mustRead(t, repo.target(t, ".root.img"))) {
			t.Fatalf("slot b differs from the signed image")
		}
	}
	// Whatever reboots come now — plain, or a stray tryboot — the firmware
	// starts the committed slot, without counting.
	for _, try := range []bool{false, true, false} {
		if got := m.box.boot(t, try); got != want {
			t.Fatalf("firmware started %s (tryboot %v), want %s; life: %v", got, try, want, m.log)
		}
	}
	if m.box.kind == systemdBoot {
		des, _ := os.ReadDir(m.box.path("esp", "loader", "entries"))
		for _, de := range des {
			if strings.Contains(de.Name(), "+") || strings.HasPrefix(de.Name(), ".") {
				t.Fatalf("entry %s left behind", de.Name())
			}
			if r.State != StateCommitted && strings.HasPrefix(de.Name(), "preau-b") {
				t.Fatalf("never-committed slot b still has entry %s", de.Name())
			}
		}
	}
}
