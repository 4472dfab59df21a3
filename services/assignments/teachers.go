package assignments

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Error is a refusal a technician or teacher reads: Error returns the French
// text, English the English one. Code names the reason.
type Error struct {
	Code   string
	FR, EN string
	Err    error
}

func (e *Error) Error() string   { return e.FR }
func (e *Error) English() string { return e.EN }
func (e *Error) Unwrap() error   { return e.Err }

// Codes of Error.
const (
	CodeBadLogin      = "bad-login"
	CodeBadName       = "bad-name"
	CodeWeakPassword  = "weak-password"
	CodeTeacherExists = "teacher-exists"
	CodeNoTeacher     = "no-teacher"
)

// ErrTeacherExists is wrapped by CreateTeacher when the login is taken;
// ErrNoTeacher by SetPassword when it is unknown.
var (
	ErrTeacherExists = errors.New("assignments: teacher exists")
	ErrNoTeacher     = errors.New("assignments: no such teacher")
)

// Password rules.
const (
	MinPasswordRunes = 10
	maxPasswordBytes = 1024
)

var loginPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,63}$`)

func checkLogin(login string) (string, error) {
	l := strings.ToLower(strings.TrimSpace(login))
	if !loginPattern.MatchString(l) {
		return "", &Error{Code: CodeBadLogin,
			FR: fmt.Sprintf("identifiant %q refusé : de 2 à 64 lettres sans accent, chiffres, points, tirets ou soulignés, en commençant par une lettre ou un chiffre", login),
			EN: fmt.Sprintf("login %q refused: 2 to 64 unaccented letters, digits, dots, dashes or underscores, starting with a letter or a digit", login)}
	}
	return l, nil
}

func checkPassword(password string) error {
	if n := utf8.RuneCountInString(password); n < MinPasswordRunes || len(password) > maxPasswordBytes || !utf8.ValidString(password) {
		return &Error{Code: CodeWeakPassword,
			FR: fmt.Sprintf("mot de passe refusé : il faut au moins %d caractères (et au plus %d octets)", MinPasswordRunes, maxPasswordBytes),
			EN: fmt.Sprintf("password refused: it needs at least %d characters (and at most %d bytes)", MinPasswordRunes, maxPasswordBytes)}
	}
	return nil
}

// CreateTeacher adds a teacher's local account (the CLI calls it). login is
// kept in lower case; name is shown on the teacher's pages.
func (s *Service) CreateTeacher(ctx context.Context, login, name, password string) error {
	l, err := checkLogin(login)
	if err != nil {
		return err
	}
	name = strings.Join(strings.Fields(name), " ")
	if name == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) {
		return &Error{Code: CodeBadName, FR: "nom refusé : donnez de 1 à 100 caractères", EN: "name refused: give 1 to 100 characters"}
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return fmt.Errorf("create teacher %s: %w", l, err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO assignments_teachers (login, name, password_hash, created_at) VALUES (?, ?, ?, ?)`,
		l, name, hash, s.now().UnixMilli())
	if err != nil {
		if isUniqueViolation(err) {
			return &Error{Code: CodeTeacherExists, Err: ErrTeacherExists,
				FR: fmt.Sprintf("l'identifiant %s existe déjà : choisissez-en un autre ou changez son mot de passe", l),
				EN: fmt.Sprintf("login %s already exists: choose another one or change its password", l)}
		}
		return fmt.Errorf("create teacher %s: %w", l, err)
	}
	return nil
}

