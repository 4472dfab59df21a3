// Package browsertest drives Debian's headless Chromium from Go tests
// through chromedriver's W3C WebDriver HTTP API, runs axe-core accessibility
// checks on the pages it opens, and makes small WebM test videos with ffmpeg.
//
// It is test tooling: only _test.go files of Préau (the portal, the console,
// the in-process scenario harness) may import it, never production code. It
// talks WebDriver with net/http and encoding/json only, so no third-party
// WebDriver library sits between a test and the browser it checks.
//
// Chromium, chromedriver and ffmpeg are real peers, not fakes: when one is
// missing the test is skipped with a message saying what to install, unless
// PREAU_REQUIRE_BROWSER=1 (set in CI), which turns the skip into a failure.
package browsertest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns a missing browser or
// ffmpeg from a skip into a failure. CI sets it to 1.
const RequireEnv = "PREAU_REQUIRE_BROWSER"

// ArtefactsEnv names the environment variable that overrides where
// ArtefactDir puts screenshots and other files kept after a test.
const ArtefactsEnv = "PREAU_ARTEFACTS"

// Keys for Key (WebDriver's normalised key codes).
const (
	KeyEnter     = "\uE007"
	KeyTab       = "\uE004"
	KeyEscape    = "\uE00C"
	KeyBackspace = "\uE003"
	KeySpace     = "\uE00D"
)

// webElementKey is the W3C identifier of an element reference in JSON.
const webElementKey = "element-6066-11e4-a52e-4f735466cecf"

// Browser is one chromedriver process with one Chromium session. Its methods
// are safe for use by one goroutine at a time, like the page they drive.
type Browser struct {
	t       testing.TB
	base    string // http://127.0.0.1:PORT/session/ID
	client  *http.Client
	timeout time.Duration
	logPath string
}

type config struct {
	width, height int
	timeout       time.Duration
	extraArgs     []string
}

// Option changes how Start opens the browser.
type Option func(*config)

// WithWindow sets the browser window size in CSS pixels. The default,
// 800×1280, is a 7-inch tablet held upright.
func WithWindow(w, h int) Option {
	return func(c *config) { c.width, c.height = w, h }
}

// WithTimeout sets how long a page load or an asynchronous script may take
// before the command fails (default 30 s).
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithArgs adds Chromium command-line switches to the default ones.
func WithArgs(args ...string) Option {
	return func(c *config) { c.extraArgs = append(c.extraArgs, args...) }
}

// defaultArgs keep headless Chromium quiet and self-contained: without the
// background-networking switches it fires many refused connections.
func defaultArgs() []string {
	return []string{
		"--headless",
		"--no-sandbox",
		"--disable-gpu",
		"--disable-quic",
		"--no-first-run",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--autoplay-policy=no-user-gesture-required",
		"--disable-dev-shm-usage",
	}
}

// Start launches chromedriver on 127.0.0.1 (a port the kernel picks), opens
// a Chromium session with a fresh profile and registers their teardown with
// t.Cleanup. A missing Chromium skips the test (fails it when
// PREAU_REQUIRE_BROWSER=1); any other start-up error fails it.
func Start(t testing.TB, opts ...Option) *Browser {
	t.Helper()
	cfg := config{width: 800, height: 1280, timeout: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	chromium, err := findTool("chromium", "chromium-browser", "google-chrome")
	if err != nil {
		missing(t, "Chromium introuvable : installez le paquet Debian « chromium » / Chromium not found: install the Debian package chromium")
	}
	driver, err := findTool("chromedriver")
	if err != nil {
		missing(t, "chromedriver introuvable : installez le paquet Debian « chromium-driver » / chromedriver not found: install the Debian package chromium-driver")
	}

	tmp := t.TempDir()
	b := &Browser{
		t:       t,
		client:  &http.Client{Timeout: cfg.timeout + 30*time.Second},
		timeout: cfg.timeout,
		logPath: filepath.Join(tmp, "chromedriver.log"),
	}
	addr, stop, err := startDriver(driver, b.logPath)
	if err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	// Registered first so that it runs last: the session goes before the driver.
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			b.logTail(40)
		}
	})

	args := defaultArgs()
	args = append(args,
		"--user-data-dir="+filepath.Join(tmp, "profile"),
		fmt.Sprintf("--window-size=%d,%d", cfg.width, cfg.height),
	)
	args = append(args, cfg.extraArgs...)
	caps := map[string]any{
		"capabilities": map[string]any{
			"alwaysMatch": map[string]any{
				"browserName":         "chrome",
				"acceptInsecureCerts": true,
				"pageLoadStrategy":    "normal",
				"timeouts": map[string]any{
					"script":   cfg.timeout.Milliseconds(),
					"pageLoad": cfg.timeout.Milliseconds(),
					"implicit": 0,
				},
				"goog:chromeOptions": map[string]any{
					"binary": chromium,
					"args":   args,
				},
				"goog:loggingPrefs": map[string]any{"browser": "ALL"},
			},
		},
	}
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	b.base = "http://" + addr
	if err := b.do(http.MethodPost, "/session", caps, &sess); err != nil {
		t.Fatalf("open chromium session: %v", err)
	}
	if sess.SessionID == "" {
		t.Fatalf("open chromium session: chromedriver returned no session id")
	}
	b.base = "http://" + addr + "/session/" + sess.SessionID
	t.Cleanup(func() {
		if err := b.do(http.MethodDelete, "", nil, nil); err != nil {
			t.Logf("close chromium session: %v", err)
		}
	})
	// --window-size sizes the window; this makes the viewport match on
	// builds where the two differ.
	rect := map[string]any{"width": cfg.width, "height": cfg.height}
	if err := b.do(http.MethodPost, "/window/rect", rect, nil); err != nil {
		t.Fatalf("set window size %dx%d: %v", cfg.width, cfg.height, err)
	}
	return b
}

