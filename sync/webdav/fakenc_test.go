package webdav

// fakeNextcloud is a test server for what no Debian package can run here:
// Nextcloud's own WebDAV behaviour. It is written from Nextcloud's public
// developer documentation (developer manual, client APIs, WebDAV: "Basic
// APIs" and "Chunked file upload", chunking v2) and from the published
// behaviour of its public share endpoint (/public.php/dav/files/TOKEN/,
// Nextcloud ≥ 29, whose file-drop mode only allows PUT and MKCOL and
// renames a PUT onto an existing name to "name (2).ext"). It keeps files
// on disk; checksums given in OC-Checksum are stored and reported in
// oc:checksums as Nextcloud does. Generic WebDAV behaviour is tested
// against the real servers (rclone, Apache), not against this one.

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type ncShare struct {
	dir  string // folder of the share, relative to the user's root
	drop bool   // file drop: create only, cannot read
}

type ncSession struct {
	dest    string // Destination given at MKCOL
	dir     string // chunks on disk
	touched time.Time
}

type fakeNextcloud struct {
	srv      *httptest.Server
	root     string // alice's files
	uploads  string // chunk sessions on disk
	user     string
	pass     string
	lifetime time.Duration // sessions idle this long are expired

	mu       sync.Mutex
	now      time.Time // the server's clock; zero: real time
	sessions map[string]*ncSession
	sums     map[string]string // file (relative to root) → "TYPE:hex …"
	shares   map[string]ncShare
	// computeSHA1 makes the server report the SHA1 of what it stored,
	// as a Nextcloud that computes its own checksums.
	computeSHA1 bool
	// corrupt: the next N PUT bodies get one byte flipped when stored.
	corrupt int
	// inject, when set, may answer a request with a status instead.
	inject func(r *http.Request) (status int, header http.Header)

	chunkBytes atomic.Int64 // body bytes received by chunk PUTs
	putBytes   atomic.Int64 // body bytes received by plain PUTs
	counts     sync.Map     // method → *atomic.Int64
}

