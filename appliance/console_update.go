package appliance

import (
	"context"

	"preau/appliance/console"
	"preau/firmware"
)

// consoleUpdates is the update engine as the console shows it (display
// only: updates are driven with `preau update`). The engine's states are
// the console's (idle, downloading, verified, written, trying,
// committed, rolled_back, failed).
type consoleUpdates struct {
	e    *firmware.Engine
	lang string
}

func (u consoleUpdates) Status(ctx context.Context) (console.UpdateView, error) {
	st, err := u.e.Status(ctx)
	if err != nil {
		return console.UpdateView{}, err
	}
	v := console.UpdateView{State: string(st.State), Version: st.Running}
	if v.Version == "" {
		v.Version = version
	}
	if st.Available != nil && st.Available.Newer {
		v.Available = st.Available.Version
	}
	if st.Last != nil {
		v.LastResult, v.LastAt = st.Last.Result, st.Last.Ended
	}
	if st.State == firmware.StateRolledBack || st.State == firmware.StateFailed {
		v.RollbackReason = tr(u.lang, st.Reason.FR, st.Reason.EN)
	}
	return v, nil
}

// consoleUpdates is the console's update source: nil (the page says updates are
// not tracked) on a box without A/B slots, where no engine runs.
func (b *Box) consoleUpdates() console.Updates {
	if b.update == nil {
		return nil
	}
	return consoleUpdates{e: b.update, lang: b.cfg.Portal.Language}
}

// updateBrief is the dashboard's update line: the engine's state, or
// updateNotConfigured without one.
func (b *Box) updateBrief(ctx context.Context) (console.UpdateBrief, error) {
	if b.update == nil {
		return console.UpdateBrief{State: updateNotConfigured, Version: version}, nil
	}
	v, err := consoleUpdates{e: b.update}.Status(ctx)
	if err != nil {
		return console.UpdateBrief{State: "unknown", Version: version}, err
	}
	return console.UpdateBrief{State: v.State, Version: v.Version}, nil
}
