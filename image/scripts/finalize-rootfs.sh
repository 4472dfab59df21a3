#!/bin/bash
# Turns a Debian tree (from mkosi or debootstrap-rootfs.sh) into the Préau
# root: our files from image/rootfs and image/repart.d, the preau binary,
# the preau user, enabled units, read-only-root links, a generic initramfs
# that can mount an EROFS root, and checks. Safe to run again on the same
# tree (e.g. with a new preau binary).
#
# usage: finalize-rootfs.sh ROOTFS PREAU_BIN BOOT_OUT
#   BOOT_OUT receives vmlinuz, initrd.img, systemd-bootx64.efi and
#   packages.txt (the exact package versions, also kept in the root).
# env:   SOURCE_DATE_EPOCH (required: fixed times for the initramfs)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=$(cd "$here/.." && pwd)
root=${1:?usage: finalize-rootfs.sh ROOTFS PREAU_BIN BOOT_OUT}
preau=${2:?usage: finalize-rootfs.sh ROOTFS PREAU_BIN BOOT_OUT}
bootout=${3:?usage: finalize-rootfs.sh ROOTFS PREAU_BIN BOOT_OUT}
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set}"
export SOURCE_DATE_EPOCH

log() { echo "finalize-rootfs: $*"; }

[ -x "$root/usr/bin/systemctl" ] || { log "$root is not a Debian tree with systemd"; exit 1; }
[ -x "$preau" ] || { log "preau binary $preau is not executable"; exit 1; }

in_root() {
	systemd-nspawn --quiet --register=no --keep-unit --as-pid2 --link-journal=no \
		--private-network --setenv=SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" \
		-D "$root" -- "$@"
}

# 1. Our files, owned by root whatever their owner in the work tree.
tar -C "$image/rootfs" --owner=0 --group=0 --numeric-owner -cf - . | tar -C "$root" -xf - --no-overwrite-dir
mkdir -p "$root/usr/lib/repart.d"
rm -f "$root"/usr/lib/repart.d/*.conf
install -m 0644 "$image"/repart.d/*.conf "$root/usr/lib/repart.d/"
install -m 0755 "$preau" "$root/usr/bin/preau"

# 2. Users (the root is read-only at run time: sysusers must not need to
# write /etc on the box), with reproducible password-change dates.
systemd-sysusers --root="$root"
days=$((SOURCE_DATE_EPOCH / 86400))
# Locked root password: the console shows the setup code; technicians use
# ssh keys from the admin network.
awk -F: -v OFS=: -v d="$days" '{ if ($3 != "") $3 = d; if ($1 == "root") $2 = "*"; print }' \
	"$root/etc/shadow" >"$root/etc/shadow.new"
chmod --reference="$root/etc/shadow" "$root/etc/shadow.new"
chown --reference="$root/etc/shadow" "$root/etc/shadow.new"
mv "$root/etc/shadow.new" "$root/etc/shadow"
rm -f "$root"/etc/passwd- "$root"/etc/group- "$root"/etc/shadow- "$root"/etc/gshadow-

# 3. Units.
systemctl --root="$root" enable \
	preau.service preau-boot-check.service preau-firstboot.service \
	preau-setup-code.service preau-network.service \
	nftables.service systemd-networkd.service systemd-resolved.service \
	systemd-timesyncd.service ssh.service
mkdir -p "$root/etc/systemd/system/sysinit.target.wants"
ln -sfn /usr/lib/systemd/system/systemd-repart.service "$root/etc/systemd/system/sysinit.target.wants/systemd-repart.service"
# The firmware engine, not the booted slot, decides what goes on the ESP;
# nothing on the box may install packages.
for u in systemd-boot-update.service apt-daily.timer apt-daily-upgrade.timer \
	apt-daily.service apt-daily-upgrade.service e2scrub_all.timer e2scrub_reap.service \
	systemd-firstboot.service; do
	ln -sfn /dev/null "$root/etc/systemd/system/$u"
done

# 4. A read-only root: everything that changes points to /run or /var.
printf 'uninitialized\n' >"$root/etc/machine-id"
chmod 0444 "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -sfn ../run/systemd/resolve/resolv.conf "$root/etc/resolv.conf"
ln -sfn /usr/share/zoneinfo/Europe/Paris "$root/etc/localtime"
echo Europe/Paris >"$root/etc/timezone"
echo preau >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tpreau\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
mkdir -p "$root/etc/preau" "$root/etc/issue.d" "$root/boot/efi"
ln -sfn /var/lib/preau/preau.toml "$root/etc/preau/preau.toml"
ln -sfn /run/preau-console/issue "$root/etc/issue.d/50-preau.issue"
rm -f "$root"/etc/ssh/ssh_host_*
rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/dpkg/dpkg.cfg.d/unsafe_io"
# Kernels and initrds reach the ESP through the build and the firmware
# engine, never through systemd-boot's kernel-install hooks.
rm -f "$root/etc/kernel/postinst.d/zz-systemd-boot" "$root/etc/initramfs/post-update.d/systemd-boot"

# 5. Initramfs: EROFS module, the machine-id hook, fixed times.
kver=$(basename "$(ls -d "$root"/lib/modules/* | sort -V | tail -n 1)")
[ -n "$kver" ] || { log "no kernel in $root/lib/modules"; exit 1; }
rm -f "$root/boot/initrd.img-$kver"
in_root update-initramfs -c -k "$kver"
rm -f "$root"/boot/*.old-dkms "$root"/boot/initrd.img-*.bak

# 6. What the build exports, and the package list, in the root too.
mkdir -p "$bootout" "$root/usr/lib/preau"
dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Package} ${Version} ${Architecture}\n' | sort >"$root/usr/lib/preau/packages.txt"
cp "$root/usr/lib/preau/packages.txt" "$bootout/packages.txt"
install -m 0644 "$root/boot/vmlinuz-$kver" "$bootout/vmlinuz"
install -m 0644 "$root/boot/initrd.img-$kver" "$bootout/initrd.img"
install -m 0644 "$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$bootout/systemd-bootx64.efi"
echo "$kver" >"$bootout/kernel-version"

# 7. Checks: our units against the real tree, the firewall's syntax.
# Our units, and Debian's units we add drop-ins to.
units=()
for u in "$image"/rootfs/usr/lib/systemd/system/*.service "$image"/rootfs/usr/lib/systemd/system/*.service.d; do
	units+=("/usr/lib/systemd/system/$(basename "${u%.d}")")
done
if command -v systemd-analyze >/dev/null; then
	(cd "$root" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --root="$root" --man=no "${units[@]}")
fi
if command -v nft >/dev/null && [ "$(id -u)" = 0 ]; then
	sed "s|/var/lib/preau-system|$root/var/lib/preau-system|" "$root/etc/nftables.conf" | nft -c -f -
fi
log "root ready: kernel $kver, $(wc -l <"$root/usr/lib/preau/packages.txt") packages"
