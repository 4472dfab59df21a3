package bootenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Trial is what a boot environment says about one slot.
type Trial struct {
	// Armed: the slot is set up to be tried at the next boot(s).
	Armed bool
	// Committed: the slot boots without being on trial (a good entry, or
	// the Pi's default partition).
	Committed bool
	// TriesLeft and TriesDone are systemd-boot's counters of an armed
	// entry; -1 when the boot environment does not count (the Pi's tryboot
	// is one attempt).
	TriesLeft, TriesDone int
	// Version is the version the entry announces, if the boot environment
	// records one.
	Version string
}

// SystemdBootConfig configures SystemdBoot.
type SystemdBootConfig struct {
	// ESP is where the EFI system partition is mounted (loader/ lives
	// there). Required.
	ESP string
	// EntryPrefix names the entries: loader/entries/<prefix>-a.conf and
	// <prefix>-b.conf. Default "preau".
	EntryPrefix string
	// Tries is how many boots a new slot gets before systemd-boot falls
	// back to the committed one. Default 3.
	Tries int
	// Title shown in the boot menu, followed by the version and the slot.
	// Default "Préau".
	Title string
	// Linux and Initrd are the kernel and initrd of each slot as paths on
	// the ESP ("/preau-a/linux"); they must be the files of the slots'
	// "linux" and "initrd" parts. Defaults /preau-a/linux, /preau-b/linux,
	// /preau-a/initrd, /preau-b/initrd. Initrd "-" means none.
	Linux, Initrd SlotPaths
	// Options is each slot's kernel command line; it must contain
	// preau.slot=a (resp. b). Defaults "root=PARTLABEL=preau-root-a ro
	// preau.slot=a" and the same for b.
	Options SlotPaths
	// FS is the file system; nil means the operating system's.
	FS FS
}

// WithDefaults fills the zero fields.
func (c SystemdBootConfig) WithDefaults() SystemdBootConfig {
	if c.EntryPrefix == "" {
		c.EntryPrefix = "preau"
	}
	if c.Tries == 0 {
		c.Tries = 3
	}
	if c.Title == "" {
		c.Title = "Préau"
	}
	if c.Linux == (SlotPaths{}) {
		c.Linux = SlotPaths{"/preau-a/linux", "/preau-b/linux"}
	}
	if c.Initrd == (SlotPaths{}) {
		c.Initrd = SlotPaths{"/preau-a/initrd", "/preau-b/initrd"}
	}
	if c.Options == (SlotPaths{}) {
		c.Options = SlotPaths{"root=PARTLABEL=preau-root-a ro preau.slot=a", "root=PARTLABEL=preau-root-b ro preau.slot=b"}
	}
	if c.FS == nil {
		c.FS = OS{}
	}
	return c
}

// Validate checks the configuration.
func (c SystemdBootConfig) Validate() error {
	if c.ESP == "" {
		return errors.New("bootenv: systemd-boot: esp: required")
	}
	if !validPartName(c.EntryPrefix) {
		return fmt.Errorf("bootenv: systemd-boot: entry prefix %q: want lower-case letters, digits, '-'", c.EntryPrefix)
	}
	if c.Tries < 1 || c.Tries > 10 {
		return fmt.Errorf("bootenv: systemd-boot: tries %d: want 1 to 10", c.Tries)
	}
	for _, slot := range []string{SlotA, SlotB} {
		if s, ok := SlotFromCmdline(c.Options.of(slot)); !ok || s != slot {
			return fmt.Errorf("bootenv: systemd-boot: options of slot %s: want preau.slot=%s in %q", slot, slot, c.Options.of(slot))
		}
		if !strings.HasPrefix(c.Linux.of(slot), "/") {
			return fmt.Errorf("bootenv: systemd-boot: linux of slot %s: want a path from the ESP root, got %q", slot, c.Linux.of(slot))
		}
		if i := c.Initrd.of(slot); i != "-" && !strings.HasPrefix(i, "/") {
			return fmt.Errorf("bootenv: systemd-boot: initrd of slot %s: want a path from the ESP root or \"-\", got %q", slot, i)
		}
	}
	if strings.ContainsAny(c.Title, "\n\r") {
		return errors.New("bootenv: systemd-boot: title: one line only")
	}
	return nil
}

// SystemdBoot arms and commits slots with systemd-boot's automatic boot
// assessment (Boot Loader Specification Type #1 entries on the ESP):
//
//   - the entry of a slot on trial is loader/entries/<prefix>-b+3.conf; at
//     each boot systemd-boot renames it +2-1, +1-2, +0-3; an entry with 0
//     tries left sorts after every other and is no longer the default;
//   - entries carry "sort-key" and "version", so the newest version sorts
//     first and loader.conf's "default <prefix>-*" picks it while it has
//     tries left, then the committed one;
//   - the entry is written to a dot-file (ignored by systemd-boot),
//     synced, and renamed into place last; commit renames it to the plain
//     name, as systemd-bless-boot does;
//   - before a slot is written its entry is removed, so a slot that was
//     never committed is never a fallback.
//
// Tries are counted only while an update is on trial: committed entries
// have no counter.
type SystemdBoot struct {
	cfg SystemdBootConfig
	fs  FS
}

