package content

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// accessFlushEvery is how often Serve writes the packs' last access times.
const accessFlushEvery = time.Minute

// PinPack protects a pack from eviction until until (a teacher pins what
// the class needs this week). Pinning again moves the date, earlier or
// later; a pin whose date has passed no longer protects. The pin survives
// a new version of the pack. It returns ErrNotFound for an unknown pack.
func (s *Store) PinPack(ctx context.Context, id string, until time.Time) error {
	// One statement: the pack exists when the pin is written.
	res, err := s.db.ExecContext(ctx, `INSERT INTO content_pack_pins (pack, until) SELECT id, ? FROM content_packs WHERE id = ?
		ON CONFLICT DO UPDATE SET until = excluded.until`, until.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("pin pack %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("pin pack %s: %w", id, ErrNotFound)
	}
	s.log.Info("pack pinned", "pack", id, "until", until)
	return nil
}

// UnpinPack removes a pack's pin; a pack without a pin is no error.
func (s *Store) UnpinPack(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM content_pack_pins WHERE pack = ?", id); err != nil {
		return fmt.Errorf("unpin pack %s: %w", id, err)
	}
	s.log.Info("pack unpinned", "pack", id)
	return nil
}

// packAccess is when a pack was last served, in unix milliseconds; the
// hot path only stores into it.
type packAccess struct {
	last    atomic.Int64
	flushed int64 // guarded by Store.accessMu
}

// touch records an access at now; it skips the store when the value is
// less than a second old, so that busy packs do not bounce a cache line.
func (a *packAccess) touch(now int64) {
	if now-a.last.Load() >= 1000 {
		a.last.Store(now)
	}
}

// accessOf returns the access record of a pack, created on first use.
func (s *Store) accessOf(pack string) *packAccess {
	s.accessMu.Lock()
	defer s.accessMu.Unlock()
	a := s.access[pack]
	if a == nil {
		a = &packAccess{}
		s.access[pack] = a
	}
	return a
}

func (s *Store) forgetAccess(pack string) {
	s.accessMu.Lock()
	delete(s.access, pack)
	s.accessMu.Unlock()
}

// flushAccess writes the access times newer than what SQLite has, in one
// transaction.
func (s *Store) flushAccess(ctx context.Context) error {
	s.accessMu.Lock()
	defer s.accessMu.Unlock()
	type row struct {
		pack string
		a    *packAccess
		at   int64
	}
	var rows []row
	for pack, a := range s.access {
		if at := a.last.Load(); at > a.flushed {
			rows = append(rows, row{pack, a, at})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("flush access times: %w", err)
	}
	defer tx.Rollback()
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, "UPDATE content_packs SET last_access = MAX(last_access, ?) WHERE id = ?", r.at, r.pack); err != nil {
			return fmt.Errorf("flush access times: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("flush access times: %w", err)
	}
	for _, r := range rows {
		r.a.flushed = r.at
	}
	return nil
}

// Serve writes the packs' last access times to SQLite every minute (serving
// a file only touches memory) until ctx ends, then once more, and returns
// nil. Scrub and GC are the appliance's to schedule.
func (s *Store) Serve(ctx context.Context) error {
	t := time.NewTicker(accessFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.flushAccess(context.WithoutCancel(ctx)); err != nil {
				s.log.Warn("flush last access times", "err", err)
			}
			return nil
		case <-t.C:
			if err := s.flushAccess(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("flush last access times", "err", err)
			}
		}
	}
}

// removePackLocked deletes a pack's rows and pin, then the blobs nothing
// else keeps. The caller holds importMu.
func (s *Store) removePackLocked(ctx context.Context, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var importedAt int64
	if err := tx.QueryRowContext(ctx, "SELECT imported_at FROM content_packs WHERE id = ?", id).Scan(&importedAt); err != nil {
		if errors.Is(err, errNoRows) {
			return ErrNotFound
		}
		return err
	}
	hashes := make(map[string]bool)
	rows, err := tx.QueryContext(ctx, "SELECT DISTINCT sha256 FROM content_files WHERE pack = ?", id)
	if err != nil {
		return err
	}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return err
		}
		hashes[h] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, q := range []string{
		"DELETE FROM content_search WHERE pack = ?",
		"DELETE FROM content_packs WHERE id = ?",
		"DELETE FROM content_pack_pins WHERE pack = ?",
	} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.invalidateIndex()
	s.forgetAccess(id)
	bg := context.WithoutCancel(ctx)
	s.releaseFetchPins(bg, hashes, importedAt)
	s.removeUnreferenced(bg, hashes)
	return nil
}

// releaseFetchPins drops the pins FetchBlob took, up to the commit at
// importedAt of a pack now gone or replaced, on those of hashes no pack
// references any more: the pack held them since. A fetch made after that
// commit (for a pack not committed yet) keeps its pin.
func (s *Store) releaseFetchPins(ctx context.Context, hashes map[string]bool, importedAt int64) {
	for h := range hashes {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM content_pins WHERE sha256 = ?1 AND fetched = 1 AND pinned_at <= ?2
			AND NOT EXISTS (SELECT 1 FROM content_files WHERE sha256 = ?1)`, h, importedAt); err != nil {
			s.log.Warn("release fetch pins", "blob", h, "err", err)
		}
	}
}
