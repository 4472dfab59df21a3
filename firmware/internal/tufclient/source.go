package tufclient

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Source serves the files of a static TUF repository: metadata/… and
// targets/… relative to its root.
type Source interface {
	// Fetch returns file rel, at most max bytes; ErrNotFound if it does
	// not exist; an error wrapping ErrTooLarge if it is larger.
	Fetch(ctx context.Context, rel string, max int64) ([]byte, error)
}

// Errors of sources.
var (
	ErrNotFound = errors.New("not found")
	ErrTooLarge = errors.New("larger than allowed")
)

// Doer sends one HTTP request; *http.Client satisfies it.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// HTTPSource is a repository served over HTTP(S).
type HTTPSource struct {
	Base string // URL of the repository root, with or without a trailing slash
	HTTP Doer
}

// URL returns the URL of rel.
func (s HTTPSource) URL(rel string) string {
	return strings.TrimSuffix(s.Base, "/") + "/" + escapePath(rel)
}

func escapePath(rel string) string {
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// HTTPStatusError is an answer other than 200 (or 404, ErrNotFound).
type HTTPStatusError struct {
	URL    string
	Status int
}

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP status %d", e.URL, e.Status)
}

// Fetch implements Source.
func (s HTTPSource) Fetch(ctx context.Context, rel string, max int64) ([]byte, error) {
	u := s.URL(rel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusForbidden: // static servers answer 403 for some missing files
		return nil, fmt.Errorf("GET %s: %w", u, ErrNotFound)
	default:
		return nil, &HTTPStatusError{URL: u, Status: resp.StatusCode}
	}
	if resp.ContentLength > max {
		return nil, fmt.Errorf("GET %s: %d bytes: %w (%d)", u, resp.ContentLength, ErrTooLarge, max)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("GET %s: %w (%d)", u, ErrTooLarge, max)
	}
	return b, nil
}

// Bundle is an update carried on a USB key: a folder or an uncompressed
// tar holding a copy of the repository (metadata/ and the targets/ of one
// release), possibly under one top folder.
type Bundle struct {
	path   string
	dir    string              // folder bundles: the repository root
	f      *os.File            // tar bundles
	index  map[string]tarEntry // tar bundles: rel path → data
	prefix string
}

type tarEntry struct{ off, size int64 }

// OpenBundle opens a bundle folder or .tar file.
func OpenBundle(p string) (*Bundle, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("open update bundle: %w", err)
	}
	if fi.IsDir() {
		root := p
		if _, err := os.Stat(filepath.Join(p, "metadata", "timestamp.json")); err != nil {
			des, _ := os.ReadDir(p)
			found := false
			for _, de := range des {
				if de.IsDir() {
					if _, err := os.Stat(filepath.Join(p, de.Name(), "metadata", "timestamp.json")); err == nil {
						root, found = filepath.Join(p, de.Name()), true
						break
					}
				}
			}
			if !found {
				return nil, fmt.Errorf("open update bundle %s: no metadata/timestamp.json: %w", p, ErrNotFound)
			}
		}
		return &Bundle{path: p, dir: root}, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open update bundle: %w", err)
	}
	b := &Bundle{path: p, f: f, index: map[string]tarEntry{}}
	cr := &countingReader{r: f}
	tr := tar.NewReader(cr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open update bundle %s: not a readable tar: %w", p, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if len(b.index) > 100000 {
			f.Close()
			return nil, fmt.Errorf("open update bundle %s: too many files", p)
		}
		b.index[name] = tarEntry{off: cr.n, size: h.Size}
	}
	for name := range b.index {
		if name == "metadata/timestamp.json" {
			b.prefix = ""
			return b, nil
		}
		if dir, ok := strings.CutSuffix(name, "/metadata/timestamp.json"); ok && !strings.Contains(dir, "/") {
			b.prefix = dir + "/"
		}
	}
	if _, ok := b.index[b.prefix+"metadata/timestamp.json"]; !ok {
		f.Close()
		return nil, fmt.Errorf("open update bundle %s: no metadata/timestamp.json: %w", p, ErrNotFound)
	}
	return b, nil
}

// countingReader tracks the offset tar reads at; Seek lets tar skip
// file data without reading it.
type countingReader struct {
	r *os.File
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Seek(off int64, whence int) (int64, error) {
	n, err := c.r.Seek(off, whence)
	if err == nil {
		c.n = n
	}
	return n, err
}

// Close releases the bundle.
func (b *Bundle) Close() error {
	if b.f != nil {
		return b.f.Close()
	}
	return nil
}

// Path is what OpenBundle was given.
func (b *Bundle) Path() string { return b.path }

// Open returns a reader of file rel and its size.
func (b *Bundle) Open(rel string) (io.ReaderAt, int64, io.Closer, error) {
	if err := CheckTargetPath(rel); err != nil {
		return nil, 0, nil, err
	}
	if b.f != nil {
		e, ok := b.index[b.prefix+rel]
		if !ok {
			return nil, 0, nil, fmt.Errorf("%s in %s: %w", rel, b.path, ErrNotFound)
		}
		return io.NewSectionReader(b.f, e.off, e.size), e.size, io.NopCloser(nil), nil
	}
	f, err := os.Open(filepath.Join(b.dir, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil, fmt.Errorf("%s in %s: %w", rel, b.path, ErrNotFound)
	}
	if err != nil {
		return nil, 0, nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, nil, fmt.Errorf("%s in %s: not a regular file", rel, b.path)
	}
	return f, fi.Size(), f, nil
}

// Fetch implements Source.
func (b *Bundle) Fetch(ctx context.Context, rel string, max int64) ([]byte, error) {
	r, size, c, err := b.Open(rel)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if size > max {
		return nil, fmt.Errorf("%s: %d bytes: %w (%d)", rel, size, ErrTooLarge, max)
	}
	buf := make([]byte, size)
	if _, err := r.ReadAt(buf, 0); err != nil && !(err == io.EOF && size == 0) {
		return nil, fmt.Errorf("read %s in %s: %w", rel, b.path, err)
	}
	return buf, nil
}

// parseVersionedName splits "3.snapshot.json" into 3 and "snapshot".
func parseVersionedName(name string) (int64, string) {
	base := strings.TrimSuffix(name, ".json")
	if v, role, ok := strings.Cut(base, "."); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n, role
		}
	}
	return 0, base
}
