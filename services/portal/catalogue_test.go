package portal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeCards is an in-memory school catalogue: it filters like
// services/catalog does (the appliance's end-to-end test runs the real
// one) and records the queries it gets.
type fakeCards struct {
	mu      sync.Mutex
	cards   []Card
	err     error
	queries []CardQuery
}

func (f *fakeCards) Cards(ctx context.Context, q CardQuery) ([]Card, error) {
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	has := func(list []string, want string) bool {
		return want == "" || slices.ContainsFunc(list, func(s string) bool { return foldKey(s) == foldKey(want) })
	}
	var out []Card
	for _, c := range f.cards {
		if (q.Kind != "" && c.Kind != q.Kind) || (q.State != "" && c.State != q.State) || !has(c.Levels, q.Level) || !has(c.Domains, q.Domain) {
			continue
		}
		if q.Query != "" && !strings.Contains(foldKey(c.Title+" "+c.Publisher), foldKey(q.Query)) {
			continue
		}
		out = append(out, c)
	}
	if q.Offset >= len(out) {
		return nil, nil
	}
	out = out[q.Offset:]
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (f *fakeCards) lastPageQuery() CardQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.queries) - 1; i >= 0; i-- {
		if f.queries[i].Limit != 0 {
			return f.queries[i]
		}
	}
	return CardQuery{}
}

func sampleCards() []Card {
	return []Card{
		{Source: "gar", Kind: KindGAR, ID: "ark:/1", Title: "Manuel de mathématiques 6e", Publisher: "Éditions Exemple",
			Thumbnail: "/catalogue/vignettes/" + strings.Repeat("a", 64), Link: "https://gar.example.fr/ressource?id=1&u=2",
			State: StateOnlineOnly, StatusFR: "connexion nécessaire", StatusEN: "internet connection needed",
			Levels: []string{"6e", "cycle 3"}, Domains: []string{"mathématiques"}, Typologies: []string{"manuel numérique"}},
		{Source: "gar", Kind: KindGAR, ID: "ark:/2", Title: "Dictionnaire junior", Publisher: "Lexique & Cie",
			Link: "https://gar.example.fr/ressource?id=2", PackID: "other", State: StateOffline,
			StatusFR: "disponible hors ligne", StatusEN: "available offline", Levels: []string{"collège"}, Domains: []string{"français"}},
		{Source: "tube", Kind: KindTube, ID: "v1", Title: "Les volcans d'Auvergne", Publisher: "Canal Sciences",
			Thumbnail: "/c/tube-v1/thumb.jpg", Link: "/c/tube-v1/video.mp4", PackID: "tube-v1", State: StateOffline,
			StatusFR: "disponible hors ligne", StatusEN: "available offline"},
		{Source: "tube", Kind: KindTube, ID: "v2", Title: "La photosynthèse", Publisher: "Canal Sciences",
			State: StateDownloading, Percent: 43, StatusFR: "en cours de téléchargement 43 %", StatusEN: "downloading 43%"},
		{Source: "nuage", Kind: KindNuage, ID: "share", Title: "Documents de la classe", State: StateQueued},
		{Source: "pack", Kind: KindPack, ID: "https://packs.example/p.zip", Title: "Paquet de fiches", State: StateFailed,
			StatusFR: "échec du téléchargement", StatusEN: "download failed",
			ErrorFR: "le serveur a refusé l'accès (403)"},
		{Source: "pack", Kind: KindPack, ID: "demo", Title: "Ressources de démonstration", PackID: "demo", State: StateOffline},
	}
}

