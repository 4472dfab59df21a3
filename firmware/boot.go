package firmware

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Boot settles what a reboot decided; call it at every start of preau,
// once the firmware migrations are applied (go engine.Boot(ctx, health):
// it waits for the health gate during a trial).
//
//   - Nothing pending: returns at once.
//   - An update on trial and the box booted the new slot: it waits for the
//     local health gate (Health), at most Config.HealthTimeout — longer,
//     up to HealthMaxWait, while a check reports ErrStillWorking, asking
//     systemd for more time through Deps.ExtendTimeout — then commits the
//     slot (the boot loader's default from now on), or rolls back: the
//     slot is disarmed and the box reboots into the committed one at
//     once. The reason names the failing check.
//   - An update on trial and the box booted the old slot: the trial failed
//     before preau could judge it (tries used up, the Pi's single try not
//     confirmed, the old entry chosen by hand); it is recorded as rolled
//     back with that reason.
func (e *Engine) Boot(ctx context.Context, health Health) error {
	return e.exclusive(ctx, true, func(ctx context.Context) error {
		r, err := e.load(ctx)
		if err != nil {
			return err
		}
		bootID, err := e.d.BootID()
		if err != nil {
			return err
		}
		booted, err := e.d.Slots.Booted()
		if err != nil {
			return fmt.Errorf("boot: %w", err)
		}
		switch {
		case r.State == StateTrying && r.ArmedBoot == bootID:
			return nil // not rebooted yet: Serve or Apply carries on
		case r.State == StateTrying && booted == r.TargetSlot:
			return e.trial(ctx, &r, health, bootID)
		case r.State == StateTrying:
			why := e.whyOldSlot(ctx, &r)
			if why == nil {
				// The box restarted before the engine asked for the trial
				// reboot (a power cut): nothing was tried; wait for the
				// next window with the slot disarmed.
				e.log.Warn("restarted before the trial reboot; the trial waits for the next window", "version", r.Version)
				if err := e.d.BootEnv.Disarm(ctx, r.TargetSlot); err != nil {
					return fmt.Errorf("disarm slot %s: %w", r.TargetSlot, err)
				}
				r.ArmedBoot = ""
				return e.transition(ctx, &r, StateWritten)
			}
			return e.end(ctx, &r, StateRolledBack, why)
		case r.State == StateCommitted && !r.Settled:
			if booted == r.TargetSlot {
				return e.settle(ctx, &r)
			}
			// The commit did not reach the boot loader and the trial ran out.
			return e.end(ctx, &r, StateRolledBack, newError(CodeCommitLost, "", nil))
		case r.State == StateRolledBack && booted == r.TargetSlot:
			if !r.Settled {
				return e.settle(ctx, &r)
			}
			return e.leaveBadSlot(ctx, &r)
		case (r.State == StateRolledBack || r.State == StateFailed) && !r.Settled:
			return e.settle(ctx, &r)
		}
		return nil
	})
}

// whyOldSlot explains a trial that ended on the old slot; nil means no
// trial happened (the box restarted before the engine asked for it).
func (e *Engine) whyOldSlot(ctx context.Context, r *row) *Error {
	last := ""
	if r.LastCheck != "" {
		last = " ; " + r.LastCheck
	}
	if r.TrialBoot != "" {
		// The new slot ran preau at least once but never passed the gate.
		if code := healthCode(r.LastCheck); code != "" {
			return newError(code, "le système a redémarré pendant l'essai / the system restarted during the trial", nil)
		}
	}
	t, err := e.d.BootEnv.Trial(ctx, r.TargetSlot)
	switch {
	case err != nil:
		return newError(CodeOldSlotBooted, err.Error(), err)
	case t.Armed && t.TriesDone > 0 && t.TriesLeft == 0:
		return newError(CodeTriesExhausted, fmt.Sprint(t.TriesDone), nil)
	case t.Armed && t.TriesDone > 0:
		return newError(CodeOldSlotBooted, fmt.Sprintf("%d/%d", t.TriesDone, t.TriesDone+t.TriesLeft), nil)
	case !r.RebootAsked && r.TrialBoot == "":
		return nil
	case e.d.BootEnv.OneShot():
		return newError(CodeTryNotConfirmed, last, nil)
	case !t.Armed:
		return newError(CodeEntryMissing, last, nil)
	case t.TriesLeft == 0:
		return newError(CodeTriesExhausted, fmt.Sprint(t.TriesDone), nil)
	}
	return newError(CodeOldSlotBooted, fmt.Sprintf("%d/%d", t.TriesDone, t.TriesDone+t.TriesLeft), nil)
}

