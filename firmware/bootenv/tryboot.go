package bootenv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TrybootConfig configures Tryboot.
type TrybootConfig struct {
	// Autoboot is the path of autoboot.txt on the Pi's first FAT
	// partition (the one the firmware reads first). Required.
	Autoboot string
	// Partitions are the numbers of the boot (FAT) partitions of slot a
	// and slot b. Defaults 2 and 3.
	Partitions SlotPartitions
	// FS is the file system; nil means the operating system's.
	FS FS
}

// SlotPartitions are the boot partition numbers of slot a and slot b.
type SlotPartitions struct{ A, B int }

func (p SlotPartitions) of(slot string) int {
	if slot == SlotA {
		return p.A
	}
	return p.B
}

func (p SlotPartitions) slot(n int) (string, bool) {
	switch n {
	case p.A:
		return SlotA, true
	case p.B:
		return SlotB, true
	}
	return "", false
}

// WithDefaults fills the zero fields.
func (c TrybootConfig) WithDefaults() TrybootConfig {
	if c.Partitions == (SlotPartitions{}) {
		c.Partitions = SlotPartitions{2, 3}
	}
	if c.FS == nil {
		c.FS = OS{}
	}
	return c
}

// Validate checks the configuration.
func (c TrybootConfig) Validate() error {
	if c.Autoboot == "" {
		return errors.New("bootenv: tryboot: autoboot: required")
	}
	if c.Partitions.A < 1 || c.Partitions.B < 1 || c.Partitions.A > 63 || c.Partitions.B > 63 || c.Partitions.A == c.Partitions.B {
		return fmt.Errorf("bootenv: tryboot: partitions %d and %d: want two different numbers from 1 to 63", c.Partitions.A, c.Partitions.B)
	}
	return nil
}

// Tryboot arms and commits slots with the Raspberry Pi firmware's A/B
// "tryboot" (Pi 4 and 5). autoboot.txt reads:
//
//	[all]
//	tryboot_a_b=1
//	boot_partition=2
//	[tryboot]
//	boot_partition=3
//
// A normal boot uses [all]: the committed slot. A reboot with the tryboot
// flag ("reboot '0 tryboot'", one shot, cleared by the firmware) uses
// [tryboot]: the slot on trial, once. If that boot does not commit, the
// next reboot is a normal one and returns to the committed slot. Outside
// a trial [tryboot] names the committed slot too, so a stray tryboot
// reboot never starts a slot that was never committed. Every change
// rewrites autoboot.txt atomically (temporary file, sync, rename, sync).
type Tryboot struct {
	cfg TrybootConfig
	fs  FS
}

// NewTryboot validates cfg; it does no I/O.
func NewTryboot(cfg TrybootConfig) (*Tryboot, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Tryboot{cfg: cfg, fs: cfg.FS}, nil
}

// OneShot is true: the trial needs a reboot with the tryboot flag.
func (t *Tryboot) OneShot() bool { return true }

// Autoboot is the parsed autoboot.txt: boot_partition of [all] and of
// [tryboot] (0 when absent) and whether tryboot_a_b=1.
type Autoboot struct {
	All, Try int
	AB       bool
}

// ParseAutoboot reads autoboot.txt the way the Pi firmware does for the
// keys A/B updates use: "[section]" lines, "key=value" lines, '#'
// comments; the last value of a key in a section wins; [all] applies to
// every boot, [tryboot] only to a tryboot one.
func ParseAutoboot(s string) (Autoboot, error) {
	var a Autoboot
	section := "all"
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.ToLower(strings.TrimSpace(line[1 : len(line)-1]))
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case k == "boot_partition":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 63 {
				return a, fmt.Errorf("autoboot.txt: boot_partition=%q", v)
			}
			switch section {
			case "all":
				a.All = n
			case "tryboot":
				a.Try = n
			}
		case k == "tryboot_a_b" && section == "all":
			a.AB = v == "1"
		}
	}
	if a.All == 0 {
		return a, errors.New("autoboot.txt: no boot_partition in [all]")
	}
	return a, nil
}

func (a Autoboot) String() string {
	try := a.Try
	if try == 0 {
		try = a.All
	}
	return fmt.Sprintf("[all]\ntryboot_a_b=1\nboot_partition=%d\n[tryboot]\nboot_partition=%d\n", a.All, try)
}

func (t *Tryboot) read() (Autoboot, error) {
	b, err := readFile(t.fs, t.cfg.Autoboot, 64<<10)
	if err != nil {
		return Autoboot{}, err
	}
	a, err := ParseAutoboot(string(b))
	if err != nil {
		return a, err
	}
	if _, ok := t.cfg.Partitions.slot(a.All); !ok {
		return a, fmt.Errorf("autoboot.txt: [all] boot_partition=%d is neither slot's partition", a.All)
	}
	return a, nil
}

func (t *Tryboot) write(a Autoboot, old string) error {
	s := a.String()
	if s == old {
		return nil
	}
	return writeFileAtomic(t.fs, t.cfg.Autoboot, []byte(s), 0o644)
}

// ErrCommittedSlot is returned when asked to disarm or arm the committed
// slot.
var ErrCommittedSlot = errors.New("slot is the committed one")

func (t *Tryboot) change(slot, op string, f func(*Autoboot) error) error {
	if !ValidSlot(slot) {
		return fmt.Errorf("%s slot %q: unknown slot", op, slot)
	}
	raw, err := readFile(t.fs, t.cfg.Autoboot, 64<<10)
	if err != nil {
		return fmt.Errorf("%s slot %s: %w", op, slot, err)
	}
	a, err := t.read()
	if err != nil {
		return fmt.Errorf("%s slot %s: %w", op, slot, err)
	}
	if err := f(&a); err != nil {
		return fmt.Errorf("%s slot %s: %w", op, slot, err)
	}
	a.AB = true
	if err := t.write(a, string(raw)); err != nil {
		return fmt.Errorf("%s slot %s: %w", op, slot, err)
	}
	return nil
}

// Disarm points [tryboot] back at the committed slot.
func (t *Tryboot) Disarm(ctx context.Context, slot string) error {
	return t.change(slot, "disarm", func(a *Autoboot) error {
		if a.All == t.cfg.Partitions.of(slot) {
			return ErrCommittedSlot
		}
		a.Try = a.All
		return nil
	})
}

// Arm points [tryboot] at slot: the next reboot with the tryboot flag
// starts it, once.
func (t *Tryboot) Arm(ctx context.Context, slot, version string) error {
	return t.change(slot, "arm", func(a *Autoboot) error {
		if a.All == t.cfg.Partitions.of(slot) {
			return ErrCommittedSlot
		}
		a.Try = t.cfg.Partitions.of(slot)
		return nil
	})
}

// Commit makes slot the default ([all]) and the tryboot one.
func (t *Tryboot) Commit(ctx context.Context, slot string) error {
	return t.change(slot, "commit", func(a *Autoboot) error {
		n := t.cfg.Partitions.of(slot)
		a.All, a.Try = n, n
		return nil
	})
}

// Trial reports slot's state in autoboot.txt.
func (t *Tryboot) Trial(ctx context.Context, slot string) (Trial, error) {
	a, err := t.read()
	if err != nil {
		return Trial{}, fmt.Errorf("inspect slot %s: %w", slot, err)
	}
	n := t.cfg.Partitions.of(slot)
	return Trial{
		Armed:     a.Try == n && a.All != n,
		Committed: a.All == n,
		TriesLeft: -1,
		TriesDone: -1,
	}, nil
}