func newCardsPortal(t *testing.T, cards Cards, up Uplink) http.Handler {
	t.Helper()
	p, err := New(Config{SchoolName: "École Jules-Ferry", Cards: cards}, sampleCatalog(), up, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.Handler()
}

func TestCataloguePage(t *testing.T) {
	en := &http.Cookie{Name: "preau_lang", Value: "en"}
	tests := []struct {
		name    string
		up      Uplink
		target  string
		cookie  *http.Cookie
		want    []string
		notWant []string
	}{
		{"online", fixedUplink(true), "/catalogue", nil, []string{
			"<h1>Catalogue de l&#39;école</h1>", "7 ressources", `<p class="status online">En ligne</p>`,
			`<a href="/catalogue" aria-current="page">Catalogue de l&#39;école</a>`,
			// GAR: the publisher's address, in a new window, said twice.
			`<a href="https://gar.example.fr/ressource?id=1&amp;u=2" target="_blank" rel="noopener"><img src="/catalogue/vignettes/aaaa`,
			`alt="" width="160" height="90" loading="lazy">`,
			`<span class="t">Manuel de mathématiques 6e</span> <span class="x">(connexion nécessaire, nouvelle fenêtre)</span></a>`,
			`<span class="m">Éditions Exemple · GAR</span>`, `<span class="m c">6e, cycle 3 · mathématiques · manuel numérique</span>`,
			`<span class="st">connexion nécessaire</span>`,
			// A GAR resource stored offline opens its pack (one item).
			`<a href="/ressource/other/guide"><span class="t">Dictionnaire junior</span></a>`,
			`<span class="st">disponible hors ligne</span>`,
			// An offline video: its Link, as the pack is not in the content catalogue.
			`<a href="/c/tube-v1/video.mp4"><img src="/c/tube-v1/thumb.jpg"`,
			// Downloading: words and a labelled progress bar.
			`<span class="t" id="t4">La photosynthèse</span>`, `<span class="st" id="s4">en cours de téléchargement 43 %</span><progress max="100" value="43" aria-labelledby="t4 s4">43 %</progress>`,
			`<span class="st">en attente de téléchargement</span>`,
			`<span class="st">échec du téléchargement</span>`, `<span class="err">Raison : le serveur a refusé l&#39;accès (403)</span>`,
			// A pack with several items opens its listing.
			`<a href="/paquet/demo"><span class="t">Ressources de démonstration</span></a>`,
			`<meta http-equiv="refresh" content="30">`, "cette page s&#39;actualise toutes les 30 secondes",
			`<a href="/catalogue?actualiser=non">Arrêter l&#39;actualisation automatique</a>`,
			`<label for="cn">Niveau</label><select id="cn" name="niveau"><option value="">Tous les niveaux</option><option>6e</option><option>collège</option><option>cycle 3</option></select>`,
			`<option value="gar">GAR</option><option value="tube">Vidéo PeerTube</option><option value="nuage">Partage Nextcloud</option><option value="pack">Paquet de ressources</option>`,
			`<option value="offline">Disponible hors ligne</option><option value="online-only">Connexion nécessaire</option>`,
			`<link rel="stylesheet" href="/static/catalogue.`,
		}, []string{"[[", "<script", "indisponible hors connexion", `class="pages"`, "Effacer les filtres"}},
		{"offline", fixedUplink(false), "/catalogue", nil, []string{
			`<p class="status offline">Hors ligne — les ressources disponibles hors ligne fonctionnent ; celles qui demandent une connexion ne s&#39;ouvrent pas pour l&#39;instant</p>`,
			`<li class="card s-online-only s-off"><img src="/catalogue/vignettes/`,
			`<span class="t">Manuel de mathématiques 6e</span>`,
			`<span class="st">connexion nécessaire</span><span class="st un">indisponible hors connexion</span>`,
			// Offline items keep working.
			`<a href="/ressource/other/guide">`, `<a href="/c/tube-v1/video.mp4">`,
		}, []string{"gar.example.fr", "nouvelle fenêtre", "tout le contenu de cette page reste disponible"}},
		{"uplink unknown", nil, "/catalogue", nil, []string{`href="https://gar.example.fr/ressource?id=1&amp;u=2" target="_blank"`}, []string{`class="status`, "indisponible"}},
		{"English", fixedUplink(true), "/catalogue", en, []string{
			"<h1>School catalogue</h1>", `<span class="x">(internet connection needed, new window)</span>`,
			`<span class="st">internet connection needed</span>`, `<span class="m c" lang="fr">6e, cycle 3`,
			`<span class="st" id="s4">downloading 43%</span>`,
			// No English words given: the portal's own, or the French marked as French.
			`<span class="st">waiting to download</span>`, `<span class="err" lang="fr">Reason: le serveur a refusé`,
			`Stop the automatic refresh`, `<option value="">All levels</option>`,
		}, []string{"[[", "connexion nécessaire"}},
		{"English offline", fixedUplink(false), "/catalogue", en, []string{"unavailable while offline", "Offline — resources available offline work"}, []string{"gar.example.fr"}},
		{"refresh stopped", fixedUplink(true), "/catalogue?actualiser=non", nil, []string{
			`<a href="/catalogue">Reprendre l&#39;actualisation automatique</a>`, `<input type="hidden" name="actualiser" value="non">`,
		}, []string{`http-equiv="refresh"`, "toutes les 30 secondes"}},
		{"nothing downloading", fixedUplink(true), "/catalogue?etat=offline", nil, []string{
			"3 ressources", `<option value="offline" selected>Disponible hors ligne</option>`, `<a href="/catalogue">Effacer les filtres</a>`,
		}, []string{`http-equiv="refresh"`, "actualisation", "Photosynthèse"}},
		{"search and level", fixedUplink(true), "/catalogue?q=++dictionnaire++&niveau=Coll%C3%A8ge", nil, []string{
			`value="dictionnaire"`, "1 ressource", `<option selected>collège</option>`, "Dictionnaire junior",
		}, []string{"Manuel de math"}},
		{"no match", fixedUplink(true), "/catalogue?q=dinosaure", nil, []string{"Aucune ressource ne correspond", "Essayez d&#39;autres mots"}, []string{`class="cards`}},
		{"unknown level still offered", fixedUplink(true), "/catalogue?niveau=lyc%C3%A9e", nil, []string{`<option selected>lycée</option>`, "Aucune ressource ne correspond"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newCardsPortal(t, &fakeCards{cards: sampleCards()}, tt.up)
			var cookies []*http.Cookie
			if tt.cookie != nil {
				cookies = append(cookies, tt.cookie)
			}
			res := get(t, h, tt.target, cookies...)
			if res.status != http.StatusOK {
				t.Fatalf("GET %s: got status %d, want 200", tt.target, res.status)
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
			checkPage(t, tt.target, res.body)
			checkCataloguePage(t, tt.target, res.body)
		})
	}
}

// checkCataloguePage applies the catalogue's own rules: unique ids, every
// labelled control's label exists, no link other than http(s) and
// same-site ones, and new windows said in the link.
func checkCataloguePage(t *testing.T, target, body string) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(` id="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		if seen[m[1]] {
			t.Errorf("GET %s: id %q used twice", target, m[1])
		}
		seen[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`aria-labelledby="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		for _, id := range strings.Fields(m[1]) {
			if !seen[id] {
				t.Errorf("GET %s: aria-labelledby names missing id %q", target, id)
			}
		}
	}
	for _, m := range regexp.MustCompile(`<(?:a|link|img)[^>]* (?:href|src)="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		u := m[1]
		if !(strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") || (strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//")) || strings.HasPrefix(u, "#")) {
			t.Errorf("GET %s: link or image %q is neither http(s) nor same-site", target, u)
		}
	}
	for _, a := range regexp.MustCompile(`(?s)<a [^>]*target="_blank"[^>]*>.*?</a>`).FindAllString(body, -1) {
		if !strings.Contains(a, `rel="noopener"`) || !(strings.Contains(a, "nouvelle fenêtre") || strings.Contains(a, "new window")) {
			t.Errorf("GET %s: new-window link without noopener or warning: %s", target, a)
		}
	}
	if strings.Contains(body, "ZgotmplZ") {
		t.Errorf("GET %s: html/template had to defuse a value", target)
	}
}

func TestCatalogueHostile(t *testing.T) {
	cards := []Card{
		{Kind: KindGAR, Title: `<script>alert(1)</script>`, Publisher: `"><img src=x onerror=alert(1)>`, Link: "javascript:alert(1)", State: StateOnlineOnly},
		{Kind: KindGAR, Title: "data", Link: "data:text/html,<script>alert(1)</script>", Thumbnail: "https://tracker.example/pixel.png", State: StateOnlineOnly},
		{Kind: KindTube, Title: "protocol-relative", Link: "//evil.example/x", Thumbnail: "javascript:alert(1)", State: StateOffline},
		{Kind: KindTube, Title: "backslash", Link: "/\\evil.example/x", State: StateOffline},
		{Kind: KindGAR, Title: "spaced", Link: " javascript:alert(1)", State: StateOnlineOnly},
		{Kind: KindGAR, Title: "newline", Link: "https://gar.example.fr/\nx", State: StateOnlineOnly},
		{Kind: KindTube, Title: "offline external", Link: "http://gar.example.fr/ok", State: StateOffline},
		{Kind: KindPack, Title: "bad pack", PackID: "../../etc", State: StateOffline},
		{Kind: "autre", Title: "unknown kind", State: "bizarre", StatusFR: `<b>gras</b>`, ErrorFR: "x", Percent: 250},
		{Kind: KindTube, Title: "too far", State: StateDownloading, Percent: 250},
	}
	h := newCardsPortal(t, &fakeCards{cards: cards}, fixedUplink(true))
	res := get(t, h, "/catalogue")
	if res.status != 200 {
		t.Fatalf("got status %d", res.status)
	}
	for _, bad := range []string{"<script", "javascript:", "data:text", "tracker.example", "evil.example", "<b>", "<img src=x", "../"} {
		if strings.Contains(res.body, bad) {
			t.Errorf("body contains %q", bad)
		}
	}
	for _, want := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;", "&lt;b&gt;gras&lt;/b&gt;",
		// An offline card's external address is still the publisher's:
		// shown as needing the Internet.
		`<a href="http://gar.example.fr/ok" target="_blank" rel="noopener">`,
		`<progress max="100" value="100" aria-labelledby="t10 s10">`,
	} {
		if !strings.Contains(res.body, want) {
			t.Errorf("body lacks %q", want)
		}
	}
	for i, title := range []string{"data", "protocol-relative", "backslash", "spaced", "newline", "bad pack", "unknown kind"} {
		if regexp.MustCompile(`<a [^>]*><span class="t"[^>]*>` + regexp.QuoteMeta(title) + `<`).MatchString(res.body) {
			t.Errorf("case %d: %q rendered as a link", i, title)
		}
		if !strings.Contains(res.body, `">`+title+`</span>`) {
			t.Errorf("case %d: %q not shown", i, title)
		}
	}
	checkPage(t, "/catalogue", res.body)
	checkCataloguePage(t, "/catalogue", res.body)
}

