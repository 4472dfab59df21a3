package httpcache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// mode says who asked: it decides which directives apply.
type mode int

const (
	modeClient mode = iota // Transport: an internal fetch
	modeProxy              // forward proxy for the LAN
	modeMirror             // reverse-proxy mirror of an origin: CDN-Cache-Control applies
)

// request is one request being answered.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	target *url.URL
	pkey   string
	up     Doer
	mode   mode
	cc     directives
}

func (q *request) mirror() bool { return q.mode == modeMirror }

// errHeaderTooLarge is returned for upstream headers over MaxHeaderBytes.
var errHeaderTooLarge = errors.New("httpcache: upstream response header too large")

// handle answers r for the resource target, from the store when RFC 9111
// allows it, else from upstream.
func (c *Cache) handle(w http.ResponseWriter, r *http.Request, target *url.URL, up Doer, m mode) {
	q := &request{w: w, r: r, target: target, pkey: primaryKey(target), up: up, mode: m}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.bypassed.Add(1)
		c.forwardOther(q)
		return
	}
	q.cc = parseCacheControl(r.Header["Cache-Control"])
	if !c.isReady.Load() || q.cc.noStore {
		c.bypassed.Add(1)
		c.fetch(q, nil, "fwd=bypass", false)
		return
	}
	vs := c.store.lookup(q.pkey)
	e := selectVariant(vs, r.Header)
	if e == nil {
		if q.cc.onlyIfCached {
			c.writeError(q, http.StatusGatewayTimeout, "fwd=miss; detail=only-if-cached",
				"Réponse absente du cache (only-if-cached)", "Not in cache (only-if-cached)")
			return
		}
		if shareable(r) {
			if inf := c.findInflight(q.pkey, r.Header); inf != nil && c.serveInflight(q, inf) {
				return
			}
		}
		c.misses.Add(1)
		fwd := "fwd=uri-miss"
		if len(vs) > 0 {
			fwd = "fwd=vary-miss"
		}
		if rh := r.Header.Get("Range"); rh != "" && r.Method == http.MethodGet && r.Header.Get("If-Range") == "" {
			c.rangeMiss(q, rh, fwd)
			return
		}
		c.fetch(q, nil, fwd, true)
		return
	}

	if e.status == http.StatusPartialContent && !partialCovers(e, r) {
		// A stored range that does not answer this request: as a miss;
		// a whole response will replace it.
		e = nil
		c.misses.Add(1)
		if rh := r.Header.Get("Range"); rh != "" && r.Method == http.MethodGet && r.Header.Get("If-Range") == "" {
			c.rangeMiss(q, rh, "fwd=partial")
			return
		}
		c.fetch(q, nil, "fwd=partial", true)
		return
	}
	now := c.now()
	mirror := q.mirror()
	age := e.age(now)
	life := e.lifetime(mirror, c.cfg.MaxHeuristic)
	fresh := age < life
	d := e.policy(mirror)
	usable := fresh
	if q.cc.maxAge == 0 || q.cc.maxAge > 0 && age > time.Duration(q.cc.maxAge)*time.Second || q.cc.maxAgeInvalid {
		usable = false
	}
	if q.cc.minFresh >= 0 && life-age < time.Duration(q.cc.minFresh)*time.Second {
		usable = false
	}
	mustValidate := d.noCache || q.cc.noCache
	if usable && !mustValidate {
		c.hits.Add(1)
		c.serveStored(q, e, now, "hit; ttl="+strconv.FormatInt(int64((life-age)/time.Second), 10))
		return
	}
	if e.status == http.StatusPartialContent {
		// Stored ranges are only used while fresh; otherwise the request
		// goes upstream and its answer replaces them.
		c.misses.Add(1)
		c.rangeMiss(q, r.Header.Get("Range"), "fwd=stale")
		return
	}
	staleness := age - life
	staleOK := !fresh && !mustValidate && !e.noStale(mirror)
	if staleOK && (q.cc.maxStaleAny || q.cc.maxStale >= 0 && staleness <= time.Duration(q.cc.maxStale)*time.Second) {
		c.hits.Add(1)
		c.staleServed.Add(1)
		c.serveStored(q, e, now, "hit; ttl="+strconv.FormatInt(-int64(staleness/time.Second), 10)+"; detail=max-stale")
		return
	}
	if q.cc.onlyIfCached {
		c.writeError(q, http.StatusGatewayTimeout, "fwd=stale; detail=only-if-cached",
			"Réponse du cache périmée (only-if-cached)", "Stored response is stale (only-if-cached)")
		return
	}
	if staleOK && q.cc.maxAge < 0 && q.cc.minFresh < 0 && d.staleWhileRevalid >= 0 &&
		staleness <= time.Duration(d.staleWhileRevalid)*time.Second {
		c.hits.Add(1)
		c.staleServed.Add(1)
		c.revalidateInBackground(q, e)
		c.serveStored(q, e, now, "hit; ttl="+strconv.FormatInt(-int64(staleness/time.Second), 10)+"; detail=stale-while-revalidate")
		return
	}
	fwd := "fwd=stale"
	if fresh {
		fwd = "fwd=request"
	}
	c.validate(q, e, fwd)
}

