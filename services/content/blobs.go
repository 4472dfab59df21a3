package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// blobPath is where the blob of hash lives. A blob present under its name
// has been verified when it was written: writes are atomic.
func (s *Store) blobPath(hash string) string {
	return filepath.Join(s.blobsDir, hash[:2], hash)
}

func (s *Store) blobExists(hash string) bool {
	fi, err := os.Lstat(s.blobPath(hash))
	return err == nil && fi.Mode().IsRegular()
}

// copier streams one file into the blob store, reporting progress at most
// every progressEvery.
type copier struct {
	s      *Store
	ctx    context.Context
	report func(Progress)
	state  *Progress
	last   time.Time
	buf    []byte
	res    *reservation // the import's room: what is written counts against it
}

const progressEvery = 100 * time.Millisecond

// writeBlob copies exactly f.Size bytes of r into a temp file while hashing
// it, checks the size and hash against the manifest, fsyncs and renames the
// file into place, then fsyncs the folder. It reads one byte beyond the size
// when tooLong is true, to detect a longer stream (folder sources).
// The returned PackError names path.
func (c *copier) writeBlob(r io.Reader, f manifestFile, checkLonger bool) error {
	tmp, err := os.CreateTemp(c.s.tmpDir, "blob-*")
	if err != nil {
		return fmt.Errorf("write blob of %s: %w", f.Path, err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	var done int64
	for done < f.Size {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		n := int64(len(c.buf))
		if f.Size-done < n {
			n = f.Size - done
		}
		m, rerr := io.ReadFull(r, c.buf[:n])
		if m > 0 {
			h.Write(c.buf[:m])
			if _, err := tmp.Write(c.buf[:m]); err != nil {
				return fmt.Errorf("write blob of %s: %w", f.Path, diskError(err))
			}
			done += int64(m)
			c.state.BytesDone += int64(m)
			if c.res != nil {
				c.res.have.Add(int64(m))
			}
			c.tick()
		}
		if rerr != nil {
			if errors.Is(rerr, io.ErrUnexpectedEOF) || errors.Is(rerr, io.EOF) {
				return refuse(CodeTruncated, f.Path, rerr)
			}
			var pe *PackError
			if errors.As(rerr, &pe) {
				return pe
			}
			return fmt.Errorf("read %s: %w", f.Path, rerr)
		}
	}
	if checkLonger {
		var one [1]byte
		if n, _ := io.ReadFull(r, one[:]); n > 0 {
			return refuse(CodeSizeMismatch, f.Path, nil)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return refuse(CodeHashMismatch, f.Path, fmt.Errorf("sha256 %s, want %s", got, f.SHA256))
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write blob of %s: sync: %w", f.Path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write blob of %s: close: %w", f.Path, err)
	}
	if err := c.s.placeBlob(c.ctx, tmp.Name(), f.SHA256); err != nil {
		return fmt.Errorf("write blob of %s: %w", f.Path, err)
	}
	tmp = nil
	return nil
}

func (c *copier) tick() {
	if c.report == nil {
		return
	}
	now := time.Now()
	if now.Sub(c.last) >= progressEvery {
		c.last = now
		c.report(*c.state)
	}
}

// emit reports the state now (once per file).
func (c *copier) emit() {
	if c.report != nil {
		c.last = time.Now()
		c.report(*c.state)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// hashFile returns the SHA-256 of the file at path.
func hashFile(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
