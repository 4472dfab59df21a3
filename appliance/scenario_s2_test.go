package appliance

// Scenario S2 of issue 4 at box level: pupils hand in work while sending
// is closed; the box keeps it durably and shows a receipt; `preau sync
// now` delivers it to a real WebDAV server (rclone serve webdav on
// 127.0.0.1) exactly once, across restarts, kill -9 and cuts of the
// destination; `preau export` writes what waits to a self-verifying
// bundle; the pupils' pages pass axe-core in headless Chromium.
//
// Real peers only: rclone, the preau binary, Chromium with chromedriver.
// A missing peer skips the test, or fails it when PREAU_REQUIRE_PEERS=1
// (requirePeer, browsertest.Start).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"preau/appliance/internal/browsertest"
	"preau/sync/outbox"
	"preau/sync/usb"
)

// The scenario's school, teacher and assignment.
const (
	s2Class      = "CM2-A"
	s2Title      = "Exposé sur les volcans"
	s2Teacher    = "mmartin"
	s2Password   = "correct horse battery staple"
	s2Dest       = "nuage"
	s2DavUser    = "preau"
	s2DavPass    = "mot-de-passe-d-application"
	s2TempPrefix = ".preau-" // sync/webdav's temporary upload names
)

// ---------------------------------------------------------------------------
// Peers: the WebDAV server, the uplink probe target.

// s2Dav is rclone serve webdav on 127.0.0.1 serving a folder. cut kills it
// at once (SIGKILL, as a crashed server or a cut link); start serves the
// same folder on the same port again.
type s2Dav struct {
	t    *testing.T
	bin  string
	dir  string // the served folder
	work string
	addr string
	log  *os.File

	cmd  *exec.Cmd
	done chan struct{}
}

func startS2Dav(t *testing.T) *s2Dav {
	t.Helper()
	d := &s2Dav{t: t, bin: requirePeer(t, "rclone"), work: t.TempDir()}
	d.dir = filepath.Join(d.work, "dav")
	if err := os.Mkdir(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d.addr = "127.0.0.1:" + strconv.Itoa(s2FreePort(t))
	var err error
	if d.log, err = os.Create(filepath.Join(d.work, "rclone.log")); err != nil {
		t.Fatal(err)
	}
	d.start()
	t.Cleanup(func() {
		d.cut()
		d.log.Close()
		if t.Failed() || os.Getenv("PREAU_S2_LOG") != "" {
			b, _ := os.ReadFile(d.log.Name())
			t.Logf("rclone log:\n%s", b)
		}
	})
	return d
}

func (d *s2Dav) url() string { return "http://" + d.addr + "/" }

func (d *s2Dav) start() {
	d.t.Helper()
	cmd := exec.Command(d.bin, "serve", "webdav", d.dir, "--addr", d.addr, "--user", s2DavUser, "--pass", s2DavPass,
		"--config", filepath.Join(d.work, "rclone.conf"), "--log-level", s2RcloneLevel())
	cmd.Stdout, cmd.Stderr = d.log, d.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start rclone: %v", err)
	}
	d.cmd, d.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(d.done)
	if !waitUntil(15*time.Second, 50*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", d.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		d.t.Fatalf("rclone serve webdav does not listen on %s", d.addr)
	}
}

func (d *s2Dav) cut() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	d.cmd = nil
}

// s2File is a file as the test knows it: where it must land and what it holds.
type s2File struct {
	Path   string
	Size   int64
	SHA256 string
}

// s2ServerFile is a file found in the served folder.
type s2ServerFile struct {
	Size    int64
	SHA256  string
	ModTime time.Time
}

// tree lists every regular file under the served folder, by relative path.
func (d *s2Dav) tree() map[string]s2ServerFile {
	d.t.Helper()
	out := map[string]s2ServerFile{}
	err := filepath.WalkDir(d.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(d.dir, p)
		sum := sha256.Sum256(b)
		out[filepath.ToSlash(rel)] = s2ServerFile{Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), ModTime: fi.ModTime()}
		return nil
	})
	if err != nil {
		d.t.Fatalf("list the WebDAV folder: %v", err)
	}
	return out
}