// selectVariant returns the most recent stored response whose Vary
// selects the request (RFC 9111 §4.1).
func selectVariant(vs []*entry, h http.Header) *entry {
	var best *entry
	for _, e := range vs {
		if !varyMatches(e.vary, h, e.contentLen) {
			continue
		}
		if best == nil || e.date.After(best.date) || e.date.Equal(best.date) && e.respTime.After(best.respTime) {
			best = e
		}
	}
	return best
}

// upstreamRequest builds the request sent upstream for q: the client's
// end-to-end fields, a Via, and the body for methods that carry one. The
// context outlives the client's so that a fill can complete; cancel ends
// it.
func (c *Cache) upstreamRequest(q *request, method string, withBody bool) (*http.Request, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(q.r.Context()))
	var body io.Reader
	if withBody && q.r.Body != nil && q.r.Body != http.NoBody {
		body = q.r.Body
	}
	out, err := http.NewRequestWithContext(ctx, method, q.target.String(), body)
	if err != nil {
		// target came from a parsed URL and method from a parsed request.
		panic(err)
	}
	out.Header = endToEnd(q.r.Header)
	delete(out.Header, "Host")
	out.Header["Via"] = append(append([]string(nil), q.r.Header["Via"]...), "1.1 "+c.via)
	if body != nil {
		out.ContentLength = q.r.ContentLength
		out.Body = io.NopCloser(body)
	}
	// Interim responses (102, 103) go on to the client as they come; the
	// handler goroutine is blocked in Do meanwhile. They are never stored.
	w := q.w
	out = out.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			if code == http.StatusContinue || code == http.StatusSwitchingProtocols {
				return nil
			}
			wh := w.Header()
			saved := make(http.Header, len(h))
			for k, v := range h {
				saved[k], wh[k] = wh[k], v
			}
			w.WriteHeader(code)
			for k, v := range saved {
				if v == nil {
					delete(wh, k)
				} else {
					wh[k] = v
				}
			}
			return nil
		},
	}))
	return out, cancel
}

// send performs out through up within the header timeout, and refuses
// oversized headers.
func (c *Cache) send(up Doer, out *http.Request, cancel context.CancelFunc) (*http.Response, error) {
	timer := time.AfterFunc(c.cfg.HeaderTimeout, cancel)
	resp, err := up.Do(out)
	if !timer.Stop() {
		// Our header timeout cancelled the request.
		if err == nil {
			resp.Body.Close()
		}
		return nil, context.DeadlineExceeded
	}
	if err != nil {
		return nil, err
	}
	if headerBytes(resp.Header) > c.cfg.MaxHeaderBytes {
		resp.Body.Close()
		return nil, errHeaderTooLarge
	}
	return resp, nil
}

// fetch forwards a GET or HEAD and delivers the answer, storing it when
// allowed. stale is the stored response the answer replaces, if any.
func (c *Cache) fetch(q *request, stale *entry, fwd string, mayStore bool) {
	out, cancel := c.upstreamRequest(q, q.r.Method, false)
	defer cancel()
	reqTime := c.now()
	resp, err := c.send(q.up, out, cancel)
	if err != nil {
		c.upstreamFailed(q, err, fwd)
		return
	}
	respTime := c.now()
	var plan *entry
	if mayStore && q.r.Method == http.MethodGet {
		plan = c.storePlan(q, resp, reqTime, respTime)
	}
	c.deliver(q, resp, plan, fwd, cancel)
}

