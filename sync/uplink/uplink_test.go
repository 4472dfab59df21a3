package uplink

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
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
