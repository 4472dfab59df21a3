#!/bin/bash
# Assembles the factory disk image: a GPT disk whose partitions are the
# fixed-size definitions of image/repart.d (SizeMinBytes = SizeMaxBytes:
# the ESP, root A, root B), in file order. /var is not in the image:
# systemd-repart creates it at first boot over the rest of the disk.
#
#   ESP     systemd-boot (also as the removable-media EFI/BOOT/BOOTX64.EFI),
#           loader.conf, the entry of slot A, slot A's kernel and initrd in
#           /preau/a/
#   root A  the slot image
#   root B  zeros (sparse): never written, never a fallback
#
# No loop device, no mount: the ESP is filled with mtools, partitions are
# written at their offsets. Partition and disk GUIDs derive from the
# version, times from SOURCE_DATE_EPOCH: same inputs, same bytes.
#
# usage: mkdisk.sh SLOT_IMG BOOT_DIR VERSION OUT
#   BOOT_DIR holds vmlinuz, initrd.img and systemd-bootx64.efi
#   (finalize-rootfs.sh's BOOT_OUT).
# env:   SOURCE_DATE_EPOCH (required), PREAU_CMDLINE_EXTRA (appended to the
#        kernel command line of slot A's entry)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
defs="$here/../repart.d"
[ $# -eq 4 ] || { echo "usage: mkdisk.sh SLOT_IMG BOOT_DIR VERSION OUT" >&2; exit 2; }
slot=$1 boot=$2 version=$3 out=$4
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set}"
for f in "$slot" "$boot/vmlinuz" "$boot/initrd.img" "$boot/systemd-bootx64.efi"; do
	[ -f "$f" ] || { echo "mkdisk: missing $f" >&2; exit 1; }
done

MiB=$((1024 * 1024))
# bytes "256M" → 268435456 (systemd-repart's units are powers of 1024).
bytes() {
	local v=$1 n u
	n=${v%[KMGTkmgt]}
	u=${v#"$n"}
	case $u in
	"") echo "$n" ;;
	K | k) echo $((n * 1024)) ;;
	M | m) echo $((n * MiB)) ;;
	G | g) echo $((n * 1024 * MiB)) ;;
	T | t) echo $((n * 1024 * 1024 * MiB)) ;;
	esac
}
key() { sed -n "s/^$2=//p" "$1" | tail -n 1; }
guid() { # stable GUID from a name
	printf 'preau %s %s' "$version" "$1" | sha256sum |
		sed -E 's/^(.{8})(.{4}).(.{3}).(.{3})(.{12}).*/\1-\2-4\3-8\4-\5/'
}
type_guid() {
	case $1 in
	esp) echo C12A7328-F81F-11D2-BA4B-00A0C93EC93B ;;
	root-x86-64) echo 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 ;;
	linux-generic) echo 0FC63DAF-8483-4772-8E79-3D69D8477DE4 ;;
	*) echo "mkdisk: partition type $1 unknown to mkdisk.sh" >&2; return 1 ;;
	esac
}

work=$(mktemp -d "${TMPDIR:-/tmp}/preau-mkdisk.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Partition table from the fixed-size definitions.
labels=() starts=() sizes=()
start=$MiB
table="$work/table"
{
	echo "label: gpt"
	echo "label-id: $(guid disk)"
	echo "unit: sectors"
	echo "first-lba: 2048"
} >"$table"
for def in "$defs"/*.conf; do
	min=$(key "$def" SizeMinBytes) max=$(key "$def" SizeMaxBytes)
	[ -n "$min" ] && [ "$min" = "$max" ] || continue
	label=$(key "$def" Label) type=$(key "$def" Type)
	size=$(bytes "$min")
	[ $((size % MiB)) -eq 0 ] || { echo "mkdisk: $def: size must be whole MiB" >&2; exit 1; }
	echo "start=$((start / 512)), size=$((size / 512)), type=$(type_guid "$type"), uuid=$(guid "$label"), name=\"$label\"" >>"$table"
	labels+=("$label") starts+=("$start") sizes+=("$size")
	start=$((start + size))
done
total=$((start + MiB))

index() { local i; for i in "${!labels[@]}"; do [ "${labels[$i]}" = "$1" ] && { echo "$i"; return; }; done; echo "mkdisk: no partition $1 in $defs" >&2; return 1; }
esp=$(index preau-esp) a=$(index preau-root-a) b=$(index preau-root-b)
slotsize=$(stat -c %s "$slot")
[ "$slotsize" -le "${sizes[$a]}" ] || { echo "mkdisk: slot image ($slotsize bytes) larger than slot A (${sizes[$a]})" >&2; exit 1; }
[ "${sizes[$b]}" -eq "${sizes[$a]}" ] || { echo "mkdisk: slots A and B differ in size" >&2; exit 1; }

# The ESP.
espimg="$work/esp.img"
truncate -s "${sizes[$esp]}" "$espimg"
mkfs.vfat -F 32 -n PREAU-ESP -i "$(guid esp-volume | cut -c1-8)" --invariant "$espimg" >/dev/null
stage="$work/esp"
mkdir -p "$stage/EFI/BOOT" "$stage/EFI/systemd" "$stage/loader/entries" "$stage/preau/a"
cp "$boot/systemd-bootx64.efi" "$stage/EFI/BOOT/BOOTX64.EFI"
cp "$boot/systemd-bootx64.efi" "$stage/EFI/systemd/systemd-bootx64.efi"
cp "$boot/vmlinuz" "$stage/preau/a/vmlinuz"
cp "$boot/initrd.img" "$stage/preau/a/initrd.img"
# Entries sort by sort-key, then newest version first; an entry whose
# tries ran out sorts last. No menu, no editing of the command line.
cat >"$stage/loader/loader.conf" <<EOF
default preau-*
timeout 0
editor no
auto-entries no
auto-firmware no
EOF
cat >"$stage/loader/entries/preau-a.conf" <<EOF
title Préau $version (A)
sort-key preau
version $version
linux /preau/a/vmlinuz
initrd /preau/a/initrd.img
options root=PARTLABEL=preau-root-a rootfstype=erofs ro console=tty0 console=ttyS0,115200 systemd.gpt_auto=0 panic=30${PREAU_CMDLINE_EXTRA:+ $PREAU_CMDLINE_EXTRA}
EOF
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
# Directories first, then files, in a fixed order; mtools keeps the times
# (-m) and takes a fixed "now" for directories from the fake clock below.
(
	cd "$stage"
	find . -mindepth 1 -type d | LC_ALL=C sort | while read -r d; do
		mmd -i "$espimg" "::/${d#./}"
	done
	find . -type f | LC_ALL=C sort | while read -r f; do
		mcopy -m -i "$espimg" "$f" "::/${f#./}"
	done
)

# The disk.
rm -f "$out"
mkdir -p "$(dirname "$out")"
truncate -s "$total" "$out"
sfdisk --quiet --no-reread --no-tell-kernel "$out" <"$table"
dd if="$espimg" of="$out" bs=1M seek=$((starts[esp] / MiB)) conv=notrunc,sparse status=none
dd if="$slot" of="$out" bs=1M seek=$((starts[a] / MiB)) conv=notrunc,sparse status=none
sync "$out"
echo "mkdisk: $out  $total bytes  sha256 $(sha256sum "$out" | cut -d' ' -f1)"
