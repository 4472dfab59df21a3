#!/bin/bash
# Makes a root slot image (read-only EROFS) from a finished root tree, with
# its version stamped in /usr/lib/os-release (IMAGE_ID=preau,
# IMAGE_VERSION=…). The tree itself is never changed: the slot is built
# from a hard-linked copy in which only the stamped files are replaced, so
# several versions (or deliberately broken variants, for the update tests)
# come from one tree in seconds.
#
# usage: mkslot.sh [--preau FILE | --no-preau] ROOTFS VERSION OUT
#   --preau FILE  put FILE as /usr/bin/preau instead of the tree's
#   --no-preau    leave /usr/bin/preau out (a broken update, for tests)
# env:   SOURCE_DATE_EPOCH (required: every file gets this time)
set -euo pipefail

usage() { echo "usage: mkslot.sh [--preau FILE | --no-preau] ROOTFS VERSION OUT" >&2; exit 2; }
preau="" nopreau=""
while [ $# -gt 0 ]; do
	case $1 in
	--preau) preau=${2:?}; shift 2 ;;
	--no-preau) nopreau=1; shift ;;
	--) shift; break ;;
	-*) usage ;;
	*) break ;;
	esac
done
[ $# -eq 3 ] || usage
root=$1 version=$2 out=$3
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set}"
[[ $version =~ ^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$ ]] || {
	echo "mkslot: version \"$version\" must be letters, digits and ._+~- (64 at most)" >&2
	exit 2
}
[ -f "$root/usr/lib/os-release" ] || { echo "mkslot: $root is not a root tree" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/preau-mkslot.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree="$work/tree"
# Hard links where the tree and the work folder share a file system, a copy
# otherwise; /var's content is never part of a slot.
if ! cp -al "$root" "$tree" 2>/dev/null; then
	rm -rf "$tree"
	cp -a "$root" "$tree"
fi

# Replace (never edit in place: the inodes are shared with the tree).
osr="$tree/usr/lib/os-release"
debian=$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$osr" | sed 's/^Préau [^ ]* (\(.*\))$/\1/')
grep -v -E '^(IMAGE_ID|IMAGE_VERSION|PRETTY_NAME)=' "$osr" >"$work/os-release"
printf 'PRETTY_NAME="Préau %s (%s)"\nIMAGE_ID=preau\nIMAGE_VERSION=%s\n' "$version" "${debian:-Debian}" "$version" >>"$work/os-release"
rm -f "$osr"
install -m 0644 "$work/os-release" "$osr"
if [ -n "$nopreau" ]; then
	rm -f "$tree/usr/bin/preau"
elif [ -n "$preau" ]; then
	rm -f "$tree/usr/bin/preau"
	install -m 0755 "$preau" "$tree/usr/bin/preau"
fi

# The file system UUID is derived from the version: same input, same bytes.
uuid=$(printf 'preau-root %s' "$version" | sha256sum | sed -E 's/^(.{8})(.{4}).(.{3}).(.{3})(.{12}).*/\1-\2-4\3-8\4-\5/')
mkdir -p "$(dirname "$out")"
rm -f "$out"
mkfs.erofs --quiet -zlz4hc -T"$SOURCE_DATE_EPOCH" -U"$uuid" \
	--exclude-regex='^(var|tmp|run|dev|proc|sys)/.' \
	"$out" "$tree"
size=$(stat -c %s "$out")
echo "mkslot: $out  version $version  $size bytes  sha256 $(sha256sum "$out" | cut -d' ' -f1)"
