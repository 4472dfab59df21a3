package browsertest

import (
	"bytes"
	"errors"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// pages are the self-test site: small, French, and each one made to prove
// one thing.
var pages = map[string]string{
	"/": `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Accueil</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main>
<h1 id="titre">Bonjour Préau</h1>
<p id="compteur">0</p>
<button id="plus" type="button" onclick="document.getElementById('compteur').textContent = String(Number(document.getElementById('compteur').textContent) + 1)">Ajouter un</button>
<form action="/recherche" method="get">
<label for="q">Rechercher</label> <input id="q" name="q" type="search">
</form>
</main></body></html>`,
	"/recherche": `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Résultats</title></head>
<body><main><h1>Résultats</h1></main></body></html>`,
	// bad breaks two WCAG rules on purpose: an image without alt text and a
	// field without a label.
	"/bad": `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Mauvaise page</title></head>
<body><main><h1>Mauvaise page</h1>
<img src="/pixel.png">
<input type="text" name="nom">
</main></body></html>`,
	"/good": `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Bonne page</title></head>
<body><header><p>Préau</p></header><main><h1>Bonne page</h1>
<img src="/pixel.png" alt="Un point bleu">
<label for="nom">Votre prénom</label> <input id="nom" type="text" name="nom">
</main></body></html>`,
	"/video": `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Vidéo</title></head>
<body><main><h1>Vidéo</h1>
<video id="v" src="/clip.webm" preload="auto" muted controls></video>
</main></body></html>`,
}

// site serves pages, a PNG and one video file, and records the Range headers
// it saw for the video.
type site struct {
	video string

	mu     sync.Mutex
	ranges []string
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/pixel.png":
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(pixelPNG)
	case "/clip.webm":
		if rg := r.Header.Get("Range"); rg != "" {
			s.mu.Lock()
			s.ranges = append(s.ranges, rg)
			s.mu.Unlock()
		}
		w.Header().Set("Content-Type", "video/webm")
		http.ServeFile(w, r, s.video)
	default:
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(body))
	}
}

func (s *site) seenRanges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ranges)
}

// pixelPNG is a 1×1 blue PNG.
var pixelPNG = []byte{
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
	0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x08, 0xd7, 0x63, 0x60, 0x60, 0xf8, 0x0f,
	0x00, 0x01, 0x04, 0x01, 0x00, 0x5f, 0xe5, 0xc3, 0x4b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
	0x44, 0xae, 0x42, 0x60, 0x82,
}

// newSite starts the self-test site on 127.0.0.1 (httptest's default).
func newSite(t *testing.T, video string) (*site, string) {
	t.Helper()
	s := &site{video: video}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func TestBrowserPage(t *testing.T) {
	_, base := newSite(t, "")
	b := Start(t)

	if err := b.Open(base + "/"); err != nil {
		t.Fatal(err)
	}
	t.Run("renders", func(t *testing.T) {
		got, err := b.Title()
		if err != nil {
			t.Fatal(err)
		}
		if want := "Accueil"; got != want {
			t.Errorf("Title() = %q, want %q", got, want)
		}
		width, err := b.Exec("return window.innerWidth;")
		if err != nil {
			t.Fatal(err)
		}
		if want := 800.0; width != want {
			t.Errorf("window.innerWidth = %v, want %v (default tablet window)", width, want)
		}
	})
	t.Run("text", func(t *testing.T) {
		got, err := b.Text("#titre")
		if err != nil {
			t.Fatal(err)
		}
		if want := "Bonjour Préau"; got != want {
			t.Errorf("Text(#titre) = %q, want %q", got, want)
		}
	})
	t.Run("missing element", func(t *testing.T) {
		_, err := b.Text("#absent")
		var we *Error
		if !errors.As(err, &we) || we.Code != "no such element" {
			t.Errorf("Text(#absent) error = %v, want a WebDriver error with code %q", err, "no such element")
		}
	})
	t.Run("click", func(t *testing.T) {
		for i := range 2 {
			if err := b.Click("#plus"); err != nil {
				t.Fatal(err)
			}
			got, err := b.Text("#compteur")
			if err != nil {
				t.Fatal(err)
			}
			if want := string(rune('1' + i)); got != want {
				t.Errorf("after click %d: counter = %q, want %q", i+1, got, want)
			}
		}
	})
	t.Run("screenshot", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sub", "dir", "page.png")
		if err := b.Screenshot(path); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("decode screenshot: %v", err)
		}
		if got, want := img.Bounds().Dx(), 800; got != want {
			t.Errorf("screenshot width = %d, want %d", got, want)
		}
		// Keep one for humans.
		if err := b.Screenshot(filepath.Join(ArtefactDir(t), "accueil.png")); err != nil {
			t.Error(err)
		}
	})
	t.Run("type and enter", func(t *testing.T) {
		if err := b.Type("#q", "volcan"); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Attr("#q", "value"); err != nil || got != "volcan" {
			t.Errorf("input value = %q, %v, want %q", got, err, "volcan")
		}
		if err := b.Key("#q", KeyEnter); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Wait(10*time.Second, "return location.pathname === '/recherche';"); err != nil {
			t.Fatal(err)
		}
		got, err := b.URL()
		if err != nil {
			t.Fatal(err)
		}
		if want := base + "/recherche?q=volcan"; got != want {
			t.Errorf("URL() after Enter = %q, want %q", got, want)
		}
	})
}

