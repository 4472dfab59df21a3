package webdav

// Nextcloud's chunked upload v2, as its developer documentation describes
// it (docs.nextcloud.com, developer manual, client APIs, WebDAV, "Chunked
// file upload"): a session folder under /remote.php/dav/uploads/USER/,
// made with MKCOL; chunks named 1 to 10000, 5 MiB to 5 GiB except the last,
// each PUT with a Destination header (the final file's URL) and
// OC-Total-Length; assembled in name order by a MOVE of the session's
// ".file" to the Destination. Nextcloud expires sessions idle for 24 h.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// session is one of our chunked upload sessions on the server.
type session struct {
	name  string
	start time.Time
}

// sessions lists the sessions of rel, newest first. errNoChunking when the
// uploads folder cannot be listed (not a Nextcloud server).
func (c *Client) sessions(ctx context.Context, rel string) ([]session, error) {
	entries, err := c.children(ctx, "PROPFIND uploads", c.uploads.String())
	var we *Error
	if errors.Is(err, errNotFound) || (errors.As(err, &we) && we.Status >= 400 && we.Status < 500) {
		return nil, errNoChunking
	}
	if err != nil {
		return nil, err
	}
	prefix := "preau-" + pathHash(rel) + "-"
	var out []session
	for _, e := range entries {
		n := e.name()
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		sec, err := strconv.ParseInt(n[len(prefix):], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, session{name: n, start: time.Unix(sec, 0)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.After(out[j].start) })
	return out, nil
}

// chunkSize is the configured size, raised when the file would need more
// than 10000 chunks.
func (c *Client) chunkSize(size int64) int64 {
	cs := c.cfg.ChunkSize
	if n := (size + cs - 1) / cs; n > maxChunks {
		cs = (size + maxChunks - 1) / maxChunks
	}
	return cs
}

// chunks lists the chunks of a session: number → size.
func (c *Client) chunks(ctx context.Context, name string) (map[int]int64, error) {
	entries, err := c.children(ctx, "PROPFIND "+name, joinURL(c.uploads, name)+"/")
	if err != nil {
		return nil, err
	}
	have := make(map[int]int64, len(entries))
	for _, e := range entries {
		if n, err := strconv.Atoi(e.name()); err == nil && n >= 1 && !e.dir {
			have[n] = e.size
		}
	}
	return have, nil
}

// uploadChunked uploads body through a chunked session, resuming one
// younger than ChunkLifetime, and assembles it under a temporary name,
// which it returns.
func (c *Client) uploadChunked(ctx context.Context, rel string, body io.ReaderAt, size int64, sum string, progress func(int64)) (string, error) {
	tmp := joinRel(parentOf(rel), tempPrefix+pathHash(rel)+"-chunked.upload")
	tmpURL := c.urlOf(tmp)
	list, err := c.sessions(ctx, rel)
	if err != nil {
		return "", err
	}
	now := c.cfg.Now()
	cur := ""
	for _, s := range list {
		if age := now.Sub(s.start); cur == "" && age >= 0 && age < c.cfg.ChunkLifetime {
			cur = s.name
			continue
		}
		// Too old to trust (Nextcloud may be deleting it), from a clock
		// that was wrong, or a spare: start cleanly.
		c.log.Info("webdav: drop an old chunked upload session", "session", s.name, "started", s.start)
		if err := c.delete(ctx, joinURL(c.uploads, s.name)+"/"); err != nil {
			return "", err
		}
	}
	cs := c.chunkSize(size)
	count := int((size + cs - 1) / cs)
	var have map[int]int64
	for restart := 0; ; restart++ {
		if cur == "" {
			// An earlier attempt may have assembled the file and lost the
			// answer: its result waits under the temporary name.
			if e, err := c.statURL(ctx, "PROPFIND "+tmp, tmpURL); err == nil && e.size == size {
				progress(size)
				return tmp, nil
			}
			cur = fmt.Sprintf("preau-%s-%d", pathHash(rel), now.Unix())
			if err := c.mkSession(ctx, cur, tmpURL); err != nil {
				return "", err
			}
		}
		have, err = c.chunks(ctx, cur)
		stale := false
		for n := range have {
			stale = stale || n > count // written with another chunk size
		}
		if (errors.Is(err, errNotFound) || stale) && restart == 0 {
			if stale {
				if err := c.delete(ctx, joinURL(c.uploads, cur)+"/"); err != nil {
					return "", err
				}
			}
			cur = ""
			continue
		}
		if errors.Is(err, errNotFound) {
			return "", transient("PROPFIND "+cur, err, "la session d'envoi par morceaux a disparu du serveur ; nouvel essai automatique",
				"the chunked upload session vanished from the server; retrying automatically")
		}
		if err != nil {
			return "", err
		}
		break
	}

	hasher := sha256.New()
	chunkHeader := func() http.Header {
		h := http.Header{}
		h.Set("Destination", tmpURL)
		h.Set("OC-Total-Length", strconv.FormatInt(size, 10))
		return h
	}
	for n, off := 1, int64(0); off < size; n++ {
		length := min(cs, size-off)
		part := io.NewSectionReader(body, off, length)
		if have[n] == length {
			// Stored by an earlier attempt: hashed here, never sent again.
			if _, err := io.Copy(hasher, part); err != nil {
				return "", fmt.Errorf("webdav: read the local body: %w", err)
			}
			off += length
			progress(off)
			continue
		}
		br := &bodyReader{r: part, h: hasher, want: sum, base: off, total: size, progress: progress}
		h := chunkHeader()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Expect", "100-continue")
		op := fmt.Sprintf("PUT %s (part %d/%d)", rel, n, count)
		code, resp, _, err := c.exchange(ctx, op, request{method: http.MethodPut,
			url: joinURL(c.uploads, cur+"/"+fmt.Sprintf("%05d", n)), header: h, body: br, size: length}, 0)
		if br.corrupt {
			c.deleteQuiet(ctx, joinURL(c.uploads, cur)+"/")
			return "", errLocalCorrupt(op)
		}
		if err != nil {
			return "", err
		}
		switch code {
		case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		case http.StatusNotFound:
			return "", transient(op, errNotFound, "la session d'envoi par morceaux a expiré sur le serveur ; l'envoi reprendra du début",
				"the chunked upload session expired on the server; the upload will start again")
		default:
			return "", c.statusError(op, resp)
		}
		off += length
	}
	if hex.EncodeToString(hasher.Sum(nil)) != sum {
		c.deleteQuiet(ctx, joinURL(c.uploads, cur)+"/")
		return "", errLocalCorrupt("assemble " + rel)
	}
	h := chunkHeader()
	h.Set("Overwrite", "T") // the temporary name may hold an older assembly
	h.Set("OC-Checksum", "SHA256:"+sum)
	op := "MOVE " + rel + " (assemble)"
	code, resp, _, err := c.exchange(ctx, op, request{method: "MOVE", url: joinURL(c.uploads, cur+"/.file"), header: h}, 0)
	if err != nil {
		return "", err
	}
	switch code {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		return tmp, nil
	case http.StatusNotFound:
		return "", transient(op, errNotFound, "la session d'envoi par morceaux a disparu du serveur ; nouvel essai automatique",
			"the chunked upload session vanished from the server; retrying automatically")
	}
	return "", c.statusError(op, resp)
}

// mkSession makes a session folder bound to its destination.
func (c *Client) mkSession(ctx context.Context, name, dest string) error {
	h := http.Header{}
	h.Set("Destination", dest)
	op := "MKCOL " + name
	code, resp, _, err := c.exchange(ctx, op, request{method: "MKCOL", url: joinURL(c.uploads, name) + "/", header: h}, 0)
	if err != nil {
		return err
	}
	switch code {
	case http.StatusCreated, http.StatusOK, http.StatusNoContent, http.StatusMethodNotAllowed:
		return nil
	}
	return c.statusError(op, resp)
}
