package webdav

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"path"
)

// Stat reports the final file at rel: its size, its SHA-256 when the server
// keeps one, whether it exists. A folder of that name exists with size -1.
// On a file-drop share link the error wraps errors.ErrUnsupported.
func (c *Client) Stat(ctx context.Context, rel string) (size int64, sha256 string, exists bool, err error) {
	if err := checkPath(rel); err != nil {
		return 0, "", false, err
	}
	if c.drop.Load() {
		return 0, "", false, fmt.Errorf("webdav: stat %s on a file-drop link: %w", rel, errors.ErrUnsupported)
	}
	e, err := c.statURL(ctx, "PROPFIND "+rel, c.urlOf(rel))
	var we *Error
	switch {
	case errors.Is(err, errNotFound):
		return 0, "", false, nil
	case c.public && errors.As(err, &we) && (we.Status == http.StatusMethodNotAllowed || we.Status == http.StatusForbidden):
		if !c.drop.Swap(true) {
			c.log.Info("webdav: the share link is a file drop: files are sent without checking the folder first",
				"url", c.base.Redacted())
		}
		return 0, "", false, fmt.Errorf("webdav: stat %s on a file-drop link: %w", rel, errors.ErrUnsupported)
	case err != nil:
		return 0, "", false, err
	case e.dir:
		return -1, "", true, nil
	}
	return e.size, e.sums["SHA256"], true, nil
}

// Upload writes size bytes of body to rel without overwriting it, as the
// package comment says: temporary name, check, MOVE with Overwrite: F. It
// returns nil when the file was moved into place or when a file already
// had the final name (the outbox compares it).
func (c *Client) Upload(ctx context.Context, rel string, body io.ReaderAt, size int64, sum string, progress func(sent int64)) error {
	_, err := c.UploadPlaced(ctx, rel, body, size, sum, progress)
	return err
}

// UploadPlaced is Upload, and tells whether the body, checked on the
// server (size, and hash when the server offers one) under its temporary
// name, was then moved to rel: the outbox need not look at rel again.
// false with a nil error: a file already had the name, or the destination
// cannot be read (a file drop).
func (c *Client) UploadPlaced(ctx context.Context, rel string, body io.ReaderAt, size int64, sum string, progress func(sent int64)) (bool, error) {
	if err := checkPath(rel); err != nil {
		return false, err
	}
	if progress == nil {
		progress = func(int64) {}
	}
	if c.drop.Load() {
		return false, c.putDrop(ctx, rel, body, size, sum, progress)
	}
	if err := c.ensureDir(ctx, parentOf(rel)); err != nil {
		return false, err
	}
	tmp := ""
	if c.uploads != nil && !c.noChunking.Load() && size >= c.cfg.ChunkThreshold {
		t, err := c.uploadChunked(ctx, rel, body, size, sum, progress)
		switch {
		case errors.Is(err, errNoChunking):
			if !c.noChunking.Swap(true) {
				c.log.Info("webdav: the server has no chunked upload; large files are sent whole", "url", c.base.Redacted())
			}
		case err != nil:
			return false, err
		default:
			tmp = t
		}
	}
	if tmp == "" {
		var err error
		if tmp, err = c.putTemp(ctx, rel, body, size, sum, progress); err != nil {
			return false, err
		}
	}
	if err := c.verifyTemp(ctx, tmp, body, size, sum); err != nil {
		return false, err
	}
	return c.moveFinal(ctx, tmp, rel)
}

func parentOf(rel string) string {
	if d := path.Dir(rel); d != "." {
		return d
	}
	return ""
}

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// tempName is a fresh temporary name for a plain PUT of rel.
func tempName(rel string) string {
	var b [4]byte
	rand.Read(b[:])
	return joinRel(parentOf(rel), tempPrefix+pathHash(rel)+"-"+hex.EncodeToString(b[:])+".upload")
}

