package firmware

import (
	"context"
	"errors"
	"time"
)

// Serve resumes an interrupted update (after a crash, a power cut or a
// network cut) and, unless Config.CheckInterval is negative, looks for a
// new release that often and installs it. It runs until ctx ends.
func (e *Engine) Serve(ctx context.Context) error {
	retry := time.Minute
	for {
		wait := e.cfg.CheckInterval
		err := e.exclusive(ctx, false, func(ctx context.Context) error {
			r, err := e.load(ctx)
			if err != nil {
				return err
			}
			if !atRest(r.State, r.Settled) {
				return e.drive(ctx)
			}
			return nil
		})
		if err == nil && e.cfg.CheckInterval > 0 && e.cfg.RepositoryURL != "" {
			due, derr := e.checkDue(ctx)
			if derr == nil && due <= 0 {
				err = e.Apply(ctx, nil)
				if ue, ok := asError(err); ok && ue.Code == CodeUpToDate {
					err = nil
				}
			} else if derr == nil {
				wait = due
			}
		}
		switch ue, _ := asError(err); {
		case err == nil:
			retry = time.Minute
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrRebooting):
			<-ctx.Done() // the system is going down
			return nil
		case ue != nil && (ue.Code == CodeTrialPending || ue.Code == CodeBusy):
			// Boot judges the trial; or Apply, Boot or Rollback runs.
			wait = min(wait, time.Minute)
		default:
			e.log.Warn("update", "err", err)
			wait = retry
			retry = min(retry*2, time.Hour)
		}
		if wait <= 0 {
			wait = retry
		}
		if err := e.clock.Sleep(ctx, wait); err != nil {
			return nil
		}
	}
}

// checkDue returns how long until the next check.
func (e *Engine) checkDue(ctx context.Context) (time.Duration, error) {
	var at int64
	err := e.db.QueryRowContext(ctx, `SELECT checked_at FROM firmware_check WHERE id = 1`).Scan(&at)
	if err != nil {
		return 0, nil
	}
	return time.UnixMilli(at).Add(e.cfg.CheckInterval).Sub(e.clock.Now()), nil
}
