package linkemu

import (
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"sync"
	"time"
)

// ServeEcho answers every datagram read from c with the same bytes, until
// c is closed. It is the far end of a PingTrain.
func ServeEcho(c net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		c.WriteTo(buf[:n], from)
	}
}

// PingSample is one probe of a PingTrain.
type PingSample struct {
	Sent time.Time
	RTT  time.Duration // 0 when no echo came back
}

// PingTrain is a foreground flow: a small UDP datagram every interval to
// an echo server, timing each echo. It stands for a teacher's video call
// or a page opened in class: light traffic whose latency matters.
type PingTrain struct {
	c    net.PacketConn
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	samples []PingSample
}

// StartPingTrain sends size-byte probes (at least 16) on c to echo every
// interval until Stop.
func StartPingTrain(c net.PacketConn, echo net.Addr, interval time.Duration, size int) *PingTrain {
	p := &PingTrain{c: c, stop: make(chan struct{})}
	size = max(size, 16)
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, size)
		t := time.NewTicker(interval)
		defer t.Stop()
		for seq := uint64(0); ; seq++ {
			now := time.Now()
			p.mu.Lock()
			p.samples = append(p.samples, PingSample{Sent: now})
			p.mu.Unlock()
			binary.BigEndian.PutUint64(buf, seq)
			c.WriteTo(buf, echo) // a failed send is a lost probe
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return // closed by Stop
			}
			at := time.Now()
			if n < 8 {
				continue
			}
			seq := binary.BigEndian.Uint64(buf)
			p.mu.Lock()
			if seq < uint64(len(p.samples)) && p.samples[seq].RTT == 0 {
				p.samples[seq].RTT = at.Sub(p.samples[seq].Sent)
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// Samples returns a copy of the probes so far.
func (p *PingTrain) Samples() []PingSample {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.samples)
}

// Stop ends the train after waiting grace for the last echoes, closes
// its socket and returns every probe.
func (p *PingTrain) Stop(grace time.Duration) []PingSample {
	close(p.stop)
	time.Sleep(grace)
	p.c.Close()
	p.wg.Wait()
	return p.Samples()
}

// RTTs returns the round-trip times of the probes sent in [from, to)
// that were answered, and how many of those probes were lost.
func RTTs(samples []PingSample, from, to time.Time) (rtts []time.Duration, lost int) {
	for _, s := range samples {
		if s.Sent.Before(from) || !s.Sent.Before(to) {
			continue
		}
		if s.RTT == 0 {
			lost++
			continue
		}
		rtts = append(rtts, s.RTT)
	}
	return rtts, lost
}

// Percentile returns the p-th percentile (0..100) of ds, 0 if empty.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p / 100 * float64(len(s)-1))
	return s[min(max(i, 0), len(s)-1)]
}
