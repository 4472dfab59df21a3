#!/bin/bash
# Builds the Préau root file system tree with debootstrap alone, the
# fallback when mkosi is missing or broken. Same release, components and
# package list as image/mkosi/mkosi.default (its Packages= lines), same
# result: a tree that scripts/finalize-rootfs.sh then finishes.
#
# usage: debootstrap-rootfs.sh ROOTFS
# env:   PREAU_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#        PREAU_DEBIAN_SECURITY (default http://deb.debian.org/debian-security;
#        "none" leaves the security suite out, for a snapshot mirror)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
conf="$here/../mkosi/mkosi.default"
root=${1:?usage: debootstrap-rootfs.sh ROOTFS}
mirror=${PREAU_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${PREAU_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}

release=$(sed -n 's/^Release=//p' "$conf")
components=$(sed -n 's/^Repositories=//p' "$conf")
# The indented lines after "Packages=", commas dropped.
packages=$(awk '/^Packages=/{p=1; next} p && /^[ \t]/{gsub(/[ \t,]/, ""); if ($0 != "") print; next} {p=0}' "$conf")
[ -n "$release" ] && [ -n "$packages" ] || {
	echo "debootstrap-rootfs: cannot read release or packages from $conf" >&2
	exit 1
}

if [ -e "$root" ] && [ -n "$(ls -A "$root" 2>/dev/null)" ]; then
	echo "debootstrap-rootfs: $root is not empty" >&2
	exit 1
fi
mkdir -p "$root"

# Documentation is never installed (as mkosi's WithDocs=no does).
nodoc=(/usr/share/locale /usr/share/doc /usr/share/man /usr/share/groff /usr/share/info /usr/share/lintian /usr/share/linda)

debootstrap --variant=minbase --merged-usr --include=ca-certificates \
	--components="$components" "$release" "$root" "$mirror"

mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
for d in "${nodoc[@]}"; do echo "path-exclude $d/*"; done >"$root/etc/dpkg/dpkg.cfg.d/01_nodoc"
for d in "${nodoc[@]}"; do rm -rf "${root:?}$d"; done

{
	echo "deb $mirror $release ${components//,/ }"
	echo "deb $mirror $release-updates ${components//,/ }"
	[ "$security" = none ] || echo "deb $security $release-security ${components//,/ }"
} >"$root/etc/apt/sources.list"

# No daemon starts inside the build tree.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"

in_root() {
	systemd-nspawn --quiet --register=no --keep-unit --as-pid2 --link-journal=no \
		--bind-ro=/etc/resolv.conf --setenv=DEBIAN_FRONTEND=noninteractive \
		-D "$root" -- "$@"
}
in_root apt-get update
# shellcheck disable=SC2086 # one word per package
in_root apt-get install --assume-yes --no-install-recommends $packages
in_root apt-get clean
echo "debootstrap-rootfs: $root ready"
