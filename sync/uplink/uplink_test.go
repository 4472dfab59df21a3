package uplink

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestMonitorFollowsTheLink cuts and restores a real HTTP server on
// loopback and checks the state follows, with backoff while down.
func TestMonitorFollowsTheLink(t *testing.T) {
	var up atomic.Bool
	var hits atomic.Int64
	up.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Method != http.MethodHead {
			t.Errorf("probe method %s, want HEAD", r.Method)
		}
		if !up.Load() {
			// Emulate a cut: drop the connection without an answer.
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	m, err := New(Config{ProbeURLs: []string{srv.URL}, Interval: 150 * time.Millisecond, MinRetry: 20 * time.Millisecond, Timeout: time.Second},
		srv.Client(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan State, 16)
	m.OnChange(func(s State) { changes <- s })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Serve(ctx) }()

	wait := func(want bool) {
		t.Helper()
		for {
			select {
			case s := <-changes:
				if s.Online == want {
					return
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no transition to online=%v", want)
			}
		}
	}
	wait(true)
	up.Store(false)
	wait(false)
	if m.Online() || m.State().LastError == "" {
		t.Errorf("state %+v, want offline with an error", m.State())
	}
	up.Store(true)
	wait(true)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestNoProbeMeansOfflineAndIdle(t *testing.T) {
	m, err := New(Config{}, http.DefaultClient, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.Serve(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Online() {
		t.Error("online with no probe URL")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		cfg Config
		ok  bool
	}{
		{Config{ProbeURLs: []string{"https://apps.education.fr/"}}, true},
		{Config{ProbeURLs: []string{"ftp://x/"}}, false},
		{Config{ProbeURLs: []string{"https://"}}, false},
		{Config{Interval: time.Second, MinRetry: time.Minute}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.WithDefaults().Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tt.cfg, err, tt.ok)
		}
	}
}

func TestObservePath(t *testing.T) {
	m, err := New(Config{}, http.DefaultClient, quiet())
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		up, down float64
		base     time.Duration
		wantUp   float64
		wantDown float64
		wantBase time.Duration
	}{
		{250e3, 0, 300 * time.Millisecond, 250e3, 0, 300 * time.Millisecond},
		{300e3, 1e6, 310 * time.Millisecond, 300e3, 1e6, 300 * time.Millisecond}, // higher: at once; base keeps the least
		{100e3, 0, 0, 0.9*300e3 + 0.1*100e3, 1e6, 300 * time.Millisecond},        // lower (a shared path): slowly
	}
	for i, s := range steps {
		m.ObservePath(s.up, s.down, s.base)
		st := m.State()
		if st.CapacityUp != s.wantUp || st.CapacityDown != s.wantDown || st.BaseRTT != s.wantBase || st.Estimated.IsZero() {
			t.Errorf("after report %d: %+v, want up %.0f down %.0f base %v", i+1, st, s.wantUp, s.wantDown, s.wantBase)
		}
	}
}

// TestObservePathWakesAnOfflineMonitor: a transfer that went through while
// the monitor thinks the link is down makes it probe at once.
func TestObservePathWakesAnOfflineMonitor(t *testing.T) {
	var up atomic.Bool
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !up.Load() {
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	m, err := New(Config{ProbeURLs: []string{srv.URL}, Interval: time.Hour, MinRetry: time.Hour, Timeout: time.Second}, srv.Client(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	online := make(chan State, 4)
	m.OnChange(func(s State) {
		if s.Online {
			online <- s
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Serve(ctx)
	for hits.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	up.Store(true)
	m.ObservePath(100e3, 0, 0)
	select {
	case s := <-online:
		if s.ProbeRTT <= 0 {
			t.Errorf("probe RTT %v after a successful probe", s.ProbeRTT)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the monitor waited for its backoff (1 h) despite a transfer going through")
	}
}

// TestMetricsPassPromtool checks the exposition with Prometheus's linter.
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
			t.Fatal("promtool not found: .ci/run must install it (Debian package prometheus)")
		}
		t.Skip("promtool not installed; skipping (CI installs it)")
	}
	m, err := New(Config{}, http.DefaultClient, quiet())
	if err != nil {
		t.Fatal(err)
	}
	m.ObservePath(250e3, 1e6, 300*time.Millisecond)
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		expfmt.MetricFamilyToText(&buf, mf)
	}
	if !strings.Contains(buf.String(), `preau_uplink_capacity_bytes_per_second{direction="up"} 250000`) {
		t.Errorf("capacity missing from\n%s", buf.String())
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
