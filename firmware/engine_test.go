package firmware

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"preau/firmware/bootenv"
)

// update applies the repository's release on b and reboots it; it
// returns the slot the firmware then started.
func update(t *testing.T, b *box, url string) string {
	t.Helper()
	ctx := context.Background()
	e := engineFor(t, b, engineOpts{repoURL: url})
	if err := e.Boot(ctx, &health{mode: "ok"}); err != nil {
		t.Fatalf("Boot before update: %v", err)
	}
	var last Progress
	err := e.Apply(ctx, func(p Progress) { last = p })
	if !errors.Is(err, ErrRebooting) {
		t.Fatalf("Apply = %v, want ErrRebooting", err)
	}
	if last.State != StateTrying || last.Total == 0 || last.Done != last.Total {
		t.Fatalf("last progress = %+v", last)
	}
	asked, try := b.rebootAsked()
	if !asked || try != (b.kind == piTryboot) {
		t.Fatalf("reboot asked %v tryboot %v", asked, try)
	}
	return b.boot(t, try)
}

func TestUpdateCommits(t *testing.T) {
	for _, k := range []kind{systemdBoot, piTryboot} {
		t.Run(string(k), func(t *testing.T) {
			ctx := context.Background()
			repo := newTestRepo(t)
			repo.sign(t, k, "1.1", 300<<10)
			url := repo.serve(t)
			b := newBox(t, k, repo.dir+"/metadata/1.root.json")
			if got := update(t, b, url); got != bootenv.SlotB {
				t.Fatalf("booted %s after the update, want b", got)
			}
			e := engineFor(t, b, engineOpts{repoURL: url})
			if err := e.Boot(ctx, &health{mode: "ok"}); err != nil {
				t.Fatalf("Boot in the new slot: %v", err)
			}
			st, err := e.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != StateCommitted || !st.Settled || st.Running != "1.1" || st.Last == nil || st.Last.Result != "committed" {
				t.Fatalf("status = %+v", st)
			}
			for range 3 {
				if got := b.boot(t, false); got != bootenv.SlotB {
					t.Fatalf("after commit the firmware started %s, want b", got)
				}
			}
			// Up to date now.
			e = engineFor(t, b, engineOpts{repoURL: url})
			if err := e.Apply(ctx, nil); errCode(err) != CodeUpToDate {
				t.Fatalf("second Apply = %v, want %s", err, CodeUpToDate)
			}
			// And the next update writes slot a.
			repo.sign(t, k, "1.2", 200<<10)
			if got := update(t, b, url); got != bootenv.SlotA {
				t.Fatalf("second update booted %s, want a", got)
			}
			e = engineFor(t, b, engineOpts{repoURL: url})
			if err := e.Boot(ctx, &health{mode: "ok"}); err != nil {
				t.Fatal(err)
			}
			if st, _ := e.Status(ctx); st.State != StateCommitted || st.Running != "1.2" {
				t.Fatalf("status after the second update = %+v", st)
			}
		})
	}
}

func TestHealthFailureRollsBack(t *testing.T) {
	for _, k := range []kind{systemdBoot, piTryboot} {
		for _, check := range []string{"ready", "migrations", "portal", "config"} {
			t.Run(string(k)+"/"+check, func(t *testing.T) {
				ctx := context.Background()
				repo := newTestRepo(t)
				repo.sign(t, k, "1.1", 100<<10)
				url := repo.serve(t)
				b := newBox(t, k, repo.dir+"/metadata/1.root.json")
				update(t, b, url)
				e := engineFor(t, b, engineOpts{repoURL: url})
				err := e.Boot(ctx, &health{mode: "fail:" + check})
				if !errors.Is(err, ErrRebooting) {
					t.Fatalf("Boot with failing %s = %v, want ErrRebooting", check, err)
				}
				if asked, try := b.rebootAsked(); !asked || try {
					t.Fatalf("after rollback: reboot asked %v tryboot %v, want a plain reboot", asked, try)
				}
				if got := b.boot(t, false); got != bootenv.SlotA {
					t.Fatalf("after rollback the firmware started %s, want a", got)
				}
				e = engineFor(t, b, engineOpts{repoURL: url})
				if err := e.Boot(ctx, &health{mode: "ok"}); err != nil {
					t.Fatal(err)
				}
				st, _ := e.Status(ctx)
				want := healthCode(check)
				if st.State != StateRolledBack || st.Reason.Code != want || st.Last == nil || st.Last.Reason.Code != want || st.Running != "1.0" {
					t.Fatalf("status = %+v, want rolled_back %s", st, want)
				}
				if st.Reason.FR == "" || st.Reason.EN == "" {
					t.Fatalf("reason has no text: %+v", st.Reason)
				}
				// The slot that failed is never a fallback.
				for range 3 {
					if got := b.boot(t, true); got != bootenv.SlotA {
						t.Fatalf("firmware started %s after the rollback, want a", got)
					}
				}
			})
		}
	}
}

