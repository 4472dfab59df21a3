package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Lock-out keys. A login is counted whether or not it exists, so that a
// lock says nothing about which logins exist.
func loginKey(l string) string  { return "login:" + l }
func ipKey(ip string) string    { return "ip:" + ip }
func setupKey(ip string) string { return "setup:" + ip }

// lockedError is the refusal while key is locked until until.
func (c *Console) lockedError(key string, until time.Time) *Error {
	u, now := until.In(c.cfg.Location), c.now().In(c.cfg.Location)
	e := &Error{Code: CodeLocked, Err: ErrLocked, Until: until}
	if strings.HasPrefix(key, "login:") {
		e.FR = "Trop d'essais : compte verrouillé " + untilPhrase("fr", u, now) + "."
		e.EN = "Too many attempts: account locked " + untilPhrase("en", u, now) + "."
	} else {
		e.FR = "Trop d'essais depuis cet appareil : connexion bloquée " + untilPhrase("fr", u, now) + "."
		e.EN = "Too many attempts from this device: sign-in blocked " + untilPhrase("en", u, now) + "."
	}
	return e
}

// lockedUntil returns when key's lock ends, zero when it is not locked.
func (c *Console) lockedUntil(ctx context.Context, key string) (time.Time, error) {
	var until int64
	err := c.db.QueryRowContext(ctx, "SELECT locked_until FROM console_lockouts WHERE key = ?", key).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read lock-out of %s: %w", key, err)
	}
	if until <= c.now().UnixMilli() {
		return time.Time{}, nil
	}
	return time.UnixMilli(until), nil
}

// checkLocks refuses when the login or the address is locked; the lock
// that ends last is the one shown.
func (c *Console) checkLocks(ctx context.Context, l, ip string) error {
	keys := []string{loginKey(l)}
	if ip != "" {
		keys = append(keys, ipKey(ip))
	}
	var worst time.Time
	var worstKey string
	for _, k := range keys {
		until, err := c.lockedUntil(ctx, k)
		if err != nil {
			return err
		}
		if until.After(worst) {
			worst, worstKey = until, k
		}
	}
	if !worst.IsZero() {
		return c.lockedError(worstKey, worst)
	}
	return nil
}

// recordFailure counts one failure of key; limit failures within
// FailureWindow lock it. A lock lasts LockFor, twice the previous one when
// the previous lock ended less than MaxLock ago, at most MaxLock. It
// returns the lock's end when this failure locked key.
func (c *Console) recordFailure(ctx context.Context, key string, limit int) (time.Time, error) {
	now := c.now()
	ms := now.UnixMilli()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("count failure of %s: %w", key, err)
	}
	defer tx.Rollback()
	// Write first, so the transaction holds SQLite's write lock before it
	// reads (two concurrent failures then count as two).
	if _, err := tx.ExecContext(ctx, `INSERT INTO console_lockouts (key, failures, window_start, updated_at)
		VALUES (?, 0, ?, ?) ON CONFLICT (key) DO NOTHING`, key, ms, ms); err != nil {
		return time.Time{}, fmt.Errorf("count failure of %s: %w", key, err)
	}
	var failures, locks int
	var windowStart, lockedUntil int64
	if err := tx.QueryRowContext(ctx, "SELECT failures, window_start, locked_until, locks FROM console_lockouts WHERE key = ?", key).
		Scan(&failures, &windowStart, &lockedUntil, &locks); err != nil {
		return time.Time{}, fmt.Errorf("count failure of %s: %w", key, err)
	}
	if ms-windowStart > c.cfg.FailureWindow.Milliseconds() {
		failures, windowStart = 0, ms // a new window
	}
	failures++
	var until time.Time
	if failures >= limit {
		if lockedUntil != 0 && ms-lockedUntil > c.cfg.MaxLock.Milliseconds() {
			locks = 0 // the last lock is long past: start again from LockFor
		}
		d := c.cfg.LockFor
		for i := 0; i < locks && d < c.cfg.MaxLock; i++ {
			d *= 2
		}
		d = min(d, c.cfg.MaxLock)
		locks++
		until = now.Add(d)
		lockedUntil = until.UnixMilli()
		// Failures after the lock count afresh from its end.
		failures, windowStart = 0, lockedUntil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE console_lockouts SET failures = ?, window_start = ?, locked_until = ?, locks = ?, updated_at = ?
		WHERE key = ?`, failures, windowStart, lockedUntil, locks, ms, key); err != nil {
		return time.Time{}, fmt.Errorf("count failure of %s: %w", key, err)
	}
	if err := tx.Commit(); err != nil {
		return time.Time{}, fmt.Errorf("count failure of %s: %w", key, err)
	}
	return until, nil
}

// clearFailures forgets key's failures and locks (after a success).
func (c *Console) clearFailures(ctx context.Context, key string) error {
	if _, err := c.db.ExecContext(ctx, "DELETE FROM console_lockouts WHERE key = ?", key); err != nil {
		return fmt.Errorf("clear failures of %s: %w", key, err)
	}
	return nil
}

// signInFailed counts a failed sign-in (password or TOTP code) against the
// login and the address, writes the audit entries and returns the error to
// show: the lock when this failure locked either key, else what.
func (c *Console) signInFailed(ctx context.Context, l, ip, what string) error {
	untilLogin, err := c.recordFailure(ctx, loginKey(l), c.cfg.LockAfter)
	if err != nil {
		return err
	}
	var untilIP time.Time
	if ip != "" {
		if untilIP, err = c.recordFailure(ctx, ipKey(ip), c.cfg.IPLockAfter); err != nil {
			return err
		}
	}
	c.audit(ctx, l, ActionSignInFailed, what, ip)
	var locked *Error
	if !untilLogin.IsZero() {
		c.log.Warn("console login locked", "login", l, "ip", ip, "until", untilLogin)
		c.audit(ctx, l, ActionLockOut, "identifiant verrouillé jusqu'à "+untilLogin.In(c.cfg.Location).Format("2006-01-02 15:04"), ip)
		locked = c.lockedError(loginKey(l), untilLogin)
	}
	if !untilIP.IsZero() {
		c.log.Warn("console address locked", "ip", ip, "until", untilIP)
		c.audit(ctx, l, ActionLockOut, "adresse "+ip+" bloquée jusqu'à "+untilIP.In(c.cfg.Location).Format("2006-01-02 15:04"), ip)
		if locked == nil || untilIP.After(locked.Until) {
			locked = c.lockedError(ipKey(ip), untilIP)
		}
	}
	if locked != nil {
		return locked
	}
	if what == "code TOTP" {
		return badCode()
	}
	return badCredentials()
}