// validate sends a conditional request for the stored e and answers from
// the outcome (RFC 9111 §4.3).
func (c *Cache) validate(q *request, e *entry, fwd string) {
	mirror := q.mirror()
	if c.cfg.Offline != nil && c.cfg.Offline() && !e.noStale(mirror) {
		// The uplink is known to be down: no need to wait for a
		// connection to fail.
		c.staleServed.Add(1)
		c.serveStored(q, e, c.now(), "hit; fwd=stale; detail=uplink-down")
		return
	}
	c.revals.Add(1)
	out, cancel := c.upstreamRequest(q, q.r.Method, false)
	defer cancel()
	conditional := e.etag != "" || e.hasLastMod
	if conditional {
		for _, k := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
			delete(out.Header, k)
		}
		if e.etag != "" {
			out.Header.Set("If-None-Match", e.etag)
		}
		if e.hasLastMod {
			out.Header.Set("If-Modified-Since", e.header.Get("Last-Modified"))
		}
	}
	reqTime := c.now()
	resp, err := c.send(q.up, out, cancel)
	now := c.now()
	if err != nil {
		// Disconnected: RFC 9111 §4.2.4 lets a cache serve stale unless a
		// response directive forbids it. This keeps content flowing
		// while the uplink is down.
		if !e.noStale(mirror) {
			c.staleServed.Add(1)
			c.serveStored(q, e, now, "hit; fwd=stale; detail=upstream-unreachable")
			return
		}
		c.upstreamFailed(q, err, fwd)
		return
	}
	respTime := now
	switch {
	case resp.StatusCode == http.StatusNotModified && conditional:
		resp.Body.Close()
		if ne := c.freshen(q, e, resp.Header, reqTime, respTime); ne != nil {
			c.notMod.Add(1)
			c.serveStored(q, ne, respTime, fwd+"; fwd-status=304")
			return
		}
		// A 304 for another representation: fetch it whole.
		q2 := *q
		q2.r = q.r.Clone(q.r.Context())
		c.fetch(&q2, e, fwd, true)
		return
	case isServerError(resp.StatusCode) && c.staleIfError(q, e, now):
		resp.Body.Close()
		c.staleServed.Add(1)
		c.serveStored(q, e, now, "hit; fwd=stale; fwd-status="+strconv.Itoa(resp.StatusCode)+"; detail=stale-if-error")
		return
	case q.r.Method == http.MethodHead && resp.StatusCode == http.StatusOK:
		if ne := c.freshenFromHead(q, e, resp.Header, reqTime, respTime); ne != nil {
			resp.Body.Close()
			c.serveStored(q, ne, respTime, fwd+"; fwd-status=200")
			return
		}
	case resp.StatusCode == http.StatusPartialContent:
		// The client's Range went with the validation and the
		// representation changed: the stored one is outdated.
		if t, ok := parseETag(resp.Header.Get("Etag")); !ok || e.etag == "" || !etagListMatches(t.opaque, e.etag, false) {
			c.store.removeEntry(context.WithoutCancel(q.r.Context()), e)
		}
	}
	var plan *entry
	if q.r.Method == http.MethodGet {
		plan = c.storePlan(q, resp, reqTime, respTime)
	}
	c.deliver(q, resp, plan, fwd+"; fwd-status="+strconv.Itoa(resp.StatusCode), cancel)
}

func isServerError(code int) bool {
	return code == 500 || code == 502 || code == 503 || code == 504
}

// staleIfError reports whether stale-if-error (RFC 5861 §4), from the
// stored response or the request, allows serving e stale at now.
func (c *Cache) staleIfError(q *request, e *entry, now time.Time) bool {
	mirror := q.mirror()
	if e.noStale(mirror) {
		return false
	}
	staleness := e.age(now) - e.lifetime(mirror, c.cfg.MaxHeuristic)
	d := e.policy(mirror)
	return d.staleIfError >= 0 && staleness <= time.Duration(d.staleIfError)*time.Second ||
		q.cc.staleIfError >= 0 && staleness <= time.Duration(q.cc.staleIfError)*time.Second
}

