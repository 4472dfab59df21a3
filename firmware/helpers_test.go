package firmware

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"preau/firmware/bootenv"
	"preau/firmware/release"
)

// openDB opens a box database as appliance does and applies the
// migrations not applied yet (PRAGMA user_version).
func openDB(path string) (*sql.DB, error) {
	// '#' and '?' would end the path of the URI (test names hold '#').
	esc := strings.NewReplacer("%", "%25", "#", "%23", "?", "%3F").Replace(path)
	db, err := sql.Open("sqlite3", "file:"+esc+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000&_synchronous=NORMAL&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	var have int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&have); err != nil {
		db.Close()
		return nil, err
	}
	for _, m := range Migrations() {
		if m.Version <= have {
			continue
		}
		if _, err := db.Exec(m.SQL); err != nil {
			db.Close()
			return nil, fmt.Errorf("migration %d: %w", m.Version, err)
		}
		if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, m.Version)); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// imageBytes is a test slot image: a header naming its version, then
// pseudo-random bytes.
func imageBytes(version string, size int, seed uint64) []byte {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	copy(b, "PREAU-IMAGE "+version+"\n")
	return b
}

// imageVersion reads the version header of a slot image.
func imageVersion(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 80)
	n, _ := io.ReadFull(f, buf)
	s, ok := strings.CutPrefix(string(buf[:n]), "PREAU-IMAGE ")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(s, "\n")
	return v
}

// testRepo is a signed repository built with the release tool.
type testRepo struct {
	dir  string // repository
	keys string
	srv  *httptest.Server
}

func runRelease(t testing.TB, args ...string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := release.Run(args, nil, &out, &errb); code != 0 {
		t.Fatalf("preau release %s: exit %d: %s%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
}

func newTestRepo(t testing.TB) *testRepo {
	t.Helper()
	dir := t.TempDir()
	r := &testRepo{dir: filepath.Join(dir, "repo"), keys: filepath.Join(dir, "keys")}
	runRelease(t, "keygen", "--keys", r.keys)
	runRelease(t, "init", "--keys", r.keys, "--repo", r.dir)
	return r
}

// kind is the boot environment of a test box.
type kind string

const (
	systemdBoot kind = "systemd-boot"
	piTryboot   kind = "pi"
)

// sign publishes a release of version with images of the given sizes
// for a box of kind k.
func (r *testRepo) sign(t testing.TB, k kind, version string, rootSize int) {
	t.Helper()
	src := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := []string{"sign", "--keys", r.keys, "--repo", r.dir, "--version", version, "--quiet",
		"--part", "root=" + write("root.img", imageBytes(version, rootSize, 1))}
	if k == piTryboot {
		args = append(args, "--part", "boot@a="+write("boot-a.img", []byte("boot a "+version+" preau.slot=a")),
			"--part", "boot@b="+write("boot-b.img", []byte("boot b "+version+" preau.slot=b")))
	} else {
		args = append(args, "--part", "linux="+write("linux", imageBytes("kernel-"+version, 16<<10, 2)))
	}
	runRelease(t, args...)
}

// serve serves the repository over HTTP on loopback.
func (r *testRepo) serve(t testing.TB) string {
	t.Helper()
	if r.srv == nil {
		r.srv = httptest.NewServer(http.FileServer(http.Dir(r.dir)))
		t.Cleanup(r.srv.Close)
	}
	return r.srv.URL
}

// box is a simulated machine: an ESP (or the Pi's autoboot.txt), slot
// files, the kernel command line and boot id the fake firmware writes.
type box struct {
	dir  string
	kind kind
}

func (b *box) path(p ...string) string { return filepath.Join(append([]string{b.dir}, p...)...) }

func newBox(t testing.TB, k kind, trustedRoot string) *box {
	t.Helper()
	b := &box{dir: t.TempDir(), kind: k}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mk := func(p string, data []byte) {
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, data, 0o644))
	}
	mk(b.path("kind"), []byte(k))
	mk(b.path("slots", "root-a.img"), imageBytes("1.0", 64<<10, 9))
	if k == piTryboot {
		mk(b.path("slots", "boot-a.img"), []byte("boot a 1.0 preau.slot=a"))
		mk(b.path("autoboot.txt"), []byte("[all]\ntryboot_a_b=1\nboot_partition=2\n"))
	} else {
		mk(b.path("esp", "preau-a", "linux"), []byte("kernel 1.0"))
		mk(b.path("esp", "loader", "loader.conf"), []byte("timeout 0\ndefault preau-*\n"))
		mk(b.path("esp", "loader", "entries", "preau-a.conf"), []byte("title Préau 1.0 (A)\nsort-key preau\nversion 1.0\nlinux /preau-a/linux\noptions root=PARTLABEL=preau-root-a ro preau.slot=a\n"))
	}
	root, err := os.ReadFile(trustedRoot)
	must(err)
	mk(b.path("trusted-root.json"), root)
	b.boot(t, false)
	return b
}

