package budget

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

func (f dialFunc) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return f(ctx, network, address)
}

type online bool

func (o online) Online() bool { return bool(o) }

// alwaysOpen is a calendar open at all times, for tests of the link.
func alwaysOpen(cfg Config) Config {
	cfg.Windows = []Span{{Days: EveryDay, From: 0, To: 24 * time.Hour}}
	cfg.ClassHours = []Span{}
	return cfg
}