// SetPassword changes a teacher's password and ends their sessions.
func (s *Service) SetPassword(ctx context.Context, login, password string) error {
	l, err := checkLogin(login)
	if err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", l, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", l, err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowContext(ctx, "UPDATE assignments_teachers SET password_hash = ? WHERE login = ? RETURNING id", hash, l).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return &Error{Code: CodeNoTeacher, Err: ErrNoTeacher,
			FR: fmt.Sprintf("aucun enseignant n'a l'identifiant %s", l), EN: fmt.Sprintf("no teacher has the login %s", l)}
	}
	if err != nil {
		return fmt.Errorf("set password of %s: %w", l, err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM assignments_sessions WHERE teacher = ?", id); err != nil {
		return fmt.Errorf("set password of %s: %w", l, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("set password of %s: %w", l, err)
	}
	return nil
}

func isUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// Argon2id parameters: OWASP's minimum (19 MiB, 2 passes) keeps a login on
// a 1 GB board near 100 ms; hashing is limited to two at a time so that a
// burst of logins cannot take the box's memory.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

func (s *Service) acquireHashing(ctx context.Context) error {
	select {
	case s.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) releaseHashing() { <-s.hashing }

// hashPassword returns the PHC string of an argon2id hash of password.
func (s *Service) hashPassword(ctx context.Context, password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	if err := s.acquireHashing(ctx); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	s.releaseHashing()
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// checkHash reports whether password matches the PHC string; a malformed
// string never matches.
func (s *Service) checkHash(ctx context.Context, phc, password string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false, nil
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m < 8 || m > 1<<18 || t < 1 || t > 16 || p < 1 {
		return false, nil
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) < 16 || len(want) > 64 {
		return false, nil
	}
	if err := s.acquireHashing(ctx); err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	s.releaseHashing()
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is checked against when the login is unknown, so that the
// answer takes as long as for a known login.
var dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$" + base64.RawStdEncoding.EncodeToString(make([]byte, 32))

type teacher struct {
	ID          int64
	Login, Name string
}

// authenticate checks a login and password; ok is false when they do not
// match (the caller counts the failure).
func (s *Service) authenticate(ctx context.Context, login, password, ip string) (teacher, bool, error) {
	if s.cfg.Authenticate != nil {
		return s.authenticateOutside(ctx, login, password, ip)
	}
	var t teacher
	var hash string
	l := strings.ToLower(strings.TrimSpace(login))
	err := s.db.QueryRowContext(ctx, "SELECT id, login, name, password_hash FROM assignments_teachers WHERE login = ?", l).
		Scan(&t.ID, &t.Login, &t.Name, &hash)
	known := err == nil
	if errors.Is(err, sql.ErrNoRows) || len(password) > maxPasswordBytes {
		hash = dummyHash
	} else if err != nil {
		return teacher{}, false, fmt.Errorf("authenticate %s: %w", l, err)
	}
	ok, err := s.checkHash(ctx, hash, password)
	if err != nil {
		return teacher{}, false, fmt.Errorf("authenticate %s: %w", l, err)
	}
	return t, ok && known && len(password) <= maxPasswordBytes, nil
}

// authenticateOutside checks the password with Config.Authenticate and
// keeps the teacher's row (assignments and sessions refer to it) in step:
// created on the first sign-in, renamed when the account's name changed.
// The row's own hash is then unusable: a password is only ever checked
// by the accounts' owner.
func (s *Service) authenticateOutside(ctx context.Context, login, password, ip string) (teacher, bool, error) {
	l := strings.ToLower(strings.TrimSpace(login))
	if len(password) > maxPasswordBytes {
		return teacher{}, false, nil
	}
	name, ok, err := s.cfg.Authenticate(ctx, l, password, ip)
	if err != nil || !ok {
		return teacher{}, false, err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO assignments_teachers (login, name, password_hash, created_at)
		VALUES (?, ?, '!', ?) ON CONFLICT (login) DO UPDATE SET name = excluded.name`, l, name, s.now().UnixMilli()); err != nil {
		return teacher{}, false, fmt.Errorf("authenticate %s: %w", l, err)
	}
	var t teacher
	if err := s.db.QueryRowContext(ctx, "SELECT id, login, name FROM assignments_teachers WHERE login = ?", l).Scan(&t.ID, &t.Login, &t.Name); err != nil {
		return teacher{}, false, fmt.Errorf("authenticate %s: %w", l, err)
	}
	return t, true, nil
}

// session is a logged-in teacher.
type session struct {
	teacher
	CSRF string
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// newSession stores a session for t and returns the cookie's token.
func (s *Service) newSession(ctx context.Context, t teacher) (string, error) {
	token := randomToken(32)
	now := s.now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO assignments_sessions (token_sha256, teacher, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		tokenHash(token), t.ID, randomToken(24), now.UnixMilli(), now.Add(s.cfg.SessionTTL).UnixMilli())
	if err != nil {
		return "", fmt.Errorf("open session of %s: %w", t.Login, err)
	}
	return token, nil
}

// lookupSession returns the session of a cookie token; ok is false when it
// is unknown or expired.
func (s *Service) lookupSession(ctx context.Context, token string) (session, bool, error) {
	if token == "" || len(token) > 100 {
		return session{}, false, nil
	}
	var ss session
	err := s.db.QueryRowContext(ctx, `SELECT t.id, t.login, t.name, s.csrf FROM assignments_sessions s
		JOIN assignments_teachers t ON t.id = s.teacher WHERE s.token_sha256 = ? AND s.expires_at > ?`,
		tokenHash(token), s.now().UnixMilli()).Scan(&ss.ID, &ss.Login, &ss.Name, &ss.CSRF)
	if errors.Is(err, sql.ErrNoRows) {
		return session{}, false, nil
	}
	if err != nil {
		return session{}, false, fmt.Errorf("look up session: %w", err)
	}
	return ss, true, nil
}

func (s *Service) endSession(ctx context.Context, token string) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM assignments_sessions WHERE token_sha256 = ?", tokenHash(token)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// limiter counts failures per key in a fixed window that starts at the
// first failure. It is in memory: a restart forgives, which is fine for a
// school LAN and keeps the database free of attack noise.
type limiter struct {
	window time.Duration
	mu     sync.Mutex
	m      map[string]*failures
}

type failures struct {
	n     int
	until time.Time
}

// maxLimiterKeys bounds the memory an attacker cycling through keys can use;
// past it, expired entries are dropped, then the oldest windows.
const maxLimiterKeys = 10000

func newLimiter(window time.Duration) *limiter {
	return &limiter{window: window, m: map[string]*failures{}}
}

// blocked reports whether key reached limit failures; wait is how long until
// its window ends.
func (l *limiter) blocked(key string, limit int, now time.Time) (wait time.Duration, yes bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[key]
	if f == nil || !now.Before(f.until) {
		return 0, false
	}
	return f.until.Sub(now), f.n >= limit
}

func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[key]
	if f == nil || !now.Before(f.until) {
		if len(l.m) >= maxLimiterKeys {
			l.pruneLocked(now)
		}
		f = &failures{until: now.Add(l.window)}
		l.m[key] = f
	}
	f.n++
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}

func (l *limiter) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked(now)
}

func (l *limiter) pruneLocked(now time.Time) {
	for k, f := range l.m {
		if !now.Before(f.until) {
			delete(l.m, k)
		}
	}
	if len(l.m) < maxLimiterKeys {
		return
	}
	for k := range l.m { // still full: forget arbitrary entries
		if len(l.m) < maxLimiterKeys/2 {
			break
		}
		delete(l.m, k)
	}
}