// missing skips the test, or fails it when CI requires the browser.
func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1)", msg, RequireEnv)
	}
	t.Skip(msg)
}

// findTool looks in /usr/bin first (Debian's packages), then on PATH.
func findTool(names ...string) (string, error) {
	for _, n := range names {
		p := filepath.Join("/usr/bin", n)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s: %w", strings.Join(names, " or "), exec.ErrNotFound)
}

var startedRE = regexp.MustCompile(`started successfully on port (\d+)`)

// startDriver runs chromedriver with --port=0 and reads the port it chose
// from its first lines of output, which avoids racing for a free port. It
// returns 127.0.0.1:PORT and a function that stops the driver and every
// process it started (they share its process group).
func startDriver(path, logPath string) (addr string, stop func(), err error) {
	cmd := exec.Command(path, "--port=0", "--log-path="+logPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, fmt.Errorf("pipe output: %w", err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("run %s: %w", path, err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			// The group holds chromedriver and any Chromium it failed to close.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		})
	}
	portc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := startedRE.FindStringSubmatch(sc.Text()); m != nil {
				portc <- m[1]
				break
			}
		}
		close(portc)
		_, _ = io.Copy(io.Discard, out) // keep the pipe drained
	}()
	select {
	case port, ok := <-portc:
		if !ok {
			stop()
			return "", nil, errors.New("chromedriver exited before it listened")
		}
		return "127.0.0.1:" + port, stop, nil
	case <-time.After(20 * time.Second):
		stop()
		return "", nil, errors.New("chromedriver did not listen within 20s")
	}
}

// logTail copies the end of chromedriver's log into the test output.
func (b *Browser) logTail(n int) {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	b.t.Logf("chromedriver log (last %d lines):\n%s", len(lines), strings.Join(lines, "\n"))
}

// Error is a WebDriver error answer, e.g. Code "no such element".
type Error struct {
	Command string // method and path relative to the session
	Status  int    // HTTP status
	Code    string // W3C error code
	Message string
}

func (e *Error) Error() string {
	msg := e.Message
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] // drop chromedriver's system info lines
	}
	return fmt.Sprintf("webdriver %s: %s: %s", e.Command, e.Code, msg)
}

