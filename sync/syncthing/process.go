package syncthing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stableRun is how long a process must have run for the restart backoff
// to start again from MinRestartDelay.
const stableRun = time.Minute

// Serve runs Syncthing until ctx ends: it creates the identity on first
// run, enforces the configuration, starts `syncthing serve` in its own
// session, waits for the API, configures the peers and the send-only
// folder, and restarts the process with backoff whenever it dies. On ctx
// end it stops the process (SIGTERM, then SIGKILL after StopTimeout) and
// returns nil. It returns an error only for what a restart cannot fix (no
// binary, no identity, folder not writable).
func (s *Syncthing) Serve(ctx context.Context) error {
	if _, err := s.ensureIdentity(ctx); err != nil {
		return err
	}
	if err := s.prepareFolder(); err != nil {
		return err
	}
	s.killStale()
	delay := s.cfg.MinRestartDelay
	for {
		started := s.cfg.Now()
		err := s.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("stopped")
		}
		var se *Error
		if !errors.As(err, &se) {
			se = newError(CodeExited, err.Error(), err)
		}
		if errors.Is(se, &Error{Code: CodeBinaryMissing}) {
			s.setErr(se)
			return se
		}
		if s.cfg.Now().Sub(started) > stableRun {
			delay = s.cfg.MinRestartDelay
		}
		s.mu.Lock()
		s.restarts++
		s.mu.Unlock()
		s.setErr(se)
		s.log.Warn("syncthing stopped, restarting", "err", se.EN, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(delay*2, s.cfg.MaxRestartDelay)
	}
}

// prepareFolder creates the shared folder and its ignore file, and removes
// the temporary files an interrupted Put left.
func (s *Syncthing) prepareFolder() error {
	if err := os.MkdirAll(filepath.Join(s.cfg.FolderPath, tmpDirName), 0o750); err != nil {
		return fmt.Errorf("syncthing folder: %w", err)
	}
	if err := writeStignore(s.cfg.FolderPath); err != nil {
		return fmt.Errorf("syncthing folder: %w", err)
	}
	tmp := filepath.Join(s.cfg.FolderPath, tmpDirName)
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return fmt.Errorf("syncthing folder: %w", err)
	}
	for _, e := range entries {
		// Old enough that no Put of this run is writing it.
		if fi, err := e.Info(); err == nil && s.cfg.Now().Sub(fi.ModTime()) > time.Hour {
			os.Remove(filepath.Join(tmp, e.Name()))
		}
	}
	return nil
}

