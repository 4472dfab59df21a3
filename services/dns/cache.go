package dns

import (
	"container/list"
	"sync"
	"time"

	miekg "github.com/miekg/dns"
)

// Bounds of the answer cache besides Config.CacheEntries: a 1 GB board
// must not spend more than a few MB on DNS, and the rare huge answers
// (TCP, up to 64 KiB) are not worth keeping.
const (
	maxCachedMsgBytes = 8 << 10
	maxCacheBytes     = 16 << 20
	// TTL caps: a day for data (as Unbound's cache-max-ttl), an hour for
	// negative answers (RFC 2308 §5 suggests one to three hours).
	maxTTL         = 86400
	maxNegativeTTL = 3600
	// failureRecheck is RFC 8767's "failure recheck timer": after the
	// upstreams failed for a name, stale data is served at once for this
	// long rather than waiting for them again.
	failureRecheck = 30 * time.Second
	// failureHold is how long a resolution failure with no stale data is
	// remembered and answered SERVFAIL at once (RFC 9520: at least 1 s,
	// at most 5 min).
	failureHold = 5 * time.Second
)

// cacheKey identifies an answer: the DO bit is part of it since a DNSSEC
// answer carries signatures a plain one does not.
type cacheKey struct {
	name   string // lowercased
	qtype  uint16
	qclass uint16
	do     bool
}

type cacheState int

const (
	cacheMiss cacheState = iota
	cacheFresh
	cacheStale
	cacheFailed // a recent failure and no data: answer SERVFAIL at once
)

type cacheEntry struct {
	key      cacheKey
	wire     []byte    // the upstream answer, packed, without OPT; nil for a failure
	stored   time.Time // when wire was stored
	ttl      uint32    // seconds of freshness from stored
	failedAt time.Time // last upstream failure for this key, zero if none
}

func (e *cacheEntry) expires() time.Time { return e.stored.Add(time.Duration(e.ttl) * time.Second) }

// cache is an LRU of upstream answers, kept past their TTL for serve-stale.
type cache struct {
	maxEntries int
	staleMax   time.Duration // negative: no serve-stale

	mu    sync.Mutex
	ll    *list.List // front is most recently used; values are *cacheEntry
	items map[cacheKey]*list.Element
	bytes int
}

func newCache(maxEntries int, staleMax time.Duration) *cache {
	return &cache{maxEntries: maxEntries, staleMax: staleMax, ll: list.New(), items: map[cacheKey]*list.Element{}}
}

// get returns a copy of the entry for k and its state at now.
func (c *cache) get(k cacheKey, now time.Time) (cacheEntry, cacheState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return cacheEntry{}, cacheMiss
	}
	e := el.Value.(*cacheEntry)
	if e.wire == nil {
		if now.Sub(e.failedAt) < failureHold && !now.Before(e.failedAt) {
			return *e, cacheFailed
		}
		c.remove(el)
		return cacheEntry{}, cacheMiss
	}
	exp := e.expires()
	if now.Before(exp) && !now.Before(e.stored) {
		c.ll.MoveToFront(el)
		return *e, cacheFresh
	}
	if c.staleMax < 0 || now.Sub(exp) > c.staleMax {
		c.remove(el)
		return cacheEntry{}, cacheMiss
	}
	c.ll.MoveToFront(el)
	return *e, cacheStale
}

// put stores an answer, replacing any older one and forgetting failures.
func (c *cache) put(k cacheKey, wire []byte, ttl uint32, now time.Time) {
	if c.maxEntries <= 0 || len(wire) > maxCachedMsgBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.remove(el)
	}
	c.insert(&cacheEntry{key: k, wire: wire, stored: now, ttl: ttl})
}

// failed records an upstream failure for k: it keeps the stale data, if
// any, and remembers when.
func (c *cache) failed(k cacheKey, now time.Time) {
	if c.maxEntries <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		el.Value.(*cacheEntry).failedAt = now
		return
	}
	c.insert(&cacheEntry{key: k, failedAt: now})
}

func (c *cache) insert(e *cacheEntry) {
	c.items[e.key] = c.ll.PushFront(e)
	c.bytes += entrySize(e)
	for c.ll.Len() > c.maxEntries || c.bytes > maxCacheBytes {
		c.remove(c.ll.Back())
	}
}

func (c *cache) remove(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.ll.Remove(el)
	delete(c.items, e.key)
	c.bytes -= entrySize(e)
}

// entrySize approximates the memory an entry holds.
func entrySize(e *cacheEntry) int { return len(e.wire) + len(e.key.name) + 128 }

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// cacheable returns the answer to keep for a response from upstream, its
// freshness in seconds, and whether to keep it at all. Following RFC 2308
// a negative answer (NXDOMAIN, or no data) lives min(SOA TTL, SOA minimum)
// and is not cached without a SOA; a positive one lives as long as its
// shortest record.
func cacheable(resp *miekg.Msg) (*miekg.Msg, uint32, bool) {
	if resp.Truncated || (resp.Rcode != miekg.RcodeSuccess && resp.Rcode != miekg.RcodeNameError) {
		return nil, 0, false
	}
	m := resp.Copy()
	m.Extra = withoutOPT(m.Extra)
	ttl := uint32(maxTTL)
	for _, rr := range m.Answer {
		ttl = min(ttl, rr.Header().Ttl)
	}
	if m.Rcode == miekg.RcodeNameError || len(m.Answer) == 0 {
		var soa *miekg.SOA
		for _, rr := range m.Ns {
			if s, ok := rr.(*miekg.SOA); ok {
				soa = s
				break
			}
		}
		if soa == nil {
			return nil, 0, false
		}
		neg := min(soa.Hdr.Ttl, soa.Minttl, maxNegativeTTL)
		soa.Hdr.Ttl = neg // what clients will read as the negative TTL
		ttl = min(ttl, neg)
	} else {
		for _, rr := range m.Ns {
			ttl = min(ttl, rr.Header().Ttl)
		}
	}
	return m, ttl, true
}

func withoutOPT(rrs []miekg.RR) []miekg.RR {
	var out []miekg.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype != miekg.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// agedCopy unpacks a cached answer with its TTLs counted down to now, or
// all set to staleTTL when the answer is stale.
func agedCopy(e cacheEntry, now time.Time, stale bool, staleTTL uint32) (*miekg.Msg, error) {
	m := new(miekg.Msg)
	if err := m.Unpack(e.wire); err != nil {
		return nil, err
	}
	elapsed := uint32(max(now.Sub(e.stored), 0) / time.Second)
	for _, sec := range [][]miekg.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			switch {
			case stale:
				h.Ttl = staleTTL
			case h.Ttl > elapsed:
				h.Ttl -= elapsed
			default:
				h.Ttl = 0
			}
		}
	}
	return m, nil
}