func TestCatalogueQueries(t *testing.T) {
	tests := []struct {
		target string
		want   CardQuery
	}{
		{"/catalogue", CardQuery{Limit: 51}},
		{"/catalogue?page=3", CardQuery{Limit: 51, Offset: 100}},
		{"/catalogue?page=0", CardQuery{Limit: 51}},
		{"/catalogue?page=-4", CardQuery{Limit: 51}},
		{"/catalogue?page=abc", CardQuery{Limit: 51}},
		{"/catalogue?page=99999999999999999999", CardQuery{Limit: 51}},
		{"/catalogue?page=123456", CardQuery{Limit: 51, Offset: (maxPage - 1) * 50}},
		{"/catalogue?q=+les++volcans+&niveau=coll%C3%A8ge&domaine=SVT&type=tube&etat=downloading", CardQuery{Query: "les volcans", Level: "collège", Domain: "SVT", Kind: KindTube, State: StateDownloading, Limit: 51}},
		{"/catalogue?type=ftp&etat=gone", CardQuery{Limit: 51}},
		{"/catalogue?q=" + strings.Repeat("é", 300), CardQuery{Query: strings.Repeat("é", 200), Limit: 51}},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			fc := &fakeCards{cards: sampleCards()}
			res := get(t, newCardsPortal(t, fc, nil), tt.target)
			if res.status != 200 {
				t.Fatalf("got status %d", res.status)
			}
			if got := fc.lastPageQuery(); got != tt.want {
				t.Errorf("got query %+v, want %+v", got, tt.want)
			}
		})
	}
}