// checkExactly checks that the served folder holds exactly want: each file
// once at its path with its size and SHA-256, no other file (no duplicate
// such as "page (2).png", no temporary upload). A server may still be
// dropping the temporary file of a request cut a moment ago: it gets a few
// seconds to settle.
func (d *s2Dav) checkExactly(t *testing.T, want []s2File) map[string]s2ServerFile {
	t.Helper()
	var problems []string
	var got map[string]s2ServerFile
	for deadline := time.Now().Add(5 * time.Second); ; {
		problems = problems[:0]
		got = d.tree()
		for _, f := range want {
			g, ok := got[f.Path]
			switch {
			case !ok:
				problems = append(problems, "missing on the server: "+f.Path)
			case g.Size != f.Size || g.SHA256 != f.SHA256:
				problems = append(problems, fmt.Sprintf("%s: %d bytes, sha256 %.12s on the server; want %d bytes, %.12s",
					f.Path, g.Size, g.SHA256, f.Size, f.SHA256))
			}
		}
		for p := range got {
			if !slices.ContainsFunc(want, func(f s2File) bool { return f.Path == p }) {
				problems = append(problems, "unexpected file on the server: "+p)
			}
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}
	return got
}

// startS2Probe is the uplink's probe target: any answer means online.
func startS2Probe(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

func s2FreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ---------------------------------------------------------------------------
// The box's configuration.

type s2Setup struct {
	dir      string // holds the configuration, the data folder and the password file
	data     string
	cfg      string // configuration file
	httpAddr string
}

type s2Options struct {
	probeURL string // "" keeps the box offline
	davURL   string // the destination's URL
	maxRate  string // sync.max_rate, "" for none
	workers  int
}

// s2ClosedCalendar returns a sending window one minute wide half an hour
// ago and class hours around now: sending is closed for the next half
// hour whatever the time of day the test runs at.
func s2ClosedCalendar(now time.Time) (window, classHours string) {
	hm := func(t time.Time) string { return t.Format("15:04") }
	past := now.Add(-30 * time.Minute)
	return hm(past) + "-" + hm(past.Add(time.Minute)), hm(now.Add(-time.Hour)) + "-" + hm(now.Add(time.Hour))
}

// newS2Setup writes the configuration file of a box whose hand-ins go to
// the [destinations.nuage] WebDAV folder, with sending closed now.
func newS2Setup(t *testing.T, o s2Options) *s2Setup {
	t.Helper()
	s := &s2Setup{dir: t.TempDir()}
	s.data = filepath.Join(s.dir, "data")
	s.cfg = filepath.Join(s.dir, "preau.toml")
	s.httpAddr = "127.0.0.1:" + strconv.Itoa(s2FreePort(t))
	pass := filepath.Join(s.dir, "nuage.pass")
	if err := os.WriteFile(pass, []byte(s2DavPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if o.davURL == "" {
		o.davURL = "http://127.0.0.1:9/" // nothing answers there
	}
	if o.workers == 0 {
		o.workers = 2
	}
	probes := "[]"
	if o.probeURL != "" {
		probes = fmt.Sprintf("[%q]", o.probeURL)
	}
	maxRate := ""
	if o.maxRate != "" {
		maxRate = fmt.Sprintf("max_rate = %q\n", o.maxRate)
	}
	window, classHours := s2ClosedCalendar(time.Now())
	conf := fmt.Sprintf(`version = 1

[box]
name = "École du Puy"
uai = "0631234X"
data_dir = %q

[http]
listen = [%q]
shutdown_timeout = "2s"

[dns]
listen = ["127.0.0.1:0"]
upstreams = ["127.0.0.1:9"]

[uplink]
probe_urls = %s
interval = "15s"

[log]
level = "debug"
format = "text"

[sync]
windows = [%q]
class_hours = [%q]
workers = %d
%s
[destinations.%s]
label = "Nuage de Mme Martin"
type = "webdav"
url = %q
user = %q
password_file = %q
`, s.data, s.httpAddr, probes, window, classHours, o.workers, maxRate, s2Dest, o.davURL, s2DavUser, pass)
	if err := os.WriteFile(s.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *s2Setup) baseURL() string { return "http://" + s.httpAddr }

// health is GET /healthz on the LAN address.
func (s *s2Setup) health() (Health, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(s.baseURL() + "/healthz")
	if err != nil {
		return Health{}, err
	}
	defer resp.Body.Close()
	var h Health
	return h, json.NewDecoder(resp.Body).Decode(&h)
}

// waitReady waits until the box answers on its LAN address, and until its
// uplink probe succeeded when online.
func (s *s2Setup) waitReady(t *testing.T, online bool, exited func() bool) {
	t.Helper()
	var h Health
	var err error
	ok := waitUntil(20*time.Second, 50*time.Millisecond, func() bool {
		if exited != nil && exited() {
			return true
		}
		h, err = s.health()
		return err == nil && h.Online == online
	})
	if exited != nil && exited() {
		t.Fatal("preau exited at start-up")
	}
	if !ok {
		t.Fatalf("box not ready (online=%v) within 20 s: %+v, %v", online, h, err)
	}
}

// syncStatus is GET /v1/sync/status through the control socket, what
// `preau sync status --json` prints; the tests poll it without starting a
// process each time.
func (s *s2Setup) syncStatus() (SyncStatus, error) {
	sock := controlPath(s.data)
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := c.Get("http://preau/v1/sync/status")
	if err != nil {
		return SyncStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return SyncStatus{}, fmt.Errorf("sync status: %s", resp.Status)
	}
	var st SyncStatus
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitDelivered waits until n items are delivered and none is left.
func (s *s2Setup) waitDelivered(t *testing.T, n int, within time.Duration) SyncStatus {
	t.Helper()
	var st SyncStatus
	var err error
	if !waitUntil(within, 100*time.Millisecond, func() bool {
		st, err = s.syncStatus()
		return err == nil && st.Outbox.Counts[outbox.StateDelivered] == n && len(st.Outbox.Items) == 0
	}) {
		t.Fatalf("not every item delivered within %v: counts %v, %d pending, %v; first pending: %s",
			within, st.Outbox.Counts, len(st.Outbox.Items), err, s2FirstPending(st))
	}
	return st
}

func s2FirstPending(st SyncStatus) string {
	if len(st.Outbox.Items) == 0 {
		return "-"
	}
	it := st.Outbox.Items[0]
	return fmt.Sprintf("%s %s attempts %d, next %s, last error %q", it.RemotePath, it.State, it.Attempts,
		it.NextAttempt.Format(time.TimeOnly), it.LastErrorEN)
}

// cli runs a preau command: the binary when bin is set, else Main in this
// process (`teacher add` through cmdTeacher, which takes its input as an
// argument). Messages are French.
func (s *s2Setup) cli(t *testing.T, bin, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	args = append(args, "--config", s.cfg)
	var out, errb bytes.Buffer
	switch {
	case bin != "":
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "PREAU_LANG=fr")
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatalf("preau %v: %v", args, err)
		}
		code = cmd.ProcessState.ExitCode()
	case args[0] == "teacher":
		code = cmdTeacher(args[1:], &out, &errb, "fr", strings.NewReader(stdin))
	default:
		t.Setenv("PREAU_LANG", "fr")
		code = Main(args, &out, &errb)
	}
	return code, out.String(), errb.String()
}

// mustCLI is cli that fails the test on a non-zero exit.
func (s *s2Setup) mustCLI(t *testing.T, bin, stdin string, args ...string) string {
	t.Helper()
	code, out, errb := s.cli(t, bin, stdin, args...)
	if code != ExitOK {
		t.Fatalf("preau %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errb)
	}
	return out
}

// statusJSON is `preau sync status --json`.
func (s *s2Setup) statusJSON(t *testing.T, bin string) SyncStatus {
	t.Helper()
	out := s.mustCLI(t, bin, "", "sync", "status", "--json")
	var st SyncStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("preau sync status --json: %v\n%s", err, out)
	}
	return st
}

// ---------------------------------------------------------------------------
// The box, in this process or as the real binary.

// s2Log collects a box's log.
type s2Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *s2Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// tail is the end of the log, for failure messages.
func (l *s2Log) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(l.b.String(), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// s2InProcess is a box run by this process from the configuration file.
type s2InProcess struct {
	*Box
	cancel context.CancelFunc
	done   chan error
}

func startS2InProcess(t *testing.T, s *s2Setup, online bool) *s2InProcess {
	t.Helper()
	cfg, err := LoadConfig(s.cfg)
	if err != nil {
		t.Fatalf("load %s: %v", s.cfg, err)
	}
	logs := &s2Log{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("box log (end):\n%s", logs.tail(80))
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	box, err := New(ctx, cfg, Options{}, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	b := &s2InProcess{Box: box, cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- box.Serve(ctx) }()
	t.Cleanup(func() { b.stop(t) })
	s.waitReady(t, online, nil)
	return b
}

func (b *s2InProcess) stop(t *testing.T) {
	if b.cancel == nil {
		return
	}
	b.cancel()
	b.cancel = nil
	select {
	case err := <-b.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("box did not stop within 20 s")
	}
}

// s2Process is the real preau binary, started and killed by the test.
type s2Process struct {
	t    *testing.T
	bin  string
	s    *s2Setup
	logs *s2Log
	runs int

	cmd  *exec.Cmd
	done chan struct{}
}

func newS2Process(t *testing.T, s *s2Setup) *s2Process {
	p := &s2Process{t: t, bin: preauBinary(t), s: s, logs: &s2Log{}}
	t.Cleanup(func() {
		p.stop()
		if os.Getenv("PREAU_S2_LOG") != "" {
			t.Logf("preau log:\n%s", p.logs.tail(1<<30))
		} else if t.Failed() {
			t.Logf("preau log (end):\n%s", p.logs.tail(120))
		}
	})
	return p
}

func (p *s2Process) start(online bool) {
	p.t.Helper()
	p.runs++
	fmt.Fprintf(p.logs, "=== run %d ===\n", p.runs)
	cmd := exec.Command(p.bin, "run", "--config", p.s.cfg)
	cmd.Env = append(os.Environ(), "PREAU_LANG=fr")
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start preau: %v", err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(p.done)
	p.s.waitReady(p.t, online, p.exited)
}

func (p *s2Process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill is kill -9: no shutdown, no flush, as a power cut is for the process.
func (p *s2Process) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// stop is a clean stop (SIGTERM, as systemd does).
func (p *s2Process) stop() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			p.t.Errorf("preau exited with status %d after SIGTERM", code)
		}
	case <-time.After(20 * time.Second):
		p.t.Error("preau did not stop within 20 s of SIGTERM")
		p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// ---------------------------------------------------------------------------
// Teachers and pupils on the LAN, as their browsers talk to the box.

// s2Client is a browser: a cookie jar and no automatic redirects.
type s2Client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newS2Client(t *testing.T, base string) *s2Client {
	jar, _ := cookiejar.New(nil)
	return &s2Client{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type s2Response struct {
	status int
	header http.Header
	body   string // HTML character references decoded
}

func (c *s2Client) do(req *http.Request) s2Response {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return s2Response{resp.StatusCode, resp.Header, html.UnescapeString(string(b))}
}

func (c *s2Client) get(path string) s2Response {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	return c.do(req)
}

func (c *s2Client) postForm(path string, v url.Values) s2Response {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.base)
	return c.do(req)
}

var s2CSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf loads a page and returns its form's token.
func (c *s2Client) csrf(path string) string {
	c.t.Helper()
	r := c.get(path)
	m := s2CSRF.FindStringSubmatch(r.body)
	if m == nil {
		c.t.Fatalf("GET %s: no csrf field (status %d)", path, r.status)
	}
	return m[1]
}

// s2Upload is one file a pupil picks.
type s2Upload struct {
	Name string
	Data []byte
}

func (u s2Upload) sha256() string {
	sum := sha256.Sum256(u.Data)
	return hex.EncodeToString(sum[:])
}

// teacherLogin creates the teacher's account with `preau teacher add`
// (password on standard input) and logs in with the login form.
func s2TeacherLogin(t *testing.T, s *s2Setup, bin string) *s2Client {
	t.Helper()
	out := s.mustCLI(t, bin, s2Password+"\n", "teacher", "add", s2Teacher, "Mme Martin")
	if !strings.Contains(out, "Compte enseignant créé : "+s2Teacher) {
		t.Errorf("preau teacher add printed %q", out)
	}
	c := newS2Client(t, s.baseURL())
	r := c.postForm("/enseignant/connexion", url.Values{"csrf": {c.csrf("/enseignant/connexion")},
		"identifiant": {s2Teacher}, "motdepasse": {s2Password}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("teacher login: status %d: %s", r.status, r.body)
	}
	return c
}

// newAssignment creates the class's assignment with the teacher's form and
// returns its id.
func (c *s2Client) newAssignment() int64 {
	c.t.Helper()
	r := c.postForm("/enseignant/devoirs", url.Values{
		"csrf":        {c.csrf("/enseignant/devoirs/nouveau")},
		"titre":       {s2Title},
		"classe":      {s2Class},
		"echeance":    {time.Now().AddDate(0, 0, 7).Format(time.DateOnly)},
		"heure":       {"18:00"},
		"consignes":   {"Une photo de ton dessin et ta fiche en PDF."},
		"destination": {s2Dest},
		"types":       {"image", "pdf"},
		"taille":      {"20"},
	})
	if r.status != http.StatusSeeOther {
		c.t.Fatalf("create assignment: status %d: %s", r.status, r.body)
	}
	var id int64
	if _, err := fmt.Sscanf(r.header.Get("Location"), "/enseignant/devoirs/%d", &id); err != nil {
		c.t.Fatalf("create assignment: redirected to %q", r.header.Get("Location"))
	}
	return id
}

var s2ReceiptLocation = regexp.MustCompile(`^/devoirs/recu/([2-9A-Z]{3}-[2-9A-Z]{3})$`)

// handIn posts the hand-in form of assignment id as pupil "first initial."
// with files, and returns the receipt code.
func (c *s2Client) handIn(id int64, first, initial string, files []s2Upload) string {
	c.t.Helper()
	path := fmt.Sprintf("/devoirs/devoir/%d", id)
	tok := c.csrf(path)
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("csrf", tok)
	w.WriteField("prenom", first)
	w.WriteField("initiale", initial)
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="fichiers"; filename=%q`, f.Name))
		h.Set("Content-Type", "application/octet-stream")
		pw, _ := w.CreatePart(h)
		pw.Write(f.Data)
	}
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, c.base+path, &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Origin", c.base)
	r := c.do(req)
	m := s2ReceiptLocation.FindStringSubmatch(r.header.Get("Location"))
	if r.status != http.StatusSeeOther || m == nil {
		c.t.Fatalf("hand-in: status %d, location %q: %s", r.status, r.header.Get("Location"), r.body)
	}
	return m[1]
}

var s2ReceiptState = regexp.MustCompile(`<span class="state (\w+)">([^<]*)</span>`)

// receiptState reads the delivery state a receipt page shows.
func (c *s2Client) receiptState(code string) (class, label string) {
	c.t.Helper()
	r := c.get("/devoirs/recu/" + code)
	m := s2ReceiptState.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		c.t.Fatalf("receipt %s: status %d, no state: %s", code, r.status, r.body)
	}
	return m[1], m[2]
}

// s2Want is where the files of a hand-in must land: the deterministic path
// class/title (assignment id)/pupil code/name.
func s2Want(id int64, pupil, code string, files []s2Upload) []s2File {
	var out []s2File
	for _, f := range files {
		out = append(out, s2File{
			Path: fmt.Sprintf("%s/%s (%d)/%s %s/%s", s2Class, s2Title, id, pupil, code, f.Name),
			Size: int64(len(f.Data)), SHA256: f.sha256(),
		})
	}
	return out
}

// checkQueued checks that the outbox holds exactly want, at the right
// paths and with the right hashes, in state queued.
func s2CheckQueued(t *testing.T, st SyncStatus, want []s2File) {
	t.Helper()
	if n := st.Outbox.Counts[outbox.StateQueued]; n != len(want) || len(st.Outbox.Items) != len(want) {
		t.Errorf("outbox: %d queued, %d listed; want %d (counts %v)", n, len(st.Outbox.Items), len(want), st.Outbox.Counts)
	}
	for _, f := range want {
		i := slices.IndexFunc(st.Outbox.Items, func(it outbox.ItemStatus) bool { return it.RemotePath == f.Path })
		if i < 0 {
			t.Errorf("outbox: no item for %s", f.Path)
			continue
		}
		it := st.Outbox.Items[i]
		if it.Destination != s2Dest || it.SHA256 != f.SHA256 || it.Size != f.Size || it.State != outbox.StateQueued {
			t.Errorf("outbox item %s: destination %q, %d bytes, sha256 %.12s, %s; want %q, %d, %.12s, queued",
				f.Path, it.Destination, it.Size, it.SHA256, it.State, s2Dest, f.Size, f.SHA256)
		}
	}
}

func s2Fixture(t *testing.T, name string) s2Upload {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "scenario", name))
	if err != nil {
		t.Fatal(err)
	}
	return s2Upload{Name: name, Data: b}
}

// s2Picture makes a real PNG of about size bytes (noise does not compress).
func s2Picture(rng *rand.Rand, size int) []byte {
	const w = 128
	img := image.NewNRGBA(image.Rect(0, 0, w, max(1, size/(4*w))))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.Uint32())
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// ---------------------------------------------------------------------------
// The tests.

// TestScenarioS2HandIn: a pupil hands in a PNG and a PDF while sending is
// closed; the receipt says it waits, the outbox holds both and the server
// nothing; `preau sync now` delivers both exactly once at their
// deterministic paths; the receipt says sent; a restart sends nothing again.
func TestScenarioS2HandIn(t *testing.T) {
	dav := startS2Dav(t)
	s := newS2Setup(t, s2Options{probeURL: startS2Probe(t), davURL: dav.url()})
	box := startS2InProcess(t, s, true)

	teacher := s2TeacherLogin(t, s, "")
	id := teacher.newAssignment()

	pupil := newS2Client(t, s.baseURL())
	if r := pupil.get("/devoirs/"); r.status != http.StatusOK || !strings.Contains(r.body, `href="/devoirs/classe/`+s2Class+`"`) {
		t.Fatalf("/devoirs/: status %d, no link to %s", r.status, s2Class)
	}
	if r := pupil.get("/devoirs/classe/" + s2Class); !strings.Contains(r.body, fmt.Sprintf(`href="/devoirs/devoir/%d"`, id)) {
		t.Fatalf("class page: status %d, no link to the assignment", r.status)
	}
	files := []s2Upload{s2Fixture(t, "image.png"), s2Fixture(t, "doc.pdf")}
	code := pupil.handIn(id, "Léa", "M", files)
	want := s2Want(id, "Léa M.", code, files)

	if class, label := pupil.receiptState(code); class != "pending" || label != "reçu, en attente d'envoi" {
		t.Errorf("receipt before sending: state %s %q, want pending %q", class, label, "reçu, en attente d'envoi")
	}
	st := s.statusJSON(t, "")
	s2CheckQueued(t, st, want)
	if st.Budget.WindowOpen || st.Budget.SendNow || !st.Budget.Online || !st.Budget.ClockSet {
		t.Errorf("budget before sync now: %+v; want window closed, no send-now, online, clock set", st.Budget)
	}
	if out := s.mustCLI(t, "", "", "sync", "status"); !strings.Contains(out, "Plage d'envoi : fermée") ||
		!strings.Contains(out, "queued 2") {
		t.Errorf("preau sync status:\n%s", out)
	}
	// Give a wrongly open gate the time to send: nothing may arrive.
	time.Sleep(time.Second)
	if got := dav.tree(); len(got) != 0 {
		t.Fatalf("sending is closed, yet the server holds %v", got)
	}

	started := time.Now()
	// --wait follows the upload to its end (a progress bar on a terminal,
	// lines otherwise) and sums it up.
	rc, sout, errOut := s.cli(t, "", "", "sync", "now", "--wait")
	if rc != ExitOK || !strings.Contains(sout, "Envoi lancé maintenant") || !strings.Contains(sout, "File vide : 2 envoyés, 0 en échec.") {
		t.Errorf("preau sync now --wait: exit %d, printed %q", rc, sout)
	}
	if !strings.Contains(errOut, "envoi : ") {
		t.Errorf("preau sync now --wait showed no progress: %q", errOut)
	}
	s.waitDelivered(t, len(want), 30*time.Second)
	t.Logf("sync now: %d files delivered in %v", len(want), time.Since(started).Round(time.Millisecond))
	before := dav.checkExactly(t, want)
	if class, label := pupil.receiptState(code); class != "sent" || label != "envoyé" {
		t.Errorf("receipt after sending: state %s %q, want sent %q", class, label, "envoyé")
	}

	// Restart on the same data folder: nothing is sent twice.
	box.stop(t)
	box = startS2InProcess(t, s, true)
	s.mustCLI(t, "", "", "sync", "now")
	time.Sleep(2 * time.Second)
	st = s.statusJSON(t, "")
	if st.Outbox.Counts[outbox.StateDelivered] != len(want) || len(st.Outbox.Items) != 0 {
		t.Errorf("after the restart: counts %v, %d pending; want %d delivered", st.Outbox.Counts, len(st.Outbox.Items), len(want))
	}
	after := dav.checkExactly(t, want)
	for p, f := range before {
		if g := after[p]; !g.ModTime.Equal(f.ModTime) {
			t.Errorf("%s was written again after the restart (modified %v, then %v)", p, f.ModTime, g.ModTime)
		}
	}
	if m := s2Metric(t, s, `preau_outbox_delivered_total{how="sent"}`); m != 0 {
		t.Errorf("after the restart the outbox sent %v items, want 0", m)
	}
	if class, _ := pupil.receiptState(code); class != "sent" {
		t.Errorf("receipt after the restart: state %s, want sent", class)
	}
}

// openS2DB opens the data folder's database of a stopped box.
func openS2DB(dataDir string) (*sql.DB, error) {
	return sql.Open("sqlite3", "file:"+dbPath(dataDir)+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000")
}

// s2Metric reads one sample of /metrics (0 when absent).
func s2Metric(t *testing.T, s *s2Setup, name string) float64 {
	t.Helper()
	resp, err := http.Get(s.baseURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// TestScenarioS2KillAndCut runs the real binary: pupils hand in 30 pictures
// over HTTP, `preau sync now`, and while the box delivers it is killed
// with SIGKILL at random instants (and restarted on the same data folder)
// and the WebDAV server is cut and restarted. At the end every file is on
// the server exactly once with its size and hash, no temporary file is
// left, and every outbox item is delivered.
func TestScenarioS2KillAndCut(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PREAU_S2_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (PREAU_S2_SEED=%d replays the instants)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5e2))

	dav := startS2Dav(t)
	// max_rate keeps the 30 pictures on the wire for several seconds, so
	// that the kills and cuts land while files are being sent.
	s := newS2Setup(t, s2Options{probeURL: startS2Probe(t), davURL: dav.url(), maxRate: "1MB", workers: 2})
	box := newS2Process(t, s)
	bin := box.bin
	box.start(true)

	teacher := s2TeacherLogin(t, s, bin)
	id := teacher.newAssignment()
	pupils := []struct{ first, initial string }{
		{"Léa", "M"}, {"Hugo", "B"}, {"Inès", "K"}, {"Noah", "D"}, {"Jade", "L"},
		{"Louis", "P"}, {"Chloé", "R"}, {"Adam", "S"}, {"Manon", "T"}, {"Jean-Éric", "V"},
	}
	var want []s2File
	var total int64
	type receipt struct {
		pupil *s2Client
		code  string
	}
	var receipts []receipt
	for _, p := range pupils {
		var files []s2Upload
		for k := 1; k <= 3; k++ {
			data := s2Picture(rng, 20<<10+rng.IntN(480<<10))
			files = append(files, s2Upload{Name: fmt.Sprintf("page-%d.png", k), Data: data})
			total += int64(len(data))
		}
		c := newS2Client(t, s.baseURL())
		code := c.handIn(id, p.first, p.initial, files)
		receipts = append(receipts, receipt{c, code})
		want = append(want, s2Want(id, p.first+" "+p.initial+".", code, files)...)
	}
	st := s.statusJSON(t, bin)
	s2CheckQueued(t, st, want)
	if st.Budget.WindowOpen || t.Failed() {
		t.Fatalf("before sync now: window open %v", st.Budget.WindowOpen)
	}
	t.Logf("%d files, %d KiB handed in", len(want), total>>10)

	// Kill k comes once about k/6 of the files are delivered, plus a random
	// instant: the kills spread over the whole delivery, each one while
	// files are on the wire. Two rounds also cut the destination at a
	// random instant and bring it back on the same port and folder; `sync
	// now` then makes the items waiting out their backoff due again.
	started := time.Now()
	const kills = 5
	delivered := func() (SyncStatus, int) {
		st, err := s.syncStatus()
		if err != nil {
			return st, -1
		}
		return st, st.Outbox.Counts[outbox.StateDelivered]
	}
	for k := range kills {
		s.mustCLI(t, bin, "", "sync", "now")
		if k == 1 || k == 3 {
			time.Sleep(time.Duration(rng.Int64N(int64(time.Second))))
			_, before := delivered()
			dav.cut()
			time.Sleep(200*time.Millisecond + time.Duration(rng.Int64N(int64(600*time.Millisecond))))
			dav.start()
			t.Logf("destination cut for a moment %v in, %d delivered", time.Since(started).Round(time.Millisecond), before)
			s.mustCLI(t, bin, "", "sync", "now")
		}
		target := len(want) * (k + 1) / (kills + 1)
		if !waitUntil(30*time.Second, 20*time.Millisecond, func() bool { _, n := delivered(); return n >= target }) {
			st, n := delivered()
			t.Fatalf("round %d: %d delivered after 30 s, want %d; first pending: %s", k+1, n, target, s2FirstPending(st))
		}
		time.Sleep(time.Duration(rng.Int64N(int64(400 * time.Millisecond))))
		st, n := delivered()
		box.kill()
		t.Logf("kill -9 #%d %v in: %d delivered, %d being sent", k+1, time.Since(started).Round(time.Millisecond), n, len(st.Outbox.InFlight))
		if n < 0 || n == len(want) {
			t.Errorf("kill #%d: %d of %d delivered: not while delivering", k+1, n, len(want))
		}
		// A box takes seconds to come back; a request of the killed one
		// may still reach the server a moment later.
		time.Sleep(300 * time.Millisecond)
		box.start(true)
	}
	s.mustCLI(t, bin, "", "sync", "now")
	s.waitDelivered(t, len(want), 45*time.Second)
	t.Logf("all %d files delivered %v after the first sync now", len(want), time.Since(started).Round(time.Millisecond))
	st = s.statusJSON(t, bin)
	if st.Outbox.Counts[outbox.StateDelivered] != len(want) || len(st.Outbox.Items) != 0 {
		t.Errorf("preau sync status --json: counts %v, %d pending; want %d delivered", st.Outbox.Counts, len(st.Outbox.Items), len(want))
	}
	for _, r := range receipts {
		if class, label := r.pupil.receiptState(r.code); class != "sent" {
			t.Errorf("receipt %s: %s %q, want sent", r.code, class, label)
		}
	}
	dav.checkExactly(t, want)
	box.stop()

	// The outbox's own record: every item delivered and verified.
	db, err := openS2DB(s.data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, nDelivered, verified, attempts, recoveries int
	if err := db.QueryRow(`SELECT count(*), sum(state = 'delivered'), sum(verified), sum(attempts), sum(recoveries)
		FROM outbox_items`).Scan(&n, &nDelivered, &verified, &attempts, &recoveries); err != nil {
		t.Fatal(err)
	}
	if n != len(want) || nDelivered != n || verified != n {
		t.Errorf("outbox: %d items, %d delivered, %d verified; want %d of each", n, nDelivered, verified, len(want))
	}
	t.Logf("%d attempts for %d items; %d items found in flight at a restart", attempts, n, recoveries)
	if recoveries == 0 {
		t.Errorf("no kill landed while an item was in flight")
	}
}

// TestScenarioS2Export: with sending closed and no link, `preau export
// --to DIR` writes the three waiting files to a bundle that verifies, with
// the items' keys, paths and hashes in its manifest; the CLI prints a
// summary; the items stay queued for the link.
func TestScenarioS2Export(t *testing.T) {
	s := newS2Setup(t, s2Options{})
	startS2InProcess(t, s, false)
	teacher := s2TeacherLogin(t, s, "")
	id := teacher.newAssignment()
	files := []s2Upload{s2Fixture(t, "image.png"), s2Fixture(t, "doc.pdf"), s2Fixture(t, "photo.jpg")}
	code := newS2Client(t, s.baseURL()).handIn(id, "Léa", "M", files)
	want := s2Want(id, "Léa M.", code, files)
	before := s.statusJSON(t, "")
	s2CheckQueued(t, before, want)

	usbKey := t.TempDir()
	code2, out, errb := s.cli(t, "", "", "export", "--to", usbKey)
	if code2 != ExitOK {
		t.Fatalf("preau export: exit %d\n%s%s", code2, out, errb)
	}
	m := regexp.MustCompile(`^Lot écrit : (.+) \(3 éléments, 3 fichiers, [^)]+\)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("preau export printed %q, want a summary of 3 items and 3 files", out)
	}
	bundle := m[1]
	if filepath.Dir(bundle) != usbKey {
		t.Errorf("bundle %s is not in %s", bundle, usbKey)
	}
	c, err := usb.New(usb.Config{BoxID: "verifier"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	man, err := c.Verify(context.Background(), bundle, nil)
	if err != nil {
		t.Fatalf("usb.Verify(%s): %v", bundle, err)
	}
	if man.Box != "0631234X" || len(man.Items) != len(want) {
		t.Errorf("manifest: box %q, %d items; want 0631234X, %d", man.Box, len(man.Items), len(want))
	}
	for _, f := range want {
		i := slices.IndexFunc(man.Items, func(it usb.Item) bool { return it.RemotePath == f.Path })
		if i < 0 {
			t.Errorf("manifest lacks %s", f.Path)
			continue
		}
		it := man.Items[i]
		j := slices.IndexFunc(before.Outbox.Items, func(o outbox.ItemStatus) bool { return o.RemotePath == f.Path })
		if it.SHA256 != f.SHA256 || it.Size != f.Size || it.Destination != s2Dest || j < 0 || it.Key != before.Outbox.Items[j].Key {
			t.Errorf("manifest item %s: %+v; want sha256 %.12s, %d bytes, destination %s, the outbox's key", f.Path, it, f.SHA256, f.Size, s2Dest)
		}
	}
	after := s.statusJSON(t, "")
	s2CheckQueued(t, after, want)
}

// TestScenarioS2PagesInChromium: the pupil's path (class list, class page,
// hand-in form, receipt, my receipts) and the teacher's login page in a
// real browser pass axe-core with no serious or critical violation; the
// pupil hands in a picture through the form, as on a tablet.
func TestScenarioS2PagesInChromium(t *testing.T) {
	b := browsertest.Start(t)
	art := browsertest.ArtefactDir(t)
	s := newS2Setup(t, s2Options{})
	startS2InProcess(t, s, false)
	teacher := s2TeacherLogin(t, s, "")
	id := teacher.newAssignment()
	picture := filepath.Join(t.TempDir(), "dessin.png")
	if err := os.WriteFile(picture, s2Fixture(t, "image.png").Data, 0o644); err != nil {
		t.Fatal(err)
	}

	check := func(name string) {
		t.Helper()
		if n, err := b.Count("h1"); err != nil || n != 1 {
			t.Errorf("%s: %d h1 elements, want 1 (%v)", name, n, err)
		}
		if err := b.Screenshot(filepath.Join(art, name+".png")); err != nil {
			t.Error(err)
		}
		vs, err := b.Axe()
		if err != nil {
			t.Fatalf("axe on %s: %v", name, err)
		}
		for _, v := range browsertest.Serious(vs) {
			t.Errorf("%s: accessibility: %s", name, v)
		}
	}
	open := func(name, path string) {
		t.Helper()
		if err := b.Open(s.baseURL() + path); err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		check(name)
	}
	open("enseignant-connexion", "/enseignant/connexion")
	open("devoirs", "/devoirs/")
	open("classe", "/devoirs/classe/"+s2Class)
	open("formulaire", fmt.Sprintf("/devoirs/devoir/%d", id))

	// The pupil fills the form and picks the picture.
	for sel, text := range map[string]string{"#prenom": "Léa", "#initiale": "M", "#fichiers": picture} {
		if err := b.Type(sel, text); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Click(`form.handin button[type="submit"]`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(15*time.Second, `return location.pathname.startsWith("/devoirs/recu/") && document.readyState === "complete"`); err != nil {
		u, _ := b.URL()
		t.Fatalf("no receipt after handing in (at %s): %v", u, err)
	}
	state, err := b.Text(".receipt .state")
	if err != nil || state != "reçu, en attente d'envoi" {
		t.Errorf("receipt state %q (%v), want %q", state, err, "reçu, en attente d'envoi")
	}
	check("recu")
	open("mes-recus", "/devoirs/recus")
	if n, err := b.Count(".receipt"); err != nil || n != 1 {
		t.Errorf("my receipts lists %d receipts (%v), want 1", n, err)
	}
}

func s2RcloneLevel() string {
	if os.Getenv("PREAU_S2_LOG") != "" {
		return "DEBUG"
	}
	return "ERROR"
}
