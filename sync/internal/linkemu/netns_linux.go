package linkemu

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Netns is a named network namespace made with `ip netns add`.
type Netns struct {
	Name string
}

// NewNetns creates the namespace name; Delete removes it.
func NewNetns(name string) (*Netns, error) {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("create netns %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	return &Netns{Name: name}, nil
}

// Path of the namespace's bind mount.
func (n *Netns) Path() string { return "/run/netns/" + n.Name }

// Delete removes the namespace; interfaces inside it go with it.
func (n *Netns) Delete() error {
	if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("delete netns %s: %v: %s", n.Name, err, bytes.TrimSpace(out))
	}
	return nil
}

// Run runs a command inside the namespace (`ip netns exec`).
func (n *Netns) Run(args ...string) error {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("in netns %s: %s: %v: %s", n.Name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Do runs fn on an OS thread that has entered the namespace. Sockets and
// TUN devices fn creates stay in the namespace after Do returns, so a
// listener or a dialled connection made in fn can be used from anywhere.
func (n *Netns) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The goroutine owns its thread; if the thread cannot get back to
		// its namespace, it stays locked and dies with the goroutine.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", n.Name, err)
			return
		}
		defer orig.Close()
		target, err := os.Open(n.Path())
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", n.Name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", n.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("leave netns %s: %w", n.Name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// OpenTUN creates the TUN device name (IFF_TUN, no packet information)
// inside ns and returns its packet port: each Read returns one IP packet,
// each Write injects one. The device disappears when the file is closed.
// The caller configures addresses and brings it up (Netns.Run "ip ...").
func OpenTUN(ns *Netns, name string) (*os.File, error) {
	var f *os.File
	err := ns.Do(func() error {
		// The device is created in the namespace of the opener.
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("tun %s: %w", name, err)
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("tun %s: TUNSETIFF: %w", name, err)
		}
		// Non-blocking: the runtime poller serves Read, and Close wakes it.
		f = os.NewFile(uintptr(fd), "tun:"+name)
		return nil
	})
	return f, err
}
