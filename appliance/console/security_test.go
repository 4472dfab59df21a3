package console

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestLockOut(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.account("alice", RoleTechnicien)
	const ip = "10.20.0.99"
	fail := func() error {
		_, err := h.c.Authenticate(ctx, "alice", "not the password", ip)
		return err
	}
	for i := 1; i < 5; i++ {
		if err := fail(); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v, want ErrBadCredentials", i, err)
		}
	}
	err := fail()
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrLocked) {
		t.Fatalf("5th failure: %v, want ErrLocked", err)
	}
	if got, want := e.FR, "Trop d'essais : compte verrouillé jusqu'à 14 h 47."; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if got, want := e.EN, "Too many attempts: account locked until 2:47 pm."; got != want {
		t.Errorf("English message %q, want %q", got, want)
	}
	// The right password does not open a locked account.
	if _, err := h.c.Authenticate(ctx, "alice", testPassword, ip); !errors.Is(err, ErrLocked) {
		t.Errorf("right password while locked: %v, want ErrLocked", err)
	}
	// The lock survives a restart.
	h.start()
	if _, err := h.c.Authenticate(ctx, "alice", testPassword, "10.20.0.100"); !errors.Is(err, ErrLocked) {
		t.Errorf("after restart: %v, want ErrLocked", err)
	}
	h.clock.Advance(15*time.Minute + time.Second)
	if _, err := h.c.Authenticate(ctx, "alice", "not the password", ip); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("after the lock: %v, want ErrBadCredentials", err)
	}
	// The second lock in a row lasts twice as long.
	for range 3 {
		fail()
	}
	if err := fail(); !errors.As(err, &e) || !e.Until.Equal(h.clock.Now().Add(30*time.Minute)) {
		t.Fatalf("second lock: %v until %v, want 30 min", err, e.Until)
	}
	h.clock.Advance(31 * time.Minute)
	if _, err := h.c.Authenticate(ctx, "alice", testPassword, ip); err != nil {
		t.Fatalf("after the second lock, right password: %v", err)
	}
	acts := strings.Join(h.auditActions(), " ")
	if strings.Count(acts, ActionLockOut) != 2 {
		t.Errorf("audit %q: want two lock-outs", acts)
	}
}

// An unknown login locks the same way, so a lock reveals nothing.
func TestLockOutUnknownLogin(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	var err error
	for range 5 {
		_, err = h.c.Authenticate(ctx, "ghost", "whatever it is", "")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "compte verrouillé") {
		t.Errorf("unknown login after 5 failures: %v", err)
	}
}

func TestLockOutPerAddress(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.IPLockAfter = 6 })
	ctx := context.Background()
	h.account("alice", RoleTechnicien)
	var err error
	for i := range 6 {
		_, err = h.c.Authenticate(ctx, fmt.Sprintf("guess%d", i), "whatever it is", "10.0.0.7")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "depuis cet appareil") {
		t.Fatalf("6th failure from one address: %v, want an address lock", err)
	}
	if _, err := h.c.Authenticate(ctx, "alice", testPassword, "10.0.0.7"); !errors.Is(err, ErrLocked) {
		t.Errorf("right password from the locked address: %v", err)
	}
	if _, err := h.c.Authenticate(ctx, "alice", testPassword, "10.0.0.8"); err != nil {
		t.Errorf("right password from another address: %v", err)
	}
}

func TestLockMessageOtherDay(t *testing.T) {
	now := time.Date(2026, 3, 9, 23, 50, 0, 0, time.UTC)
	until := now.Add(30 * time.Minute)
	tests := []struct{ lang, want string }{
		{"fr", "jusqu'au 10 mars à 0 h 20"},
		{"en", "until 10 March at 12:20 am"},
	}
	for _, tt := range tests {
		if got := untilPhrase(tt.lang, until, now); got != tt.want {
			t.Errorf("untilPhrase(%s) = %q, want %q", tt.lang, got, tt.want)
		}
	}
}

func TestSignInPageLockOut(t *testing.T) {
	h := newHarness(t)
	h.account("alice", RoleTechnicien)
	u := h.newUser()
	tok := u.csrf("/console/connexion")
	var a answer
	for range 5 {
		a = u.post("/console/connexion", url.Values{"csrf": {tok}, "identifiant": {"alice"}, "motdepasse": {"bad password!"}})
	}
	if a.status != http.StatusTooManyRequests || !contains(a.body, "Trop d'essais : compte verrouillé jusqu'à 14 h 47.") {
		t.Errorf("5th failure: %d\n%s", a.status, text(a.body))
	}
}

