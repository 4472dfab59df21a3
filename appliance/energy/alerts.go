package energy

import (
	"context"
	"database/sql"
	"time"
)

// A "left on" alert: a device present on the LAN outside school hours
// (nights, weekends, holidays, closed days) for more than LeftOn.Threshold
// in total during one out-of-hours period. There is one alert per device
// and period, raised as soon as the threshold is passed (so the technician
// can see it the same night) and updated until the period ends; it is
// never one alert per sample. Excluded classes (access points by default)
// and devices never raise one. The kWh wasted are an estimate: the
// class's watts × the time present in the period.

// Alert is one left-on alert.
type Alert struct {
	Device      string
	Name        string
	Class       Class
	PeriodStart time.Time // end of opening hours
	PeriodEnd   time.Time // next opening
	FirstSeen   time.Time // first presence in the period
	LastSeen    time.Time // last presence so far
	Present     time.Duration
	Watts       float64
	KWh         float64 // estimated waste
	Raised      time.Time
	Ongoing     bool // the period has not ended yet
}

// alertLookback: each check looks at the periods overlapping the last day.
const alertLookback = 24 * time.Hour

// alertWindow bounds how far back presence is summed within one very long
// period (summer holidays): presences further apart do not add up.
const alertWindow = 35 * 24 * time.Hour

// checkAlerts raises or updates the alerts of the recent periods.
func (m *Meter) checkAlerts(ctx context.Context, now time.Time) error {
	var devs map[string]Device
	for _, p := range m.cal.periods(now.Add(-alertLookback-m.cfg.MaxGap), now) {
		if !p.Start.Before(now) {
			continue
		}
		from := p.Start
		if w := now.Add(-alertWindow); from.Before(w) {
			from = w
		}
		to := p.End
		if now.Before(to) {
			to = now
		}
		ivs, err := m.presence.Intervals(ctx, from, to)
		if err != nil {
			return errf("read presence", err)
		}
		for id, list := range ivs {
			if m.exclDev[id] {
				continue
			}
			merged := clipMerge(list, from, to, now)
			var present time.Duration
			for _, iv := range merged {
				present += iv.To.Sub(iv.From)
			}
			if present <= m.cfg.LeftOn.Threshold {
				continue
			}
			if devs == nil {
				if devs, err = m.deviceMap(ctx); err != nil {
					return err
				}
			}
			d, ok := devs[id]
			if !ok {
				d = Device{ID: id, Name: id, Class: ClassUnknown}
			}
			prof := m.classOf(d.Class)
			if m.excluded[d.Class] || m.excluded[prof.Class] {
				continue
			}
			a := Alert{
				Device: id, Name: d.Name, Class: prof.Class,
				PeriodStart: p.Start, PeriodEnd: p.End,
				FirstSeen: merged[0].From, LastSeen: merged[len(merged)-1].To,
				Present: present, Watts: prof.Watts,
				KWh:    prof.Watts * present.Hours() / 1000,
				Raised: now,
			}
			if err := m.saveAlert(ctx, a); err != nil {
				return err
			}
		}
	}
	return nil
}

// deviceMap lists the devices by ID, with the plugs' devices.
func (m *Meter) deviceMap(ctx context.Context) (map[string]Device, error) {
	list, err := m.presence.Devices(ctx)
	if err != nil {
		return nil, errf("list devices", err)
	}
	out := make(map[string]Device, len(list))
	for _, p := range m.plugs {
		out[p.Device] = Device{ID: p.Device, Name: p.Name, Class: p.Class}
	}
	for _, d := range list {
		if d.Name == "" {
			d.Name = d.ID
		}
		out[d.ID] = d
	}
	return out, nil
}

func (m *Meter) saveAlert(ctx context.Context, a Alert) error {
	return m.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO energy_alerts(device, period_start, period_end, name, class,
	first_seen, last_seen, present_seconds, watts, kwh, raised_at, updated_at)
VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(device, period_start) DO NOTHING`,
			a.Device, a.PeriodStart.Unix(), a.PeriodEnd.Unix(), a.Name, string(a.Class),
			a.FirstSeen.Unix(), a.LastSeen.Unix(), int64(a.Present/time.Second), a.Watts, a.KWh,
			a.Raised.UnixMilli(), a.Raised.UnixMilli())
		if err != nil {
			return errf("record left-on alert", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			m.log.Info("energy: left-on alert", "device", a.Device, "name", a.Name, "class", a.Class,
				"period_start", a.PeriodStart, "present", a.Present)
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE energy_alerts SET period_end = ?, name = ?, class = ?,
	first_seen = MIN(first_seen, ?), last_seen = MAX(last_seen, ?),
	present_seconds = MAX(present_seconds, ?), watts = ?, kwh = MAX(kwh, ?), updated_at = ?
WHERE device = ? AND period_start = ? AND (present_seconds < ? OR last_seen < ? OR period_end != ?)`,
			a.PeriodEnd.Unix(), a.Name, string(a.Class), a.FirstSeen.Unix(), a.LastSeen.Unix(),
			int64(a.Present/time.Second), a.Watts, a.KWh, a.Raised.UnixMilli(),
			a.Device, a.PeriodStart.Unix(), int64(a.Present/time.Second), a.LastSeen.Unix(), a.PeriodEnd.Unix())
		if err != nil {
			return errf("update left-on alert", err)
		}
		return nil
	})
}

// Alerts returns the alerts whose period overlaps [from, to), oldest
// first.
func (m *Meter) Alerts(ctx context.Context, from, to time.Time) ([]Alert, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT device, name, class, period_start, period_end, first_seen,
	last_seen, present_seconds, watts, kwh, raised_at
FROM energy_alerts WHERE period_start < ? AND period_end > ?
ORDER BY period_start, device`, to.Unix(), from.Unix())
	if err != nil {
		return nil, errf("list left-on alerts", err)
	}
	defer rows.Close()
	now := m.now()
	var out []Alert
	for rows.Next() {
		var a Alert
		var class string
		var ps, pe, fs, ls, secs, raised int64
		if err := rows.Scan(&a.Device, &a.Name, &class, &ps, &pe, &fs, &ls, &secs, &a.Watts, &a.KWh, &raised); err != nil {
			return nil, errf("list left-on alerts", err)
		}
		a.Class = Class(class)
		a.PeriodStart, a.PeriodEnd = time.Unix(ps, 0).In(m.cal.loc), time.Unix(pe, 0).In(m.cal.loc)
		a.FirstSeen, a.LastSeen = time.Unix(fs, 0).In(m.cal.loc), time.Unix(ls, 0).In(m.cal.loc)
		a.Present = time.Duration(secs) * time.Second
		a.Raised = time.UnixMilli(raised).In(m.cal.loc)
		a.Ongoing = now.Before(a.PeriodEnd)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, errf("list left-on alerts", err)
	}
	return out, nil
}

// Periods returns the out-of-hours periods overlapping [from, to) in the
// school's calendar (for the console's calendar view and for tests).
func (m *Meter) Periods(from, to time.Time) []Period {
	ps := m.cal.periods(from, to)
	for i := range ps {
		ps[i].Start, ps[i].End = ps[i].Start.In(m.cal.loc), ps[i].End.In(m.cal.loc)
	}
	return ps
}
