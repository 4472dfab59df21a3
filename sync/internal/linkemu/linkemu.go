// Package linkemu emulates a slow, lossy WAN link in user space, for tests
// and benchmarks of package sync (the WAN scheduler, the outbox's chaos
// tests, the sync benchmark). This kernel has no netem, so the link is a
// pair of packet ports (TUN devices in two network namespaces, or anything
// that reads and writes one packet per call) joined by a forwarder that
// applies, per direction: a bottleneck rate (serialisation time), a bounded
// FIFO queue with tail drop (in bytes), random loss, a one-way propagation
// delay, and a Cut switch that drops everything.
//
// The queue is modelled exactly in virtual time: a packet arriving at t
// starts serialising when the previous one has left the bottleneck, leaves
// it len*8/rate later, and is delivered Delay after that. Packets still
// serialising count against the queue limit; a packet that does not fit is
// dropped at arrival, like a router's tail drop. Random loss applies to
// packets that went through the bottleneck (they used the link's capacity,
// as a corrupted frame does).
//
// Only packages under sync/ may import it (Go's internal rule), and only
// from tests and test tooling.
package linkemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Path is one direction of the link.
type Path struct {
	// Delay is the one-way propagation delay.
	Delay time.Duration
	// Rate is the bottleneck rate in bits per second; 0 means unlimited
	// (no serialisation time, no queue).
	Rate int64
	// QueueBytes bounds the bottleneck queue, packets in serialisation
	// included. Default 64 KiB when Rate is set.
	QueueBytes int
	// Loss is the probability, in [0, 1], that a packet is lost.
	Loss float64
}

// Config of a Link.
type Config struct {
	// AB is the direction from port a to port b, BA the other one.
	AB, BA Path
	// Seed of the loss draws; the same seed and traffic give the same losses.
	Seed uint64
}

// DefaultQueueBytes is the queue of a rate-limited Path that gives none.
const DefaultQueueBytes = 64 << 10

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	for _, p := range []*Path{&c.AB, &c.BA} {
		if p.Rate > 0 && p.QueueBytes == 0 {
			p.QueueBytes = DefaultQueueBytes
		}
	}
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	for name, p := range map[string]Path{"ab": c.AB, "ba": c.BA} {
		switch {
		case p.Delay < 0:
			return fmt.Errorf("linkemu config: %s delay is negative", name)
		case p.Rate < 0:
			return fmt.Errorf("linkemu config: %s rate is negative", name)
		case p.QueueBytes < 0:
			return fmt.Errorf("linkemu config: %s queue bytes is negative", name)
		case !(p.Loss >= 0 && p.Loss <= 1):
			return fmt.Errorf("linkemu config: %s loss %v: want a probability in [0, 1]", name, p.Loss)
		}
	}
	return nil
}

// DirStats counts what happened in one direction.
type DirStats struct {
	Packets   int64 // delivered
	Bytes     int64 // delivered
	DropQueue int64 // tail drops at the bottleneck
	DropLoss  int64 // random losses
	DropCut   int64 // dropped while the link was cut
	QueueMax  int   // highest queue occupancy seen, bytes
}

// Stats of both directions.
type Stats struct{ AB, BA DirStats }

// Link forwards packets between two ports. Its methods are safe for
// concurrent use.
type Link struct {
	a, b io.ReadWriteCloser
	ab   *direction
	ba   *direction
	cut  atomic.Bool
}

// New builds a link between a and b; it does no I/O. Each Read of a port
// must return one whole packet and each Write must send one. Serve closes
// both ports when it returns.
func New(cfg Config, a, b io.ReadWriteCloser) (*Link, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Link{a: a, b: b}
	l.ab = newDirection(cfg.AB, rand.New(rand.NewPCG(cfg.Seed, 1)), &l.cut)
	l.ba = newDirection(cfg.BA, rand.New(rand.NewPCG(cfg.Seed, 2)), &l.cut)
	return l, nil
}

// Cut drops every packet, in flight or arriving, while on is true.
func (l *Link) Cut(on bool) { l.cut.Store(on) }

// Stats returns the counters so far.
func (l *Link) Stats() Stats { return Stats{AB: l.ab.stats(), BA: l.ba.stats()} }

