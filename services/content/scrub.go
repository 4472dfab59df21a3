package content

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"time"
)

// ErrDamaged means the scrub found the blob of a file damaged and moved it
// to quarantine; the file is served again once its blob is fetched or
// imported again.
var ErrDamaged = errors.New("content: file damaged, waiting to be fetched again")

// Settings keys of the scrub in content_settings.
const (
	scrubPositionKey = "scrub.position"  // last blob hashed by the pass in progress
	scrubCompleteKey = "scrub.completed" // unix ms of the end of the last whole pass
)

// scrubSaveEvery spaces the saves of the scrub's position.
const scrubSaveEvery = 10 * time.Second

// ScrubReport is what one Scrub call did.
type ScrubReport struct {
	From     string   // the pass resumed after this blob; "" = from the start
	Checked  int      // blobs hashed
	Bytes    int64    // bytes read
	Damaged  []string // blobs found damaged and moved to quarantine
	Complete bool     // the pass reached the last blob: the next call starts a new one
}

// Scrub re-hashes the stored blobs, in hash order, reading at most rate
// bytes a second (0: Config.ScrubRate) so that serving the class keeps the
// disk. It resumes the pass where the previous call, or the previous run
// of the box, stopped. A blob whose content does not match its name is
// moved to Dir/quarantine and recorded: its pack files answer 503 until a
// FetchBlob, PutBlob or import of the same hash repairs it, and Damaged
// lists it for the catalogue to fetch again. It returns when the pass is
// complete or ctx ends (the report then comes with ctx's error).
func (s *Store) Scrub(ctx context.Context, rate int64) (ScrubReport, error) {
	if rate <= 0 {
		rate = s.cfg.ScrubRate
	}
	var rep ScrubReport
	from, err := s.setting(ctx, scrubPositionKey)
	if err != nil {
		return rep, fmt.Errorf("scrub: %w", err)
	}
	rep.From = from
	pos := from
	lastSave := time.Now()
	save := func(ctx context.Context) {
		if err := s.setSetting(ctx, scrubPositionKey, pos); err != nil {
			s.log.Warn("scrub: save position", "err", err)
		}
		lastSave = time.Now()
	}
	p := &pacer{rate: rate, start: time.Now()}
	buf := make([]byte, 256<<10)
	err = s.blobNames(func(hash, path string, _ fs.FileInfo) error {
		if hash <= from || !validHash(hash) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		ok, n, err := s.checkBlob(ctx, path, hash, p, buf)
		rep.Bytes += n
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil // removed meanwhile
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			// A read error is a damaged disk block as much as a bad byte.
			s.log.Warn("scrub: read blob", "blob", hash, "err", err)
			ok = false
		}
		rep.Checked++
		if !ok {
			if err := s.quarantine(ctx, hash); err != nil {
				return err
			}
			rep.Damaged = append(rep.Damaged, hash)
		}
		pos = hash
		if time.Since(lastSave) >= scrubSaveEvery {
			save(ctx)
		}
		return nil
	})
	if err != nil {
		save(context.WithoutCancel(ctx))
		return rep, fmt.Errorf("scrub: %w", err)
	}
	rep.Complete = true
	pos = ""
	save(ctx)
	if err := s.setSetting(ctx, scrubCompleteKey, fmt.Sprint(s.now().UnixMilli())); err != nil {
		return rep, fmt.Errorf("scrub: %w", err)
	}
	s.log.Info("scrub pass complete", "blobs", rep.Checked, "bytes", rep.Bytes, "damaged", len(rep.Damaged))
	return rep, nil
}

// pacer sleeps so that reading stays under rate bytes a second on average.
// It uses the real monotonic clock, not the Store's: it paces the disk.
type pacer struct {
	rate  int64
	start time.Time
	read  int64
}

