package usb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// fatMaxFile is the first size FAT32 cannot store.
const fatMaxFile = 4 << 30

// spaceMargin is left free on the key beyond the bundle's files, for the
// manifest, folder entries and file system overhead.
const spaceMargin = 4 << 20

// Export writes items as a new bundle in dir (the USB key's folder) and
// returns it. open returns the content of a file by its SHA-256 (the outbox
// blob); every byte is hashed on the way and checked against the item.
// Each file is written to a temporary name, synced and renamed; the
// manifest comes last, so a bundle without manifest.json is an interrupted
// export, which Verify refuses. On failure the partial bundle is removed.
// progress, if not nil, receives the bytes written and the total.
func (c *Courier) Export(ctx context.Context, dir string, items []Item, open func(sha256 string) (*os.File, error), progress func(done, total int64)) (Bundle, error) {
	if len(items) == 0 {
		return Bundle{}, refuse(CodeNothingToExport, "", nil)
	}
	if open == nil {
		return Bundle{}, errors.New("export: no blob opener")
	}
	m := Manifest{
		Format:  Format,
		Box:     c.cfg.BoxID,
		Created: c.cfg.Now().UTC().Truncate(time.Second),
		Items:   append([]Item(nil), items...),
	}
	p, err := validate(m, c.cfg)
	if err != nil {
		var be *BundleError
		if errors.As(err, &be) && be.Code == CodeManifestInvalid {
			// Same detail, but the words of an export, not of a refused bundle.
			return Bundle{}, refuseDetail(CodeInvalidItem, be.detailFR, be.detailEN, err)
		}
		return Bundle{}, err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Bundle{}, fmt.Errorf("export: encode manifest: %w", err)
	}
	data = append(data, '\n')
	if int64(len(data)) > c.cfg.MaxManifestBytes {
		return Bundle{}, refuseDetail(CodeTooLarge, fmt.Sprintf("manifeste de %d octets", len(data)), fmt.Sprintf("manifest of %d bytes", len(data)), nil)
	}

	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return Bundle{}, refuse(CodeBadTarget, dir, err)
	}
	free, fat, err := volume(dir)
	if err != nil {
		return Bundle{}, refuse(CodeBadTarget, dir, err)
	}
	if need := p.total + int64(len(data)) + spaceMargin; need > free {
		return Bundle{}, refuseDetail(CodeNoSpace, fmt.Sprintf("%d Mio nécessaires, %d Mio libres", need>>20, free>>20), fmt.Sprintf("%d MiB needed, %d MiB free", need>>20, free>>20), nil)
	}
	if fat {
		for _, it := range m.Items {
			if it.Size >= fatMaxFile {
				return Bundle{}, refuse(CodeFATLimit, it.RemotePath, nil)
			}
		}
	}

	bundleDir, err := makeBundleDir(dir, bundleName(c.cfg.BoxID, m.Created))
	if err != nil {
		return Bundle{}, fmt.Errorf("export: %w", err)
	}
	b := Bundle{Dir: bundleDir, Manifest: m, Files: len(p.order), Bytes: p.total}
	if err := c.writeBundle(ctx, bundleDir, p, data, open, progress); err != nil {
		if rmErr := os.RemoveAll(bundleDir); rmErr != nil {
			c.log.Warn("export: remove partial bundle", "dir", bundleDir, "err", rmErr)
		}
		return Bundle{}, err
	}
	c.log.Info("bundle exported", "dir", bundleDir, "items", len(m.Items), "files", b.Files, "bytes", b.Bytes)
	return b, nil
}

func (c *Courier) writeBundle(ctx context.Context, bundleDir string, p *parsed, manifest []byte, open func(string) (*os.File, error), progress func(done, total int64)) error {
	root, err := os.OpenRoot(bundleDir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer root.Close()
	if err := root.Mkdir(FilesDir, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	pr := &progressCounter{total: p.total, fn: progress}
	pr.add(0)
	for _, sum := range p.order {
		if err := copyBlob(ctx, root, sum, p.sizes[sum], open, pr); err != nil {
			return err
		}
	}
	if err := syncDir(root, FilesDir); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := writeFileAtomic(root, ManifestName, manifest); err != nil {
		return fmt.Errorf("export: write manifest: %w", err)
	}
	if err := syncDir(root, "."); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	// The bundle's own entry lives in the key's folder.
	parent, err := os.Open(filepath.Dir(bundleDir))
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer parent.Close()
	if err := parent.Sync(); err != nil {
		return fmt.Errorf("export: sync %s: %w", filepath.Dir(bundleDir), err)
	}
	return nil
}

// copyBlob copies the blob sum into files/<sum> through a temporary file,
// checking its size and hash.
func copyBlob(ctx context.Context, root *os.Root, sum string, size int64, open func(string) (*os.File, error), pr *progressCounter) error {
	src, err := open(sum)
	if err != nil {
		return fmt.Errorf("export: open blob %s: %w", sum, err)
	}
	defer src.Close()
	tmpName := FilesDir + "/.tmp-" + sum
	dst, err := root.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer func() {
		if dst != nil {
			dst.Close()
		}
	}()
	h := sha256.New()
	n, err := copyHashing(ctx, io.MultiWriter(dst, h), io.LimitReader(src, size+1), pr)
	if err != nil {
		return fmt.Errorf("export: copy blob %s: %w", sum, err)
	}
	if n != size || hex.EncodeToString(h.Sum(nil)) != sum {
		return refuse(CodeCorruptBlob, sum, nil)
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("export: sync %s: %w", sum, err)
	}
	err = dst.Close()
	dst = nil
	if err != nil {
		return fmt.Errorf("export: close %s: %w", sum, err)
	}
	if err := root.Rename(tmpName, FilesDir+"/"+sum); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// copyHashing copies src to dst in 256 KiB steps, checking ctx between
// steps and counting progress. dst usually includes a hash.
func copyHashing(ctx context.Context, dst io.Writer, src io.Reader, pr *progressCounter) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		r, rerr := src.Read(buf)
		if r > 0 {
			if _, err := dst.Write(buf[:r]); err != nil {
				return n, err
			}
			n += int64(r)
			pr.add(int64(r))
		}
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// writeFileAtomic writes data to name inside root: temporary file, sync,
// rename.
func writeFileAtomic(root *os.Root, name string, data []byte) error {
	tmp := "." + name + ".tmp"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return root.Rename(tmp, name)
}

func syncDir(root *os.Root, name string) error {
	d, err := root.Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	return nil
}

// bundleName is preau-export-<box>-<UTC time>: the box id folded to
// lower-case ASCII letters, digits and dashes, the time without colons,
// so the name is valid on FAT and exFAT.
func bundleName(box string, t time.Time) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(box) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	slug := strings.Trim(b.String(), "-")
	if slug == "" {
		slug = "box"
	}
	return "preau-export-" + slug + "-" + t.UTC().Format("20060102T150405Z")
}

// makeBundleDir creates dir/name, or dir/name-2, -3… if it exists.
func makeBundleDir(dir, name string) (string, error) {
	for i := 1; i < 100; i++ {
		p := filepath.Join(dir, name)
		if i > 1 {
			p = fmt.Sprintf("%s-%d", p, i)
		}
		err := os.Mkdir(p, 0o755)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("create bundle folder %s: too many with the same name", name)
}

// progressCounter calls fn with the running total, if fn is set.
type progressCounter struct {
	done, total int64
	fn          func(done, total int64)
}

func (p *progressCounter) add(n int64) {
	p.done += n
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
}
