package energy

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"time"
)

// The sampler accounts energy interval by interval: each sample reads the
// counters, and the interval since the previous sample of this process is
// written once, in one transaction, split across the hours it covers. A
// restart starts from a fresh baseline, so nothing is counted twice and
// the time the box was off (or the process stopped) stays uncovered: the
// views say "pas de mesure" for it. An interval longer than MaxGap (a
// suspend, a stuck clock) is treated the same way.

// sampleState is the previous sample; owned by the Serve goroutine.
type sampleState struct {
	at    time.Time // zero: no baseline yet
	rapl  map[string]uint64
	cpu   CPUTimes
	cpuOK bool
	plugs map[string]plugState
}

type plugState struct {
	r  PlugReading
	ok bool
}

// detect finds the box's power sources and the model's profile.
func (m *Meter) detect() {
	src := m.cfg.BoxSource
	if src == BoxAuto || src == BoxRAPL {
		zones, err := findRAPL(m.cfg.SysRoot)
		switch {
		case len(zones) > 0:
			m.rapl = zones
		case err != nil:
			m.log.Warn("energy: RAPL counters present but unreadable (root is needed since Linux 5.10); using the next source", "err", err)
		}
	}
	name, why := m.cfg.Profile, "configured"
	if name == "" {
		name, why = guessProfile(m.cfg.ProcRoot)
	}
	i := slices.IndexFunc(m.cfg.Profiles, func(p Profile) bool { return p.Name == name })
	if i < 0 { // a guessed name the configured table dropped
		i = len(m.cfg.Profiles) - 1
	}
	m.mu.Lock()
	m.profile = m.cfg.Profiles[i]
	m.mu.Unlock()
	names := make([]string, len(m.rapl))
	for j, z := range m.rapl {
		names[j] = z.Name
	}
	m.log.Info("energy: box power sources", "forced", src, "rapl_zones", names,
		"model_profile", m.cfg.Profiles[i].Name, "profile_because", why)
}

