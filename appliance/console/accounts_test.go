package console

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // a word of the error, "" for valid
	}{
		{"defaults", Config{}, ""},
		{"networks", Config{Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, ""},
		{"bad language", Config{DefaultLanguage: "de"}, "DefaultLanguage"},
		{"invalid prefix", Config{Networks: []netip.Prefix{{}}}, "Networks[0]"},
		{"idle longer than lifetime", Config{IdleTimeout: 13 * time.Hour}, "IdleTimeout"},
		{"negative lock", Config{LockFor: -time.Minute}, "LockFor"},
		{"max lock below lock", Config{LockFor: time.Hour, MaxLock: time.Minute}, "MaxLock"},
		{"fast poll", Config{PollInterval: time.Millisecond}, "PollInterval"},
		{"ip limit below login limit", Config{LockAfter: 10, IPLockAfter: 5}, "IPLockAfter"},
		{"issuer with colon", Config{TOTPIssuer: "a:b"}, "TOTPIssuer"},
		{"two-line school", Config{SchoolName: "a\nb"}, "SchoolName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.WithDefaults().Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
	d := Config{}.WithDefaults()
	if d.IdleTimeout != 30*time.Minute || d.SessionLifetime != 12*time.Hour || d.LockAfter != 5 || d.LockFor != 15*time.Minute || d.PollInterval != 2*time.Second {
		t.Errorf("defaults = %+v", d)
	}
}

func TestNewNeedsDBAndSource(t *testing.T) {
	db := openDB(t, t.TempDir()+"/x.db")
	if _, err := New(Config{}, Deps{Source: &fakeSource{}}); err == nil {
		t.Error("New without DB: nil error")
	}
	if _, err := New(Config{}, Deps{DB: db}); err == nil {
		t.Error("New without Source: nil error")
	}
}

// assignmentsHash computes a hash exactly as services/assignments does
// (same parameters, same PHC layout), to prove the import keeps it.
func assignmentsHash(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, 2, 19*1024, 1, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, 19*1024, 2, 1, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func TestPasswordHashFormat(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.account("alice", RoleTechnicien)
	var phcHash string
	if err := h.db.QueryRow("SELECT password_hash FROM console_accounts WHERE login = 'alice'").Scan(&phcHash); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !want.MatchString(phcHash) {
		t.Errorf("stored hash %q, want the PHC format of services/assignments", phcHash)
	}
	if strings.Contains(phcHash, testPassword) {
		t.Error("hash contains the password")
	}

	// A teacher's hash moves over unchanged and still opens the account.
	teacher := assignmentsHash("mot de passe de classe")
	if _, err := h.c.ImportAccount(ctx, "Mme.Durand", "Mme Durand", RoleEnseignant, teacher); err != nil {
		t.Fatal(err)
	}
	var stored string
	h.db.QueryRow("SELECT password_hash FROM console_accounts WHERE login = 'mme.durand'").Scan(&stored)
	if stored != teacher {
		t.Errorf("imported hash changed: %q, want %q", stored, teacher)
	}
	a, err := h.c.Authenticate(ctx, "mme.durand", "mot de passe de classe", "10.0.0.9")
	if err != nil || a.Role != RoleEnseignant || a.Name != "Mme Durand" {
		t.Errorf("Authenticate(imported) = %+v, %v", a, err)
	}
}

func TestImportAccountRefusesBadHashes(t *testing.T) {
	h := newHarness(t)
	good := assignmentsHash("x")
	parts := strings.Split(good, "$")
	tests := []struct{ name, phc string }{
		{"empty", ""},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuv"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1)},
		{"old version", strings.Replace(good, "v=19", "v=16", 1)},
		{"huge memory", "$argon2id$v=19$m=9999999,t=2,p=1$" + parts[4] + "$" + parts[5]},
		{"many passes", "$argon2id$v=19$m=19456,t=99,p=1$" + parts[4] + "$" + parts[5]},
		{"trailing param", "$argon2id$v=19$m=19456,t=2,p=1,x=3$" + parts[4] + "$" + parts[5]},
		{"short key", "$argon2id$v=19$m=19456,t=2,p=1$" + parts[4] + "$AAAA"},
		{"bad base64", "$argon2id$v=19$m=19456,t=2,p=1$!!!$" + parts[5]},
		{"extra field", good + "$x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.c.ImportAccount(context.Background(), "prof", "Prof", RoleEnseignant, tt.phc)
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadHash {
				t.Errorf("ImportAccount(%q) = %v, want %s", tt.phc, err, CodeBadHash)
			}
		})
	}
}

func TestCreateAccountChecks(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.account("alice", RoleTechnicien)
	tests := []struct {
		name                 string
		login, display, pass string
		role                 Role
		wantCode             string
	}{
		{"ok", "bob", "Bob", testPassword, RoleDirection, ""},
		{"taken, other case", "ALICE", "Alice 2", testPassword, RoleDirection, CodeAccountExists},
		{"short password", "carol", "Carol", "court", RoleDirection, CodeWeakPassword},
		{"bad login", "é lève", "X", testPassword, RoleDirection, CodeBadLogin},
		{"empty name", "dave", "  ", testPassword, RoleDirection, CodeBadName},
		{"bad role", "erin", "Erin", testPassword, Role("admin"), CodeBadRole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.c.CreateAccount(ctx, tt.login, tt.display, tt.role, tt.pass)
			var e *Error
			switch {
			case tt.wantCode == "" && err != nil:
				t.Fatalf("CreateAccount = %v, want nil", err)
			case tt.wantCode != "" && (!errors.As(err, &e) || e.Code != tt.wantCode):
				t.Fatalf("CreateAccount = %v, want code %s", err, tt.wantCode)
			case tt.wantCode != "" && (e.FR == "" || e.EN == "" || e.FR == e.EN):
				t.Errorf("error texts FR %q EN %q: want both, different", e.FR, e.EN)
			}
		})
	}
	list, err := h.c.ListAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var logins []string
	for _, a := range list {
		logins = append(logins, a.Login+":"+string(a.Role))
	}
	if got, want := strings.Join(logins, ","), "alice:technicien,bob:direction"; got != want {
		t.Errorf("ListAccounts = %s, want %s", got, want)
	}
}

func TestAuthenticate(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.account("alice", RoleTechnicien)
	h.account("bob", RoleDirection)
	if err := h.c.DisableAccount(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, login, password string
		wantErr               error
	}{
		{"right", "alice", testPassword, nil},
		{"right, other case and spaces", "  Alice ", testPassword, nil},
		{"wrong password", "alice", "wrong password!", ErrBadCredentials},
		{"unknown login", "nobody", testPassword, ErrBadCredentials},
		{"disabled account", "bob", testPassword, ErrBadCredentials},
		{"empty", "", "", ErrBadCredentials},
		{"huge password", "alice", strings.Repeat("x", 5000), ErrBadCredentials},
	}
	var texts []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := h.c.Authenticate(ctx, tt.login, tt.password, "")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authenticate(%q) = %+v, %v, want %v", tt.login, a, err, tt.wantErr)
			}
			if err != nil {
				texts = append(texts, err.Error())
			} else if a.Login != "alice" {
				t.Errorf("account %+v", a)
			}
		})
	}
	// Unknown, disabled and wrong look the same.
	for _, s := range texts {
		if s != texts[0] {
			t.Errorf("refusals differ: %q vs %q", s, texts[0])
		}
	}
	if got := h.auditActions(); !strings.Contains(strings.Join(got, " "), "sign-in-failed") {
		t.Errorf("audit %v lacks sign-in-failed", got)
	}
}