// Serve forwards packets until ctx ends or a port fails, then closes both
// ports and returns. A port failing after ctx ended is not an error.
func (l *Link) Serve(ctx context.Context) error {
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	for _, d := range []struct {
		dir      *direction
		from, to io.ReadWriter
	}{{l.ab, l.a, l.b}, {l.ba, l.b, l.a}} {
		wg.Add(2)
		go func() { defer wg.Done(); errc <- d.dir.receive(d.from) }()
		go func() { defer wg.Done(); errc <- d.dir.deliver(d.to) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	l.a.Close()
	l.b.Close()
	l.ab.stop()
	l.ba.stop()
	wg.Wait()
	if ctx.Err() != nil || errors.Is(err, os.ErrClosed) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

type packet struct {
	at   time.Time // delivery time
	lost bool
	data []byte
}

type queued struct {
	done time.Time // when its last bit leaves the bottleneck
	size int
}

// direction is one way of the link: the bottleneck model, then a FIFO of
// packets waiting for their delivery time. Delivery times never decrease,
// so one goroutine sleeping until the head's time delivers them all.
type direction struct {
	path Path
	rng  *rand.Rand
	cut  *atomic.Bool

	mu       sync.Mutex
	busy     time.Time // the bottleneck is serialising until then
	inQueue  []queued  // packets not yet fully serialised
	queued   int       // bytes in inQueue
	fifo     []packet  // waiting for delivery
	wake     chan struct{}
	stopped  bool
	counters DirStats
}

func newDirection(p Path, rng *rand.Rand, cut *atomic.Bool) *direction {
	return &direction{path: p, rng: rng, cut: cut, wake: make(chan struct{}, 1)}
}

func (d *direction) stats() DirStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counters
}

func (d *direction) stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	d.signal()
}

func (d *direction) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// maxPacket bounds one read; TUN devices here use an MTU of 1500.
const maxPacket = 65536

func (d *direction) receive(from io.Reader) error {
	buf := make([]byte, maxPacket)
	for {
		n, err := from.Read(buf)
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		d.admit(time.Now(), buf[:n])
	}
}

// admit runs the bottleneck model for a packet arriving at now.
func (d *direction) admit(now time.Time, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut.Load() {
		d.counters.DropCut++
		return
	}
	p := packet{at: now}
	if d.path.Rate > 0 {
		for len(d.inQueue) > 0 && !d.inQueue[0].done.After(now) {
			d.queued -= d.inQueue[0].size
			d.inQueue = d.inQueue[1:]
		}
		if d.queued+len(data) > d.path.QueueBytes {
			d.counters.DropQueue++
			return
		}
		start := now
		if d.busy.After(now) {
			start = d.busy
		}
		d.busy = start.Add(time.Duration(int64(len(data)) * 8 * int64(time.Second) / d.path.Rate))
		d.inQueue = append(d.inQueue, queued{done: d.busy, size: len(data)})
		d.queued += len(data)
		d.counters.QueueMax = max(d.counters.QueueMax, d.queued)
		p.at = d.busy
	}
	p.at = p.at.Add(d.path.Delay)
	p.lost = d.path.Loss > 0 && d.rng.Float64() < d.path.Loss
	p.data = append([]byte(nil), data...)
	d.fifo = append(d.fifo, p)
	if len(d.fifo) == 1 {
		d.signal()
	}
}

func (d *direction) deliver(to io.Writer) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.mu.Lock()
		if d.stopped {
			d.mu.Unlock()
			return nil
		}
		if len(d.fifo) == 0 {
			d.mu.Unlock()
			<-d.wake
			continue
		}
		p := d.fifo[0]
		if wait := time.Until(p.at); wait > 0 {
			d.mu.Unlock()
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-d.wake: // stopping: re-check
				timer.Stop() // Go ≥ 1.23: no stale value to drain
			}
			continue
		}
		d.fifo[0] = packet{}
		d.fifo = d.fifo[1:]
		drop := true
		switch {
		case d.cut.Load():
			d.counters.DropCut++
		case p.lost:
			d.counters.DropLoss++
		default:
			drop = false
			d.counters.Packets++
			d.counters.Bytes += int64(len(p.data))
		}
		d.mu.Unlock()
		if drop {
			continue
		}
		if _, err := to.Write(p.data); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return err
			}
			// A TUN write can fail for a packet the kernel refuses (e.g.
			// the interface is going down); a link loses such packets.
			continue
		}
	}
}
