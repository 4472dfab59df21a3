package netnstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Avahi is an avahi-daemon running in a namespace on its own private
// system D-Bus.
//
// Unlike the stock recipe (dbus-daemon --system, which owns
// /run/dbus/system_bus_socket and so allows one bus per machine), the bus
// listens on a socket in a private temporary folder and the avahi tools
// find it through DBUS_SYSTEM_BUS_ADDRESS; avahi-daemon runs with a fresh
// tmpfs on /run inside the mount namespace that "ip netns exec" gives it,
// so its pid file and socket never meet another avahi-daemon. Several
// tests, in several packages, can therefore run their own avahi at once,
// and nothing of the host's /run is touched.
type Avahi struct {
	ns      *NS
	busAddr string
	Bus     *Process
	Daemon  *Process
}

// StartAvahi starts a private D-Bus and an avahi-daemon in ns that uses only
// the interface ifname (IPv4 only; it publishes only its own host name
// hostName, so that services published through it resolve). It returns
// once avahi-daemon reports its start-up complete; both are stopped by PID
// in t.Cleanup.
func StartAvahi(t testing.TB, ns *NS, ifname, hostName string) *Avahi {
	t.Helper()
	RequireRoot(t)
	dbus := RequireTool(t, "dbus-daemon")
	daemon := RequireTool(t, "avahi-daemon")
	RequireTool(t, "avahi-browse")
	RequireTool(t, "avahi-resolve")

	// Short path: a unix socket path must fit in 108 bytes, which a
	// t.TempDir() named after a long test may not.
	dir, err := os.MkdirTemp("", "preau-avahi-")
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
	a.Bus = start(t, "dbus-daemon", exec.Command(dbus, "--config-file="+busConf, "--nofork", "--nopidfile"))
	if !WaitFor(5*time.Second, func() bool { _, err := os.Stat(sock); return err == nil || a.Bus.Exited() }) || a.Bus.Exited() {
		t.Fatalf("avahi: private dbus-daemon did not start: %s", a.Bus.Output())
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

// Command returns a command (avahi-browse, avahi-resolve…) that runs inside
// the namespace and talks to this avahi-daemon; ctx bounds its run time.
func (a *Avahi) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", a.ns.Name, name}, args...)...)
	cmd.Env = a.env()
	return cmd
}

// Start runs a long-lived avahi tool (avahi-publish…) in the namespace on
// this daemon's bus; it is stopped by PID in t.Cleanup.
func (a *Avahi) Start(t testing.TB, name string, args ...string) *Process {
	t.Helper()
	cmd := a.ns.Exec(name, args...)
	cmd.Env = a.env()
	return start(t, name+" in "+a.ns.Name, cmd)
}

// busConfig is a permissive system bus for tests only: one root user,
// private socket (%s).
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
