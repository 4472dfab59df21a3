// Package bootenv owns the box's two slots and the boot loader's view of
// them: Slots (the parts of slot a and slot b — root partition, kernel and
// initrd files or the Pi's boot partition — written only when the box did
// not boot from them), and two boot environments that arm a slot for a
// counted trial, commit it, or disarm it: SystemdBoot (systemd-boot boot
// counting with Type #1 entries on the ESP) and Tryboot (the Raspberry Pi
// firmware's autoboot.txt and one-shot tryboot). FakeSystemdBoot and
// FakePi play the firmware for tests: they read the same files and make
// the same choices as the real loaders.
//
// Every change a boot loader reads is written to a temporary file, synced
// and renamed last; every write goes through FS so tests can drop what was
// not synced. CompareVersions is systemd-boot's version order, shared with
// the update engine.
//
// Imported by package firmware (the update engine) and by appliance, which
// builds the slots and the boot environment from the box's configuration.
package bootenv