// freshen applies a 304 to e (RFC 9111 §3.2, §4.3.4): the 304's fields
// replace the stored ones, except Content-Length. It returns nil when the
// 304 names another representation.
func (c *Cache) freshen(q *request, e *entry, h http.Header, reqTime, respTime time.Time) *entry {
	if tag := h.Get("Etag"); tag != "" && e.etag != "" && !etagListMatches(tag, e.etag, false) {
		return nil
	}
	return c.publishFreshened(q, e, h, reqTime, respTime)
}

// freshenFromHead updates e from a 200 answer to HEAD (RFC 9111 §4.3.5)
// when it describes the same representation: same validators and, when
// given, the same length.
func (c *Cache) freshenFromHead(q *request, e *entry, h http.Header, reqTime, respTime time.Time) *entry {
	if h.Get("Etag") != e.header.Get("Etag") || h.Get("Last-Modified") != e.header.Get("Last-Modified") {
		return nil
	}
	if cl := h.Get("Content-Length"); cl != "" && cl != strconv.FormatInt(e.size, 10) {
		return nil
	}
	return c.publishFreshened(q, e, h, reqTime, respTime)
}

func (c *Cache) publishFreshened(q *request, e *entry, h http.Header, reqTime, respTime time.Time) *entry {
	nh := make(http.Header, len(e.header)+4)
	for k, v := range e.header {
		nh[k] = v
	}
	delete(nh, "Age") // the new response's Age, if any, replaces it
	upd := endToEnd(h)
	for _, k := range []string{"Content-Length", "Cache-Status"} {
		delete(upd, k)
	}
	for k, v := range upd {
		nh[k] = v
	}
	if _, ok := upd["Date"]; !ok {
		nh.Set("Date", respTime.UTC().Format(http.TimeFormat))
	}
	ne := newEntry(&entry{
		name: e.name, pkey: e.pkey, varyKey: e.varyKey, vary: e.vary, status: e.status,
		header: nh, size: e.size, reqTime: reqTime, respTime: respTime,
	})
	ne.lastUsed.Store(respTime.UnixMilli())
	if err := c.store.update(context.WithoutCancel(q.r.Context()), e, ne); err != nil {
		c.log.Warn("httpcache: freshen", "err", err)
	}
	return ne
}

// revalidateInBackground validates e without a client waiting
// (stale-while-revalidate): at most one at a time per stored response.
func (c *Cache) revalidateInBackground(q *request, e *entry) {
	key := e.pkey + "\n" + e.varyKey
	c.revalMu.Lock()
	if c.revaling[key] {
		c.revalMu.Unlock()
		return
	}
	c.revaling[key] = true
	c.revalMu.Unlock()
	r := q.r.Clone(context.WithoutCancel(q.r.Context()))
	r.Method = http.MethodGet
	r.Body = http.NoBody
	r.ContentLength = 0
	bq := &request{w: discardWriter{h: http.Header{}}, r: r, target: q.target, pkey: q.pkey, up: q.up, mode: q.mode, cc: newDirectives()}
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
		c.validate(bq, e, "fwd=stale")
	}()
}

// discardWriter is the ResponseWriter of background work.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}

// forwardOther forwards a request with another method than GET or HEAD,
// body included, and invalidates the target URI and the URIs in Location
// and Content-Location after a non-error answer to an unsafe method
// (RFC 9111 §4.4).
func (c *Cache) forwardOther(q *request) {
	out, cancel := c.upstreamRequest(q, q.r.Method, true)
	defer cancel()
	reqTime := c.now()
	resp, err := c.send(q.up, out, cancel)
	if err != nil {
		c.upstreamFailed(q, err, "fwd=method")
		return
	}
	safe := q.r.Method == http.MethodOptions || q.r.Method == http.MethodTrace
	if !safe && resp.StatusCode >= 200 && resp.StatusCode < 400 && c.isReady.Load() {
		ctx := context.WithoutCancel(q.r.Context())
		c.invalidate(ctx, q.pkey)
		for _, f := range []string{"Location", "Content-Location"} {
			if v := resp.Header.Get(f); v != "" {
				if u, err := q.target.Parse(v); err == nil && sameOrigin(u, q.target) {
					c.invalidate(ctx, primaryKey(u))
				}
			}
		}
	}
	var plan *entry
	if q.r.Method == http.MethodPost && (resp.StatusCode == http.StatusOK || resp.StatusCode == 203) && c.isReady.Load() {
		// RFC 9110 §9.3.3: a POST response with explicit freshness and a
		// Content-Location equal to the target answers later GETs.
		if u, err := q.target.Parse(resp.Header.Get("Content-Location")); err == nil &&
			resp.Header.Get("Content-Location") != "" && primaryKey(u) == q.pkey && explicitFreshness(resp.Header) {
			plan = c.storePlan(q, resp, reqTime, c.now())
		}
	}
	c.deliver(q, resp, plan, "fwd=method", cancel)
}