func TestSessionLifetime(t *testing.T) {
	h := newHarness(t)
	h.account("alice", RoleTechnicien)

	// Idle: 30 minutes without a request ends the session.
	u := h.newUser()
	u.signIn("alice", testPassword)
	h.clock.Advance(29 * time.Minute)
	if a := u.get("/console/"); a.status != 200 {
		t.Fatalf("after 29 min: %d", a.status)
	}
	h.clock.Advance(29 * time.Minute) // 29 min after the last request
	if a := u.get("/console/"); a.status != 200 {
		t.Fatalf("29 min after the last use: %d", a.status)
	}
	h.clock.Advance(31 * time.Minute)
	if a := u.get("/console/"); a.status != http.StatusSeeOther {
		t.Fatalf("31 min idle: %d, want 303", a.status)
	}

	// Absolute: 12 hours, however active.
	u = h.newUser()
	u.signIn("alice", testPassword)
	for i := 0; i < 23; i++ {
		h.clock.Advance(30*time.Minute - time.Second)
		if a := u.get("/console/"); a.status != 200 {
			t.Fatalf("active, after %d steps: %d", i+1, a.status)
		}
	}
	h.clock.Advance(30 * time.Minute)
	if a := u.get("/console/"); a.status != http.StatusSeeOther {
		t.Fatalf("after 12 h: %d, want 303", a.status)
	}
}

func TestSessionCookieAndRotation(t *testing.T) {
	h := newHarness(t)
	h.account("alice", RoleTechnicien)
	u := h.newUser()

	// A session id planted before sign-in is replaced.
	planted := randomToken(32)
	srvURL, _ := url.Parse(h.srv.URL)
	u.http.Jar.SetCookies(srvURL, []*http.Cookie{{Name: sessionCookie, Value: planted, Path: "/"}})
	tok := u.csrf("/console/connexion")
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/console/connexion",
		strings.NewReader(url.Values{"csrf": {tok}, "identifiant": {"alice"}, "motdepasse": {testPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := u.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var set *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			set = c
		}
	}
	if set == nil {
		t.Fatal("no session cookie set at sign-in")
	}
	if set.Value == planted || len(set.Value) != 43 {
		t.Errorf("session id %q: want a new 256-bit id", set.Value)
	}
	if !set.HttpOnly || set.SameSite != http.SameSiteStrictMode || set.Path != "/" || set.Secure {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure on plain HTTP", set)
	}
	var n int
	h.db.QueryRow("SELECT count(*) FROM console_sessions WHERE id_sha256 = ?", set.Value).Scan(&n)
	if n != 0 {
		t.Error("the session id is stored in clear")
	}
	h.db.QueryRow("SELECT count(*) FROM console_sessions WHERE id_sha256 = ?", tokenHash(set.Value)).Scan(&n)
	if n != 1 {
		t.Error("the session's hash is not stored")
	}

	// Signing in again rotates the id; the old one stops working.
	first := u.cookie(sessionCookie).Value
	tok = u.csrf("/console/")
	if a := u.post("/console/connexion", url.Values{"csrf": {tok}, "identifiant": {"alice"}, "motdepasse": {testPassword}}); a.status != http.StatusSeeOther {
		t.Fatalf("second sign-in: %d", a.status)
	}
	second := u.cookie(sessionCookie).Value
	if first == second {
		t.Error("sign-in kept the session id")
	}
	old := h.newUser()
	old.http.Jar.SetCookies(srvURL, []*http.Cookie{{Name: sessionCookie, Value: first, Path: "/"}})
	if a := old.get("/console/"); a.status != http.StatusSeeOther {
		t.Errorf("old session id after rotation: %d, want 303", a.status)
	}

	// Secure over TLS, and when the config says so.
	for _, tt := range []struct {
		name   string
		tls    bool
		force  bool
		secure bool
	}{{"tls", true, false, true}, {"config", false, true, true}, {"plain", false, false, false}} {
		h.cfg.SecureCookies = tt.force
		h.start()
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/console/connexion", nil)
		if tt.tls {
			r.TLS = &tls.ConnectionState{}
		}
		h.c.Handler().ServeHTTP(rec, r)
		for _, c := range rec.Result().Cookies() {
			if c.Secure != tt.secure {
				t.Errorf("%s: cookie %s Secure=%v, want %v", tt.name, c.Name, c.Secure, tt.secure)
			}
		}
	}
}

func TestSignOut(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn("alice", RoleTechnicien)
	tok := u.csrf("/console/")
	if a := u.post("/console/deconnexion", url.Values{"csrf": {tok}}); a.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", a.status)
	}
	if a := u.get("/console/"); a.status != http.StatusSeeOther {
		t.Errorf("after sign-out: %d, want 303", a.status)
	}
	var n int
	h.db.QueryRow("SELECT count(*) FROM console_sessions").Scan(&n)
	if n != 0 {
		t.Errorf("%d sessions left after sign-out", n)
	}
}

