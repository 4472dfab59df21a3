package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Role is what an account may see. A technicien sees and does everything;
// direction sees the dashboard, the energy and the devices (read-only);
// enseignant sees nothing of the console (the account signs in to the
// portal's teacher pages).
type Role string

// Roles.
const (
	RoleTechnicien Role = "technicien"
	RoleDirection  Role = "direction"
	RoleEnseignant Role = "enseignant"
)

// Roles lists the roles, most powerful first.
var Roles = []Role{RoleTechnicien, RoleDirection, RoleEnseignant}

func (r Role) valid() bool {
	return r == RoleTechnicien || r == RoleDirection || r == RoleEnseignant
}

// rank orders roles for "at least" checks.
func (r Role) rank() int {
	switch r {
	case RoleTechnicien:
		return 3
	case RoleDirection:
		return 2
	case RoleEnseignant:
		return 1
	}
	return 0
}

// Account is a console account as the API lists it.
type Account struct {
	ID        int64
	Login     string
	Name      string
	Role      Role
	TOTP      bool // a TOTP code is asked at sign-in
	Disabled  bool
	CreatedAt time.Time
	LastLogin time.Time // zero: never
}

// Password rules (the same as the teachers' accounts of assignments).
const (
	MinPasswordRunes = 10
	maxPasswordBytes = 1024
)

var loginPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,63}$`)

// normLogin is the form a login is stored and counted under.
func normLogin(login string) string {
	l := strings.ToLower(strings.TrimSpace(login))
	if len(l) > 64 {
		l = l[:64]
	}
	return l
}

func checkLogin(login string) (string, error) {
	l := strings.ToLower(strings.TrimSpace(login))
	if !loginPattern.MatchString(l) {
		return "", invalid(CodeBadLogin,
			fmt.Sprintf("Identifiant %q refusé : de 2 à 64 lettres sans accent, chiffres, points, tirets ou soulignés, en commençant par une lettre ou un chiffre.", login),
			fmt.Sprintf("Login %q refused: 2 to 64 unaccented letters, digits, dots, dashes or underscores, starting with a letter or a digit.", login))
	}
	return l, nil
}

func checkName(name string) (string, error) {
	name = strings.Join(strings.Fields(name), " ")
	if name == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) {
		return "", invalid(CodeBadName, "Nom refusé : donnez de 1 à 100 caractères.", "Name refused: give 1 to 100 characters.")
	}
	return name, nil
}

func checkRole(r Role) error {
	if !r.valid() {
		return invalid(CodeBadRole,
			fmt.Sprintf("Rôle %q inconnu : technicien, direction ou enseignant.", string(r)),
			fmt.Sprintf("Unknown role %q: technicien, direction or enseignant.", string(r)))
	}
	return nil
}

func checkPassword(password string) error {
	if n := utf8.RuneCountInString(password); n < MinPasswordRunes || len(password) > maxPasswordBytes || !utf8.ValidString(password) {
		return invalid(CodeWeakPassword,
			fmt.Sprintf("Mot de passe refusé : il faut au moins %d caractères (et au plus %d octets).", MinPasswordRunes, maxPasswordBytes),
			fmt.Sprintf("Password refused: it needs at least %d characters (and at most %d bytes).", MinPasswordRunes, maxPasswordBytes))
	}
	return nil
}

func isUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// Argon2id parameters and PHC format: the same as services/assignments
// (OWASP's minimum, 19 MiB and 2 passes, about 100 ms on a 1 GB board), so
// that ImportAccount can take a teacher's hash over unchanged. Hashing is
// limited to two at a time so that a burst of sign-ins cannot take the
// box's memory.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

func (c *Console) acquireHashing(ctx context.Context) error {
	select {
	case c.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Console) releaseHashing() { <-c.hashing }

// hashPassword returns the PHC string of an argon2id hash of password.
func (c *Console) hashPassword(ctx context.Context, password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	if err := c.acquireHashing(ctx); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	c.releaseHashing()
	return formatPHC(salt, key, argonMemory, argonTime, argonThreads), nil
}

func formatPHC(salt, key []byte, m, t uint32, p uint8) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// phc is a parsed argon2id PHC string.
type phc struct {
	m, t      uint32
	p         uint8
	salt, key []byte
}

// parsePHC reads an argon2id PHC string with bounds that keep a forged
// hash from costing the box more than a few times a normal one.
func parsePHC(s string) (phc, bool) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return phc{}, false
	}
	var h phc
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.m, &h.t, &h.p); err != nil ||
		h.m < 8 || h.m > 1<<18 || h.t < 1 || h.t > 16 || h.p < 1 || h.p > 16 ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", h.m, h.t, h.p) { // nothing after, no leading zeros
		return phc{}, false
	}
	b64 := base64.RawStdEncoding.Strict() // one encoding per value
	var err1, err2 error
	h.salt, err1 = b64.DecodeString(parts[4])
	h.key, err2 = b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(h.salt) < 8 || len(h.salt) > 64 || len(h.key) < 16 || len(h.key) > 64 {
		return phc{}, false
	}
	return h, true
}

// checkHash reports whether password matches the PHC string; a malformed
// string never matches.
func (c *Console) checkHash(ctx context.Context, s, password string) (bool, error) {
	h, ok := parsePHC(s)
	if !ok {
		return false, nil
	}
	if err := c.acquireHashing(ctx); err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), h.salt, h.t, h.m, h.p, uint32(len(h.key)))
	c.releaseHashing()
	return subtle.ConstantTimeCompare(got, h.key) == 1, nil
}

// dummyPHC is a well-formed hash nobody knows the password of.
func dummyPHC() string {
	salt, key := make([]byte, argonSaltLen), make([]byte, argonKeyLen)
	rand.Read(salt)
	rand.Read(key)
	return formatPHC(salt, key, argonMemory, argonTime, argonThreads)
}

// actorSystem names actions that appliance or the CLI asked for.
const actorSystem = "système"

// CreateAccount adds an account (the CLI and the accounts page call it).
// login is kept in lower case; name is shown in the console's header.
func (c *Console) CreateAccount(ctx context.Context, login, name string, role Role, password string) (Account, error) {
	return c.createAccount(ctx, actorSystem, "", login, name, role, password)
}

func (c *Console) createAccount(ctx context.Context, actor, ip, login, name string, role Role, password string) (Account, error) {
	if err := checkPassword(password); err != nil {
		return Account{}, err
	}
	l, name, err := checkAccount(login, name, role)
	if err != nil {
		return Account{}, err
	}
	hash, err := c.hashPassword(ctx, password)
	if err != nil {
		return Account{}, fmt.Errorf("create account %s: %w", l, err)
	}
	a, err := c.insertAccount(ctx, c.db, l, name, role, hash)
	if err != nil {
		return Account{}, err
	}
	c.audit(ctx, actor, ActionAccountCreate, fmt.Sprintf("%s (%s, %s)", l, name, role), ip)
	return a, nil
}

// ImportAccount adds an account whose password hash exists already: an
// argon2id PHC string as services/assignments writes it, moved over
// unchanged so that the teacher keeps their password.
func (c *Console) ImportAccount(ctx context.Context, login, name string, role Role, phcHash string) (Account, error) {
	l, name, err := checkAccount(login, name, role)
	if err != nil {
		return Account{}, err
	}
	if _, ok := parsePHC(phcHash); !ok {
		return Account{}, invalid(CodeBadHash,
			"Empreinte de mot de passe refusée : il faut une chaîne argon2id au format PHC ($argon2id$v=19$m=…,t=…,p=…$sel$empreinte).",
			"Password hash refused: it must be an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash).")
	}
	a, err := c.insertAccount(ctx, c.db, l, name, role, phcHash)
	if err != nil {
		return Account{}, err
	}
	c.audit(ctx, actorSystem, ActionAccountImport, fmt.Sprintf("%s (%s, %s)", l, name, role), "")
	return a, nil
}

func checkAccount(login, name string, role Role) (string, string, error) {
	l, err := checkLogin(login)
	if err != nil {
		return "", "", err
	}
	if name, err = checkName(name); err != nil {
		return "", "", err
	}
	if err := checkRole(role); err != nil {
		return "", "", err
	}
	return l, name, nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (c *Console) insertAccount(ctx context.Context, db execer, l, name string, role Role, hash string) (Account, error) {
	now := c.now()
	res, err := db.ExecContext(ctx, `INSERT INTO console_accounts (login, name, role, password_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)`, l, name, string(role), hash, now.UnixMilli(), now.UnixMilli())
	if isUniqueViolation(err) {
		return Account{}, &Error{Code: CodeAccountExists, Err: ErrAccountExists,
			FR: fmt.Sprintf("L'identifiant %s existe déjà : choisissez-en un autre.", l),
			EN: fmt.Sprintf("The login %s already exists: choose another one.", l)}
	}
	if err != nil {
		return Account{}, fmt.Errorf("create account %s: %w", l, err)
	}
	id, _ := res.LastInsertId()
	return Account{ID: id, Login: l, Name: name, Role: role, CreatedAt: time.UnixMilli(now.UnixMilli())}, nil
}

// SetPassword changes an account's password and ends its sessions.
func (c *Console) SetPassword(ctx context.Context, login, password string) error {
	return c.setPassword(ctx, actorSystem, "", login, password)
}

func (c *Console) setPassword(ctx context.Context, actor, ip, login, password string) error {
	l := normLogin(login)
	if err := checkPassword(password); err != nil {
		return err
	}
	hash, err := c.hashPassword(ctx, password)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", l, err)
	}
	err = c.updateAccount(ctx, l, func(tx *sql.Tx, id int64) error {
		_, err := tx.ExecContext(ctx, "UPDATE console_accounts SET password_hash = ?, updated_at = ? WHERE id = ?", hash, c.now().UnixMilli(), id)
		return err
	})
	if err != nil {
		return err
	}
	c.audit(ctx, actor, ActionAccountPassword, l, ip)
	return nil
}

// updateAccount runs f on the account's id in a transaction that then
// ends the account's sessions.
func (c *Console) updateAccount(ctx context.Context, l string, f func(tx *sql.Tx, id int64) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update account %s: %w", l, err)
	}
	defer tx.Rollback()
	// Write first: the transaction takes SQLite's write lock at once.
	var id int64
	err = tx.QueryRowContext(ctx, "UPDATE console_accounts SET updated_at = updated_at WHERE login = ? RETURNING id", l).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return noAccount(l)
	}
	if err != nil {
		return fmt.Errorf("update account %s: %w", l, err)
	}
	if err := f(tx, id); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return err
		}
		return fmt.Errorf("update account %s: %w", l, err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM console_sessions WHERE account = ?", id); err != nil {
		return fmt.Errorf("update account %s: end sessions: %w", l, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update account %s: %w", l, err)
	}
	return nil
}

// DisableAccount stops an account from signing in and ends its sessions.
// The last active technicien account cannot be disabled.
func (c *Console) DisableAccount(ctx context.Context, login string) error {
	return c.setDisabled(ctx, actorSystem, "", login, true)
}

// EnableAccount lets a disabled account sign in again.
func (c *Console) EnableAccount(ctx context.Context, login string) error {
	return c.setDisabled(ctx, actorSystem, "", login, false)
}

func (c *Console) setDisabled(ctx context.Context, actor, ip, login string, disabled bool) error {
	l := normLogin(login)
	err := c.updateAccount(ctx, l, func(tx *sql.Tx, id int64) error {
		if disabled {
			if err := lastTechnicienGuard(ctx, tx, id); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "UPDATE console_accounts SET disabled_at = ?, updated_at = ? WHERE id = ? AND disabled_at IS NULL",
				c.now().UnixMilli(), c.now().UnixMilli(), id)
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE console_accounts SET disabled_at = NULL, updated_at = ? WHERE id = ?", c.now().UnixMilli(), id)
		return err
	})
	if err != nil {
		return err
	}
	action := ActionAccountEnable
	if disabled {
		action = ActionAccountDisable
	}
	c.audit(ctx, actor, action, l, ip)
	return nil
}

// SetRole changes an account's role and ends its sessions. The last
// active technicien keeps its role.
func (c *Console) SetRole(ctx context.Context, login string, role Role) error {
	return c.setRole(ctx, actorSystem, "", login, role)
}

func (c *Console) setRole(ctx context.Context, actor, ip, login string, role Role) error {
	if err := checkRole(role); err != nil {
		return err
	}
	l := normLogin(login)
	err := c.updateAccount(ctx, l, func(tx *sql.Tx, id int64) error {
		if role != RoleTechnicien {
			if err := lastTechnicienGuard(ctx, tx, id); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "UPDATE console_accounts SET role = ?, updated_at = ? WHERE id = ?", string(role), c.now().UnixMilli(), id)
		return err
	})
	if err != nil {
		return err
	}
	c.audit(ctx, actor, ActionAccountRole, fmt.Sprintf("%s → %s", l, role), ip)
	return nil
}

// lastTechnicienGuard refuses when id is the only active technicien.
func lastTechnicienGuard(ctx context.Context, tx *sql.Tx, id int64) error {
	var others int
	var self bool
	err := tx.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM console_accounts WHERE role = 'technicien' AND disabled_at IS NULL AND id != ?),
		(SELECT count(*) FROM console_accounts WHERE role = 'technicien' AND disabled_at IS NULL AND id = ?) > 0`, id, id).Scan(&others, &self)
	if err != nil {
		return err
	}
	if self && others == 0 {
		return lastTechnicien()
	}
	return nil
}

