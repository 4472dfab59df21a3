package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Uplink says whether the internet link works; *uplink.Monitor satisfies
// it. If it also implements PathObserver, the scheduler reports to it what
// its transfers measured.
type Uplink interface {
	Online() bool
}

// PathObserver receives the scheduler's passive estimates of the uplink:
// the rate its transfers achieved while the path was saturated (bytes/s,
// 0 when not measured in that direction) and the base RTT (0 when
// unknown). *uplink.Monitor implements it.
type PathObserver interface {
	ObservePath(up, down float64, baseRTT time.Duration)
}

// Error is a transfer refused by the budget; Error gives the French text,
// English the English one.
type Error struct{ FR, EN string }

func (e *Error) Error() string   { return e.FR }
func (e *Error) English() string { return e.EN }

// ErrCapSpent: the daily cap is spent; transfers resume after midnight.
var ErrCapSpent = &Error{
	FR: "plafond quotidien des transferts en arrière-plan atteint ; ils reprendront après minuit (réglage daily_cap)",
	EN: "daily cap of background transfers spent; they resume after midnight (setting daily_cap)",
}

// Timing of the scheduler's own loop.
const (
	sampleEvery = 100 * time.Millisecond // TCP_INFO sampling while transfers run
	offlinePoll = 5 * time.Second        // re-read Uplink.Online while someone waits for it
	maxSleep    = time.Hour              // re-check the calendar at least this often (clock steps)
	idleGrace   = 10 * time.Second       // SendNow ends after the queue was idle this long
	maxAckDelay = 40 * time.Millisecond  // Linux's delayed-ACK floor
	// kernelPacing: the kernel spaces each connection's packets at this
	// multiple of its class's rate: a little above, so that a chunk has
	// left before the next one comes and TCP sees an application-limited
	// flow (BBR then stays in its startup and follows the pacer), and
	// little enough that TCP's own probes cannot overshoot the rate.
	kernelPacing = 1.05
	observeSpan  = 10 * time.Second // transfer time between two PathObserver reports
	minMaxRTO    = time.Second      // least retransmission-timeout ceiling (Linux's own floor for it)
)

// Scheduler is the one WAN budget. Its methods are safe for concurrent
// use; Serve must run for Wait to see time pass.
type Scheduler struct {
	cfg     Config
	cal     calendar
	up      Uplink
	obs     PathObserver // nil if up is not one
	now     func() time.Time
	log     *slog.Logger
	clients [numClasses + 1]*http.Client
	buckets [numClasses + 1][2]*bucket
	kick    chan struct{}
	ccOnce  sync.Once
	trace   func(direction, sample, *controller) // tests: every controller update

	mu        sync.Mutex
	changed   chan struct{}                    // closed and replaced when a Wait may pass
	gate      gateState                        // last state announced
	next      struct{ at, computed time.Time } // cached calendar.nextChange
	sendNow   bool
	idleSince time.Time
	active    [numClasses + 1]int
	waiting   [numClasses + 1]int
	capDay    Date
	capUsed   int64
	capLogged bool
	ctl       [2]*controller
	conns     map[*pacedConn]struct{}
	bytes     [numClasses + 1][2]int64
	observed  observation
}

// observation accumulates samples between two PathObserver reports.
type observation struct {
	span time.Duration // of transfers
	base time.Duration
	full [2]struct {
		bytes int64
		span  time.Duration
	}
}

type gateState struct{ open, online, capSpent, sendNow bool }