func TestWithWindow(t *testing.T) {
	_, base := newSite(t, "")
	b := Start(t, WithWindow(1280, 800))
	if err := b.Open(base + "/"); err != nil {
		t.Fatal(err)
	}
	got, err := b.Exec("return [window.innerWidth, window.innerHeight];")
	if err != nil {
		t.Fatal(err)
	}
	size, ok := got.([]any)
	if !ok || len(size) != 2 || size[0] != 1280.0 {
		t.Errorf("viewport = %v, want width 1280", got)
	}
}

func requireAxe(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(AxePath()); err != nil {
		missing(t, "axe-core absent : lancez « make test-deps » / axe-core missing: run make test-deps ("+AxePath()+")")
	}
}

func TestAxe(t *testing.T) {
	requireAxe(t)
	_, base := newSite(t, "")
	b := Start(t)

	tests := []struct {
		page        string
		wantIDs     []string // rules that must be reported
		wantSerious bool
	}{
		{page: "/bad", wantIDs: []string{"image-alt", "label"}, wantSerious: true},
		{page: "/good", wantIDs: nil, wantSerious: false},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.page, "/"), func(t *testing.T) {
			if err := b.Open(base + tt.page); err != nil {
				t.Fatal(err)
			}
			vs, err := b.Axe()
			if err != nil {
				t.Fatal(err)
			}
			// A second run on the same page reuses the injected axe.
			again, err := b.Axe()
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != len(vs) {
				t.Errorf("second Axe() found %d violations, first %d", len(again), len(vs))
			}
			var ids []string
			for _, v := range vs {
				t.Logf("%s: %s", tt.page, v)
				ids = append(ids, v.ID)
				if v.Help == "" || !strings.HasPrefix(v.HelpURL, "https://") || len(v.Nodes) == 0 {
					t.Errorf("violation %s lacks help, URL or nodes: %+v", v.ID, v)
				}
			}
			for _, id := range tt.wantIDs {
				if !slices.Contains(ids, id) {
					t.Errorf("Axe() on %s = %v, want it to include %q", tt.page, ids, id)
				}
			}
			if got := len(Serious(vs)) > 0; got != tt.wantSerious {
				t.Errorf("Axe() on %s: serious violations %v, want any = %v", tt.page, Serious(vs), tt.wantSerious)
			}
		})
	}
}

