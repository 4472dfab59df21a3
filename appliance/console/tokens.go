package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// APIToken is a bearer token for /api/v1/ (remote scripts, metric pulls).
// Only the SHA-256 of its secret is stored: the secret is shown once.
type APIToken struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
	Revoked   bool      `json:"revoked"`
}

// tokenPrefix starts every token, so a leaked one is easy to recognise
// (and to search for in a repository).
const tokenPrefix = "preau_"

// CreateAPIToken makes a token with role (technicien or direction) and
// returns its secret, which is not stored and cannot be shown again.
func (c *Console) CreateAPIToken(ctx context.Context, name string, role Role, by string) (string, APIToken, error) {
	return c.createAPIToken(ctx, by, "", name, role)
}

func (c *Console) createAPIToken(ctx context.Context, by, ip, name string, role Role) (string, APIToken, error) {
	name = strings.Join(strings.Fields(name), " ")
	if name == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) {
		return "", APIToken{}, invalid(CodeBadTokenName, "Nom du jeton refusé : donnez de 1 à 100 caractères (par exemple « supervision »).",
			"Token name refused: give 1 to 100 characters (e.g. “monitoring”).")
	}
	if role != RoleTechnicien && role != RoleDirection {
		return "", APIToken{}, invalid(CodeBadRole, "Rôle du jeton refusé : technicien ou direction.", "Token role refused: technicien or direction.")
	}
	if by == "" {
		by = actorSystem
	}
	secret := tokenPrefix + randomToken(32)
	now := c.now()
	res, err := c.db.ExecContext(ctx, "INSERT INTO console_tokens (name, token_sha256, role, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
		name, tokenHash(secret), string(role), by, now.UnixMilli())
	if err != nil {
		return "", APIToken{}, fmt.Errorf("create api token %q: %w", name, err)
	}
	id, _ := res.LastInsertId()
	c.audit(ctx, by, ActionTokenCreate, fmt.Sprintf("jeton n° %d « %s » (%s)", id, name, role), ip)
	return secret, APIToken{ID: id, Name: name, Role: role, CreatedBy: by, CreatedAt: time.UnixMilli(now.UnixMilli())}, nil
}

// ListAPITokens returns every token, revoked ones included, newest first.
func (c *Console) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, name, role, created_by, created_at, COALESCE(used_at, 0), revoked_at IS NOT NULL
		FROM console_tokens ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list api tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	return out, nil
}

func scanToken(row rowScanner) (APIToken, error) {
	var t APIToken
	var role string
	var created, used int64
	if err := row.Scan(&t.ID, &t.Name, &role, &t.CreatedBy, &created, &used, &t.Revoked); err != nil {
		return APIToken{}, err
	}
	t.Role, t.CreatedAt = Role(role), time.UnixMilli(created)
	if used != 0 {
		t.UsedAt = time.UnixMilli(used)
	}
	return t, nil
}

// RevokeAPIToken stops a token from working.
func (c *Console) RevokeAPIToken(ctx context.Context, id int64, by string) error {
	return c.revokeAPIToken(ctx, by, "", id)
}

func (c *Console) revokeAPIToken(ctx context.Context, by, ip string, id int64) error {
	res, err := c.db.ExecContext(ctx, "UPDATE console_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", c.now().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("revoke api token %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return &Error{Code: CodeNoAccount, Err: ErrInvalid,
			FR: fmt.Sprintf("Aucun jeton actif n'a le numéro %d.", id), EN: fmt.Sprintf("No active token has the number %d.", id)}
	}
	c.audit(ctx, by, ActionTokenRevoke, fmt.Sprintf("jeton n° %d", id), ip)
	return nil
}

// lookupToken returns the active token of a bearer secret.
func (c *Console) lookupToken(ctx context.Context, secret string) (APIToken, bool, error) {
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) != len(tokenPrefix)+43 {
		return APIToken{}, false, nil
	}
	h := tokenHash(secret)
	row := c.db.QueryRowContext(ctx, `SELECT id, name, role, created_by, created_at, COALESCE(used_at, 0), revoked_at IS NOT NULL
		FROM console_tokens WHERE token_sha256 = ? AND revoked_at IS NULL`, h)
	t, err := scanToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return APIToken{}, false, nil
	}
	if err != nil {
		return APIToken{}, false, fmt.Errorf("look up api token: %w", err)
	}
	// Record use at most once a minute per token: a scraper every 15 s
	// should not write to the database every time.
	now := c.now()
	c.seenMu.Lock()
	last := c.seen[h]
	write := now.Sub(last) >= time.Minute
	if write {
		c.seen[h] = now
	}
	c.seenMu.Unlock()
	if write {
		if _, err := c.db.ExecContext(ctx, "UPDATE console_tokens SET used_at = ? WHERE id = ?", now.UnixMilli(), t.ID); err != nil {
			c.log.Warn("record api token use", "token", t.ID, "err", err)
		}
	}
	return t, true, nil
}