// New checks cfg (after defaults) and builds the scheduler; it does no
// I/O. now is the wall clock of windows and of the daily cap.
func New(cfg Config, up Uplink, now func() time.Time, log *slog.Logger) (*Scheduler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if up == nil || now == nil || log == nil {
		return nil, errors.New("budget: new: uplink, clock and logger are required")
	}
	s := &Scheduler{
		cfg: cfg, up: up, now: now, log: log,
		cal:     calendar{windows: cfg.Windows, classHours: cfg.ClassHours, holidays: cfg.Holidays, loc: cfg.Location},
		kick:    make(chan struct{}, 1),
		changed: make(chan struct{}),
		conns:   map[*pacedConn]struct{}{},
	}
	s.obs, _ = up.(PathObserver)
	for d := range s.ctl {
		s.ctl[d] = newController(cfg.TargetDelay, float64(cfg.MinRate), float64(cfg.MaxRate), float64(cfg.InitialRate))
	}
	for c := ClassHandIn; c <= ClassPrefetch; c++ {
		for d := range s.buckets[c] {
			s.buckets[c][d] = newBucket(s.ctl[d].rate())
		}
		s.clients[c] = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           s.dialer(c),
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   30 * time.Second,
			ExpectContinueTimeout: time.Second,
		}}
	}
	return s, nil
}

// Wait blocks until class may start a background transfer: the calendar
// is open (or SendNow was called), the uplink is online, the daily cap is
// not spent, and no higher class is transferring or waiting. It returns
// ctx's error if ctx ends first.
func (s *Scheduler) Wait(ctx context.Context, class Class) error {
	if !class.valid() {
		return fmt.Errorf("budget: wait: unknown %v", class)
	}
	s.mu.Lock()
	registered := false
	for {
		if s.mayStartLocked(class) {
			if registered {
				s.waiting[class]--
				s.broadcastLocked()
			}
			s.mu.Unlock()
			return nil
		}
		if !registered {
			registered = true
			s.waiting[class]++
			s.poke() // Serve plans its wake-ups for waiters
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.waiting[class]--
			s.broadcastLocked()
			s.mu.Unlock()
			s.poke()
			return ctx.Err()
		case <-ch:
		}
		s.mu.Lock()
	}
}

func (s *Scheduler) mayStartLocked(class Class) bool {
	g := s.gateLocked(s.now())
	if !g.online || !(g.open || g.sendNow) || g.capSpent {
		return false
	}
	for c := ClassHandIn; c < class; c++ {
		if s.active[c] > 0 || s.waiting[c] > 0 {
			return false
		}
	}
	return true
}

func (s *Scheduler) gateLocked(now time.Time) gateState {
	return gateState{open: s.cal.open(now), online: s.up.Online(), capSpent: s.capSpentLocked(now), sendNow: s.sendNow}
}

func (s *Scheduler) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// poke wakes Serve to re-plan.
func (s *Scheduler) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// SendNow opens the link to background transfers whatever the calendar
// says, until the queue has been idle for a few seconds (`preau sync
// now`). The uplink and the daily cap still apply.
func (s *Scheduler) SendNow() {
	s.mu.Lock()
	if !s.sendNow {
		s.log.Info("sending now, ignoring the calendar until the queue is idle")
	}
	s.sendNow = true
	s.idleSince = time.Time{}
	s.broadcastLocked()
	s.mu.Unlock()
	s.poke()
}

// Doer returns the HTTP client every background transfer of class must
// use. It paces request and response bytes to the class's share of the
// rate, counts them toward the daily cap and feeds the controller with
// the delay its connections measure. A transfer lasts until the response
// body is read to its end or closed: always close it. It panics on an
// unknown class.
func (s *Scheduler) Doer(class Class) interface {
	Do(*http.Request) (*http.Response, error)
} {
	if !class.valid() {
		panic(fmt.Sprintf("budget: doer for unknown %v", class))
	}
	return &doer{s: s, class: class}
}

type doer struct {
	s     *Scheduler
	class Class
}

func (d *doer) Do(req *http.Request) (*http.Response, error) {
	if err := d.s.capCheck(); err != nil {
		return nil, err
	}
	d.s.begin(d.class)
	resp, err := d.s.clients[d.class].Do(req)
	if err != nil {
		d.s.end(d.class)
		return nil, err
	}
	resp.Body = &trackedBody{ReadCloser: resp.Body, end: func() { d.s.end(d.class) }}
	return resp, nil
}

func (s *Scheduler) begin(c Class) {
	s.mu.Lock()
	s.active[c]++
	s.broadcastLocked()
	s.mu.Unlock()
	s.applyRates()
	s.poke()
}

