package appliance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"preau/appliance/demo"
	"preau/appliance/store"
	"preau/services/content"
)

// testBox is a whole box on loopback, as `preau run --demo` starts it.
type testBox struct {
	*Box
	url    string
	cancel context.CancelFunc
	done   chan error
}

func startBox(t *testing.T, dataDir string, demoPack bool) *testBox {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	cfg := Defaults()
	cfg.Box.DataDir = dataDir
	cfg.Box.Name = "École de test"
	cfg.HTTP.Listen = []string{"127.0.0.1:0"}
	cfg.DNS.Listen = []string{"127.0.0.1:0"}
	cfg.DNS.Upstreams = []string{"127.0.0.1:9"} // nothing answers: offline
	cfg.HTTP.ShutdownTimeout = "5s"
	cfg.Uplink.ProbeURLs = nil
	ctx, cancel := context.WithCancel(context.Background())
	box, err := New(ctx, cfg, Options{Demo: demoPack}, quietLog())
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	tb := &testBox{Box: box, url: "http://" + box.Addrs()[0].String(), cancel: cancel, done: make(chan error, 1)}
	go func() { tb.done <- box.Serve(ctx) }()
	t.Cleanup(func() { tb.stop(t) })
	return tb
}

func (tb *testBox) stop(t *testing.T) {
	if tb.cancel == nil {
		return
	}
	tb.cancel()
	tb.cancel = nil
	select {
	case err := <-tb.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("box did not stop within 20 s")
	}
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	return resp, body
}

// requirePeer skips a test whose real peer is missing, except in CI where
// a missing peer is a failure.
func requirePeer(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		if os.Getenv("PREAU_REQUIRE_PEERS") == "1" || os.Getenv("CI") == "true" {
			t.Fatalf("%s not found: .ci/run must install it", bin)
		}
		t.Skipf("%s not installed; skipping (CI installs it)", bin)
	}
	return p
}

type demoManifest struct {
	ID    string `json:"id"`
	Items []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
		Kind  string `json:"kind"`
		Files []struct {
			Path      string `json:"path"`
			Size      int64  `json:"size"`
			SHA256    string `json:"sha256"`
			MediaType string `json:"media_type"`
		} `json:"files"`
	} `json:"items"`
}

func readDemoManifest(t *testing.T, dir string) demoManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "demo-pack", "preau-pack.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m demoManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBoxServesTheDemo is S1 in miniature: a fresh box with the demo pack
// shows the portal, every item page, and serves every file byte-exact.
func TestBoxServesTheDemo(t *testing.T) {
	dir := t.TempDir()
	tb := startBox(t, dir, true)
	m := readDemoManifest(t, dir)
	if m.ID != demo.PackID || len(m.Items) < 5 {
		t.Fatalf("demo manifest: id %q with %d items", m.ID, len(m.Items))
	}
	resp, home := get(t, tb.url+"/")
	if resp.StatusCode != 200 || !strings.Contains(string(home), "École de test") {
		t.Fatalf("home: %d, school name missing", resp.StatusCode)
	}
	for _, it := range m.Items {
		if !strings.Contains(string(home), htmlEscape(it.Title)) {
			t.Errorf("home does not list %q", it.Title)
		}
		resp, _ := get(t, fmt.Sprintf("%s/ressource/%s/%s", tb.url, m.ID, it.ID))
		if resp.StatusCode != 200 {
			t.Errorf("item page %s: %d", it.ID, resp.StatusCode)
		}
		for _, f := range it.Files {
			resp, body := get(t, fmt.Sprintf("%s/c/%s/%s", tb.url, m.ID, f.Path))
			sum := sha256.Sum256(body)
			if resp.StatusCode != 200 || hex.EncodeToString(sum[:]) != f.SHA256 {
				t.Errorf("%s: status %d, hash mismatch=%v", f.Path, resp.StatusCode, hex.EncodeToString(sum[:]) != f.SHA256)
			}
			if got := resp.Header.Get("Content-Type"); got != f.MediaType {
				t.Errorf("%s: Content-Type %q, want %q", f.Path, got, f.MediaType)
			}
		}
	}
	resp, body := get(t, tb.url+"/recherche?q=volcan")
	if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(string(body)), "volcan") {
		t.Errorf("search for volcan: %d", resp.StatusCode)
	}
}

