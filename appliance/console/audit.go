package console

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Actions the console writes to the audit log; appliance may report any
// other action name through Audit.
const (
	ActionSignIn          = "sign-in"
	ActionSignInFailed    = "sign-in-failed"
	ActionLockOut         = "lock-out"
	ActionSignOut         = "sign-out"
	ActionSetup           = "setup"
	ActionAccountCreate   = "account-create"
	ActionAccountImport   = "account-import"
	ActionAccountPassword = "account-password"
	ActionAccountDisable  = "account-disable"
	ActionAccountEnable   = "account-enable"
	ActionAccountRole     = "account-role"
	ActionTOTPEnable      = "totp-enable"
	ActionTOTPDisable     = "totp-disable"
	ActionTokenCreate     = "token-create"
	ActionTokenRevoke     = "token-revoke"
	ActionDeviceClass     = "device-class"
	ActionExport          = "export"
	ActionRefused         = "refused"
)

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Detail string    `json:"detail"`
	IP     string    `json:"ip"`
}

// Audit records an administrative action appliance performed or was asked
// for (an update applied, a drill started, a configuration change). actor
// is the account's login or a component name; ip may be empty.
func (c *Console) Audit(ctx context.Context, actor, action, detail, ip string) error {
	if strings.TrimSpace(action) == "" {
		return fmt.Errorf("audit: empty action")
	}
	return c.writeAudit(ctx, actor, action, detail, ip)
}

// audit is Audit for the console's own entries: a failure is logged, not
// returned, since the action it describes already happened.
func (c *Console) audit(ctx context.Context, actor, action, detail, ip string) {
	if err := c.writeAudit(context.WithoutCancel(ctx), actor, action, detail, ip); err != nil {
		c.log.Error("write audit entry", "actor", actor, "action", action, "err", err)
	}
}

func (c *Console) writeAudit(ctx context.Context, actor, action, detail, ip string) error {
	if actor == "" {
		actor = actorSystem
	}
	_, err := c.db.ExecContext(ctx, "INSERT INTO console_audit (at, actor, action, detail, ip) VALUES (?, ?, ?, ?, ?)",
		c.now().UnixMilli(), clip(actor, 100), clip(action, 64), clip(detail, 1000), clip(ip, 64))
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// clip cuts s to at most n bytes on a rune boundary and drops control
// characters, so an attacker-chosen login cannot forge log lines.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "�"))
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// AuditQuery selects audit entries: at most Limit (default 50, at most
// 500) older than the entry Before (0: from the newest).
type AuditQuery struct {
	Limit  int
	Before int64
}

// AuditLog returns audit entries, newest first.
func (c *Console) AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 500)
	before := q.Before
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := c.db.QueryContext(ctx, "SELECT id, at, actor, action, detail, ip FROM console_audit WHERE id < ? ORDER BY id DESC LIMIT ?", before, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Detail, &e.IP); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		e.At = time.UnixMilli(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}