func (s *Scheduler) end(c Class) {
	s.mu.Lock()
	s.active[c]--
	s.broadcastLocked()
	s.mu.Unlock()
	s.applyRates()
	s.poke()
}

func (s *Scheduler) register(c *pacedConn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *Scheduler) forget(c *pacedConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// count charges n bytes of class in direction d.
func (s *Scheduler) count(c Class, d direction, n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollCapLocked(s.now())
	s.capUsed += int64(n)
	s.bytes[c][d] += int64(n)
}

func (s *Scheduler) rollCapLocked(now time.Time) {
	if day := dateOf(now.In(s.cfg.Location)); day != s.capDay {
		s.capDay, s.capUsed, s.capLogged = day, 0, false
	}
}

func (s *Scheduler) capSpentLocked(now time.Time) bool {
	if s.cfg.DailyCap == 0 {
		return false
	}
	s.rollCapLocked(now)
	return s.capUsed >= s.cfg.DailyCap
}

// CapUsage returns the day (in the configured location) and the bytes
// background transfers used that day, for the caller to keep across
// restarts (the scheduler itself holds no state on disk).
func (s *Scheduler) CapUsage() (Date, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollCapLocked(s.now())
	return s.capDay, s.capUsed
}

// RestoreCapUsage adds what CapUsage returned before a restart, when it is
// of today: the daily cap holds across restarts and power cuts.
func (s *Scheduler) RestoreCapUsage(day Date, used int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollCapLocked(s.now())
	if day == s.capDay && used > 0 {
		s.capUsed += used
	}
}

// capCheck returns ErrCapSpent once the day's cap is spent.
func (s *Scheduler) capCheck() error {
	if s.cfg.DailyCap == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.capSpentLocked(s.now()) {
		return nil
	}
	if !s.capLogged {
		s.capLogged = true
		s.log.Warn("daily cap of background transfers spent", "cap_bytes", s.cfg.DailyCap)
	}
	return ErrCapSpent
}

// applyRates shares each direction's rate among the classes transferring,
// by weight, and hands each class its share.
func (s *Scheduler) applyRates() {
	s.mu.Lock()
	var rates [2]float64
	for d := range rates {
		rates[d] = s.ctl[d].rate()
	}
	var total float64
	for c := ClassHandIn; c <= ClassPrefetch; c++ {
		if s.active[c] > 0 {
			total += weights[c]
		}
	}
	var share [numClasses + 1]float64
	for c := ClassHandIn; c <= ClassPrefetch; c++ {
		share[c] = 1
		if total > 0 && s.active[c] > 0 {
			share[c] = weights[c] / total
		}
	}
	conns := slices.Collect(maps.Keys(s.conns))
	s.mu.Unlock()
	for c := ClassHandIn; c <= ClassPrefetch; c++ {
		for d := range rates {
			s.buckets[c][d].setRate(rates[d] * share[c])
		}
	}
	for _, pc := range conns {
		if pc.raw != nil {
			setMaxPacing(pc.raw, kernelPacing*rates[up]*share[pc.class])
		}
	}
}

// Serve runs the scheduler's clock: it samples the connections while
// transfers run, and wakes waiters when the calendar, the uplink or the
// cap change. It returns nil when ctx ends.
func (s *Scheduler) Serve(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	lastTick := time.Now()
	defer func() {
		for _, c := range s.clients[ClassHandIn:] {
			c.CloseIdleConnections()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-s.kick:
		}
		now := s.now()
		switch elapsed := time.Since(lastTick); {
		case !s.transferring() || elapsed > 4*sampleEvery:
			lastTick = time.Now() // idle, or waking from idle: start afresh
		case elapsed >= sampleEvery/2:
			s.sample(now, elapsed)
			lastTick = time.Now()
		}
		timer.Reset(s.review(now))
	}
}

func (s *Scheduler) transferring() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active[ClassHandIn]+s.active[ClassUpdate]+s.active[ClassPrefetch] > 0
}

