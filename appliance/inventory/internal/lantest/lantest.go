// Package lantest is a test-only kit for the inventory's LAN tests: it
// creates uniquely named network namespaces joined by veth pairs, runs
// commands and Go functions inside them, and starts avahi-daemon on a
// private D-Bus in a namespace. Everything it creates is removed in
// t.Cleanup, even after a failed test.
//
// It follows services/internal/netnstest, which Go's internal rule keeps
// out of reach of appliance/inventory. Only _test.go files of package
// inventory import it; it never touches the host's real interfaces.
//
// Tests that need root or a missing tool skip with a clear message, or
// fail when PREAU_REQUIRE_PEERS=1 (CI runs as root with every peer
// installed and must run them all).
package lantest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequirePeersEnv names the environment variable that turns skips into
// failures: CI sets it to 1.
const RequirePeersEnv = "PREAU_REQUIRE_PEERS"

func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequirePeersEnv) == "1" {
		t.Fatalf("%s (%s=1: this test must run)", msg, RequirePeersEnv)
	}
	t.Skip(msg)
}

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root to create network namespaces; run as root (CI does)")
	}
}

// RequireTool returns the path of the program name, or skips the test when
// it is not installed. It also looks in the sbin folders.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	skipOrFail(t, "needs the program %q; install its Debian package", name)
	return ""
}

var counter atomic.Int64

// NS is a network namespace created by the test.
type NS struct {
	Name string
	t    testing.TB
	once sync.Once
}

// NewNS creates a namespace named prefix-PID-N (unique across the test
// binaries of different packages run at once) with its loopback up; it is
// removed in t.Cleanup unless Remove was called before.
func NewNS(t testing.TB, prefix string) *NS {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "ip")
	ns := &NS{Name: fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), counter.Add(1)), t: t}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns.Name, err, out)
	}
	t.Cleanup(ns.Remove)
	ns.MustRun("ip", "link", "set", "lo", "up")
	return ns
}

// Remove ends the processes still running in the namespace (all started
// by this test) and deletes it, with its interfaces. It may be called
// before the cleanup, to make a device leave the LAN.
func (ns *NS) Remove() {
	ns.once.Do(func() {
		if out, err := exec.Command("ip", "netns", "pids", ns.Name).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			ns.t.Errorf("ip netns del %s: %v: %s", ns.Name, err, out)
		}
	})
}

// Exec returns a command that runs name with args inside the namespace.
func (ns *NS) Exec(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// MustRun runs name inside the namespace and returns its standard output;
// it fails the test on error.
func (ns *NS) MustRun(name string, args ...string) string {
	ns.t.Helper()
	cmd := ns.Exec(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		ns.t.Fatalf("in %s: %s %s: %v: %s", ns.Name, name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// Do runs fn on a locked OS thread switched into the namespace and returns
// its error; the caller's thread never changes namespace. Sockets fn opens
// belong to the namespace for their whole life.
func (ns *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: open own namespace: %w", ns.Name, err)
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns.Name))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: %w", ns.Name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: setns: %w", ns.Name, err)
			return
		}
		var ferr error
		func() {
			defer func() {
				if r := recover(); r != nil {
					ferr = fmt.Errorf("netns %s: panic: %v", ns.Name, r)
				}
			}()
			ferr = fn()
		}()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("netns %s: restore namespace: %w", ns.Name, err))
			return // the thread stays locked and ends with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// StartProcess runs name inside the namespace as a background peer,
// stopped by PID in t.Cleanup.
func (ns *NS) StartProcess(name string, args ...string) *Process {
	ns.t.Helper()
	return start(ns.t, name+" in "+ns.Name, ns.Exec(name, args...))
}

// Process is a long-running peer started by the kit.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedWriter
}

func start(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{}), out: &lockedWriter{}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.Stop)
	return p
}

// Stop sends SIGTERM, then SIGKILL after 3 s, and waits for the process.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns what the process wrote so far.
func (p *Process) Output() string { return p.out.String() }

