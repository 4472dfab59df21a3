// Package netnstest is a test-only kit for the network tests of services:
// it creates uniquely named network namespaces joined by veth pairs, runs
// commands and Go functions inside them, prepares resolv.conf for DHCP
// clients, and starts a private D-Bus and avahi-daemon in a namespace.
// Everything it creates is removed in t.Cleanup, even after a failed test.
//
// Only _test.go files of packages under services/ may import it; it never
// touches the host's real interfaces and never runs in production code.
//
// Tests that need root or a missing tool call RequireRoot and RequireTool:
// they skip with a clear message, or fail when PREAU_REQUIRE_PEERS=1 (CI
// runs as root with every peer installed and must run them all).
package netnstest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
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

// skipOrFail skips the test, or fails it when real peers are required.
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
// it is not installed. It also looks in the sbin folders, which a non-root
// PATH often lacks.
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

// uniqueName returns prefix-PID-N, unique across the parallel test binaries
// of different packages (the PID) and within one binary (N).
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), counter.Add(1))
}

// NS is a network namespace created by the test.
type NS struct {
	Name string
	t    testing.TB
}

// NewNS creates a namespace named prefix-PID-N with its loopback up, and
// deletes it (after ending the processes still running in it, all started
// by this test) in t.Cleanup.
func NewNS(t testing.TB, prefix string) *NS {
	t.Helper()
	RequireRoot(t)
	ip := RequireTool(t, "ip")
	ns := &NS{Name: uniqueName(prefix), t: t}
	if out, err := exec.Command(ip, "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns.Name, err, out)
	}
	t.Cleanup(func() { ns.remove(ip) })
	ns.MustRun("ip", "link", "set", "lo", "up")
	return ns
}

func (ns *NS) remove(ip string) {
	// Processes left behind (a daemon of a failed test) keep the namespace
	// alive: end them by PID. Only this test starts processes in it.
	if out, err := exec.Command(ip, "netns", "pids", ns.Name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if out, err := exec.Command(ip, "netns", "del", ns.Name).CombinedOutput(); err != nil {
		ns.t.Errorf("ip netns del %s: %v: %s", ns.Name, err, out)
	}
	os.RemoveAll(filepath.Join("/etc/netns", ns.Name))
}

// Exec returns a command that runs name with args inside the namespace
// ("ip netns exec NS name args..."). The caller starts and waits for it.
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
// its error. The caller's thread never changes namespace. Sockets fn opens
// belong to the namespace for their whole life, even when other goroutines
// use them; goroutines fn starts run in the original namespace, so fn must
// open its sockets and look up interfaces itself.
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
			// Leave the thread locked: it ends with this goroutine instead
			// of serving other goroutines from the wrong namespace.
			errc <- errors.Join(ferr, fmt.Errorf("netns %s: restore namespace: %w", ns.Name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Interface returns the interface called name inside the namespace.
func (ns *NS) Interface(name string) net.Interface {
	ns.t.Helper()
	var ifi *net.Interface
	err := ns.Do(func() error {
		var err error
		ifi, err = net.InterfaceByName(name)
		return err
	})
	if err != nil {
		ns.t.Fatalf("in %s: interface %s: %v", ns.Name, name, err)
	}
	return *ifi
}

// SetMAC changes the hardware address of an interface of the namespace.
func (ns *NS) SetMAC(ifname string, mac net.HardwareAddr) {
	ns.t.Helper()
	ns.MustRun("ip", "link", "set", "dev", ifname, "address", mac.String())
}

// ResolvConf creates /etc/netns/NS/resolv.conf so that "ip netns exec"
// bind-mounts it over /etc/resolv.conf: a DHCP client run in the namespace
// then rewrites this copy, never the host's file. Removed with the
// namespace.
func (ns *NS) ResolvConf() string {
	ns.t.Helper()
	dir := filepath.Join("/etc/netns", ns.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		ns.t.Fatalf("resolv.conf for %s: %v", ns.Name, err)
	}
	p := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(p, []byte("# written by a preau test\n"), 0o644); err != nil {
		ns.t.Fatalf("resolv.conf for %s: %v", ns.Name, err)
	}
	return p
}

// Veth joins a and b with a veth pair: interface aIf in a, bIf in b, with
// the given addresses (an invalid prefix leaves that end without address),
// both up. Both ends are created directly inside their namespaces, so the
// names never clash with the host's interfaces. Deleting a namespace
// deletes the pair.
func Veth(t testing.TB, a *NS, aIf string, aAddr netip.Prefix, b *NS, bIf string, bAddr netip.Prefix) {
	t.Helper()
	out, err := exec.Command("ip", "link", "add", aIf, "netns", a.Name, "type", "veth",
		"peer", "name", bIf, "netns", b.Name).CombinedOutput()
	if err != nil {
		t.Fatalf("veth %s/%s — %s/%s: %v: %s", a.Name, aIf, b.Name, bIf, err, out)
	}
	for _, end := range []struct {
		ns   *NS
		name string
		addr netip.Prefix
	}{{a, aIf, aAddr}, {b, bIf, bAddr}} {
		if end.addr.IsValid() {
			end.ns.MustRun("ip", "addr", "add", end.addr.String(), "dev", end.name)
		}
		end.ns.MustRun("ip", "link", "set", end.name, "up")
	}
}

// Process is a long-running peer started by the kit; Stop ends it by PID.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	out  *lockedWriter
}

// start runs cmd in the background with its output captured, and stops it
// in t.Cleanup.
func start(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{}), out: &lockedWriter{}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
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

// PID is the process id of the peer.
func (p *Process) PID() int { return p.cmd.Process.Pid }

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

// StartProcess runs name inside the namespace as a background peer, stopped
// by PID in t.Cleanup.
func (ns *NS) StartProcess(name string, args ...string) *Process {
	ns.t.Helper()
	return start(ns.t, name+" in "+ns.Name, ns.Exec(name, args...))
}

// WaitFor polls cond every 50 ms until it is true or timeout passes.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
