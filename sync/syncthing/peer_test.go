package syncthing

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// requireSyncthing skips the test when no stock syncthing is installed,
// unless PREAU_REQUIRE_PEERS=1 (CI), where it fails.
func requireSyncthing(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("syncthing"); err != nil {
		if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
			t.Fatal("syncthing is not installed (apt-get install syncthing)")
		}
		t.Skip("syncthing is not installed (apt-get install syncthing); set PREAU_REQUIRE_PEERS=1 to fail instead")
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// testLog writes the package's log to the test log until the test ends;
// PREAU_SYNCTHING_DEBUG=1 adds Syncthing's own output.
func testLog(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	level := slog.LevelInfo
	if os.Getenv("PREAU_SYNCTHING_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// peer is the "academy" device: a stock syncthing that the test sets up
// by hand, as TESTING.md describes, with a receive-only folder.
type peer struct {
	t      *testing.T
	home   string
	dir    string
	id     string
	listen string // 127.0.0.1:port
	gui    string // 127.0.0.1:port
	key    string
	cmd    *exec.Cmd
	done   chan struct{}
}

func newPeer(t *testing.T, base string) *peer {
	t.Helper()
	p := &peer{t: t, home: filepath.Join(base, "home"), dir: filepath.Join(base, "received"),
		listen: freePort(t), gui: freePort(t), key: "academy-test-key-0123456789"}
	out, err := exec.Command("syncthing", "generate", "--home="+p.home, "--no-default-folder", "--skip-port-probing").CombinedOutput()
	if err != nil {
		t.Fatalf("syncthing generate: %v\n%s", err, out)
	}
	out, err = exec.Command("syncthing", "--device-id", "--home="+p.home).Output()
	if err != nil {
		t.Fatalf("syncthing --device-id: %v", err)
	}
	p.id = strings.TrimSpace(string(out))
	cfgPath := filepath.Join(p.home, "config.xml")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{
		{"<listenAddress>default</listenAddress>", "<listenAddress>tcp://" + p.listen + "</listenAddress>"},
		{"<globalAnnounceEnabled>true<", "<globalAnnounceEnabled>false<"},
		{"<localAnnounceEnabled>true<", "<localAnnounceEnabled>false<"},
		{"<relaysEnabled>true<", "<relaysEnabled>false<"},
		{"<natEnabled>true<", "<natEnabled>false<"},
		{"<startBrowser>true<", "<startBrowser>false<"},
		{"<urAccepted>0<", "<urAccepted>-1<"},
		{"<crashReportingEnabled>true<", "<crashReportingEnabled>false<"},
		{"<autoUpgradeIntervalH>12<", "<autoUpgradeIntervalH>0<"},
	} {
		if !bytes.Contains(data, []byte(r[0])) {
			t.Fatalf("peer config.xml has no %s", r[0])
		}
		data = bytes.Replace(data, []byte(r[0]), []byte(r[1]), -1)
	}
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(base, "academy.log"))
			t.Logf("academy's log (last 4 KiB):\n%s", data[max(0, len(data)-4096):])
		}
	})
	return p
}

func (p *peer) start() {
	p.t.Helper()
	p.cmd = exec.Command("syncthing", "serve", "--home="+p.home, "--no-browser", "--no-restart", "--no-upgrade",
		"--gui-address=http://"+p.gui, "--gui-apikey="+p.key)
	p.cmd.Env = append(os.Environ(), "STNORESTART=1", "STNOUPGRADE=1")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(p.home), "academy.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		close(done)
	}(p.cmd, p.done)
	waitFor(p.t, 30*time.Second, "the academy peer answers", func() (bool, string) {
		var pong map[string]string
		err := p.api("GET", "/rest/system/ping", nil, &pong)
		return err == nil && pong["ping"] == "pong", fmt.Sprint(err)
	})
}

// kill stops the peer like a power cut: every process of its session
// (stock syncthing runs a monitor and an inner process in another group).
func (p *peer) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	sid := p.cmd.Process.Pid
	killSession(sid)
	<-p.done
	for range 100 {
		if len(sessionPIDs(sid)) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pids := sessionPIDs(sid); len(pids) > 0 {
		p.t.Fatalf("academy processes %v survived SIGKILL", pids)
	}
	p.cmd = nil
}

