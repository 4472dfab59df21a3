package console

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"preau/appliance/internal/browsertest"
)

// These tests drive Debian's headless Chromium (a real peer): they skip
// when it is missing unless PREAU_REQUIRE_BROWSER=1.

func requireAxe(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(browsertest.AxePath()); err != nil {
		msg := "axe-core absent : lancez « make test-deps » / axe-core missing: run make test-deps (" + browsertest.AxePath() + ")"
		if os.Getenv(browsertest.RequireEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// checkAxe fails on serious or critical accessibility violations of the
// current page and keeps a screenshot.
func checkAxe(t *testing.T, b *browsertest.Browser, name string) {
	t.Helper()
	if err := b.Screenshot(filepath.Join(browsertest.ArtefactDir(t), name+".png")); err != nil {
		t.Logf("screenshot %s: %v", name, err)
	}
	vs, err := b.Axe()
	if err != nil {
		t.Fatalf("axe on %s: %v", name, err)
	}
	for _, v := range vs {
		t.Logf("axe %s: %s", name, v)
	}
	if s := browsertest.Serious(vs); len(s) > 0 {
		t.Errorf("%s: %d serious or critical accessibility violations: %v", name, len(s), s)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitText waits until the element sel contains want.
func waitText(t *testing.T, b *browsertest.Browser, sel, want string, d time.Duration) {
	t.Helper()
	_, err := b.Wait(d, `const e = document.querySelector(arguments[0]); return !!e && e.textContent.includes(arguments[1]);`, sel, want)
	if err != nil {
		got, _ := b.Exec(`const e = document.querySelector(arguments[0]); return e ? e.textContent : "(none)";`, sel)
		t.Fatalf("%s never showed %q (shows %q): %v", sel, want, got, err)
	}
}

// startBrowser opens Chromium and chooses French on the console (headless
// Chromium asks for English in its Accept-Language).
func startBrowser(t *testing.T, base string, opts ...browsertest.Option) *browsertest.Browser {
	t.Helper()
	b := browsertest.Start(t, opts...)
	mustOK(t, b.Open(base+"/console/connexion?lang=fr"))
	return b
}

func browserSignIn(t *testing.T, b *browsertest.Browser, base, login, password string) {
	t.Helper()
	mustOK(t, b.Open(base+"/console/connexion"))
	mustOK(t, b.Type("#identifiant", login))
	mustOK(t, b.Type("#motdepasse", password))
	mustOK(t, b.Click("form.stack button[type=submit]"))
}

// A fresh box: sign-in with the setup code, then the live dashboard, and
// axe on every page a technician uses.
func TestBrowserSetupAndLiveDashboard(t *testing.T) {
	requireAxe(t)
	h := newHarness(t)
	h.serve()
	b := startBrowser(t, h.srv.URL, browsertest.WithWindow(1280, 1000))
	code, err := h.c.SetupCode(context.Background())
	mustOK(t, err)

	mustOK(t, b.Open(h.srv.URL+"/console/connexion"))
	waitText(t, b, "main", "Créer le premier compte technicien", 5*time.Second)
	checkAxe(t, b, "connexion")
	mustOK(t, b.Click(`a[href="/console/installation"]`))
	waitText(t, b, "h1", "Installation de la console", 5*time.Second)
	checkAxe(t, b, "installation")
	mustOK(t, b.Type("#code", strings.ToLower(code)))
	mustOK(t, b.Type("#identifiant", "camille"))
	mustOK(t, b.Type("#nom", "Camille Technicienne"))
	mustOK(t, b.Type("#motdepasse", testPassword))
	mustOK(t, b.Type("#confirmation", testPassword))
	mustOK(t, b.Click("form.stack button[type=submit]"))
	waitText(t, b, "h1", "Tableau de bord", 10*time.Second)
	waitText(t, b, ".notice-ok", "La console est installée", 5*time.Second)

	// The script connects and says so.
	waitText(t, b, "#live-status", "Mise à jour en direct.", 10*time.Second)
	checkAxe(t, b, "tableau-de-bord")
	_, err = b.Exec(`window.__sameDocument = 42;`)
	mustOK(t, err)

	// A device appears: the dashboard shows it without a reload.
	h.src.set(func(s *Snapshot) {
		s.Devices.Present = 3
		s.Devices.Recent = append([]DeviceBrief{{MAC: "02:00:00:00:00:09", IP: "10.20.0.40", Name: "tbi-cm1", Class: ClassInteractiveDisplay}}, s.Devices.Recent...)
	})
	h.c.Changed()
	waitText(t, b, "#devices-now", "tbi-cm1 · 10.20.0.40 · écran interactif", 5*time.Second)
	waitText(t, b, `[data-k="devices.count"]`, "3 appareils présents", 2*time.Second)
	same, err := b.Exec(`return window.__sameDocument === 42;`)
	mustOK(t, err)
	if same != true {
		t.Error("the page reloaded instead of updating")
	}
	// And a change the poll finds by itself.
	h.src.set(func(s *Snapshot) { s.Uplink.State = UplinkOffline })
	waitText(t, b, `[data-k="uplink.state"]`, "Hors ligne", 5*time.Second)
	state, err := b.Exec(`return document.querySelector('[data-s="uplink"]').getAttribute('data-state');`)
	mustOK(t, err)
	if state != "bad" {
		t.Errorf("uplink block state %v, want bad", state)
	}
	if err := b.Screenshot(filepath.Join(browsertest.ArtefactDir(t), "tableau-de-bord-direct.png")); err != nil {
		t.Log(err)
	}

	for _, p := range []struct{ path, name, h1 string }{
		{"/console/appareils", "appareils", "Appareils"},
		{"/console/energie", "energie", "Énergie"},
		{"/console/mise-a-jour", "mise-a-jour", "Mise à jour"},
		{"/console/comptes", "comptes", "Comptes"},
		{"/console/jetons", "jetons", "Jetons d'API"},
		{"/console/journal", "journal", "Journal"},
		{"/console/compte", "compte", "Mon compte"},
		{"/console/compte/totp", "totp", "Activer le code"},
		{"/console/appareils?lang=en", "devices-en", "Devices"},
		{"/console/energie", "energy-en", "Energy"},
	} {
		mustOK(t, b.Open(h.srv.URL+p.path))
		waitText(t, b, "h1", p.h1, 5*time.Second)
		checkAxe(t, b, p.name)
	}
	logs, _ := b.ConsoleLog()
	for _, l := range logs {
		if l.Level == "SEVERE" {
			t.Errorf("browser console: %s", l.Message)
		}
	}
}

// A form posted without its CSRF token is refused with a French page.
func TestBrowserCSRFRefused(t *testing.T) {
	h := newHarness(t)
	h.account("camille", RoleTechnicien)
	b := startBrowser(t, h.srv.URL)
	browserSignIn(t, b, h.srv.URL, "camille", testPassword)
	waitText(t, b, "h1", "Tableau de bord", 10*time.Second)
	mustOK(t, b.Open(h.srv.URL+"/console/comptes"))
	waitText(t, b, "h1", "Comptes", 5*time.Second)
	mustOK(t, b.Type("#identifiant", "intrus"))
	mustOK(t, b.Type("#nom", "Intrus"))
	mustOK(t, b.Type("#motdepasse", testPassword))
	// What a forged form lacks: the token.
	_, err := b.Exec(`document.querySelector('form[action="/console/comptes"] input[name=csrf]').remove();`)
	mustOK(t, err)
	mustOK(t, b.Click(`form[action="/console/comptes"] button[type=submit]`))
	waitText(t, b, "h1", "Demande refusée", 10*time.Second)
	waitText(t, b, "main", "protection contre la falsification de requêtes", time.Second)
	if err := b.Screenshot(filepath.Join(browsertest.ArtefactDir(t), "csrf-refuse.png")); err != nil {
		t.Log(err)
	}
	accounts, _ := h.c.ListAccounts(context.Background())
	if len(accounts) != 1 {
		t.Errorf("%d accounts after a refused post, want 1", len(accounts))
	}
	// A script's fetch without the header is refused too.
	got, err := b.ExecAsync(`const done = arguments[arguments.length-1];
		fetch('/api/v1/devices/f0:18:98:00:00:01/class', {method: 'PUT', credentials: 'same-origin', body: '{"class":"laptop"}'})
		  .then(r => r.json().then(j => done(r.status + ' ' + j.error))).catch(e => done(String(e)));`)
	mustOK(t, err)
	if got != "403 csrf" {
		t.Errorf("fetch without X-CSRF-Token: %v, want 403 csrf", got)
	}
}

// Five wrong passwords lock the account, and the page says until when.
func TestBrowserLockOut(t *testing.T) {
	requireAxe(t)
	h := newHarness(t)
	h.account("camille", RoleTechnicien)
	b := startBrowser(t, h.srv.URL)
	for i := 1; i <= 5; i++ {
		browserSignIn(t, b, h.srv.URL, "camille", fmt.Sprintf("wrong password %d", i))
		waitText(t, b, "[role=alert]", "", 5*time.Second)
	}
	waitText(t, b, "[role=alert]", "Trop d'essais : compte verrouillé jusqu'à 14 h 47.", 5*time.Second)
	checkAxe(t, b, "verrouillage")
	// The right password does not help now.
	browserSignIn(t, b, h.srv.URL, "camille", testPassword)
	waitText(t, b, "[role=alert]", "compte verrouillé jusqu'à 14 h 47", 5*time.Second)
	if n := strings.Count(strings.Join(h.auditActions(), " "), ActionLockOut); n != 1 {
		t.Errorf("%d lock-outs in the audit log, want 1", n)
	}
}

// When the socket keeps failing, the dashboard falls back to fetching
// /api/v1/status.
func TestBrowserFallbackPolling(t *testing.T) {
	h := newHarness(t)
	console := h.c.Handler()
	h.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console/ws" {
			http.Error(w, "no sockets here", http.StatusBadGateway) // a proxy that cannot upgrade
			return
		}
		console.ServeHTTP(w, r)
	})
	h.account("camille", RoleDirection)
	b := startBrowser(t, h.srv.URL)
	browserSignIn(t, b, h.srv.URL, "camille", testPassword)
	waitText(t, b, "h1", "Tableau de bord", 10*time.Second)
	h.src.set(func(s *Snapshot) {
		s.Devices.Present = 1
		s.Devices.Recent = []DeviceBrief{{MAC: "02:00:00:00:00:0a", Name: "portable-direction", Class: ClassLaptop}}
	})
	waitText(t, b, "#live-status", "Actualisation toutes les 10 secondes.", 30*time.Second)
	waitText(t, b, "#devices-now", "portable-direction", 5*time.Second)
}
