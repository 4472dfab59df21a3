package portal

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fakeCatalog is an in-memory Catalog: the real one (services/content) is
// tested end to end by the appliance.
type fakeCatalog struct {
	items   []Item
	files   map[string]string // "pack/path" → content
	failAll error
}

func (c *fakeCatalog) Items(ctx context.Context) ([]Item, error) {
	if c.failAll != nil {
		return nil, c.failAll
	}
	return c.items, nil
}

func (c *fakeCatalog) Item(ctx context.Context, pack, id string) (Item, error) {
	if c.failAll != nil {
		return Item{}, c.failAll
	}
	for _, it := range c.items {
		if it.Pack == pack && it.ID == id {
			return it, nil
		}
	}
	return Item{}, fmt.Errorf("item %s/%s: %w", pack, id, ErrNotFound)
}

func (c *fakeCatalog) Search(ctx context.Context, q string, limit int) ([]Item, error) {
	if c.failAll != nil {
		return nil, c.failAll
	}
	var out []Item
	for _, it := range c.items {
		if strings.Contains(strings.ToLower(it.Title+" "+it.Description), strings.ToLower(q)) && len(out) < limit {
			out = append(out, it)
		}
	}
	return out, nil
}

func (c *fakeCatalog) Open(ctx context.Context, pack, p string) (io.ReadCloser, error) {
	s, ok := c.files[pack+"/"+p]
	if !ok {
		return nil, fmt.Errorf("open %s/%s: %w", pack, p, ErrNotFound)
	}
	return io.NopCloser(strings.NewReader(s)), nil
}

type fixedUplink bool

func (u fixedUplink) Online() bool { return bool(u) }

func sampleItems() []Item {
	day := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	return []Item{
		{
			Pack: "demo", ID: "eau", Title: "Le cycle de l'eau", Description: "Évaporation et pluie.",
			Kind: "article", Language: "fr", Licence: "CC-BY-4.0", Source: "Projet Préau",
			Authors: []string{"Équipe Préau"}, Levels: []string{"cycle3"}, Subjects: []string{"sciences"},
			Entry: "articles/eau.html", Thumbnail: "images/eau.png", Updated: day,
			Files: []File{
				{Path: "articles/eau.html", Size: 3612, MediaType: "text/html; charset=utf-8"},
				{Path: "images/eau.png", Size: 970, MediaType: "image/png"},
				{Path: "images/schema.png", Size: 4612, MediaType: "image/png"},
			},
		},
		{
			Pack: "demo", ID: "volcans", Title: "Les volcans", Kind: "video", Licence: "CC-BY-SA-4.0",
			Source: "https://tube.example.org/w/123", Levels: []string{"cycle4"}, Subjects: []string{"svt", "sciences"},
			Entry: "videos/volcans.mp4",
			Files: []File{
				{Path: "videos/volcans.mp4", Size: 209_715_200, MediaType: "video/mp4"},
				{Path: "videos/volcans.fr.vtt", Size: 2048, MediaType: "text/vtt"},
			},
		},
		{
			Pack: "demo", ID: "lune", Title: "Au clair de la lune", Kind: "audio", Levels: []string{"cycle1", "cycle2"},
			Subjects: []string{"education-musicale"}, Entry: "audio/lune.wav",
			Files: []File{{Path: "audio/lune.wav", Size: 1_173_104, MediaType: "audio/wav"}},
		},
		{
			Pack: "demo", ID: "fiche", Title: "Fiche : les fractions", Kind: "pdf", Levels: []string{"cycle3"},
			Subjects: []string{"mathematiques"}, Entry: "docs/fiche.pdf",
			Files: []File{{Path: "docs/fiche.pdf", Size: 3678, MediaType: "application/pdf"}},
		},
		{
			Pack: "demo", ID: "schema", Title: "Schéma du système solaire", Description: "Le Soleil et les planètes.",
			Kind: "image", Levels: []string{"cycle2"}, Subjects: []string{"sciences"}, Entry: "images/schema.png",
			Files: []File{{Path: "images/schema.png", Size: 4612, MediaType: "image/png"}},
		},
		{
			Pack: "other", ID: "guide", Title: "Guide for teachers", Kind: "document", Language: "en",
			Subjects: []string{"astronomie"}, Entry: "guide.odt",
			Files: []File{{Path: "guide.odt", Size: 12_345, MediaType: "application/vnd.oasis.opendocument.text"}},
		},
	}
}

