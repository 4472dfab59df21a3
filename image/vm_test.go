//go:build vmtest

package image_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"preau/image/imagetest"
)

// The QEMU tier. It needs a built image: PREAU_IMAGE (the disk image) and,
// for the slot tests, PREAU_IMAGE_ROOTFS (build.sh's WORK/rootfs).
// image/test-vm.sh builds both and runs these tests.

const (
	guestAddr = "10.99.0.2"
	hostCIDR  = "10.99.0.1/24"
	diskSize  = 4 << 30
)

func requireVM(t *testing.T) string {
	t.Helper()
	disk := os.Getenv("PREAU_IMAGE")
	var missing []string
	if disk == "" {
		missing = append(missing, "PREAU_IMAGE (run image/test-vm.sh)")
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"qemu-system-x86_64", "mcopy", "sfdisk", "ip", "curl", "journalctl", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	for _, f := range []string{imagetest.OVMFCode, imagetest.OVMFVars} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f+" (ovmf)")
		}
	}
	if len(missing) > 0 {
		msg := "QEMU tier needs " + strings.Join(missing, ", ")
		if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return disk
}

// newDisk copies the image to a 4 GiB disk with its own UEFI variables
// and the provisioning files a technician would drop on the ESP.
func newDisk(ctx context.Context, t *testing.T, src string) (disk, vars string) {
	t.Helper()
	dir := t.TempDir()
	disk, vars = filepath.Join(dir, "disk.img"), filepath.Join(dir, "vars.fd")
	must(t, imagetest.CopyDisk(ctx, src, disk, diskSize))
	b, err := os.ReadFile(imagetest.OVMFVars)
	must(t, err)
	must(t, os.WriteFile(vars, b, 0o600))
	must(t, imagetest.PutESPFile(ctx, disk, "preau.toml", []byte("version = 1\n\n[box]\nname = \"École du Préau test\"\nuai = \"0751234A\"\n")))
	must(t, imagetest.PutESPFile(ctx, disk, "preau-network.conf", []byte(
		"# test LAN\naddress = "+guestAddr+"/24\ngateway = 10.99.0.1\ndns = 10.99.0.1\nadmin_network = 10.99.0.0/24\n")))
	return disk, vars
}

type bootResult struct {
	preauStarted time.Duration // QEMU start → "Started preau.service" (READY=1)
	poweredOff   time.Duration // QEMU start → QEMU exited after the power button
}