func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")
	return r.Replace(s)
}

func TestHealthz(t *testing.T) {
	tb := startBox(t, "", true)
	resp, body := get(t, tb.url+"/healthz")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("healthz: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var h Health
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	if h.Status != "ok" || h.Database != "ok" || h.Version == "" || h.DiskFreeBytes == 0 || h.Packs != 1 || h.Items < 5 || h.Online {
		t.Errorf("healthz = %+v", h)
	}
}

// TestMetricsPassPromtool checks the exposition with Prometheus's own linter.
func TestMetricsPassPromtool(t *testing.T) {
	promtool := requirePeer(t, "promtool")
	tb := startBox(t, "", true)
	get(t, tb.url+"/")
	get(t, tb.url+"/c/nope/x")
	resp, body := get(t, tb.url+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	for _, name := range []string{"preau_build_info", "preau_http_requests_total", "preau_content_items", "preau_uplink_online", "preau_go_goroutines", "preau_process_resident_memory_bytes"} {
		if !strings.Contains(string(body), "\n"+name) {
			t.Errorf("metric %s missing", name)
		}
	}
	for _, line := range strings.Split(string(body), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "preau_") {
			t.Errorf("metric without the preau_ prefix: %s", line)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(string(body))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestGracefulShutdown: a download in flight when the box stops finishes.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	tb := startBox(t, dir, false)
	pack := writeTestPack(t, map[string][]byte{"big.bin": make([]byte, 8<<20)}, "application/octet-stream")
	if _, err := tb.content.Import(context.Background(), pack, nil); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", tb.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /c/test-pack/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { tb.stop(t); close(stopped) }()
	time.Sleep(200 * time.Millisecond) // the box is now draining
	n, err := io.Copy(io.Discard, conn)
	if err != nil {
		t.Fatalf("download cut during shutdown after %d bytes: %v", n, err)
	}
	if total := int64(len(buf)) + n; total < 8<<20 {
		t.Errorf("received %d bytes, want the whole 8 MiB body", total)
	}
	<-stopped
	if _, err := net.DialTimeout("tcp", tb.Addrs()[0].String(), time.Second); err == nil {
		t.Error("box still accepts connections after stopping")
	}
}

// writeTestPack writes a pack folder with the given files, one item each.
func writeTestPack(t *testing.T, files map[string][]byte, mediaType string) string {
	t.Helper()
	dir := t.TempDir()
	type file struct {
		Path      string `json:"path"`
		Size      int    `json:"size"`
		SHA256    string `json:"sha256"`
		MediaType string `json:"media_type"`
	}
	type item struct {
		ID      string   `json:"id"`
		Title   string   `json:"title"`
		Kind    string   `json:"kind"`
		Levels  []string `json:"levels"`
		Licence string   `json:"licence"`
		Entry   string   `json:"entry"`
		Files   []file   `json:"files"`
	}
	var items []item
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		kind := "document"
		if strings.HasPrefix(mediaType, "video/") {
			kind = "video"
		}
		id := strings.ToLower(strings.NewReplacer(".", "-", "/", "-").Replace(name))
		items = append(items, item{ID: id, Title: "Fichier " + name, Kind: kind, Levels: []string{"cycle3"}, Licence: "CC-BY-4.0",
			Entry: name, Files: []file{{name, len(data), hex.EncodeToString(sum[:]), mediaType}}})
	}
	m := map[string]any{"format": 1, "id": "test-pack", "version": "1", "title": "Paquet de test", "language": "fr", "items": items}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "preau-pack.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestImportThroughTheControlSocket: `preau import` reaches the running
// box, shows progress, and the pack appears on the portal at once.
func TestImportThroughTheControlSocket(t *testing.T) {
	dir := t.TempDir()
	tb := startBox(t, dir, false)
	pack := writeTestPack(t, map[string][]byte{"docs/fiche.pdf": []byte("%PDF-1.4 test")}, "application/pdf")
	var out, errb strings.Builder
	if code := Main([]string{"import", pack, "--data", dir}, &out, &errb); code != ExitOK {
		t.Fatalf("import exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "importé") {
		t.Errorf("stdout %q, want an import receipt", out.String())
	}
	if !strings.Contains(errb.String(), "%") {
		t.Errorf("no progress shown on stderr: %q", errb.String())
	}
	resp, _ := get(t, tb.url+"/c/test-pack/docs/fiche.pdf")
	if resp.StatusCode != 200 {
		t.Errorf("imported file: %d", resp.StatusCode)
	}
	out.Reset()
	if code := Main([]string{"import", pack, "--data", dir}, &out, &errb); code != ExitOK || !strings.Contains(out.String(), "déjà présent") {
		t.Errorf("second import: exit %d, %q", code, out.String())
	}
	// A broken pack is refused with exit 6 and a French reason.
	os.WriteFile(filepath.Join(pack, "docs", "fiche.pdf"), []byte("%PDF-1.4 tampered"), 0o644)
	os.WriteFile(filepath.Join(pack, "preau-pack.json"), []byte(strings.Replace(mustRead(t, filepath.Join(pack, "preau-pack.json")), `"version": "1"`, `"version": "2"`, 1)), 0o644)
	errb.Reset()
	if code := Main([]string{"import", pack, "--data", dir}, &out, &errb); code != ExitRefused {
		t.Errorf("tampered pack: exit %d, want %d; stderr %q", code, ExitRefused, errb.String())
	}
	var sb strings.Builder
	if code := Main([]string{"status", "--json", "--data", dir}, &sb, &errb); code != ExitOK || !strings.Contains(sb.String(), `"packs": 1`) {
		t.Errorf("status: exit %d, %s", code, sb.String())
	}
}

func mustRead(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestImportWithoutARunningBox opens the data folder itself, and refuses
// to when a box holds it but does not answer.
func TestImportWithoutARunningBox(t *testing.T) {
	dir := t.TempDir()
	pack := writeTestPack(t, map[string][]byte{"a.txt": []byte("bonjour")}, "text/plain; charset=utf-8")
	var out, errb strings.Builder
	if code := Main([]string{"import", pack, "--data", dir}, &out, &errb); code != ExitOK {
		t.Fatalf("offline import: exit %d: %s", code, errb.String())
	}
	lock, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if code := Main([]string{"import", pack, "--data", dir}, &out, &errb); code != ExitBusy {
		t.Errorf("import on a locked folder: exit %d, want %d", code, ExitBusy)
	}
}

// TestMigrationsFromEveryOlderSchema upgrades each real component from
// each of its released versions.
func TestMigrationsFromEveryOlderSchema(t *testing.T) {
	ctx := context.Background()
	sets := map[string][]store.Migration{
		"appliance": applianceMigrations,
		"content":   convertMigrations(content.Migrations()),
	}
	for comp, ms := range sets {
		for i := 0; i <= len(ms); i++ {
			s, err := store.Open(ctx, filepath.Join(t.TempDir(), "preau.db"), quietLog())
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx, comp, ms[:i]); err != nil {
				t.Fatalf("%s to %d: %v", comp, i, err)
			}
			if err := s.Migrate(ctx, comp, ms); err != nil {
				t.Errorf("%s from %d to %d: %v", comp, i, len(ms), err)
			}
			if err := s.IntegrityCheck(ctx); err != nil {
				t.Errorf("%s from %d: %v", comp, i, err)
			}
			s.Close()
		}
	}
}

// waitUntil polls cond every step until it holds (true) or timeout passes
// (false).
func waitUntil(timeout, step time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(step)
	}
}
