package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FetchRequest asks FetchBlob for one file.
type FetchRequest struct {
	Owner    string                  // blob pin owner kept after success, e.g. "catalog:tube:abcd" (required)
	URL      string                  // http(s)
	Size     int64                   // expected exact size; -1 when unknown (then the response's length rules)
	SHA256   string                  // expected hash, "" when unknown
	Doer     Doer                    // HTTP client to use (the budget's paced client); nil = the Store's own
	Progress func(done, total int64) // optional, at most four calls a second; total -1 while unknown
}

// FetchResult is what FetchBlob stored.
type FetchResult struct {
	SHA256  string
	Size    int64
	Resumed int64 // bytes taken from a previous partial download, not fetched again
}

// FetchBlob downloads one file into the blob store and pins it under
// r.Owner. The partial download lives in Dir/tmp with a state file; it
// resumes with Range and If-Range from the last verified (fsynced and
// recorded) byte after a cut connection, a cancelled context, a crash or
// kill -9, re-hashing the kept prefix from disk. A 200 answer to a resume
// means the file changed: the download starts again from 0.
//
// Before and while it writes, FetchBlob makes room under the quota and
// MinFreeBytes by evicting least-recently-used catalogue packs; when that
// cannot be enough it returns a *StoreFullError (errors.Is ErrStoreFull)
// and evicts nothing. A size or hash other than expected, a server lying
// about lengths or ranges, or a client error status return an error
// wrapping ErrFetchRefused and discard the partial file. Any other error
// is transient: call again later.
//
// The pin (like PutBlob's) keeps the blob until a pack referencing it is
// committed and later goes away (removed, evicted, replaced), or until
// Unpin(owner). A successful fetch of a damaged blob's hash repairs it.
func (s *Store) FetchBlob(ctx context.Context, r FetchRequest) (FetchResult, error) {
	lower := strings.ToLower(r.URL)
	switch {
	case r.Owner == "":
		return FetchResult{}, errors.New("fetch blob: no owner")
	case !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://"):
		return FetchResult{}, fmt.Errorf("fetch blob %q: not an http(s) address", r.URL)
	case r.Size < -1:
		return FetchResult{}, fmt.Errorf("fetch blob %s: size %d", r.URL, r.Size)
	case r.SHA256 != "" && !validHash(r.SHA256):
		return FetchResult{}, fmt.Errorf("fetch blob %s: invalid sha256 %q", r.URL, r.SHA256)
	case r.Size > s.cfg.MaxFileBytes:
		return FetchResult{}, fmt.Errorf("fetch blob %s: %d bytes: %w (%w, %d bytes max)", r.URL, r.Size, ErrFetchRefused, errTooLarge, s.cfg.MaxFileBytes)
	}
	doer := r.Doer
	if doer == nil {
		doer = s.http
	}
	if doer == nil {
		return FetchResult{}, fmt.Errorf("fetch blob %s: no http client", r.URL)
	}
	if r.SHA256 != "" {
		if fi, err := os.Stat(s.blobPath(r.SHA256)); err == nil && fi.Mode().IsRegular() {
			if r.Size >= 0 && fi.Size() != r.Size {
				return FetchResult{}, fmt.Errorf("fetch blob %s: %w: the blob of sha256 %s has %d bytes, not %d", r.URL, ErrFetchRefused, r.SHA256, fi.Size(), r.Size)
			}
			if err := s.pinFetched(ctx, r.Owner, r.SHA256); err != nil {
				return FetchResult{}, fmt.Errorf("fetch blob %s: %w", r.URL, err)
			}
			return FetchResult{SHA256: r.SHA256, Size: fi.Size()}, nil
		}
	}

	res := s.reserve()
	defer s.unreserve(res)
	t := &transfer{
		s: s, doer: doer, url: r.URL, path: s.fetchPath(r.URL),
		want: r.Size, limit: s.cfg.MaxFileBytes,
		hash: sha256.New(), progress: r.Progress, res: res,
	}
	size, hash, done, err := s.fetchToTemp(ctx, t, r.SHA256)
	if err != nil {
		return FetchResult{}, err
	}
	// importMu after the download's lock, never with it: Import takes them
	// the other way round.
	s.importMu.Lock() // GC must not judge the blob between rename and pin
	defer s.importMu.Unlock()
	if s.blobExists(hash) {
		os.Remove(done)
	} else if err := s.placeBlob(ctx, done, hash); err != nil {
		os.Remove(done)
		return FetchResult{}, fmt.Errorf("fetch blob %s: %w", r.URL, err)
	}
	if err := s.pinFetchedLocked(ctx, r.Owner, hash); err != nil {
		return FetchResult{}, fmt.Errorf("fetch blob %s: %w", r.URL, err)
	}
	s.log.Info("blob fetched", "url", r.URL, "sha256", hash, "size", size, "resumed", t.resumed, "owner", r.Owner)
	return FetchResult{SHA256: hash, Size: size, Resumed: t.resumed}, nil
}

// fetchToTemp runs t under the download's lock, checks the hash and moves
// the complete file to a temp name of its own (New removes it if the
// process dies before it is placed).
func (s *Store) fetchToTemp(ctx context.Context, t *transfer, want string) (size int64, hash, done string, err error) {
	release, err := s.lockDownload(ctx, t.path)
	if err != nil {
		return 0, "", "", fmt.Errorf("fetch blob %s: %w", t.url, err)
	}
	defer release()
	size, err = t.run(ctx)
	if err != nil {
		if errors.Is(err, errTooLarge) && !errors.Is(err, ErrFetchRefused) {
			err = fmt.Errorf("%w: %w", ErrFetchRefused, err)
		}
		return 0, "", "", fmt.Errorf("fetch blob: %w", err)
	}
	hash = hex.EncodeToString(t.hash.Sum(nil))
	if want != "" && hash != want {
		os.Remove(t.path)
		os.Remove(t.path + ".json")
		return 0, "", "", fmt.Errorf("fetch blob %s: %w: sha256 %s, want %s", t.url, ErrFetchRefused, hash, want)
	}
	done = filepath.Join(s.tmpDir, "fetched-"+hash)
	if err := os.Rename(t.path, done); err != nil {
		return 0, "", "", fmt.Errorf("fetch blob %s: %w", t.url, err)
	}
	os.Remove(t.path + ".json")
	return size, hash, done, nil
}

func (s *Store) pinFetched(ctx context.Context, owner, hash string) error {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	return s.pinFetchedLocked(ctx, owner, hash)
}

func (s *Store) pinFetchedLocked(ctx context.Context, owner, hash string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO content_pins (owner, sha256, pinned_at, fetched) VALUES (?, ?, ?, 1)
		ON CONFLICT DO UPDATE SET pinned_at = excluded.pinned_at WHERE fetched = 1`, owner, hash, s.now().UnixMilli()); err != nil {
		return fmt.Errorf("pin %s: %w", hash, err)
	}
	return nil
}

// placeBlob moves tmp, a complete, verified and fsynced file of Dir/tmp,
// into the blob store under hash: rename, then fsync of the folder. It
// repairs the blob if the scrub had found it damaged. The caller holds
// importMu.
func (s *Store) placeBlob(ctx context.Context, tmp, hash string) error {
	dir := filepath.Join(s.blobsDir, hash[:2])
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return diskError(err)
	}
	if err := os.Rename(tmp, s.blobPath(hash)); err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	s.repaired(ctx, hash)
	return nil
}
