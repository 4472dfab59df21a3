package console

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
	"net/http"
	"time"
)

// Cookie names. The session cookie holds a random 256-bit id; the
// pre-session CSRF cookie protects the sign-in and setup forms.
const (
	sessionCookie = "preau_console"
	preCSRFCookie = "preau_console_csrf"
)

// Session stages: a 'totp' session knows the password was right and waits
// for the code; it opens nothing else. It lasts totpStageTTL.
const (
	stageFull    = "full"
	stageTOTP    = "totp"
	totpStageTTL = 5 * time.Minute
)

// session is a signed-in account, as a request sees it.
type session struct {
	Account
	idHash string
	CSRF   string
	Stage  string
	// Token is set instead when the request came with a bearer API token.
	Token *APIToken
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

func constantTimeEqual(a, b string) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// openSession stores a new session of a, ending the session whose id the
// request carried (the id changes at sign-in: a planted id is worthless),
// and sets the cookie.
func (c *Console) openSession(w http.ResponseWriter, r *http.Request, a Account, stage string) (session, error) {
	ctx := r.Context()
	if old := sessionID(r); old != "" {
		if _, err := c.db.ExecContext(ctx, "DELETE FROM console_sessions WHERE id_sha256 = ?", tokenHash(old)); err != nil {
			return session{}, fmt.Errorf("open session of %s: %w", a.Login, err)
		}
	}
	id := randomToken(32)
	now := c.now()
	life := c.cfg.SessionLifetime
	if stage == stageTOTP {
		life = totpStageTTL
	}
	s := session{Account: a, idHash: tokenHash(id), CSRF: randomToken(32), Stage: stage}
	_, err := c.db.ExecContext(ctx, `INSERT INTO console_sessions (id_sha256, account, stage, csrf, ip, created_at, seen_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, s.idHash, a.ID, stage, s.CSRF, clientIP(r), now.UnixMilli(), now.UnixMilli(), now.Add(life).UnixMilli())
	if err != nil {
		return session{}, fmt.Errorf("open session of %s: %w", a.Login, err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.secure(r),
	})
	// The pre-session token has served its purpose.
	http.SetCookie(w, &http.Cookie{Name: preCSRFCookie, Value: "", Path: "/console", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.secure(r)})
	return s, nil
}

func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.cfg.SecureCookies }

func sessionID(r *http.Request) string {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || len(ck.Value) != 43 {
		return ""
	}
	return ck.Value
}

// lookupSession returns the session of the request's cookie; ok is false
// when there is none, it expired (idle or absolute) or its account is
// disabled. It refreshes the idle timer at most once a minute.
func (c *Console) lookupSession(ctx context.Context, r *http.Request) (session, bool, error) {
	id := sessionID(r)
	if id == "" {
		return session{}, false, nil
	}
	now := c.now()
	h := tokenHash(id)
	var s session
	var seen, expires int64
	row := c.db.QueryRowContext(ctx, "SELECT "+accountCols("a.")+`, s.csrf, s.stage, s.seen_at, s.expires_at
		FROM console_sessions s JOIN console_accounts a ON a.id = s.account WHERE s.id_sha256 = ?`, h)
	a, err := scanAccount(row, &s.CSRF, &s.Stage, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return session{}, false, nil
	}
	if err != nil {
		return session{}, false, fmt.Errorf("look up session: %w", err)
	}
	idle := c.cfg.IdleTimeout
	if s.Stage == stageTOTP {
		idle = totpStageTTL
	}
	if a.Disabled || now.UnixMilli() >= expires || now.UnixMilli()-seen >= idle.Milliseconds() {
		if _, err := c.db.ExecContext(ctx, "DELETE FROM console_sessions WHERE id_sha256 = ?", h); err != nil {
			return session{}, false, fmt.Errorf("end expired session: %w", err)
		}
		return session{}, false, nil
	}
	if now.UnixMilli()-seen >= time.Minute.Milliseconds() {
		if _, err := c.db.ExecContext(ctx, "UPDATE console_sessions SET seen_at = ? WHERE id_sha256 = ?", now.UnixMilli(), h); err != nil {
			return session{}, false, fmt.Errorf("refresh session: %w", err)
		}
	}
	s.Account, s.idHash = a, h
	return s, true, nil
}

// sessionAlive reports whether the session of idHash still exists and has
// not expired (the dashboard's socket checks it now and then).
func (c *Console) sessionAlive(ctx context.Context, idHash string) bool {
	now := c.now().UnixMilli()
	var n int
	err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM console_sessions s JOIN console_accounts a ON a.id = s.account
		WHERE s.id_sha256 = ? AND s.expires_at > ? AND s.seen_at > ? AND a.disabled_at IS NULL`,
		idHash, now, now-c.cfg.IdleTimeout.Milliseconds()).Scan(&n)
	return err == nil && n > 0
}

// endSession deletes the request's session and clears the cookie.
func (c *Console) endSession(w http.ResponseWriter, r *http.Request) error {
	if id := sessionID(r); id != "" {
		if _, err := c.db.ExecContext(r.Context(), "DELETE FROM console_sessions WHERE id_sha256 = ?", tokenHash(id)); err != nil {
			return fmt.Errorf("end session: %w", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.secure(r)})
	return nil
}
