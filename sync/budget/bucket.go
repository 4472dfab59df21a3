package budget

import (
	"net"
	"sync"
	"time"
)

// Pacing granularity. A chunk is what a transfer may send at once: small
// enough that a burst adds little queue at the bottleneck (chunkTime of
// the rate, and the kernel spaces its packets), large enough to keep
// wake-ups few.
const (
	chunkTime = 5 * time.Millisecond
	minChunk  = 2 * mss
	maxChunk  = 64 << 10
	burstTime = 20 * time.Millisecond // credit an idle bucket may gather
)

// bucket is the token bucket shared by one class's transfers in one
// direction. Takers reserve tokens (the balance may go negative) and
// sleep until the reservation is paid, so they are served in order and
// a rate change applies from the next chunk.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // bytes/s
	tokens float64
	last   time.Time
	waited time.Duration // takers' sleep since the last call to takeWaited
}

func newBucket(rate float64) *bucket { return &bucket{rate: rate, last: time.Now()} }

func (b *bucket) refill(now time.Time) {
	b.tokens = min(b.tokens+now.Sub(b.last).Seconds()*b.rate, max(b.rate*burstTime.Seconds(), minChunk))
	b.last = now
}

func (b *bucket) setRate(r float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now())
	b.rate = r
}

// chunk is the most one Read or Write may move before paying: a whole
// number of segments of size mss (at least two), so that a paced flow
// sends full segments and the receiver acknowledges every other one.
func (b *bucket) chunk(mss int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	segs := int(b.rate * chunkTime.Seconds() / float64(mss))
	return min(max(segs, 2)*mss, maxChunk)
}

// take reserves n bytes and sleeps until they are paid for, or done is
// closed (then net.ErrClosed).
func (b *bucket) take(n int, done <-chan struct{}) error {
	b.mu.Lock()
	now := time.Now()
	b.refill(now)
	b.tokens -= float64(n)
	var wait time.Duration
	if b.tokens < 0 {
		wait = time.Duration(-b.tokens / b.rate * float64(time.Second))
		b.waited += wait
	}
	b.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-done:
		return net.ErrClosed
	}
}

// held counts time a transfer of this bucket spent blocked elsewhere on
// the rate: in the socket, whose kernel pacing runs at the same rate.
func (b *bucket) held(d time.Duration) {
	b.mu.Lock()
	b.waited += d
	b.mu.Unlock()
}

// takeWaited returns how long takers slept (or were held) since the last
// call.
func (b *bucket) takeWaited() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.waited
	b.waited = 0
	return w
}

func (b *bucket) currentRate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rate
}
