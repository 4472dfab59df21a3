// Package uplink watches whether the school's internet link works.
//
// It probes a few configured URLs with HEAD requests: any HTTP answer means
// online. While online it probes rarely (Config.Interval, default 5 min);
// while offline it retries with exponential backoff from MinRetry up to
// Interval, so a cut link costs a handful of wake-ups an hour and no busy
// loop (SPEC §3, sobriety). The WAN scheduler (sync/budget) reports what
// its transfers measure through ObservePath: the capacity and base RTT of
// the path, estimated passively; a report while offline makes the monitor
// probe at once rather than wait for its backoff. The time to answer of
// each successful probe is the rare active RTT measurement.
//
// Imported by appliance only; other components read the state through the
// small interfaces they declare (e.g. portal.Uplink).
package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Doer sends one HTTP request; *http.Client satisfies it.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Config of the monitor.
type Config struct {
	// ProbeURLs are fetched with HEAD; empty means "always offline".
	ProbeURLs []string
	// Interval between probes while online. Default 5 min.
	Interval time.Duration
	// MinRetry is the first retry delay while offline. Default 15 s.
	MinRetry time.Duration
	// Timeout of one probe. Default 10 s.
	Timeout time.Duration
}

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	if c.Interval == 0 {
		c.Interval = 5 * time.Minute
	}
	if c.MinRetry == 0 {
		c.MinRetry = 15 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	for _, u := range c.ProbeURLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return fmt.Errorf("uplink: probe url %q: want an http(s) URL", u)
		}
	}
	if c.MinRetry <= 0 || c.Interval < c.MinRetry || c.Timeout <= 0 {
		return errors.New("uplink: want 0 < min retry <= interval and a positive timeout")
	}
	return nil
}

// State is a snapshot of what the monitor knows.
type State struct {
	Online    bool
	Checked   time.Time // last probe; zero before the first
	Changed   time.Time // last transition
	LastError string

	// ProbeRTT is the time the last successful probe took to answer
	// (an upper bound of the path's RTT: the server's time is in it).
	ProbeRTT time.Duration
	// Passive estimates from the scheduler's transfers; zero until known.
	BaseRTT      time.Duration // least RTT of the path
	CapacityUp   float64       // bytes/s the path carried upward while full
	CapacityDown float64       // bytes/s the path carried downward while full
	Estimated    time.Time     // last estimate
}

// Monitor probes the uplink. Its zero state is offline.
type Monitor struct {
	cfg  Config
	http Doer
	log  *slog.Logger

	kick chan struct{}

	mu    sync.Mutex
	state State
	subs  []func(State)
}

// New builds a monitor; it does no I/O.
func New(cfg Config, d Doer, log *slog.Logger) (*Monitor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Monitor{cfg: cfg, http: d, log: log, kick: make(chan struct{}, 1)}, nil
}

// Online reports the last known state.
func (m *Monitor) Online() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.Online
}

// State returns the last snapshot.
func (m *Monitor) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// OnChange registers fn, called after each transition.
func (m *Monitor) OnChange(fn func(State)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subs = append(m.subs, fn)
}

// Serve probes until ctx ends.
func (m *Monitor) Serve(ctx context.Context) error {
	if len(m.cfg.ProbeURLs) == 0 {
		<-ctx.Done()
		return nil
	}
	retry := m.cfg.MinRetry
	for {
		took, err := m.probe(ctx)
		m.record(err, took)
		wait := m.cfg.Interval
		if err != nil {
			wait = retry + time.Duration(rand.Int64N(int64(retry)/4+1)) // jitter
			retry = min(retry*2, m.cfg.Interval)
		} else {
			retry = m.cfg.MinRetry
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-m.kick: // a transfer went through: probe now
			t.Stop()
			retry = m.cfg.MinRetry
		}
	}
}

// ObservePath takes what the WAN scheduler measured on its own transfers:
// the rate the path carried each way while it was full (bytes/s, 0 when
// not measured) and its base RTT (0 when unknown). Capacity estimates
// follow a higher figure at once and a lower one slowly (a full path
// shared with the school's own traffic shows less than its capacity);
// estimates older than a day are replaced. If the monitor believes the
// link is down, it probes again at once.
func (m *Monitor) ObservePath(up, down float64, baseRTT time.Duration) {
	now := time.Now()
	m.mu.Lock()
	st := &m.state
	stale := now.Sub(st.Estimated) > 24*time.Hour
	for _, e := range []struct {
		obs float64
		est *float64
	}{{up, &st.CapacityUp}, {down, &st.CapacityDown}} {
		switch {
		case e.obs <= 0:
		case stale || e.obs > *e.est:
			*e.est = e.obs
		default:
			*e.est = 0.9**e.est + 0.1*e.obs
		}
	}
	if baseRTT > 0 && (stale || st.BaseRTT == 0 || baseRTT < st.BaseRTT || now.Sub(st.Estimated) > time.Hour) {
		st.BaseRTT = baseRTT
	}
	st.Estimated = now
	offline := !st.Online
	m.mu.Unlock()
	if offline {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// probe returns nil as soon as one URL answers, with the time it took.
func (m *Monitor) probe(ctx context.Context) (time.Duration, error) {
	var errs []error
	for _, u := range m.cfg.ProbeURLs {
		pctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
		req, err := http.NewRequestWithContext(pctx, http.MethodHead, u, nil)
		if err != nil {
			cancel()
			errs = append(errs, err)
			continue
		}
		start := time.Now()
		resp, err := m.http.Do(req)
		took := time.Since(start)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp.Body.Close()
		return took, nil
	}
	return 0, errors.Join(errs...)
}

func (m *Monitor) record(err error, took time.Duration) {
	now := time.Now()
	m.mu.Lock()
	was := m.state.Online
	first := m.state.Checked.IsZero()
	m.state.Checked = now
	m.state.Online = err == nil
	m.state.LastError = ""
	if err != nil {
		m.state.LastError = err.Error()
	} else {
		m.state.ProbeRTT = took
	}
	changed := was != m.state.Online || first
	if changed {
		m.state.Changed = now
	}
	st := m.state
	subs := append([]func(State){}, m.subs...)
	m.mu.Unlock()
	if !changed {
		return
	}
	if st.Online {
		m.log.Info("uplink online")
	} else {
		m.log.Warn("uplink offline", "err", st.LastError)
	}
	for _, fn := range subs {
		fn(st)
	}
}