// do sends one WebDriver command and decodes the "value" of its answer.
func (b *Browser) do(method, path string, body, value any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("webdriver %s %s: encode request: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	if err != nil {
		return fmt.Errorf("webdriver %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("webdriver %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("webdriver %s %s: read answer: %w", method, path, err)
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return fmt.Errorf("webdriver %s %s: decode answer (HTTP %d): %w", method, path, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		var we struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(env.Value, &we)
		return &Error{Command: method + " " + path, Status: resp.StatusCode, Code: we.Error, Message: we.Message}
	}
	if value == nil || len(env.Value) == 0 {
		return nil
	}
	// Session creation answers {"value":{"sessionId":…,"capabilities":…}}.
	if err := json.Unmarshal(env.Value, value); err != nil {
		return fmt.Errorf("webdriver %s %s: decode value: %w", method, path, err)
	}
	return nil
}

// Open loads url and waits for the page's load event.
func (b *Browser) Open(url string) error {
	if err := b.do(http.MethodPost, "/url", map[string]string{"url": url}, nil); err != nil {
		return fmt.Errorf("open %s: %w", url, err)
	}
	return nil
}

// URL returns the address of the current page.
func (b *Browser) URL() (string, error) {
	var u string
	if err := b.do(http.MethodGet, "/url", nil, &u); err != nil {
		return "", fmt.Errorf("read current url: %w", err)
	}
	return u, nil
}

// Title returns the current page's title.
func (b *Browser) Title() (string, error) {
	var s string
	if err := b.do(http.MethodGet, "/title", nil, &s); err != nil {
		return "", fmt.Errorf("read page title: %w", err)
	}
	return s, nil
}

// Exec runs script as the body of a function in the page (arguments in
// `arguments`) and returns what it returns, decoded from JSON: numbers are
// float64, objects map[string]any.
func (b *Browser) Exec(script string, args ...any) (any, error) {
	return b.exec("/execute/sync", script, args)
}

// ExecAsync runs script like Exec but waits until it calls its last
// argument, the callback, whose argument it returns. It fails after the
// script timeout (WithTimeout, 30 s by default).
func (b *Browser) ExecAsync(script string, args ...any) (any, error) {
	return b.exec("/execute/async", script, args)
}

func (b *Browser) exec(path, script string, args []any) (any, error) {
	if args == nil {
		args = []any{}
	}
	var v any
	if err := b.do(http.MethodPost, path, map[string]any{"script": script, "args": args}, &v); err != nil {
		return nil, fmt.Errorf("run script %q: %w", abbrev(script), err)
	}
	return v, nil
}

func abbrev(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// Wait runs script (as Exec) every 50 ms until it returns a truthy value,
// which it returns, or fails after timeout. Use it for pages that change
// after a script or a network answer; it is not a performance measure.
func (b *Browser) Wait(timeout time.Duration, script string, args ...any) (any, error) {
	deadline := time.Now().Add(timeout)
	for {
		v, err := b.Exec(script, args...)
		if err != nil {
			return nil, err
		}
		if truthy(v) {
			return v, nil
		}
		if time.Now().After(deadline) {
			return v, fmt.Errorf("wait for %q: still %v after %s", abbrev(script), v, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != ""
	default:
		return true
	}
}

// find returns the WebDriver id of the first element matching sel.
func (b *Browser) find(sel string) (string, error) {
	var ref map[string]string
	body := map[string]string{"using": "css selector", "value": sel}
	if err := b.do(http.MethodPost, "/element", body, &ref); err != nil {
		return "", fmt.Errorf("find %q: %w", sel, err)
	}
	id := ref[webElementKey]
	if id == "" {
		return "", fmt.Errorf("find %q: answer holds no element reference", sel)
	}
	return id, nil
}

// Count returns how many elements match sel.
func (b *Browser) Count(sel string) (int, error) {
	var refs []map[string]string
	body := map[string]string{"using": "css selector", "value": sel}
	if err := b.do(http.MethodPost, "/elements", body, &refs); err != nil {
		return 0, fmt.Errorf("count %q: %w", sel, err)
	}
	return len(refs), nil
}

// Text returns the rendered text of the first element matching sel.
func (b *Browser) Text(sel string) (string, error) {
	id, err := b.find(sel)
	if err != nil {
		return "", err
	}
	var s string
	if err := b.do(http.MethodGet, "/element/"+id+"/text", nil, &s); err != nil {
		return "", fmt.Errorf("read text of %q: %w", sel, err)
	}
	return s, nil
}

// Attr returns a property of the first element matching sel, as the DOM
// sees it now (e.g. "value" of an input, "href" of a link, resolved).
func (b *Browser) Attr(sel, name string) (string, error) {
	id, err := b.find(sel)
	if err != nil {
		return "", err
	}
	var v any
	if err := b.do(http.MethodGet, "/element/"+id+"/property/"+name, nil, &v); err != nil {
		return "", fmt.Errorf("read %s of %q: %w", name, sel, err)
	}
	if v == nil {
		return "", nil
	}
	return fmt.Sprint(v), nil
}

// Click clicks the first element matching sel, as a user would (it must be
// visible and not covered).
func (b *Browser) Click(sel string) error {
	id, err := b.find(sel)
	if err != nil {
		return err
	}
	if err := b.do(http.MethodPost, "/element/"+id+"/click", map[string]any{}, nil); err != nil {
		return fmt.Errorf("click %q: %w", sel, err)
	}
	return nil
}

// Type sends text as key presses to the first element matching sel.
func (b *Browser) Type(sel, text string) error {
	id, err := b.find(sel)
	if err != nil {
		return err
	}
	if err := b.do(http.MethodPost, "/element/"+id+"/value", map[string]string{"text": text}, nil); err != nil {
		return fmt.Errorf("type into %q: %w", sel, err)
	}
	return nil
}

// Key presses one key (KeyEnter, KeyTab, …) in the first element matching sel.
func (b *Browser) Key(sel, key string) error {
	if err := b.Type(sel, key); err != nil {
		return fmt.Errorf("press key %U: %w", []rune(key)[0], err)
	}
	return nil
}

// Screenshot writes a PNG of the viewport to path, creating its directory.
func (b *Browser) Screenshot(path string) error {
	var enc string
	if err := b.do(http.MethodGet, "/screenshot", nil, &enc); err != nil {
		return fmt.Errorf("take screenshot: %w", err)
	}
	data, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return fmt.Errorf("take screenshot: decode base64: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("save screenshot: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("save screenshot: %w", err)
	}
	return nil
}

// LogEntry is one message from the page's console.
type LogEntry struct {
	Level   string // SEVERE, WARNING, INFO, …
	Message string
}

// ConsoleLog returns the browser console messages logged since the last call
// (JavaScript errors, failed loads, console.log).
func (b *Browser) ConsoleLog() ([]LogEntry, error) {
	var raw []struct {
		Level   string `json:"level"`
		Message string `json:"message"`
	}
	if err := b.do(http.MethodPost, "/se/log", map[string]string{"type": "browser"}, &raw); err != nil {
		return nil, fmt.Errorf("read console log: %w", err)
	}
	out := make([]LogEntry, 0, len(raw))
	for _, r := range raw {
		out = append(out, LogEntry{Level: r.Level, Message: r.Message})
	}
	return out, nil
}