func (p *peer) api(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, "http://"+p.gui+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", p.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, msg)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// share adds the box's device and a receive-only copy of its folder.
func (p *peer) share(boxID, boxAddr, folderID string) {
	p.t.Helper()
	if err := p.api("POST", "/rest/config/devices", map[string]any{
		"deviceID": boxID, "name": "box", "addresses": []string{"tcp://" + boxAddr},
	}, nil); err != nil {
		p.t.Fatal(err)
	}
	if err := p.api("POST", "/rest/config/folders", map[string]any{
		"id": folderID, "label": "outbox of the box", "path": p.dir, "type": "receiveonly",
		"devices": []map[string]string{{"deviceID": boxID}, {"deviceID": p.id}},
	}, nil); err != nil {
		p.t.Fatal(err)
	}
}

// files lists the peer's received files with their SHA-256 and fails on
// conflict copies; hidden names (Syncthing's own) are left out.
func (p *peer) files() map[string]string {
	p.t.Helper()
	got := map[string]string{}
	filepath.WalkDir(p.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(p.dir, path)
		if strings.Contains(d.Name(), ".sync-conflict-") {
			p.t.Errorf("conflict copy on the peer: %s", rel)
		}
		if d.Name() == tmpDirName || d.Name() == ".stignore" {
			p.t.Errorf("the box's %s reached the peer", rel)
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() && path != p.dir {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			data, err := os.ReadFile(path)
			if err == nil {
				sum := sha256.Sum256(data)
				got[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
			}
		}
		return nil
	})
	return got
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("after %v, still waiting for %s (last: %s)", timeout, what, last)
}

// box runs our package's Serve in the background.
type box struct {
	t      *testing.T
	s      *Syncthing
	cancel context.CancelFunc
	done   chan error
}

func startBox(t *testing.T, cfg Config) *box {
	t.Helper()
	s, err := New(cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &box{t: t, s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- s.Serve(ctx) }()
	t.Cleanup(func() { b.stop() })
	return b
}

func (b *box) stop() {
	if b.cancel == nil {
		return
	}
	b.cancel()
	b.cancel = nil
	select {
	case err := <-b.done:
		if err != nil {
			b.t.Errorf("Serve returned %v, want nil on stop", err)
		}
	case <-time.After(30 * time.Second):
		b.t.Fatal("Serve did not return after its context ended")
	}
}

func (b *box) childPID() int {
	data, err := os.ReadFile(filepath.Join(b.s.cfg.Home, pidName))
	if err != nil {
		return 0
	}
	var pid int
	fmt.Sscan(string(data), &pid)
	return pid
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	// A zombie (state Z) has exited.
	return err == nil && !strings.Contains(string(data), ") Z ")
}

// TestReplicateToStockPeer is the test: a box's Syncthing, run by
// this package, and an "academy" stock syncthing set up by the test, both
// on loopback. Files put into the outbox folder appear on the peer with
// the right hashes; restarting the peer, then the box, then killing the
// box's process mid-way loses nothing and duplicates nothing.
func TestReplicateToStockPeer(t *testing.T) {
	requireSyncthing(t)
	ctx := context.Background()
	base := t.TempDir()
	academy := newPeer(t, filepath.Join(base, "academie"))
	boxAddr := freePort(t)
	cfg := Config{
		Home:       filepath.Join(base, "box", "syncthing"),
		FolderPath: filepath.Join(base, "box", "outbox"),
		Name:       "École Jules-Ferry",
		ListenAddr: boxAddr,
		Peers:      []Peer{{DeviceID: strings.ToLower(academy.id), Name: "académie", Address: academy.listen}},
		// A cap keeps transfers long enough that the restarts below land
		// in the middle of them, even on loopback.
		MaxSendKiBps:    8 << 10,
		MinRestartDelay: 100 * time.Millisecond,
		MaxRestartDelay: time.Second,
		StopTimeout:     10 * time.Second,
	}

	// The technician reads the box's device ID before anything runs.
	id0, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	boxID, err := id0.DeviceID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("syncthing", "--device-id", "--home="+cfg.Home).Output()
	if err != nil || strings.TrimSpace(string(out)) != boxID {
		t.Fatalf("DeviceID %s, syncthing says %s (%v)", boxID, out, err)
	}

	academy.start()
	academy.share(boxID, boxAddr, DefaultFolderID)
	b := startBox(t, cfg)

	want := map[string]string{}
	n := 0
	put := func(s *Syncthing, size int) string {
		t.Helper()
		n++
		data := make([]byte, size)
		rand.Read(data)
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		name := fmt.Sprintf("nuage-6a/Devoirs/Élève %02d/copie %d.pdf", n, n)
		if err := s.Put(ctx, name, bytes.NewReader(data), int64(size), h); err != nil {
			t.Fatalf("Put %s: %v", name, err)
		}
		want[name] = h
		return name
	}
	allDelivered := func(s *Syncthing, what string) {
		t.Helper()
		waitFor(t, 90*time.Second, what, func() (bool, string) {
			for name := range want {
				ok, err := s.Delivered(ctx, name)
				if err != nil || !ok {
					st, _ := s.Status(ctx)
					var raw json.RawMessage
					if api, err := s.currentAPI(); err == nil {
						api.do(ctx, "GET", "/rest/db/file", map[string][]string{"folder": {DefaultFolderID}, "file": {name}}, nil, &raw)
					}
					var pc json.RawMessage
					academy.api("GET", "/rest/system/connections", nil, &pc)
					return false, fmt.Sprintf("%s: %v, %v\nstatus %+v\nfile %s\nacademy connections %s", name, ok, err, st, raw, pc)
				}
			}
			return true, ""
		})
		if d := diff(academy.files(), want); d != "" {
			t.Fatalf("%s: the academy's folder differs:\n%s", what, d)
		}
	}

	// midway checks that a restart about to happen interrupts a transfer.
	midway := func(s *Syncthing, names []string) {
		t.Helper()
		for _, name := range names {
			if ok, err := s.Delivered(ctx, name); err == nil && !ok {
				return
			}
		}
		t.Errorf("%v were all delivered before the restart: it would not be mid-way", names)
	}

	// 1. Files reach the peer, the empty one too.
	for _, size := range []int{0, 1, 128<<10 + 1, 3 << 20} {
		put(b.s, size)
	}
	allDelivered(b.s, "the first files delivered")
	st, err := b.s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.DeviceID != boxID || len(st.Peers) != 1 || !st.Peers[0].Connected || st.Peers[0].Completion != 100 || st.Peers[0].Name != "académie" {
		t.Errorf("status %+v: want running, the academy connected and complete", st)
	}

	// The send cap can change at run time (the WAN scheduler's lever).
	for _, kib := range []int{3000, 8 << 10} {
		if err := b.s.SetSendLimit(ctx, kib); err != nil {
			t.Fatal(err)
		}
		var opts struct {
			MaxSendKbps int  `json:"maxSendKbps"`
			InLAN       bool `json:"limitBandwidthInLan"`
		}
		api, _ := b.s.currentAPI()
		if err := api.do(ctx, "GET", "/rest/config/options", nil, nil, &opts); err != nil || opts.MaxSendKbps != kib || !opts.InLAN {
			t.Errorf("options after SetSendLimit(%d): %+v, %v", kib, opts, err)
		}
	}
	// One process: Syncthing's monitor is not used.
	if pids := sessionPIDs(b.childPID()); len(pids) != 1 {
		t.Errorf("syncthing runs as processes %v, want one", pids)
	}

	// Idempotent Put; a different content under a taken name is refused.
	for name, h := range want {
		data, err := os.ReadFile(filepath.Join(cfg.FolderPath, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.s.Put(ctx, name, bytes.NewReader(data), int64(len(data)), h); err != nil {
			t.Errorf("Put of the same content again: %v", err)
		}
		if err := b.s.Put(ctx, name, strings.NewReader("other"), 5, strings.Repeat("0", 64)); !errors.Is(err, ErrConflict) {
			t.Errorf("Put of another content under %s: %v, want ErrConflict", name, err)
		}
		break
	}

	// 2. The academy goes down in the middle of a transfer and comes back.
	var inFlight []string
	for range 3 {
		inFlight = append(inFlight, put(b.s, 6<<20))
	}
	midway(b.s, inFlight)
	academy.kill()
	put(b.s, 1<<20)
	put(b.s, 0)
	academy.start()
	allDelivered(b.s, "delivery after the academy restarted")

	// 3. The box stops (preau restarts) in the middle; files put while it
	// is down go when it is back.
	inFlight = nil
	for range 3 {
		inFlight = append(inFlight, put(b.s, 6<<20))
	}
	midway(b.s, inFlight)
	pid := b.childPID()
	b.stop()
	if pid == 0 || alive(pid) {
		t.Fatalf("syncthing (pid %d) still runs after Serve returned", pid)
	}
	if _, err := b.s.Delivered(ctx, "nuage-6a/x.pdf"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Delivered while stopped: %v, want ErrNotRunning", err)
	}
	stopped, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	put(stopped, 2<<20)
	b = startBox(t, cfg)
	put(b.s, 512<<10)
	allDelivered(b.s, "delivery after the box restarted")

	// 4. The box's syncthing dies (kill -9): Serve restarts it.
	waitFor(t, 30*time.Second, "the pid file", func() (bool, string) { return b.childPID() != 0, "" })
	pid = b.childPID()
	inFlight = nil
	for range 2 {
		inFlight = append(inFlight, put(b.s, 6<<20))
	}
	midway(b.s, inFlight)
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, 60*time.Second, "a restarted syncthing", func() (bool, string) {
		st, err := b.s.Status(ctx)
		return err == nil && st.Running && st.Restarts >= 1 && b.childPID() != pid, fmt.Sprintf("%+v %v", st, err)
	})
	put(b.s, 1<<20)
	allDelivered(b.s, "delivery after the box's syncthing was killed")

	// Nothing lost, nothing duplicated: the peer holds exactly the files
	// put (allDelivered compared the whole folder), n of them.
	if got := academy.files(); len(got) != n {
		t.Errorf("the academy holds %d files, want %d", len(got), n)
	}
	b.stop()
	if pid := b.childPID(); pid != 0 && alive(pid) {
		t.Errorf("syncthing (pid %d) still runs after Serve returned", pid)
	}
}

// TestServeWithoutBinary: a missing syncthing is a clear, permanent error.
func TestServeWithoutBinary(t *testing.T) {
	base := t.TempDir()
	s, err := New(Config{Binary: filepath.Join(base, "no-syncthing"), Home: filepath.Join(base, "h"), FolderPath: filepath.Join(base, "f")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Serve(context.Background())
	var se *Error
	if !errors.As(err, &se) || se.Code != CodeBinaryMissing || !strings.Contains(se.Error(), "installez le paquet syncthing") {
		t.Errorf("got %v, want %s in French", err, CodeBinaryMissing)
	}
	if _, err := s.Delivered(context.Background(), "a.pdf"); err != nil {
		t.Errorf("Delivered without peers: %v, want false and no error", err)
	}
	st, err := s.Status(context.Background())
	if err != nil || st.Running {
		t.Errorf("status %+v, %v: want not running, no error", st, err)
	}
}

// TestServeKillsStaleProcess: preau died by kill -9 and its Syncthing
// survived (holding the database lock and the ports). The next Serve stops
// it and starts its own.
func TestServeKillsStaleProcess(t *testing.T) {
	requireSyncthing(t)
	base := t.TempDir()
	// The API on loopback TCP this time (the other tests use the socket).
	cfg := Config{Home: filepath.Join(base, "home"), FolderPath: filepath.Join(base, "outbox"),
		ListenAddr: freePort(t), GUIAddr: freePort(t), StopTimeout: 5 * time.Second}
	first, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.DeviceID(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := first.enforceConfig(); err != nil { // loopback addresses only
		t.Fatal(err)
	}
	// The orphan: a syncthing on the same home, as runOnce starts it.
	orphan := exec.Command("syncthing", "serve", "--home="+cfg.Home, "--no-browser", "--no-restart", "--no-upgrade")
	orphan.Env = childEnv()
	orphan.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { orphan.Wait(); close(waited) }()
	t.Cleanup(func() { killSession(orphan.Process.Pid); <-waited })
	if err := os.WriteFile(filepath.Join(cfg.Home, pidName), []byte(fmt.Sprintln(orphan.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // let it take the database lock

	b := startBox(t, cfg)
	waitFor(t, 60*time.Second, "our syncthing ready", func() (bool, string) {
		st, err := b.s.Status(context.Background())
		return err == nil && st.Running, fmt.Sprintf("%+v %v", st, err)
	})
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Error("the stale syncthing still runs")
	}
	if pid := b.childPID(); pid == orphan.Process.Pid || !alive(pid) {
		t.Errorf("running syncthing pid %d, the stale one was %d", pid, orphan.Process.Pid)
	}
}

func diff(got, want map[string]string) string {
	var b strings.Builder
	for k, v := range want {
		if got[k] != v {
			fmt.Fprintf(&b, "  %s: got %q, want %q\n", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "  %s: unexpected\n", k)
		}
	}
	return b.String()
}