// bodyReader streams part of a body, hashing it and reporting progress.
// When want is set, it checks the hash before handing out the last bytes
// of the whole body, so that a damaged blob never arrives whole.
type bodyReader struct {
	r        io.Reader
	h        hash.Hash
	want     string // expected hex SHA-256 of the whole body
	base     int64  // offset of this part in the body
	total    int64  // size of the whole body
	n        int64  // bytes read of this part
	progress func(int64)
	corrupt  bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.h.Write(p[:n])
		if b.want != "" && b.base+b.n+int64(n) >= b.total && hex.EncodeToString(b.h.Sum(nil)) != b.want {
			b.corrupt = true
			return 0, errLocalCorrupt("read body")
		}
		b.n += int64(n)
		b.progress(b.base + b.n)
	}
	return n, err
}

// putTemp PUTs the whole body to a fresh temporary name.
func (c *Client) putTemp(ctx context.Context, rel string, body io.ReaderAt, size int64, sum string, progress func(int64)) (string, error) {
	tmp := tempName(rel)
	br := &bodyReader{r: io.NewSectionReader(body, 0, size), h: sha256.New(), want: sum, total: size, progress: progress}
	h := http.Header{}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("OC-Checksum", "SHA256:"+sum)
	if size >= 1<<20 {
		h.Set("Expect", "100-continue")
	}
	op := "PUT " + rel
	code, resp, _, err := c.exchange(ctx, op, request{method: http.MethodPut, url: c.urlOf(tmp), header: h, body: br, size: size}, 0)
	if br.corrupt {
		return "", errLocalCorrupt(op)
	}
	if err != nil {
		return "", err
	}
	switch code {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		return tmp, nil
	case http.StatusNotFound, http.StatusConflict:
		// The folder went away since it was made (or seen): make it again
		// on the next attempt.
		c.dirs.Delete(parentOf(rel))
		return "", transient(op, c.statusError(op, resp),
			"le dossier de destination a disparu du serveur pendant l'envoi ; il sera recréé au prochain essai",
			"the destination folder vanished from the server during the upload; it will be made again at the next attempt")
	}
	return "", c.statusError(op, resp)
}

// verifyTemp checks the uploaded temporary file: its size, and its hash
// when the server offers one. A bad file is deleted.
func (c *Client) verifyTemp(ctx context.Context, tmp string, body io.ReaderAt, size int64, sum string) error {
	op := "PROPFIND " + tmp
	e, err := c.statURL(ctx, op, c.urlOf(tmp))
	if errors.Is(err, errNotFound) {
		return transient(op, err, "le fichier envoyé a disparu du serveur avant sa vérification ; nouvel essai automatique",
			"the sent file vanished from the server before it was checked; retrying automatically")
	}
	if err != nil {
		return err
	}
	if e.size != size {
		c.deleteQuiet(ctx, c.urlOf(tmp))
		return transient(op, fmt.Errorf("size %d, want %d", e.size, size),
			fmt.Sprintf("le serveur a reçu %d octets au lieu de %d ; nouvel essai automatique", e.size, size),
			fmt.Sprintf("the server received %d bytes instead of %d; retrying automatically", e.size, size))
	}
	algo, ok, err := sumsMatch(e.sums, body, size, sum)
	if err != nil {
		return fmt.Errorf("webdav: check %s: read the local body: %w", tmp, err)
	}
	if !ok {
		c.deleteQuiet(ctx, c.urlOf(tmp))
		return transient(op, fmt.Errorf("%s differs", algo),
			"le fichier reçu par le serveur est différent de celui envoyé (empreinte "+algo+") ; nouvel essai automatique",
			"the file the server received differs from the one sent ("+algo+" checksum); retrying automatically")
	}
	return nil
}

