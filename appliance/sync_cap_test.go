package appliance

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"preau/appliance/store"
	"preau/sync/budget"
)

type onlineUplink struct{}

func (onlineUplink) Online() bool { return true }

// TestCapUsageKeptInSettings: the day's cap usage saved by one box is
// restored by the next start on the same database, and not the next day.
func TestCapUsageKeptInSettings(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "preau.db")
	open := func() *store.Store {
		s, err := store.Open(ctx, db, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx, "appliance", applianceMigrations); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	now := time.Now()
	sched := func(at time.Time) *budget.Scheduler {
		s, err := budget.New(budget.Config{DailyCap: 1 << 20}, onlineUplink{}, func() time.Time { return at }, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	today := func(t time.Time) budget.Date { return budget.Date{Year: t.Year(), Month: t.Month(), Day: t.Day()} }

	s1 := sched(now)
	s1.RestoreCapUsage(today(now), 700<<10) // as if spent by transfers
	cs := capStore{db: open().DB(), log: quietLog()}
	kctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cs.keep(kctx, s1) }()
	cancel() // a stop saves
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	s2 := sched(now)
	capStore{db: open().DB(), log: quietLog()}.restore(ctx, s2)
	if _, used := s2.CapUsage(); used != 700<<10 {
		t.Errorf("after a restart: %d bytes of the cap used, want %d", used, 700<<10)
	}
	s3 := sched(now.Add(24 * time.Hour))
	capStore{db: open().DB(), log: quietLog()}.restore(ctx, s3)
	if _, used := s3.CapUsage(); used != 0 {
		t.Errorf("the next day: %d bytes used, want 0", used)
	}
}