// NewSystemdBoot validates cfg; it does no I/O.
func NewSystemdBoot(cfg SystemdBootConfig) (*SystemdBoot, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &SystemdBoot{cfg: cfg, fs: cfg.FS}, nil
}

// OneShot is false: systemd-boot counts tries itself, a plain reboot
// starts the trial.
func (b *SystemdBoot) OneShot() bool { return false }

func (b *SystemdBoot) entriesDir() string { return filepath.Join(b.cfg.ESP, "loader", "entries") }
func (b *SystemdBoot) entryName(slot string) string {
	return b.cfg.EntryPrefix + "-" + slot
}

// entryFile is one Type #1 entry file of a slot.
type entryFile struct {
	name      string // file name
	counting  bool
	left      int
	done      int
	version   string
	linuxPath string
}

// slotEntries lists the entry files of slot (with or without counter).
func (b *SystemdBoot) slotEntries(slot string) ([]entryFile, error) {
	des, err := b.fs.ReadDir(b.entriesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	base := b.entryName(slot)
	var out []entryFile
	for _, de := range des {
		name := de.Name()
		stem, ok := strings.CutSuffix(name, ".conf")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		id, left, done, counting := ParseCounter(stem)
		if !strings.EqualFold(id, base) {
			continue
		}
		e := entryFile{name: name, counting: counting, left: left, done: done}
		if data, err := readFile(b.fs, filepath.Join(b.entriesDir(), name), 64<<10); err == nil {
			kv := parseEntry(string(data))
			e.version = kv["version"]
			e.linuxPath = kv["linux"]
		}
		out = append(out, e)
	}
	return out, nil
}

// ParseCounter splits an entry stem (file name without .conf) into its id
// and systemd-boot's "+LEFT[-DONE]" counter, parsed as systemd-boot does:
// from the last '+', LEFT then an optional "-DONE", nothing after.
func ParseCounter(stem string) (id string, left, done int, counting bool) {
	i := strings.LastIndexByte(stem, '+')
	if i < 0 {
		return stem, -1, -1, false
	}
	rest := stem[i+1:]
	l, after := leadingNumber(rest)
	if after == len(rest) && l >= 0 {
		return stem[:i], l, 0, true
	}
	if l < 0 || rest[after] != '-' {
		return stem, -1, -1, false
	}
	d, end := leadingNumber(rest[after+1:])
	if d < 0 || after+1+end != len(rest) {
		return stem, -1, -1, false
	}
	return stem[:i], l, d, true
}

// leadingNumber parses the decimal digits at the start of s; -1 if none.
func leadingNumber(s string) (int, int) {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n == 0 || n > 9 {
		return -1, n
	}
	v, _ := strconv.Atoi(s[:n])
	return v, n
}

// parseEntry reads "key value" lines (the Type #1 syntax).
func parseEntry(s string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(k, '\t'); i >= 0 {
			k, v = k[:i], k[i+1:]+" "+v
		}
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		if k == "options" && kv[k] != "" {
			kv[k] += " " + v
			continue
		}
		kv[k] = v
	}
	return kv
}