// manyCards builds n GAR and video cards as a school with a big GAR list
// would have, without thumbnails.
func manyCards(n int) []Card {
	states := []CardState{StateOnlineOnly, StateOnlineOnly, StateOffline, StateDownloading, StateQueued, StateFailed}
	out := make([]Card, n)
	for i := range out {
		c := Card{Source: "gar", Kind: KindGAR, ID: fmt.Sprintf("ark:/%d", i),
			Title:     fmt.Sprintf("Ressource numérique numéro %d : un titre d'éditeur assez long", i),
			Publisher: "Éditions scolaires de démonstration", State: states[i%len(states)],
			Link:   fmt.Sprintf("https://sp-auth.gar.education.fr/domaineGar?idENT=QTE%%3D&idEtab=MDk5OTk5MUY%%3D&idRessource=ark%%3A%%2F99999%%2F%d", i),
			Levels: []string{"6e", "5e", "cycle 3", "cycle 4"}, Domains: []string{fmt.Sprintf("domaine %d", i%40)}, Typologies: []string{"manuel numérique"},
			Percent: i % 100, ErrorFR: "le serveur de l'éditeur ne répond pas"}
		if c.State != StateOnlineOnly {
			c.Kind, c.Link, c.PackID = KindTube, "", fmt.Sprintf("tube-%d", i)
		}
		out[i] = c
	}
	return out
}