func TestVideoSeek(t *testing.T) {
	video := filepath.Join(t.TempDir(), "clip.webm")
	MakeVideo(t, video, 6)
	s, base := newSite(t, video)
	b := Start(t)
	if err := b.Open(base + "/video"); err != nil {
		t.Fatal(err)
	}

	const seekTo = 3.5
	got, err := b.ExecAsync(`
const [to, done] = arguments;
const v = document.getElementById('v');
const fail = e => done({error: 'media error ' + (v.error ? v.error.code + ' ' + v.error.message : String(e))});
v.addEventListener('error', fail);
const seek = () => {
  v.addEventListener('seeked', () => done({time: v.currentTime, duration: v.duration}), {once: true});
  v.currentTime = to;
};
if (v.readyState >= 1) seek(); else v.addEventListener('loadedmetadata', seek, {once: true});
`, seekTo)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := got.(map[string]any)
	if e, ok := res["error"]; ok {
		t.Fatalf("seek in video: %v", e)
	}
	if tm, _ := res["time"].(float64); math.Abs(tm-seekTo) > 0.05 {
		t.Errorf("currentTime after seek = %v, want %v", res["time"], seekTo)
	}
	if d, _ := res["duration"].(float64); math.Abs(d-6) > 0.5 {
		t.Errorf("duration = %v, want about 6 s", res["duration"])
	}

	// It plays: time moves on from the seek point.
	played, err := b.ExecAsync(`
const done = arguments[arguments.length - 1];
const v = document.getElementById('v');
const start = v.currentTime;
v.addEventListener('timeupdate', function check() {
  if (v.currentTime > start + 0.2) { v.removeEventListener('timeupdate', check); v.pause(); done({start, now: v.currentTime}); }
});
v.play().catch(e => done({error: String(e)}));
`)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := played.(map[string]any); m["error"] != nil || m["now"] == nil {
		t.Errorf("play after seek = %v, want time to advance", played)
	}

	if rs := s.seenRanges(); len(rs) == 0 {
		t.Errorf("server saw no Range request for the video, want at least one")
	}
	if err := b.Screenshot(filepath.Join(ArtefactDir(t), "video.png")); err != nil {
		t.Error(err)
	}
}

func TestMakeVideo(t *testing.T) {
	tests := []struct {
		seconds int
	}{{1}, {3}}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "v.webm")
		MakeVideo(t, path, tt.seconds)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// EBML magic, then the "webm" doc type near the start.
		if !bytes.HasPrefix(data, []byte{0x1a, 0x45, 0xdf, 0xa3}) || !bytes.Contains(data[:64], []byte("webm")) {
			t.Errorf("MakeVideo(%d s) wrote %d bytes starting % x, want a WebM file", tt.seconds, len(data), data[:min(16, len(data))])
		}
	}
}

func TestSerious(t *testing.T) {
	vs := []Violation{
		{ID: "a", Impact: "minor"},
		{ID: "b", Impact: "moderate"},
		{ID: "c", Impact: "serious"},
		{ID: "d", Impact: "critical"},
		{ID: "e", Impact: ""},
	}
	var got []string
	for _, v := range Serious(vs) {
		got = append(got, v.ID)
	}
	if want := []string{"c", "d"}; !slices.Equal(got, want) {
		t.Errorf("Serious() ids = %v, want %v", got, want)
	}
	if got := Serious(nil); got != nil {
		t.Errorf("Serious(nil) = %v, want nil", got)
	}
}

func TestSafeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"TestX", "TestX"},
		{"TestX/sub_case", "TestX_sub_case"},
		{"TestX/é à", "TestX____"},
		{"a.b-c", "a.b-c"},
	}
	for _, tt := range tests {
		if got := safeName(tt.in); got != tt.want {
			t.Errorf("safeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestArtefactDir(t *testing.T) {
	root := t.TempDir()
	t.Setenv(ArtefactsEnv, root)
	got := ArtefactDir(t)
	if want := filepath.Join(root, "TestArtefactDir"); got != want {
		t.Errorf("ArtefactDir() = %q, want %q", got, want)
	}
	if fi, err := os.Stat(got); err != nil || !fi.IsDir() {
		t.Errorf("ArtefactDir() did not create %s: %v", got, err)
	}
}

func TestRepoRoot(t *testing.T) {
	root := repoRoot()
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatalf("repoRoot() = %q: %v", root, err)
	}
	if !bytes.HasPrefix(data, []byte("module preau")) {
		t.Errorf("repoRoot() = %q holds go.mod of another module", root)
	}
}

func TestTruthy(t *testing.T) {
	tests := []struct {
		in   any
		want bool
	}{
		{nil, false}, {false, false}, {true, true}, {0.0, false}, {2.0, true},
		{"", false}, {"x", true}, {map[string]any{}, true}, {[]any{}, true},
	}
	for _, tt := range tests {
		if got := truthy(tt.in); got != tt.want {
			t.Errorf("truthy(%#v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	e := &Error{Command: "POST /element", Status: 404, Code: "no such element", Message: "no such element: Unable to locate element\n  (Session info: chrome=156)"}
	if got, want := e.Error(), "webdriver POST /element: no such element: no such element: Unable to locate element"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
