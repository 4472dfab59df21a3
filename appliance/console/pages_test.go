package console

import (
	"encoding/xml"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCataloguesMatch(t *testing.T) {
	for key := range catalogues["fr"] {
		if _, ok := catalogues["en"][key]; !ok {
			t.Errorf("key %q missing in English", key)
		}
	}
	for key := range catalogues["en"] {
		if _, ok := catalogues["fr"][key]; !ok {
			t.Errorf("key %q missing in French", key)
		}
	}
	// Every key a template names exists.
	re := regexp.MustCompile(`(?:\{\{|\$)\.Tf? "([a-z0-9.-]+)"`)
	err := fs.WalkDir(files, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := fs.ReadFile(files, path)
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			if _, ok := catalogues["fr"][m[1]]; !ok {
				t.Errorf("%s names unknown key %q", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range Classes {
		if _, ok := catalogues["fr"]["class."+c]; !ok {
			t.Errorf("class %s has no label", c)
		}
	}
	for _, r := range Roles {
		if _, ok := catalogues["fr"]["role."+string(r)]; !ok {
			t.Errorf("role %s has no label", r)
		}
	}
}

// Every page renders in both languages without a missing text.
func TestPagesRender(t *testing.T) {
	h := newHarness(t)
	tech := h.signedIn("tech", RoleTechnicien)
	h.c.CreateAPIToken(t.Context(), "supervision", RoleDirection, "tech")
	pages := []struct {
		u     *user
		path  string
		want  int
		title string
	}{
		{tech, "/console/", 200, "Tableau de bord"},
		{tech, "/console/appareils", 200, "Appareils"},
		{tech, "/console/energie", 200, "Énergie"},
		{tech, "/console/mise-a-jour", 200, "Mise à jour"},
		{tech, "/console/comptes", 200, "Comptes"},
		{tech, "/console/jetons", 200, "Jetons d'API"},
		{tech, "/console/journal", 200, "Journal"},
		{tech, "/console/compte", 200, "Mon compte"},
		{tech, "/console/compte/totp", 200, "Activer le code de vérification"},
		{tech, "/console/nulle-part", 404, "Page introuvable"},
		{h.newUser(), "/console/connexion", 200, "Connexion à la console"},
		{h.newUser(), "/console/installation", 409, "Installation de la console"},
	}
	for _, lang := range []string{"fr", "en"} {
		for _, p := range pages {
			t.Run(lang+p.path, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, h.srv.URL+p.path, nil)
				req.Header.Set("Accept-Language", map[string]string{"fr": "fr-FR,fr;q=0.9", "en": "en-GB,en;q=0.9,fr;q=0.5"}[lang])
				a := p.u.do(req)
				if a.status != p.want {
					t.Fatalf("status %d, want %d", a.status, p.want)
				}
				if strings.Contains(a.body, "[[") {
					t.Errorf("missing text: %s", regexp.MustCompile(`\[\[[^\]]*\]\]`).FindString(a.body))
				}
				if !strings.Contains(a.body, `<html lang="`+lang+`">`) {
					t.Errorf("page not in %s", lang)
				}
				if lang == "fr" && !strings.Contains(text(a.body), p.title) {
					t.Errorf("title %q missing", p.title)
				}
				if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
					t.Errorf("CSP %q", csp)
				}
				if strings.Contains(a.body, "http://") && !strings.Contains(a.body, "xmlns=\"http://www.w3.org/2000/svg\"") {
					t.Errorf("page links outside the box")
				}
				if regexp.MustCompile(`<script>|\sstyle="|\son[a-z]+="`).MatchString(a.body) {
					t.Errorf("inline script or style in the page")
				}
			})
		}
	}
}

func TestLanguageChoice(t *testing.T) {
	tests := []struct{ header, want string }{
		{"", ""},
		{"en-GB,en;q=0.9", "en"},
		{"fr-FR,fr;q=0.9,en;q=0.8", "fr"},
		{"de-DE,de;q=0.9,en;q=0.5", "en"},
		{"en;q=0.3,fr;q=0.7", "fr"},
		{"de", ""},
		{"en;q=abc", ""},
		{"*", ""},
	}
	for _, tt := range tests {
		if got := acceptLanguage(tt.header); got != tt.want {
			t.Errorf("acceptLanguage(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
	h := newHarness(t)
	u := h.newUser()
	a := u.get("/console/connexion?lang=en")
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/connexion" {
		t.Fatalf("?lang=en: %d %q", a.status, a.header.Get("Location"))
	}
	if a := u.get("/console/connexion"); !contains(a.body, "Sign in to the console") {
		t.Errorf("after ?lang=en the page is not English")
	}
}

func TestDevicesPage(t *testing.T) {
	h := newHarness(t)
	tech := h.signedIn("tech", RoleTechnicien)
	a := tech.get("/console/appareils")
	body := text(a.body)
	for _, want := range []string{"3 appareils connus, dont 2 présents maintenant.", "ipad-cm2-01", "Apple, Inc.", "tablette", "deviné",
		"corrigé par un technicien", "adresse aléatoire", "(sans nom)", "aujourd'hui à 14 h 31", "27 février à 14 h 32"} {
		if !strings.Contains(body, want) {
			t.Errorf("devices page lacks %q", want)
		}
	}
	if !strings.Contains(a.body, `action="/console/appareils/classe"`) {
		t.Error("technicien has no class form")
	}
	// Present devices come first.
	if i, j := strings.Index(body, "ipad-cm2-01"), strings.Index(body, "(sans nom)"); i < 0 || j < i {
		t.Error("absent device before present ones")
	}
	tok := tech.csrf("/console/appareils")
	if a := tech.post("/console/appareils/classe", url.Values{"csrf": {tok}, "mac": {"DA-A1-19-00-00-03"}, "classe": {"laptop"}}); a.status != 303 {
		t.Fatalf("set class: %d %s", a.status, text(a.body))
	}
	if got := strings.Join(h.devs.set, ","); got != "da:a1:19:00:00:03 laptop tech" {
		t.Errorf("SetClass calls %q", got)
	}
	if a := tech.post("/console/appareils/classe", url.Values{"csrf": {tok}, "mac": {"da:a1:19:00:00:03"}, "classe": {"toaster"}}); a.status != 400 {
		t.Errorf("unknown class: %d", a.status)
	}
	a = tech.get("/console/appareils/inventaire.csv")
	if a.status != 200 || a.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		a.header.Get("Content-Disposition") != `attachment; filename="inventaire-preau-2026-03-09.csv"` || !strings.Contains(a.body, "tablette-cm2") {
		t.Errorf("CSV export: %d %v", a.status, a.header)
	}
	a = tech.get("/console/appareils/inventaire-glpi.zip")
	if a.status != 200 || a.header.Get("Content-Type") != "application/zip" || !strings.HasPrefix(a.body, "PK") {
		t.Errorf("GLPI export: %d %v", a.status, a.header)
	}
	if acts := strings.Join(h.auditActions(), " "); !strings.Contains(acts, "device-class export export") {
		t.Errorf("audit %q", acts)
	}

	// Direction reads, without forms, and cannot post.
	dir := h.signedIn("dir", RoleDirection)
	a = dir.get("/console/appareils")
	if a.status != 200 || strings.Contains(a.body, `action="/console/appareils/classe"`) {
		t.Errorf("direction devices page: %d, form shown: %v", a.status, strings.Contains(a.body, "classe"))
	}
	dtok := dir.csrf("/console/appareils")
	if a := dir.post("/console/appareils/classe", url.Values{"csrf": {dtok}, "mac": {"da:a1:19:00:00:03"}, "classe": {"phone"}}); a.status != 403 {
		t.Errorf("direction set class: %d, want 403", a.status)
	}
}

func TestMissingPeers(t *testing.T) {
	h := newHarness(t)
	c, err := New(h.cfg, Deps{DB: h.db, Now: h.clock.Now, Source: h.src})
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	h.srv.Config.Handler = c.Handler()
	u := h.signedIn("tech", RoleTechnicien)
	for path, want := range map[string]string{
		"/console/appareils":   "L'inventaire du réseau n'est pas disponible",
		"/console/energie":     "Le suivi de l'énergie n'est pas disponible",
		"/console/mise-a-jour": "Le suivi des mises à jour n'est pas disponible",
	} {
		if a := u.get(path); a.status != 200 || !contains(a.body, want) {
			t.Errorf("%s: %d\n%s", path, a.status, text(a.body))
		}
	}
	if a := u.get("/api/v1/devices"); a.status != 404 || !strings.Contains(a.body, "unavailable") {
		t.Errorf("/api/v1/devices: %d %s", a.status, a.body)
	}
}

func TestEnergyPage(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn("dir", RoleDirection)
	a := u.get("/console/energie")
	if a.status != 200 {
		t.Fatal(a.status)
	}
	m := regexp.MustCompile(`(?s)<svg class="chart".*?</svg>`).FindString(a.body)
	if m == "" {
		t.Fatal("no chart")
	}
	var doc struct {
		XMLName xml.Name
		Title   string `xml:"title"`
		Rects   []struct {
			Fill   string  `xml:"fill,attr"`
			Height float64 `xml:"height,attr"`
		} `xml:"rect"`
	}
	if err := xml.Unmarshal([]byte(m), &doc); err != nil {
		t.Fatalf("chart is not well-formed XML: %v", err)
	}
	if doc.Title != "Énergie par jour et par type d'appareil (kWh)" {
		t.Errorf("chart title %q", doc.Title)
	}
	// 6 days with data × 3 classes, plus 6 outlined bars of last week
	// (one day of each week has no measure).
	var stacked, outlined int
	for _, r := range doc.Rects {
		if r.Fill == "#ffffff" {
			outlined++
		} else {
			stacked++
		}
	}
	if stacked != 18 || outlined != 6 {
		t.Errorf("chart has %d stacked and %d outlined bars, want 18 and 6", stacked, outlined)
	}
	body := text(a.body)
	for _, want := range []string{"7,2 W", "estimation (modèle N100)", "pas de mesure", "lundi 9 mars", "1,72",
		"Facteur : 0,052 kg CO₂e/kWh (ADEME Base Empreinte, 2022).", "imprimante-salle-maitres",
		"de 7 mars à 0 h 00 à 8 mars à 23 h 59", "environ 0,58 kWh", "Semaine précédente : 12,4 kWh", "10,3 kWh"} {
		if !strings.Contains(body, want) {
			t.Errorf("energy page lacks %q", want)
		}
	}
	rows := regexp.MustCompile(`(?s)<tbody>.*?</tbody>`).FindString(a.body)
	if n := strings.Count(rows, "<tr>"); n != 7 {
		t.Errorf("table has %d rows, want 7", n)
	}
}

func TestNiceStep(t *testing.T) {
	tests := []struct {
		max  float64
		want float64
	}{{0, 1}, {1.9, 0.5}, {4, 1}, {7, 2}, {23, 10}, {0.03, 0.01}}
	for _, tt := range tests {
		if got := niceStep(tt.max, 4); got != tt.want {
			t.Errorf("niceStep(%g) = %g, want %g", tt.max, got, tt.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"size fr", formatSize("fr", 1_234_000_000), "1,2\u00a0Go"},
		{"size en", formatSize("en", 1_234_000_000), "1.2\u00a0GB"},
		{"size bytes", formatSize("fr", 999), "999\u00a0o"},
		{"size round up", formatSize("fr", 999_999), "1,0\u00a0Mo"},
		{"rate", formatRate("fr", 12_300_000), "12\u00a0Mbit/s"},
		{"rate big", formatRate("en", 250_000_000), "250\u00a0Mbit/s"},
		{"number fr", formatNumber("fr", 12345.678, 2), "12\u202f345,68"},
		{"number en", formatNumber("en", 12345.678, 1), "12,345.7"},
		{"negative", formatNumber("fr", -0.5, 1), "−0,5"},
		{"kWh small", formatKWh("fr", 3.421), "3,42\u00a0kWh"},
		{"kWh big", formatKWh("en", 123.4), "123\u00a0kWh"},
		{"clock fr", clock("fr", time.Date(2026, 1, 1, 9, 5, 0, 0, time.UTC)), "9 h 05"},
		{"clock en pm", clock("en", time.Date(2026, 1, 1, 14, 32, 0, 0, time.UTC)), "2:32 pm"},
		{"clock en midnight", clock("en", time.Date(2026, 1, 1, 0, 7, 0, 0, time.UTC)), "12:07 am"},
		{"percent", formatPercent("fr", -12.4), "−12\u202f%"},
		{"date first", formatDate("fr", time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)), "1er mai 2026"},
		{"other year", formatDateTime("fr", time.Date(2025, 12, 31, 8, 0, 0, 0, time.UTC), testStart), "31 décembre 2025 à 8 h 00"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestAccountsPage(t *testing.T) {
	h := newHarness(t)
	tech := h.signedIn("tech", RoleTechnicien)
	tok := tech.csrf("/console/comptes")
	steps := []struct {
		name string
		form url.Values
		path string
		want int
	}{
		{"create", url.Values{"identifiant": {"prof.martin"}, "nom": {"M. Martin"}, "role": {"enseignant"}, "motdepasse": {testPassword}}, "/console/comptes", 303},
		{"create twice", url.Values{"identifiant": {"prof.martin"}, "nom": {"M. Martin"}, "role": {"enseignant"}, "motdepasse": {testPassword}}, "/console/comptes", 409},
		{"promote", url.Values{"identifiant": {"prof.martin"}, "action": {"role"}, "role": {"direction"}}, "/console/comptes/modifier", 303},
		{"reset password", url.Values{"identifiant": {"prof.martin"}, "action": {"password"}, "motdepasse": {"another good password"}}, "/console/comptes/modifier", 303},
		{"disable", url.Values{"identifiant": {"prof.martin"}, "action": {"disable"}}, "/console/comptes/modifier", 303},
		{"disable self, last technicien", url.Values{"identifiant": {"tech"}, "action": {"disable"}}, "/console/comptes/modifier", 409},
		{"unknown action", url.Values{"identifiant": {"tech"}, "action": {"delete"}}, "/console/comptes/modifier", 400},
	}
	for _, s := range steps {
		s.form.Set("csrf", tok)
		if a := tech.post(s.path, s.form); a.status != s.want {
			t.Errorf("%s: %d, want %d\n%s", s.name, a.status, s.want, text(a.body))
		}
	}
	a := tech.get("/console/comptes")
	if !contains(a.body, "prof.martin M. Martin direction désactivé") {
		t.Errorf("accounts table:\n%s", text(a.body))
	}
	want := []string{"account-create", "sign-in", "account-create", "account-role", "account-password", "account-disable"}
	if got := h.auditActions(); !slices.Equal(got, want) {
		t.Errorf("audit %v, want %v", got, want)
	}
}

func TestOwnAccount(t *testing.T) {
	h := newHarness(t)
	prof := h.signedIn("prof", RoleEnseignant)
	// A teacher signs in and lands on their account page.
	a := prof.get("/console/")
	if a.status != 303 || a.header.Get("Location") != "/console/compte" {
		t.Errorf("teacher on the dashboard: %d %q", a.status, a.header.Get("Location"))
	}
	a = prof.get("/console/compte")
	if a.status != 200 || !contains(a.body, "Votre compte sert aux pages enseignants") || strings.Contains(a.body, `href="/console/appareils"`) {
		t.Errorf("teacher account page: %d", a.status)
	}
	tok := prof.csrf("/console/compte")
	if a := prof.post("/console/compte/mot-de-passe", url.Values{"csrf": {tok}, "actuel": {"wrong password"}, "motdepasse": {"a new password here"}, "confirmation": {"a new password here"}}); a.status != 401 || !contains(a.body, "Le mot de passe actuel est incorrect.") {
		t.Errorf("wrong current password: %d", a.status)
	}
	if a := prof.post("/console/compte/mot-de-passe", url.Values{"csrf": {tok}, "actuel": {testPassword}, "motdepasse": {"a new password here"}, "confirmation": {"a new password here"}}); a.status != 303 {
		t.Fatalf("change password: %d %s", a.status, text(a.body))
	}
	// This browser keeps a (new) session.
	if a := prof.get("/console/compte?ok=password"); a.status != 200 || !contains(a.body, "Votre mot de passe est changé.") {
		t.Errorf("after the change: %d", a.status)
	}
}

func TestTokensPage(t *testing.T) {
	h := newHarness(t)
	tech := h.signedIn("tech", RoleTechnicien)
	tok := tech.csrf("/console/jetons")
	a := tech.post("/console/jetons", url.Values{"csrf": {tok}, "nom": {"prometheus"}, "role": {"direction"}})
	secret := regexp.MustCompile(`preau_[A-Za-z0-9_-]{43}`).FindString(a.body)
	if a.status != 200 || secret == "" {
		t.Fatalf("create token: %d, secret %q", a.status, secret)
	}
	if a := tech.get("/console/jetons"); strings.Contains(a.body, secret) {
		t.Error("the secret is shown again")
	}
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/api/v1/devices", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	if a := h.newUser().do(req); a.status != 200 || !strings.Contains(a.body, "ipad-cm2-01") {
		t.Errorf("token from the page: %d", a.status)
	}
	list, _ := h.c.ListAPITokens(t.Context())
	if a := tech.post("/console/jetons/revoquer", url.Values{"csrf": {tok}, "id": {"1"}}); a.status != 303 || len(list) != 1 {
		t.Errorf("revoke: %d", a.status)
	}
}