// sumsMatch compares the server's checksums with the body: SHA-256 when
// offered, else SHA-1 or MD5 computed from the body. No checksum: true.
func sumsMatch(sums map[string]string, body io.ReaderAt, size int64, sha string) (string, bool, error) {
	if s, ok := sums["SHA256"]; ok {
		return "SHA256", s == sha, nil
	}
	for _, algo := range []string{"SHA1", "MD5"} {
		s, ok := sums[algo]
		if !ok {
			continue
		}
		var h hash.Hash = sha1.New()
		if algo == "MD5" {
			h = md5.New()
		}
		if _, err := io.Copy(h, io.NewSectionReader(body, 0, size)); err != nil {
			return algo, false, err
		}
		return algo, hex.EncodeToString(h.Sum(nil)) == s, nil
	}
	return "", true, nil
}

// moveFinal renames tmp to rel, never overwriting.
func (c *Client) moveFinal(ctx context.Context, tmp, rel string) (bool, error) {
	h := http.Header{}
	h.Set("Destination", c.urlOf(rel))
	h.Set("Overwrite", "F")
	op := "MOVE " + rel
	code, resp, _, err := c.exchange(ctx, op, request{method: "MOVE", url: c.urlOf(tmp), header: h}, 0)
	if err != nil {
		return false, err
	}
	switch code {
	case http.StatusCreated:
		return true, nil
	case http.StatusOK, http.StatusNoContent:
		// 204 is what a MOVE over an existing resource answers: a server
		// that ignored Overwrite: F. Let the outbox look.
		return false, nil
	case http.StatusPreconditionFailed:
		// The final name exists: an earlier attempt's MOVE whose answer
		// was lost, or somebody else's file. The outbox tells which.
		c.deleteQuiet(ctx, c.urlOf(tmp))
		return false, nil
	case http.StatusNotFound:
		return false, transient(op, errNotFound, "le fichier envoyé a disparu du serveur avant d'être mis en place ; nouvel essai automatique",
			"the sent file vanished from the server before it was moved into place; retrying automatically")
	}
	return false, c.statusError(op, resp)
}

// putDrop PUTs the body straight to the final name of a file-drop link.
func (c *Client) putDrop(ctx context.Context, rel string, body io.ReaderAt, size int64, sum string, progress func(int64)) error {
	br := &bodyReader{r: io.NewSectionReader(body, 0, size), h: sha256.New(), want: sum, total: size, progress: progress}
	h := http.Header{}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("OC-Checksum", "SHA256:"+sum)
	h.Set("If-None-Match", "*")
	if size >= 1<<20 {
		h.Set("Expect", "100-continue")
	}
	op := "PUT " + rel
	code, resp, _, err := c.exchange(ctx, op, request{method: http.MethodPut, url: c.urlOf(rel), header: h, body: br, size: size}, 0)
	if br.corrupt {
		return errLocalCorrupt(op)
	}
	if err != nil {
		return err
	}
	switch code {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent, http.StatusPreconditionFailed:
		return nil
	}
	return c.statusError(op, resp)
}

// ensureDir makes the folder dir (relative; "" is the destination folder)
// and its missing parents, trying the deepest first: usually only the last
// level is new.
func (c *Client) ensureDir(ctx context.Context, dir string) error {
	if _, ok := c.dirs.Load(dir); ok {
		return nil
	}
	// One MKCOL at a time: workers sending to a new folder would race,
	// and Apache answers the loser 403.
	c.mkcol.Lock()
	defer c.mkcol.Unlock()
	return c.makeDir(ctx, dir)
}