// review announces gate changes, ends SendNow on an idle queue, and
// returns how long Serve may sleep.
func (s *Scheduler) review(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	busy, waiters := 0, 0
	for c := ClassHandIn; c <= ClassPrefetch; c++ {
		busy += s.active[c]
		waiters += s.waiting[c]
	}
	sleep := maxSleep
	if s.sendNow {
		switch {
		case busy+waiters > 0:
			s.idleSince = time.Time{}
		case s.idleSince.IsZero():
			s.idleSince = now
			sleep = idleGrace
		case now.Sub(s.idleSince) >= idleGrace:
			s.sendNow = false
			s.log.Info("queue idle, back to the calendar")
		default:
			sleep = idleGrace - now.Sub(s.idleSince)
		}
	}
	g := s.gateLocked(now)
	if g != s.gate {
		if g.open != s.gate.open {
			s.log.Info("background window", "open", g.open)
		}
		s.gate = g
		s.broadcastLocked()
	}
	if next := s.nextChangeLocked(now); !next.IsZero() {
		sleep = min(sleep, max(next.Sub(now), time.Second))
	}
	if waiters > 0 && !g.online {
		sleep = min(sleep, offlinePoll)
	}
	if g.capSpent {
		y, m, d := now.In(s.cfg.Location).Date()
		midnight := time.Date(y, m, d+1, 0, 0, 0, 0, s.cfg.Location)
		sleep = min(sleep, max(midnight.Sub(now), time.Second))
	}
	if busy > 0 {
		sleep = sampleEvery
	}
	return sleep
}

// nextChangeLocked is calendar.nextChange, computed again only when the
// cached answer has passed, is an hour old, or the clock went back.
func (s *Scheduler) nextChangeLocked(now time.Time) time.Time {
	n := &s.next
	if n.computed.IsZero() || now.Before(n.computed) || now.Sub(n.computed) > time.Hour || !n.at.IsZero() && !now.Before(n.at) {
		n.at, n.computed = s.cal.nextChange(now), now
	}
	return n.at
}

// minPositive is the smaller of a and b, ignoring zeros.
func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || b > 0 && b < a {
		return b
	}
	return a
}

// sample reads TCP_INFO of every connection, feeds each direction's
// controller with what the connections that moved data saw, and applies
// the new rates.
func (s *Scheduler) sample(now time.Time, interval time.Duration) {
	s.mu.Lock()
	conns := slices.Collect(maps.Keys(s.conns))
	s.mu.Unlock()
	var agg [2]sample
	at := time.Now()
	for _, c := range conns {
		if c.raw == nil {
			continue
		}
		st, ok := readTCP(c.raw)
		if !ok {
			continue
		}
		for d, v := range [2]struct {
			bytes  uint64
			losses uint32
			rtt    time.Duration
		}{{st.acked, st.retrans, st.rtt}, {st.received, st.outOfOrder, st.rcvRTT}} {
			m := &c.marks[d]
			moved := v.bytes - m.bytes
			span := at.Sub(m.at)
			if moved < 2*mss || v.rtt <= 0 {
				// A few segments (headers, an answer) say little about
				// the queue; wait for more, but not from long ago.
				if span > time.Second {
					*m = mark{bytes: v.bytes, losses: v.losses, at: at}
				}
				continue
			}
			rate := float64(moved) / span.Seconds()
			if m.rate > 0 {
				rate = 0.75*m.rate + 0.25*rate
			}
			// A receiver acknowledges every other segment, and TCP times
			// the older one: its smoothed RTT carries about one packet
			// interval of ACK delay (up to the 40 ms delayed-ACK timer)
			// that would read as a standing queue. Take it off.
			gap := min(time.Duration(float64(c.mss)/rate*float64(time.Second)), maxAckDelay)
			rtt := max(v.rtt-gap, st.minRTT)
			a := &agg[d]
			a.bytes += int64(moved)
			a.rtt = minPositive(a.rtt, rtt)
			a.minRTT = minPositive(a.minRTT, st.minRTT)
			a.loss = a.loss || v.losses > m.losses
			*m = mark{bytes: v.bytes, losses: v.losses, at: at, rate: rate}
		}
	}
	s.mu.Lock()
	for d := range agg {
		var waited time.Duration
		for c := ClassHandIn; c <= ClassPrefetch; c++ {
			waited += s.buckets[c][d].takeWaited()
		}
		agg[d].limited = waited >= interval/5
		agg[d].interval = interval
		s.ctl[d].update(now, agg[d])
		if s.trace != nil {
			s.trace(direction(d), agg[d], s.ctl[d])
		}
	}
	rep, report := s.observeLocked(agg, interval)
	s.mu.Unlock()
	s.applyRates()
	if report && s.obs != nil {
		s.obs.ObservePath(rep.up, rep.down, rep.base)
	}
}

