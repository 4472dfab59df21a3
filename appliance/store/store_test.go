package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "preau.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var sample = []Migration{
	{1, "notes", `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`},
	{2, "tags", `CREATE TABLE tags (note INTEGER NOT NULL REFERENCES notes(id) ON DELETE CASCADE, tag TEXT NOT NULL)`},
	{3, "note title", `ALTER TABLE notes ADD COLUMN title TEXT NOT NULL DEFAULT ''`},
}

func TestOpenSetsPragmas(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	tests := []struct{ pragma, want string }{
		{"journal_mode", "wal"}, {"foreign_keys", "1"}, {"busy_timeout", "10000"}, {"synchronous", "1"},
	}
	for _, tt := range tests {
		var got string
		if err := s.DB().QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
}

// TestMigrateFromEveryVersion applies the first i migrations, writes data,
// then migrates to the latest: every older schema must upgrade and keep
// its rows.
func TestMigrateFromEveryVersion(t *testing.T) {
	ctx := context.Background()
	for i := 0; i <= len(sample); i++ {
		s := openTemp(t)
		if err := s.Migrate(ctx, "notes", sample[:i]); err != nil {
			t.Fatalf("migrate to %d: %v", i, err)
		}
		if i >= 1 {
			if _, err := s.DB().ExecContext(ctx, "INSERT INTO notes (id, body) VALUES (1, 'bonjour')"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Migrate(ctx, "notes", sample); err != nil {
			t.Fatalf("from %d to latest: %v", i, err)
		}
		if v, _ := s.Version(ctx, "notes"); v != len(sample) {
			t.Errorf("from %d: version %d, want %d", i, v, len(sample))
		}
		var n int
		s.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM notes").Scan(&n)
		if want := min(i, 1); n != want {
			t.Errorf("from %d: %d rows kept, want %d", i, n, want)
		}
		if err := s.IntegrityCheck(ctx); err != nil {
			t.Error(err)
		}
	}
}

func TestMigrateRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("newer schema", func(t *testing.T) {
		s := openTemp(t)
		if err := s.Migrate(ctx, "notes", sample); err != nil {
			t.Fatal(err)
		}
		err := s.Migrate(ctx, "notes", sample[:2])
		if !errors.Is(err, ErrNewerSchema) {
			t.Errorf("got %v, want ErrNewerSchema", err)
		}
	})
	t.Run("gap in versions", func(t *testing.T) {
		s := openTemp(t)
		if err := s.Migrate(ctx, "notes", []Migration{sample[0], sample[2]}); err == nil {
			t.Error("a gap in versions was accepted")
		}
	})
	t.Run("failing step is atomic", func(t *testing.T) {
		s := openTemp(t)
		bad := append(append([]Migration{}, sample[:1]...),
			Migration{2, "broken", `CREATE TABLE half (x INTEGER); SELECT * FROM no_such_table`})
		if err := s.Migrate(ctx, "notes", bad); err == nil {
			t.Fatal("a broken migration succeeded")
		}
		if v, _ := s.Version(ctx, "notes"); v != 1 {
			t.Errorf("version after failure %d, want 1", v)
		}
		var n int
		s.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'").Scan(&n)
		if n != 0 {
			t.Error("the failed step left a table behind")
		}
	})
	t.Run("components are independent", func(t *testing.T) {
		s := openTemp(t)
		if err := s.Migrate(ctx, "notes", sample[:1]); err != nil {
			t.Fatal(err)
		}
		if v, _ := s.Version(ctx, "other"); v != 0 {
			t.Errorf("other component at %d, want 0", v)
		}
	})
}