func TestCataloguePagination(t *testing.T) {
	fc := &fakeCards{cards: manyCards(120)}
	h := newCardsPortal(t, fc, fixedUplink(true))
	tests := []struct {
		target         string
		cards          int
		heading        string
		prev, next     string
		title, current string
	}{
		{"/catalogue", 50, "Ressources 1 à 50", "", "/catalogue?page=2", "Catalogue de l&#39;école, page 1", "Page 1"},
		{"/catalogue?page=2", 50, "Ressources 51 à 100", "/catalogue", "/catalogue?page=3", "Catalogue de l&#39;école, page 2", "Page 2"},
		{"/catalogue?page=3", 20, "Ressources 101 à 120", "/catalogue?page=2", "", "Catalogue de l&#39;école, page 3", "Page 3"},
		{"/catalogue?page=9", 0, "Cette page est vide", "/catalogue?page=8", "", "Catalogue de l&#39;école, page 9", "Page 9"},
		{"/catalogue?page=2&etat=failed&actualiser=non", 0, "Cette page est vide", "/catalogue?actualiser=non&amp;etat=failed", "", "", ""},
		{"/catalogue?etat=online-only", 40, "40 ressources", "", "", "Catalogue de l&#39;école —", ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			res := get(t, h, tt.target)
			if res.status != 200 {
				t.Fatalf("got status %d", res.status)
			}
			if got := strings.Count(res.body, `<li class="card`); got != tt.cards {
				t.Errorf("got %d cards, want %d", got, tt.cards)
			}
			if !strings.Contains(res.body, tt.heading) {
				t.Errorf("body lacks heading %q", tt.heading)
			}
			prev := regexp.MustCompile(`<a href="([^"]*)" rel="prev">`).FindStringSubmatch(res.body)
			next := regexp.MustCompile(`<a href="([^"]*)" rel="next">`).FindStringSubmatch(res.body)
			if got := submatch(prev); got != tt.prev {
				t.Errorf("previous page: got %q, want %q", got, tt.prev)
			}
			if got := submatch(next); got != tt.next {
				t.Errorf("next page: got %q, want %q", got, tt.next)
			}
			if tt.title != "" && !strings.Contains(res.body, "<title>"+tt.title) {
				t.Errorf("title lacks %q", tt.title)
			}
			if tt.current != "" && !strings.Contains(res.body, `<li aria-current="page">`+tt.current+`</li>`) {
				t.Errorf("body lacks current page %q", tt.current)
			}
			checkPage(t, tt.target, res.body)
			checkCataloguePage(t, tt.target, res.body)
		})
	}
}

func submatch(m []string) string {
	if m == nil {
		return ""
	}
	return m[1]
}

