package httpcache

import (
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"

	"preau/services/internal/httpserve"
)

// inflight is a body being stored that other requests for the same
// resource read as it grows (collapsed requests, RFC 9111 §4): when thirty
// pupils open the same new video at once, the uplink carries it once.
type inflight struct {
	e      *entry // the response being stored (fields, status, Vary)
	path   string // its temporary file
	length int64  // Content-Length, or -1

	mu     sync.Mutex
	cond   *sync.Cond
	n      int64 // bytes written to the file
	done   bool  // complete and stored
	failed bool  // abandoned: readers must not take what they got for complete
}

func (c *Cache) addInflight(e *entry, path string, length int64) *inflight {
	inf := &inflight{e: e, path: path, length: length}
	inf.cond = sync.NewCond(&inf.mu)
	c.inflightMu.Lock()
	c.inflight[e.pkey] = append(c.inflight[e.pkey], inf)
	c.inflightMu.Unlock()
	return inf
}

// advance records that n bytes are in the file.
func (inf *inflight) advance(n int64) {
	inf.mu.Lock()
	inf.n = n
	inf.mu.Unlock()
	inf.cond.Broadcast()
}

// end marks the fill complete or abandoned and unregisters it.
func (c *Cache) endInflight(inf *inflight, ok bool) {
	c.inflightMu.Lock()
	list := c.inflight[inf.e.pkey]
	for i, v := range list {
		if v == inf {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(c.inflight, inf.e.pkey)
	} else {
		c.inflight[inf.e.pkey] = list
	}
	c.inflightMu.Unlock()
	inf.mu.Lock()
	inf.done, inf.failed = ok, !ok
	inf.mu.Unlock()
	inf.cond.Broadcast()
}

// findInflight returns a fill the request can share: same resource, Vary
// matching.
func (c *Cache) findInflight(pkey string, h http.Header) *inflight {
	c.inflightMu.Lock()
	defer c.inflightMu.Unlock()
	for _, inf := range c.inflight[pkey] {
		if varyMatches(inf.e.vary, h, inf.e.contentLen) {
			return inf
		}
	}
	return nil
}

// shareable reports whether q may read a fill in progress: a plain GET,
// or a single range when the length is known. Conditional requests take
// the usual path.
func shareable(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	for _, k := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
		if r.Header.Get(k) != "" {
			return false
		}
	}
	return true
}

// serveInflight streams the fill to q. It returns false, having written
// nothing, when the fill cannot be read (it just ended: the caller looks
// again).
func (c *Cache) serveInflight(q *request, inf *inflight) bool {
	start, length := int64(0), inf.length
	status := inf.e.status
	var contentRange string
	if rh := q.r.Header.Get("Range"); rh != "" {
		if inf.length < 0 {
			return false
		}
		rs, err := httpserve.ParseRange(rh, inf.length)
		if err != nil || len(rs) != 1 {
			return false
		}
		start, length = rs[0].Start, rs[0].Length
		status = http.StatusPartialContent
		contentRange = rs[0].ContentRange(inf.length)
	}
	f, err := os.Open(inf.path)
	if err != nil {
		return false
	}
	defer f.Close()
	h := q.w.Header()
	for k, v := range inf.e.header {
		h[k] = v
	}
	h["Age"] = []string{formatAge(inf.e.age(c.now()))}
	h["Cache-Status"] = appendCacheStatus(inf.e.header["Cache-Status"], c.cfg.Name+"; fwd=uri-miss; collapsed")
	if _, ok := inf.e.header["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
	if contentRange != "" {
		h.Set("Content-Range", contentRange)
	}
	if length >= 0 {
		h.Set("Content-Length", strconv.FormatInt(length, 10))
	}
	c.hits.Add(1)
	q.w.WriteHeader(status)
	off, end := start, int64(-1)
	if length >= 0 {
		end = start + length
	}
	for end < 0 || off < end {
		inf.mu.Lock()
		for inf.n <= off && !inf.done && !inf.failed {
			inf.cond.Wait()
		}
		avail, done, failed := inf.n, inf.done, inf.failed
		inf.mu.Unlock()
		if end >= 0 && avail > end {
			avail = end
		}
		if avail > off {
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				panic(http.ErrAbortHandler)
			}
			n, err := io.CopyN(q.w, f, avail-off)
			off += n
			c.hitBytes.Add(n)
			if err != nil {
				panic(http.ErrAbortHandler)
			}
			continue
		}
		if failed || !done {
			panic(http.ErrAbortHandler) // never pass a cut body for a whole one
		}
		break // done, all read
	}
	return true
}
