package httpcache

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"preau/services/internal/httpserve"
)

// serveStored answers q from the stored e (RFC 9111 §4): the stored
// fields with a generated Age and our Cache-Status member, the client's
// preconditions evaluated against e (RFC 9110 §13.2.2), and a byte range
// served from the complete stored body. Bodies go from the file to the
// connection with sendfile.
func (c *Cache) serveStored(q *request, e *entry, now time.Time, status string) {
	w, r := q.w, q.r
	if e.status == http.StatusPartialContent {
		c.servePartial(q, e, now, status)
		return
	}
	var f *os.File
	var mem []byte
	hasBody := r.Method != http.MethodHead && e.status != http.StatusNoContent && e.status >= 200
	if hasBody {
		mem, _ = c.store.memBody(e)
	}
	if hasBody && mem == nil {
		var err error
		f, err = os.Open(c.store.bodyPath(e.name))
		if err != nil {
			// Evicted or lost since the lookup: forget it and fetch.
			if !errors.Is(err, os.ErrNotExist) {
				c.log.Warn("httpcache: open stored body", "err", err)
			}
			c.store.removeEntry(context.WithoutCancel(r.Context()), e)
			c.fetch(q, nil, "fwd=miss", true)
			return
		}
		defer f.Close()
	}
	e.lastUsed.Store(now.UnixMilli())
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	h["Age"] = []string{formatAge(e.age(now))}
	h["Cache-Status"] = appendCacheStatus(e.header["Cache-Status"], c.cfg.Name+"; "+status)
	if _, ok := e.header["Content-Type"]; !ok {
		h["Content-Type"] = nil // never sniff a stored response
	}

	if e.status >= 200 && e.status < 300 {
		switch evalPreconditions(r, e) {
		case preNotModified:
			for _, k := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Content-Language", "Content-Range", "Content-Md5"} {
				delete(h, k)
			}
			w.WriteHeader(http.StatusNotModified)
			return
		case preFailed:
			writeEmpty(w, http.StatusPreconditionFailed)
			return
		}
	}

	size := e.size
	if rh := r.Header.Get("Range"); rh != "" && r.Method == http.MethodGet && e.status == http.StatusOK && ifRangeHolds(r, e) {
		ranges, err := httpserve.ParseRange(rh, size)
		switch {
		case errors.Is(err, httpserve.ErrUnsatisfiable), errors.Is(err, httpserve.ErrInvalid):
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			writeEmpty(w, http.StatusRequestedRangeNotSatisfiable)
			return
		case err == nil && len(ranges) == 1:
			ra := ranges[0]
			h.Set("Content-Range", ra.ContentRange(size))
			h.Set("Content-Length", strconv.FormatInt(ra.Length, 10))
			w.WriteHeader(http.StatusPartialContent)
			c.copyBody(w, f, mem, ra.Start, ra.Length)
			return
		case err == nil && len(ranges) > 1 && sumLengths(ranges) <= size:
			c.serveMultipart(w, f, mem, e, ranges)
			return
		}
		// Unknown unit, too many or overlapping ranges: the whole body.
	}
	if hasBody || r.Method == http.MethodHead && e.status != http.StatusNoContent {
		h.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	w.WriteHeader(e.status)
	if hasBody {
		c.copyBody(w, f, mem, 0, size)
	}
}

// copyBody sends length bytes of the body from start: from memory for a
// small body, else from f with io.CopyN, which hands the file to the
// ResponseWriter's ReadFrom, which uses sendfile(2).
func (c *Cache) copyBody(w io.Writer, f *os.File, mem []byte, start, length int64) {
	if mem != nil {
		n, _ := w.Write(mem[start : start+length])
		c.hitBytes.Add(int64(n))
		if int64(n) < length {
			panic(http.ErrAbortHandler)
		}
		return
	}
	if start != 0 {
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			panic(http.ErrAbortHandler)
		}
	}
	n, err := io.CopyN(w, f, length)
	c.hitBytes.Add(n)
	if err != nil && n < length {
		// The client went away, or the file shrank under us: never let
		// a short body pass for a complete one.
		panic(http.ErrAbortHandler)
	}
}

func (c *Cache) serveMultipart(w http.ResponseWriter, f *os.File, mem []byte, e *entry, ranges []httpserve.Range) {
	boundary := newName()
	ct := e.header.Get("Content-Type")
	parts := make([]string, len(ranges))
	var total int64
	for i, ra := range ranges {
		var b strings.Builder
		if i > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("--" + boundary + "\r\n")
		if ct != "" {
			b.WriteString("Content-Type: " + ct + "\r\n")
		}
		b.WriteString("Content-Range: " + ra.ContentRange(e.size) + "\r\n\r\n")
		parts[i] = b.String()
		total += int64(len(parts[i])) + ra.Length
	}
	trailer := "\r\n--" + boundary + "--\r\n"
	total += int64(len(trailer))
	h := w.Header()
	h.Set("Content-Type", "multipart/byteranges; boundary="+boundary)
	h.Set("Content-Length", strconv.FormatInt(total, 10))
	w.WriteHeader(http.StatusPartialContent)
	for i, ra := range ranges {
		if _, err := io.WriteString(w, parts[i]); err != nil {
			panic(http.ErrAbortHandler)
		}
		c.copyBody(w, f, mem, ra.Start, ra.Length)
	}
	io.WriteString(w, trailer)
}

