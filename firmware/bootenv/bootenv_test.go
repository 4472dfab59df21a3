package bootenv

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.4.0", "1.3.9", 1},
		{"1.10", "1.9", 1},
		{"1.0~rc1", "1.0", -1},
		{"1.0", "1.0", 0},
		{"1.0-1", "1.0.1", -1},
		{"123a", "123.a", 1},
		{"v1.2", "v1.10", -1},
		{"001", "1", 0},
		{"1.0^p1", "1.0", 1},
		{"1.0^p1", "1.0-1", 1},
		{"", "1", -1},
		{"2025.11.1", "2025.2.9", 1},
		{"preau-b.conf", "preau-a.conf", 1},
		{"1_0", "1.0", 1}, // "_" is dropped, then "0" without "." is newer
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareVersions(tt.b, tt.a); got != -tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestParseCounter(t *testing.T) {
	tests := []struct {
		stem       string
		id         string
		left, done int
		counting   bool
	}{
		{"preau-b+3", "preau-b", 3, 0, true},
		{"preau-b+2-1", "preau-b", 2, 1, true},
		{"preau-b+0-3", "preau-b", 0, 3, true},
		{"preau-b", "preau-b", -1, -1, false},
		{"preau-b+x", "preau-b+x", -1, -1, false},
		{"preau-b+3-", "preau-b+3-", -1, -1, false},
		{"preau-b+3-1x", "preau-b+3-1x", -1, -1, false},
		{"a+b+4-0", "a+b", 4, 0, true},
	}
	for _, tt := range tests {
		id, l, d, c := ParseCounter(tt.stem)
		if id != tt.id || l != tt.left || d != tt.done || c != tt.counting {
			t.Errorf("ParseCounter(%q) = %q %d %d %v, want %q %d %d %v", tt.stem, id, l, d, c, tt.id, tt.left, tt.done, tt.counting)
		}
	}
}

// esp makes an ESP with both kernels and a committed entry for slot a.
func esp(t *testing.T) (string, *SystemdBoot) {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"preau-a/linux", "preau-a/initrd", "preau-b/linux", "preau-b/initrd"} {
		mustWrite(t, filepath.Join(dir, p), "k")
	}
	mustWrite(t, filepath.Join(dir, "loader/loader.conf"), "timeout 0\n")
	mustWrite(t, filepath.Join(dir, "loader/entries/preau-a.conf"),
		"title Préau 1.0 (A)\nsort-key preau\nversion 1.0\nlinux /preau-a/linux\ninitrd /preau-a/initrd\noptions root=PARTLABEL=preau-root-a ro preau.slot=a\n")
	sb, err := NewSystemdBoot(SystemdBootConfig{ESP: dir})
	if err != nil {
		t.Fatal(err)
	}
	return dir, sb
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func entryNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, "loader/entries"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func TestSystemdBootTrialExhaustsThenFallsBack(t *testing.T) {
	ctx := context.Background()
	dir, sb := esp(t)
	fw := &FakeSystemdBoot{ESP: dir}
	if e, err := fw.Boot(); err != nil || e.Options != "root=PARTLABEL=preau-root-a ro preau.slot=a" {
		t.Fatalf("boot before arming = %+v, %v; want slot a", e, err)
	}
	if err := sb.Arm(ctx, SlotB, "1.1"); err != nil {
		t.Fatal(err)
	}
	if err := sb.Arm(ctx, SlotB, "1.1"); err != nil { // idempotent
		t.Fatal(err)
	}
	if got, want := entryNames(t, dir), []string{"preau-a.conf", "preau-b+3.conf"}; !slices.Equal(got, want) {
		t.Fatalf("entries after arm = %v, want %v", got, want)
	}
	wantFiles := []string{"preau-b+2-1.conf", "preau-b+1-2.conf", "preau-b+0-3.conf"}
	for i, want := range wantFiles {
		e, err := fw.Boot()
		if err != nil {
			t.Fatal(err)
		}
		if slot, _ := SlotFromCmdline(e.Options); slot != SlotB || e.File != want {
			t.Fatalf("boot %d: slot %s file %s, want b %s", i+1, slot, e.File, want)
		}
		tr, err := sb.Trial(ctx, SlotB)
		if err != nil || !tr.Armed || tr.TriesLeft != 2-i || tr.TriesDone != i+1 {
			t.Fatalf("trial after boot %d = %+v, %v", i+1, tr, err)
		}
	}
	// Tries exhausted: the committed slot boots, the bad entry sorts last.
	for range 2 {
		e, err := fw.Boot()
		if err != nil {
			t.Fatal(err)
		}
		if slot, _ := SlotFromCmdline(e.Options); slot != SlotA || e.Counting {
			t.Fatalf("boot after exhaustion = %+v, want committed slot a", e)
		}
	}
	if err := sb.Disarm(ctx, SlotB); err != nil {
		t.Fatal(err)
	}
	if got, want := entryNames(t, dir), []string{"preau-a.conf"}; !slices.Equal(got, want) {
		t.Fatalf("entries after disarm = %v, want %v", got, want)
	}
	conf, _ := os.ReadFile(filepath.Join(dir, "loader/loader.conf"))
	if string(conf) != "timeout 0\ndefault preau-*\n" {
		t.Fatalf("loader.conf = %q", conf)
	}
}