func TestCSRF(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn("alice", RoleTechnicien)
	tok := u.csrf("/console/comptes")
	form := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "identifiant": {"bob"}, "nom": {"Bob"}, "role": {"direction"}, "motdepasse": {testPassword}}
	}
	send := func(f url.Values, headers map[string]string) answer {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/console/comptes", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		return u.do(req)
	}
	tests := []struct {
		name    string
		form    url.Values
		headers map[string]string
		want    int
	}{
		{"no token", form(""), nil, 403},
		{"wrong token", form(randomToken(32)), nil, 403},
		{"cross-site", form(tok), map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site", form(tok), map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"other origin", form(tok), map[string]string{"Origin": "http://evil.example"}, 403},
		{"null origin", form(tok), map[string]string{"Origin": "null"}, 403},
		{"right token, same origin", form(tok), map[string]string{"Origin": h.srv.URL, "Sec-Fetch-Site": "same-origin"}, 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := send(tt.form, tt.headers)
			if a.status != tt.want {
				t.Fatalf("status %d, want %d\n%s", a.status, tt.want, text(a.body))
			}
			if tt.want == 403 && !contains(a.body, "Demande refusée") {
				t.Errorf("refusal page lacks its French title:\n%s", text(a.body))
			}
		})
	}
	accounts, _ := h.c.ListAccounts(context.Background())
	if len(accounts) != 2 {
		t.Errorf("%d accounts, want 2: only the right request creates one", len(accounts))
	}

	// The JSON API takes the token in a header; a refusal is JSON.
	put := func(token string) answer {
		req, _ := http.NewRequest(http.MethodPut, h.srv.URL+"/api/v1/devices/F0-18-98-00-00-01/class", strings.NewReader(`{"class":"laptop"}`))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("X-CSRF-Token", token)
		}
		return u.do(req)
	}
	a := put("")
	var apiErr apiError
	if a.status != 403 || json.Unmarshal([]byte(a.body), &apiErr) != nil || apiErr.Error != "csrf" || !strings.Contains(apiErr.Message, "Demande refusée") {
		t.Errorf("PUT without token: %d %s", a.status, a.body)
	}
	if a := put(tok); a.status != 200 || !strings.Contains(a.body, `"laptop"`) {
		t.Errorf("PUT with token: %d %s", a.status, a.body)
	}
	if got := strings.Join(h.devs.set, ","); got != "f0:18:98:00:00:01 laptop alice" {
		t.Errorf("SetClass calls %q", got)
	}
}

// The sign-in form itself is protected (login CSRF).
func TestSignInCSRF(t *testing.T) {
	h := newHarness(t)
	h.account("alice", RoleTechnicien)
	u := h.newUser()
	a := u.post("/console/connexion", url.Values{"identifiant": {"alice"}, "motdepasse": {testPassword}})
	if a.status != 403 {
		t.Errorf("sign-in without token: %d, want 403", a.status)
	}
	if u.cookie(sessionCookie) != nil {
		t.Error("a session was opened without token")
	}
}

