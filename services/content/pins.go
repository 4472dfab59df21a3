package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrBlobTooLarge means PutBlob read more than its limit.
var ErrBlobTooLarge = errors.New("content: blob larger than allowed")

// PutBlob stores the bytes of r as a blob and pins it under owner (for
// example "handin:42"), so that GC and pack removal keep it until Unpin.
// It reads at most max bytes (0: the store's MaxFileBytes) and refuses a
// longer stream with ErrBlobTooLarge. The blob is written like an imported
// one: temp file, fsync, rename, fsync of the folder; the pin is recorded
// only once the blob is durable. A crash in between leaves an unpinned blob
// that GC removes after a week.
func (s *Store) PutBlob(ctx context.Context, owner string, r io.Reader, max int64) (hash string, size int64, err error) {
	if owner == "" {
		return "", 0, errors.New("put blob: no owner")
	}
	if max <= 0 || (s.cfg.MaxFileBytes > 0 && max > s.cfg.MaxFileBytes) {
		max = s.cfg.MaxFileBytes
	}
	tmp, err := os.CreateTemp(s.tmpDir, "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("put blob: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx: ctx, r: io.LimitReader(r, max+1)})
	if err != nil {
		return "", 0, fmt.Errorf("put blob: %w", diskError(err))
	}
	if size > max {
		return "", 0, fmt.Errorf("put blob: %w (%d bytes max)", ErrBlobTooLarge, max)
	}
	hash = hex.EncodeToString(h.Sum(nil))
	if err := tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("put blob: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("put blob: close: %w", err)
	}
	s.importMu.Lock() // GC must not judge the blob between rename and pin
	defer s.importMu.Unlock()
	if s.blobExists(hash) {
		os.Remove(tmp.Name())
	} else if err := s.placeBlob(ctx, tmp.Name(), hash); err != nil {
		return "", 0, fmt.Errorf("put blob: %w", err)
	}
	tmp = nil
	if _, err := s.db.ExecContext(ctx, `INSERT INTO content_pins (owner, sha256, pinned_at) VALUES (?, ?, ?)
		ON CONFLICT DO NOTHING`, owner, hash, s.now().UnixMilli()); err != nil {
		return "", 0, fmt.Errorf("put blob: pin: %w", err)
	}
	return hash, size, nil
}

// OpenBlob opens a blob by hash for reading; the caller closes it.
func (s *Store) OpenBlob(hash string) (*os.File, error) {
	if !validHash(hash) {
		return nil, fmt.Errorf("open blob %q: %w", hash, ErrNotFound)
	}
	f, err := openBlobFile(s.blobPath(hash))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s: %w", hash, ErrNotFound)
	}
	return f, err
}

// Unpin drops owner's pins; blobs nothing else references are removed at
// once.
func (s *Store) Unpin(ctx context.Context, owner string) error {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	rows, err := s.db.QueryContext(ctx, "DELETE FROM content_pins WHERE owner = ? RETURNING sha256", owner)
	if err != nil {
		return fmt.Errorf("unpin %s: %w", owner, err)
	}
	hashes := make(map[string]bool)
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return fmt.Errorf("unpin %s: %w", owner, err)
		}
		hashes[h] = true
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("unpin %s: %w", owner, err)
	}
	s.removeUnreferenced(context.WithoutCancel(ctx), hashes)
	return nil
}

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
