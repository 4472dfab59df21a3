// Package imagetest drives the Préau OS image in tests: it copies and
// edits disk images (ESP files through mtools, partitions by label, slot
// images written at their offsets), builds slot images of other versions
// from the cached root tree, boots a disk in QEMU (UEFI, software
// emulation, a tap device inside a network namespace of its own, never
// QEMU's user-mode network) and reads the guest's journal afterwards.
//
// Only tests import it: the QEMU tier of image/ and, later, the update
// scenarios of firmware/. It imports no Préau package.
package imagetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Partition is one GPT entry of a disk image.
type Partition struct {
	Label  string // GPT partition name, e.g. "preau-root-b"
	Type   string // type GUID, upper case
	Start  int64  // bytes from the start of the disk
	Size   int64  // bytes
	Number int    // 1-based
}

// Partitions reads a disk image's GPT with sfdisk.
func Partitions(ctx context.Context, disk string) ([]Partition, error) {
	out, err := run(ctx, "sfdisk", "--json", disk)
	if err != nil {
		return nil, fmt.Errorf("read partitions of %s: %w", disk, err)
	}
	var table struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Node  string `json:"node"`
				Start int64  `json:"start"`
				Size  int64  `json:"size"`
				Type  string `json:"type"`
				Name  string `json:"name"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &table); err != nil {
		return nil, fmt.Errorf("read partitions of %s: %w", disk, err)
	}
	ss := table.PartitionTable.SectorSize
	if ss == 0 {
		ss = 512
	}
	var parts []Partition
	for i, p := range table.PartitionTable.Partitions {
		parts = append(parts, Partition{Label: p.Name, Type: strings.ToUpper(p.Type),
			Start: p.Start * ss, Size: p.Size * ss, Number: i + 1})
	}
	return parts, nil
}

// PartitionByLabel finds one partition of a disk image by its GPT name.
func PartitionByLabel(ctx context.Context, disk, label string) (Partition, error) {
	parts, err := Partitions(ctx, disk)
	if err != nil {
		return Partition{}, err
	}
	for _, p := range parts {
		if p.Label == label {
			return p, nil
		}
	}
	return Partition{}, fmt.Errorf("disk %s has no partition %q", disk, label)
}

// CopyDisk copies a disk image sparsely and makes the copy size bytes long
// (0 keeps the size): a bigger disk is what systemd-repart grows /var into
// at first boot.
func CopyDisk(ctx context.Context, src, dst string, size int64) error {
	if _, err := run(ctx, "cp", "--sparse=always", src, dst); err != nil {
		return fmt.Errorf("copy disk %s: %w", src, err)
	}
	if size > 0 {
		if err := os.Truncate(dst, size); err != nil {
			return fmt.Errorf("grow disk %s: %w", dst, err)
		}
	}
	return nil
}

// espSpec is the mtools "image@@offset" of a disk's ESP.
func espSpec(ctx context.Context, disk string) (string, error) {
	p, err := PartitionByLabel(ctx, disk, "preau-esp")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s@@%d", disk, p.Start), nil
}

// PutESPFile writes a file on the disk's ESP (name like "loader/entries/x.conf"),
// creating its folders and replacing an existing file.
func PutESPFile(ctx context.Context, disk, name string, data []byte) error {
	spec, err := espSpec(ctx, disk)
	if err != nil {
		return err
	}
	name = strings.TrimPrefix(filepath.ToSlash(name), "/")
	dir := ""
	for _, part := range strings.Split(filepath.Dir(name), "/") {
		if part == "." || part == "" {
			continue
		}
		dir += "/" + part
		// mmd fails on an existing folder: that is fine.
		_, _ = run(ctx, "mmd", "-i", spec, "::"+dir)
	}
	tmp, err := os.CreateTemp("", "preau-esp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if _, err := run(ctx, "mcopy", "-o", "-i", spec, tmp.Name(), "::/"+name); err != nil {
		return fmt.Errorf("put %s on the ESP of %s: %w", name, disk, err)
	}
	return nil
}

// ReadESPFile reads a file from the disk's ESP.
func ReadESPFile(ctx context.Context, disk, name string) ([]byte, error) {
	spec, err := espSpec(ctx, disk)
	if err != nil {
		return nil, err
	}
	out, err := run(ctx, "mtype", "-i", spec, "::/"+strings.TrimPrefix(name, "/"))
	if err != nil {
		return nil, fmt.Errorf("read %s from the ESP of %s: %w", name, disk, err)
	}
	return out, nil
}

// ListESP lists the files under a folder of the disk's ESP (names only).
func ListESP(ctx context.Context, disk, dir string) ([]string, error) {
	spec, err := espSpec(ctx, disk)
	if err != nil {
		return nil, err
	}
	out, err := run(ctx, "mdir", "-b", "-i", spec, "::/"+strings.Trim(dir, "/"))
	if err != nil {
		return nil, fmt.Errorf("list %s on the ESP of %s: %w", dir, disk, err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, filepath.Base(l))
		}
	}
	return names, nil
}

// WriteSlot writes a slot image into the partition with that label
// ("preau-root-a" or "preau-root-b") of a disk image, refusing an image
// larger than the slot. The rest of the partition is zeroed.
func WriteSlot(ctx context.Context, disk, label, slotImage string) error {
	p, err := PartitionByLabel(ctx, disk, label)
	if err != nil {
		return err
	}
	src, err := os.Open(slotImage)
	if err != nil {
		return fmt.Errorf("write slot %s: %w", label, err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	if st.Size() > p.Size {
		return fmt.Errorf("write slot %s: image %s is %d bytes, the slot %d", label, slotImage, st.Size(), p.Size)
	}
	dst, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("write slot %s: %w", label, err)
	}
	defer dst.Close()
	if _, err := io.Copy(io.NewOffsetWriter(dst, p.Start), src); err != nil {
		return fmt.Errorf("write slot %s: %w", label, err)
	}
	// Zero the tail so that no older file system shows through; holes, not writes.
	if err := punchHole(dst, p.Start+st.Size(), p.Size-st.Size()); err != nil {
		return fmt.Errorf("write slot %s: clear the tail: %w", label, err)
	}
	return dst.Sync()
}

// SlotOptions vary a slot image built by BuildSlot.
type SlotOptions struct {
	// Preau replaces /usr/bin/preau with this file.
	Preau string
	// NoPreau leaves /usr/bin/preau out (a broken update).
	NoPreau bool
	// SourceDateEpoch fixes every file's time; 0 means 1.
	SourceDateEpoch int64
}

// BuildSlot makes a root slot image of the given version from a finished
// root tree (build.sh's WORK/rootfs) with image/scripts/mkslot.sh; the
// tree is left unchanged.
func BuildSlot(ctx context.Context, imageDir, rootfs, version, out string, opt SlotOptions) error {
	args := []string{filepath.Join(imageDir, "scripts", "mkslot.sh")}
	if opt.NoPreau {
		args = append(args, "--no-preau")
	} else if opt.Preau != "" {
		args = append(args, "--preau", opt.Preau)
	}
	args = append(args, rootfs, version, out)
	sde := opt.SourceDateEpoch
	if sde == 0 {
		sde = 1
	}
	cmd := exec.CommandContext(ctx, "bash", args...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", sde))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build slot %s: %w: %s", version, err, out)
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