func TestDisableLastTechnicien(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.account("alice", RoleTechnicien)
	if err := h.c.DisableAccount(ctx, "alice"); !errors.Is(err, ErrLastTechnicien) {
		t.Fatalf("disable last technicien = %v, want ErrLastTechnicien", err)
	}
	if err := h.c.SetRole(ctx, "alice", RoleDirection); !errors.Is(err, ErrLastTechnicien) {
		t.Fatalf("demote last technicien = %v, want ErrLastTechnicien", err)
	}
	h.account("bob", RoleTechnicien)
	if err := h.c.DisableAccount(ctx, "alice"); err != nil {
		t.Fatalf("disable with another technicien = %v", err)
	}
	if err := h.c.DisableAccount(ctx, "ghost"); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("disable unknown = %v, want ErrNoAccount", err)
	}
	if err := h.c.EnableAccount(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Authenticate(ctx, "alice", testPassword, ""); err != nil {
		t.Errorf("enabled account cannot sign in: %v", err)
	}
}

func TestSetPasswordEndsSessions(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn("alice", RoleTechnicien)
	if a := u.get("/console/"); a.status != 200 {
		t.Fatalf("dashboard %d", a.status)
	}
	if err := h.c.SetPassword(context.Background(), "alice", "a brand new password"); err != nil {
		t.Fatal(err)
	}
	if a := u.get("/console/"); a.status != 303 {
		t.Errorf("dashboard after password change: %d, want 303 to sign-in", a.status)
	}
	if _, err := h.c.Authenticate(context.Background(), "alice", "a brand new password", ""); err != nil {
		t.Errorf("new password refused: %v", err)
	}
}