func TestNetworkRestriction(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Networks = []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd00::/8")}
	})
	tests := []struct {
		remote string
		path   string
		want   int
	}{
		{"10.20.3.4:5555", "/console/connexion", 200},
		{"[fd00::5]:5555", "/console/connexion", 200},
		{"[::ffff:10.20.0.9]:5555", "/console/connexion", 200},
		{"192.168.1.20:5555", "/console/connexion", 403},
		{"192.168.1.20:5555", "/api/v1/status", 403},
		{"192.168.1.20:5555", "/console/static/nothing.css", 403},
		{"10.20.3.4:5555", "/console/", 303}, // allowed network, still needs a session
	}
	for _, tt := range tests {
		t.Run(tt.remote+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, tt.path, nil)
			r.RemoteAddr = tt.remote
			h.c.Handler().ServeHTTP(rec, r)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d", rec.Code, tt.want)
			}
			if tt.want == 403 && !strings.Contains(text(rec.Body.String()), "Console inaccessible depuis ce réseau") {
				t.Errorf("refusal lacks the message:\n%s", rec.Body.String())
			}
		})
	}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestAPITokens(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.account("alice", RoleTechnicien)
	secret, tok, err := h.c.CreateAPIToken(ctx, "supervision", RoleDirection, "alice")
	if err != nil {
		t.Fatal(err)
	}
	full, _, err := h.c.CreateAPIToken(ctx, "scripts", RoleTechnicien, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "preau_") || len(secret) != 49 {
		t.Errorf("token %q", secret)
	}
	var n int
	h.db.QueryRow("SELECT count(*) FROM console_tokens WHERE token_sha256 = ? OR name = ?", secret, secret).Scan(&n)
	if n != 0 {
		t.Error("token stored in clear")
	}
	call := func(method, path, bearer string) int {
		req, _ := http.NewRequest(method, h.srv.URL+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name, method, path, bearer string
		want                       int
	}{
		{"read token reads status", "GET", "/api/v1/status", secret, 200},
		{"read token reads devices", "GET", "/api/v1/devices", secret, 200},
		{"read token reads energy", "GET", "/api/v1/energy", secret, 200},
		{"read token cannot read audit", "GET", "/api/v1/audit", secret, 403},
		{"full token reads audit", "GET", "/api/v1/audit", full, 200},
		{"full token reads update", "GET", "/api/v1/update", full, 200},
		{"no token", "GET", "/api/v1/status", "", 401},
		{"unknown token", "GET", "/api/v1/status", "preau_" + randomToken(32), 401},
		{"garbage", "GET", "/api/v1/status", "xyz", 401},
		{"token on a console page", "GET", "/console/", secret, 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := call(tt.method, tt.path, tt.bearer); got != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, got, tt.want)
			}
		})
	}
	// A token write needs no CSRF token (it carries no cookie).
	req, _ := http.NewRequest(http.MethodPut, h.srv.URL+"/api/v1/devices/f0:18:98:00:00:01/class", strings.NewReader(`{"class":"laptop"}`))
	req.Header.Set("Authorization", "Bearer "+full)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("PUT with full token: %d", resp.StatusCode)
	}
	if err := h.c.RevokeAPIToken(ctx, tok.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if got := call("GET", "/api/v1/status", secret); got != 401 {
		t.Errorf("revoked token: %d, want 401", got)
	}
	list, _ := h.c.ListAPITokens(ctx)
	if len(list) != 2 || !list[1].Revoked || list[1].UsedAt.IsZero() {
		t.Errorf("tokens %+v: want 2, the first revoked and used", list)
	}
	acts := strings.Join(h.auditActions(), " ")
	if !strings.Contains(acts, "token-create token-create") || !strings.Contains(acts, "token-revoke") {
		t.Errorf("audit %q", acts)
	}
}

func TestAudit(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.signedIn("alice", RoleTechnicien)
	if err := h.c.Audit(ctx, "firmware", "update-apply", "version 1.5.0", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Audit(ctx, "x", "", "", ""); err == nil {
		t.Error("Audit with empty action: nil error")
	}
	h.c.Authenticate(ctx, "alice", "bad password!", "10.0.0.2")
	tok := u.csrf("/console/comptes")
	u.post("/console/comptes", url.Values{"csrf": {tok}, "identifiant": {"dir"}, "nom": {"La directrice"}, "role": {"direction"}, "motdepasse": {testPassword}})
	want := []string{"account-create", "sign-in", "update-apply", "sign-in-failed", "account-create"}
	if got := h.auditActions(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("audit actions %v, want %v", got, want)
	}
	a := u.get("/console/journal")
	if a.status != 200 || !contains(a.body, "échec de connexion") || !contains(a.body, "version 1.5.0") {
		t.Errorf("audit page: %d\n%s", a.status, text(a.body))
	}
	a = u.get("/api/v1/audit?limit=2")
	var got struct{ Entries []AuditEntry }
	if err := json.Unmarshal([]byte(a.body), &got); err != nil || len(got.Entries) != 2 || got.Entries[0].Detail != "dir (La directrice, direction)" {
		t.Errorf("/api/v1/audit: %d %s", a.status, a.body)
	}
	// Control characters cannot forge lines.
	h.c.Audit(ctx, "evil\nactor", "x", "a\r\nb", "")
	e, _ := h.c.AuditLog(ctx, AuditQuery{Limit: 1})
	if strings.ContainsAny(e[0].Actor+e[0].Detail, "\r\n") {
		t.Errorf("entry %+v keeps control characters", e[0])
	}
	// Direction does not see the log.
	d := h.signedIn("dir2", RoleDirection)
	if a := d.get("/console/journal"); a.status != 403 {
		t.Errorf("direction on the audit page: %d, want 403", a.status)
	}
}

func TestHousekeeping(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn("alice", RoleTechnicien)
	_ = u
	h.c.Audit(context.Background(), "x", "old", "", "")
	h.clock.Advance(401 * 24 * time.Hour)
	h.c.housekeeping(context.Background())
	var sessions, audit int
	h.db.QueryRow("SELECT count(*) FROM console_sessions").Scan(&sessions)
	h.db.QueryRow("SELECT count(*) FROM console_audit").Scan(&audit)
	if sessions != 0 || audit != 0 {
		t.Errorf("after housekeeping: %d sessions, %d audit entries, want 0 and 0", sessions, audit)
	}
}