func TestNeverBootsRollsBack(t *testing.T) {
	// The new slot never gets to run preau (kernel panic, no binary): the
	// boot loader falls back by itself and the old slot records why.
	for _, k := range []kind{systemdBoot, piTryboot} {
		t.Run(string(k), func(t *testing.T) {
			ctx := context.Background()
			repo := newTestRepo(t)
			repo.sign(t, k, "1.1", 100<<10)
			url := repo.serve(t)
			b := newBox(t, k, repo.dir+"/metadata/1.root.json")
			slot := update(t, b, url)
			if slot != bootenv.SlotB {
				t.Fatalf("booted %s", slot)
			}
			// B hangs; the watchdog resets; systemd-boot tries twice more.
			for slot == bootenv.SlotB {
				slot = b.boot(t, false)
			}
			e := engineFor(t, b, engineOpts{repoURL: url})
			if err := e.Boot(ctx, &health{mode: "ok"}); err != nil {
				t.Fatal(err)
			}
			st, _ := e.Status(ctx)
			want := CodeTriesExhausted
			if k == piTryboot {
				want = CodeTryNotConfirmed
			}
			if st.State != StateRolledBack || st.Reason.Code != want {
				t.Fatalf("status = %+v, want rolled_back %s", st, want)
			}
			t.Logf("reason: %s / %s", st.Reason.FR, st.Reason.EN)
		})
	}
}