const eauArticle = `<!DOCTYPE html><html lang="fr"><head><title>x</title><style>body{color:red}</style></head>
<body><nav>menu</nav><article><h1>Le cycle de l'eau</h1><p>L'eau s'évapore.</p>
<figure><img src="../images/schema.png" alt="Schéma du cycle"><figcaption>Le cycle</figcaption></figure>
<p><a href="#suite">Suite</a> <a href="https://fr.vikidia.org/wiki/Eau">Vikidia</a></p><h2 id="suite">Suite</h2></article></body></html>`

func newTestPortal(t *testing.T, cat Catalog, up Uplink) http.Handler {
	t.Helper()
	p, err := New(Config{SchoolName: "École Jules-Ferry"}, cat, up, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.Handler()
}

func sampleCatalog() *fakeCatalog {
	return &fakeCatalog{items: sampleItems(), files: map[string]string{"demo/articles/eau.html": eauArticle}}
}

type response struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, h http.Handler, target string, cookies ...*http.Cookie) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.String()}
}

func TestRoutes(t *testing.T) {
	h := newTestPortal(t, sampleCatalog(), fixedUplink(false))
	en := &http.Cookie{Name: "preau_lang", Value: "en"}
	tests := []struct {
		name    string
		target  string
		cookie  *http.Cookie
		status  int
		want    []string
		notWant []string
	}{
		{"home", "/", nil, 200, []string{
			`<html lang="fr">`, "École Jules-Ferry", "Ressources disponibles", "Hors ligne — tout le contenu de cette page reste disponible",
			"Cycle 1 (maternelle)", "Cycle 3 (CM1–6e)", "Pour tous", "Sciences", "Éducation musicale", "astronomie",
			`src="/c/demo/images/eau.png" alt="" width="160" height="90" loading="lazy"`,
			`href="/ressource/demo/eau"`, "Vidéo · <span class=\"nw\">210 Mo</span>", `<label for="q">Rechercher une ressource</label>`,
			`<a class="skip" href="#contenu">`, `href="/?lang=en" hreflang="en" lang="en">English</a>`, `<span class="t" lang="en">Guide for teachers</span>`,
		}, []string{"[[", "<script"}},
		{"home in English", "/", en, 200, []string{`<html lang="en">`, "Available resources", "Offline — everything", "For everyone", "Cycle 1 (nursery)", "Music", `hreflang="fr" lang="fr">Français</a>`}, []string{"[[", "Ressources disponibles"}},
		{"level", "/niveau/cycle3", nil, 200, []string{"<h1>Niveau : Cycle 3 (CM1–6e)</h1>", "2 ressources", `id="m-mathematiques"`, "Le cycle de l&#39;eau", "Fiche : les fractions", `aria-current="page"`}, []string{"Les volcans", "Au clair"}},
		{"level without items", "/niveau/lycee", nil, 200, []string{"Aucune ressource pour l&#39;instant."}, nil},
		{"items with no level", "/niveau/tous", nil, 200, []string{"Pour tous", "Guide for teachers", "1 ressource"}, nil},
		{"unknown level", "/niveau/cycle9", nil, 404, []string{"Page introuvable"}, nil},
		{"subject", "/matiere/sciences", nil, 200, []string{"<h1>Matière : Sciences</h1>", "3 ressources", `id="n-cycle2"`, `id="n-cycle4"`, "Les volcans"}, []string{"Fiche : les fractions"}},
		{"unknown subject with items", "/matiere/astronomie", nil, 200, []string{"Matière : astronomie", "Guide for teachers"}, nil},
		{"unknown subject", "/matiere/alchimie", nil, 404, nil, nil},
		{"search", "/recherche?q=volcans", nil, 200, []string{`<h2 class="count" id="resultats">1 résultat pour « volcans »</h2>`, "Les volcans", `value="volcans"`}, nil},
		{"search several", "/recherche?q=le", nil, 200, []string{"résultats pour « le »"}, nil},
		{"search none", "/recherche?q=dinosaure", nil, 200, []string{"Aucun résultat pour « dinosaure »", "Vérifiez l&#39;orthographe"}, []string{`class="cards"`}},
		{"search none English", "/recherche?q=dinosaure", en, 200, []string{"No results for “dinosaure”"}, nil},
		{"search empty", "/recherche", nil, 200, []string{"Saisissez un ou plusieurs mots"}, []string{"résultat"}},
		{"search escapes", "/recherche?q=%3Cscript%3E", nil, 200, []string{"&lt;script&gt;"}, []string{"<script>"}},
		{"article", "/ressource/demo/eau", nil, 200, []string{
			"<h1>Le cycle de l&#39;eau</h1>", `<h2>Le cycle de l&#39;eau</h2>`, `<img src="/c/demo/images/schema.png" alt="Schéma du cycle"/>`,
			`<a href="#a-suite"`, `<h3 id="a-suite">`, `href="https://fr.vikidia.org/wiki/Eau"`, "CC BY 4.0", "Projet Préau", "Équipe Préau",
			"23 novembre 2026", `href="/niveau/cycle3">Cycle 3 (CM1–6e)</a>`, `href="/matiere/sciences">Sciences</a>`,
			`<a href="/c/demo/articles/eau.html" download>Télécharger eau.html</a>`, "3,6 ko", `<meta name="description" content="Évaporation et pluie.">`,
		}, []string{"color:red", "menu", "<style"}},
		{"article English date", "/ressource/demo/eau", en, 200, []string{"23 November 2026", "3.6 kB", "Download eau.html"}, nil},
		{"video", "/ressource/demo/volcans", nil, 200, []string{
			`<video controls preload="metadata">`, `<source src="/c/demo/videos/volcans.mp4" type="video/mp4">`,
			`<track kind="subtitles" src="/c/demo/videos/volcans.fr.vtt" srclang="fr"`, `<a href="https://tube.example.org/w/123" rel="noopener">`,
			"CC BY-SA 4.0", "Sciences de la vie et de la Terre", "210 Mo",
		}, nil},
		{"audio", "/ressource/demo/lune", nil, 200, []string{`<audio controls preload="metadata">`, `type="audio/wav"`, "1,2 Mo"}, nil},
		{"pdf", "/ressource/demo/fiche", nil, 200, []string{`<a class="button" href="/c/demo/docs/fiche.pdf">Ouvrir le PDF</a>`, `<iframe class="pdf" src="/c/demo/docs/fiche.pdf" title="Aperçu du document PDF : Fiche : les fractions">`}, nil},
		{"image", "/ressource/demo/schema", nil, 200, []string{`<img class="full" src="/c/demo/images/schema.png" alt="Le Soleil et les planètes.">`}, nil},
		{"document", "/ressource/other/guide", nil, 200, []string{`download>Télécharger guide.odt</a>`, "(ODT,", `<h1 lang="en">Guide for teachers</h1>`}, nil},
		{"missing item", "/ressource/demo/nope", nil, 404, []string{"Page introuvable", "Retour à l&#39;accueil"}, nil},
		{"bad item id", "/ressource/demo/..%2f..", nil, 404, nil, nil},
		{"unknown page", "/nulle/part", nil, 404, []string{`<html lang="fr">`, "<h1>Page introuvable</h1>"}, nil},
		{"unknown page English", "/nowhere", en, 404, []string{"<h1>Page not found</h1>"}, nil},
		{"bad cookie falls back", "/", &http.Cookie{Name: "preau_lang", Value: "de"}, 200, []string{`<html lang="fr">`}, nil},
		{"unknown static", "/static/style.css", nil, 404, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cookies []*http.Cookie
			if tt.cookie != nil {
				cookies = append(cookies, tt.cookie)
			}
			res := get(t, h, tt.target, cookies...)
			if res.status != tt.status {
				t.Errorf("GET %s: got status %d, want %d", tt.target, res.status, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.body, w) {
					t.Errorf("GET %s: body lacks %q", tt.target, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(res.body, w) {
					t.Errorf("GET %s: body contains %q, want it absent", tt.target, w)
				}
			}
			if strings.HasPrefix(res.header.Get("Content-Type"), "text/html") {
				checkPage(t, tt.target, res.body)
			}
		})
	}
}

// checkPage applies the accessibility rules every page must follow.
func checkPage(t *testing.T, target, body string) {
	t.Helper()
	if n := strings.Count(body, "<h1"); n != 1 {
		t.Errorf("GET %s: got %d h1 elements, want 1", target, n)
	}
	for _, want := range []string{`<html lang="`, `<main id="contenu"`, `href="#contenu"`, "<header", "<nav", "<footer", `<meta name="viewport"`, "<title>"} {
		if !strings.Contains(body, want) {
			t.Errorf("GET %s: page lacks %q", target, want)
		}
	}
	for _, img := range regexp.MustCompile(`<img[^>]*>`).FindAllString(body, -1) {
		if !strings.Contains(img, " alt=") {
			t.Errorf("GET %s: image without alt: %s", target, img)
		}
	}
	if strings.Contains(body, " style=") || strings.Contains(body, "<style") {
		t.Errorf("GET %s: inline style would be blocked by the CSP", target)
	}
}

func TestOnlineIndicator(t *testing.T) {
	tests := []struct {
		name    string
		up      Uplink
		want    string
		notWant string
	}{
		{"online", fixedUplink(true), `<p class="status online">En ligne</p>`, "Hors ligne"},
		{"offline", fixedUplink(false), `<p class="status offline">Hors ligne — tout le contenu de cette page reste disponible</p>`, "En ligne"},
		{"unknown", nil, "", `class="status`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, newTestPortal(t, sampleCatalog(), tt.up), "/")
			if !strings.Contains(res.body, tt.want) {
				t.Errorf("body lacks %q", tt.want)
			}
			if strings.Contains(res.body, tt.notWant) {
				t.Errorf("body contains %q", tt.notWant)
			}
		})
	}
}

