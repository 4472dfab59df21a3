package assignments

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCreateTeacher(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	tests := []struct {
		login, name, password string
		code                  string
	}{
		{"mmartin", "Mme Martin", "correct horse battery", ""},
		{"MMartin", "Mme Martin", "correct horse battery", CodeTeacherExists},
		{"a", "A", "correct horse battery", CodeBadLogin},
		{"é-lève", "A", "correct horse battery", CodeBadLogin},
		{"durand", "", "correct horse battery", CodeBadName},
		{"durand", "M. Durand", "court", CodeWeakPassword},
		{"durand", "M. Durand", strings.Repeat("x", 2000), CodeWeakPassword},
	}
	for _, tt := range tests {
		err := e.svc.CreateTeacher(ctx, tt.login, tt.name, tt.password)
		var ae *Error
		switch {
		case tt.code == "" && err != nil:
			t.Errorf("CreateTeacher(%q) = %v", tt.login, err)
		case tt.code != "" && (!errors.As(err, &ae) || ae.Code != tt.code):
			t.Errorf("CreateTeacher(%q) = %v, want code %s", tt.login, err, tt.code)
		case tt.code != "" && (ae.FR == "" || ae.English() == "" || ae.Error() != ae.FR):
			t.Errorf("CreateTeacher(%q): error texts fr %q en %q", tt.login, ae.FR, ae.EN)
		}
	}
	var hash string
	e.db.QueryRow("SELECT password_hash FROM assignments_teachers WHERE login = 'mmartin'").Scan(&hash)
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(hash, "correct") {
		t.Errorf("stored hash = %q", hash)
	}
	if err := e.svc.SetPassword(ctx, "nobody", "correct horse battery"); !errors.Is(err, ErrNoTeacher) {
		t.Errorf("SetPassword(unknown) = %v", err)
	}
}

func TestLoginAndSession(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if err := e.svc.CreateTeacher(ctx, "mmartin", "Mme Martin", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	// Teacher pages need a session.
	r := c.get("/enseignant/devoirs/nouveau")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/enseignant/connexion?suite=%2Fenseignant%2Fdevoirs%2Fnouveau" {
		t.Fatalf("anonymous GET: %d %q", r.status, r.header.Get("Location"))
	}
	tok := c.csrf("/enseignant/connexion?suite=/enseignant/devoirs/nouveau")

	// No CSRF token, a wrong one, or another origin: refused.
	for _, v := range []url.Values{
		{"identifiant": {"mmartin"}, "motdepasse": {"correct horse battery"}},
		{"csrf": {"x" + tok}, "identifiant": {"mmartin"}, "motdepasse": {"correct horse battery"}},
	} {
		if r := c.postForm("/enseignant/connexion", v); r.status != http.StatusForbidden {
			t.Errorf("login without the right token: status %d", r.status)
		}
	}
	req, _ := http.NewRequest("POST", c.base+"/enseignant/connexion", strings.NewReader(url.Values{"csrf": {tok}, "identifiant": {"mmartin"}, "motdepasse": {"correct horse battery"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	if r := c.do(req); r.status != http.StatusForbidden {
		t.Errorf("login from another origin: status %d", r.status)
	}

	// A wrong password, then the right one.
	r = c.postForm("/enseignant/connexion", url.Values{"csrf": {tok}, "identifiant": {"mmartin"}, "motdepasse": {"wrong password!"}})
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Identifiant ou mot de passe incorrect.") {
		t.Errorf("wrong password: status %d", r.status)
	}
	r = c.postForm("/enseignant/connexion", url.Values{"csrf": {tok}, "identifiant": {"MMartin"}, "motdepasse": {"correct horse battery"},
		"suite": {"/enseignant/devoirs/nouveau"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/enseignant/devoirs/nouveau" {
		t.Fatalf("login: %d %q %s", r.status, r.header.Get("Location"), r.body)
	}
	var cookie *http.Cookie
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == sessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/enseignant" || cookie.Secure {
		t.Errorf("session cookie = %+v, want HttpOnly, SameSite=Lax, Path=/enseignant, not Secure on http", cookie)
	}
	var stored string
	e.db.QueryRow("SELECT token_sha256 FROM assignments_sessions").Scan(&stored)
	if stored == cookie.Value || stored != tokenHash(cookie.Value) {
		t.Errorf("the session table must hold the token's hash only")
	}
	if r := c.get("/enseignant/"); r.status != http.StatusOK || !strings.Contains(r.body, "Connecté : Mme Martin") {
		t.Errorf("home after login: %d", r.status)
	}

	// A POST without the session's token is refused even with the cookie.
	if r := c.postForm("/enseignant/devoirs", url.Values{"titre": {"x"}}); r.status != http.StatusForbidden {
		t.Errorf("POST without csrf: status %d", r.status)
	}

	// An open redirect through suite is not possible.
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/enseignant//evil.example", "/devoirs/"} {
		if got := nextPath(next); got != "/enseignant/" {
			t.Errorf("nextPath(%q) = %q", next, got)
		}
	}

	// The session expires.
	e.advance(13 * time.Hour)
	if r := c.get("/enseignant/"); r.status != http.StatusSeeOther {
		t.Errorf("after 13 h: status %d, want a redirect to the login", r.status)
	}
	e.advance(-13 * time.Hour)

	// Log out ends the session on the server.
	tok2 := csrfPattern.FindStringSubmatch(c.get("/enseignant/").body)[1]
	if r := c.postForm("/enseignant/deconnexion", url.Values{"csrf": {tok2}}); r.status != http.StatusSeeOther {
		t.Errorf("logout: %d", r.status)
	}
	if n := e.count("assignments_sessions"); n != 0 {
		t.Errorf("%d sessions after logout", n)
	}
	stolen := e.client()
	u, _ := url.Parse(e.srv.URL + "/enseignant/")
	stolen.hc.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: cookie.Value, Path: "/enseignant"}})
	if r := stolen.get("/enseignant/"); r.status != http.StatusSeeOther {
		t.Errorf("old cookie after logout: status %d", r.status)
	}

	// A new password ends every session.
	c = e.teacher("mmartin")
	if err := e.svc.SetPassword(ctx, "mmartin", "another good password"); err != nil {
		t.Fatal(err)
	}
	if r := c.get("/enseignant/"); r.status != http.StatusSeeOther {
		t.Errorf("after a password change: status %d", r.status)
	}
}

