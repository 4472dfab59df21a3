package usb

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Migration is one numbered step of this package's schema. Versions start
// at 1; appliance/store applies each in its own transaction, in order.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the schema of SeenStore. A released migration never
// changes; new ones are appended.
func Migrations() []Migration {
	return []Migration{{
		Version: 1,
		Name:    "delivered keys",
		SQL: `
CREATE TABLE usb_delivered (
	key        TEXT PRIMARY KEY,  -- the outbox item's idempotency key
	marked_at  INTEGER NOT NULL   -- unix milliseconds
) STRICT;`,
	}}
}

// SeenStore is a Seen kept in SQLite: the keys this box delivered from
// bundles, whichever box wrote them.
type SeenStore struct {
	db  *sql.DB
	now func() time.Time
}

// NewSeenStore uses db, where Migrations were applied; now nil means time.Now.
func NewSeenStore(db *sql.DB, now func() time.Time) *SeenStore {
	if now == nil {
		now = time.Now
	}
	return &SeenStore{db: db, now: now}
}

// Seen reports whether key was marked.
func (s *SeenStore) Seen(ctx context.Context, key string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM usb_delivered WHERE key = ?", key).Scan(&n); err != nil {
		return false, fmt.Errorf("usb seen %q: %w", key, err)
	}
	return n > 0, nil
}

// Mark records key as delivered; marking twice keeps the first time.
func (s *SeenStore) Mark(ctx context.Context, key string) error {
	if _, err := s.db.ExecContext(ctx, "INSERT INTO usb_delivered (key, marked_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", key, s.now().UnixMilli()); err != nil {
		return fmt.Errorf("usb mark %q: %w", key, err)
	}
	return nil
}
