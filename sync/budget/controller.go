package budget

import "time"

// Constants of the control law (see the package comment).
const (
	mss           = 1448.0 // bytes of a full TCP segment on an Ethernet path
	ledbatGain    = 1.0    // RFC 6817 GAIN: at most one segment per RTT
	probeGain     = 0.25   // growth per RTT while the queue is clearly empty
	congestionCut = 0.5    // least window kept after a decrease
	usedFraction  = 0.85   // delivered/paced above which the rate counts as used
	headroom      = 1.1    // most the rate may exceed the recent best delivery
	rampHeadroom  = 1.3    // the same while delivery grows
	kneeNear      = 0.85   // above this share of the last knee, probe gently
	kneeMemory    = 30 * time.Second
	bestMemory    = 2 * time.Second        // least span of the recent best delivery: outlasts the gaps between files
	baseHistory   = 10                     // minutes of per-minute minima (RFC 6817 BASE_HISTORY)
	currentFilter = 3                      // samples behind the current delay (RFC 6817 CURRENT_FILTER)
	idleReset     = time.Minute            // after this long without samples, halve the window
	outageGap     = 500 * time.Millisecond // a longer gap between samples leaves the history frozen
	defaultRTT    = 100 * time.Millisecond
	rateHistory   = 64 // past rates kept to compare with what is delivered an RTT later
)

// sample is what the connections of one direction showed during one
// sampling interval.
type sample struct {
	rtt      time.Duration // current RTT: lowest (corrected) smoothed RTT of the connections that moved data
	minRTT   time.Duration // lowest RTT those connections ever measured; 0 if unknown
	bytes    int64         // bytes delivered (acknowledged, or received) in the interval
	interval time.Duration
	loss     bool // retransmissions (or out-of-order arrivals) in the interval
	limited  bool // transfers waited for the pacer in the interval
}

// controller is the LEDBAT-like law of one direction. It is a pure state
// machine: time comes in with each sample, so tests drive it with
// synthetic samples.
type controller struct {
	target           time.Duration
	minRate, maxRate float64 // bytes/s; maxRate 0 = no ceiling
	initRate         float64

	w          float64  // virtual congestion window, bytes
	hist       baseRing // per-minute minima
	recent     [currentFilter]time.Duration
	nrecent    int
	base, q    time.Duration // base delay, queueing delay
	rtt        time.Duration // current delay, base + q
	delivered  float64       // smoothed delivery rate, bytes/s
	past       [rateHistory]pastRate
	npast      int
	lastCut    time.Time // last multiplicative decrease
	knee       float64   // rate (bytes/s) before the last decrease: where the queue grew
	lastSample time.Time

	cutsLoss, cutsDelay int64
}

type pastRate struct {
	at        time.Time
	rate      float64 // paced from then on
	bytes     int64   // delivered in the sample that ended then
	interval  time.Duration
	delivered float64 // bytes/s delivered over the RTT that ended then
}

func newController(target time.Duration, minRate, maxRate, initRate float64) *controller {
	return &controller{target: target, minRate: minRate, maxRate: maxRate, initRate: initRate,
		rtt: defaultRTT, w: initRate * defaultRTT.Seconds()}
}

// rate is the pacing rate in bytes/s: one window per current RTT.
func (c *controller) rate() float64 { return c.w / c.rtt.Seconds() }

// rateAt returns the rate that was in force at t (the oldest known if t
// is older).
func (c *controller) rateAt(t time.Time) float64 {
	r := c.rate()
	for i := 1; i <= min(c.npast, rateHistory); i++ {
		p := c.past[(c.npast-i)%rateHistory]
		r = p.rate
		if !p.at.After(t) {
			break
		}
	}
	return r
}

