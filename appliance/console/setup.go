package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// setupAlphabet has no 0/O or 1/I, which people misread in a journal.
// 32 symbols: 5 bits each.
const setupAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

// setupSymbols is the code's length: 16 × 5 = 80 bits.
const setupSymbols = 16

// newSetupCode returns a code such as "7KQ4-M9TZ-3HXC-P2WA".
func newSetupCode() string {
	var b strings.Builder
	buf := make([]byte, setupSymbols)
	rand.Read(buf)
	for i, x := range buf {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(setupAlphabet[int(x)%len(setupAlphabet)]) // 256 is a multiple of 32: no bias
	}
	return b.String()
}

// normSetupCode drops separators and case, so "7kq4 m9tz…" matches.
func normSetupCode(s string) string {
	s = strings.ToUpper(s)
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' || r == '\t' || r == '.' {
			return -1
		}
		return r
	}, s)
}

func setupHash(code string) string {
	sum := sha256.Sum256([]byte("preau-console-setup:" + normSetupCode(code)))
	return hex.EncodeToString(sum[:])
}

// SetupNeeded reports whether no active technicien account exists, so
// that /console/installation is open.
func (c *Console) SetupNeeded(ctx context.Context) (bool, error) {
	var n int
	if err := c.db.QueryRowContext(ctx, "SELECT count(*) FROM console_accounts WHERE role = 'technicien' AND disabled_at IS NULL").Scan(&n); err != nil {
		return false, fmt.Errorf("count technicien accounts: %w", err)
	}
	return n == 0, nil
}

// SetupCode returns a new one-time setup code while no technicien account
// exists (appliance prints it to the journal at start-up); the code it
// replaces stops working. Only its hash is stored. Once a technicien
// account exists it returns an *Error wrapping ErrSetupDone.
func (c *Console) SetupCode(ctx context.Context) (string, error) {
	need, err := c.SetupNeeded(ctx)
	if err != nil {
		return "", fmt.Errorf("make setup code: %w", err)
	}
	if !need {
		return "", setupDone()
	}
	code := newSetupCode()
	if _, err := c.db.ExecContext(ctx, `INSERT INTO console_setup (id, code_sha256, created_at) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET code_sha256 = excluded.code_sha256, created_at = excluded.created_at`,
		setupHash(code), c.now().UnixMilli()); err != nil {
		return "", fmt.Errorf("make setup code: %w", err)
	}
	return code, nil
}

func badSetupCode() *Error {
	return &Error{Code: CodeBadCode, Err: ErrBadCode,
		FR: "Code d'installation incorrect : recopiez le dernier code affiché dans le journal de la box (journalctl -u preau).",
		EN: "Wrong setup code: copy the latest code shown in the box's journal (journalctl -u preau)."}
}

func setupDone() *Error {
	return &Error{Code: CodeSetupDone, Err: ErrSetupDone,
		FR: "L'installation est déjà faite : un compte technicien existe. Connectez-vous.",
		EN: "Setup is already done: a technicien account exists. Sign in."}
}

// install redeems the setup code: it creates the first technicien
// account and burns the code, in one transaction.
func (c *Console) install(ctx context.Context, code, login, name, password, ip string) (Account, error) {
	if until, err := c.lockedUntil(ctx, setupKey(ip)); err != nil {
		return Account{}, err
	} else if !until.IsZero() {
		return Account{}, c.lockedError(setupKey(ip), until)
	}
	l, name, err := checkAccount(login, name, RoleTechnicien)
	if err != nil {
		return Account{}, err
	}
	if err := checkPassword(password); err != nil {
		return Account{}, err
	}
	// The code is checked before the password is hashed, so that wrong
	// codes cost the box nothing.
	var found int
	if err := c.db.QueryRowContext(ctx, "SELECT count(*) FROM console_setup WHERE code_sha256 = ?", setupHash(code)).Scan(&found); err != nil {
		return Account{}, fmt.Errorf("install: %w", err)
	}
	if found == 0 {
		c.audit(ctx, l, ActionSignInFailed, "code d'installation", ip)
		until, err := c.recordFailure(ctx, setupKey(ip), c.cfg.LockAfter)
		if err != nil {
			return Account{}, err
		}
		if !until.IsZero() {
			c.audit(ctx, l, ActionLockOut, "installation bloquée pour l'adresse "+ip, ip)
			return Account{}, c.lockedError(setupKey(ip), until)
		}
		return Account{}, badSetupCode()
	}
	hash, err := c.hashPassword(ctx, password)
	if err != nil {
		return Account{}, fmt.Errorf("install: %w", err)
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return Account{}, fmt.Errorf("install: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, "DELETE FROM console_setup WHERE code_sha256 = ?", setupHash(code))
	if err != nil {
		return Account{}, fmt.Errorf("install: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Account{}, badSetupCode() // replaced or used meanwhile
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM console_accounts WHERE role = 'technicien' AND disabled_at IS NULL").Scan(&n); err != nil {
		return Account{}, fmt.Errorf("install: %w", err)
	}
	if n > 0 {
		return Account{}, setupDone()
	}
	a, err := c.insertAccount(ctx, tx, l, name, RoleTechnicien, hash)
	if err != nil {
		return Account{}, err
	}
	if err := tx.Commit(); err != nil {
		return Account{}, fmt.Errorf("install: %w", err)
	}
	c.log.Info("console set up: first technicien account created", "login", l)
	c.audit(ctx, l, ActionSetup, "premier compte technicien créé avec le code d'installation", ip)
	return a, nil
}
