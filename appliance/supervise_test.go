package appliance

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestSuperviseRestartsFailedParts(t *testing.T) {
	var runs atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	parts := []part{{name: "flaky", serve: func(ctx context.Context) error {
		if runs.Add(1) < 2 {
			return errors.New("boom")
		}
		if runs.Load() == 2 {
			panic("bad part")
		}
		cancel()
		<-ctx.Done()
		return nil
	}}}
	done := make(chan error)
	go func() { done <- supervise(ctx, quietLog(), parts) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("supervise: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("supervise did not restart the part")
	}
	if got := runs.Load(); got != 3 {
		t.Errorf("part ran %d times, want 3 (error, panic, ok)", got)
	}
}

func TestSuperviseStopsOnCriticalOrFatal(t *testing.T) {
	tests := []struct {
		name string
		p    part
	}{
		{"critical part fails", part{name: "listener", critical: true, serve: func(context.Context) error { return errors.New("closed") }}},
		{"fatal error", part{name: "db", serve: func(context.Context) error { return &FatalError{errors.New("disk gone")} }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stopped atomic.Bool
			other := part{name: "other", serve: func(ctx context.Context) error {
				<-ctx.Done()
				stopped.Store(true)
				return nil
			}}
			err := supervise(context.Background(), quietLog(), []part{tt.p, other})
			if err == nil {
				t.Fatal("supervise returned nil, want the part's error")
			}
			if !stopped.Load() {
				t.Error("the other part was not stopped")
			}
		})
	}
}
