package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"preau/appliance/store"
	"preau/firmware"
)

// TestUpdateFromUSBKey plays issue 7 through the box: the release tool
// signs a version and writes a USB bundle; `preau update apply --from`
// on a running box (file-backed slots, systemd-boot's ESP in a folder)
// verifies it, writes the inactive slot and arms nothing before the
// maintenance window; `preau update status` says so. A tampered bundle
// is refused with the reason, and a box without A/B slots says updates
// are not configured.
func TestUpdateFromUSBKey(t *testing.T) {
	dir := t.TempDir()
	keys, repo, bundle := filepath.Join(dir, "keys"), filepath.Join(dir, "repo"), filepath.Join(dir, "usb")
	root := bytes.Repeat([]byte("racine de la version 1.1.0 "), 200000) // 5.4 MB
	files := map[string][]byte{"root.img": root, "linux": []byte("noyau"), "initrd": []byte("initrd")}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"release", "keygen", "--keys", keys},
		{"release", "init", "--keys", keys, "--repo", repo},
		{"release", "sign", "--keys", keys, "--repo", repo, "--version", "1.1.0",
			"--part", "root=" + filepath.Join(dir, "root.img"), "--part", "linux=" + filepath.Join(dir, "linux"), "--part", "initrd=" + filepath.Join(dir, "initrd"),
			"--notes-fr", "Correctifs", "--notes-en", "Fixes"},
		{"release", "bundle", "--repo", repo, "--out", bundle},
	} {
		mustCLIRun(t, args...)
	}

	s, rootA, rootB, esp := slotBox(t, dir, filepath.Join(repo, "metadata", "1.root.json"))
	box := startS2InProcess(t, s, false)
	cf := []string{"--config", s.cfg}

	// A tampered copy of the key is refused, the slot left alone.
	bad := filepath.Join(dir, "usb-altered")
	copyTree(t, bundle, bad)
	altered := false
	filepath.Walk(bad, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Size() == int64(len(root)) {
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
			altered = true
		}
		return nil
	})
	if !altered {
		t.Fatal("the bundle holds no file the size of the root image")
	}
	code, out, errOut := cliRun(t, append([]string{"update", "apply", "--from", bad}, cf...)...)
	if code == ExitOK || !strings.Contains(errOut, "preau update apply") {
		t.Fatalf("a tampered bundle: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("tampered bundle refused: %s", strings.TrimSpace(errOut))

	out = mustCLIRun(t, append([]string{"update", "apply", "--from", bundle}, cf...)...)
	if !strings.Contains(out, "Version écrite et vérifiée") {
		t.Errorf("apply said:\n%s", out)
	}
	got, _ := os.ReadFile(rootB)
	if !bytes.Equal(got[:len(root)], root) {
		t.Errorf("slot b does not hold the signed root image")
	}
	if a, _ := os.ReadFile(rootA); bytes.Contains(a[:64], []byte("racine")) {
		t.Errorf("the booted slot a was written")
	}
	out = mustCLIRun(t, append([]string{"update", "status", "--json"}, cf...)...)
	var st UpdateStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Status == nil {
		t.Fatalf("update status --json: %v\n%s", err, out)
	}
	if st.Status.State != firmware.StateWritten || st.Status.Target != "1.1.0" || st.Status.TargetSlot != "b" {
		t.Errorf("status: state %s, target %s on slot %s; want written, 1.1.0, b", st.Status.State, st.Status.Target, st.Status.TargetSlot)
	}
	ents, _ := os.ReadDir(filepath.Join(esp, "loader", "entries"))
	for _, e := range ents {
		if strings.Contains(e.Name(), "-b") {
			t.Errorf("boot entry %s armed before the maintenance window", e.Name())
		}
	}
	text := mustCLIRun(t, append([]string{"update", "status"}, cf...)...)
	t.Logf("preau update status:\n%s", text)
	for _, want := range []string{"1.0.0", "1.1.0", "fenêtre de maintenance"} {
		if !strings.Contains(strings.ToLower(text), strings.ToLower(want)) {
			t.Errorf("update status lacks %q", want)
		}
	}
	mustCLIRun(t, append([]string{"update", "rollback", "annulé", "par", "le", "technicien"}, cf...)...)
	s2, err := box.update.Status(context.Background())
	if err != nil || (s2.State != firmware.StateRolledBack && s2.State != firmware.StateFailed) {
		t.Errorf("after rollback: %+v, %v", s2.State, err)
	}
}

func TestUpdateNotConfigured(t *testing.T) {
	s := newS2Setup(t, s2Options{})
	startS2InProcess(t, s, false)
	out := mustCLIRun(t, "update", "status", "--config", s.cfg)
	if !strings.Contains(out, "non configurées") {
		t.Errorf("update status on a box without slots:\n%s", out)
	}
	code, _, errOut := cliRun(t, "update", "apply", "--from", t.TempDir(), "--config", s.cfg)
	if code == ExitOK || !strings.Contains(errOut, "non configurées") {
		t.Errorf("update apply on a box without slots: exit %d: %s", code, errOut)
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// slotBox writes the configuration of a box installed from the image
// (file-backed slots, slot a booted, systemd-boot's ESP in a folder)
// whose running version is 1.0.0.
func slotBox(t *testing.T, dir, trustedRoot string) (s *s2Setup, rootA, rootB, esp string) {
	t.Helper()
	esp = filepath.Join(dir, "esp")
	os.MkdirAll(filepath.Join(esp, "loader", "entries"), 0o755)
	rootA, rootB = filepath.Join(dir, "root-a"), filepath.Join(dir, "root-b")
	for _, p := range []string{rootA, rootB} {
		if err := os.WriteFile(p, make([]byte, 8<<20), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmdline := filepath.Join(dir, "cmdline")
	os.WriteFile(cmdline, []byte("root=PARTLABEL=preau-root-a ro quiet preau.slot=a\n"), 0o644)
	old := version
	version = "1.0.0"
	t.Cleanup(func() { version = old })

	s = newS2Setup(t, s2Options{})
	conf, _ := os.ReadFile(s.cfg)
	conf = append(conf, fmt.Sprintf(`
[update]
boot = "systemd-boot"
trusted_root = %q
esp = %q
root_a = %q
root_b = %q
cmdline = %q
`, trustedRoot, esp, rootA, rootB, cmdline)...)
	if err := os.WriteFile(s.cfg, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	return s, rootA, rootB, esp
}

// TestOldSlotRestoresTheDatabase: a newer version on trial migrated the
// database (here: a schema version this program does not know) and did
// not stay; the old version finds the copy taken before the trial, puts
// it back, keeps the trial's database beside it, and starts.
func TestOldSlotRestoresTheDatabase(t *testing.T) {
	dir := t.TempDir()
	keys, repo := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	mustCLIRun(t, "release", "keygen", "--keys", keys)
	mustCLIRun(t, "release", "init", "--keys", keys, "--repo", repo)
	s, _, _, _ := slotBox(t, dir, filepath.Join(repo, "metadata", "1.root.json"))
	box := startS2InProcess(t, s, false)
	box.stop(t)
	box.Close()

	db := dbPath(s.data)
	if err := copyFile(db, beforeTrialPath(db, "1.1.0")); err != nil {
		t.Fatal(err)
	}
	// The trial's version migrated the database further.
	st, err := store.Open(context.Background(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().Exec(`INSERT INTO schema_migrations (component, version, name, applied_at) VALUES ('content', 999, 'from 1.1.0', 'now')`); err != nil {
		t.Fatal(err)
	}
	st.Close()

	cfg, err := LoadConfig(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(context.Background(), cfg, Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New on a database migrated by a trial that did not stay: %v", err)
	}
	defer b.Close()
	if v, _ := b.store.Version(context.Background(), "content"); v == 999 {
		t.Errorf("the trial's schema is still there")
	}
	trials, _ := filepath.Glob(db + ".trial-*")
	if len(trials) != 1 {
		t.Errorf("trial databases kept: %v, want one", trials)
	}

	// Without a copy, a newer schema is refused as before.
	cfg2 := cfg
	cfg2.Update.Boot = ""
	b.Close()
	st, _ = store.Open(context.Background(), db, slog.New(slog.DiscardHandler))
	st.DB().Exec(`INSERT INTO schema_migrations (component, version, name, applied_at) VALUES ('content', 999, 'x', 'now')`)
	st.Close()
	if _, err := New(context.Background(), cfg2, Options{}, slog.New(slog.DiscardHandler)); !errors.Is(err, store.ErrNewerSchema) {
		t.Errorf("a newer schema on a box without slots: err = %v, want ErrNewerSchema", err)
	}
}

// TestProxyDialGuard: the forward proxy never connects to loopback, an
// unspecified or multicast address, nor to one of the box's own
// addresses, whatever name led there.
func TestProxyDialGuard(t *testing.T) {
	g := &ownAddrs{}
	own := ""
	if addrs, _ := net.InterfaceAddrs(); len(addrs) > 0 {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() {
				own = netip.AddrPortFrom(p.Addr(), 80).String()
				break
			}
		}
	}
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:80", false}, {"[::1]:443", false}, {"0.0.0.0:80", false}, {"224.0.0.251:5353", false},
		{"[::ffff:127.0.0.1]:80", false}, {"192.0.2.10:80", true}, {"[2001:db8::1]:443", true},
	} {
		err := g.control("tcp", tc.addr, nil)
		if (err == nil) != tc.ok {
			t.Errorf("dial %s: err = %v, want allowed %v", tc.addr, err, tc.ok)
		}
	}
	if own != "" {
		if err := g.control("tcp", own, nil); !errors.Is(err, errOwnAddr) {
			t.Errorf("dial the box's own %s: err = %v", own, err)
		}
	}
}

// TestBackupBeforeTrial: the copy taken on a trial's first start is a
// whole, consistent database under its version's name, taken once.
func TestBackupBeforeTrial(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "preau.db")
	st, err := store.Open(ctx, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx, "appliance", applianceMigrations); err != nil {
		t.Fatal(err)
	}
	st.DB().Exec("INSERT INTO settings (key, value) VALUES ('école', 'Jules-Ferry')")
	if err := backupBeforeTrial(ctx, st, "1.1.0/../x"); err != nil {
		t.Fatal(err)
	}
	copyPath := beforeTrialPath(db, "1.1.0/../x")
	if filepath.Dir(copyPath) != filepath.Dir(db) {
		t.Fatalf("copy written outside the data folder: %s", copyPath)
	}
	st.DB().Exec("UPDATE settings SET value = 'changé' WHERE key = 'école'")
	if err := backupBeforeTrial(ctx, st, "1.1.0/../x"); err != nil {
		t.Fatal(err)
	}
	cp, err := store.Open(ctx, copyPath, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	var v string
	if err := cp.DB().QueryRow("SELECT value FROM settings WHERE key = 'école'").Scan(&v); err != nil || v != "Jules-Ferry" {
		t.Errorf("copy holds %q, %v; want the value before the trial, taken once", v, err)
	}
	if err := cp.IntegrityCheck(ctx); err != nil {
		t.Error(err)
	}
}
