package dns

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts queries by what the server did with them, since New.
// Appliance exports them as Prometheus counters.
type Stats struct {
	Local       uint64 // answered from the local zone, short names, hosts, PTR, localhost, DNS-only probes
	Hijacked    uint64 // probe names answered with the box's address
	Forwarded   uint64 // answered by an upstream
	Cached      uint64 // answered from fresh cache
	Stale       uint64 // answered from expired cache (RFC 8767)
	Refused     uint64 // REFUSED: outside client asking for recursion, zone transfer, other class
	Failed      uint64 // SERVFAIL: no upstream answered and nothing stale
	RateLimited uint64 // dropped by response rate limiting
	Truncated   uint64 // answered with TC by response rate limiting (slip)
	Invalid     uint64 // FORMERR, NOTIMP, BADVERS

	UpstreamQueries uint64 // exchanges with upstreams (UDP and TCP retries count once)
	UpstreamErrors  uint64 // of which failed (timeout, unreachable, SERVFAIL, mismatch)
	CacheEntries    int    // entries in the cache now, stale included
}

type result int

const (
	resLocal result = iota
	resHijacked
	resForwarded
	resCached
	resStale
	resRefused
	resFailed
	resRateLimited
	resTruncated
	resInvalid
	resCount
)

type counters struct {
	byResult                     [resCount]atomic.Uint64
	upstreamQueries, upstreamErr atomic.Uint64
}

func (c *counters) add(r result) { c.byResult[r].Add(1) }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	c := &s.counters
	return Stats{
		Local:           c.byResult[resLocal].Load(),
		Hijacked:        c.byResult[resHijacked].Load(),
		Forwarded:       c.byResult[resForwarded].Load(),
		Cached:          c.byResult[resCached].Load(),
		Stale:           c.byResult[resStale].Load(),
		Refused:         c.byResult[resRefused].Load(),
		Failed:          c.byResult[resFailed].Load(),
		RateLimited:     c.byResult[resRateLimited].Load(),
		Truncated:       c.byResult[resTruncated].Load(),
		Invalid:         c.byResult[resInvalid].Load(),
		UpstreamQueries: c.upstreamQueries.Load(),
		UpstreamErrors:  c.upstreamErr.Load(),
		CacheEntries:    s.cache.len(),
	}
}

// logThrottle lets one message of each kind through per period and counts
// the others, so that a dead uplink or a flood writes a line a minute, not
// one per query.
type logThrottle struct {
	period time.Duration
	now    func() time.Time

	mu    sync.Mutex
	last  map[string]time.Time
	quiet map[string]int
}

func newLogThrottle(period time.Duration, now func() time.Time) *logThrottle {
	return &logThrottle{period: period, now: now, last: map[string]time.Time{}, quiet: map[string]int{}}
}

// log writes msg at level unless a message of the same kind went out less
// than a period ago; the next one that goes out says how many were held.
func (t *logThrottle) log(l *slog.Logger, level slog.Level, kind, msg string, args ...any) {
	now := t.now()
	t.mu.Lock()
	last, seen := t.last[kind]
	if seen && now.Sub(last) < t.period && !now.Before(last) {
		t.quiet[kind]++
		t.mu.Unlock()
		return
	}
	t.last[kind] = now
	held := t.quiet[kind]
	t.quiet[kind] = 0
	t.mu.Unlock()
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	l.Log(context.Background(), level, msg, args...)
}