func TestCataloguePageBudget(t *testing.T) {
	// 50 cards of mixed states stay under 30 kB. A page of 50 GAR cards
	// carries 50 publisher addresses of about 140 bytes each (7 kB that no
	// markup saving can remove): it gets 34 kB.
	const budget, garBudget = 30_000, 34_000
	h := newCardsPortal(t, &fakeCards{cards: manyCards(500)}, fixedUplink(true))
	for _, tt := range []struct {
		target string
		budget int
	}{{"/catalogue", budget}, {"/catalogue?page=5", budget}, {"/catalogue?etat=online-only", garBudget}} {
		res := get(t, h, tt.target)
		if got := strings.Count(res.body, `<li class="card`); got != 50 {
			t.Fatalf("GET %s: got %d cards, want 50", tt.target, got)
		}
		if len(res.body) >= tt.budget {
			t.Errorf("GET %s with 50 cards: got %d bytes, want under %d", tt.target, len(res.body), tt.budget)
		}
		t.Logf("GET %s, 50 cards without images: %d bytes", tt.target, len(res.body))
	}
	offline := get(t, newCardsPortal(t, &fakeCards{cards: manyCards(500)}, fixedUplink(false)), "/catalogue")
	if len(offline.body) >= budget {
		t.Errorf("GET /catalogue offline: got %d bytes, want under %d", len(offline.body), budget)
	}
	t.Logf("GET /catalogue offline, 50 cards: %d bytes", len(offline.body))
	css := regexp.MustCompile(`href="(/static/catalogue\.[0-9a-f]{12}\.css)"`).FindStringSubmatch(offline.body)
	if css == nil {
		t.Fatal("catalogue page lacks its stylesheet")
	}
	res := get(t, h, css[1])
	if res.status != 200 || len(res.body) > 4<<10 || res.header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("catalogue stylesheet: got %d, %d bytes, %q; want 200, at most 4 KiB, cached a year", res.status, len(res.body), res.header.Get("Cache-Control"))
	}
	t.Logf("catalogue stylesheet: %d bytes", len(res.body))
}

func TestCatalogueHome(t *testing.T) {
	tests := []struct {
		name    string
		cards   *fakeCards
		want    []string
		notWant []string
	}{
		{"downloads", &fakeCards{cards: sampleCards()}, []string{
			`<h2 id="catalogue">Catalogue de l&#39;école</h2>`,
			`<li><span id="t1">La photosynthèse</span> — <span id="s1">en cours de téléchargement 43 %</span> <progress max="100" value="43" aria-labelledby="t1 s1">43 %</progress></li>`,
			`<a href="/catalogue">Ouvrir le catalogue de l&#39;école</a>`, `<li><a href="/catalogue">Catalogue de l&#39;école</a></li>`,
		}, []string{`http-equiv="refresh"`, "Documents de la classe", "catalogue.css"}},
		{"no downloads", &fakeCards{cards: sampleCards()[:3]}, []string{`<a href="/catalogue">Ouvrir le catalogue de l&#39;école</a>`}, []string{"<progress", `class="downloads"`}},
		{"failing catalogue", &fakeCards{err: errors.New("database is locked")}, []string{"Ressources disponibles", `<a href="/catalogue">Ouvrir le catalogue`}, []string{"database is locked", "<progress"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, newCardsPortal(t, tt.cards, fixedUplink(false)), "/")
			if res.status != 200 {
				t.Fatalf("got status %d", res.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.body, w) {
					t.Errorf("body lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(res.body, w) {
					t.Errorf("body contains %q", w)
				}
			}
			checkPage(t, "/", res.body)
			checkCataloguePage(t, "/", res.body)
		})
	}
	// English.
	res := get(t, newCardsPortal(t, &fakeCards{cards: sampleCards()}, nil), "/", &http.Cookie{Name: "preau_lang", Value: "en"})
	for _, w := range []string{"Open the school catalogue", "downloading 43%", ">School catalogue</a></li>"} {
		if !strings.Contains(res.body, w) {
			t.Errorf("English home lacks %q", w)
		}
	}
}

func TestCatalogueWithoutCards(t *testing.T) {
	h := newTestPortal(t, sampleCatalog(), fixedUplink(true))
	for _, target := range []string{"/catalogue", "/paquet/demo"} {
		if res := get(t, h, target); res.status != 404 {
			t.Errorf("GET %s without cards: got %d, want 404", target, res.status)
		}
	}
	home := get(t, h, "/")
	for _, bad := range []string{"/catalogue", "Catalogue de l", "<progress"} {
		if strings.Contains(home.body, bad) {
			t.Errorf("home without cards contains %q", bad)
		}
	}
}

