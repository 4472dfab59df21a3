package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

	// A box installed from the image: slot a booted, slot b to write.
	esp := filepath.Join(dir, "esp")
	os.MkdirAll(filepath.Join(esp, "loader", "entries"), 0o755)
	rootA, rootB := filepath.Join(dir, "root-a"), filepath.Join(dir, "root-b")
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

	s := newS2Setup(t, s2Options{})
	conf, _ := os.ReadFile(s.cfg)
	conf = append(conf, fmt.Sprintf(`
[update]
boot = "systemd-boot"
trusted_root = %q
esp = %q
root_a = %q
root_b = %q
cmdline = %q
`, filepath.Join(repo, "metadata", "1.root.json"), esp, rootA, rootB, cmdline)...)
	if err := os.WriteFile(s.cfg, conf, 0o644); err != nil {
		t.Fatal(err)
	}
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
