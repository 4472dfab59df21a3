package httpcache

import (
	"context"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"preau/services/internal/httpserve"
)

// rangeFillMin is the smallest representation a seek into an uncached
// resource fetches whole in the background: smaller ones are simply
// fetched whole by the next full request.
const rangeFillMin = 1 << 20

// rangeMiss answers a Range request for a resource not stored, so that
// media seeking fills the cache: a range from the first byte (what a
// video element asks first, "bytes=0-") is cut from a fetch of the whole
// representation, which is stored; any other range is forwarded as is,
// and a large enough representation is fetched whole in the background.
func (c *Cache) rangeMiss(q *request, rh, fwd string) {
	rs, err := httpserve.ParseRange(rh, math.MaxInt64)
	if err == nil && len(rs) == 1 && rs[0].Start == 0 {
		c.fetchWholeForRange(q, rh, fwd)
		return
	}
	out, cancel := c.upstreamRequest(q, http.MethodGet, false)
	defer cancel()
	reqTime := c.now()
	resp, err := c.send(q.up, out, cancel)
	if err != nil {
		c.upstreamFailed(q, err, fwd)
		return
	}
	var plan *entry
	switch resp.StatusCode {
	case http.StatusOK: // the origin ignored Range: store the whole
		plan = c.storePlan(q, resp, reqTime, c.now())
	case http.StatusPartialContent:
		plan = c.storePlan(q, resp, reqTime, c.now())
		if total := contentRangeTotal(resp.Header.Get("Content-Range")); total >= rangeFillMin && total <= c.cfg.MaxObjectBytes &&
			!parseCacheControl(resp.Header["Cache-Control"]).noStore {
			c.fillInBackground(q)
		}
	}
	c.deliver(q, resp, plan, fwd, cancel)
}

// contentRangeTotal returns the complete length of a "bytes a-b/total"
// Content-Range, or -1.
func contentRangeTotal(cr string) int64 {
	_, total, ok := strings.Cut(cr, "/")
	if !ok || !strings.HasPrefix(cr, "bytes ") {
		return -1
	}
	n, err := strconv.ParseInt(total, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// fetchWholeForRange fetches the whole representation, stores it, and
// answers the client's range (starting at 0) from the stream. Once the
// client has its bytes, the fill goes on without it.
func (c *Cache) fetchWholeForRange(q *request, rh, fwd string) {
	out, cancel := c.upstreamRequest(q, http.MethodGet, false)
	delete(out.Header, "Range")
	reqTime := c.now()
	resp, err := c.send(q.up, out, cancel)
	if err != nil {
		cancel()
		c.upstreamFailed(q, err, fwd)
		return
	}
	plan := c.storePlan(q, resp, reqTime, c.now())
	var ra httpserve.Range
	ok := false
	if resp.StatusCode == http.StatusOK && plan != nil && resp.ContentLength > 0 {
		rs, err := httpserve.ParseRange(rh, resp.ContentLength)
		ok = err == nil && len(rs) == 1 && rs[0].Start == 0
		if ok {
			ra = rs[0]
		}
	}
	if !ok {
		// Not a storable whole body: the full answer (a server may
		// ignore Range, RFC 9110 §14.2).
		defer cancel()
		c.deliver(q, resp, plan, fwd, cancel)
		return
	}
	fl := c.newFill(q, plan, resp.ContentLength, true)
	h := q.w.Header()
	for k, v := range endToEnd(resp.Header) {
		h[k] = v
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
	h.Set("Content-Range", ra.ContentRange(resp.ContentLength))
	h.Set("Content-Length", strconv.FormatInt(ra.Length, 10))
	status := fwd
	if fl != nil {
		status += "; stored"
	}
	h["Cache-Status"] = appendCacheStatus(resp.Header["Cache-Status"], c.cfg.Name+"; "+status+"; detail=range-from-whole")
	q.w.WriteHeader(http.StatusPartialContent)

	idle := time.AfterFunc(c.cfg.IdleTimeout, cancel)
	bp := bufPool.Get().(*[]byte)
	buf := *bp
	var n int64
	clientOK := true
	finish := func(complete bool) {
		idle.Stop()
		bufPool.Put(bp)
		resp.Body.Close()
		cancel()
		if fl == nil {
			return
		}
		if complete && n == resp.ContentLength {
			fl.commit(n)
		} else {
			fl.abort()
		}
	}
	for n < ra.Length {
		nr, er := resp.Body.Read(buf)
		idle.Reset(c.cfg.IdleTimeout)
		if nr > 0 {
			if fl != nil && !fl.write(buf[:nr]) {
				fl = nil
			}
			if want := ra.Length - n; clientOK {
				chunk := buf[:nr]
				if int64(len(chunk)) > want {
					chunk = chunk[:want]
				}
				if _, err := q.w.Write(chunk); err != nil {
					clientOK = false
				}
			}
			n += int64(nr)
		}
		if er == io.EOF {
			finish(true)
			if n < ra.Length && clientOK {
				panic(http.ErrAbortHandler)
			}
			return
		}
		if er != nil || !clientOK && fl == nil {
			finish(false)
			if clientOK {
				panic(http.ErrAbortHandler)
			}
			return
		}
	}
	if fl == nil {
		finish(false)
		return
	}
	if n == resp.ContentLength {
		finish(true)
		return
	}
	// The client has its range: complete the fill in the background.
	go func() {
		for {
			nr, er := resp.Body.Read(buf)
			idle.Reset(c.cfg.IdleTimeout)
			if nr > 0 {
				n += int64(nr)
				if !fl.write(buf[:nr]) {
					fl = nil
					finish(false)
					return
				}
			}
			if er == io.EOF {
				finish(true)
				return
			}
			if er != nil {
				finish(false)
				return
			}
		}
	}()
}

// fillInBackground fetches and stores the whole representation q names,
// without a client waiting, at most once at a time per resource.
func (c *Cache) fillInBackground(q *request) {
	key := "fill\n" + q.pkey
	c.revalMu.Lock()
	if c.revaling[key] {
		c.revalMu.Unlock()
		return
	}
	c.revaling[key] = true
	c.revalMu.Unlock()
	r := q.r.Clone(context.WithoutCancel(q.r.Context()))
	for _, k := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"} {
		delete(r.Header, k)
	}
	r.Body = http.NoBody
	bq := &request{w: discardWriter{h: http.Header{}}, r: r, target: q.target, pkey: q.pkey, up: q.up, mode: q.mode, cc: q.cc}
	go func() {
		defer func() {
			c.revalMu.Lock()
			delete(c.revaling, key)
			c.revalMu.Unlock()
		}()
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				panic(v)
			}
		}()
		if vs := c.store.lookup(bq.pkey); selectVariant(vs, r.Header) != nil {
			return // stored meanwhile
		}
		c.fetch(bq, nil, "fwd=miss; detail=range-fill", true)
	}()
}
