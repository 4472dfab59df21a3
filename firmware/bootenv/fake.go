package bootenv

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
)

// FakeSystemdBoot is a stand-in for the systemd-boot firmware, for tests:
// Boot reads the ESP exactly as systemd-boot 252 (Debian bookworm) does
// for Type #1 entries — loader.conf's default glob, entries sorted with
// the ones that have no tries left last, then by sort-key, version
// (newest first) and id, an entry whose kernel is missing skipped — picks
// the default, and bumps the counter of a counted entry (+3 → +2-1 …
// +0-3) before "starting" it.
type FakeSystemdBoot struct {
	ESP string
	FS  FS // nil: the operating system's
}

// BootedEntry is the entry a fake boot started.
type BootedEntry struct {
	ID        string // lower-case file name as systemd-boot knew it before the bump
	File      string // file name after the bump
	Title     string
	Version   string
	Linux     string
	Options   string
	Counting  bool
	TriesLeft int // after the bump
	TriesDone int
}

type fakeEntry struct {
	BootedEntry
	sortKey   string
	machineID string
	left      int
	done      int
}

// ErrNoEntry means the fake firmware found nothing to boot.
var ErrNoEntry = errors.New("systemd-boot: no bootable entry")

// Boot emulates one start of the machine through systemd-boot.
func (f *FakeSystemdBoot) Boot() (BootedEntry, error) {
	fsys := f.FS
	if fsys == nil {
		fsys = OS{}
	}
	pattern := ""
	if b, err := readFile(fsys, filepath.Join(f.ESP, "loader", "loader.conf"), 64<<10); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
			if k == "default" {
				pattern = strings.ToLower(strings.TrimSpace(v))
			}
		}
	}
	dir := filepath.Join(f.ESP, "loader", "entries")
	des, err := fsys.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return BootedEntry{}, err
	}
	var entries []fakeEntry
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") || strings.HasPrefix(strings.ToLower(name), "auto-") || de.IsDir() {
			continue
		}
		if !strings.HasSuffix(strings.ToLower(name), ".conf") {
			continue
		}
		data, err := readFile(fsys, filepath.Join(dir, name), 64<<10)
		if err != nil {
			continue
		}
		kv := parseEntry(string(data))
		if kv["linux"] == "" {
			continue
		}
		if _, err := fsys.Stat(filepath.Join(f.ESP, filepath.FromSlash(strings.TrimPrefix(kv["linux"], "/")))); err != nil {
			continue // systemd-boot skips an entry whose kernel it cannot open
		}
		_, left, done, counting := ParseCounter(name[:len(name)-len(".conf")])
		e := fakeEntry{
			BootedEntry: BootedEntry{
				ID: strings.ToLower(name), File: name, Title: kv["title"], Version: kv["version"],
				Linux: kv["linux"], Options: kv["options"], Counting: counting,
			},
			sortKey: kv["sort-key"], machineID: kv["machine-id"], left: left, done: done,
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return BootedEntry{}, ErrNoEntry
	}
	sort.SliceStable(entries, func(i, j int) bool { return compareEntries(entries[i], entries[j]) < 0 })
	pick := 0
	if pattern != "" {
		for i, e := range entries {
			if globMatch(pattern, e.ID) {
				pick = i
				break
			}
		}
	}
	e := entries[pick]
	e.TriesLeft, e.TriesDone = -1, -1
	if e.Counting {
		left := max(e.left-1, 0)
		done := e.done + 1
		next := fmt.Sprintf("%s+%d-%d.conf", e.File[:strings.LastIndexByte(e.File, '+')], left, done)
		if err := fsys.Rename(filepath.Join(dir, e.File), filepath.Join(dir, next)); err != nil {
			return BootedEntry{}, fmt.Errorf("systemd-boot: bump counter: %w", err)
		}
		if err := fsys.SyncDir(dir); err != nil {
			return BootedEntry{}, err
		}
		e.File, e.TriesLeft, e.TriesDone = next, left, done
	}
	return e.BootedEntry, nil
}

// compareEntries is systemd-boot's entry order (config_entry_compare).
func compareEntries(a, b fakeEntry) int {
	if r := cmp3(boolInt(a.Counting && a.left == 0), boolInt(b.Counting && b.left == 0)); r != 0 {
		return r
	}
	if r := cmp3(boolInt(a.sortKey == ""), boolInt(b.sortKey == "")); r != 0 {
		return r
	}
	if a.sortKey != "" && b.sortKey != "" {
		if r := strcmp3(a.sortKey, b.sortKey); r != 0 {
			return r
		}
		if r := strcmp3(a.machineID, b.machineID); r != 0 {
			return r
		}
		if r := -CompareVersions(a.Version, b.Version); r != 0 {
			return r
		}
	}
	if r := -CompareVersions(a.ID, b.ID); r != 0 {
		return r
	}
	if !a.Counting || !b.Counting {
		return 0
	}
	if r := -cmp3(a.left, b.left); r != 0 {
		return r
	}
	return cmp3(a.done, b.done)
}

// FakePi is a stand-in for the Raspberry Pi firmware's A/B boot, for
// tests: Boot reads autoboot.txt and starts [tryboot]'s partition when
// the one-shot tryboot flag was given (and tryboot_a_b=1), else [all]'s.
type FakePi struct {
	Autoboot   string
	Partitions SlotPartitions // zero: 2 and 3
	FS         FS
}

// Boot emulates one start; tryboot is the one-shot flag of the reboot
// that led to it.
func (f *FakePi) Boot(tryboot bool) (slot string, partition int, err error) {
	fsys := f.FS
	if fsys == nil {
		fsys = OS{}
	}
	parts := f.Partitions
	if parts == (SlotPartitions{}) {
		parts = SlotPartitions{2, 3}
	}
	b, err := readFile(fsys, f.Autoboot, 64<<10)
	if err != nil {
		return "", 0, fmt.Errorf("pi firmware: %w", err)
	}
	a, err := ParseAutoboot(string(b))
	if err != nil {
		return "", 0, fmt.Errorf("pi firmware: %w", err)
	}
	n := a.All
	if tryboot && a.AB && a.Try != 0 {
		n = a.Try
	}
	slot, ok := parts.slot(n)
	if !ok {
		return "", n, fmt.Errorf("pi firmware: boot_partition=%d is no slot", n)
	}
	return slot, n, nil
}
