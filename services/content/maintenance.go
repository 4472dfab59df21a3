package content

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// GC removes the blobs no pack references and the partial downloads, when
// they are older than olderThan. Blobs an interrupted import wrote are kept
// until then so that a retry resumes without copying them again; a refused
// import removes its own blobs at once. It returns how many files it removed
// and their bytes.
func (s *Store) GC(ctx context.Context, olderThan time.Duration) (removed int, freed int64, err error) {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	referenced, err := s.referencedBlobs(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("gc: %w", err)
	}
	cutoff := s.now().Add(-olderThan)
	err = s.blobNames(func(hash, path string, info fs.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if referenced[hash] || info.ModTime().After(cutoff) {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove blob %s: %w", hash, err)
		}
		removed++
		freed += info.Size()
		return nil
	})
	if err != nil {
		return removed, freed, fmt.Errorf("gc: %w", err)
	}
	entries, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return removed, freed, fmt.Errorf("gc: %w", err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !strings.HasPrefix(e.Name(), downloadPrefix) || info.ModTime().After(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(s.tmpDir, e.Name())); err == nil {
			removed++
			freed += info.Size()
		}
	}
	// Quarantined copies whose blob was repaired or released (a crash
	// between the two steps leaves one).
	damaged, err := s.damagedList(ctx)
	if err != nil {
		return removed, freed, fmt.Errorf("gc: %w", err)
	}
	if entries, err := os.ReadDir(s.quarantineDir); err == nil {
		for _, e := range entries {
			info, err := e.Info()
			if err != nil || damaged[e.Name()] || info.ModTime().After(cutoff) {
				continue
			}
			if err := os.Remove(filepath.Join(s.quarantineDir, e.Name())); err == nil {
				removed++
				freed += info.Size()
			}
		}
	}
	if removed > 0 {
		s.log.Info("content gc", "removed", removed, "bytes", freed)
	}
	return removed, freed, nil
}

func (s *Store) referencedBlobs(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT sha256 FROM content_files UNION SELECT sha256 FROM content_pins")
	if err != nil {
		return nil, fmt.Errorf("list referenced blobs: %w", err)
	}
	defer rows.Close()
	out := make(map[string]bool)
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("list referenced blobs: %w", err)
		}
		out[h] = true
	}
	return out, rows.Err()
}

// Verify hashes every blob on disk again and returns the names of those
// whose content does not match (bit rot, tampering).
func (s *Store) Verify(ctx context.Context) ([]string, error) {
	var bad []string
	err := s.blobNames(func(hash, path string, _ fs.FileInfo) error {
		got, err := hashFile(ctx, path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("verify blob %s: %w", hash, err)
		}
		if got != hash {
			bad = append(bad, hash)
		}
		return nil
	})
	if err != nil {
		return bad, fmt.Errorf("verify: %w", err)
	}
	return bad, nil
}

// Fsck checks that every file row names a blob present with the right size,
// and returns one line per problem. It does not hash (see Verify).
func (s *Store) Fsck(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT pack, path, sha256, size FROM content_files ORDER BY pack, path")
	if err != nil {
		return nil, fmt.Errorf("fsck: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var pack, path, hash string
		var size int64
		if err := rows.Scan(&pack, &path, &hash, &size); err != nil {
			return nil, fmt.Errorf("fsck: %w", err)
		}
		fi, err := os.Stat(s.blobPath(hash))
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s/%s: blob %s: %v", pack, path, hash, err))
		case fi.Size() != size:
			problems = append(problems, fmt.Sprintf("%s/%s: blob %s has %d bytes, want %d", pack, path, hash, fi.Size(), size))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fsck: %w", err)
	}
	var orphans int
	if err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM content_search s WHERE NOT EXISTS (SELECT 1 FROM content_items i WHERE i.pack = s.pack AND i.id = s.item)) +
		(SELECT COUNT(*) FROM content_items i WHERE NOT EXISTS (SELECT 1 FROM content_search s WHERE i.pack = s.pack AND i.id = s.item))`).Scan(&orphans); err != nil {
		return nil, fmt.Errorf("fsck: %w", err)
	}
	if orphans > 0 {
		problems = append(problems, fmt.Sprintf("%d search rows out of step with items", orphans))
	}
	return problems, nil
}