// update applies one sample taken at now.
func (c *controller) update(now time.Time, s sample) {
	if s.rtt <= 0 {
		return // no delay information: keep the rate
	}
	if !c.lastSample.IsZero() {
		switch gap := now.Sub(c.lastSample) - s.interval; {
		case gap > idleReset:
			// What we knew of the path is stale: restart from half the window.
			c.w = max(c.w/2, c.initRate*c.rtt.Seconds())
			c.delivered = 0
		case gap > outageGap:
			// Nothing moved for a while: a link cut, or a pause between
			// transfers. Resume the history where it stopped, as if the
			// gap had not been: otherwise the first samples after a cut —
			// TCP restarting from one segment — would be the recent best
			// delivery and clamp the rate far below the link.
			for i := range c.past {
				c.past[i].at = c.past[i].at.Add(gap)
			}
			c.lastCut = c.lastCut.Add(gap)
		}
	}
	c.lastSample = now
	lowest := s.rtt
	if s.minRTT > 0 && s.minRTT < lowest {
		lowest = s.minRTT
	}
	c.hist.add(now, lowest)
	c.base = c.hist.min(now)
	// Current delay: the least of the last few samples, which drops the
	// upward spikes of loss recovery and ACK bunching.
	c.recent[c.nrecent%currentFilter] = s.rtt
	c.nrecent++
	cur := s.rtt
	for _, r := range c.recent[:min(c.nrecent, currentFilter)] {
		cur = min(cur, r)
	}
	c.q = max(0, cur-c.base)
	c.rtt = c.base + c.q
	// Delivery over the last RTT, and its best over the last few RTTs:
	// short dips (loss recovery, ACK bunching) do not pull it down.
	bytes, span := float64(s.bytes), s.interval
	best, older := 0.0, 0.0
	for i := 1; i <= min(c.npast, rateHistory); i++ {
		p := c.past[(c.npast-i)%rateHistory]
		age := now.Sub(p.at)
		if age <= 2*c.rtt {
			older = p.delivered
		}
		if age+p.interval <= c.rtt {
			bytes += float64(p.bytes)
			span = age + p.interval
		}
		if age < max(3*c.rtt, bestMemory) {
			best = max(best, p.delivered)
		}
	}
	c.delivered = 0
	if span > 0 {
		c.delivered = bytes / span.Seconds()
	}
	best = max(best, c.delivered)
	// What was paced one RTT ago is what is being delivered now.
	paced := c.rateAt(now.Add(-c.rtt))

	t := float64(c.target)
	q := float64(c.q)
	canCut := now.Sub(c.lastCut) >= c.rtt // at most one decrease per RTT
	switch {
	case c.q > 2*c.target && canCut:
		c.knee = c.rate()
		// Remove the standing queue beyond the target in one step: the
		// window is rate × (base+q); at rate × (base+target) the excess
		// has drained.
		c.w *= max(congestionCut, float64(c.base+c.target)/float64(c.rtt))
		c.lastCut = now
		c.cutsDelay++
	case s.loss && canCut && c.q > c.target/2:
		c.knee = c.rate()
		// A loss with a queue: drain the queue to half the target in one
		// step. A loss with no queue (q ≤ T/2) is most likely random —
		// a rural line's 1 % — and left to TCP to repair.
		c.w *= max(congestionCut, float64(c.base+c.target/2)/float64(c.rtt))
		c.lastCut = now
		c.cutsLoss++
	default:
		// Grow only when the rate is used: transfers waited for the pacer
		// and the path delivered most of what was paced (a window the
		// transfers do not fill proves nothing, RFC 7661). Growth heeds the
		// latest sample as well as the filtered delay, so it stops at the
		// first sign of a queue; decreases heed the filtered delay only, so
		// that one spike does not cut.
		used := s.limited && c.delivered >= usedFraction*paced
		qg := max(q, float64(max(0, s.rtt-c.base)))
		acked := float64(s.bytes)
		switch off := (t - q) / t; {
		case off < 0:
			// LEDBAT: cwnd += GAIN × off_target × bytes_acked × MSS / cwnd.
			c.w += ledbatGain * max(off, -1) * acked * mss / c.w
		case used && qg < t:
			c.w += ledbatGain * (t - qg) / t * acked * mss / c.w
			// Far below the target the queue is empty, and LEDBAT's one
			// segment per RTT would take minutes to fill a long, fast
			// path: grow by probeGain per RTT, fading out at a quarter of
			// the target.
			// Near the rate where the queue last grew, probe an eighth as
			// fast (as CUBIC does near its last maximum): the delay signal
			// comes an RTT late, and a fast probe there overshoots.
			if qg < t/4 {
				g := probeGain * (1 - 4*qg/t)
				if c.rate() > kneeNear*c.knee && now.Sub(c.lastCut) < kneeMemory {
					g /= 8
				}
				c.w += g * acked
			}
		}
	}
	// Transfers want more than the path delivers: TCP below us limits (its
	// own model, loss recovery). Keep the rate near the recent best
	// delivery, so TCP cannot overshoot through our rate (BBR's bandwidth
	// probes) and a decrease bites at once.
	if s.limited && best > 0 {
		h := headroom
		switch qNow := max(c.q, s.rtt-c.base); {
		case qNow >= c.target/4:
			h = 1 // the path is full: no room for TCP's probes
		case c.delivered > 1.1*older:
			h = rampHeadroom
		}
		c.w = min(c.w, h*best*c.rtt.Seconds())
	}
	r := max(c.rate(), c.minRate)
	if c.maxRate > 0 {
		r = min(r, c.maxRate)
	}
	c.w = r * c.rtt.Seconds()
	c.past[c.npast%rateHistory] = pastRate{at: now, rate: r, bytes: s.bytes, interval: s.interval, delivered: c.delivered}
	c.npast++
}

// baseRing keeps the minimum delay of each of the last baseHistory
// minutes; the base delay is the least of them, so a route change shows
// within baseHistory minutes.
type baseRing struct {
	minute [baseHistory]int64
	low    [baseHistory]time.Duration
}

func (b *baseRing) add(now time.Time, d time.Duration) {
	m := now.Unix() / 60
	i := ((m % baseHistory) + baseHistory) % baseHistory
	if b.minute[i] != m || b.low[i] == 0 {
		b.minute[i], b.low[i] = m, d
	} else {
		b.low[i] = min(b.low[i], d)
	}
}

func (b *baseRing) min(now time.Time) time.Duration {
	m := now.Unix() / 60
	var best time.Duration
	for i := range b.low {
		if b.low[i] > 0 && b.minute[i] > m-baseHistory && b.minute[i] <= m && (best == 0 || b.low[i] < best) {
			best = b.low[i]
		}
	}
	return best
}
