package webdav

// Real WebDAV peers for the tests: rclone serve webdav and Apache mod_dav,
// each started on 127.0.0.1 on a free port with a private folder and
// configuration, and stopped by PID at the end of the test. A missing
// tool skips the test unless PREAU_REQUIRE_PEERS=1.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func needPeer(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func lookTool(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	needPeer(t, fmt.Sprintf("%s is not installed (Debian package: see .ci/run)", strings.Join(names, " or ")))
	return ""
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitListening(t testing.TB, addr string, exited <-chan struct{}, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("server on %s exited early:\n%s", addr, logs())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server on %s did not start:\n%s", addr, logs())
}

// peer is a started server.
type peer struct {
	name string
	url  string // base URL of the WebDAV folder, ending with "/"
	dir  string // the folder on disk
	user string
	pass string
}

// runServer starts cmd, stops it by PID (SIGTERM, then SIGKILL) when the
// test ends.
func runServer(t testing.TB, cmd *exec.Cmd, addr string, logFile string) {
	t.Helper()
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	logs := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		out.Close()
		if t.Failed() {
			t.Logf("%s log:\n%s", filepath.Base(cmd.Path), logs())
		}
	})
	waitListening(t, addr, exited, logs)
}

// startRclone serves a fresh folder with rclone serve webdav. baseURL is
// the path prefix ("" for none); user "" serves without authentication.
func startRclone(t testing.TB, baseURL, user, pass string) peer {
	t.Helper()
	bin := lookTool(t, "rclone")
	work := t.TempDir()
	dir := filepath.Join(work, "dav")
	os.Mkdir(dir, 0o755)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	args := []string{"serve", "webdav", dir, "--addr", addr, "--config", filepath.Join(work, "rclone.conf"),
		"--log-level", "ERROR"}
	if user != "" {
		args = append(args, "--user", user, "--pass", pass)
	}
	if baseURL != "" {
		args = append(args, "--baseurl", baseURL)
	}
	runServer(t, exec.Command(bin, args...), addr, filepath.Join(work, "rclone.log"))
	return peer{name: "rclone", url: "http://" + addr + baseURL + "/", dir: dir, user: user, pass: pass}
}

type apacheOptions struct {
	// fullAfter puts the DAV folder on a tmpfs of this many bytes, so
	// that writes fail with 507 (needs root: a private mount namespace).
	fullAfter int64
	// forbidden is a sub-folder where writing is refused (403).
	forbidden string
	// prefix is the URL path of the DAV folder; default "/dav".
	prefix string
}

var apacheModules = sync.OnceValue(func() string {
	for _, d := range []string{"/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules"} {
		if _, err := os.Stat(filepath.Join(d, "mod_dav_fs.so")); err == nil {
			return d
		}
	}
	return ""
})

// startApache serves a fresh folder with Apache mod_dav, basic auth u/p.
func startApache(t testing.TB, o apacheOptions) peer {
	t.Helper()
	bin := lookTool(t, "apache2", "httpd")
	htpasswd := lookTool(t, "htpasswd")
	mods := apacheModules()
	if mods == "" {
		needPeer(t, "Apache's mod_dav_fs is not installed")
	}
	// A world-traversable work folder: Apache's workers run as www-data.
	work, err := os.MkdirTemp("", "preau-apache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	os.Chmod(work, 0o755)
	if o.prefix == "" {
		o.prefix = "/dav"
	}
	www := filepath.Join(work, "www")
	dir := filepath.Join(www, filepath.FromSlash(o.prefix))
	lock := filepath.Join(work, "lock")
	for _, d := range []string{www, dir, lock} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if o.forbidden != "" {
		os.Mkdir(filepath.Join(dir, o.forbidden), 0o755)
	}
	runAs := ""
	if os.Geteuid() == 0 {
		u, err := user.Lookup("www-data")
		if err != nil {
			needPeer(t, "no www-data user for Apache's workers")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{dir, lock, filepath.Join(dir, o.forbidden)} {
			os.Chown(d, uid, gid)
		}
		runAs = "User www-data\nGroup www-data\n"
	}
	if out, err := exec.Command(htpasswd, "-bc", filepath.Join(work, "htpasswd"), "u", "p").CombinedOutput(); err != nil {
		t.Fatalf("htpasswd: %v: %s", err, out)
	}
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var conf strings.Builder
	fmt.Fprintf(&conf, "ServerRoot %s\nServerName 127.0.0.1\nListen %s\nPidFile %s/httpd.pid\n", work, addr, work)
	fmt.Fprintf(&conf, "ErrorLog %s/error.log\nLogLevel warn\nMutex file:%s\n%s", work, work, runAs)
	for _, m := range []string{"mpm_event", "authn_core", "authz_core", "authn_file", "authz_user", "auth_basic", "dav", "dav_fs", "dav_lock"} {
		fmt.Fprintf(&conf, "LoadModule %s_module %s/mod_%s.so\n", m, mods, m)
	}
	fmt.Fprintf(&conf, "DavLockDB %s/davlock\nDocumentRoot %s\nTimeout 30\nKeepAliveTimeout 15\n", lock, www)
	fmt.Fprintf(&conf, "<Directory %s>\n  DAV On\n  AuthType Basic\n  AuthName dav\n  AuthUserFile %s/htpasswd\n  Require valid-user\n</Directory>\n", dir, work)
	if o.forbidden != "" {
		fmt.Fprintf(&conf, "<Directory %s/%s>\n  <LimitExcept GET HEAD OPTIONS PROPFIND>\n    Require all denied\n  </LimitExcept>\n</Directory>\n", dir, o.forbidden)
	}
	confFile := filepath.Join(work, "httpd.conf")
	if err := os.WriteFile(confFile, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", confFile, "-DFOREGROUND")
	if o.fullAfter > 0 {
		if os.Geteuid() != 0 {
			needPeer(t, "a full disk for Apache needs root (tmpfs in a private mount namespace)")
		}
		unshare := lookTool(t, "unshare")
		script := fmt.Sprintf("mount -t tmpfs -o size=%d,uid=33,gid=33,mode=0755 preau-test %s && exec %s -f %s -DFOREGROUND",
			o.fullAfter, dir, bin, confFile)
		cmd = exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c", script)
	}
	runServer(t, cmd, addr, filepath.Join(work, "stdout.log"))
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(work, "error.log"))
			t.Logf("apache error.log:\n%s", b)
		}
	})
	return peer{name: "apache", url: "http://" + addr + o.prefix + "/", dir: dir, user: "u", pass: "p"}
}
