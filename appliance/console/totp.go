package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP settings: the usual authenticator defaults (RFC 6238, SHA-1, six
// digits, 30 s), which every app supports; one step of clock skew either
// way is accepted.
const (
	totpPeriod = 30
	totpSkew   = 1
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Skew: totpSkew, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPEnrolment is what the enrolment page shows: the secret to type into
// an authenticator app, and the otpauth URI for apps that take one.
type TOTPEnrolment struct {
	Secret string
	URI    string
}

// BeginTOTP makes a new TOTP secret for login and keeps it pending until
// ConfirmTOTP proves the app has it. A second call replaces it.
func (c *Console) BeginTOTP(ctx context.Context, login string) (TOTPEnrolment, error) {
	l := normLogin(login)
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: c.cfg.TOTPIssuer, AccountName: l, Period: totpPeriod, SecretSize: 20,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("begin totp of %s: %w", l, err)
	}
	res, err := c.db.ExecContext(ctx, "UPDATE console_accounts SET totp_pending = ? WHERE login = ? AND disabled_at IS NULL", key.Secret(), l)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("begin totp of %s: %w", l, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return TOTPEnrolment{}, noAccount(l)
	}
	return TOTPEnrolment{Secret: key.Secret(), URI: totpURI(c.cfg.TOTPIssuer, l, key.Secret())}, nil
}

// ConfirmTOTP turns TOTP on for login when code matches the pending
// secret; from then on a code is asked at every sign-in.
func (c *Console) ConfirmTOTP(ctx context.Context, login, code string) error {
	return c.confirmTOTP(ctx, actorSystem, "", login, code)
}

func (c *Console) confirmTOTP(ctx context.Context, actor, ip, login, code string) error {
	l := normLogin(login)
	var pending string
	err := c.db.QueryRowContext(ctx, "SELECT totp_pending FROM console_accounts WHERE login = ?", l).Scan(&pending)
	if errors.Is(err, sql.ErrNoRows) {
		return noAccount(l)
	}
	if err != nil {
		return fmt.Errorf("confirm totp of %s: %w", l, err)
	}
	step, ok := matchTOTP(pending, code, c.now(), 0)
	if pending == "" || !ok {
		return badCode()
	}
	if _, err := c.db.ExecContext(ctx, `UPDATE console_accounts SET totp_secret = totp_pending, totp_pending = '', totp_last_step = ?, updated_at = ?
		WHERE login = ? AND totp_pending = ?`, step, c.now().UnixMilli(), l, pending); err != nil {
		return fmt.Errorf("confirm totp of %s: %w", l, err)
	}
	c.audit(ctx, actor, ActionTOTPEnable, l, ip)
	return nil
}

// DisableTOTP turns TOTP off for login.
func (c *Console) DisableTOTP(ctx context.Context, login string) error {
	return c.disableTOTP(ctx, actorSystem, "", login)
}

func (c *Console) disableTOTP(ctx context.Context, actor, ip, login string) error {
	l := normLogin(login)
	res, err := c.db.ExecContext(ctx, "UPDATE console_accounts SET totp_secret = '', totp_pending = '', totp_last_step = 0, updated_at = ? WHERE login = ?",
		c.now().UnixMilli(), l)
	if err != nil {
		return fmt.Errorf("disable totp of %s: %w", l, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return noAccount(l)
	}
	c.audit(ctx, actor, ActionTOTPDisable, l, ip)
	return nil
}

// VerifyTOTP checks the code of an account that has TOTP on, after
// Authenticate accepted its password. A code is accepted once; wrong codes
// count towards the lock-out like wrong passwords.
func (c *Console) VerifyTOTP(ctx context.Context, login, code, ip string) error {
	l := normLogin(login)
	if err := c.checkLocks(ctx, l, ip); err != nil {
		return err
	}
	var secret string
	var last int64
	err := c.db.QueryRowContext(ctx, "SELECT totp_secret, totp_last_step FROM console_accounts WHERE login = ? AND disabled_at IS NULL", l).Scan(&secret, &last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("verify totp of %s: %w", l, err)
	}
	step, ok := matchTOTP(secret, code, c.now(), last)
	if secret == "" || !ok {
		return c.signInFailed(ctx, l, ip, "code TOTP")
	}
	// The step only moves forward, so a code seen by someone else cannot
	// be replayed within its 90 s of validity.
	res, err := c.db.ExecContext(ctx, "UPDATE console_accounts SET totp_last_step = ? WHERE login = ? AND totp_last_step < ?", step, l, step)
	if err != nil {
		return fmt.Errorf("verify totp of %s: %w", l, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return c.signInFailed(ctx, l, ip, "code TOTP")
	}
	return c.clearFailures(ctx, loginKey(l))
}

// matchTOTP returns the time step whose code is code, within the skew,
// later than after.
func matchTOTP(secret, code string, now time.Time, after int64) (int64, bool) {
	code = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, code)
	if secret == "" || len(code) != 6 {
		return 0, false
	}
	cur := now.Unix() / totpPeriod
	found, step := false, int64(0)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		s := cur + d
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, false
		}
		if constantTimeEqual(want, code) && s > after && !found {
			found, step = true, s
		}
	}
	return step, found
}
