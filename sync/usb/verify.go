package usb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// maxDirEntries bounds how many names files/ may hold beyond the items, so
// a hostile key cannot make Verify list millions of entries.
const maxDirEntries = 10000

// Verify checks the bundle in dir: a strict manifest, every listed file
// present as a regular file (no symbolic link, no device or fifo) with the
// right size and SHA-256, no unlisted file. progress, if not nil, receives
// the bytes hashed and the total. Refusals are *BundleError.
func (c *Courier) Verify(ctx context.Context, dir string, progress func(done, total int64)) (Manifest, error) {
	p, root, err := c.verify(ctx, dir, &progressCounter{fn: progress})
	if root != nil {
		root.Close()
	}
	if err != nil {
		return Manifest{}, err
	}
	return p.Manifest, nil
}

// verify checks the bundle and returns it with the open root, which the
// caller closes (also on error, when not nil).
func (c *Courier) verify(ctx context.Context, dir string, pr *progressCounter) (*parsed, *os.Root, error) {
	fi, err := os.Lstat(dir)
	switch {
	case err != nil:
		return nil, nil, refuse(CodeNotABundle, dir, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, nil, refuse(CodeSymlink, dir, nil)
	case !fi.IsDir():
		return nil, nil, refuse(CodeNotABundle, dir, nil)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, refuse(CodeNotABundle, dir, err)
	}
	data, err := c.readManifest(root)
	if err != nil {
		return nil, root, err
	}
	p, err := parseManifest(data, c.cfg)
	if err != nil {
		return nil, root, err
	}
	if err := checkFilesDir(root, p); err != nil {
		return nil, root, err
	}
	pr.total += p.total
	pr.add(0)
	for _, sum := range p.order {
		if err := verifyFile(ctx, root, sum, p.sizes[sum], pr); err != nil {
			return nil, root, err
		}
	}
	return p, root, nil
}

func (c *Courier) readManifest(root *os.Root) ([]byte, error) {
	f, err := openRegular(root, ManifestName, CodeIncomplete)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("verify bundle: %w", err)
	}
	if fi.Size() > c.cfg.MaxManifestBytes {
		return nil, refuseDetail(CodeManifestTooLarge, fmt.Sprintf("%d octets, maximum %d", fi.Size(), c.cfg.MaxManifestBytes), fmt.Sprintf("%d bytes, at most %d", fi.Size(), c.cfg.MaxManifestBytes), nil)
	}
	data, err := io.ReadAll(io.LimitReader(f, c.cfg.MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("verify bundle: read manifest: %w", err)
	}
	if int64(len(data)) > c.cfg.MaxManifestBytes {
		return nil, refuseDetail(CodeManifestTooLarge, fmt.Sprintf("plus de %d octets", c.cfg.MaxManifestBytes), fmt.Sprintf("more than %d bytes", c.cfg.MaxManifestBytes), nil)
	}
	return data, nil
}

// openRegular opens name in root without following a symbolic link and
// without blocking on a fifo, and refuses anything but a regular file. A
// missing file is refused with missingCode.
func openRegular(root *os.Root, name, missingCode string) (*os.File, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, refuse(missingCode, name, err)
		}
		return nil, fmt.Errorf("verify bundle: %w", err)
	}
	if err := regular(name, fi); err != nil {
		return nil, err
	}
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, refuse(CodeSymlink, name, err)
		}
		return nil, fmt.Errorf("verify bundle: %w", err)
	}
	// The name may have changed between Lstat and open: check what was opened.
	fi, err = f.Stat()
	if err == nil {
		err = regular(name, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func regular(name string, fi fs.FileInfo) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return refuse(CodeSymlink, name, nil)
	case !fi.Mode().IsRegular():
		return refuse(CodeSpecialFile, name, nil)
	}
	return nil
}

// checkFilesDir refuses a files/ that is not a plain folder and any
// unlisted entry in it. Names starting with a dot are left alone: desktop
// systems add them to keys (.DS_Store, ._* resource forks) and Deliver
// never reads them.
func checkFilesDir(root *os.Root, p *parsed) error {
	fi, err := root.Lstat(FilesDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return refuse(CodeMissingFile, FilesDir, err)
	case err != nil:
		return fmt.Errorf("verify bundle: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return refuse(CodeSymlink, FilesDir, nil)
	case !fi.IsDir():
		return refuse(CodeSpecialFile, FilesDir, nil)
	}
	d, err := root.Open(FilesDir)
	if err != nil {
		return fmt.Errorf("verify bundle: %w", err)
	}
	defer d.Close()
	seen := 0
	for {
		entries, err := d.ReadDir(256)
		for _, e := range entries {
			seen++
			if seen > len(p.order)+maxDirEntries {
				return refuseDetail(CodeTooLarge, "trop de fichiers dans files/", "too many files in files/", nil)
			}
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			if _, ok := p.sizes[name]; !ok {
				return refuse(CodeUnlistedFile, FilesDir+"/"+name, nil)
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(entries) == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("verify bundle: list files: %w", err)
		}
	}
}

// verifyFile hashes files/<sum> and checks its size and hash.
func verifyFile(ctx context.Context, root *os.Root, sum string, size int64, pr *progressCounter) error {
	name := FilesDir + "/" + sum
	f, err := openRegular(root, name, CodeMissingFile)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("verify bundle: %w", err)
	}
	switch {
	case fi.Size() < size:
		return refuse(CodeTruncated, name, nil)
	case fi.Size() > size:
		return refuse(CodeSizeMismatch, name, nil)
	}
	h := sha256.New()
	n, err := copyHashing(ctx, h, io.LimitReader(f, size+1), pr)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("verify bundle: read %s: %w", name, err)
	}
	switch {
	case n < size:
		return refuse(CodeTruncated, name, nil)
	case n > size:
		return refuse(CodeSizeMismatch, name, nil)
	case hex.EncodeToString(h.Sum(nil)) != sum:
		return refuse(CodeHashMismatch, name, nil)
	}
	return nil
}