func healthCode(check string) string {
	switch check {
	case "ready":
		return CodeHealthReady
	case "migrations":
		return CodeHealthMigrations
	case "portal":
		return CodeHealthPortal
	case "config":
		return CodeHealthConfig
	}
	return ""
}

// trial judges the new slot the box booted.
func (e *Engine) trial(ctx context.Context, r *row, health Health, bootID string) error {
	if r.TrialBoot != bootID {
		r.TrialBoot, r.Entries = bootID, 0
	}
	capped, err := e.reenter(ctx, r, -1)
	if err != nil {
		return err
	}
	if capped {
		last := ""
		if r.LastCheck != "" {
			last = " (" + r.LastCheck + ")"
		}
		return e.end(ctx, r, StateRolledBack, newError(CodeTrialRestarts, last, nil))
	}
	if e.cfg.Version != r.Version {
		return e.end(ctx, r, StateRolledBack, newError(CodeVersionMismatch, e.cfg.Version, nil))
	}
	e.report(Progress{State: StateTrying, Done: r.total(), Total: r.total()})
	if err := e.at("trial:health"); err != nil {
		return err
	}
	failing, ferr := e.gate(ctx, r, health)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if failing != "" {
		return e.end(ctx, r, StateRolledBack, newError(healthCode(failing), ferr.Error(), ferr))
	}
	r.State, r.Settled, r.Entries = StateCommitted, false, 0
	if err := e.save(ctx, r, nil); err != nil {
		return err
	}
	return e.settle(ctx, r)
}

// gate polls the local checks until all pass or time is up; it returns
// the failing check and its error.
func (e *Engine) gate(ctx context.Context, r *row, h Health) (string, error) {
	checks := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"ready", h.Ready}, {"migrations", h.Migrated}, {"portal", h.PortalAnswers}, {"config", h.ConfigValid},
	}
	start := e.clock.Now()
	deadline := start.Add(e.cfg.HealthTimeout)
	limit := start.Add(e.cfg.HealthMaxWait)
	var extendedAt time.Time
	for {
		// Every check each time: READY comes only after the migrations, so
		// a migration still working must be seen even while "ready" fails.
		failing, ferr, working := "", error(nil), false
		for _, c := range checks {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := c.fn(cctx)
			cancel()
			if err == nil {
				continue
			}
			if errors.Is(err, ErrStillWorking) && !working {
				// The root cause while something progresses.
				working, failing, ferr = true, c.name, err
			} else if failing == "" {
				failing, ferr = c.name, err
			}
		}
		if failing == "" {
			return "", nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		now := e.clock.Now()
		if failing != r.LastCheck {
			r.LastCheck = failing
			if err := e.save(ctx, r, nil); err != nil {
				return "", err
			}
		}
		if working && now.Before(limit) {
			if ext := now.Add(e.cfg.ExtendStep); ext.After(deadline) {
				deadline = min64(ext, limit)
			}
			if e.d.ExtendTimeout != nil && (extendedAt.IsZero() || now.Sub(extendedAt) >= e.cfg.ExtendStep/2) {
				e.d.ExtendTimeout(e.cfg.ExtendStep)
				extendedAt = now
			}
		}
		if !now.Before(deadline) {
			return failing, ferr
		}
		if err := e.clock.Sleep(ctx, e.cfg.HealthPoll); err != nil {
			return "", err
		}
	}
}

func min64(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