func TestWindowWaitAndExtend(t *testing.T) {
	ctx := context.Background()
	repo := newTestRepo(t)
	repo.sign(t, systemdBoot, "1.1", 100<<10)
	url := repo.serve(t)
	b := newBox(t, systemdBoot, repo.dir+"/metadata/1.root.json")
	noon := nightAfter(time.Now()).Add(10 * time.Hour) // 12:00, in class
	e := engineFor(t, b, engineOpts{repoURL: url, now: noon})
	var states []State
	var rebootAt time.Time
	err := e.Apply(ctx, func(p Progress) {
		if len(states) == 0 || states[len(states)-1] != p.State {
			states = append(states, p.State)
		}
		if p.State == StateWritten {
			rebootAt = p.RebootAt
		}
	})
	if !errors.Is(err, ErrRebooting) {
		t.Fatalf("Apply = %v", err)
	}
	loc, _ := time.LoadLocation("Europe/Paris")
	if got := rebootAt.In(loc); got.Hour() != 1 || got.Minute() != 0 {
		t.Fatalf("reboot planned at %v, want 01:00 Paris", got)
	}
	if now := e.clock.Now(); !e.win.Contains(now) || !e.win.Contains(now.Add(e.cfg.HealthTimeout)) {
		t.Fatalf("rebooted at %v: the trial does not fit in the window", now.In(loc))
	}
	// 04:55: too late for a trial tonight; it waits for tomorrow 01:00.
	late := nightAfter(time.Now()).Add(175 * time.Minute)
	if !e.win.Contains(late) || e.trialFits(late) {
		t.Fatalf("04:55 (%v) should be in the window but too late for a trial", late.In(loc))
	}
	t.Logf("states: %v", states)
	// A long migration extends the gate instead of failing it.
	b.boot(t, false)
	var extended []time.Duration
	e = engineFor(t, b, engineOpts{repoURL: url, extend: func(d time.Duration) { extended = append(extended, d) },
		cfg: func(c *Config) { c.HealthTimeout = 10 * time.Second; c.ExtendStep = 20 * time.Second }})
	if err := e.Boot(ctx, &health{mode: "migrating"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.Status(ctx); st.State != StateCommitted {
		t.Fatalf("state after a long migration = %s (%s)", st.State, st.Reason.EN)
	}
	if len(extended) == 0 {
		t.Fatal("the gate never asked systemd for more time")
	}
}

func TestRollbackCancelsBeforeTrial(t *testing.T) {
	ctx := context.Background()
	repo := newTestRepo(t)
	repo.sign(t, systemdBoot, "1.1", 100<<10)
	url := repo.serve(t)
	b := newBox(t, systemdBoot, repo.dir+"/metadata/1.root.json")
	e := engineFor(t, b, engineOpts{repoURL: url, hook: func(p string) error {
		if p == "written:before" {
			return errors.New("stop here")
		}
		return nil
	}})
	if err := e.Apply(ctx, nil); err == nil || err.Error() != "stop here" {
		t.Fatalf("Apply = %v", err)
	}
	if err := e.Rollback(ctx, "pas ce soir"); err != nil {
		t.Fatal(err)
	}
	st, _ := e.Status(ctx)
	if st.State != StateFailed || st.Reason.Code != CodeCancelled {
		t.Fatalf("status = %+v", st)
	}
	if err := e.Rollback(ctx, "encore"); errCode(err) != CodeNothingToCancel {
		t.Fatalf("second Rollback = %v", err)
	}
	if _, err := os.Stat(b.path("esp", "loader", "entries", "preau-b+3.conf")); err == nil {
		t.Fatal("slot b still armed")
	}
}

func TestApplyFileTar(t *testing.T) {
	for _, k := range []kind{systemdBoot, piTryboot} {
		t.Run(string(k), func(t *testing.T) {
			ctx := context.Background()
			repo := newTestRepo(t)
			repo.sign(t, k, "1.1", 200<<10)
			tarPath := t.TempDir() + "/preau-1.1.tar"
			runRelease(t, "bundle", "--repo", repo.dir, "--out", tarPath)
			b := newBox(t, k, repo.dir+"/metadata/1.root.json")
			e := engineFor(t, b, engineOpts{}) // no repository: an offline box
			if err := e.Apply(ctx, nil); errCode(err) != CodeNoRepository {
				t.Fatalf("Apply without repository = %v", err)
			}
			if err := e.ApplyFile(ctx, tarPath, nil); !errors.Is(err, ErrRebooting) {
				t.Fatalf("ApplyFile = %v", err)
			}
			_, try := b.rebootAsked()
			if got := b.boot(t, try); got != bootenv.SlotB {
				t.Fatalf("booted %s", got)
			}
			e = engineFor(t, b, engineOpts{})
			if err := e.Boot(ctx, &health{mode: "ok"}); err != nil {
				t.Fatal(err)
			}
			st, _ := e.Status(ctx)
			if st.State != StateCommitted || st.Source != "file" || st.Running != "1.1" {
				t.Fatalf("status = %+v", st)
			}
			if k == piTryboot {
				got, _ := os.ReadFile(b.path("slots", "boot-b.img"))
				if string(got) != "boot b 1.1 preau.slot=b" {
					t.Fatalf("slot b's boot partition holds %q, want its own", got)
				}
			}
			if err := e.ApplyFile(ctx, t.TempDir()+"/nothing.tar", nil); errCode(err) != CodeBundle {
				t.Fatalf("ApplyFile of a missing file = %v", err)
			}
		})
	}
}

func TestRolledBackVersionIsNotRetried(t *testing.T) {
	ctx := context.Background()
	repo := newTestRepo(t)
	repo.sign(t, systemdBoot, "1.1", 100<<10)
	url := repo.serve(t)
	b := newBox(t, systemdBoot, repo.dir+"/metadata/1.root.json")
	update(t, b, url)
	e := engineFor(t, b, engineOpts{repoURL: url})
	if err := e.Boot(ctx, &health{mode: "fail:config"}); !errors.Is(err, ErrRebooting) {
		t.Fatal(err)
	}
	b.boot(t, false)
	e = engineFor(t, b, engineOpts{repoURL: url})
	if err := e.Boot(ctx, &health{mode: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(ctx, nil); errCode(err) != CodeRolledBefore {
		t.Fatalf("Apply of the rolled back version = %v", err)
	}
	repo.sign(t, systemdBoot, "1.2", 100<<10)
	if err := e.Apply(ctx, nil); !errors.Is(err, ErrRebooting) {
		t.Fatalf("Apply of a newer version = %v", err)
	}
	h, _ := e.History(ctx, 5)
	if len(h) != 2 || h[1].Result != "rolled_back" || h[1].Reason.Code != CodeHealthConfig || h[0].ToVersion != "1.2" {
		t.Fatalf("history = %+v", h)
	}
}

// TestCarryOverAfterRestore plays what appliance does around a trial
// that migrated the database: back it up when OnTrial says so, and after
// the rollback restore the backup and carry the update's rows over.
func TestCarryOverAfterRestore(t *testing.T) {
	ctx := context.Background()
	repo := newTestRepo(t)
	repo.sign(t, systemdBoot, "1.1", 100<<10)
	url := repo.serve(t)
	b := newBox(t, systemdBoot, repo.dir+"/metadata/1.root.json")
	update(t, b, url)
	e := engineFor(t, b, engineOpts{repoURL: url})
	v, trial, err := e.OnTrial(ctx)
	if err != nil || !trial || v != "1.1" {
		t.Fatalf("OnTrial = %q %v %v", v, trial, err)
	}
	backup := b.path("preau.db.before-1.1")
	if _, err := e.db.ExecContext(ctx, `VACUUM INTO ?`, backup); err != nil {
		t.Fatal(err)
	}
	if err := e.Boot(ctx, &health{mode: "fail:portal"}); !errors.Is(err, ErrRebooting) {
		t.Fatal(err)
	}
	b.boot(t, false)
	// The old slot: restore the backup, carry the trial's rows over.
	trialDB := b.path("preau.db.trial")
	if _, err := e.db.ExecContext(ctx, `VACUUM INTO ?`, trialDB); err != nil {
		t.Fatal(err)
	}
	restored, err := openDB(backup)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if err := CarryOver(ctx, restored, trialDB); err != nil {
		t.Fatal(err)
	}
	e2 := &Engine{db: restored}
	r, err := e2.load(ctx)
	if err != nil || r.State != StateRolledBack || r.Reason.Code != CodeHealthPortal {
		t.Fatalf("restored state = %+v, %v", r, err)
	}
	if h, _ := e2.History(ctx, 3); len(h) != 1 || h[0].Reason.Code != CodeHealthPortal {
		t.Fatalf("restored history = %+v", h)
	}
}
