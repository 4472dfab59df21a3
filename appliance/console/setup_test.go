package console

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

var setupCodeRE = regexp.MustCompile(`^[2-9A-HJ-NP-Z]{4}(-[2-9A-HJ-NP-Z]{4}){3}$`)

func TestSetupCodeFormat(t *testing.T) {
	if bits := float64(setupSymbols) * math.Log2(float64(len(setupAlphabet))); bits < 60 {
		t.Errorf("setup code carries %.0f bits, want at least 60", bits)
	}
	if strings.ContainsAny(setupAlphabet, "01IO") {
		t.Errorf("alphabet %q has ambiguous symbols", setupAlphabet)
	}
	seen := map[string]bool{}
	for range 200 {
		c := newSetupCode()
		if !setupCodeRE.MatchString(c) {
			t.Fatalf("code %q: want XXXX-XXXX-XXXX-XXXX over the alphabet", c)
		}
		if seen[c] {
			t.Fatalf("code %q twice", c)
		}
		seen[c] = true
	}
	if setupHash("7kq4 m9tz-3hxc p2wa") != setupHash("7KQ4-M9TZ-3HXC-P2WA") {
		t.Error("case and separators change the code")
	}
}

func TestSetup(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	old, err := h.c.SetupCode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	code, err := h.c.SetupCode(ctx) // a restart prints a new one
	if err != nil {
		t.Fatal(err)
	}
	var n int
	h.db.QueryRow("SELECT count(*) FROM console_setup WHERE code_sha256 LIKE ?", "%"+code[:4]+"%").Scan(&n)
	if n != 0 {
		t.Error("setup code stored in clear")
	}

	u := h.newUser()
	a := u.get("/console/connexion")
	if !contains(a.body, "Créer le premier compte technicien") {
		t.Errorf("sign-in page of a fresh box does not offer setup:\n%s", text(a.body))
	}
	tok := u.csrf("/console/installation")
	form := func(code string) url.Values {
		return url.Values{"csrf": {tok}, "code": {code}, "identifiant": {"tech"}, "nom": {"Camille Technicienne"},
			"motdepasse": {testPassword}, "confirmation": {testPassword}}
	}
	if a := u.post("/console/installation", form(old)); a.status != http.StatusUnauthorized || !contains(a.body, "Code d'installation incorrect") {
		t.Errorf("replaced code: %d\n%s", a.status, text(a.body))
	}
	mismatch := form(code)
	mismatch.Set("confirmation", "something else entirely")
	if a := u.post("/console/installation", mismatch); a.status != http.StatusBadRequest || !contains(a.body, "différents") {
		t.Errorf("password mismatch: %d", a.status)
	}
	a = u.post("/console/installation", form(strings.ToLower(strings.ReplaceAll(code, "-", " "))))
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/?ok=setup" {
		t.Fatalf("right code: %d %q\n%s", a.status, a.header.Get("Location"), text(a.body))
	}
	if a := u.get("/console/?ok=setup"); a.status != 200 || !contains(a.body, "La console est installée") {
		t.Errorf("dashboard after setup: %d", a.status)
	}
	accounts, _ := h.c.ListAccounts(ctx)
	if len(accounts) != 1 || accounts[0].Role != RoleTechnicien || accounts[0].Login != "tech" {
		t.Errorf("accounts after setup: %+v", accounts)
	}
	// The code is burnt and no new one is made.
	if _, err := h.c.SetupCode(ctx); !errors.Is(err, ErrSetupDone) {
		t.Errorf("SetupCode after setup = %v, want ErrSetupDone", err)
	}
	other := h.newUser()
	if a := other.get("/console/installation"); a.status != http.StatusConflict {
		t.Errorf("setup page after setup: %d, want 409", a.status)
	}
	h.db.QueryRow("SELECT count(*) FROM console_setup").Scan(&n)
	if n != 0 {
		t.Error("setup code still stored")
	}
	if acts := strings.Join(h.auditActions(), " "); !strings.Contains(acts, "setup sign-in") {
		t.Errorf("audit %q", acts)
	}
}

func TestSetupLockOut(t *testing.T) {
	h := newHarness(t)
	if _, err := h.c.SetupCode(context.Background()); err != nil {
		t.Fatal(err)
	}
	u := h.newUser()
	tok := u.csrf("/console/installation")
	var a answer
	for range 5 {
		a = u.post("/console/installation", url.Values{"csrf": {tok}, "code": {"AAAA-AAAA-AAAA-AAAA"}, "identifiant": {"tech"},
			"nom": {"T"}, "motdepasse": {testPassword}, "confirmation": {testPassword}})
	}
	if a.status != http.StatusTooManyRequests || !contains(a.body, "Trop d'essais") {
		t.Errorf("5th wrong code: %d\n%s", a.status, text(a.body))
	}
}