type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(b)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// WaitFor polls cond every 100 ms until it is true or timeout passes.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Avahi is an avahi-daemon running in a namespace on its own private
// system D-Bus (a socket in a private folder, found through
// DBUS_SYSTEM_BUS_ADDRESS), with a fresh tmpfs on /run inside the mount
// namespace that "ip netns exec" gives it: several can run at once and
// nothing of the host's /run is touched.
type Avahi struct {
	ns      *NS
	busAddr string
	Daemon  *Process
}

// StartAvahi starts a private D-Bus and an avahi-daemon in ns that uses
// only the interface ifname (IPv4) and publishes its host name hostName.
// It returns once avahi-daemon reports its start-up complete; both are
// stopped by PID in t.Cleanup.
func StartAvahi(t testing.TB, ns *NS, ifname, hostName string) *Avahi {
	t.Helper()
	RequireRoot(t)
	dbus := RequireTool(t, "dbus-daemon")
	daemon := RequireTool(t, "avahi-daemon")
	RequireTool(t, "avahi-publish")

	// Short path: a unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "preau-inv-avahi-")
	if err != nil {
		t.Fatalf("avahi: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "bus")
	busConf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(busConf, []byte(fmt.Sprintf(busConfig, sock)), 0o644); err != nil {
		t.Fatalf("avahi: %v", err)
	}
	avahiConf := filepath.Join(dir, "avahi-daemon.conf")
	if err := os.WriteFile(avahiConf, []byte(fmt.Sprintf(avahiConfig, hostName, ifname)), 0o644); err != nil {
		t.Fatalf("avahi: %v", err)
	}
	a := &Avahi{ns: ns, busAddr: "unix:path=" + sock}
	bus := start(t, "dbus-daemon", exec.Command(dbus, "--config-file="+busConf, "--nofork", "--nopidfile"))
	if !WaitFor(5*time.Second, func() bool { _, err := os.Stat(sock); return err == nil || bus.Exited() }) || bus.Exited() {
		t.Fatalf("avahi: private dbus-daemon did not start: %s", bus.Output())
	}
	cmd := ns.Exec("sh", "-c", `mount -t tmpfs -o mode=0755 preau-test-run /run && mkdir -p /run/avahi-daemon && exec "$0" "$@"`,
		daemon, "--no-chroot", "--no-drop-root", "--no-rlimits", "-f", avahiConf)
	cmd.Env = a.env()
	a.Daemon = start(t, "avahi-daemon in "+ns.Name, cmd)
	ready := WaitFor(10*time.Second, func() bool {
		return strings.Contains(a.Daemon.Output(), "Server startup complete") || a.Daemon.Exited()
	})
	if !ready || a.Daemon.Exited() {
		t.Fatalf("avahi: avahi-daemon did not start in %s: %s", ns.Name, a.Daemon.Output())
	}
	return a
}

func (a *Avahi) env() []string {
	return append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+a.busAddr)
}

// Publish runs avahi-publish with args in the namespace on this daemon's
// bus and waits until it reports the service established; it is stopped
// by PID in t.Cleanup.
func (a *Avahi) Publish(t testing.TB, args ...string) *Process {
	t.Helper()
	cmd := a.ns.Exec("avahi-publish", args...)
	cmd.Env = a.env()
	p := start(t, "avahi-publish in "+a.ns.Name, cmd)
	if !WaitFor(10*time.Second, func() bool { return strings.Contains(p.Output(), "Established") || p.Exited() }) || p.Exited() {
		t.Fatalf("avahi-publish %s in %s: %s", strings.Join(args, " "), a.ns.Name, p.Output())
	}
	return p
}

// Command returns a command (avahi-browse…) that runs inside the
// namespace and talks to this avahi-daemon; ctx bounds its run time.
func (a *Avahi) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", a.ns.Name, name}, args...)...)
	cmd.Env = a.env()
	return cmd
}

// busConfig is a permissive system bus for tests only: private socket %s.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// avahiConfig: host name %s, allowed interface %s.
const avahiConfig = `[server]
host-name=%s
use-ipv4=yes
use-ipv6=no
allow-interfaces=%s
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000

[wide-area]
enable-wide-area=no

[publish]
publish-addresses=yes
publish-hinfo=no
publish-workstation=no
publish-domain=no

[reflector]

[rlimits]
`
