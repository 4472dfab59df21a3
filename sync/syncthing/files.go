package syncthing

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"
)

// tmpDirName is the folder, inside the shared folder and ignored by
// Syncthing (.stignore), where Put writes before giving the final name.
const tmpDirName = ".preau-tmp"

var hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// validPath reports whether p can name a file of the shared folder:
// relative, slash-separated, clean, valid UTF-8 without control characters
// or backslashes, at most 255 bytes per segment and 1024 in all, and no
// segment starting with a dot (Syncthing's .stfolder, .stignore and
// temporary files, and ours, are hidden names).
func validPath(p string) bool {
	if p == "" || len(p) > 1024 || !utf8.ValidString(p) {
		return false
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return false
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || strings.HasPrefix(seg, ".") || len(seg) > 255 || strings.HasPrefix(seg, "~syncthing~") {
			return false
		}
	}
	return true
}

// Put adds a file to the shared folder under relPath (the outbox's
// deterministic remote path). It reads r to the end and checks size and
// sha256 (hex) before the file gets its name; the name is then given with a
// hard link, which never replaces an existing file. Putting the same
// content twice is a success; different content under an existing name is
// ErrConflict. Put works while Syncthing is stopped: the file is sent when
// it runs. When it runs, Put asks it to scan the file now.
func (s *Syncthing) Put(ctx context.Context, relPath string, r io.Reader, size int64, sum string) error {
	if !validPath(relPath) {
		return newError(CodeBadPath, relPath, nil)
	}
	if size < 0 || !hashPattern.MatchString(sum) {
		return fmt.Errorf("syncthing put %s: want a size >= 0 and a lower-case hex sha256", relPath)
	}
	if err := os.MkdirAll(s.cfg.FolderPath, 0o750); err != nil {
		return fmt.Errorf("syncthing put %s: %w", relPath, err)
	}
	root, err := os.OpenRoot(s.cfg.FolderPath)
	if err != nil {
		return fmt.Errorf("syncthing put %s: %w", relPath, err)
	}
	defer root.Close()

	if have, err := statFile(ctx, root, relPath); err != nil {
		return fmt.Errorf("syncthing put %s: %w", relPath, err)
	} else if have.exists {
		if have.size == size && have.sum == sum {
			return nil
		}
		return newError(CodeConflict, relPath, nil)
	}

	if err := root.MkdirAll(tmpDirName, 0o750); err != nil {
		return fmt.Errorf("syncthing put %s: %w", relPath, err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := tmpDirName + "/" + hex.EncodeToString(rnd[:])
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("syncthing put %s: %w", relPath, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		root.Remove(tmp)
	}()
	h := sha256.New()
	n, err := copyContext(ctx, io.MultiWriter(f, h), io.LimitReader(r, size+1))
	if err != nil {
		return fmt.Errorf("syncthing put %s: %w", relPath, err)
	}
	if n != size || hex.EncodeToString(h.Sum(nil)) != sum {
		return newError(CodeMismatch, relPath, nil)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncthing put %s: %w", relPath, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return fmt.Errorf("syncthing put %s: %w", relPath, err)
	}
	dir := path.Dir(relPath)
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("syncthing put %s: %w", relPath, err)
	}
	if err := root.Link(tmp, relPath); err != nil {
		_, lerr := root.Lstat(relPath)
		switch {
		case !errors.Is(err, fs.ErrExist) && errors.Is(lerr, fs.ErrNotExist):
			// No hard links on this file system: check-then-rename, which
			// only a concurrent Put of the same name could race.
			if err := root.Rename(tmp, relPath); err != nil {
				return fmt.Errorf("syncthing put %s: %w", relPath, err)
			}
		default:
			// Another Put won the race: fine if it is the same content.
			have, serr := statFile(ctx, root, relPath)
			if serr == nil && have.exists && have.size == size && have.sum == sum {
				return nil
			}
			return newError(CodeConflict, relPath, err)
		}
	}
	if d, err := root.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("syncthing put %s: sync folder: %w", relPath, err)
		}
	}
	if api, err := s.currentAPI(); err == nil {
		q := url.Values{"folder": {s.cfg.FolderID}, "sub": {relPath}}
		if err := api.do(ctx, "POST", "/rest/db/scan", q, nil, nil); err != nil {
			// The file watcher and the periodic scan find it anyway.
			s.log.Debug("syncthing scan request failed", "path", relPath, "err", err)
		}
	}
	return nil
}

