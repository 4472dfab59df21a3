package imagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Firmware files of Debian's ovmf package.
const (
	OVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

func punchHole(f *os.File, off, n int64) error {
	if n <= 0 {
		return nil
	}
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}

var nsCounter atomic.Int64

// Netns is a network namespace with one tap device, the guest's link: the
// host side of the test talks to the guest only inside it.
type Netns struct {
	Name string
	Tap  string
	// HostAddr is the namespace's address on the tap (CIDR).
	HostAddr string
}

// NewNetns creates a namespace with a unique name (prefix, pid, counter)
// and a tap device holding hostCIDR (e.g. "10.99.0.1/24").
func NewNetns(ctx context.Context, prefix, hostCIDR string) (*Netns, error) {
	n := &Netns{Name: fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), nsCounter.Add(1)), Tap: "tap0", HostAddr: hostCIDR}
	steps := [][]string{
		{"ip", "netns", "add", n.Name},
		{"ip", "-n", n.Name, "link", "set", "lo", "up"},
		{"ip", "-n", n.Name, "tuntap", "add", "dev", n.Tap, "mode", "tap"},
		{"ip", "-n", n.Name, "addr", "add", hostCIDR, "dev", n.Tap},
		{"ip", "-n", n.Name, "link", "set", n.Tap, "up"},
	}
	for i, s := range steps {
		if _, err := run(ctx, s[0], s[1:]...); err != nil {
			if i > 0 {
				n.Close()
			}
			return nil, fmt.Errorf("create namespace %s: %w", n.Name, err)
		}
	}
	return n, nil
}

// Exec runs a command inside the namespace and returns its output.
func (n *Netns) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	return run(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Close deletes the namespace (and its tap).
func (n *Netns) Close() error {
	if _, err := run(context.Background(), "ip", "netns", "del", n.Name); err != nil {
		return err
	}
	return nil
}

// VMConfig is one boot of a disk image.
type VMConfig struct {
	Disk string
	// Vars is the UEFI variable store, kept across the boots of one disk
	// (copy OVMFVars once per disk; never change the devices between boots).
	Vars string
	// Serial receives the serial console.
	Serial string
	// Netns, when set, gives the guest a virtio NIC on its tap device.
	Netns *Netns
	// MemoryMiB defaults to 1024.
	MemoryMiB int
	// Watchdog adds an i6300ESB hardware watchdog.
	Watchdog bool
}

// VM is a running QEMU.
type VM struct {
	cfg     VMConfig
	cmd     *exec.Cmd
	monitor string
	done    chan struct{}
	err     error
	started time.Time
	stderr  bytes.Buffer
	mu      sync.Mutex
}

// StartVM boots the disk in QEMU: q35, OVMF, software emulation, a
// virtio disk, the serial console to cfg.Serial, no display, no reboot
// (a reboot ends QEMU), and either no network or the namespace's tap.
func StartVM(ctx context.Context, cfg VMConfig) (*VM, error) {
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 1024
	}
	dir, err := os.MkdirTemp("", "preau-vm-")
	if err != nil {
		return nil, err
	}
	vm := &VM{cfg: cfg, monitor: filepath.Join(dir, "monitor.sock"), done: make(chan struct{})}
	args := []string{
		"-machine", "q35", "-m", fmt.Sprint(cfg.MemoryMiB), "-smp", "2",
		"-no-reboot", "-display", "none", "-vga", "std",
		"-drive", "if=pflash,format=raw,readonly=on,file=" + OVMFCode,
		"-drive", "if=pflash,format=raw,file=" + cfg.Vars,
		"-drive", "file=" + cfg.Disk + ",format=raw,if=virtio,cache=unsafe",
		"-serial", "file:" + cfg.Serial,
		"-monitor", "unix:" + vm.monitor + ",server,nowait",
	}
	if cfg.Watchdog {
		args = append(args, "-device", "i6300esb")
	}
	name := "qemu-system-x86_64"
	if cfg.Netns != nil {
		args = append(args, "-netdev", "tap,id=lan,ifname="+cfg.Netns.Tap+",script=no,downscript=no",
			"-device", "virtio-net-pci,netdev=lan,mac=52:54:00:70:72:65")
		args = append([]string{"netns", "exec", cfg.Netns.Name, name}, args...)
		name = "ip"
	} else {
		args = append(args, "-nic", "none")
	}
	vm.cmd = exec.CommandContext(ctx, name, args...)
	vm.cmd.Stderr = &vm.stderr
	vm.cmd.Stdout = &vm.stderr
	vm.started = time.Now()
	if err := vm.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	go func() {
		err := vm.cmd.Wait()
		vm.mu.Lock()
		if err != nil {
			vm.err = fmt.Errorf("qemu: %w: %s", err, strings.TrimSpace(vm.stderr.String()))
		}
		vm.mu.Unlock()
		os.RemoveAll(dir)
		close(vm.done)
	}()
	return vm, nil
}

