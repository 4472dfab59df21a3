#!/bin/bash
# Builds the Préau OS image for x86-64 UEFI mini-PCs (run as root):
#
#   preau-VERSION-x86_64.img          the factory disk image (GPT: ESP,
#                                     root A, root B; /var is made at first
#                                     boot), to write on the box's disk
#   preau-VERSION-x86_64.root.img     the root slot image an update ships
#   preau-VERSION-x86_64.vmlinuz      the slot's kernel and initrd, which an
#   preau-VERSION-x86_64.initrd       update copies to the ESP
#   preau-VERSION-x86_64.packages     exact Debian package versions
#   SHA256SUMS
#
# usage: build.sh [--out DIR] [--work DIR] [--preau FILE] [--version V]
#                 [--builder mkosi|debootstrap] [--rebuild-rootfs]
#                 [--slot-only] [--no-preau]
#   --out DIR        where the artefacts go (default: build/image)
#   --work DIR       the cached root tree (default: OUT/work); it is reused
#                    while the recipe and the builder are unchanged
#   --preau FILE     the preau binary (or env PREAU_BIN; default bin/preau)
#   --version V      the image version (default: what `preau version` says)
#   --builder B      mkosi (default) or debootstrap (the fallback)
#   --rebuild-rootfs build the tree again even if the cache is current
#   --slot-only      only a root slot image, from the cached tree (e.g. a
#                    second version for the update tests); with --no-preau,
#                    a slot without the binary
# env:   SOURCE_DATE_EPOCH (default: the last commit that touched image/),
#        PREAU_DEBIAN_MIRROR (a Debian mirror or snapshot URL),
#        PREAU_IMAGE_TIMEOUT (seconds for the tree build, default 2400)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
out="" work="" preau=${PREAU_BIN:-} version=${PREAU_VERSION:-} builder=mkosi
rebuild="" slotonly="" nopreau=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--out) out=${2:?}; shift 2 ;;
	--work) work=${2:?}; shift 2 ;;
	--preau) preau=${2:?}; shift 2 ;;
	--version) version=${2:?}; shift 2 ;;
	--builder) builder=${2:?}; shift 2 ;;
	--rebuild-rootfs) rebuild=1; shift ;;
	--slot-only) slotonly=1; shift ;;
	--no-preau) nopreau=1; shift ;;
	-h | --help) usage ;;
	*) echo "build.sh: unknown argument $1" >&2; usage ;;
	esac
done
out=${out:-$repo/build/image}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=${work:-$out/work}
mkdir -p "$work"
work=$(cd "$work" && pwd)
preau=${preau:-$repo/bin/preau}
log() { echo "build.sh: $*"; }
die() { echo "build.sh: $*" >&2; exit 1; }
started=$(date +%s)

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot, device nodes)"
need=(mkfs.erofs:erofs-utils mkfs.vfat:dosfstools mmd:mtools mcopy:mtools sfdisk:fdisk
	systemd-nspawn:systemd-container systemd-sysusers:systemd sha256sum:coreutils debootstrap:debootstrap)
[ "$builder" = mkosi ] && need+=(mkosi:mkosi)
missing=()
for n in "${need[@]}"; do command -v "${n%%:*}" >/dev/null || missing+=("${n#*:}"); done
[ ${#missing[@]} -eq 0 ] || die "missing tools; apt-get install ${missing[*]}"
if [ -z "$nopreau" ]; then
	[ -x "$preau" ] || die "no preau binary at $preau (make build, or --preau FILE / PREAU_BIN)"
	preau=$(cd "$(dirname "$preau")" && pwd)/$(basename "$preau")
fi

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$here" log -1 --format=%ct -- . 2>/dev/null || true)
	SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$here/mkosi/mkosi.default")}
fi
export SOURCE_DATE_EPOCH
if [ -z "$version" ]; then
	[ -n "$nopreau" ] && die "--no-preau needs --version"
	version=$("$preau" version | awk '{print $2}')
fi
version=$(printf '%s' "$version" | tr -c 'A-Za-z0-9._+~-' '-')
base="preau-$version-x86_64"
rootfs="$work/rootfs"
bootdir="$work/boot"

# 1. The Debian tree, cached while the recipe is the same.
recipe=$(cat "$here/mkosi/mkosi.default" "$here/scripts/debootstrap-rootfs.sh" | sha256sum | cut -c1-16)
stamp="$builder $recipe ${PREAU_DEBIAN_MIRROR:-default}"
if [ -n "$slotonly" ]; then
	[ -f "$rootfs/usr/lib/preau/packages.txt" ] || die "--slot-only needs a finished tree in $rootfs: run build.sh once without it"
elif [ -n "$rebuild" ] || [ ! -d "$rootfs" ] || [ "$(cat "$work/rootfs.stamp" 2>/dev/null)" != "$stamp" ]; then
	log "building the Debian tree with $builder (bounded to ${PREAU_IMAGE_TIMEOUT:-2400} s)"
	rm -rf "$rootfs" "$work/rootfs.stamp" "$work/rootfs.manifest"
	t0=$(date +%s)
	case $builder in
	mkosi)
		mkdir -p "$work/apt-cache"
		(cd "$here/mkosi" && PATH="$here/scripts:$PATH" timeout "${PREAU_IMAGE_TIMEOUT:-2400}" \
			mkosi --default mkosi.default --output "$rootfs" --cache "$work/apt-cache" \
			${PREAU_DEBIAN_MIRROR:+--mirror "$PREAU_DEBIAN_MIRROR"} --force build)
		;;
	debootstrap)
		timeout "${PREAU_IMAGE_TIMEOUT:-2400}" "$here/scripts/debootstrap-rootfs.sh" "$rootfs"
		;;
	*) die "unknown builder $builder (mkosi or debootstrap)" ;;
	esac
	echo "$stamp" >"$work/rootfs.stamp"
	log "Debian tree built in $(($(date +%s) - t0)) s"
else
	log "reusing the Debian tree in $rootfs"
fi

# 2. Our part of the tree, the slot, the disk.
if [ -z "$slotonly" ]; then
	"$here/scripts/finalize-rootfs.sh" "$rootfs" "$preau" "$bootdir"
fi
slotargs=()
[ -n "$nopreau" ] && slotargs+=(--no-preau)
[ -n "$slotonly" ] && [ -z "$nopreau" ] && slotargs+=(--preau "$preau")
"$here/scripts/mkslot.sh" "${slotargs[@]}" "$rootfs" "$version" "$out/$base.root.img"
files=("$base.root.img")
if [ -z "$slotonly" ]; then
	cp "$bootdir/vmlinuz" "$out/$base.vmlinuz"
	cp "$bootdir/initrd.img" "$out/$base.initrd"
	cp "$bootdir/packages.txt" "$out/$base.packages"
	"$here/scripts/mkdisk.sh" "$out/$base.root.img" "$bootdir" "$version" "$out/$base.img"
	files+=("$base.img" "$base.vmlinuz" "$base.initrd" "$base.packages")
fi
(cd "$out" && sha256sum "${files[@]}" >"$base.SHA256SUMS")

echo
echo "Préau image $version (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH), in $(($(date +%s) - started)) s:"
for f in "${files[@]}"; do
	printf '  %-40s %12s bytes  %6s MiB on disk  sha256 %s\n' "$f" "$(stat -c %s "$out/$f")" \
		"$(($(du -k "$out/$f" | cut -f1) / 1024))" "$(sha256sum "$out/$f" | cut -d' ' -f1)"
done