func (c *Client) makeDir(ctx context.Context, dir string) error {
	if _, ok := c.dirs.Load(dir); ok {
		return nil
	}
	op := "MKCOL " + dir
	u := c.urlOf(dir)
	if dir != "" {
		u += "/"
	}
	for try := 0; ; try++ {
		code, resp, _, err := c.exchange(ctx, op, request{method: "MKCOL", url: u}, 0)
		if err != nil {
			return err
		}
		switch {
		case code == http.StatusCreated || code == http.StatusOK || code == http.StatusNoContent ||
			code == http.StatusMethodNotAllowed: // 405: it exists already
			c.dirs.Store(dir, struct{}{})
			return nil
		case (code == http.StatusConflict || code == http.StatusNotFound) && dir != "" && try == 0:
			if err := c.makeDir(ctx, parentOf(dir)); err != nil {
				return err
			}
			continue
		}
		// Somebody else may have made it meanwhile (another box): then
		// the refusal does not matter.
		if e, err := c.statURL(ctx, "PROPFIND "+dir, u); err == nil && e.dir {
			c.dirs.Store(dir, struct{}{})
			return nil
		}
		if code == http.StatusConflict && dir == "" {
			return &Error{Op: op, Status: code, permanent: true, Err: errNotFound,
				FR: "le dossier qui contient la destination n'existe pas sur le serveur (409) ; vérifiez l'adresse de la destination",
				EN: "the folder holding the destination does not exist on the server (409); check the destination's address"}
		}
		return c.statusError(op, resp)
	}
}

// Cleanup deletes what interrupted uploads of rel may have left: its
// temporary files and its chunked upload sessions.
func (c *Client) Cleanup(ctx context.Context, rel string) error {
	if err := checkPath(rel); err != nil {
		return err
	}
	if c.drop.Load() {
		return nil
	}
	var errs []error
	if err := c.cleanTemps(ctx, rel); err != nil {
		errs = append(errs, err)
	}
	if c.uploads != nil && !c.noChunking.Load() {
		list, err := c.sessions(ctx, rel)
		if err != nil && !errors.Is(err, errNoChunking) {
			errs = append(errs, err)
		}
		for _, s := range list {
			if err := c.delete(ctx, joinURL(c.uploads, s.name)+"/"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// cleanTemps deletes the temporary files earlier attempts at rel left in
// its folder. Some servers (golang.org/x/net/webdav, hence rclone serve
// webdav) answer a listing whose walk met a file deleted meanwhile with a
// well-formed but cut multistatus, so that files after it are silently
// missing (a MOVE or DELETE of a sibling by another worker is enough).
// Clean-ups of this client are serialised (two files of one hand-in share
// a folder), and the folder is listed again until a second listing in a
// row finds nothing left: this runs only for items that were interrupted,
// so the extra PROPFIND is cheap.
func (c *Client) cleanTemps(ctx context.Context, rel string) error {
	c.cleaning.Lock()
	defer c.cleaning.Unlock()
	prefix := tempPrefix + pathHash(rel) + "-"
	dir := parentOf(rel)
	u := c.urlOf(dir)
	if dir != "" {
		u += "/"
	}
	for round := 0; ; round++ {
		entries, err := c.children(ctx, "PROPFIND "+dir, u)
		if errors.Is(err, errNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var errs []error
		deleted := 0
		for _, e := range entries {
			if n := e.name(); len(n) > len(prefix) && n[:len(prefix)] == prefix && path.Ext(n) == ".upload" {
				if err := c.delete(ctx, c.urlOf(joinRel(dir, n))); err != nil {
					errs = append(errs, err)
				} else {
					deleted++
				}
			}
		}
		if len(errs) > 0 || (deleted == 0 && round > 0) || round == 3 {
			return errors.Join(errs...)
		}
	}
}

func (c *Client) delete(ctx context.Context, u string) error {
	op := "DELETE " + u
	code, resp, _, err := c.exchange(ctx, op, request{method: http.MethodDelete, url: u}, 0)
	if err != nil {
		return err
	}
	switch code {
	case http.StatusOK, http.StatusNoContent, http.StatusNotFound, http.StatusAccepted:
		return nil
	}
	return c.statusError(op, resp)
}

// deleteQuiet deletes u, logging a failure: what it leaves, Cleanup
// removes later.
func (c *Client) deleteQuiet(ctx context.Context, u string) {
	if err := c.delete(ctx, u); err != nil && ctx.Err() == nil {
		c.log.Debug("webdav: delete a temporary file", "url", u, "err", err)
	}
}
