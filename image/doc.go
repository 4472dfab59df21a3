// Package image holds the recipe of the Préau OS image, not Go code: the
// mkosi configuration and its debootstrap fallback, the files added to the
// Debian tree (systemd units, nftables ruleset, first-boot provisioning),
// the partition definitions (repart.d), build.sh and test-vm.sh. Its Go
// tests check the recipe: every unit passes `systemd-analyze verify`, the
// firewall parses, provisioning writes what it should, the disk layout
// matches the repart definitions; with the build tag vmtest they boot the
// built image in QEMU. imagetest holds the helpers of those tests.
//
// Nothing imports this package.
package image