func TestLanguageSwitch(t *testing.T) {
	h := newTestPortal(t, sampleCatalog(), nil)
	tests := []struct {
		target     string
		wantLoc    string
		wantCookie string // "" for none
	}{
		{"/?lang=en", "/", "en"},
		{"/recherche?q=eau&lang=fr", "/recherche?q=eau", "fr"},
		{"/ressource/demo/eau?lang=en", "/ressource/demo/eau", "en"},
		{"/?lang=de", "/", ""},
		{"//evil.example/?lang=en", "/evil.example/", "en"},
		{"/nulle/part?lang=en", "/nulle/part", "en"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			res := get(t, h, tt.target)
			if res.status != http.StatusSeeOther {
				t.Fatalf("got status %d, want 303", res.status)
			}
			if got := res.header.Get("Location"); got != tt.wantLoc {
				t.Errorf("got Location %q, want %q", got, tt.wantLoc)
			}
			cookies := (&http.Response{Header: res.header}).Cookies()
			if tt.wantCookie == "" {
				if len(cookies) != 0 {
					t.Errorf("got cookies %v, want none", cookies)
				}
				return
			}
			if len(cookies) != 1 {
				t.Fatalf("got %d cookies, want 1", len(cookies))
			}
			c := cookies[0]
			if c.Name != "preau_lang" || c.Value != tt.wantCookie || c.Path != "/" || c.MaxAge != 365*24*3600 || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("got cookie %+v, want preau_lang=%s Path=/ Max-Age=1 year SameSite=Lax", c, tt.wantCookie)
			}
			// The cookie then selects the language.
			page := get(t, h, tt.wantLoc, c)
			if want := `<html lang="` + tt.wantCookie + `">`; page.status < 500 && !strings.Contains(page.body, want) {
				t.Errorf("after switch: body lacks %q", want)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	h := newTestPortal(t, sampleCatalog(), nil)
	home := get(t, h, "/")
	css := regexp.MustCompile(`href="(/static/style\.[0-9a-f]{12}\.css)"`).FindStringSubmatch(home.body)
	icon := regexp.MustCompile(`href="(/static/favicon\.[0-9a-f]{12}\.svg)"`).FindStringSubmatch(home.body)
	if css == nil || icon == nil {
		t.Fatalf("home page lacks hashed stylesheet or icon links")
	}
	tests := []struct {
		target, ctype, cache string
		status               int
	}{
		{"/", "text/html; charset=utf-8", "no-cache", 200},
		{"/nulle/part", "text/html; charset=utf-8", "no-cache", 404},
		{"/ressource/demo/eau", "text/html; charset=utf-8", "no-cache", 200},
		{css[1], "text/css; charset=utf-8", "public, max-age=31536000, immutable", 200},
		{icon[1], "image/svg+xml", "public, max-age=31536000, immutable", 200},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			res := get(t, h, tt.target)
			want := map[string]string{
				"Content-Type":            tt.ctype,
				"Cache-Control":           tt.cache,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "same-origin",
				"Content-Security-Policy": csp,
			}
			if res.status != tt.status {
				t.Errorf("got status %d, want %d", res.status, tt.status)
			}
			for k, v := range want {
				if got := res.header.Get(k); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}
		})
	}
	for _, d := range []string{"default-src 'self'", "script-src 'none'", "style-src 'self'", "media-src 'self'", "img-src 'self' data:"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP lacks %q", d)
		}
	}
	res := get(t, h, css[1])
	if len(res.body) > 16<<10 || !strings.Contains(res.body, "font-family:system-ui") {
		t.Errorf("stylesheet: got %d bytes, want a small system-font stylesheet", len(res.body))
	}
}

