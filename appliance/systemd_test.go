package appliance

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// notifySocket listens where systemd would and collects what preau sends.
type notifySocket struct {
	conn *net.UnixConn
	msgs chan string
}

func listenNotify(t *testing.T) (*notifySocket, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	ns := &notifySocket{conn: conn, msgs: make(chan string, 256)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ns.msgs)
				return
			}
			ns.msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return ns, path
}

func (ns *notifySocket) wait(t *testing.T, want string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m, ok := <-ns.msgs:
			if !ok {
				t.Fatalf("notify socket closed before %q", want)
			}
			if strings.Contains(m, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within %s", want, within)
		}
	}
}

// TestNotifyReadyWatchdogStopping checks the sd_notify protocol: READY=1
// only once the listener accepts, WATCHDOG=1 pings at half the interval,
// STOPPING=1 on stop.
func TestNotifyReadyWatchdogStopping(t *testing.T) {
	ns, path := listenNotify(t)
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	tb := startBox(t, "", false)
	ns.wait(t, "READY=1", 10*time.Second)
	// READY=1 was sent: the listener must accept now.
	c, err := net.DialTimeout("tcp", tb.Addrs()[0].String(), time.Second)
	if err != nil {
		t.Fatalf("READY=1 sent but the listener refuses: %v", err)
	}
	c.Close()
	for i := 0; i < 3; i++ {
		ns.wait(t, "WATCHDOG=1", 2*time.Second)
	}
	tb.stop(t)
	ns.wait(t, "STOPPING=1", 5*time.Second)
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// preauBinary builds cmd/preau once for the tests that need a real process.
func preauBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "preau-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "preau")
		cmd := exec.Command("go", "build", "-tags", "sqlite_fts5", "-buildvcs=false", "-o", builtBin, "../cmd/preau")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = err
			builtBin = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build preau: %v\n%s", buildErr, builtBin)
	}
	return builtBin
}

// TestSocketActivation hands preau a listening socket the way systemd does
// (fd 3, LISTEN_FDS=1, LISTEN_PID of the service) and checks it serves on
// it, says READY, and exits cleanly on SIGTERM.
func TestSocketActivation(t *testing.T) {
	bin := preauBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // the duplicate in f stays open
	ns, nsPath := listenNotify(t)
	dir := t.TempDir()
	// LISTEN_PID must be the service's own PID: a shell sets it, then execs.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" run --data "$1" --http 127.0.0.1:1 --dns 127.0.0.1:0`, bin, dir)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+nsPath)
	cmd.ExtraFiles = []*os.File{f}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer cmd.Process.Kill()
	ns.wait(t, "READY=1", 20*time.Second)
	resp, err := http.Get("http://" + l.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("activated socket does not answer: %v\n%s", err, stderr.String())
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz on activated socket: %d", resp.StatusCode)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	ns.wait(t, "STOPPING=1", 10*time.Second)
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("preau exited with %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("preau did not exit after SIGTERM")
	}
}

// TestExitStatuses runs the binary on bad input and checks each distinct status.
func TestExitStatuses(t *testing.T) {
	bin := preauBinary(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("version = 1\n[http]\nlisen = 3\n"), 0o644)
	tests := []struct {
		args []string
		want int
		out  string
	}{
		{[]string{"nope"}, ExitUsage, "commande inconnue"},
		{[]string{"run", "--config", bad, "--data", dir}, ExitConfig, "http.lisen : clé inconnue"},
		{[]string{"check-config", bad}, ExitConfig, "bad.toml:3"},
		{[]string{"check-config", "testdata/config/v1-full.toml"}, ExitOK, "configuration valide"},
		{[]string{"run", "--data", dir, "--http", "256.0.0.1:80"}, ExitStartup, ""},
		{[]string{"version"}, ExitOK, "preau "},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, tt.args...)
		cmd.Env = append(os.Environ(), "PREAU_LANG=fr")
		out, _ := cmd.CombinedOutput()
		if got := cmd.ProcessState.ExitCode(); got != tt.want || !strings.Contains(string(out), tt.out) {
			t.Errorf("preau %v: exit %d, want %d; output %q should contain %q", tt.args, got, tt.want, out, tt.out)
		}
	}
}
