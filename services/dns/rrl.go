package dns

import (
	"net/netip"
	"sync"
	"time"
)

// lanBurstSeconds is how many seconds' worth of responses a LAN client may
// ask for at once: opening one web page resolves dozens of names.
const lanBurstSeconds = 5

// maxBuckets bounds the limiter's memory under a flood of spoofed sources.
const maxBuckets = 1 << 16

type verdict int

const (
	pass verdict = iota
	drop
	slip
)

// limiter is response rate limiting: a token bucket per client address
// (LAN) or per /24 and /56 (outside).
type limiter struct {
	rate float64
	slip int
	now  func() time.Time

	mu      sync.Mutex
	buckets map[netip.Prefix]*bucket
}

type bucket struct {
	tokens  float64
	last    time.Time
	limited int // queries over the limit, to pick every slip-th
}

func newLimiter(r RateLimit, now func() time.Time) *limiter {
	if r.Rate < 0 {
		return nil
	}
	return &limiter{rate: float64(r.Rate), slip: r.Slip, now: now, buckets: map[netip.Prefix]*bucket{}}
}

// check spends a token of a's bucket. The prefix is returned for logging.
func (l *limiter) check(a netip.Addr, lan bool) (verdict, netip.Prefix) {
	var p netip.Prefix
	burst := l.rate
	if lan {
		p = netip.PrefixFrom(a, a.BitLen())
		burst *= lanBurstSeconds
	} else {
		bits := 24
		if a.Is6() {
			bits = 56
		}
		p, _ = a.Prefix(bits)
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[p]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: burst, last: now}
		l.buckets[p] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(burst, b.tokens+dt*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return pass, p
	}
	b.limited++
	if l.slip > 0 && b.limited%l.slip == 0 {
		return slip, p
	}
	return drop, p
}

// prune forgets buckets that have refilled (they hold no information);
// if the flood is too wide for that, it forgets them all.
func (l *limiter) prune(now time.Time) {
	full := time.Duration(lanBurstSeconds * float64(time.Second))
	for p, b := range l.buckets {
		if now.Sub(b.last) > full {
			delete(l.buckets, p)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}