func sumLengths(rs []httpserve.Range) int64 {
	var n int64
	for _, r := range rs {
		n += r.Length
	}
	return n
}

// writeEmpty writes a status without representation fields or body.
func writeEmpty(w http.ResponseWriter, code int) {
	h := w.Header()
	for _, k := range []string{"Content-Type", "Content-Encoding", "Content-Language", "Content-Md5"} {
		delete(h, k)
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(code)
}

type precondition int

const (
	preNone precondition = iota
	preNotModified
	preFailed
)

// evalPreconditions evaluates the client's conditional fields against the
// stored response, in the order of RFC 9110 §13.2.2. If-Modified-Since
// uses Last-Modified, or Date when there is none (RFC 9111 §4.3.2).
func evalPreconditions(r *http.Request, e *entry) precondition {
	now := e.respTime
	if im := r.Header.Get("If-Match"); im != "" {
		if !etagListMatches(im, e.etag, true) {
			return preFailed
		}
	} else if ius := r.Header.Get("If-Unmodified-Since"); ius != "" && e.hasLastMod {
		if t, ok := parseHTTPDate(ius, now); ok && e.lastMod.After(t) {
			return preFailed
		}
	}
	getOrHead := r.Method == http.MethodGet || r.Method == http.MethodHead
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if etagListMatches(inm, e.etag, false) {
			if getOrHead {
				return preNotModified
			}
			return preFailed
		}
	} else if ims := r.Header.Get("If-Modified-Since"); ims != "" && getOrHead {
		lm := e.date
		if e.hasLastMod {
			lm = e.lastMod
		}
		if t, ok := parseHTTPDate(ims, now); ok && !lm.After(t) {
			return preNotModified
		}
	}
	return preNone
}

// ifRangeHolds reports whether Range applies given If-Range (RFC 9110
// §13.1.5): a strong entity-tag compared strongly, or a date equal to
// Last-Modified.
func ifRangeHolds(r *http.Request, e *entry) bool {
	ir := strings.TrimSpace(r.Header.Get("If-Range"))
	if ir == "" {
		return true
	}
	if strings.HasPrefix(ir, `"`) || strings.HasPrefix(ir, "W/") {
		return etagListMatches(ir, e.etag, true)
	}
	t, ok := parseHTTPDate(ir, e.respTime)
	return ok && e.hasLastMod && t.Equal(e.lastMod)
}

// partialCovers reports whether the stored range e answers r: a GET with
// one byte range inside it, and no conditional fields.
func partialCovers(e *entry, r *http.Request) bool {
	rh := r.Header.Get("Range")
	if r.Method != http.MethodGet || rh == "" || e.pTotal <= 0 {
		return false
	}
	for _, k := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
		if r.Header.Get(k) != "" {
			return false
		}
	}
	rs, err := httpserve.ParseRange(rh, e.pTotal)
	return err == nil && len(rs) == 1 && rs[0].Start >= e.pStart && rs[0].Start+rs[0].Length <= e.pStart+e.size
}

// servePartial answers a range inside a stored 206 (partialCovers holds).
func (c *Cache) servePartial(q *request, e *entry, now time.Time, status string) {
	w := q.w
	rs, err := httpserve.ParseRange(q.r.Header.Get("Range"), e.pTotal)
	if err != nil || len(rs) != 1 {
		panic(http.ErrAbortHandler) // partialCovers was checked
	}
	ra := rs[0]
	mem, _ := c.store.memBody(e)
	var f *os.File
	if mem == nil {
		f, err = os.Open(c.store.bodyPath(e.name))
		if err != nil {
			c.store.removeEntry(context.WithoutCancel(q.r.Context()), e)
			c.fetch(q, nil, "fwd=miss", false)
			return
		}
		defer f.Close()
	}
	e.lastUsed.Store(now.UnixMilli())
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	h["Age"] = []string{formatAge(e.age(now))}
	h["Cache-Status"] = appendCacheStatus(e.header["Cache-Status"], c.cfg.Name+"; "+status)
	if _, ok := e.header["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
	h.Set("Content-Range", ra.ContentRange(e.pTotal))
	h.Set("Content-Length", strconv.FormatInt(ra.Length, 10))
	w.WriteHeader(http.StatusPartialContent)
	c.copyBody(w, f, mem, ra.Start-e.pStart, ra.Length)
}
