package image_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"preau/image/imagetest"
)

// repartDef is one file of image/repart.d.
type repartDef struct {
	file, label, typ string
	min, max         int64
}

func readRepartDefs(t *testing.T) []repartDef {
	t.Helper()
	files, err := filepath.Glob("repart.d/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no repart.d definitions: %v", err)
	}
	var defs []repartDef
	for _, f := range files {
		d := repartDef{file: filepath.Base(f)}
		fh, err := os.Open(f)
		must(t, err)
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
			if !ok || strings.HasPrefix(k, "#") {
				continue
			}
			switch k {
			case "Label":
				d.label = v
			case "Type":
				d.typ = v
			case "SizeMinBytes":
				d.min = repartBytes(t, v)
			case "SizeMaxBytes":
				d.max = repartBytes(t, v)
			}
		}
		fh.Close()
		defs = append(defs, d)
	}
	return defs
}

func repartBytes(t *testing.T, v string) int64 {
	mult := int64(1)
	switch v[len(v)-1] {
	case 'K':
		mult = 1 << 10
	case 'M':
		mult = 1 << 20
	case 'G':
		mult = 1 << 30
	}
	if mult > 1 {
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("size %q: %v", v, err)
	}
	return n * mult
}

var typeGUID = map[string]string{
	"esp":           "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
	"root-x86-64":   "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
	"linux-generic": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestSlotAndDisk builds a slot image from a small tree and a disk image
// from it, twice, with the image's own scripts: same inputs give the same
// bytes; the tree is never changed; the disk holds exactly the fixed-size
// partitions of repart.d in order, the ESP boots slot A; and, on a bigger
// disk, systemd-repart with the same definitions keeps them and adds /var
// over the rest (for real as root: formatted ext4).
func TestSlotAndDisk(t *testing.T) {
	requireTool(t, false, "bash", "mkfs.erofs", "mkfs.vfat", "mcopy", "mmd", "sfdisk")
	ctx := context.Background()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	for name, content := range map[string]string{
		"usr/lib/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n",
		"usr/bin/preau":      "#!/bin/sh\necho preau 1\n",
		"etc/hostname":       "preau\n",
		"var/lib/junk":       "never in a slot\n",
	} {
		p := filepath.Join(tree, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), 0o755))
	}
	osRelease, _ := os.ReadFile(filepath.Join(tree, "usr/lib/os-release"))

	slot := func(name, version string, extra ...string) (string, error) {
		out := filepath.Join(dir, name)
		args := append([]string{"scripts/mkslot.sh"}, extra...)
		cmd := exec.Command("bash", append(args, tree, version, out)...)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
		b, err := cmd.CombinedOutput()
		if err != nil {
			return string(b), err
		}
		return out, nil
	}
	s1, err := slot("s1.img", "1.2.3")
	must(t, err)
	s2, err := slot("s2.img", "1.2.3")
	must(t, err)
	if a, b := sha256File(t, s1), sha256File(t, s2); a != b {
		t.Errorf("two slot builds differ: %s %s", a, b)
	}
	s3, err := slot("s3.img", "1.2.4")
	must(t, err)
	if sha256File(t, s1) == sha256File(t, s3) {
		t.Errorf("versions 1.2.3 and 1.2.4 gave the same slot")
	}
	if got, _ := os.ReadFile(filepath.Join(tree, "usr/lib/os-release")); string(got) != string(osRelease) {
		t.Errorf("mkslot changed the tree's os-release: %q", got)
	}
	if out, err := slot("bad.img", "../../etc"); err == nil {
		t.Errorf("version ../../etc accepted: %s", out)
	}
	if os.Geteuid() == 0 {
		// Look inside the slot: version stamped, /var left out.
		mnt := filepath.Join(dir, "mnt")
		must(t, os.MkdirAll(mnt, 0o755))
		if out, err := exec.Command("mount", "-t", "erofs", "-o", "ro,loop", s1, mnt).CombinedOutput(); err != nil {
			t.Logf("cannot mount the EROFS slot here (%v: %s); skipping the look inside", err, out)
		} else {
			osr, _ := os.ReadFile(filepath.Join(mnt, "usr/lib/os-release"))
			_, junkErr := os.Stat(filepath.Join(mnt, "var/lib/junk"))
			exec.Command("umount", mnt).Run()
			if !strings.Contains(string(osr), "IMAGE_VERSION=1.2.3\n") || !strings.Contains(string(osr), `PRETTY_NAME="Préau 1.2.3 (Debian GNU/Linux 12 (bookworm))"`) {
				t.Errorf("slot os-release: %q", osr)
			}
			if junkErr == nil {
				t.Errorf("the slot holds /var's content")
			}
		}
	}

	// Two disks from the same inputs.
	boot := filepath.Join(dir, "boot")
	must(t, os.MkdirAll(boot, 0o755))
	for _, f := range []string{"vmlinuz", "initrd.img", "systemd-bootx64.efi"} {
		must(t, os.WriteFile(filepath.Join(boot, f), []byte("fake "+f), 0o644))
	}
	disk := func(name string) string {
		out := filepath.Join(dir, name)
		cmd := exec.Command("bash", "scripts/mkdisk.sh", s1, boot, "1.2.3", out)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mkdisk: %v\n%s", err, b)
		}
		return out
	}
	d1, d2 := disk("d1.img"), disk("d2.img")
	if a, b := sha256File(t, d1), sha256File(t, d2); a != b {
		t.Errorf("two disk builds differ: %s %s", a, b)
	}

	// The fixed-size definitions, in order; /var is left to first boot.
	parts, err := imagetest.Partitions(ctx, d1)
	must(t, err)
	var fixed []repartDef
	for _, d := range readRepartDefs(t) {
		if d.min != 0 && d.min == d.max {
			fixed = append(fixed, d)
		} else if d.label != "preau-var" {
			t.Errorf("%s: only /var may have a variable size", d.file)
		}
	}
	if len(parts) != len(fixed) {
		t.Fatalf("disk has %d partitions, repart.d %d fixed ones", len(parts), len(fixed))
	}
	for i, d := range fixed {
		p := parts[i]
		if p.Label != d.label || p.Size != d.min || p.Type != typeGUID[d.typ] || p.Start%(1<<20) != 0 {
			t.Errorf("partition %d: got %+v, want %s (%s, %d bytes, MiB-aligned)", i+1, p, d.label, d.typ, d.min)
		}
	}
	// The ESP boots slot A.
	entry, err := imagetest.ReadESPFile(ctx, d1, "loader/entries/preau-a.conf")
	must(t, err)
	for _, w := range []string{"version 1.2.3\n", "linux /preau/a/vmlinuz\n", "initrd /preau/a/initrd.img\n", "root=PARTLABEL=preau-root-a rootfstype=erofs ro", "sort-key preau\n"} {
		if !strings.Contains(string(entry), w) {
			t.Errorf("entry of slot A lacks %q:\n%s", w, entry)
		}
	}
	for _, f := range []string{"EFI/BOOT/BOOTX64.EFI", "EFI/systemd/systemd-bootx64.efi", "preau/a/vmlinuz", "preau/a/initrd.img", "loader/loader.conf"} {
		if _, err := imagetest.ReadESPFile(ctx, d1, f); err != nil {
			t.Errorf("ESP: %v", err)
		}
	}
	// Slot B can be written later, slot A holds the slot image.
	must(t, imagetest.WriteSlot(ctx, d1, "preau-root-b", s3))
	if _, err := imagetest.PartitionByLabel(ctx, d1, "preau-root-b"); err != nil {
		t.Error(err)
	}

	// First boot on a bigger disk: the box's own gpt-grow, then repart.
	requireTool(t, false, "systemd-repart")
	big := filepath.Join(dir, "big.img")
	must(t, imagetest.CopyDisk(ctx, d1, big, 4<<30))
	if out, err := exec.Command("sh", "rootfs/usr/lib/preau/gpt-grow", big).CombinedOutput(); err != nil {
		t.Fatalf("gpt-grow: %v\n%s", err, out)
	}
	defs, _ := filepath.Abs("repart.d")
	out, err := exec.Command("systemd-repart", "--dry-run=yes", "--no-pager", "--definitions="+defs, big).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "50-var.conf") || strings.Contains(string(out), "Can't fit") {
		t.Fatalf("systemd-repart --dry-run: %v\n%s", err, out)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: systemd-repart not run for real (it formats /var through a loop device)")
		return
	}
	if out, err := exec.Command("systemd-repart", "--dry-run=no", "--no-pager", "--definitions="+defs, big).CombinedOutput(); err != nil {
		t.Fatalf("systemd-repart: %v\n%s", err, out)
	}
	after, err := imagetest.Partitions(ctx, big)
	must(t, err)
	if len(after) != len(fixed)+1 {
		t.Fatalf("after repart: %d partitions, want %d", len(after), len(fixed)+1)
	}
	for i := range fixed {
		if after[i] != parts[i] {
			t.Errorf("repart changed partition %d: %+v → %+v", i+1, parts[i], after[i])
		}
	}
	v := after[len(after)-1]
	if v.Label != "preau-var" || v.Size < (4<<30)-parts[len(parts)-1].Start-parts[len(parts)-1].Size-(2<<20) {
		t.Errorf("/var after repart: %+v, want preau-var over the rest of the 4 GiB", v)
	}
	// Formatted: the box mounts it by label at once.
	if err := imagetest.WithVar(ctx, big, func(string) error { return nil }); err != nil {
		t.Errorf("mount the new /var: %v", err)
	}
	// A second run changes nothing.
	out, err = exec.Command("systemd-repart", "--dry-run=no", "--no-pager", "--definitions="+defs, big).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No changes") {
		t.Errorf("second systemd-repart: %v\n%s", err, out)
	}
}