func TestTOTP(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.signedIn("alice", RoleTechnicien)
	a := u.get("/console/compte/totp")
	if a.status != 200 || !strings.Contains(a.body, "otpauth://totp/") {
		t.Fatalf("enrolment page: %d\n%s", a.status, text(a.body))
	}
	secret, err := h.c.pendingSecret(ctx, "alice")
	if err != nil || secret == "" {
		t.Fatalf("pending secret %q, %v", secret, err)
	}
	if !contains(a.body, groupSecret(secret)) {
		t.Error("the page does not show the secret")
	}
	tok := u.csrf("/console/compte")
	if a := u.post("/console/compte/totp", url.Values{"csrf": {tok}, "code": {"000000"}}); a.status != http.StatusUnauthorized {
		t.Errorf("wrong enrolment code: %d", a.status)
	}
	code, _ := totp.GenerateCode(secret, h.clock.Now())
	if a := u.post("/console/compte/totp", url.Values{"csrf": {tok}, "code": {code}}); a.status != http.StatusSeeOther {
		t.Fatalf("enrolment: %d\n%s", a.status, text(a.body))
	}

	// Sign-in now asks for a code; the password alone opens nothing.
	v := h.newUser()
	tok = v.csrf("/console/connexion")
	a = v.post("/console/connexion", url.Values{"csrf": {tok}, "identifiant": {"alice"}, "motdepasse": {testPassword}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/connexion/code" {
		t.Fatalf("password step: %d %q", a.status, a.header.Get("Location"))
	}
	if a := v.get("/console/"); a.status != http.StatusSeeOther {
		t.Errorf("dashboard between password and code: %d, want 303", a.status)
	}
	if a := v.get("/api/v1/status"); a.status != http.StatusUnauthorized {
		t.Errorf("API between password and code: %d, want 401", a.status)
	}
	ctok := v.csrf("/console/connexion/code")
	// The enrolment's code was used: it cannot be replayed.
	if a := v.post("/console/connexion/code", url.Values{"csrf": {ctok}, "code": {code}}); a.status != http.StatusUnauthorized {
		t.Errorf("replayed code: %d, want 401", a.status)
	}
	h.clock.Advance(30 * time.Second)
	code2, _ := totp.GenerateCode(secret, h.clock.Now())
	if a := v.post("/console/connexion/code", url.Values{"csrf": {ctok}, "code": {code2}}); a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/" {
		t.Fatalf("right code: %d %q\n%s", a.status, a.header.Get("Location"), text(a.body))
	}
	if a := v.get("/console/"); a.status != 200 {
		t.Errorf("dashboard after the code: %d", a.status)
	}

	// The public API says a code is needed; wrong codes lock like passwords.
	acc, err := h.c.Authenticate(ctx, "alice", testPassword, "")
	if err != nil || !acc.TOTP {
		t.Fatalf("Authenticate = %+v, %v: want TOTP set", acc, err)
	}
	var lastErr error
	for range 5 {
		lastErr = h.c.VerifyTOTP(ctx, "alice", "123456", "")
	}
	if !errors.Is(lastErr, ErrLocked) {
		t.Errorf("5 wrong codes: %v, want ErrLocked", lastErr)
	}
	if err := h.c.DisableTOTP(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if acts := strings.Join(h.auditActions(), " "); !strings.Contains(acts, "totp-enable") || !strings.Contains(acts, "totp-disable") {
		t.Errorf("audit %q", acts)
	}
}

func TestMatchTOTPSkew(t *testing.T) {
	secret := "JBSWY3DPEHPK3PXP"
	now := time.Date(2026, 3, 9, 14, 32, 10, 0, time.UTC)
	step := now.Unix() / 30
	tests := []struct {
		name  string
		at    time.Time
		after int64
		want  bool
	}{
		{"now", now, 0, true},
		{"previous step", now.Add(-30 * time.Second), 0, true},
		{"next step", now.Add(30 * time.Second), 0, true},
		{"two steps old", now.Add(-60 * time.Second), 0, false},
		{"already used", now, step, false},
	}
	for _, tt := range tests {
		code, _ := totp.GenerateCode(secret, tt.at)
		if _, got := matchTOTP(secret, code, now, tt.after); got != tt.want {
			t.Errorf("%s: match = %v, want %v", tt.name, got, tt.want)
		}
	}
	if _, ok := matchTOTP("", "123456", now, 0); ok {
		t.Error("empty secret matched")
	}
}