func newFakeNextcloud(t *testing.T) *fakeNextcloud {
	t.Helper()
	f := &fakeNextcloud{root: t.TempDir(), uploads: t.TempDir(), user: "alice", pass: "app-password",
		lifetime: 24 * time.Hour, sessions: map[string]*ncSession{}, sums: map[string]string{}, shares: map[string]ncShare{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNextcloud) filesURL() string { return f.srv.URL + "/remote.php/dav/files/alice/" }

func (f *fakeNextcloud) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.now.IsZero() {
		return time.Now()
	}
	return f.now
}

func (f *fakeNextcloud) count(method string) int64 {
	v, _ := f.counts.LoadOrStore(method, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func (f *fakeNextcloud) serve(w http.ResponseWriter, r *http.Request) {
	v, _ := f.counts.LoadOrStore(r.Method, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	if f.inject != nil {
		if code, h := f.inject(r); code != 0 {
			for k, vs := range h {
				w.Header()[k] = vs
			}
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(code)
			return
		}
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/remote.php/dav/files/alice"):
		if !f.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="Nextcloud"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		f.files(w, r, "/remote.php/dav/files/alice", "")
	case strings.HasPrefix(p, "/remote.php/dav/uploads/alice"):
		if !f.authorized(r) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		f.chunking(w, r, strings.Trim(strings.TrimPrefix(p, "/remote.php/dav/uploads/alice"), "/"))
	case strings.HasPrefix(p, "/public.php/dav/files/"):
		rest := strings.TrimPrefix(p, "/public.php/dav/files/")
		token, _, _ := strings.Cut(rest, "/")
		f.mu.Lock()
		sh, ok := f.shares[token]
		f.mu.Unlock()
		if !ok {
			http.Error(w, "share not found", http.StatusNotFound)
			return
		}
		prefix := "/public.php/dav/files/" + token
		if sh.drop {
			f.drop(w, r, prefix, sh.dir)
			return
		}
		f.files(w, r, prefix, sh.dir)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeNextcloud) authorized(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	return ok && u == f.user && p == f.pass
}

// local maps a decoded URL path under prefix to a path relative to root.
func local(urlPath, prefix, base string) (string, bool) {
	rel := strings.Trim(strings.TrimPrefix(urlPath, prefix), "/")
	if strings.Contains("/"+rel+"/", "/../") {
		return "", false
	}
	return strings.Trim(path.Join(base, rel), "/"), true
}

func (f *fakeNextcloud) abs(rel string) string { return filepath.Join(f.root, filepath.FromSlash(rel)) }

// destination maps a Destination header (URL or path) under prefix.
func (f *fakeNextcloud) destination(r *http.Request, prefix, base string) (string, bool) {
	u, err := url.Parse(r.Header.Get("Destination"))
	if err != nil || !strings.HasPrefix(u.Path, prefix) {
		return "", false
	}
	return local(u.Path, prefix, base)
}

func (f *fakeNextcloud) files(w http.ResponseWriter, r *http.Request, prefix, base string) {
	rel, ok := local(r.URL.Path, prefix, base)
	if !ok {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	full := f.abs(rel)
	switch r.Method {
	case "PROPFIND":
		f.propfind(w, r, prefix, base, rel)
	case http.MethodGet, http.MethodHead:
		http.ServeFile(w, r, full)
	case http.MethodPut:
		if strings.HasSuffix(rel, ".part") {
			// Nextcloud refuses names it uses for its own partial files.
			http.Error(w, "forbidden file name", http.StatusBadRequest)
			return
		}
		if fi, err := os.Stat(filepath.Dir(full)); err != nil || !fi.IsDir() {
			http.Error(w, "parent missing", http.StatusConflict)
			return
		}
		_, existed := os.Stat(full)
		if r.Header.Get("If-None-Match") == "*" && existed == nil {
			http.Error(w, "exists", http.StatusPreconditionFailed)
			return
		}
		if !f.receive(w, r, full, &f.putBytes) {
			return
		}
		f.storeSum(rel, r.Header.Get("OC-Checksum"))
		if existed == nil {
			w.WriteHeader(http.StatusNoContent)
		} else {
			w.WriteHeader(http.StatusCreated)
		}
	case "MKCOL":
		if _, err := os.Stat(full); err == nil {
			http.Error(w, "exists", http.StatusMethodNotAllowed)
			return
		}
		if err := os.Mkdir(full, 0o755); err != nil {
			http.Error(w, "parent missing", http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusCreated)
	case "MOVE":
		dst, ok := f.destination(r, prefix, base)
		if !ok {
			http.Error(w, "bad destination", http.StatusBadGateway)
			return
		}
		if _, err := os.Stat(full); err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		_, existed := os.Stat(f.abs(dst))
		if existed == nil && r.Header.Get("Overwrite") == "F" {
			http.Error(w, "destination exists", http.StatusPreconditionFailed)
			return
		}
		if err := os.Rename(full, f.abs(dst)); err != nil {
			http.Error(w, "conflict", http.StatusConflict)
			return
		}
		f.mu.Lock()
		f.sums[dst] = f.sums[rel]
		delete(f.sums, rel)
		f.mu.Unlock()
		if existed == nil {
			w.WriteHeader(http.StatusNoContent)
		} else {
			w.WriteHeader(http.StatusCreated)
		}
	case http.MethodDelete:
		if _, err := os.Stat(full); err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		os.RemoveAll(full)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}

// receive stores exactly Content-Length bytes of the body at full, as
// Nextcloud does: into a hidden part file renamed into place, discarded
// when the body is short.
func (f *fakeNextcloud) receive(w http.ResponseWriter, r *http.Request, full string, counter *atomic.Int64) bool {
	if r.ContentLength < 0 {
		http.Error(w, "length required", http.StatusLengthRequired)
		return false
	}
	part := filepath.Join(filepath.Dir(full), "."+filepath.Base(full)+".ocTransferId"+strconv.Itoa(int(time.Now().UnixNano()%1e9))+".part")
	out, err := os.Create(part)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return false
	}
	n, err := io.Copy(out, r.Body)
	counter.Add(n)
	out.Close()
	if err != nil || n != r.ContentLength {
		os.Remove(part)
		http.Error(w, fmt.Sprintf("expected %d bytes, got %d", r.ContentLength, n), http.StatusBadRequest)
		return false
	}
	f.mu.Lock()
	corrupt := f.corrupt > 0 && n > 0
	if corrupt {
		f.corrupt--
	}
	f.mu.Unlock()
	if corrupt {
		b, _ := os.ReadFile(part)
		b[len(b)/2] ^= 0xff
		os.WriteFile(part, b, 0o644)
	}
	if err := os.Rename(part, full); err != nil {
		os.Remove(part)
		http.Error(w, err.Error(), http.StatusConflict)
		return false
	}
	return true
}

func (f *fakeNextcloud) storeSum(rel, header string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.computeSHA1 {
		b, _ := os.ReadFile(f.abs(rel))
		s := sha1.Sum(b)
		f.sums[rel] = "SHA1:" + hex.EncodeToString(s[:])
		return
	}
	if header != "" {
		f.sums[rel] = header
	} else {
		delete(f.sums, rel)
	}
}

func (f *fakeNextcloud) propfind(w http.ResponseWriter, r *http.Request, prefix, base, rel string) {
	io.Copy(io.Discard, r.Body)
	full := f.abs(rel)
	fi, err := os.Stat(full)
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	type item struct {
		href string
		fi   os.FileInfo
		rel  string
	}
	hrefOf := func(rel string) string {
		inside := strings.TrimPrefix(strings.TrimPrefix(rel, base), "/")
		var b strings.Builder
		b.WriteString(prefix)
		for _, seg := range strings.Split(inside, "/") {
			if seg != "" {
				b.WriteString("/" + url.PathEscape(seg))
			}
		}
		return b.String()
	}
	items := []item{{hrefOf(rel), fi, rel}}
	if fi.IsDir() && r.Header.Get("Depth") == "1" {
		des, _ := os.ReadDir(full)
		for _, de := range des {
			if strings.HasSuffix(de.Name(), ".part") {
				continue // Nextcloud never shows part files
			}
			cfi, err := de.Info()
			if err == nil {
				items = append(items, item{hrefOf(path.Join(rel, de.Name())), cfi, path.Join(rel, de.Name())})
			}
		}
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?>` + "\n" + `<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">`)
	for _, it := range items {
		href := it.href
		if it.fi.IsDir() {
			href += "/"
		}
		fmt.Fprintf(&b, "<d:response><d:href>%s</d:href><d:propstat><d:prop>", href)
		fmt.Fprintf(&b, "<d:getlastmodified>%s</d:getlastmodified>", it.fi.ModTime().UTC().Format(http.TimeFormat))
		if it.fi.IsDir() {
			b.WriteString("<d:resourcetype><d:collection/></d:resourcetype>")
		} else {
			fmt.Fprintf(&b, "<d:resourcetype/><d:getcontentlength>%d</d:getcontentlength>", it.fi.Size())
			f.mu.Lock()
			sum := f.sums[it.rel]
			f.mu.Unlock()
			if sum != "" {
				fmt.Fprintf(&b, "<oc:checksums><oc:checksum>%s</oc:checksum></oc:checksums>", sum)
			}
		}
		b.WriteString("</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>")
	}
	b.WriteString("</d:multistatus>")
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	io.WriteString(w, b.String())
}

// expire drops sessions idle longer than the lifetime, as Nextcloud's
// background job does.
func (f *fakeNextcloud) expire() {
	now := f.clock()
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, s := range f.sessions {
		if now.Sub(s.touched) > f.lifetime {
			os.RemoveAll(s.dir)
			delete(f.sessions, id)
		}
	}
}

// chunking serves /remote.php/dav/uploads/alice/<id>[/<chunk>|/.file].
func (f *fakeNextcloud) chunking(w http.ResponseWriter, r *http.Request, rest string) {
	f.expire()
	id, chunk, _ := strings.Cut(rest, "/")
	chunk = strings.Trim(chunk, "/")
	filesPrefix := "/remote.php/dav/files/alice"
	if id == "" {
		if r.Method != "PROPFIND" {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		f.mu.Lock()
		var ids []string
		for id := range f.sessions {
			ids = append(ids, id)
		}
		f.mu.Unlock()
		sort.Strings(ids)
		var b strings.Builder
		b.WriteString(`<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/remote.php/dav/uploads/alice/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>`)
		for _, id := range ids {
			fmt.Fprintf(&b, `<d:response><d:href>/remote.php/dav/uploads/alice/%s/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>`, url.PathEscape(id))
		}
		b.WriteString("</d:multistatus>")
		w.WriteHeader(http.StatusMultiStatus)
		io.WriteString(w, b.String())
		return
	}
	f.mu.Lock()
	s := f.sessions[id]
	f.mu.Unlock()
	dest := r.Header.Get("Destination")
	switch {
	case r.Method == "MKCOL" && chunk == "":
		if s != nil {
			http.Error(w, "exists", http.StatusMethodNotAllowed)
			return
		}
		if dest == "" {
			http.Error(w, "chunking v2 needs a Destination header", http.StatusBadRequest)
			return
		}
		dir := filepath.Join(f.uploads, id)
		os.Mkdir(dir, 0o755)
		f.mu.Lock()
		f.sessions[id] = &ncSession{dest: dest, dir: dir, touched: f.nowLocked()}
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		return
	case s == nil:
		http.Error(w, "no such upload", http.StatusNotFound)
		return
	case r.Method == http.MethodDelete && chunk == "":
		os.RemoveAll(s.dir)
		f.mu.Lock()
		delete(f.sessions, id)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	case r.Method == "PROPFIND" && chunk == "":
		des, _ := os.ReadDir(s.dir)
		var b strings.Builder
		fmt.Fprintf(&b, `<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/remote.php/dav/uploads/alice/%s/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>`, id)
		for _, de := range des {
			if strings.HasSuffix(de.Name(), ".part") {
				continue
			}
			fi, _ := de.Info()
			fmt.Fprintf(&b, `<d:response><d:href>/remote.php/dav/uploads/alice/%s/%s</d:href><d:propstat><d:prop><d:resourcetype/><d:getcontentlength>%d</d:getcontentlength></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>`, id, de.Name(), fi.Size())
		}
		b.WriteString("</d:multistatus>")
		w.WriteHeader(http.StatusMultiStatus)
		io.WriteString(w, b.String())
		return
	case dest != s.dest:
		http.Error(w, "Destination differs from the upload's", http.StatusBadRequest)
		return
	case r.Header.Get("OC-Total-Length") == "":
		http.Error(w, "OC-Total-Length missing", http.StatusBadRequest)
		return
	case r.Method == http.MethodPut:
		n, err := strconv.Atoi(chunk)
		if err != nil || n < 1 || n > 10000 {
			http.Error(w, "chunk names are numbers from 1 to 10000", http.StatusBadRequest)
			return
		}
		if !f.receive(w, r, filepath.Join(s.dir, chunk), &f.chunkBytes) {
			return
		}
		f.mu.Lock()
		s.touched = f.nowLocked()
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		return
	case r.Method == "MOVE" && chunk == ".file":
		total, _ := strconv.ParseInt(r.Header.Get("OC-Total-Length"), 10, 64)
		des, _ := os.ReadDir(s.dir)
		type part struct {
			n    int
			name string
			size int64
		}
		var parts []part
		for _, de := range des {
			n, err := strconv.Atoi(de.Name())
			if err != nil {
				continue
			}
			fi, _ := de.Info()
			parts = append(parts, part{n, de.Name(), fi.Size()})
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i].n < parts[j].n })
		var sum int64
		for i, p := range parts {
			if i < len(parts)-1 && p.size < 5<<20 {
				http.Error(w, "chunks must be at least 5 MB but the last", http.StatusBadRequest)
				return
			}
			sum += p.size
		}
		if sum != total {
			http.Error(w, fmt.Sprintf("assembled %d bytes, OC-Total-Length says %d", sum, total), http.StatusBadRequest)
			return
		}
		u, _ := url.Parse(dest)
		rel, ok := local(u.Path, filesPrefix, "")
		if !ok || !strings.HasPrefix(u.Path, filesPrefix) {
			http.Error(w, "bad destination", http.StatusBadRequest)
			return
		}
		full := f.abs(rel)
		_, existed := os.Stat(full)
		if existed == nil && r.Header.Get("Overwrite") == "F" {
			http.Error(w, "destination exists", http.StatusPreconditionFailed)
			return
		}
		tmp := full + ".assembling.part"
		out, err := os.Create(tmp)
		if err != nil {
			http.Error(w, "parent missing", http.StatusConflict)
			return
		}
		for _, p := range parts {
			in, _ := os.Open(filepath.Join(s.dir, p.name))
			io.Copy(out, in)
			in.Close()
		}
		out.Close()
		os.Rename(tmp, full)
		f.storeSum(rel, r.Header.Get("OC-Checksum"))
		os.RemoveAll(s.dir)
		f.mu.Lock()
		delete(f.sessions, id)
		f.mu.Unlock()
		if existed == nil {
			w.WriteHeader(http.StatusNoContent)
		} else {
			w.WriteHeader(http.StatusCreated)
		}
		return
	}
	http.Error(w, "method", http.StatusMethodNotAllowed)
}

func (f *fakeNextcloud) nowLocked() time.Time {
	if f.now.IsZero() {
		return time.Now()
	}
	return f.now
}

// drop serves a file-drop share: PUT creates (renaming on conflict,
// making folders on the way), MKCOL pretends, the rest is refused.
func (f *fakeNextcloud) drop(w http.ResponseWriter, r *http.Request, prefix, base string) {
	switch r.Method {
	case "MKCOL":
		w.WriteHeader(http.StatusCreated)
		return
	case http.MethodPut:
	default:
		http.Error(w, "Only PUT, MKCOL and MOVE are allowed on files drop", http.StatusMethodNotAllowed)
		return
	}
	rel, ok := local(r.URL.Path, prefix, base)
	if !ok {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	if nick := r.Header.Get("X-NC-Nickname"); nick != "" {
		n, _ := url.QueryUnescape(nick)
		rel = path.Join(base, n, strings.TrimPrefix(strings.TrimPrefix(rel, base), "/"))
	}
	os.MkdirAll(filepath.Dir(f.abs(rel)), 0o755)
	// Conflicts get a new name; the check on If-None-Match comes after
	// this rewrite in Nextcloud, so it never fires.
	ext := path.Ext(rel)
	stem := strings.TrimSuffix(rel, ext)
	for i := 2; ; i++ {
		if _, err := os.Stat(f.abs(rel)); err != nil {
			break
		}
		rel = fmt.Sprintf("%s (%d)%s", stem, i, ext)
	}
	if !f.receive(w, r, f.abs(rel), &f.putBytes) {
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func mkdirAll(p string) error { return os.MkdirAll(p, 0o755) }