func TestHead(t *testing.T) {
	h := newTestPortal(t, sampleCatalog(), nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/", nil))
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD /: got %d with %d body bytes, want 200, empty body, a Content-Length", rec.Code, rec.Body.Len())
	}
}

func TestCatalogFailure(t *testing.T) {
	cat := &fakeCatalog{failAll: errors.New("database is locked")}
	h := newTestPortal(t, cat, nil)
	for _, target := range []string{"/", "/niveau/cycle3", "/matiere/sciences", "/recherche?q=eau", "/ressource/demo/eau"} {
		res := get(t, h, target)
		if res.status != 500 || !strings.Contains(res.body, "Erreur du serveur") {
			t.Errorf("GET %s: got %d, want 500 with the error page", target, res.status)
		}
		if strings.Contains(res.body, "database is locked") {
			t.Errorf("GET %s: internal error shown to the visitor", target)
		}
	}
}

func TestArticleFailureKeepsPage(t *testing.T) {
	cat := sampleCatalog()
	cat.files = nil // the entry cannot be opened
	res := get(t, newTestPortal(t, cat, nil), "/ressource/demo/eau")
	if res.status != 200 || !strings.Contains(res.body, "Cet article ne peut pas être affiché ici") || !strings.Contains(res.body, "Télécharger eau.html") {
		t.Errorf("got status %d; want 200 with a notice and the download link", res.status)
	}
}