func TestSecureCookieOnHTTPS(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.svc.CreateTeacher(context.Background(), "mmartin", "Mme Martin", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(e.svc.Handler())
	defer srv.Close()
	c := e.client()
	c.base = srv.URL
	c.hc.Transport = srv.Client().Transport
	tok := c.csrf("/enseignant/connexion")
	r := c.postForm("/enseignant/connexion", url.Values{"csrf": {tok}, "identifiant": {"mmartin"}, "motdepasse": {"correct horse battery"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("login over https: %d", r.status)
	}
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if !ck.Secure {
			t.Errorf("cookie %s over https is not Secure", ck.Name)
		}
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LoginFailures = 3 })
	ctx := context.Background()
	for _, l := range []string{"mmartin", "durand"} {
		if err := e.svc.CreateTeacher(ctx, l, l, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
	}
	c := e.client()
	tok := c.csrf("/enseignant/connexion")
	try := func(login, pw string) int {
		return c.postForm("/enseignant/connexion", url.Values{"csrf": {tok}, "identifiant": {login}, "motdepasse": {pw}}).status
	}
	for i := range 3 {
		if got := try("mmartin", "bad password "+string(rune('a'+i))); got != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", i, got)
		}
	}
	// The account is locked, even with the right password…
	r := c.postForm("/enseignant/connexion", url.Values{"csrf": {tok}, "identifiant": {"mmartin"}, "motdepasse": {"correct horse battery"}})
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Réessayez dans 15 minutes") {
		t.Errorf("locked account: status %d", r.status)
	}
	// …another account from the same address is not, until the address
	// reaches five times the limit.
	if got := try("durand", "correct horse battery"); got != http.StatusSeeOther {
		t.Errorf("other account: status %d", got)
	}
	for i := 0; i < 12; i++ { // 3 + 12 = 15 failures from this address
		try("user"+string(rune('a'+i)), "bad password")
	}
	if got := try("durand", "correct horse battery"); got != http.StatusTooManyRequests {
		t.Errorf("address over its limit: status %d", got)
	}
	// The window ends.
	e.advance(16 * time.Minute)
	if got := try("mmartin", "correct horse battery"); got != http.StatusSeeOther {
		t.Errorf("after the window: status %d", got)
	}
}