func (p *pacer) wait(ctx context.Context, n int) error {
	p.read += int64(n)
	due := p.start.Add(time.Duration(float64(p.read) / float64(p.rate) * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkBlob hashes the file at path at the pacer's rate and compares it
// with hash.
func (s *Store) checkBlob(ctx context.Context, path, hash string, p *pacer, buf []byte) (ok bool, n int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, 0, err
	}
	defer f.Close()
	h := sha256.New()
	for {
		m, rerr := f.Read(buf)
		if m > 0 {
			h.Write(buf[:m])
			n += int64(m)
			if err := p.wait(ctx, m); err != nil {
				return false, n, err
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return false, n, rerr
		}
	}
	return hex.EncodeToString(h.Sum(nil)) == hash, n, nil
}

// quarantine moves a damaged blob out of the store and records it.
func (s *Store) quarantine(ctx context.Context, hash string) error {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	src := s.blobPath(hash)
	fi, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("quarantine %s: %w", hash, err)
	}
	size := fi.Size()
	var recorded sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT MAX(size) FROM content_files WHERE sha256 = ?", hash).Scan(&recorded); err != nil {
		return fmt.Errorf("quarantine %s: %w", hash, err)
	}
	if recorded.Valid {
		size = recorded.Int64
	}
	if err := os.MkdirAll(s.quarantineDir, 0o750); err != nil {
		return fmt.Errorf("quarantine %s: %w", hash, err)
	}
	s.damagedMu.Lock()
	defer s.damagedMu.Unlock()
	set, err := s.damagedSetLocked(ctx)
	if err != nil {
		return fmt.Errorf("quarantine %s: %w", hash, err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO content_damaged (sha256, size, found_at) VALUES (?, ?, ?)
		ON CONFLICT DO UPDATE SET found_at = excluded.found_at`, hash, size, s.now().UnixMilli()); err != nil {
		return fmt.Errorf("quarantine %s: %w", hash, err)
	}
	next := maps.Clone(set)
	next[hash] = true
	s.damaged.Store(&next)
	s.hot.remove(hash)
	if err := os.Rename(src, filepath.Join(s.quarantineDir, hash)); err != nil {
		return fmt.Errorf("quarantine %s: %w", hash, err)
	}
	if err := syncDir(filepath.Dir(src)); err != nil {
		return fmt.Errorf("quarantine %s: %w", hash, err)
	}
	s.log.Error("damaged blob moved to quarantine", "blob", hash, "size", size)
	return nil
}

// damagedSetLocked returns the set of damaged blobs, loading it from
// SQLite the first time. The caller holds damagedMu.
func (s *Store) damagedSetLocked(ctx context.Context) (map[string]bool, error) {
	if p := s.damaged.Load(); p != nil {
		return *p, nil
	}
	rows, err := s.db.QueryContext(ctx, "SELECT sha256 FROM content_damaged")
	if err != nil {
		return nil, fmt.Errorf("load damaged blobs: %w", err)
	}
	defer rows.Close()
	set := make(map[string]bool)
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("load damaged blobs: %w", err)
		}
		set[h] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load damaged blobs: %w", err)
	}
	s.damaged.Store(&set)
	return set, nil
}

// damagedList reads the damaged blobs from SQLite.
func (s *Store) damagedList(ctx context.Context) (map[string]bool, error) {
	s.damagedMu.Lock()
	defer s.damagedMu.Unlock()
	s.damaged.Store(nil) // reload: SQLite is the truth
	return s.damagedSetLocked(ctx)
}

// isDamaged reports a quarantined blob; after the first call it reads
// memory only.
func (s *Store) isDamaged(ctx context.Context, hash string) bool {
	if p := s.damaged.Load(); p != nil {
		return (*p)[hash]
	}
	s.damagedMu.Lock()
	defer s.damagedMu.Unlock()
	set, err := s.damagedSetLocked(ctx)
	if err != nil {
		s.log.Warn("load damaged blobs", "err", err)
		return false
	}
	return set[hash]
}

// repaired clears hash from the damaged blobs, if it was one: its blob
// was stored again, or nothing needs it any more. It removes the
// quarantined copy.
func (s *Store) repaired(ctx context.Context, hash string) {
	if !s.isDamaged(ctx, hash) {
		return
	}
	s.damagedMu.Lock()
	defer s.damagedMu.Unlock()
	set, err := s.damagedSetLocked(ctx)
	if err != nil || !set[hash] {
		return
	}
	if _, err := s.db.ExecContext(context.WithoutCancel(ctx), "DELETE FROM content_damaged WHERE sha256 = ?", hash); err != nil {
		s.log.Warn("clear damaged blob", "blob", hash, "err", err)
		return
	}
	next := maps.Clone(set)
	delete(next, hash)
	s.damaged.Store(&next)
	os.Remove(filepath.Join(s.quarantineDir, hash))
	s.log.Info("damaged blob repaired or released", "blob", hash)
}

// DamagedBlob is a blob the scrub found damaged, with what it served.
type DamagedBlob struct {
	SHA256  string
	Size    int64
	FoundAt time.Time
	Files   []PackFile // pack files whose content it is: fetch them again
	Owners  []string   // owners pinning it (hand-ins, fetches)
}

// PackFile names a file of a pack.
type PackFile struct {
	Pack, Path string
}

// Damaged lists the damaged blobs, oldest finding first: what the
// catalogue must fetch again (a hand-imported pack must be imported again).
func (s *Store) Damaged(ctx context.Context) ([]DamagedBlob, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT d.sha256, d.size, d.found_at, 'f', f.pack, f.path
		FROM content_damaged d JOIN content_files f ON f.sha256 = d.sha256
		UNION ALL SELECT d.sha256, d.size, d.found_at, 'o', n.owner, ''
		FROM content_damaged d JOIN content_pins n ON n.sha256 = d.sha256
		UNION ALL SELECT d.sha256, d.size, d.found_at, '', '', '' FROM content_damaged d
		ORDER BY 3, 1, 4, 5, 6`)
	if err != nil {
		return nil, fmt.Errorf("list damaged blobs: %w", err)
	}
	defer rows.Close()
	var out []DamagedBlob
	for rows.Next() {
		var d DamagedBlob
		var found int64
		var kind, a, b string
		if err := rows.Scan(&d.SHA256, &d.Size, &found, &kind, &a, &b); err != nil {
			return nil, fmt.Errorf("list damaged blobs: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].SHA256 != d.SHA256 {
			d.FoundAt = time.UnixMilli(found).UTC()
			out = append(out, d)
		}
		last := &out[len(out)-1]
		switch kind {
		case "f":
			last.Files = append(last.Files, PackFile{a, b})
		case "o":
			last.Owners = append(last.Owners, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list damaged blobs: %w", err)
	}
	return out, nil
}

func (s *Store) setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, "SELECT value FROM content_settings WHERE key = ?", key).Scan(&v)
	if errors.Is(err, errNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read setting %s: %w", key, err)
	}
	return v, nil
}

func (s *Store) setSetting(ctx context.Context, key, value string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO content_settings (key, value) VALUES (?, ?)
		ON CONFLICT DO UPDATE SET value = excluded.value`, key, value); err != nil {
		return fmt.Errorf("write setting %s: %w", key, err)
	}
	return nil
}