func TestCatalogueFailure(t *testing.T) {
	h := newCardsPortal(t, &fakeCards{err: errors.New("database is locked")}, nil)
	res := get(t, h, "/catalogue")
	if res.status != 500 || !strings.Contains(res.body, "Erreur du serveur") || strings.Contains(res.body, "database is locked") {
		t.Errorf("got %d; want 500 with the error page and no internal detail", res.status)
	}
	// A failing content catalogue only costs the offline cards' pack links.
	cat := &fakeCatalog{failAll: errors.New("disk")}
	p, err := New(Config{Cards: &fakeCards{cards: sampleCards()}}, cat, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res = get(t, p.Handler(), "/catalogue")
	if res.status != 200 || !strings.Contains(res.body, `<a href="/c/tube-v1/video.mp4">`) || strings.Contains(res.body, "/paquet/") {
		t.Errorf("got %d; want 200 with the offline video's own link and no pack links", res.status)
	}
}

func TestPackPage(t *testing.T) {
	h := newCardsPortal(t, &fakeCards{cards: sampleCards()}, nil)
	tests := []struct {
		target string
		status int
		want   []string
	}{
		{"/paquet/demo", 200, []string{"<h1>Ressources du paquet « demo »</h1>", "5 ressources", `href="/ressource/demo/eau"`, `href="/ressource/demo/volcans"`}},
		{"/paquet/other", 200, []string{"1 ressource", "Guide for teachers"}},
		{"/paquet/nope", 404, []string{"Page introuvable"}},
		{"/paquet/..%2f..", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			res := get(t, h, tt.target)
			if res.status != tt.status {
				t.Fatalf("got status %d, want %d", res.status, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.body, w) {
					t.Errorf("body lacks %q", w)
				}
			}
			checkPage(t, tt.target, res.body)
		})
	}
}

func TestCardLinks(t *testing.T) {
	tests := []struct {
		in             string
		local, externe string
	}{
		{"/c/pack/video.mp4", "/c/pack/video.mp4", ""},
		{"/c/pack/vid%C3%A9o.mp4?x=1", "/c/pack/vid%C3%A9o.mp4?x=1", ""},
		{"/catalogue/vignettes/abc", "/catalogue/vignettes/abc", ""},
		{"https://gar.example.fr/r?id=1", "", "https://gar.example.fr/r?id=1"},
		{"http://gar.example.fr", "", "http://gar.example.fr"},
		{"HTTPS://GAR.example.fr/x", "", "https://GAR.example.fr/x"},
		{"", "", ""},
		{"javascript:alert(1)", "", ""},
		{"JavaScript:alert(1)", "", ""},
		{"data:text/html,x", "", ""},
		{"vbscript:x", "", ""},
		{"//evil.example/x", "", ""},
		{"/\\evil.example", "", ""},
		{"\\\\evil.example", "", ""},
		{"https:evil.example", "", ""},
		{"https:///x", "", ""},
		{" https://gar.example.fr", "", ""},
		{"https://gar.example.fr/\tx", "", ""},
		{"/c/x\n", "", ""},
		{"relative/path", "", ""},
		{"ftp://files.example/x", "", ""},
		{"https://user:pass@gar.example.fr/", "", ""},
	}
	for _, tt := range tests {
		if got := sameSitePath(tt.in); got != tt.local {
			t.Errorf("sameSitePath(%q): got %q, want %q", tt.in, got, tt.local)
		}
		if got := externalURL(tt.in); got != tt.externe {
			t.Errorf("externalURL(%q): got %q, want %q", tt.in, got, tt.externe)
		}
	}
}

// FuzzCardLinks checks that no address a catalogue gives can become
// anything but an http(s) or same-site link, seeded from the lines of
// testdata/cardlinks.
func FuzzCardLinks(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "cardlinks", "*"))
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		if l := sameSitePath(s); l != "" {
			if !strings.HasPrefix(l, "/") || strings.HasPrefix(l, "//") || strings.ContainsAny(l, "\\\x00\n\r\t") {
				t.Errorf("sameSitePath(%q) = %q: not a same-site path", s, l)
			}
		}
		if e := externalURL(s); e != "" {
			if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") || strings.ContainsAny(e, "\x00\n\r\t ") {
				t.Errorf("externalURL(%q) = %q: not an http(s) address", s, e)
			}
		}
	})
}
