package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"unicode/utf8"
)

// CommitOptions says where a committed pack comes from.
type CommitOptions struct {
	// Source is the catalogue source id, "" for packs imported by hand.
	// Packs with a Source can be evicted (they can be fetched again),
	// others never.
	Source string
}

// CommitPack publishes a pack (format v1 manifest JSON, docs/content-pack.md)
// whose files are all blobs already in the store (fetched with FetchBlob or
// stored with PutBlob). It refuses, with a *PackError, a manifest that is
// invalid or names a blob the store lacks (CodeMissingFile: fetch it again)
// or of another size (CodeSizeMismatch). It replaces an existing pack of the
// same id atomically; the teacher's pin of the pack survives. Committing
// the same manifest with the same Source again is a no-op
// (AlreadyPresent).
func (s *Store) CommitPack(ctx context.Context, manifest []byte, opt CommitOptions) (PackInfo, error) {
	if len(opt.Source) > 255 || !utf8.ValidString(opt.Source) || !printable(opt.Source) {
		return PackInfo{}, fmt.Errorf("commit pack: invalid source %q", displayable(opt.Source))
	}
	if int64(len(manifest)) > s.cfg.MaxManifestBytes {
		return PackInfo{}, refuse(CodeManifestTooLarge, fmt.Sprintf("%d octets / %d bytes", len(manifest), len(manifest)), nil)
	}
	m, err := parseManifest(manifest, s.cfg)
	if err != nil {
		return PackInfo{}, err
	}
	sum := sha256.Sum256(manifest)
	manifestHash := hex.EncodeToString(sum[:])

	s.importMu.Lock()
	defer s.importMu.Unlock()
	var oldVersion, oldHash, oldSource string
	err = s.db.QueryRowContext(ctx, "SELECT version, manifest_sha256, source FROM content_packs WHERE id = ?", m.ID).Scan(&oldVersion, &oldHash, &oldSource)
	switch {
	case errors.Is(err, errNoRows):
	case err != nil:
		return PackInfo{}, fmt.Errorf("commit pack %s: %w", m.ID, err)
	case oldVersion == m.Version && oldHash == manifestHash && oldSource == opt.Source:
		info, err := s.pack(ctx, m.ID)
		info.AlreadyPresent = true
		return info, err
	}
	for _, p := range m.order {
		f := m.files[p]
		fi, err := os.Stat(s.blobPath(f.SHA256))
		switch {
		case errors.Is(err, os.ErrNotExist):
			return PackInfo{}, refuse(CodeMissingFile, p, fmt.Errorf("no blob %s", f.SHA256))
		case err != nil:
			return PackInfo{}, fmt.Errorf("commit pack %s: %w", m.ID, err)
		case fi.Size() != f.Size:
			return PackInfo{}, refuse(CodeSizeMismatch, p, fmt.Errorf("blob %s has %d bytes, manifest says %d", f.SHA256, fi.Size(), f.Size))
		}
	}
	bodies := s.articleBodies(m)
	old, oldAt, err := s.commit(ctx, m, manifestHash, bodies, s.now(), opt.Source)
	if err != nil {
		return PackInfo{}, fmt.Errorf("commit pack %s: %w", m.ID, err)
	}
	if len(old) > 0 {
		bg := context.WithoutCancel(ctx)
		s.releaseFetchPins(bg, old, oldAt)
		s.removeUnreferenced(bg, old)
	}
	s.invalidateIndex()
	s.log.Info("pack committed", "pack", m.ID, "version", m.Version, "source", opt.Source, "files", len(m.order), "replaced", oldVersion)
	return s.pack(ctx, m.ID)
}
