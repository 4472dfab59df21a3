package bootenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Slot names. A box has two slots; the one it booted is active, the other
// is the only one an update may write.
const (
	SlotA = "a"
	SlotB = "b"
)

// Other returns the other slot's name.
func Other(slot string) string {
	if slot == SlotA {
		return SlotB
	}
	return SlotA
}

// ValidSlot reports whether s names a slot.
func ValidSlot(s string) bool { return s == SlotA || s == SlotB }

// SlotPaths are where one part lives in slot a and in slot b.
type SlotPaths struct {
	A string // e.g. /dev/disk/by-partlabel/preau-root-a
	B string // e.g. /dev/disk/by-partlabel/preau-root-b
}

func (p SlotPaths) of(slot string) string {
	if slot == SlotA {
		return p.A
	}
	return p.B
}

// SlotsConfig configures Slots.
type SlotsConfig struct {
	// Parts maps each part of a slot (the names a release manifest uses:
	// "root", and e.g. "linux" and "initrd" for systemd-boot or "boot" for
	// the Raspberry Pi) to its path in slot a and slot b. A path is a block
	// device (a partition, by label) or a regular file (kernel and initrd
	// on the ESP; files in tests). Required, with at least "root".
	Parts map[string]SlotPaths
	// Cmdline is the file holding the kernel command line; the booted slot
	// is its preau.slot= value. Default /proc/cmdline.
	Cmdline string
	// FS is the file system; nil means the operating system's.
	FS FS
}

// DefaultCmdline is the default of SlotsConfig.Cmdline.
const DefaultCmdline = "/proc/cmdline"

// WithDefaults fills the zero fields.
func (c SlotsConfig) WithDefaults() SlotsConfig {
	if c.Cmdline == "" {
		c.Cmdline = DefaultCmdline
	}
	if c.FS == nil {
		c.FS = OS{}
	}
	return c
}

// Validate checks the configuration.
func (c SlotsConfig) Validate() error {
	if _, ok := c.Parts["root"]; !ok {
		return errors.New("bootenv: slots: parts: want a \"root\" part")
	}
	seen := map[string]string{}
	for name, p := range c.Parts {
		if !validPartName(name) {
			return fmt.Errorf("bootenv: slots: parts: bad part name %q (want lower-case letters, digits, '-')", name)
		}
		if p.A == "" || p.B == "" {
			return fmt.Errorf("bootenv: slots: parts.%s: want a path for slot a and slot b", name)
		}
		if p.A == p.B {
			return fmt.Errorf("bootenv: slots: parts.%s: slot a and slot b have the same path %s", name, p.A)
		}
		for _, path := range []string{p.A, p.B} {
			if other, dup := seen[path]; dup {
				return fmt.Errorf("bootenv: slots: parts.%s: path %s is also used by part %s", name, path, other)
			}
			seen[path] = name
		}
	}
	return nil
}

func validPartName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// Slots gives access to the parts of the two slots. It refuses to open
// the slot the box booted from: an update writes the inactive slot only.
type Slots struct {
	cfg SlotsConfig
	fs  FS
}

// NewSlots validates cfg; it does no I/O.
func NewSlots(cfg SlotsConfig) (*Slots, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Slots{cfg: cfg, fs: cfg.FS}, nil
}

// ErrNoSlotOnCmdline means the kernel command line names no slot.
var ErrNoSlotOnCmdline = errors.New("the kernel command line has no preau.slot=a|b")

// Booted returns the slot the running system booted from, read from the
// kernel command line (preau.slot=a or preau.slot=b, written by the boot
// entry or the slot's cmdline.txt).
func (s *Slots) Booted() (string, error) {
	b, err := readFile(s.fs, s.cfg.Cmdline, 64<<10)
	if err != nil {
		return "", fmt.Errorf("booted slot: %w", err)
	}
	slot, ok := SlotFromCmdline(string(b))
	if !ok {
		return "", fmt.Errorf("booted slot: %s: %w", s.cfg.Cmdline, ErrNoSlotOnCmdline)
	}
	return slot, nil
}

// SlotFromCmdline returns the value of the last preau.slot= word.
func SlotFromCmdline(cmdline string) (string, bool) {
	slot := ""
	for _, w := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(w, "preau.slot="); ok {
			slot = strings.ToLower(v)
		}
	}
	return slot, ValidSlot(slot)
}

// Parts returns the part names, "root" first then the others sorted.
func (s *Slots) Parts() []string {
	var out []string
	for name := range s.cfg.Parts {
		if name != "root" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return append([]string{"root"}, out...)
}

// Path returns where part lives in slot.
func (s *Slots) Path(slot, part string) (string, bool) {
	p, ok := s.cfg.Parts[part]
	if !ok || !ValidSlot(slot) {
		return "", false
	}
	return p.of(slot), true
}

// ErrActiveSlot is returned when asked to open the slot the box runs from.
var ErrActiveSlot = errors.New("refusing to write the slot the system booted from")

// OpenPart opens part of slot for writing and reading back. It refuses
// the booted slot. A missing regular file is created (with its folder);
// a block device must exist.
func (s *Slots) OpenPart(slot, part string) (*Part, error) {
	path, ok := s.Path(slot, part)
	if !ok {
		return nil, fmt.Errorf("open slot %s part %s: unknown part or slot", slot, part)
	}
	booted, err := s.Booted()
	if err != nil {
		return nil, fmt.Errorf("open slot %s part %s: %w", slot, part, err)
	}
	if booted == slot {
		return nil, fmt.Errorf("open slot %s part %s: %w", slot, part, ErrActiveSlot)
	}
	fi, err := s.fs.Stat(path)
	device, created := false, false
	switch {
	case err == nil:
		device = fi.Mode()&fs.ModeDevice != 0
		if !device && !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("open slot %s part %s: %s is neither a block device nor a file", slot, part, path)
		}
	case errors.Is(err, fs.ErrNotExist):
		created = true
		if err := s.fs.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("open slot %s part %s: %w", slot, part, err)
		}
	default:
		return nil, fmt.Errorf("open slot %s part %s: %w", slot, part, err)
	}
	flag := os.O_RDWR
	if !device {
		flag |= os.O_CREATE
	}
	f, err := s.fs.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open slot %s part %s: %w", slot, part, err)
	}
	if created {
		// A new file's name is durable only once its folder is synced.
		if err := s.fs.SyncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, fmt.Errorf("open slot %s part %s: %w", slot, part, err)
		}
	}
	return &Part{File: f, Path: path, Device: device}, nil
}

// Part is one open part of a slot.
type Part struct {
	File
	Path   string
	Device bool // a block device: fixed capacity, never truncated
}

// Capacity is how many bytes the part can hold: the device's size, or -1
// (no limit) for a file.
func (p *Part) Capacity() (int64, error) {
	if !p.Device {
		return -1, nil
	}
	n, err := p.Seek(0, 2)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", p.Path, err)
	}
	return n, nil
}

// Finish makes a file part exactly length bytes long; devices keep their
// size. Then it syncs.
func (p *Part) Finish(length int64) error {
	if !p.Device {
		if err := p.Truncate(length); err != nil {
			return fmt.Errorf("truncate %s: %w", p.Path, err)
		}
	}
	if err := p.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", p.Path, err)
	}
	return nil
}