func TestCreateAssignmentForm(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowedKinds = []string{KindImage, KindPDF, KindText} })
	c := e.teacher("mmartin")
	page := c.get("/enseignant/devoirs/nouveau")
	if strings.Contains(page.body, `value="audio"`) || !strings.Contains(page.body, `value="image"`) {
		t.Errorf("kinds offered do not follow AllowedKinds")
	}
	tests := []struct {
		name string
		mod  func(url.Values)
		want string
	}{
		{"no title", func(v url.Values) { v.Set("titre", "  ") }, "Donnez un titre"},
		{"bad class", func(v url.Values) { v.Set("classe", "<CM2>") }, "Code de classe invalide"},
		{"bad date", func(v url.Values) { v.Set("echeance", "30/11/2026") }, "Date ou heure de rendu invalide"},
		{"bad time", func(v url.Values) { v.Set("heure", "25:00") }, "Date ou heure de rendu invalide"},
		{"unknown destination", func(v url.Values) { v.Set("destination", "ailleurs") }, "Choisissez une destination"},
		{"no kinds", func(v url.Values) { v.Del("types") }, "Cochez au moins un type"},
		{"kind not allowed", func(v url.Values) { v["types"] = []string{"audio"} }, "Cochez au moins un type"},
		{"size too big", func(v url.Values) { v.Set("taille", "21") }, "entre 1 et 20 Mo"},
		{"size zero", func(v url.Values) { v.Set("taille", "0") }, "entre 1 et 20 Mo"},
		{"instructions", func(v url.Values) { v.Set("consignes", strings.Repeat("x", 5001)) }, "5000 caractères au plus"},
	}
	for _, tt := range tests {
		v := url.Values{"csrf": {c.csrf("/enseignant/devoirs/nouveau")}, "titre": {"Poésie"}, "classe": {"CE1"},
			"echeance": {"2026-12-01"}, "heure": {"08:30"}, "destination": {"usb"}, "types": {"image", "pdf"}, "taille": {"5"}}
		tt.mod(v)
		r := c.postForm("/enseignant/devoirs", v)
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, tt.want) || !strings.Contains(r.body, "Le devoir n'a pas été créé") {
			t.Errorf("%s: status %d, want 422 with %q", tt.name, r.status, tt.want)
		}
		if !strings.Contains(r.body, `value="Poésie"`) && tt.name != "no title" {
			t.Errorf("%s: the form lost the title", tt.name)
		}
	}
	if n := e.count("assignments"); n != 0 {
		t.Fatalf("%d assignments after refusals", n)
	}
	id := e.newAssignment(c, func(v url.Values) {
		v.Set("classe", "  ce1   b ")
		v["types"] = []string{"image", "text"}
		v.Set("taille", "5")
		v.Set("refuser_retard", "1")
	})
	a, err := e.svc.assignmentByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	due := time.Date(2026, 11, 30, 18, 0, 0, 0, e.svc.cfg.Location)
	if a.Class != "CE1 B" || !a.Due.Equal(due) || a.MaxFileBytes != 5_000_000 || !a.RefuseLate ||
		strings.Join(a.Kinds, " ") != "image text" || a.Destination != "nuage-cm2" || a.Instructions != "Une page.\nAvec un dessin." {
		t.Errorf("stored assignment = %+v", a)
	}
	// Other teachers do not see it.
	other := e.teacher("durand")
	if r := other.get("/enseignant/devoirs/1"); r.status != http.StatusNotFound {
		t.Errorf("another teacher's assignment: status %d", r.status)
	}
	if r := other.get("/enseignant/"); strings.Contains(r.body, "Rédaction") {
		t.Errorf("another teacher's list shows the assignment")
	}
}

func TestNoDestination(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Destinations = nil })
	c := e.teacher("mmartin")
	if r := c.get("/enseignant/devoirs/nouveau"); !strings.Contains(r.body, "Aucune destination n'est configurée") || strings.Contains(r.body, `name="titre"`) {
		t.Errorf("form without destinations: %s", r.body)
	}
}

// TestTeacherLoginThroughAccounts: with Config.Authenticate (the box
// passes the console's accounts), the form checks passwords there only:
// the teacher's row is created at the first sign-in and renamed when the
// account's name changes; a refusal is the usual "incorrect" answer.
func TestTeacherLoginThroughAccounts(t *testing.T) {
	accounts := map[string][2]string{"mmartin": {"correct horse battery", "Mme Martin"}}
	var seenIP string
	e := newEnv(t, func(c *Config) {
		c.Authenticate = func(ctx context.Context, login, password, ip string) (string, bool, error) {
			seenIP = ip
			a, ok := accounts[login]
			return a[1], ok && a[0] == password, nil
		}
	})
	c := e.client()
	tok := c.csrf("/enseignant/connexion")
	r := c.postForm("/enseignant/connexion", url.Values{"csrf": {tok}, "identifiant": {"mmartin"}, "motdepasse": {"wrong password!"}})
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Identifiant ou mot de passe incorrect.") {
		t.Errorf("wrong password: status %d", r.status)
	}
	r = c.postForm("/enseignant/connexion", url.Values{"csrf": {tok}, "identifiant": {"MMartin"}, "motdepasse": {"correct horse battery"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	if seenIP == "" {
		t.Errorf("the client's address was not passed to the accounts")
	}
	var name, hash string
	if err := e.db.QueryRow("SELECT name, password_hash FROM assignments_teachers WHERE login = 'mmartin'").Scan(&name, &hash); err != nil || name != "Mme Martin" || hash != "!" {
		t.Errorf("teacher row: %q %q %v; want Mme Martin with no usable hash", name, hash, err)
	}
	accounts["mmartin"] = [2]string{"correct horse battery", "Mme Martin-Durand"}
	c2 := e.client()
	tok = c2.csrf("/enseignant/connexion")
	if r := c2.postForm("/enseignant/connexion", url.Values{"csrf": {tok}, "identifiant": {"mmartin"}, "motdepasse": {"correct horse battery"}}); r.status != http.StatusSeeOther {
		t.Fatalf("second login: %d", r.status)
	}
	e.db.QueryRow("SELECT name FROM assignments_teachers WHERE login = 'mmartin'").Scan(&name)
	if name != "Mme Martin-Durand" {
		t.Errorf("after a rename in the accounts, the row says %q", name)
	}
}
