package usb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// FolderSink delivers items into Dir/<destination>/<remote path>: a local
// folder or a mounted share. Files are written to a temporary name, synced
// and linked to their final name, which never overwrites an existing file.
type FolderSink struct {
	Dir string
}

func (s FolderSink) name(it Item) (string, error) {
	if !ValidPath(it.Destination) || strings.Contains(it.Destination, "/") || strings.HasPrefix(it.Destination, ".") {
		return "", fmt.Errorf("folder sink: destination %q is not a folder name", it.Destination)
	}
	if !ValidPath(it.RemotePath) {
		return "", refuse(CodeBadPath, it.RemotePath, nil)
	}
	return it.Destination + "/" + it.RemotePath, nil
}

// Stat reports the file at the item's name, hashing it.
func (s FolderSink) Stat(ctx context.Context, it Item) (Remote, error) {
	name, err := s.name(it)
	if err != nil {
		return Remote{}, err
	}
	root, err := os.OpenRoot(s.Dir)
	if err != nil {
		return Remote{}, fmt.Errorf("folder sink: %w", err)
	}
	defer root.Close()
	return statFile(ctx, root, name)
}

func statFile(ctx context.Context, root *os.Root, name string) (Remote, error) {
	fi, err := root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Remote{}, nil
	case err != nil:
		return Remote{}, fmt.Errorf("folder sink: %w", err)
	case !fi.Mode().IsRegular():
		// Something else holds the name: never the item.
		return Remote{Exists: true, Size: -1}, nil
	}
	f, err := root.Open(name)
	if err != nil {
		return Remote{}, fmt.Errorf("folder sink: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := copyHashing(ctx, h, f, &progressCounter{})
	if err != nil {
		return Remote{}, fmt.Errorf("folder sink: read %s: %w", name, err)
	}
	return Remote{Exists: true, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Put writes body under the item's name, creating folders as needed. An
// existing file with the same content is success; with another content,
// a *BundleError with CodeConflict.
func (s FolderSink) Put(ctx context.Context, it Item, body io.Reader) (err error) {
	name, err := s.name(it)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(s.Dir)
	if err != nil {
		return fmt.Errorf("folder sink: %w", err)
	}
	defer root.Close()
	dir := path.Dir(name)
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("folder sink: %w", err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := dir + "/.preau-tmp-" + hex.EncodeToString(rnd[:])
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("folder sink: %w", err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		root.Remove(tmp)
	}()
	if _, err := copyHashing(ctx, f, body, &progressCounter{}); err != nil {
		return fmt.Errorf("folder sink: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("folder sink: sync %s: %w", name, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return fmt.Errorf("folder sink: close %s: %w", name, err)
	}
	if err := publish(ctx, root, tmp, name, it); err != nil {
		return err
	}
	return syncDir(root, dir)
}

// publish gives tmp its final name without overwriting: a hard link fails
// if the name exists. File systems without hard links (FAT) check first and
// rename, which leaves a window only against a concurrent writer.
func publish(ctx context.Context, root *os.Root, tmp, name string, it Item) error {
	err := root.Link(tmp, name)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		if _, lerr := root.Lstat(name); errors.Is(lerr, fs.ErrNotExist) {
			if err := root.Rename(tmp, name); err != nil {
				return fmt.Errorf("folder sink: %w", err)
			}
			return nil
		}
	}
	rem, serr := statFile(ctx, root, name)
	if serr != nil {
		return serr
	}
	if rem.Exists && rem.Size == it.Size && rem.SHA256 == it.SHA256 {
		return nil
	}
	return refuse(CodeConflict, it.RemotePath, err)
}