func TestSystemdBootCommit(t *testing.T) {
	ctx := context.Background()
	dir, sb := esp(t)
	fw := &FakeSystemdBoot{ESP: dir}
	if err := sb.Arm(ctx, SlotB, "1.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Boot(); err != nil {
		t.Fatal(err)
	}
	if err := sb.Commit(ctx, SlotB); err != nil {
		t.Fatal(err)
	}
	if err := sb.Commit(ctx, SlotB); err != nil { // idempotent
		t.Fatal(err)
	}
	if got, want := entryNames(t, dir), []string{"preau-a.conf", "preau-b.conf"}; !slices.Equal(got, want) {
		t.Fatalf("entries after commit = %v, want %v", got, want)
	}
	for range 5 {
		e, err := fw.Boot()
		if err != nil {
			t.Fatal(err)
		}
		if slot, _ := SlotFromCmdline(e.Options); slot != SlotB || e.Counting {
			t.Fatalf("boot after commit = %+v, want slot b without counting", e)
		}
	}
	tr, _ := sb.Trial(ctx, SlotB)
	if !tr.Committed || tr.Armed || tr.Version != "1.1" {
		t.Fatalf("trial after commit = %+v", tr)
	}
	// The next update writes slot a: disarming it leaves b alone.
	if err := sb.Disarm(ctx, SlotA); err != nil {
		t.Fatal(err)
	}
	if got, want := entryNames(t, dir), []string{"preau-b.conf"}; !slices.Equal(got, want) {
		t.Fatalf("entries after disarming a = %v, want %v", got, want)
	}
}

func TestSystemdBootMissingKernelNeverBoots(t *testing.T) {
	ctx := context.Background()
	dir, sb := esp(t)
	os.Remove(filepath.Join(dir, "preau-b/linux"))
	if err := sb.Arm(ctx, SlotB, "1.1"); err != nil {
		t.Fatal(err)
	}
	e, err := (&FakeSystemdBoot{ESP: dir}).Boot()
	if err != nil {
		t.Fatal(err)
	}
	if slot, _ := SlotFromCmdline(e.Options); slot != SlotA {
		t.Fatalf("booted %+v, want slot a (b has no kernel)", e)
	}
}

func TestTryboot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ab := filepath.Join(dir, "autoboot.txt")
	mustWrite(t, ab, "[all]\ntryboot_a_b=1\nboot_partition=2\n")
	tb, err := NewTryboot(TrybootConfig{Autoboot: ab})
	if err != nil {
		t.Fatal(err)
	}
	fw := &FakePi{Autoboot: ab}
	boot := func(try bool) string {
		t.Helper()
		s, _, err := fw.Boot(try)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if err := tb.Disarm(ctx, SlotB); err != nil {
		t.Fatal(err)
	}
	if got := boot(true); got != SlotA {
		t.Fatalf("tryboot reboot while disarmed started %s, want a", got)
	}
	if err := tb.Arm(ctx, SlotA, "1"); err == nil {
		t.Fatal("arming the committed slot succeeded")
	}
	if err := tb.Arm(ctx, SlotB, "1.1"); err != nil {
		t.Fatal(err)
	}
	if got := boot(false); got != SlotA {
		t.Fatalf("plain reboot while armed started %s, want a", got)
	}
	if got := boot(true); got != SlotB {
		t.Fatalf("tryboot reboot while armed started %s, want b", got)
	}
	tr, _ := tb.Trial(ctx, SlotB)
	if !tr.Armed || tr.Committed {
		t.Fatalf("trial = %+v", tr)
	}
	if err := tb.Commit(ctx, SlotB); err != nil {
		t.Fatal(err)
	}
	if got := boot(false); got != SlotB {
		t.Fatalf("plain reboot after commit started %s, want b", got)
	}
	if got := boot(true); got != SlotB {
		t.Fatalf("tryboot reboot after commit started %s, want b", got)
	}
	b, _ := os.ReadFile(ab)
	if string(b) != "[all]\ntryboot_a_b=1\nboot_partition=3\n[tryboot]\nboot_partition=3\n" {
		t.Fatalf("autoboot.txt = %q", b)
	}
}

func TestSlotsRefuseBootedSlot(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "cmdline"), "ro quiet preau.slot=a\n")
	s, err := NewSlots(SlotsConfig{
		Parts:   map[string]SlotPaths{"root": {filepath.Join(dir, "root-a"), filepath.Join(dir, "root-b")}},
		Cmdline: filepath.Join(dir, "cmdline"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Booted(); got != SlotA || err != nil {
		t.Fatalf("Booted = %q, %v", got, err)
	}
	if _, err := s.OpenPart(SlotA, "root"); err == nil {
		t.Fatal("opened the booted slot")
	}
	p, err := s.OpenPart(SlotB, "root")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.WriteAt([]byte("hello world"), 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Finish(5); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "root-b"))
	if string(b) != "hello" {
		t.Fatalf("slot b = %q", b)
	}
}

func TestSlotsConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  SlotsConfig
		ok   bool
	}{
		{"no root", SlotsConfig{Parts: map[string]SlotPaths{"linux": {"x", "y"}}}, false},
		{"same path", SlotsConfig{Parts: map[string]SlotPaths{"root": {"x", "x"}}}, false},
		{"shared path", SlotsConfig{Parts: map[string]SlotPaths{"root": {"x", "y"}, "linux": {"y", "z"}}}, false},
		{"bad name", SlotsConfig{Parts: map[string]SlotPaths{"root": {"x", "y"}, "Li/nux": {"a", "b"}}}, false},
		{"ok", SlotsConfig{Parts: map[string]SlotPaths{"root": {"x", "y"}, "linux": {"a", "b"}}}, true},
	}
	for _, tt := range tests {
		err := tt.cfg.WithDefaults().Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