// accountCols lists the columns scanAccount reads, each prefixed with p
// (a table alias and its dot, or "").
func accountCols(p string) string {
	return fmt.Sprintf("%[1]sid, %[1]slogin, %[1]sname, %[1]srole, %[1]stotp_secret != '', %[1]sdisabled_at IS NOT NULL, %[1]screated_at, COALESCE(%[1]slast_login_at, 0)", p)
}

type rowScanner interface{ Scan(dest ...any) error }

func scanAccount(row rowScanner, extra ...any) (Account, error) {
	var a Account
	var role string
	var created, last int64
	dest := append([]any{&a.ID, &a.Login, &a.Name, &role, &a.TOTP, &a.Disabled, &created, &last}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Account{}, err
	}
	a.Role = Role(role)
	a.CreatedAt = time.UnixMilli(created)
	if last != 0 {
		a.LastLogin = time.UnixMilli(last)
	}
	return a, nil
}

// ListAccounts returns every account, by login.
func (c *Console) ListAccounts(ctx context.Context) ([]Account, error) {
	rows, err := c.db.QueryContext(ctx, "SELECT "+accountCols("")+" FROM console_accounts ORDER BY login")
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// account returns the account of l with its hash; ok is false when there
// is none.
func (c *Console) account(ctx context.Context, l string) (a Account, hash string, ok bool, err error) {
	row := c.db.QueryRowContext(ctx, "SELECT "+accountCols("")+", password_hash FROM console_accounts WHERE login = ?", l)
	a, err = scanAccount(row, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, "", false, nil
	}
	if err != nil {
		return Account{}, "", false, fmt.Errorf("read account %s: %w", l, err)
	}
	return a, hash, true, nil
}

// Authenticate checks a login and password for another service (the
// portal's teacher sign-in), with the console's lock-outs and audit. ip is
// the client's address ("" when unknown). The error is an *Error wrapping
// ErrBadCredentials (never saying whether the login exists) or ErrLocked.
// When the returned Account has TOTP set, the caller must also ask for a
// code and call VerifyTOTP before it lets the person in.
func (c *Console) Authenticate(ctx context.Context, login, password, ip string) (Account, error) {
	a, err := c.verifyPassword(ctx, login, password, ip)
	if err != nil {
		return Account{}, err
	}
	if !a.TOTP {
		c.signedIn(ctx, a, ip, "mot de passe vérifié pour un autre service")
	}
	return a, nil
}

// verifyPassword is Authenticate without the success entry: the console
// writes its own once the session is open.
func (c *Console) verifyPassword(ctx context.Context, login, password, ip string) (Account, error) {
	l := normLogin(login)
	if err := c.checkLocks(ctx, l, ip); err != nil {
		return Account{}, err
	}
	a, hash, known, err := c.account(ctx, l)
	if err != nil {
		return Account{}, fmt.Errorf("authenticate %s: %w", l, err)
	}
	usable := known && !a.Disabled && len(password) <= maxPasswordBytes
	if !usable {
		hash = c.dummyHash
	}
	ok, err := c.checkHash(ctx, hash, password)
	if err != nil {
		return Account{}, fmt.Errorf("authenticate %s: %w", l, err)
	}
	if !ok || !usable {
		return Account{}, c.signInFailed(ctx, l, ip, "mot de passe")
	}
	// With TOTP on, the failures are forgotten only once the code is
	// right too: knowing the password must not reset the count of wrong
	// codes.
	if !a.TOTP {
		if err := c.clearFailures(ctx, loginKey(l)); err != nil {
			return Account{}, fmt.Errorf("authenticate %s: %w", l, err)
		}
	}
	return a, nil
}

// signedIn records a successful sign-in.
func (c *Console) signedIn(ctx context.Context, a Account, ip, detail string) {
	if _, err := c.db.ExecContext(ctx, "UPDATE console_accounts SET last_login_at = ? WHERE id = ?", c.now().UnixMilli(), a.ID); err != nil {
		c.log.Warn("record last sign-in", "login", a.Login, "err", err)
	}
	c.audit(ctx, a.Login, ActionSignIn, detail, ip)
}
