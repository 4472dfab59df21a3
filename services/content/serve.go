package content

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"preau/services/internal/httpserve"
)

// servedFile is what the hot path needs to serve a pack file, kept in memory
// so that a request does not touch SQLite.
type servedFile struct {
	hash      string
	size      int64
	mediaType string
	modTime   time.Time
	etag      string // quoted hash
	lastMod   string // modTime in http.TimeFormat
	access    *packAccess
}

func (s *Store) invalidateIndex() {
	s.indexMu.Lock()
	s.index, s.indexLoaded = nil, false
	s.indexMu.Unlock()
}

// lookup finds a pack file, loading the index after an import or removal.
func (s *Store) lookup(ctx context.Context, pack, path string) (servedFile, bool, error) {
	s.indexMu.RLock()
	if s.indexLoaded {
		f, ok := s.index[pack][path]
		s.indexMu.RUnlock()
		return f, ok, nil
	}
	s.indexMu.RUnlock()
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	if !s.indexLoaded {
		idx, err := s.loadIndex(ctx)
		if err != nil {
			return servedFile{}, false, err
		}
		s.index, s.indexLoaded = idx, true
	}
	f, ok := s.index[pack][path]
	return f, ok, nil
}

func (s *Store) loadIndex(ctx context.Context) (map[string]map[string]servedFile, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT f.pack, f.path, f.sha256, f.size, f.media_type, p.imported_at
		FROM content_files f JOIN content_packs p ON p.id = f.pack`)
	if err != nil {
		return nil, fmt.Errorf("load file index: %w", err)
	}
	defer rows.Close()
	idx := make(map[string]map[string]servedFile)
	access := make(map[string]*packAccess)
	for rows.Next() {
		var pack, path string
		var f servedFile
		var ms int64
		if err := rows.Scan(&pack, &path, &f.hash, &f.size, &f.mediaType, &ms); err != nil {
			return nil, fmt.Errorf("load file index: %w", err)
		}
		f.modTime = time.UnixMilli(ms).UTC()
		f.etag = `"` + f.hash + `"`
		f.lastMod = f.modTime.Truncate(time.Second).Format(http.TimeFormat)
		if idx[pack] == nil {
			idx[pack] = make(map[string]servedFile)
			access[pack] = s.accessOf(pack)
		}
		f.access = access[pack]
		idx[pack][path] = f
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load file index: %w", err)
	}
	return idx, nil
}

// Open opens the blob of a pack file. The caller closes it.
func (s *Store) Open(ctx context.Context, pack, path string) (*os.File, File, error) {
	sf, ok, err := s.lookup(ctx, pack, path)
	if err != nil {
		return nil, File{}, fmt.Errorf("open %s/%s: %w", pack, path, err)
	}
	if !ok {
		return nil, File{}, fmt.Errorf("open %s/%s: %w", pack, path, ErrNotFound)
	}
	if s.isDamaged(ctx, sf.hash) {
		return nil, File{}, fmt.Errorf("open %s/%s: %w", pack, path, ErrDamaged)
	}
	sf.access.touch(s.now().UnixMilli())
	f, err := os.Open(s.blobPath(sf.hash))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// The index was read before a removal committed.
			return nil, File{}, fmt.Errorf("open %s/%s: %w", pack, path, ErrNotFound)
		}
		return nil, File{}, fmt.Errorf("open %s/%s: %w", pack, path, err)
	}
	return f, File{Path: path, Size: sf.size, SHA256: sf.hash, MediaType: sf.mediaType}, nil
}

// Handler serves GET and HEAD /c/{pack}/{path...}: the file's bytes with
// its manifest media type, ranges and conditional requests, a strong ETag
// from its SHA-256 and Last-Modified from the import time. Active content
// (HTML, SVG, XML) is sandboxed so that a pack cannot run script in the
// portal's origin.
func (s *Store) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

// serveHTTP routes by hand rather than with a ServeMux: this is the hottest
// path of the box and the route is a single prefix.
func (s *Store) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		plainError(w, r, http.StatusMethodNotAllowed, "Méthode non autorisée", "Method not allowed")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/c/")
	if !ok {
		plainError(w, r, http.StatusNotFound, "Ressource introuvable", "Not found")
		return
	}
	pack, path, _ := strings.Cut(rest, "/")
	s.serveFile(w, r, pack, path)
}

func (s *Store) serveFile(w http.ResponseWriter, r *http.Request, pack, path string) {
	if !idPattern.MatchString(pack) || !ValidPath(path) {
		plainError(w, r, http.StatusNotFound, "Ressource introuvable", "Not found")
		return
	}
	sf, ok, err := s.lookup(r.Context(), pack, path)
	if err != nil {
		s.log.Error("serve pack file", "pack", pack, "path", path, "err", err)
		plainError(w, r, http.StatusInternalServerError, "Erreur interne", "Internal error")
		return
	}
	if !ok {
		plainError(w, r, http.StatusNotFound, "Ressource introuvable", "Not found")
		return
	}
	if s.isDamaged(r.Context(), sf.hash) {
		damagedError(w, r)
		return
	}
	sf.access.touch(s.now().UnixMilli())
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	// Blobs never change but a pack path may name another blob after an
	// update: a short max-age, then revalidation with the ETag.
	h.Set("Cache-Control", "public, max-age=3600")
	if activeContent(sf.mediaType) {
		h.Set("Content-Security-Policy", "sandbox; default-src 'self' 'unsafe-inline'")
	}
	meta := httpserve.Meta{
		Size:         sf.size,
		ETag:         sf.etag,
		ContentType:  sf.mediaType,
		ModTime:      sf.modTime,
		LastModified: sf.lastMod,
	}
	if sf.size <= hotMaxFile {
		b, ok := s.hot.get(sf.hash)
		if !ok {
			if b, err = s.readSmallBlob(sf.hash, sf.size); err != nil {
				s.blobError(w, r, pack, path, sf.hash, err)
				return
			}
			s.hot.put(sf.hash, b)
		}
		httpserve.ServeBytes(w, r, b, meta)
		return
	}
	f, err := openBlobFile(s.blobPath(sf.hash))
	if err != nil {
		s.blobError(w, r, pack, path, sf.hash, err)
		return
	}
	defer f.Close()
	httpserve.Serve(w, r, f, meta)
}

// blobError answers a request whose blob cannot be read: gone (a removal
// committed after the index was read) or broken.
func (s *Store) blobError(w http.ResponseWriter, r *http.Request, pack, path, hash string, err error) {
	h := w.Header()
	h.Del("Cache-Control")
	h.Del("Content-Security-Policy")
	if !errors.Is(err, fs.ErrNotExist) {
		s.log.Error("serve pack file", "pack", pack, "path", path, "err", err)
	}
	if s.isDamaged(r.Context(), hash) {
		damagedError(w, r)
		return
	}
	plainError(w, r, http.StatusNotFound, "Ressource introuvable", "Not found")
}

// damagedError answers for a file whose blob is in quarantine.
func damagedError(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "3600")
	plainError(w, r, http.StatusServiceUnavailable,
		"Ce fichier est endommagé sur la box ; il sera téléchargé à nouveau. Réessayez plus tard",
		"This file is damaged on the box; it will be fetched again. Try again later")
}

// activeContent reports media types a browser may run script in.
func activeContent(mediaType string) bool {
	mt, _, err := mime.ParseMediaType(mediaType)
	if err != nil {
		return true
	}
	switch mt {
	case "text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/xml", "application/xslt+xml":
		return true
	}
	return strings.HasSuffix(mt, "+xml")
}

func plainError(w http.ResponseWriter, r *http.Request, code int, fr, en string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	msg := fr + " / " + en + "\n"
	h.Set("Content-Length", fmt.Sprint(len(msg)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write([]byte(msg))
	}
}
