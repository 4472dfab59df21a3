// Package store owns the box's SQLite database: it opens the one handle
// (WAL, foreign keys, busy timeout), applies each component's numbered
// migrations and hands the handle to the components that appliance wires.
//
// Only package appliance imports store; components never do. A component
// keeps its own schema as a list of numbered migrations and receives the
// *sql.DB that this package opened, so the database has a single owner
// and each table a single author.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// Migration is one numbered schema step of a component. Versions start at 1
// and follow each other without gaps; a migration never changes once released.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Store is the open database.
type Store struct {
	db   *sql.DB
	path string
	log  *slog.Logger
}

// ErrNewerSchema means the database was written by a newer preau: this
// binary must not touch it (a rollback after an update would otherwise
// corrupt it).
var ErrNewerSchema = errors.New("database schema is newer than this program")

// Open opens (creating if needed) the database file at path.
func Open(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open database: create folder: %w", err)
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", "10000")
	q.Set("_synchronous", "NORMAL") // with WAL: durable at checkpoint, never corrupt
	q.Set("_txlock", "immediate")
	dsn := "file:" + filepath.ToSlash(path) + "?" + q.Encode()
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// SQLite allows one writer; a small pool keeps readers concurrent.
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db, path: path, log: log}
	if err := s.check(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) check(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("open database %s: %w", s.path, err)
	}
	if mode != "wal" {
		return fmt.Errorf("open database %s: journal mode is %q, want wal", s.path, mode)
	}
	var fk int
	if err := s.db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		return fmt.Errorf("open database %s: foreign keys are off", s.path)
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component  TEXT NOT NULL,
		version    INTEGER NOT NULL,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL,
		PRIMARY KEY (component, version)
	)`); err != nil {
		return fmt.Errorf("open database %s: %w", s.path, err)
	}
	return nil
}

// DB returns the handle for the components. The Store keeps ownership:
// components must not close it.
func (s *Store) DB() *sql.DB { return s.db }

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	return s.db.QueryRowContext(ctx, "SELECT 1").Scan(&n)
}

// Version returns the highest applied migration of a component (0 if none).
func (s *Store) Version(ctx context.Context, component string) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		"SELECT MAX(version) FROM schema_migrations WHERE component = ?", component).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version of %s: %w", component, err)
	}
	return int(v.Int64), nil
}

// Migrate applies the component's migrations that are not applied yet, each
// in its own transaction together with its bookkeeping row, so a power cut
// leaves the schema at a whole step.
func (s *Store) Migrate(ctx context.Context, component string, ms []Migration) error {
	for i, m := range ms {
		if m.Version != i+1 {
			return fmt.Errorf("migrate %s: migration %d has version %d, want %d", component, i, m.Version, i+1)
		}
	}
	cur, err := s.Version(ctx, component)
	if err != nil {
		return err
	}
	if cur > len(ms) {
		return fmt.Errorf("migrate %s: database at version %d, this program knows %d: %w", component, cur, len(ms), ErrNewerSchema)
	}
	for _, m := range ms[cur:] {
		if err := s.apply(ctx, component, m); err != nil {
			return err
		}
		s.log.Info("schema migrated", "schema", component, "version", m.Version, "name", m.Name)
	}
	return nil
}

func (s *Store) apply(ctx context.Context, component string, m Migration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s to %d: %w", component, m.Version, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("migrate %s to %d (%s): %w", component, m.Version, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)",
		component, m.Version, m.Name, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return fmt.Errorf("migrate %s to %d: record: %w", component, m.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %s to %d: commit: %w", component, m.Version, err)
	}
	return nil
}

// IntegrityCheck runs SQLite's integrity check and the foreign key check.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	var res string
	if err := s.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("integrity check: %s", res)
	}
	rows, err := s.db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		return errors.New("foreign key check: dangling references")
	}
	return rows.Err()
}