// sample reads everything once and accounts the interval since the
// previous sample.
func (m *Meter) sample(ctx context.Context) {
	now := m.now()
	prev := m.state
	cur := sampleState{at: now, plugs: map[string]plugState{}}
	src := m.cfg.BoxSource

	if len(m.rapl) > 0 {
		if v, err := readRAPL(m.rapl); err != nil {
			m.warnOnce("rapl", "energy: read RAPL", "err", err)
		} else {
			m.clearWarn("rapl")
			cur.rapl = v
		}
	}
	var supply supplyReading
	var supplyOK bool
	if src == BoxAuto || src == BoxBattery {
		r, ok, err := readSupplies(m.cfg.SysRoot)
		if err != nil {
			m.warnOnce("supply", "energy: read power supplies", "err", err)
		} else {
			m.clearWarn("supply")
			supply, supplyOK = r, ok
		}
	}
	if src == BoxAuto || src == BoxModel {
		if t, err := m.cpu.CPUTimes(ctx); err != nil {
			m.warnOnce("cpu", "energy: read cpu times", "err", err)
		} else {
			m.clearWarn("cpu")
			cur.cpu, cur.cpuOK = t, true
		}
	}
	m.readPlugs(ctx, &cur)
	m.state = cur

	if prev.at.IsZero() {
		return // baseline
	}
	dt := now.Sub(prev.at)
	if dt <= 0 || dt > m.cfg.MaxGap {
		m.log.Info("energy: interval not accounted (pas de mesure)", "from", prev.at, "to", now, "length", dt)
		return
	}
	boxSrc, joules, ok := m.boxEnergy(prev, cur, supply, supplyOK, dt)
	if !ok {
		m.warnOnce("box", "energy: no source could measure or estimate the box's power for this interval (pas de mesure)", "source", src)
	} else {
		m.clearWarn("box")
	}
	err := m.write(ctx, func(tx *sql.Tx) error {
		if ok {
			if err := addBoxHours(ctx, tx, boxSrc, prev.at, now, joules); err != nil {
				return err
			}
		}
		for _, id := range m.plugIDs() {
			wh, ok := plugEnergy(prev.plugs[id], cur.plugs[id], dt)
			if !ok {
				continue
			}
			if err := addPlugHours(ctx, tx, id, m.plugs[id].source().Kind, prev.at, now, wh); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		m.warnOnce("db", "energy: record interval", "err", err)
	} else {
		m.clearWarn("db")
	}
	if ok {
		m.mu.Lock()
		m.current = boxNow{Watts: joules / dt.Seconds(), Source: boxSrc, At: now}
		m.mcache = metricsCache{}
		m.mu.Unlock()
	}
	if err := m.checkAlerts(ctx, now); err != nil {
		m.warnOnce("alerts", "energy: check left-on alerts", "err", err)
	} else {
		m.clearWarn("alerts")
	}
}

// boxEnergy picks the source for the interval and returns its joules.
func (m *Meter) boxEnergy(prev, cur sampleState, supply supplyReading, supplyOK bool, dt time.Duration) (Source, float64, bool) {
	src := m.cfg.BoxSource
	if (src == BoxAuto || src == BoxRAPL) && prev.rapl != nil && cur.rapl != nil {
		j, err := raplJoules(m.rapl, prev.rapl, cur.rapl)
		if err == nil {
			m.clearWarn("rapl interval")
			return Source{Kind: SourceRAPL}, j, true
		}
		m.warnOnce("rapl interval", "energy: RAPL interval skipped, using the next source", "err", err)
	}
	if (src == BoxAuto || src == BoxBattery) && supplyOK {
		return Source{Kind: SourceBattery}, supply.Watts * dt.Seconds(), true
	}
	if (src == BoxAuto || src == BoxModel) && prev.cpuOK && cur.cpuOK {
		if u, ok := utilisation(prev.cpu, cur.cpu); ok {
			p := m.Profile()
			return Source{Kind: SourceModel, Detail: p.Name, Of: p.Label}, modelWatts(p, u) * dt.Seconds(), true
		}
	}
	return Source{}, 0, false
}

func (m *Meter) plugIDs() []string {
	ids := make([]string, 0, len(m.plugs))
	for id := range m.plugs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// readPlugs reads every plug at once (a dead plug costs its timeout, not
// the sum of all timeouts).
func (m *Meter) readPlugs(ctx context.Context, cur *sampleState) {
	if len(m.plugs) == 0 {
		return
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, p := range m.plugs {
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, m.cfg.PlugTimeout)
			defer cancel()
			r, err := ReadPlug(rctx, m.http, p)
			mu.Lock()
			defer mu.Unlock()
			cur.plugs[id] = plugState{r: r, ok: err == nil}
			if err != nil {
				m.warnOnce("plug "+id, "energy: read smart plug", "device", id, "url", p.URL, "err", err)
			} else {
				m.clearWarn("plug " + id)
			}
		})
	}
	wg.Wait()
}

// plugEnergy is a plug's energy over an interval, in Wh.
func plugEnergy(prev, cur plugState, dt time.Duration) (float64, bool) {
	if !prev.ok || !cur.ok {
		return 0, false
	}
	if prev.r.HasTotal && cur.r.HasTotal && cur.r.TotalWh >= prev.r.TotalWh {
		return cur.r.TotalWh - prev.r.TotalWh, true
	}
	// No counter, or it went back (the plug restarted).
	return cur.r.Watts * dt.Hours(), true
}

// write runs fn in a transaction.
func (m *Meter) write(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// hourOf is the start of t's UTC-aligned hour, in unix seconds.
func hourOf(t time.Time) int64 {
	u := t.Unix()
	r := u % 3600
	if r < 0 {
		r += 3600
	}
	return u - r
}

// eachHour calls fn with every hour overlapping [from, to) and the
// seconds of the overlap.
func eachHour(from, to time.Time, fn func(hour int64, secs float64) error) error {
	for t := from; t.Before(to); {
		h := hourOf(t)
		end := time.Unix(h+3600, 0)
		if to.Before(end) {
			end = to
		}
		if err := fn(h, end.Sub(t).Seconds()); err != nil {
			return err
		}
		t = end
	}
	return nil
}

func addBoxHours(ctx context.Context, tx *sql.Tx, src Source, from, to time.Time, joules float64) error {
	total := to.Sub(from).Seconds()
	return eachHour(from, to, func(h int64, secs float64) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO energy_box_hours(hour, source, detail, joules, seconds)
VALUES(?, ?, ?, ?, ?)
ON CONFLICT(hour, source, detail) DO UPDATE SET joules = joules + excluded.joules, seconds = seconds + excluded.seconds`,
			h, string(src.Kind), src.Detail, joules*secs/total, secs)
		if err != nil {
			return errf("record box energy", err)
		}
		return nil
	})
}

func addPlugHours(ctx context.Context, tx *sql.Tx, device string, kind SourceKind, from, to time.Time, wh float64) error {
	total := to.Sub(from).Seconds()
	return eachHour(from, to, func(h int64, secs float64) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO energy_plug_hours(device, hour, source, wh, seconds)
VALUES(?, ?, ?, ?, ?)
ON CONFLICT(device, hour) DO UPDATE SET wh = wh + excluded.wh, seconds = seconds + excluded.seconds, source = excluded.source`,
			device, h, string(kind), wh*secs/total, secs)
		if err != nil {
			return errf("record plug energy", err)
		}
		return nil
	})
}