// manyItems builds n items spread over levels and subjects, with long-ish
// titles, as a big school catalogue would.
func manyItems(n int) []Item {
	subjects := []string{"francais", "mathematiques", "sciences", "histoire-geographie", "emc", "langues-vivantes", "arts-plastiques", "education-musicale"}
	kinds := []string{"article", "video", "pdf", "audio", "image", "document"}
	items := make([]Item, n)
	for i := range items {
		lv := levelOrder[i%len(levelOrder)]
		levels := []string{lv}
		if i%3 == 0 {
			levels = append(levels, levelOrder[(i+1)%len(levelOrder)])
		}
		if i%17 == 0 {
			levels = nil
		}
		items[i] = Item{
			Pack: "pack-" + fmt.Sprint(i%4), ID: fmt.Sprintf("ressource-numero-%03d", i),
			Title:       fmt.Sprintf("Ressource pédagogique numéro %d : un titre assez long", i),
			Description: "Une description de la ressource qui n'apparaît pas sur l'accueil.",
			Kind:        kinds[i%len(kinds)], Levels: levels, Subjects: []string{subjects[i%len(subjects)]},
			Entry: "fichiers/principal.bin", Thumbnail: fmt.Sprintf("vignettes/ressource-%03d.png", i),
			Files: []File{{Path: "fichiers/principal.bin", Size: int64(i) * 123_457}},
		}
	}
	return items
}

