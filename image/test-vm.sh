#!/bin/bash
# The QEMU tier of the image: builds the image with build.sh (unless
# --image is given), then boots it in QEMU (UEFI/OVMF, software emulation,
# a tap device in a network namespace of the test's own, serial console
# captured) through the Go tests of image/ with the build tag vmtest.
# Run as root.
#
# usage: test-vm.sh [--image DISK --rootfs DIR] [--out DIR] [-run REGEXP]
#   --image DISK   an already built disk image (skips the build)
#   --rootfs DIR   its finished root tree (build.sh's WORK/rootfs), for the
#                  slot tests
#   --out DIR      build.sh's --out (default build/image)
#   -run REGEXP    which tests (default all: TestVM)
# env: PREAU_BIN (the preau binary for the build, default bin/preau)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
image="" rootfs="" out="$repo/build/image" run="TestVM"
while [ $# -gt 0 ]; do
	case $1 in
	--image) image=${2:?}; shift 2 ;;
	--rootfs) rootfs=${2:?}; shift 2 ;;
	--out) out=${2:?}; shift 2 ;;
	-run) run=${2:?}; shift 2 ;;
	*) echo "usage: test-vm.sh [--image DISK --rootfs DIR] [--out DIR] [-run REGEXP]" >&2; exit 2 ;;
	esac
done

if [ -z "$image" ]; then
	"$here/build.sh" --out "$out" | tee "$out.build.log"
	image=$(ls -t "$out"/preau-*-x86_64.img | head -n 1)
	rootfs="$out/work/rootfs"
fi
image=$(cd "$(dirname "$image")" && pwd)/$(basename "$image")
[ -z "$rootfs" ] || rootfs=$(cd "$rootfs" && pwd)

cd "$repo"
PREAU_IMAGE="$image" PREAU_IMAGE_ROOTFS="$rootfs" \
	go test -tags 'vmtest sqlite_fts5' -count=1 -timeout 45m -v -run "$run" ./image/
