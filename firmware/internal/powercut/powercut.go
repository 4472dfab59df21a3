// Package powercut is a file system layer for crash tests: it journals
// every change that is not yet durable (data not followed by a sync of
// its file, directory entries not followed by a sync of their directory)
// and Cut undoes them all, as a power cut that loses every unsynced write
// would. It is the worst case the code must survive: real disks lose some
// unsynced writes, never more.
//
// Imported only by the tests of package firmware and its sub-packages.
package powercut

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"preau/firmware/bootenv"
)

// record is one journal line.
type record struct {
	Op      string `json:"op"` // write trunc sync create rename remove mkdir syncdir
	Path    string `json:"path,omitempty"`
	To      string `json:"to,omitempty"`
	Off     int64  `json:"off,omitempty"`
	OldSize int64  `json:"old_size,omitempty"`
	Saved   string `json:"saved,omitempty"` // side file with old bytes / old content
	Existed bool   `json:"existed,omitempty"`
}

// FS implements bootenv.FS over the operating system, journaling into dir.
type FS struct {
	dir string

	mu   sync.Mutex
	jf   *os.File
	seq  int
	open map[*file]bool
}

var _ bootenv.FS = (*FS)(nil)

// New starts (or continues) the journal in dir.
func New(dir string) (*FS, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	jf, err := os.OpenFile(filepath.Join(dir, "journal"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	des, _ := os.ReadDir(dir)
	return &FS{dir: dir, jf: jf, seq: len(des), open: map[*file]bool{}}, nil
}

// Close closes the journal.
func (p *FS) Close() error { return p.jf.Close() }

func (p *FS) log(r record) error {
	b, _ := json.Marshal(r)
	if _, err := p.jf.Write(append(b, '\n')); err != nil {
		return err
	}
	return p.jf.Sync()
}

// save copies len bytes of path from off (or the whole file with len<0)
// to a side file and returns its name.
func (p *FS) save(path string, off, n int64) (string, error) {
	p.seq++
	side := filepath.Join(p.dir, "save-"+strconv.Itoa(p.seq))
	src, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.Create(side)
	if err != nil {
		return "", err
	}
	var r io.Reader = io.NewSectionReader(src, off, 1<<62)
	if n >= 0 {
		r = io.NewSectionReader(src, off, n)
	}
	if _, err := io.Copy(dst, r); err != nil {
		dst.Close()
		return "", err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return "", err
	}
	return side, dst.Close()
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func size(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (p *FS) OpenFile(name string, flag int, perm fs.FileMode) (bootenv.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	existed := exists(name)
	if flag&os.O_CREATE != 0 && !existed {
		if err := p.log(record{Op: "create", Path: name}); err != nil {
			return nil, err
		}
	}
	if flag&os.O_TRUNC != 0 && existed && size(name) > 0 {
		side, err := p.save(name, 0, -1)
		if err != nil {
			return nil, err
		}
		if err := p.log(record{Op: "trunc", Path: name, OldSize: size(name), Saved: side}); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	pf := &file{File: f, fs: p, path: name}
	p.open[pf] = true
	return pf, nil
}

func (p *FS) Rename(oldpath, newpath string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := record{Op: "rename", Path: oldpath, To: newpath}
	if exists(newpath) {
		side, err := p.save(newpath, 0, -1)
		if err != nil {
			return err
		}
		r.Saved, r.Existed = side, true
	}
	if err := p.log(r); err != nil {
		return err
	}
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	for f := range p.open {
		if f.path == oldpath {
			f.path = newpath
		}
	}
	return nil
}

func (p *FS) Remove(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	fi, err := os.Lstat(name)
	if err != nil {
		return err
	}
	r := record{Op: "remove", Path: name}
	if fi.IsDir() {
		r.Op = "rmdir"
	} else {
		side, err := p.save(name, 0, -1)
		if err != nil {
			return err
		}
		r.Saved = side
	}
	if err := p.log(r); err != nil {
		return err
	}
	return os.Remove(name)
}

func (p *FS) MkdirAll(path string, perm fs.FileMode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var missing []string
	for d := path; !exists(d); d = filepath.Dir(d) {
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := p.log(record{Op: "mkdir", Path: missing[i]}); err != nil {
			return err
		}
	}
	return os.MkdirAll(path, perm)
}

func (p *FS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (p *FS) Stat(name string) (fs.FileInfo, error)      { return os.Stat(name) }

func (p *FS) SyncDir(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.log(record{Op: "syncdir", Path: filepath.Clean(name)}); err != nil {
		return err
	}
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type file struct {
	*os.File
	fs   *FS
	path string
}

func (f *file) saveRegion(off, n int64) error {
	old := size(f.path)
	var side string
	if off < old {
		var err error
		side, err = f.fs.save(f.path, off, min(n, old-off))
		if err != nil {
			return err
		}
	}
	return f.fs.log(record{Op: "write", Path: f.path, Off: off, OldSize: old, Saved: side})
}

func (f *file) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.saveRegion(off, int64(len(b))); err != nil {
		return 0, err
	}
	return f.File.WriteAt(b, off)
}

func (f *file) Write(b []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	off, err := f.File.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	if err := f.saveRegion(off, int64(len(b))); err != nil {
		return 0, err
	}
	return f.File.Write(b)
}

func (f *file) Truncate(n int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	old := size(f.path)
	r := record{Op: "trunc", Path: f.path, OldSize: old}
	if n < old {
		side, err := f.fs.save(f.path, n, -1)
		if err != nil {
			return err
		}
		r.Off, r.Saved = n, side
	}
	if err := f.fs.log(r); err != nil {
		return err
	}
	return f.File.Truncate(n)
}

func (f *file) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.File.Sync(); err != nil {
		return err
	}
	return f.fs.log(record{Op: "sync", Path: f.path})
}

func (f *file) Close() error {
	f.fs.mu.Lock()
	delete(f.fs.open, f)
	f.fs.mu.Unlock()
	return f.File.Close()
}

// Cut undoes every change journaled in dir that was not made durable,
// newest first, then empties the journal. The process that wrote the
// journal must be gone.
func Cut(dir string) error {
	jf, err := os.Open(filepath.Join(dir, "journal"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var recs []record
	sc := bufio.NewScanner(jf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			break // a torn last line: the change after it never happened
		}
		recs = append(recs, r)
	}
	jf.Close()
	durable := func(i int) bool {
		r := recs[i]
		switch r.Op {
		case "write", "trunc":
			path := r.Path
			for j := i + 1; j < len(recs); j++ {
				if recs[j].Op == "rename" && recs[j].Path == path {
					path = recs[j].To
				}
				if recs[j].Op == "sync" && recs[j].Path == path {
					return true
				}
			}
		case "create", "remove", "rmdir", "mkdir", "rename":
			dirs := []string{filepath.Dir(r.Path)}
			if r.Op == "rename" {
				dirs = append(dirs, filepath.Dir(r.To))
			}
			for _, d := range dirs {
				ok := false
				for j := i + 1; j < len(recs); j++ {
					if recs[j].Op == "syncdir" && recs[j].Path == filepath.Clean(d) {
						ok = true
						break
					}
				}
				if !ok {
					return false
				}
			}
			return true
		}
		return false
	}
	isDurable := make([]bool, len(recs))
	for i := range recs {
		isDurable[i] = durable(i)
	}
	// where returns the path of the file named path at record i once the
	// changes after it are undone: only durable renames moved it.
	where := func(path string, i int) string {
		for j := i + 1; j < len(recs); j++ {
			if recs[j].Op == "rename" && recs[j].Path == path && isDurable[j] {
				path = recs[j].To
			}
		}
		return path
	}
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if r.Op == "sync" || r.Op == "syncdir" || isDurable[i] {
			continue
		}
		if err := undo(r, where(r.Path, i)); err != nil {
			return fmt.Errorf("powercut: undo %s %s: %w", r.Op, r.Path, err)
		}
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		os.Remove(filepath.Join(dir, de.Name()))
	}
	return nil
}

func undo(r record, now string) error {
	switch r.Op {
	case "write":
		if !exists(now) {
			return nil
		}
		f, err := os.OpenFile(now, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if r.Saved != "" {
			old, err := os.ReadFile(r.Saved)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt(old, r.Off); err != nil {
				return err
			}
		}
		if fi, _ := f.Stat(); fi.Size() > r.OldSize {
			return f.Truncate(r.OldSize)
		}
		return nil
	case "trunc":
		if !exists(now) {
			return nil
		}
		f, err := os.OpenFile(now, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if r.Saved != "" {
			old, err := os.ReadFile(r.Saved)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt(old, r.Off); err != nil {
				return err
			}
		}
		return f.Truncate(r.OldSize)
	case "create":
		if err := os.Remove(r.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	case "rename":
		if exists(r.To) {
			if err := os.Rename(r.To, r.Path); err != nil {
				return err
			}
		}
		if r.Existed {
			old, err := os.ReadFile(r.Saved)
			if err != nil {
				return err
			}
			return os.WriteFile(r.To, old, 0o644)
		}
	case "remove":
		old, err := os.ReadFile(r.Saved)
		if err != nil {
			return err
		}
		return os.WriteFile(r.Path, old, 0o644)
	case "rmdir":
		return os.MkdirAll(r.Path, 0o755)
	case "mkdir":
		os.Remove(r.Path) // only if empty by then
	}
	return nil
}