// pathReport is what the scheduler tells a PathObserver.
type pathReport struct {
	up, down float64 // bytes/s while the path was full; 0 if it was not
	base     time.Duration
}

// observeLocked adds one sampling interval to the passive estimates and,
// every observeSpan of transfers, returns a report. While the queue is
// at least half the target the path is full, so what went through is its
// capacity (less the foreground's share).
func (s *Scheduler) observeLocked(agg [2]sample, interval time.Duration) (pathReport, bool) {
	o := &s.observed
	o.span += interval
	for d := range agg {
		ctl := s.ctl[d]
		if agg[d].bytes > 0 && ctl.base > 0 {
			o.base = minPositive(o.base, ctl.base)
		}
		if agg[d].bytes > 0 && ctl.q >= s.cfg.TargetDelay/2 {
			o.full[d].bytes += agg[d].bytes
			o.full[d].span += interval
		}
	}
	if o.span < observeSpan {
		return pathReport{}, false
	}
	rep := pathReport{base: o.base}
	for d, r := range []*float64{&rep.up, &rep.down} {
		// Half the span full at least, or the figure says little.
		if f := o.full[d]; f.span >= o.span/2 {
			*r = float64(f.bytes) / f.span.Seconds()
		}
	}
	*o = observation{}
	return rep, rep.base > 0 || rep.up > 0 || rep.down > 0
}

// Status is a snapshot of the budget, for the console, the CLI and
// metrics.
type Status struct {
	WindowOpen bool      // the calendar lets background transfers start now
	SendNow    bool      // `preau sync now` is in effect
	NextChange time.Time // when WindowOpen flips next; zero if not within 9 days
	ClockSet   bool      // the clock is plausible; windows stay closed until it is
	Online     bool
	Up, Down   PathStatus
	CapUsed    int64 // bytes today
	DailyCap   int64 // 0 = no cap
	Classes    []ClassStatus
}

// PathStatus is the controller's view of one direction.
type PathStatus struct {
	Rate       float64       // bytes/s the transfers may use now
	BaseRTT    time.Duration // least RTT of the last minutes; 0 before any sample
	QueueDelay time.Duration // current RTT above the base
}

// ClassStatus counts one class's transfers.
type ClassStatus struct {
	Class           Class
	Active, Waiting int
	SentBytes       int64 // since start
	ReceivedBytes   int64 // since start
}

// Status returns the current state.
func (s *Scheduler) Status() Status {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollCapLocked(now)
	g := s.gateLocked(now)
	st := Status{
		WindowOpen: g.open, SendNow: g.sendNow, NextChange: s.nextChangeLocked(now),
		ClockSet: !now.Before(clockFloor), Online: g.online,
		CapUsed: s.capUsed, DailyCap: s.cfg.DailyCap,
	}
	for d, ps := range []*PathStatus{&st.Up, &st.Down} {
		c := s.ctl[d]
		*ps = PathStatus{Rate: c.rate(), BaseRTT: c.base, QueueDelay: c.q}
	}
	for c := ClassHandIn; c <= ClassPrefetch; c++ {
		st.Classes = append(st.Classes, ClassStatus{Class: c, Active: s.active[c], Waiting: s.waiting[c],
			SentBytes: s.bytes[c][up], ReceivedBytes: s.bytes[c][down]})
	}
	return st
}
