// Package uplink watches whether the school's internet link works.
//
// It probes a few configured URLs with HEAD requests: any HTTP answer means
// online. While online it probes rarely (Config.Interval, default 5 min);
// while offline it retries with exponential backoff from MinRetry up to
// Interval, so a cut link costs a handful of wake-ups an hour and no busy
// loop (SPEC §3, sobriety). The scheduler of package sync will add passive
// capacity and RTT estimates from real transfers.
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
}

// Monitor probes the uplink. Its zero state is offline.
type Monitor struct {
	cfg  Config
	http Doer
	log  *slog.Logger

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
	return &Monitor{cfg: cfg, http: d, log: log}, nil
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
		err := m.probe(ctx)
		m.record(err)
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
		}
	}
}

// probe returns nil as soon as one URL answers.
func (m *Monitor) probe(ctx context.Context) error {
	var errs []error
	for _, u := range m.cfg.ProbeURLs {
		pctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
		req, err := http.NewRequestWithContext(pctx, http.MethodHead, u, nil)
		if err != nil {
			cancel()
			errs = append(errs, err)
			continue
		}
		resp, err := m.http.Do(req)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp.Body.Close()
		return nil
	}
	return errors.Join(errs...)
}

func (m *Monitor) record(err error) {
	now := time.Now()
	m.mu.Lock()
	was := m.state.Online
	first := m.state.Checked.IsZero()
	m.state.Checked = now
	m.state.Online = err == nil
	m.state.LastError = ""
	if err != nil {
		m.state.LastError = err.Error()
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