// boot starts the machine through its fake firmware; tryboot is the
// one-shot flag of the reboot that led here. It returns the slot.
func (b *box) boot(t testing.TB, tryboot bool) string {
	t.Helper()
	var slot, cmdline string
	if b.kind == piTryboot {
		s, _, err := (&bootenv.FakePi{Autoboot: b.path("autoboot.txt")}).Boot(tryboot)
		if err != nil {
			t.Fatal(err)
		}
		slot, cmdline = s, "console=tty1 preau.slot="+s
	} else {
		e, err := (&bootenv.FakeSystemdBoot{ESP: b.path("esp")}).Boot()
		if err != nil {
			t.Fatal(err)
		}
		cmdline = e.Options
		slot, _ = bootenv.SlotFromCmdline(e.Options)
	}
	id := make([]byte, 16)
	crand.Read(id)
	if err := os.WriteFile(b.path("cmdline"), []byte(cmdline+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.path("boot_id"), []byte(hex.EncodeToString(id)), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(b.path("reboot"))
	return slot
}

// rebootAsked returns whether the engine asked for a reboot, and with
// the tryboot flag.
func (b *box) rebootAsked() (asked, tryboot bool) {
	s, err := os.ReadFile(b.path("reboot"))
	if err != nil {
		return false, false
	}
	return true, strings.TrimSpace(string(s)) == "tryboot"
}

func (b *box) booted() string {
	s, _ := os.ReadFile(b.path("cmdline"))
	slot, _ := bootenv.SlotFromCmdline(string(s))
	return slot
}

// fakeClock starts at a fixed instant; Sleep advances it at once.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return nil
}

// nightAfter is the next 02:00 in Paris after t: inside the default
// maintenance window.
func nightAfter(t time.Time) time.Time {
	loc, _ := time.LoadLocation("Europe/Paris")
	lt := t.In(loc)
	n := time.Date(lt.Year(), lt.Month(), lt.Day(), 2, 0, 0, 0, loc)
	if !n.After(t) {
		n = n.AddDate(0, 0, 1)
	}
	return n
}

// health is a fake local health gate.
type health struct {
	mode  string // ok, fail:<check>, hang, migrating
	calls int
	mu    sync.Mutex
}

func (h *health) check(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	switch {
	case h.mode == "hang" && name == "ready":
		return errors.New("READY=1 not sent")
	case h.mode == "fail:"+name:
		return fmt.Errorf("%s check failed", name)
	case h.mode == "migrating" && name == "migrations" && h.calls < 160:
		return fmt.Errorf("migrating content: %w", ErrStillWorking)
	case h.mode == "migrating" && name == "ready" && h.calls < 160:
		return errors.New("READY=1 not sent yet")
	}
	return nil
}

func (h *health) Ready(context.Context) error         { return h.check("ready") }
func (h *health) Migrated(context.Context) error      { return h.check("migrations") }
func (h *health) PortalAnswers(context.Context) error { return h.check("portal") }
func (h *health) ConfigValid(context.Context) error   { return h.check("config") }

// engineOpts configure buildEngine.
type engineOpts struct {
	repoURL string
	now     time.Time
	fs      bootenv.FS
	hook    func(string) error
	extend  func(time.Duration)
	log     *slog.Logger
	cfg     func(*Config)
}

// buildEngine builds the engine of box dir as appliance would at start.
func buildEngine(dir string, o engineOpts) (*Engine, *sql.DB, error) {
	b := &box{dir: dir}
	k, err := os.ReadFile(b.path("kind"))
	if err != nil {
		return nil, nil, err
	}
	b.kind = kind(k)
	fsys := o.fs
	if fsys == nil {
		fsys = bootenv.OS{}
	}
	parts := map[string]bootenv.SlotPaths{"root": {A: b.path("slots", "root-a.img"), B: b.path("slots", "root-b.img")}}
	var be BootEnv
	if b.kind == piTryboot {
		parts["boot"] = bootenv.SlotPaths{A: b.path("slots", "boot-a.img"), B: b.path("slots", "boot-b.img")}
		be, err = bootenv.NewTryboot(bootenv.TrybootConfig{Autoboot: b.path("autoboot.txt"), FS: fsys})
	} else {
		parts["linux"] = bootenv.SlotPaths{A: b.path("esp", "preau-a", "linux"), B: b.path("esp", "preau-b", "linux")}
		be, err = bootenv.NewSystemdBoot(bootenv.SystemdBootConfig{ESP: b.path("esp"), Initrd: bootenv.SlotPaths{A: "-", B: "-"}, FS: fsys})
	}
	if err != nil {
		return nil, nil, err
	}
	slots, err := bootenv.NewSlots(bootenv.SlotsConfig{Parts: parts, Cmdline: b.path("cmdline"), FS: fsys})
	if err != nil {
		return nil, nil, err
	}
	booted, err := slots.Booted()
	if err != nil {
		return nil, nil, err
	}
	version := imageVersion(b.path("slots", "root-"+booted+".img"))
	db, err := openDB(b.path("preau.db"))
	if err != nil {
		return nil, nil, err
	}
	cfg := Config{
		RepositoryURL: o.repoURL, TrustedRoot: b.path("trusted-root.json"), StateDir: b.path("state"),
		Channel: "stable", Arch: "x86_64", Version: version, HealthTimeout: 30 * time.Second,
		CheckInterval: -1, CheckpointBytes: 64 << 10,
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	log := o.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := o.now
	if now.IsZero() {
		now = nightAfter(time.Now())
	}
	e, err := New(cfg, db, Deps{
		HTTP: http.DefaultClient, Slots: slots, BootEnv: be, Clock: &fakeClock{now: now}, Log: log,
		Reboot: func(ctx context.Context, oneShot bool) error {
			flag := "normal"
			if oneShot {
				flag = "tryboot"
			}
			return os.WriteFile(b.path("reboot"), []byte(flag), 0o644)
		},
		BootID: func() (string, error) {
			s, err := os.ReadFile(b.path("boot_id"))
			return string(s), err
		},
		ExtendTimeout: o.extend,
	})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	e.hook = o.hook
	return e, db, nil
}

// engineFor builds the engine of b in the test process.
func engineFor(t testing.TB, b *box, o engineOpts) *Engine {
	t.Helper()
	e, db, err := buildEngine(b.dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return e
}

// errCode returns the Code of err's *Error, or "" / "error: …".
func errCode(err error) string {
	if err == nil {
		return ""
	}
	if ue, ok := asError(err); ok {
		return ue.Code
	}
	if errors.Is(err, ErrRebooting) {
		return "rebooting"
	}
	return "error: " + err.Error()
}