type localFile struct {
	exists bool
	size   int64
	sum    string
}

// statFile hashes the regular file at name; a name held by anything else
// (folder, link) counts as a different file.
func statFile(ctx context.Context, root *os.Root, name string) (localFile, error) {
	fi, err := root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return localFile{}, nil
	case err != nil:
		return localFile{}, err
	case !fi.Mode().IsRegular():
		return localFile{exists: true, size: -1}, nil
	}
	f, err := root.Open(name)
	if err != nil {
		return localFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := copyContext(ctx, h, f)
	if err != nil {
		return localFile{}, err
	}
	return localFile{exists: true, size: n, sum: hex.EncodeToString(h.Sum(nil))}, nil
}

func copyContext(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
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
		}
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// fileInfo is the part of /rest/db/file's answer Delivered reads.
type fileInfo struct {
	Availability []json.RawMessage `json:"availability"`
	Global       fileEntry         `json:"global"`
	Local        fileEntry         `json:"local"`
}

type fileEntry struct {
	Name    string          `json:"name"`
	Size    int64           `json:"size"`
	Deleted bool            `json:"deleted"`
	Invalid bool            `json:"invalid"`
	Ignored bool            `json:"ignored"`
	Version json.RawMessage `json:"version"` // compared as is: its shape changed across versions
}

// availableOn returns the devices announcing the global version in full:
// entries are {"id", "fromTemporary"} objects (plain ids before 1.x).
func (fi fileInfo) availableOn() map[string]bool {
	on := map[string]bool{}
	for _, raw := range fi.Availability {
		var id string
		if json.Unmarshal(raw, &id) == nil {
			on[id] = true
			continue
		}
		var a struct {
			ID            string `json:"id"`
			FromTemporary bool   `json:"fromTemporary"`
		}
		if json.Unmarshal(raw, &a) == nil && !a.FromTemporary {
			on[a.ID] = true
		}
	}
	return on
}

// Delivered reports whether every peer has the file at relPath as this box
// has it: Syncthing's global version is ours and each peer announces it.
// A file not yet scanned, or without peers configured, is not delivered.
// While Syncthing is not running it returns ErrNotRunning (transient).
func (s *Syncthing) Delivered(ctx context.Context, relPath string) (bool, error) {
	if !validPath(relPath) {
		return false, newError(CodeBadPath, relPath, nil)
	}
	if len(s.peers) == 0 {
		return false, nil
	}
	api, err := s.currentAPI()
	if err != nil {
		return false, err
	}
	var fi fileInfo
	q := url.Values{"folder": {s.cfg.FolderID}, "file": {relPath}}
	switch err := api.do(ctx, "GET", "/rest/db/file", q, nil, &fi); {
	case errors.Is(err, errNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("syncthing delivered %s: %w", relPath, err)
	}
	l, g := fi.Local, fi.Global
	if l.Deleted || l.Invalid || l.Ignored || l.Name == "" || g.Deleted || l.Size != g.Size || len(l.Version) == 0 || !bytes.Equal(l.Version, g.Version) {
		return false, nil
	}
	on := fi.availableOn()
	for _, p := range s.peers {
		if !on[p.DeviceID] {
			return false, nil
		}
	}
	return true, nil
}

// SetSendLimit caps what Syncthing sends, in KiB/s (0: no cap), until the
// next restart re-applies Config.MaxSendKiBps. The WAN scheduler calls it
// to keep Syncthing inside the uplink budget.
func (s *Syncthing) SetSendLimit(ctx context.Context, kibps int) error {
	if kibps < 0 {
		return errors.New("syncthing send limit: negative")
	}
	api, err := s.currentAPI()
	if err != nil {
		return err
	}
	body := map[string]int{"maxSendKbps": kibps}
	if err := api.do(ctx, "PATCH", "/rest/config/options", nil, body, nil); err != nil {
		return fmt.Errorf("syncthing send limit: %w", err)
	}
	return nil
}