// killStale stops a Syncthing left by a previous preau that died without
// stopping it (kill -9): it would hold the database lock and the ports.
func (s *Syncthing) killStale() {
	pidFile := filepath.Join(s.cfg.Home, pidName)
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	defer os.Remove(pidFile)
	sid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || sid <= 1 {
		return
	}
	var ours []int
	for _, pid := range sessionPIDs(sid) {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && bytes.Contains(cmdline, []byte("--home="+s.cfg.Home+"\x00")) {
			ours = append(ours, pid)
		}
	}
	if len(ours) == 0 {
		return // gone, or another process reuses the id
	}
	s.log.Warn("stopping a syncthing left running by a previous run", "pids", ours)
	for _, pid := range ours {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for range 50 {
		if len(sessionPIDs(sid)) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sessionPIDs lists the live processes of session sid. Syncthing is
// started as a session leader, so its session holds it and anything it
// starts, even a child in another process group (Syncthing's monitor puts
// its inner process in its own group) or one orphaned by a kill.
func sessionPIDs(sid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp session …; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) < 4 || f[0] == "Z" {
			continue
		}
		if s, err := strconv.Atoi(f[3]); err == nil && s == sid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killSession sends SIGKILL to every process of session sid.
func killSession(sid int) {
	for _, pid := range sessionPIDs(sid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// childEnv is the environment of Syncthing: ours without Syncthing's own
// variables (which could override the GUI address or API key), plus the
// switches that keep it from restarting or upgrading itself. STMONITORED
// runs the inner process directly, without Syncthing's monitor process:
// Serve is its monitor, which saves a process and its memory.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ST") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "STNORESTART=1", "STNOUPGRADE=1", "STNODEFAULTFOLDER=1", "STMONITORED=yes")
}

// enforceConfig writes this Config's settings into config.xml and returns
// the API key.
func (s *Syncthing) enforceConfig() (string, error) {
	listen, _ := listenURL(s.cfg.ListenAddr)
	s.mu.Lock()
	id := s.deviceID
	s.mu.Unlock()
	return s.prepareConfig(settings{
		deviceID:   id,
		deviceName: s.cfg.Name,
		listen:     listen,
		guiAddress: cmp(s.cfg.GUIAddr, filepath.Join(s.cfg.Home, socketName)),
		options:    safeOptions(listen, s.cfg.MaxSendKiBps, s.cfg.MaxRecvKiBps),
	})
}

// runOnce starts one process and returns when it dies or ctx ends.
func (s *Syncthing) runOnce(ctx context.Context) error {
	guiAddr := s.cfg.GUIAddr
	socket := filepath.Join(s.cfg.Home, socketName)
	if guiAddr == "" {
		os.Remove(socket) // a stale socket would make the listen fail
	}
	key, err := s.enforceConfig()
	if err != nil {
		return err
	}
	s.mu.Lock()
	id := s.deviceID
	s.mu.Unlock()

	cmd := exec.Command(s.cfg.Binary, "serve", "--home="+s.cfg.Home, "--no-browser", "--no-restart", "--no-upgrade")
	cmd.Env = childEnv()
	cmd.Dir = s.cfg.Home
	out := newLogWriter(s.log)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own session: stopping it reaches every process it starts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	ch := &child{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child ends, not
		// the process: keep that thread, and only it, until the child exits.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		ch.err = cmd.Wait()
		close(ch.done)
	}()
	if err := <-started; err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return newError(CodeBinaryMissing, s.cfg.Binary, err)
		}
		return newError(CodeExited, err.Error(), err)
	}
	pid := cmd.Process.Pid
	pidFile := filepath.Join(s.cfg.Home, pidName)
	if err := writeFileAtomic(pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		s.log.Warn("syncthing: write pid file", "err", err)
	}
	s.log.Info("syncthing started", "pid", pid)

	api := newRESTClient(guiAddr, socket, key)
	defer api.close()
	stop := func() error {
		s.setAPI(nil)
		err := s.stopChild(pid, ch)
		os.Remove(pidFile)
		return err
	}

	if err := s.waitReady(ctx, api, ch); err != nil {
		stopErr := stop()
		if ctx.Err() != nil {
			return stopErr
		}
		return s.describeExit(err, out)
	}
	if err := s.configure(ctx, api); err != nil {
		stop()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.setAPI(api)
	s.clearErr()
	s.log.Info("syncthing ready", "device", id, "folder", s.cfg.FolderID, "peers", len(s.peers))

	select {
	case <-ctx.Done():
		return stop()
	case <-ch.done:
		s.setAPI(nil)
		killSession(pid) // what it left behind
		os.Remove(pidFile)
		return s.describeExit(ch.err, out)
	}
}

// child is a started process; err is set before done is closed.
type child struct {
	done chan struct{}
	err  error
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// describeExit words why the process ended, with its last log lines.
func (s *Syncthing) describeExit(err error, out *logWriter) error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	detail := "arrêt / exit"
	if err != nil {
		detail = err.Error()
	}
	if tail := out.tail(); tail != "" {
		detail += ": " + tail
	}
	return newError(CodeExited, detail, err)
}

// stopChild sends SIGTERM to the process (Syncthing stops its children
// itself), then SIGKILL to its whole session after StopTimeout, and waits
// for it. Whatever of the session outlives it is killed too.
func (s *Syncthing) stopChild(pid int, ch *child) error {
	syscall.Kill(pid, syscall.SIGTERM)
	t := time.NewTimer(s.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-ch.done:
		s.log.Info("syncthing stopped", "pid", pid)
	case <-t.C:
		s.log.Warn("syncthing did not stop in time, killing it", "pid", pid)
		killSession(pid)
		<-ch.done
	}
	killSession(pid)
	return nil
}

// waitReady polls /rest/system/ping until it answers, the process dies,
// StartTimeout passes or ctx ends. Polling is short-lived: only at start.
func (s *Syncthing) waitReady(ctx context.Context, api *restClient, ch *child) error {
	deadline := time.NewTimer(s.cfg.StartTimeout)
	defer deadline.Stop()
	wait := 50 * time.Millisecond
	for {
		var pong struct {
			Ping string `json:"ping"`
		}
		err := api.do(ctx, "GET", "/rest/system/ping", nil, nil, &pong)
		if err == nil && pong.Ping == "pong" {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-ch.done:
			t.Stop()
			if ch.err == nil {
				return errors.New("exit status 0")
			}
			return ch.err
		case <-deadline.C:
			t.Stop()
			return newError(CodeStartTimeout, s.cfg.StartTimeout.String(), err)
		case <-t.C:
		}
		wait = min(wait*2, time.Second)
	}
}

// Shapes of the REST API's config objects: only the fields we set. PUT
// fills the others with Syncthing's defaults.
type deviceConfig struct {
	DeviceID          string   `json:"deviceID"`
	Name              string   `json:"name"`
	Addresses         []string `json:"addresses"`
	Compression       string   `json:"compression"`
	Introducer        bool     `json:"introducer"`
	AutoAcceptFolders bool     `json:"autoAcceptFolders"`
	Paused            bool     `json:"paused"`
}

type folderDevice struct {
	DeviceID string `json:"deviceID"`
}

type folderConfig struct {
	ID               string         `json:"id"`
	Label            string         `json:"label"`
	Path             string         `json:"path"`
	Type             string         `json:"type"`
	Devices          []folderDevice `json:"devices"`
	RescanIntervalS  int            `json:"rescanIntervalS"`
	FSWatcherEnabled bool           `json:"fsWatcherEnabled"`
	FSWatcherDelayS  int            `json:"fsWatcherDelayS"`
	IgnorePerms      bool           `json:"ignorePerms"`
	Paused           bool           `json:"paused"`
}

// configure makes the process's devices and folders exactly the
// configured ones: the peers, and the send-only outbox folder shared with
// them. Anything else (added by hand in the GUI) is removed.
func (s *Syncthing) configure(ctx context.Context, api *restClient) error {
	var status struct {
		MyID string `json:"myID"`
	}
	if err := api.do(ctx, "GET", "/rest/system/status", nil, nil, &status); err != nil {
		return err
	}
	s.mu.Lock()
	want := s.deviceID
	s.mu.Unlock()
	if status.MyID != want {
		return fmt.Errorf("syncthing configure: device id %s, want %s from %s", status.MyID, want, certName)
	}
	keep := map[string]bool{want: true}
	for _, p := range s.peers {
		keep[p.DeviceID] = true
		dev := deviceConfig{DeviceID: p.DeviceID, Name: p.Name, Addresses: []string{p.Address}, Compression: "metadata"}
		if err := api.do(ctx, "PUT", "/rest/config/devices/"+url.PathEscape(p.DeviceID), nil, dev, nil); err != nil {
			return fmt.Errorf("syncthing configure: peer %s: %w", p.Name, err)
		}
	}
	devices := []folderDevice{{DeviceID: want}}
	for _, p := range s.peers {
		devices = append(devices, folderDevice{DeviceID: p.DeviceID})
	}
	folder := folderConfig{
		ID: s.cfg.FolderID, Label: "Préau outbox", Path: s.cfg.FolderPath, Type: "sendonly",
		Devices: devices, RescanIntervalS: 3600, FSWatcherEnabled: true, FSWatcherDelayS: 10, IgnorePerms: true,
	}
	if err := api.do(ctx, "PUT", "/rest/config/folders/"+url.PathEscape(s.cfg.FolderID), nil, folder, nil); err != nil {
		return fmt.Errorf("syncthing configure: folder: %w", err)
	}
	var folders []struct {
		ID string `json:"id"`
	}
	if err := api.do(ctx, "GET", "/rest/config/folders", nil, nil, &folders); err != nil {
		return err
	}
	for _, f := range folders {
		if f.ID != s.cfg.FolderID {
			if err := api.do(ctx, "DELETE", "/rest/config/folders/"+url.PathEscape(f.ID), nil, nil, nil); err != nil {
				return fmt.Errorf("syncthing configure: remove folder %s: %w", f.ID, err)
			}
		}
	}
	var devs []struct {
		DeviceID string `json:"deviceID"`
	}
	if err := api.do(ctx, "GET", "/rest/config/devices", nil, nil, &devs); err != nil {
		return err
	}
	for _, d := range devs {
		if !keep[d.DeviceID] {
			if err := api.do(ctx, "DELETE", "/rest/config/devices/"+url.PathEscape(d.DeviceID), nil, nil, nil); err != nil {
				return fmt.Errorf("syncthing configure: remove device %s: %w", d.DeviceID, err)
			}
		}
	}
	return nil
}

func (s *Syncthing) setAPI(api *restClient) {
	s.mu.Lock()
	s.api = api
	s.mu.Unlock()
}

func (s *Syncthing) currentAPI() (*restClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.api == nil {
		if s.lastErr != nil {
			return nil, newError(CodeNotRunning, s.lastErr.FR, ErrNotRunning)
		}
		return nil, ErrNotRunning
	}
	return s.api, nil
}

func (s *Syncthing) setErr(e *Error) {
	s.mu.Lock()
	s.lastErr, s.lastErrAt = e, s.cfg.Now()
	s.mu.Unlock()
}

func (s *Syncthing) clearErr() {
	s.mu.Lock()
	s.lastErr = nil
	s.mu.Unlock()
}

// logWriter turns Syncthing's output into log records: warnings at Warn,
// the rest at Debug. It keeps the last lines to explain an exit.
type logWriter struct {
	log   *slog.Logger
	mu    sync.Mutex
	buf   []byte
	lines []string
}

func newLogWriter(log *slog.Logger) *logWriter {
	return &logWriter{log: log}
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
		if line == "" {
			continue
		}
		if strings.Contains(line, "WARNING:") {
			w.log.Warn("syncthing says", "line", line)
		} else {
			w.log.Debug("syncthing says", "line", line)
		}
		w.lines = append(w.lines, line)
		if len(w.lines) > 8 {
			w.lines = w.lines[1:]
		}
	}
	if len(w.buf) > 64<<10 {
		w.buf = w.buf[:0] // a runaway line without newline
	}
	return len(p), nil
}

func (w *logWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.lines)
	return strings.Join(w.lines[max(0, n-3):], " | ")
}
