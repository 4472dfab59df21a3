package httpcache

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// entry is one stored response. It is immutable once published in the
// index, except lastUsed: freshening after a 304 publishes a new entry that
// shares the body file.
type entry struct {
	name     string // body file name under bodies/
	pkey     string // primary key: the target URI
	varyKey  string // encoded secondary key ("" without Vary)
	vary     []varyField
	status   int
	header   http.Header // stored fields, without hop-by-hop fields and Age
	size     int64
	reqTime  time.Time // when the request that got this response was sent
	respTime time.Time // when the response (or its last 304) arrived

	lastUsed atomic.Int64 // unix ms; persisted lazily for LRU

	// Derived from header at creation.
	date       time.Time
	ageValue   int64
	cc         directives
	cdn        directives
	cdnOK      bool
	etag       string
	lastMod    time.Time
	hasLastMod bool
	expires    time.Time
	expiresOK  bool // Expires present, single and valid
	hasExpires bool
	contentLen string // Content-Language, for Accept-Language selection

	// A stored 206: the body holds bytes [pStart, pStart+size) of a
	// representation of pTotal bytes.
	pStart, pTotal int64
}

// newEntry derives the parsed fields of e from e.header.
func newEntry(e *entry) *entry {
	h := e.header
	// Hits hand these slices to ResponseWriters: with len == cap, an
	// Add there reallocates instead of writing into the stored value.
	for k, v := range h {
		h[k] = v[:len(v):len(v)]
	}
	e.date = e.respTime
	if vs := h["Date"]; len(vs) == 1 {
		if t, ok := parseHTTPDate(vs[0], e.respTime); ok {
			e.date = t
		}
	}
	e.ageValue = parseAge(h["Age"])
	e.cc = parseCacheControl(h["Cache-Control"])
	e.cdn, e.cdnOK = parseTargeted(h, "Cdn-Cache-Control")
	e.etag = h.Get("Etag")
	if vs := h["Last-Modified"]; len(vs) == 1 {
		e.lastMod, e.hasLastMod = parseHTTPDate(vs[0], e.respTime)
	}
	if vs, ok := h["Expires"]; ok {
		e.hasExpires = true
		if len(vs) == 1 {
			e.expires, e.expiresOK = parseHTTPDate(strings.Trim(vs[0], " \t"), e.respTime)
		}
	}
	e.contentLen = strings.TrimSpace(h.Get("Content-Language"))
	if e.status == http.StatusPartialContent {
		if start, _, total, ok := parseContentRange(h.Get("Content-Range")); ok {
			e.pStart, e.pTotal = start, total
		}
	}
	return e
}

// parseContentRange reads "bytes first-last/complete" (RFC 9110 §14.4)
// with a known complete length.
func parseContentRange(s string) (first, last, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	a, b, found2 := strings.Cut(rng, "-")
	if !found || !found2 {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	first, err1 = strconv.ParseInt(a, 10, 64)
	last, err2 = strconv.ParseInt(b, 10, 64)
	total, err3 = strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || first < 0 || last < first || last >= total {
		return 0, 0, 0, false
	}
	return first, last, total, true
}

// parseAge reads the Age field (RFC 9111 §5.1): the first member of the
// list; an invalid value is ignored (0).
func parseAge(lines []string) int64 {
	if len(lines) == 0 {
		return 0
	}
	first, _, _ := strings.Cut(lines[0], ",")
	v, bad := deltaSeconds(strings.Trim(first, " \t"), true)
	if bad {
		return 0
	}
	return v
}

// policy returns the directives governing e: CDN-Cache-Control when the
// cache acts as the site's CDN (mirror mode) and the field is valid, else
// Cache-Control (RFC 9213 §2.2).
func (e *entry) policy(mirror bool) *directives {
	if mirror && e.cdnOK {
		return &e.cdn
	}
	return &e.cc
}

// initialAge is corrected_initial_age of RFC 9111 §4.2.3.
func (e *entry) initialAge() time.Duration {
	apparent := max(0, e.respTime.Sub(e.date))
	delay := max(0, e.respTime.Sub(e.reqTime))
	corrected := time.Duration(e.ageValue)*time.Second + delay
	return max(apparent, corrected)
}

// age is current_age at now.
func (e *entry) age(now time.Time) time.Duration {
	return e.initialAge() + max(0, now.Sub(e.respTime))
}

// lifetime is the freshness lifetime of e for a shared cache (RFC 9111
// §4.2.1): s-maxage, then max-age, then Expires minus Date, then a
// heuristic of a tenth of the time since Last-Modified, capped.
func (e *entry) lifetime(mirror bool, heuristicMax time.Duration) time.Duration {
	d := e.policy(mirror)
	switch {
	case d.sMaxAgeInvalid:
		return 0
	case d.sMaxAge >= 0:
		return time.Duration(d.sMaxAge) * time.Second
	case d.maxAgeInvalid:
		return 0
	case d.maxAge >= 0:
		return time.Duration(d.maxAge) * time.Second
	}
	targeted := mirror && e.cdnOK // RFC 9213: ignore Expires too
	if e.hasExpires && !targeted {
		if !e.expiresOK {
			return 0
		}
		return max(0, e.expires.Sub(e.date))
	}
	if e.hasLastMod && (heuristicallyCacheable(e.status) || d.public) {
		if since := e.date.Sub(e.lastMod); since > 0 {
			return min(since/10, heuristicMax)
		}
	}
	return 0
}

// noStale reports whether a directive forbids serving e stale (RFC 9111
// §4.2.4): must-revalidate, and for a shared cache proxy-revalidate and
// s-maxage; no-cache forbids any reuse without validation.
func (e *entry) noStale(mirror bool) bool {
	d := e.policy(mirror)
	return d.mustRevalidate || d.proxyRevalidate || d.sMaxAge >= 0 || d.sMaxAgeInvalid || d.noCache
}

// heuristicallyCacheable lists the status codes RFC 9110 §15.1 defines as
// heuristically cacheable.
func heuristicallyCacheable(status int) bool {
	switch status {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// understoodStatus lists the final status codes this cache knows, for the
// must-understand directive (RFC 9111 §5.2.2.3).
func understoodStatus(status int) bool {
	switch status {
	case 200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304, 305, 307, 308,
		400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426,
		500, 501, 502, 503, 504, 505:
		return true
	}
	return false
}

// formatAge writes d as the delta-seconds of an Age field.
func formatAge(d time.Duration) string {
	s := int64(d / time.Second)
	if s > maxDelta {
		s = maxDelta
	}
	return strconv.FormatInt(max(0, s), 10)
}
