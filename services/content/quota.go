package content

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// StoreFullError means a fetch does not fit: under the quota and
// MinFreeBytes even after evicting every evictable pack (then nothing was
// evicted), or the disk itself ran out (Disk, ENOSPC: the partial download
// was discarded). Error gives the French message, English the English one.
// errors.Is(err, ErrStoreFull) matches it.
type StoreFullError struct {
	Need     int64 // bytes the fetch still had to write
	Freeable int64 // bytes evicting every evictable pack would have freed
	Disk     bool  // the filesystem was full (ENOSPC), not the quota
	Err      error // the system error when Disk
}

// ErrStoreFull matches every *StoreFullError.
var ErrStoreFull error = &StoreFullError{}

func mo(n int64) int64 { return (max(n, 0) + 1<<20 - 1) >> 20 }

func (e *StoreFullError) Error() string {
	switch {
	case e.Disk:
		return "stockage plein : le disque est plein ; désépinglez des contenus (preau catalog unpin), retirez des sources (preau catalog remove) ou libérez de la place sur le disque"
	case e.Need == 0 && e.Freeable == 0:
		return "stockage plein ; désépinglez des contenus (preau catalog unpin) ou augmentez le quota (réglage content.max_store_size)"
	}
	return fmt.Sprintf("stockage plein : %d Mo nécessaires, %d Mo libérables ; désépinglez des contenus (preau catalog unpin) ou augmentez le quota (réglage content.max_store_size)", mo(e.Need), mo(e.Freeable))
}

// English is the English message.
func (e *StoreFullError) English() string {
	switch {
	case e.Disk:
		return "storage full: the disk is full; unpin some content (preau catalog unpin), remove sources (preau catalog remove) or free some space on the disk"
	case e.Need == 0 && e.Freeable == 0:
		return "storage full; unpin some content (preau catalog unpin) or raise the quota (setting content.max_store_size)"
	}
	return fmt.Sprintf("storage full: %d MB needed, %d MB can be freed; unpin some content (preau catalog unpin) or raise the quota (setting content.max_store_size)", mo(e.Need), mo(e.Freeable))
}

func (e *StoreFullError) Is(target error) bool { return target == ErrStoreFull }
func (e *StoreFullError) Unwrap() error        { return e.Err }

// reservation is the room a fetch in flight was given: its data file may
// grow to target bytes; have is what it holds now. Other fetches count
// target - have as taken.
type reservation struct {
	target int64 // guarded by spaceMu
	have   atomic.Int64
}

func (s *Store) reserve() *reservation {
	r := &reservation{}
	s.spaceMu.Lock()
	s.reservations[r] = struct{}{}
	s.spaceMu.Unlock()
	return r
}

func (s *Store) unreserve(r *reservation) {
	s.spaceMu.Lock()
	delete(s.reservations, r)
	s.spaceMu.Unlock()
}

// space is what the store measures on disk.
type space struct {
	used  int64 // blobs, Dir/tmp and quarantine
	quota int64 // -1: none
	free  int64 // available to us on the filesystem
}

// measure walks the store's folders and asks the filesystem. Walking costs
// a stat per blob: it is done when a fetch starts (or grows past its room
// when its size is unknown), never per written byte.
func (s *Store) measure() (space, error) {
	var sp space
	for _, dir := range []string{s.blobsDir, s.tmpDir, s.quarantineDir} {
		err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					sp.used += info.Size()
				}
			}
			return nil
		})
		if err != nil {
			return sp, fmt.Errorf("measure %s: %w", dir, err)
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.cfg.Dir, &st); err != nil {
		return sp, fmt.Errorf("measure %s: %w", s.cfg.Dir, err)
	}
	sp.free = int64(st.Bavail) * st.Bsize
	switch {
	case s.cfg.MaxBytes > 0:
		sp.quota = s.cfg.MaxBytes
	case s.cfg.MaxBytes == 0:
		sp.quota = int64(st.Blocks) * st.Bsize / 100 * defaultQuotaPercent
	default:
		sp.quota = -1
	}
	return sp, nil
}

// available is how many bytes may still be written, given what other
// fetches in flight were promised.
func (s *Store) available(sp space, pending int64) int64 {
	avail := sp.free - pending
	if s.cfg.MinFreeBytes > 0 {
		avail -= s.cfg.MinFreeBytes
	}
	if sp.quota >= 0 {
		avail = min(avail, sp.quota-sp.used-pending)
	}
	return avail
}