// boot starts the disk, waits for want on the console, runs during (the
// guest is up), presses the power button and waits for a clean poweroff.
func boot(ctx context.Context, t *testing.T, name, disk, vars string, ns *imagetest.Netns, want *regexp.Regexp, during func(vm *imagetest.VM)) bootResult {
	t.Helper()
	serial := filepath.Join(filepath.Dir(disk), name+".serial.log")
	vm, err := imagetest.StartVM(ctx, imagetest.VMConfig{Disk: disk, Vars: vars, Serial: serial, Netns: ns, Watchdog: true})
	must(t, err)
	defer func() {
		vm.Kill()
		if keep := os.Getenv("PREAU_VM_LOGS"); keep != "" {
			if b, err := os.ReadFile(serial); err == nil {
				_ = os.WriteFile(filepath.Join(keep, t.Name()+"-"+name+".serial.log"), b, 0o644)
			}
		}
		if t.Failed() {
			t.Logf("%s: console (last 6000 bytes):\n%s", name, tail(vm.Serial(), 6000))
		}
	}()
	var res bootResult
	wctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	if _, err := vm.WaitSerial(wctx, want); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	res.preauStarted = vm.Elapsed()
	if during != nil {
		during(vm)
	}
	// The power button, again if the guest was still busy starting.
	pressed := vm.Elapsed()
	for i := 0; ; i++ {
		if i > 0 {
			t.Logf("%s: power button pressed again (%d) at %.0f s", name, i+1, vm.Elapsed().Seconds())
		}
		must(t, vm.PowerDown())
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := vm.WaitSerial(pctx, regexp.MustCompile(`reboot: Power down`))
		cancel()
		if err == nil {
			break
		}
		if i == 6 {
			t.Fatalf("%s: no clean poweroff after the power button: %v", name, err)
		}
	}
	wctx2, cancel2 := context.WithTimeout(ctx, time.Minute)
	defer cancel2()
	if err := vm.Wait(wctx2); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	res.poweredOff = vm.Elapsed()
	t.Logf("%s: powered off %.0f s after the first press of the power button", name, (res.poweredOff - pressed).Seconds())
	return res
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestVMBootAndReboot boots the factory image twice on a LAN of its own:
// first boot (provisioning from the ESP, /var made and grown, machine id
// saved), preau started by systemd and READY, its portal reachable through
// the firewall, ssh open to the admin network only, other ports dropped,
// the hardware watchdog armed, a clean poweroff; the second boot is an
// ordinary one with the same machine id and no provisioning.
func TestVMBootAndReboot(t *testing.T) {
	src := requireVM(t)
	ctx := context.Background()
	disk, vars := newDisk(ctx, t, src)
	ns, err := imagetest.NewNetns(ctx, "preauvm", hostCIDR)
	must(t, err)
	t.Cleanup(func() { ns.Close() })

	started := regexp.MustCompile(`Started preau\.service`)
	lanChecks := func(vm *imagetest.VM) {
		t0 := time.Now()
		defer func() { t.Logf("LAN checks took %.0f s", time.Since(t0).Seconds()) }()
		// The portal on the LAN address, through nftables.
		var body []byte
		var err error
		for i := 0; i < 30; i++ {
			body, err = ns.Exec(ctx, "curl", "-sS", "--max-time", "5", "http://"+guestAddr+"/healthz")
			if err == nil {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil || !strings.Contains(string(body), `"status":"ok"`) {
			t.Errorf("GET http://%s/healthz from the LAN: %v: %s", guestAddr, err, body)
		}
		// ssh from the admin network: the port answers (once sshd made
		// the box's host keys).
		for i := 0; ; i++ {
			out, err := ns.Exec(ctx, "timeout", "10", "bash", "-c", "exec 3<>/dev/tcp/"+guestAddr+"/22")
			if err == nil {
				break
			}
			if i == 60 {
				t.Errorf("ssh port from the admin network: %v: %s", err, out)
				break
			}
			if i%10 == 0 {
				t.Logf("ssh port not answering yet (%.0f s): %v: %s", time.Since(t0).Seconds(), err, out)
			}
			time.Sleep(time.Second)
		}
		// Anything else is dropped (a time-out, not a refusal).
		start := time.Now()
		_, err = ns.Exec(ctx, "timeout", "4", "bash", "-c", "exec 3<>/dev/tcp/"+guestAddr+"/8080")
		if err == nil || time.Since(start) < 3*time.Second {
			t.Errorf("port 8080: got err=%v after %v, want a drop (time-out)", err, time.Since(start))
		}
	}

	first := boot(ctx, t, "boot1", disk, vars, ns, started, lanChecks)
	second := boot(ctx, t, "boot2", disk, vars, ns, started, lanChecks)
	t.Logf("first boot: preau READY %.0f s after power-on, powered off at %.0f s", first.preauStarted.Seconds(), first.poweredOff.Seconds())
	t.Logf("second boot: preau READY %.0f s after power-on, powered off at %.0f s", second.preauStarted.Seconds(), second.poweredOff.Seconds())

	// What the guest recorded on its /var.
	must(t, imagetest.WithVar(ctx, disk, func(dir string) error {
		ids, err := os.ReadDir(filepath.Join(dir, "log", "journal"))
		if err != nil {
			return err
		}
		if len(ids) != 1 {
			t.Errorf("journal folders (one per machine id): got %d, want 1 across both boots", len(ids))
		}
		mid, err := os.ReadFile(filepath.Join(dir, "lib", "preau-system", "machine-id"))
		if err != nil || len(ids) == 0 || strings.TrimSpace(string(mid)) != ids[0].Name() {
			t.Errorf("saved machine id %q (err %v), want the journal's %v", mid, err, ids)
		}
		cfg, err := os.ReadFile(filepath.Join(dir, "lib", "preau", "preau.toml"))
		if err != nil || !strings.Contains(string(cfg), "École du Préau test") {
			t.Errorf("provisioned preau.toml: %v: %s", err, cfg)
		}
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return err
		}
		// 4 GiB less the ESP and two 1 GiB slots: about 1.75 GiB.
		if size := int64(st.Blocks) * st.Bsize; size < 1600<<20 {
			t.Errorf("/var is %d bytes, want it over the rest of the 4 GiB disk (about 1.75 GiB)", size)
		}
		return nil
	}))
	jr := func(args ...string) string {
		out, err := imagetest.Journal(ctx, disk, args...)
		if err != nil {
			t.Errorf("journal %v: %v", args, err)
		}
		return out
	}
	if got := strings.Count(jr("-u", "preau-firstboot.service", "-o", "cat"), "provisioning done"); got != 1 {
		t.Errorf("provisioning runs: got %d, want 1 (first boot only)", got)
	}
	if boots := len(regexp.MustCompile(`(?m)\b[0-9a-f]{32}\b`).FindAllString(jr("--list-boots"), -1)); boots != 2 {
		t.Errorf("boots in the journal: got %d, want 2", boots)
	}
	all := jr("-o", "cat")
	for _, want := range []string{"Using hardware watchdog", "Detected first boot"} {
		if !strings.Contains(all, want) {
			t.Errorf("journal lacks %q", want)
		}
	}
	if n := strings.Count(all, "Detected first boot"); n != 1 {
		t.Errorf("first boots detected: got %d, want 1", n)
	}
	for _, l := range strings.Split(all, "\n") {
		if strings.Contains(l, "Failed to start") || strings.Contains(l, "ordering cycle") {
			t.Errorf("journal: %s", l)
		}
	}
	if t.Failed() {
		t.Logf("journal:\n%s", tail(jr("-u", "preau.service", "-u", "preau-firstboot.service", "-u", "ssh.service", "-u", "nftables.service", "-o", "short-monotonic"), 8000))
	}
}

// TestVMSlotBFallsBack writes a second version, whose preau exits at
// start, to slot B with a boot-counted entry (one try), as an update
// would: the box boots B once, the health gate never passes, so the entry
// is not blessed; the next boot falls back to A by itself.
func TestVMSlotBFallsBack(t *testing.T) {
	src := requireVM(t)
	rootfs := os.Getenv("PREAU_IMAGE_ROOTFS")
	if rootfs == "" {
		if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
			t.Fatal("PREAU_IMAGE_ROOTFS unset (run image/test-vm.sh)")
		}
		t.Skip("PREAU_IMAGE_ROOTFS unset (run image/test-vm.sh)")
	}
	ctx := context.Background()
	disk, vars := newDisk(ctx, t, src)
	dir := filepath.Dir(disk)

	// Version B: the same tree, another version, a preau that exits at once.
	broken := filepath.Join(dir, "preau-broken")
	must(t, os.WriteFile(broken, []byte("#!/bin/sh\necho 'preau: broken on purpose' >&2\nexit 1\n"), 0o755))
	slot := filepath.Join(dir, "b.root.img")
	t0 := time.Now()
	must(t, imagetest.BuildSlot(ctx, ".", rootfs, "0.0.2-broken", slot, imagetest.SlotOptions{Preau: broken}))
	t.Logf("slot image built in %.0f s", time.Since(t0).Seconds())
	must(t, imagetest.WriteSlot(ctx, disk, "preau-root-b", slot))
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		b, err := imagetest.ReadESPFile(ctx, disk, "preau/a/"+f)
		must(t, err)
		must(t, imagetest.PutESPFile(ctx, disk, "preau/b/"+f, b))
	}
	entryA, err := imagetest.ReadESPFile(ctx, disk, "loader/entries/preau-a.conf")
	must(t, err)
	// A version above any real one, so that B sorts first as a newer
	// update does.
	entryB := regexp.MustCompile(`(?m)^version .*$`).ReplaceAllString(string(entryA), "version 99.0.0")
	entryB = strings.NewReplacer("/preau/a/", "/preau/b/", "preau-root-a", "preau-root-b", "(A)", "(B)").Replace(entryB)
	must(t, imagetest.PutESPFile(ctx, disk, "loader/entries/preau-b+1.conf", []byte(entryB)))

	ns, err := imagetest.NewNetns(ctx, "preauvm", hostCIDR)
	must(t, err)
	t.Cleanup(func() { ns.Close() })

	b1 := boot(ctx, t, "slot-b", disk, vars, ns, regexp.MustCompile(`Failed to start preau\.service`), nil)
	if s := readSerial(t, dir, "slot-b"); !strings.Contains(s, "Welcome to Préau 0.0.2-broken") {
		t.Errorf("first boot after the update did not run slot B")
	}
	entries, err := imagetest.ListESP(ctx, disk, "loader/entries")
	must(t, err)
	if !contains(entries, "preau-b+0-1.conf") || !contains(entries, "preau-a.conf") {
		t.Errorf("entries after the try of B: %v, want preau-b+0-1.conf (no try left, not blessed) and preau-a.conf", entries)
	}
	b2 := boot(ctx, t, "fallback", disk, vars, ns, regexp.MustCompile(`Started preau\.service`), nil)
	if s := readSerial(t, dir, "fallback"); !strings.Contains(s, "Welcome to Préau ") || strings.Contains(s, "0.0.2-broken") {
		t.Errorf("the boot after the failed try did not fall back to slot A")
	}
	t.Logf("slot B try: %.0f s to preau's failure; fallback boot: preau READY at %.0f s", b1.preauStarted.Seconds(), b2.preauStarted.Seconds())
}

func readSerial(t *testing.T, dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name+".serial.log"))
	if err != nil {
		t.Fatal(err)
	}
	return imagetest.StripANSI(string(b))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