// Disarm removes every entry of slot, so the boot loader can neither try
// it nor fall back to it. It must precede any write to the slot.
func (b *SystemdBoot) Disarm(ctx context.Context, slot string) error {
	if !ValidSlot(slot) {
		return fmt.Errorf("disarm slot %q: unknown slot", slot)
	}
	es, err := b.slotEntries(slot)
	if err != nil {
		return fmt.Errorf("disarm slot %s: %w", slot, err)
	}
	if len(es) == 0 {
		return nil
	}
	for _, e := range es {
		if err := b.fs.Remove(filepath.Join(b.entriesDir(), e.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("disarm slot %s: %w", slot, err)
		}
	}
	if err := b.fs.SyncDir(b.entriesDir()); err != nil {
		return fmt.Errorf("disarm slot %s: %w", slot, err)
	}
	return nil
}

// Arm writes slot's entry with Tries tries: the new version becomes the
// default while it has tries left. An armed entry of the same version is
// kept as it is (re-arming after a crash does not give tries back).
func (b *SystemdBoot) Arm(ctx context.Context, slot, version string) error {
	if !ValidSlot(slot) {
		return fmt.Errorf("arm slot %q: unknown slot", slot)
	}
	if version == "" || strings.ContainsAny(version, " \t\r\n") {
		return fmt.Errorf("arm slot %s: bad version %q", slot, version)
	}
	if err := b.ensureLoaderConf(); err != nil {
		return fmt.Errorf("arm slot %s: %w", slot, err)
	}
	es, err := b.slotEntries(slot)
	if err != nil {
		return fmt.Errorf("arm slot %s: %w", slot, err)
	}
	if len(es) == 1 && es[0].counting && es[0].version == version {
		return nil
	}
	if err := b.Disarm(ctx, slot); err != nil {
		return fmt.Errorf("arm slot %s: %w", slot, err)
	}
	var e strings.Builder
	fmt.Fprintf(&e, "title %s %s (%s)\n", b.cfg.Title, version, strings.ToUpper(slot))
	fmt.Fprintf(&e, "sort-key %s\n", b.cfg.EntryPrefix)
	fmt.Fprintf(&e, "version %s\n", version)
	fmt.Fprintf(&e, "linux %s\n", b.cfg.Linux.of(slot))
	if i := b.cfg.Initrd.of(slot); i != "-" {
		fmt.Fprintf(&e, "initrd %s\n", i)
	}
	fmt.Fprintf(&e, "options %s\n", b.cfg.Options.of(slot))
	name := fmt.Sprintf("%s+%d.conf", b.entryName(slot), b.cfg.Tries)
	if err := b.fs.MkdirAll(b.entriesDir(), 0o755); err != nil {
		return fmt.Errorf("arm slot %s: %w", slot, err)
	}
	if err := writeFileAtomic(b.fs, filepath.Join(b.entriesDir(), name), []byte(e.String()), 0o644); err != nil {
		return fmt.Errorf("arm slot %s: %w", slot, err)
	}
	return nil
}

// ensureLoaderConf makes loader.conf's default the glob of our entries,
// which matches them with or without a counter.
func (b *SystemdBoot) ensureLoaderConf() error {
	p := filepath.Join(b.cfg.ESP, "loader", "loader.conf")
	want := "default " + b.cfg.EntryPrefix + "-*"
	data, err := readFile(b.fs, p, 64<<10)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var lines []string
	found := false
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		k, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if k == "default" {
			if found {
				continue
			}
			found = true
			if strings.Join(strings.Fields(line), " ") == want {
				lines = append(lines, line)
				continue
			}
			lines = append(lines, want)
			continue
		}
		if line != "" || len(lines) > 0 {
			lines = append(lines, line)
		}
	}
	if !found {
		lines = append(lines, want)
	}
	out := strings.Join(lines, "\n") + "\n"
	if out == string(data) {
		return nil
	}
	if err := b.fs.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(b.fs, p, []byte(out), 0o644)
}

// Commit marks slot good: its counted entry is renamed to the plain name,
// as systemd-bless-boot does. Committing a committed slot does nothing.
func (b *SystemdBoot) Commit(ctx context.Context, slot string) error {
	if !ValidSlot(slot) {
		return fmt.Errorf("commit slot %q: unknown slot", slot)
	}
	es, err := b.slotEntries(slot)
	if err != nil {
		return fmt.Errorf("commit slot %s: %w", slot, err)
	}
	var counted []entryFile
	plain := false
	for _, e := range es {
		if e.counting {
			counted = append(counted, e)
		} else {
			plain = true
		}
	}
	if len(counted) == 0 {
		if plain {
			return nil
		}
		return fmt.Errorf("commit slot %s: no boot entry to commit", slot)
	}
	if len(counted) > 1 {
		return fmt.Errorf("commit slot %s: %d counted entries", slot, len(counted))
	}
	dir := b.entriesDir()
	if err := b.fs.Rename(filepath.Join(dir, counted[0].name), filepath.Join(dir, b.entryName(slot)+".conf")); err != nil {
		return fmt.Errorf("commit slot %s: %w", slot, err)
	}
	if err := b.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("commit slot %s: %w", slot, err)
	}
	return nil
}

// Trial reports slot's entry.
func (b *SystemdBoot) Trial(ctx context.Context, slot string) (Trial, error) {
	es, err := b.slotEntries(slot)
	if err != nil {
		return Trial{}, fmt.Errorf("inspect slot %s: %w", slot, err)
	}
	t := Trial{TriesLeft: -1, TriesDone: -1}
	for _, e := range es {
		if e.counting {
			t.Armed = true
			t.TriesLeft, t.TriesDone = e.left, e.done
		} else {
			t.Committed = true
		}
		if t.Version == "" {
			t.Version = e.version
		}
	}
	return t, nil
}

// globMatch is systemd-boot's efi_fnmatch for ids without '/'.
func globMatch(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}