// explicitFreshness reports whether h gives an explicit lifetime.
func explicitFreshness(h http.Header) bool {
	d := parseCacheControl(h["Cache-Control"])
	_, exp := h["Expires"]
	return d.maxAge >= 0 || d.sMaxAge >= 0 || exp
}

func (c *Cache) invalidate(ctx context.Context, pkey string) {
	n, err := c.store.remove(ctx, pkey)
	if err != nil {
		c.log.Warn("httpcache: invalidate", "err", err)
	}
	c.invalidated.Add(int64(n))
}

// storePlan decides whether resp may be stored (RFC 9111 §3) and returns
// the entry to fill, without name and size, or nil.
func (c *Cache) storePlan(q *request, resp *http.Response, reqTime, respTime time.Time) *entry {
	code := resp.StatusCode
	if code < 200 || code == http.StatusNotModified || q.cc.noStore {
		return nil
	}
	h := resp.Header
	if code == http.StatusPartialContent {
		// A single range of a representation of known length is stored
		// (RFC 9111 §3.3), unless the whole is already stored.
		start, last, total, ok := parseContentRange(h.Get("Content-Range"))
		if !ok || len(h["Content-Range"]) != 1 || resp.ContentLength >= 0 && resp.ContentLength != last-start+1 || total <= 0 {
			return nil
		}
		for _, v := range c.store.lookup(q.pkey) {
			if v.status != http.StatusPartialContent && varyMatches(v.vary, q.r.Header, v.contentLen) {
				return nil
			}
		}
	}
	mirror := q.mirror()
	d := parseCacheControl(h["Cache-Control"])
	if mirror {
		if t, ok := parseTargeted(h, "Cdn-Cache-Control"); ok {
			d = t
		}
	}
	switch {
	case d.mustUnderstand && !understoodStatus(code):
		return nil
	case d.noStore && !d.mustUnderstand:
		return nil
	case d.private:
		return nil
	case q.r.Header.Get("Authorization") != "" && !d.public && d.sMaxAge < 0 && !d.mustRevalidate:
		return nil
	}
	names, star := parseVary(h["Vary"])
	if star {
		return nil
	}
	_, hasExpires := h["Expires"]
	explicit := d.maxAge >= 0 || d.sMaxAge >= 0 || hasExpires || d.public
	if !explicit && !heuristicallyCacheable(code) {
		return nil
	}
	if resp.ContentLength > min(c.cfg.MaxObjectBytes, c.cfg.MaxBytes) {
		return nil
	}
	stored := endToEnd(h)
	for _, f := range append(append([]string(nil), d.noCacheFields...), d.privateFields...) {
		delete(stored, http.CanonicalHeaderKey(f))
	}
	delete(stored, "Content-Length")
	if vs, ok := stored["Date"]; !ok || len(vs) != 1 {
		stored.Set("Date", respTime.UTC().Format(http.TimeFormat))
	} else if _, ok := parseHTTPDate(vs[0], respTime); !ok {
		stored.Set("Date", respTime.UTC().Format(http.TimeFormat))
	}
	vf := varyFields(names, q.r.Header)
	e := newEntry(&entry{
		pkey: q.pkey, varyKey: encodeVary(vf), vary: vf, status: code, header: stored,
		reqTime: reqTime, respTime: respTime,
	})
	e.lastUsed.Store(respTime.UnixMilli())
	return e
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// deliver writes the upstream response to the client, and to the store
// when plan is not nil. A body cut short upstream aborts the client's
// connection (so it cannot take a truncated body for a complete one) and
// stores nothing. A client that goes away does not stop a fill of known,
// acceptable length.
func (c *Cache) deliver(q *request, resp *http.Response, plan *entry, fwd string, cancel context.CancelFunc) {
	defer resp.Body.Close()
	w := q.w
	h := w.Header()
	for k, v := range endToEnd(resp.Header) {
		h[k] = v
	}
	noBody := q.r.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || resp.StatusCode < 200
	if !noBody && resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // no sniffing
	}
	status := fwd
	if plan != nil {
		status += "; stored"
	}
	h["Cache-Status"] = appendCacheStatus(resp.Header["Cache-Status"], c.cfg.Name+"; "+status)
	var fl *fill
	if plan != nil && !noBody {
		fl = c.newFill(q, plan, resp.ContentLength, resp.StatusCode == http.StatusOK && resp.ContentLength >= 0)
	} else if plan != nil {
		fl = c.newFill(q, plan, 0, false)
	}
	// Keep filling after the client leaves only when the length is known.
	keep := &atomic.Bool{}
	keep.Store(fl != nil && resp.ContentLength >= 0)
	stop := context.AfterFunc(q.r.Context(), func() {
		if !keep.Load() {
			cancel()
		}
	})
	defer stop()
	w.WriteHeader(resp.StatusCode)
	if noBody {
		if fl != nil {
			fl.commit(0)
		}
		return
	}
	idle := time.AfterFunc(c.cfg.IdleTimeout, cancel)
	defer idle.Stop()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	// While storing, the last chunk read is held back until the entry is
	// committed: a client that has the whole body finds it in the store.
	var held []byte
	if fl != nil {
		hp := bufPool.Get().(*[]byte)
		defer bufPool.Put(hp)
		held = (*hp)[:0]
	}
	clientOK := true
	flusher, _ := w.(http.Flusher)
	toClient := func(p []byte) {
		if !clientOK || len(p) == 0 {
			return
		}
		if _, err := w.Write(p); err != nil {
			clientOK = false
			return
		}
		if len(p) < len(buf) && flusher != nil {
			flusher.Flush()
		}
	}
	var n int64
	for {
		nr, er := resp.Body.Read(buf)
		idle.Reset(c.cfg.IdleTimeout)
		if nr > 0 {
			n += int64(nr)
			if fl != nil && !fl.write(buf[:nr]) {
				fl = nil
				keep.Store(false)
			}
			if held != nil {
				toClient(held)
				held = append(held[:0], buf[:nr]...)
			} else {
				toClient(buf[:nr])
			}
			if !clientOK && (fl == nil || resp.ContentLength < 0) {
				keep.Store(false)
				if fl != nil {
					fl.abort()
				}
				return
			}
		}
		if er == io.EOF {
			break
		}
		if er != nil {
			if fl != nil {
				fl.abort()
			}
			if clientOK {
				c.log.Debug("httpcache: upstream body failed", "url", q.pkey, "err", er)
				panic(http.ErrAbortHandler)
			}
			return
		}
	}
	if fl != nil {
		if resp.ContentLength >= 0 && n != resp.ContentLength {
			fl.abort()
			if clientOK {
				panic(http.ErrAbortHandler)
			}
			return
		}
		fl.commit(n)
	}
	toClient(held)
}