// Elapsed is the time since QEMU started.
func (vm *VM) Elapsed() time.Duration { return time.Since(vm.started) }

// Serial returns the console output so far, without colour codes.
func (vm *VM) Serial() string {
	b, _ := os.ReadFile(vm.cfg.Serial)
	return StripANSI(string(b))
}

var ansiRe = regexp.MustCompile(`\x1b\[[0-9;=?]*[A-Za-z]`)

// StripANSI removes terminal escape sequences (systemd's colours).
func StripANSI(s string) string { return ansiRe.ReplaceAllString(s, "") }

// WaitSerial waits until the console shows a match of re, QEMU exits, or
// ctx ends. It returns the match.
func (vm *VM) WaitSerial(ctx context.Context, re *regexp.Regexp) (string, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := re.FindString(vm.Serial()); m != "" {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for %q on the console: %w", re, ctx.Err())
		case <-vm.done:
			if m := re.FindString(vm.Serial()); m != "" {
				return m, nil
			}
			return "", fmt.Errorf("wait for %q on the console: qemu exited (%v)", re, vm.Err())
		case <-tick.C:
		}
	}
}

// PowerDown presses the virtual power button (ACPI): systemd-logind turns
// it into a clean poweroff.
func (vm *VM) PowerDown() error {
	c, err := net.DialTimeout("unix", vm.monitor, 5*time.Second)
	if err != nil {
		return fmt.Errorf("qemu monitor: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// Wait for the prompt, send the command, and wait for the next prompt:
	// QEMU may drop a command still unread when the connection closes.
	prompt := func(s string) bool { return strings.Contains(s, "(qemu)") }
	if err := readUntil(c, prompt); err != nil {
		return fmt.Errorf("qemu monitor: %w", err)
	}
	if _, err := c.Write([]byte("system_powerdown\n")); err != nil {
		return fmt.Errorf("qemu monitor: %w", err)
	}
	// The echo of the command, then a prompt after it: the command ran.
	done := func(s string) bool {
		i := strings.LastIndex(s, "system_powerdown")
		return i >= 0 && strings.Contains(s[i:], "(qemu)")
	}
	if err := readUntil(c, done); err != nil {
		return fmt.Errorf("qemu monitor: system_powerdown: %w", err)
	}
	return nil
}

// readUntil reads from c until what it read satisfies ok.
func readUntil(c net.Conn, ok func(string) bool) error {
	var seen strings.Builder
	buf := make([]byte, 512)
	for !ok(seen.String()) {
		k, err := c.Read(buf)
		if err != nil {
			return err
		}
		seen.Write(buf[:k])
	}
	return nil
}

// Kill stops QEMU at once (a power cut).
func (vm *VM) Kill() {
	if vm.cmd.Process != nil {
		_ = vm.cmd.Process.Kill()
	}
	<-vm.done
}

// Wait waits for QEMU to exit by itself, or kills it when ctx ends.
func (vm *VM) Wait(ctx context.Context) error {
	select {
	case <-vm.done:
		return vm.Err()
	case <-ctx.Done():
		vm.Kill()
		return fmt.Errorf("qemu did not exit: %w", ctx.Err())
	}
}

// Err is QEMU's exit error, once it exited.
func (vm *VM) Err() error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.err
}

// Journal reads the guest's persistent journal from the disk's /var
// partition (mounted read-only through a loop device) with the host's
// journalctl; args are journalctl's, e.g. "-u", "preau.service", "-o", "cat".
func Journal(ctx context.Context, disk string, args ...string) (string, error) {
	var out string
	err := WithVar(ctx, disk, func(dir string) error {
		b, err := run(ctx, "journalctl", append([]string{"--no-pager", "-D", filepath.Join(dir, "log", "journal")}, args...)...)
		out = string(b)
		return err
	})
	return out, err
}

// WithVar mounts the disk's /var partition (label preau-var) read-only
// for the time of fn.
func WithVar(ctx context.Context, disk string, fn func(dir string) error) error {
	p, err := PartitionByLabel(ctx, disk, "preau-var")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "preau-var-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if _, err := run(ctx, "mount", "-t", "ext4", "-o", fmt.Sprintf("ro,noload,loop,offset=%d,sizelimit=%d", p.Start, p.Size), disk, dir); err != nil {
		return fmt.Errorf("mount /var of %s: %w", disk, err)
	}
	ferr := fn(dir)
	if _, err := run(context.Background(), "umount", dir); err != nil {
		return errors.Join(ferr, fmt.Errorf("unmount /var of %s: %w", disk, err))
	}
	return ferr
}