func TestPageBudget(t *testing.T) {
	const budget = 100_000
	cat := &fakeCatalog{items: manyItems(200)}
	h := newTestPortal(t, cat, fixedUplink(false))
	for _, target := range []string{"/", "/niveau/cycle3", "/matiere/sciences", "/recherche?q=ressource"} {
		res := get(t, h, target)
		if res.status != 200 {
			t.Fatalf("GET %s: got status %d", target, res.status)
		}
		if len(res.body) >= budget {
			t.Errorf("GET %s with 200 items: got %d bytes, want under %d", target, len(res.body), budget)
		}
		t.Logf("GET %s with 200 items: %d bytes", target, len(res.body))
	}
	home := get(t, h, "/")
	if !strings.Contains(home.body, "Voir les ") {
		t.Errorf("home with 200 items: no link to the rest of a long group")
	}
}

func TestGolden(t *testing.T) {
	h := newTestPortal(t, sampleCatalog(), fixedUplink(true))
	tests := []struct{ name, target string }{
		{"home.html", "/"},
		{"article.html", "/ressource/demo/eau"},
		{"search-none.html", "/recherche?q=dinosaure"},
		{"404-en.html", "/nowhere"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cookies []*http.Cookie
			if strings.HasSuffix(tt.name, "-en.html") {
				cookies = append(cookies, &http.Cookie{Name: "preau_lang", Value: "en"})
			}
			got := get(t, h, tt.target, cookies...).body
			file := filepath.Join("testdata", "golden", tt.name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if got != string(want) {
				t.Errorf("GET %s differs from %s (run with -update if intended)\ngot:\n%s", tt.target, file, got)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"defaults", Config{}, false},
		{"english", Config{DefaultLanguage: "en", ContentPrefix: "/contenu/"}, false},
		{"german", Config{DefaultLanguage: "de"}, true},
		{"prefix without slash", Config{ContentPrefix: "c/"}, true},
		{"root prefix", Config{ContentPrefix: "/"}, true},
		{"multi-line name", Config{SchoolName: "a\nb"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.WithDefaults().Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate: got %v, want error %v", err, tt.wantErr)
			}
		})
	}
	d := Config{}.WithDefaults()
	if d.DefaultLanguage != "fr" || d.ContentPrefix != "/c/" || d.SchoolName == "" {
		t.Errorf("WithDefaults: got %+v", d)
	}
	if _, err := New(Config{}, nil, nil, nil); err == nil {
		t.Errorf("New with nil catalog: got nil error")
	}
}

func TestContentPrefix(t *testing.T) {
	p, err := New(Config{ContentPrefix: "/contenu/"}, sampleCatalog(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := get(t, p.Handler(), "/ressource/demo/eau")
	for _, want := range []string{`src="/contenu/demo/images/schema.png"`, `href="/contenu/demo/articles/eau.html"`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("body lacks %q", want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		n      int64
		fr, en string
	}{
		{0, "0 o", "0 B"},
		{999, "999 o", "999 B"},
		{1000, "1,0 ko", "1.0 kB"},
		{1234, "1,2 ko", "1.2 kB"},
		{3612, "3,6 ko", "3.6 kB"},
		{12_345, "12 ko", "12 kB"},
		{999_400, "999 ko", "999 kB"},
		{999_600, "1,0 Mo", "1.0 MB"},
		{1_234_567, "1,2 Mo", "1.2 MB"},
		{209_715_200, "210 Mo", "210 MB"},
		{4_700_000_000, "4,7 Go", "4.7 GB"},
		{-5, "0 o", "0 B"},
	}
	for _, tt := range tests {
		if got := formatSize("fr", tt.n); got != tt.fr {
			t.Errorf("formatSize(fr, %d): got %q, want %q", tt.n, got, tt.fr)
		}
		if got := formatSize("en", tt.n); got != tt.en {
			t.Errorf("formatSize(en, %d): got %q, want %q", tt.n, got, tt.en)
		}
	}
}

func TestFormatDate(t *testing.T) {
	tests := []struct {
		t      time.Time
		fr, en string
	}{
		{time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), "23 novembre 2026", "23 November 2026"},
		{time.Date(2027, 2, 1, 12, 0, 0, 0, time.UTC), "1er février 2027", "1 February 2027"},
		{time.Date(2027, 8, 15, 0, 0, 0, 0, time.UTC), "15 août 2027", "15 August 2027"},
		{time.Time{}, "", ""},
	}
	for _, tt := range tests {
		if got := formatDate("fr", tt.t); got != tt.fr {
			t.Errorf("formatDate(fr, %v): got %q, want %q", tt.t, got, tt.fr)
		}
		if got := formatDate("en", tt.t); got != tt.en {
			t.Errorf("formatDate(en, %v): got %q, want %q", tt.t, got, tt.en)
		}
	}
}

func TestLabels(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{levelLabel("fr", "cycle1"), "Cycle 1 (maternelle)"},
		{levelLabel("en", "cycle1"), "Cycle 1 (nursery)"},
		{levelLabel("fr", "cycle2"), "Cycle 2 (CP–CE2)"},
		{levelLabel("fr", "cycle4"), "Cycle 4 (5e–3e)"},
		{levelLabel("en", "lycee"), "Upper secondary"},
		{levelLabel("fr", "bts"), "bts"},
		{subjectLabel("fr", "svt"), "Sciences de la vie et de la Terre"},
		{subjectLabel("en", "education-musicale"), "Music"},
		{subjectLabel("fr", "astronomie"), "astronomie"},
		{licenceLabel("CC-BY-SA-4.0"), "CC BY-SA 4.0"},
		{licenceLabel("Licence Ouverte"), "Licence Ouverte"},
		{mediaLabel("application/pdf"), "PDF"},
		{mediaLabel("text/html; charset=utf-8"), "HTML"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: got %q, want %q", i, tt.got, tt.want)
		}
	}
	subjects := []string{"francais", "mathematiques", "sciences", "histoire-geographie", "emc", "langues-vivantes", "arts-plastiques", "education-musicale", "eps", "technologie", "physique-chimie", "svt", "philosophie", "numerique"}
	if len(subjectLabels) != len(subjects) {
		t.Errorf("got %d subject labels, want %d", len(subjectLabels), len(subjects))
	}
	for _, s := range subjects {
		if l, ok := subjectLabels[s]; !ok || l[0] == "" || l[1] == "" {
			t.Errorf("subject %s: missing label", s)
		}
	}
}

// TestCatalogue checks that both languages have the same keys and that every
// key a template asks for exists.
func TestCatalogue(t *testing.T) {
	for key := range catalogues["fr"] {
		if _, ok := catalogues["en"][key]; !ok {
			t.Errorf("key %q: missing in en", key)
		}
	}
	for key := range catalogues["en"] {
		if _, ok := catalogues["fr"][key]; !ok {
			t.Errorf("key %q: missing in fr", key)
		}
	}
	keyRef := regexp.MustCompile(`\.T "([^"]+)"`)
	entries, err := files.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := files.ReadFile("templates/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range keyRef.FindAllStringSubmatch(string(data), -1) {
			if _, ok := catalogues["fr"][m[1]]; !ok {
				t.Errorf("%s: key %q not in the catalogue", e.Name(), m[1])
			}
		}
		// Words belong in the catalogue: text between tags must be a
		// template action or punctuation.
		text := regexp.MustCompile(`(?s)\{\{.*?\}\}`).ReplaceAllString(string(data), "")
		text = regexp.MustCompile(`(?s)<[^>]*>`).ReplaceAllString(text, "")
		if w := regexp.MustCompile(`\p{L}{2,}`).FindString(text); w != "" {
			t.Errorf("%s: hard-coded word %q outside the catalogue", e.Name(), w)
		}
	}
}