// fill writes one body being stored to a temporary file.
type fill struct {
	c       *Cache
	q       *request
	e       *entry
	f       *os.File
	n       int64
	retried bool
	inf     *inflight // when other requests may read the fill as it grows
}

// newFill starts a fill, or returns nil when the temporary file cannot be
// created (the response is then only streamed). With share, requests for
// the same resource arriving meanwhile read the fill instead of going
// upstream.
func (c *Cache) newFill(q *request, e *entry, length int64, share bool) *fill {
	f, err := os.CreateTemp(c.store.tmp, "fill-*")
	if err != nil {
		c.log.Warn("httpcache: cannot store", "err", err)
		return nil
	}
	fl := &fill{c: c, q: q, e: e, f: f}
	if share {
		fl.inf = c.addInflight(e, f.Name(), length)
	}
	return fl
}

// write appends p; on a full disk it evicts and retries once. It returns
// false (and discards the fill) when the body cannot be stored.
func (fl *fill) write(p []byte) bool {
	if fl.n+int64(len(p)) > min(fl.c.cfg.MaxObjectBytes, fl.c.cfg.MaxBytes) {
		fl.abort()
		return false
	}
	for {
		w, err := fl.f.Write(p)
		fl.n += int64(w)
		if fl.inf != nil && w > 0 {
			fl.inf.advance(fl.n)
		}
		if err == nil {
			return true
		}
		p = p[w:]
		if errors.Is(err, syscall.ENOSPC) && !fl.retried {
			fl.retried = true
			need := max(int64(len(p)), 16<<20)
			fl.c.log.Warn("httpcache: disk full, evicting", "bytes", need)
			fl.c.store.evict(context.WithoutCancel(fl.q.r.Context()), need, 0)
			continue
		}
		fl.c.log.Warn("httpcache: cannot store", "url", fl.e.pkey, "err", err)
		fl.abort()
		return false
	}
}