// makeRoom lets res's data file grow to target bytes. When that does not
// fit, it evicts least-recently-used evictable packs, oldest access first,
// whole packs, until it does; when even evicting all of them could not
// make it fit, it evicts nothing and returns a *StoreFullError.
func (s *Store) makeRoom(ctx context.Context, res *reservation, target int64) error {
	s.spaceMu.Lock()
	defer s.spaceMu.Unlock()
	need := target - res.have.Load()
	if need <= 0 || target <= res.target {
		res.target = max(res.target, target)
		return nil
	}
	if err := s.flushAccess(ctx); err != nil {
		s.log.Warn("flush last access times", "err", err)
	}
	for {
		sp, err := s.measure()
		if err != nil {
			return fmt.Errorf("make room: %w", err)
		}
		var pending int64
		for r := range s.reservations {
			if r != res {
				pending += max(r.target-r.have.Load(), 0)
			}
		}
		avail := s.available(sp, pending)
		if need <= avail {
			res.target = target
			return nil
		}
		freeable, err := s.evictableBytes(ctx)
		if err != nil {
			return fmt.Errorf("make room: %w", err)
		}
		if need > avail+freeable {
			s.log.Warn("store full", "need", need, "available", avail, "freeable", freeable)
			return &StoreFullError{Need: need, Freeable: freeable}
		}
		cands, err := s.evictionCandidates(ctx)
		if err != nil {
			return fmt.Errorf("make room: %w", err)
		}
		if len(cands) == 0 {
			return &StoreFullError{Need: need, Freeable: freeable}
		}
		if err := s.evict(ctx, cands[0]); err != nil {
			return fmt.Errorf("make room: %w", err)
		}
	}
}

// evictableWhere selects the packs eviction may take at ?1 (unix ms):
// committed by a catalogue source and not pinned by a teacher, or pinned
// until a time gone by.
const evictableWhere = `p.source != '' AND NOT EXISTS (SELECT 1 FROM content_pack_pins x WHERE x.pack = p.id AND x.until > ?1)`

// evictableBytes is what evicting every evictable pack would free: their
// distinct blobs that no other pack references and no owner but a fetch
// pinned.
func (s *Store) evictableBytes(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `WITH ev AS (SELECT p.id FROM content_packs p WHERE `+evictableWhere+`)
		SELECT COALESCE(SUM(size), 0) FROM (
			SELECT f.sha256, MAX(f.size) AS size FROM content_files f WHERE f.pack IN ev GROUP BY f.sha256
			HAVING NOT EXISTS (SELECT 1 FROM content_files g WHERE g.sha256 = f.sha256 AND g.pack NOT IN ev)
			   AND NOT EXISTS (SELECT 1 FROM content_pins n WHERE n.sha256 = f.sha256 AND n.fetched = 0))`,
		s.now().UnixMilli()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("evictable bytes: %w", err)
	}
	return n, nil
}

// evictionCandidates lists the evictable packs, least recently used first.
func (s *Store) evictionCandidates(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT p.id FROM content_packs p WHERE `+evictableWhere+`
		ORDER BY p.last_access, p.imported_at, p.id`, s.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("eviction candidates: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("eviction candidates: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// evict removes a catalogue pack to make room; its source can fetch it
// again.
func (s *Store) evict(ctx context.Context, id string) error {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	if err := s.removePackLocked(ctx, id); err != nil {
		return fmt.Errorf("evict %s: %w", id, err)
	}
	s.log.Info("pack evicted to make room", "pack", id)
	return nil
}

// Usage is the state of the store's storage, for metrics and the console.
type Usage struct {
	UsedBytes      int64 // blobs, partial downloads and quarantined blobs on disk
	QuotaBytes     int64 // the effective quota; -1 when there is none
	FreeBytes      int64 // free on the filesystem for the store
	MinFreeBytes   int64 // kept free by fetches
	PinnedBytes    int64 // distinct blobs of packs a teacher pinned (pin not expired)
	EvictableBytes int64 // what evicting every evictable pack would free
	Packs          int
	CatalogPacks   int // packs committed by a catalogue source
	PinnedPacks    int // packs with a pin not expired
	EvictablePacks int
	DamagedBlobs   int // found by the scrub, waiting to be fetched again
}

// Usage measures the store: it walks the blob folders (a stat per blob),
// so call it for metrics every minute or so, not per request.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	sp, err := s.measure()
	if err != nil {
		return Usage{}, fmt.Errorf("content usage: %w", err)
	}
	u := Usage{UsedBytes: sp.used, QuotaBytes: sp.quota, FreeBytes: sp.free, MinFreeBytes: max(s.cfg.MinFreeBytes, 0)}
	if u.EvictableBytes, err = s.evictableBytes(ctx); err != nil {
		return Usage{}, fmt.Errorf("content usage: %w", err)
	}
	now := s.now().UnixMilli()
	err = s.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM content_packs),
		(SELECT COUNT(*) FROM content_packs WHERE source != ''),
		(SELECT COUNT(*) FROM content_packs p WHERE EXISTS (SELECT 1 FROM content_pack_pins x WHERE x.pack = p.id AND x.until > ?1)),
		(SELECT COUNT(*) FROM content_packs p WHERE `+evictableWhere+`),
		(SELECT COALESCE(SUM(size), 0) FROM (SELECT f.sha256, MAX(f.size) AS size FROM content_files f
			JOIN content_pack_pins x ON x.pack = f.pack AND x.until > ?1 GROUP BY f.sha256)),
		(SELECT COUNT(*) FROM content_damaged)`, now).Scan(
		&u.Packs, &u.CatalogPacks, &u.PinnedPacks, &u.EvictablePacks, &u.PinnedBytes, &u.DamagedBlobs)
	if err != nil {
		return Usage{}, fmt.Errorf("content usage: %w", err)
	}
	return u, nil
}