func (fl *fill) abort() {
	if fl.f != nil {
		name := fl.f.Name()
		fl.f.Close()
		os.Remove(name)
		fl.f = nil
	}
	if fl.inf != nil {
		fl.c.endInflight(fl.inf, false)
		fl.inf = nil
	}
}

// commit makes the body durable and publishes the entry.
func (fl *fill) commit(n int64) {
	if fl.f == nil {
		return
	}
	name := fl.f.Name()
	err := fl.f.Sync()
	if cerr := fl.f.Close(); err == nil {
		err = cerr
	}
	fl.f = nil
	if err != nil {
		os.Remove(name)
		fl.c.log.Warn("httpcache: cannot store", "url", fl.e.pkey, "err", err)
		fl.abort()
		return
	}
	fl.e.size = n
	fl.e.name = newName()
	err = fl.c.store.insert(context.WithoutCancel(fl.q.r.Context()), fl.e, name)
	if fl.inf != nil {
		fl.c.endInflight(fl.inf, err == nil)
		fl.inf = nil
	}
	if errors.Is(err, errWholeStored) {
		return
	}
	if err != nil {
		fl.c.log.Warn("httpcache: cannot store", "url", fl.e.pkey, "err", err)
		return
	}
	fl.c.stored.Add(1)
}

func newName() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// upstreamFailed answers a request whose upstream exchange failed and
// that no stored response can answer.
func (c *Cache) upstreamFailed(q *request, err error, fwd string) {
	switch {
	case errors.Is(err, errHeaderTooLarge):
		c.writeError(q, http.StatusBadGateway, fwd+"; detail=header-too-large",
			"Le serveur d'origine a envoyé des en-têtes trop volumineux", "The origin server sent oversized headers")
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		c.writeError(q, http.StatusGatewayTimeout, fwd+"; detail=timeout",
			"Le serveur d'origine ne répond pas à temps", "The origin server did not answer in time")
	default:
		c.log.Debug("httpcache: upstream failed", "url", q.pkey, "err", err)
		c.writeError(q, http.StatusBadGateway, fwd+"; detail=upstream-unreachable",
			"Le serveur d'origine est injoignable (connexion internet coupée ?)", "The origin server cannot be reached (internet link down?)")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// writeError writes a short bilingual error page.
func (c *Cache) writeError(q *request, code int, status, fr, en string) {
	h := q.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Cache-Status", c.cfg.Name+"; "+status)
	body := fr + "\n" + en + "\n"
	h.Set("Content-Length", strconv.Itoa(len(body)))
	q.w.WriteHeader(code)
	if q.r.Method != http.MethodHead {
		io.WriteString(q.w, body)
	}
}

// appendCacheStatus adds our member at the end of the Cache-Status list
// (RFC 9211: the last member is the cache closest to the client).
func appendCacheStatus(upstream []string, member string) []string {
	out := make([]string, 0, len(upstream)+1)
	for _, v := range upstream {
		if strings.TrimSpace(v) != "" {
			out = append(out, v)
		}
	}
	return append(out, member)
}
