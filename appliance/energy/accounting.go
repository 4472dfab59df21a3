package energy

import (
	"context"
	"sort"
	"time"
)

// LAN devices are estimated from their class profile × their presence
// (hour by hour, from the inventory's presence timeline), except where a
// smart plug measured them: in an hour the plug covered, its measure
// replaces the estimate; in the part of an hour it did not cover, the
// estimate stands for that part. The class used is the device's current
// class, also for past days.

// classOf returns the profile of class c (the unknown profile when c is
// not in the table).
func (m *Meter) classOf(c Class) ClassProfile {
	if p, ok := m.classes[c]; ok {
		return p
	}
	return m.classes[ClassUnknown]
}

// devHours is one device's presence and plug measures by hour.
type devHours struct {
	dev     Device // Class normalised to a class of the table
	present map[int64]float64
	plugWh  map[int64]float64
	plugSec map[int64]float64
	plugSrc Source
}

// clipMerge bounds intervals to [from, to), closes open ones at now,
// sorts and merges them.
func clipMerge(ivs []Interval, from, to, now time.Time) []Interval {
	if now.Before(to) {
		to = now
	}
	out := make([]Interval, 0, len(ivs))
	for _, iv := range ivs {
		end := iv.To
		if end.IsZero() || end.After(now) {
			end = now
		}
		s, e := iv.From, end
		if s.Before(from) {
			s = from
		}
		if e.After(to) {
			e = to
		}
		if s.Before(e) {
			out = append(out, Interval{s, e})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From.Before(out[j].From) })
	merged := out[:0]
	for _, iv := range out {
		if n := len(merged); n > 0 && !iv.From.After(merged[n-1].To) {
			if iv.To.After(merged[n-1].To) {
				merged[n-1].To = iv.To
			}
			continue
		}
		merged = append(merged, iv)
	}
	return merged
}

// deviceHours gathers every device's presence and plug measures over
// [from, to), as of now.
func (m *Meter) deviceHours(ctx context.Context, from, to, now time.Time) (map[string]*devHours, error) {
	devs, err := m.presence.Devices(ctx)
	if err != nil {
		return nil, errf("list devices", err)
	}
	ivs, err := m.presence.Intervals(ctx, from, to)
	if err != nil {
		return nil, errf("read presence", err)
	}
	out := map[string]*devHours{}
	get := func(d Device) *devHours {
		h := out[d.ID]
		if h == nil {
			d.Class = m.classOf(d.Class).Class
			if d.Name == "" {
				d.Name = d.ID
			}
			h = &devHours{dev: d, present: map[int64]float64{}, plugWh: map[int64]float64{}, plugSec: map[int64]float64{}}
			out[d.ID] = h
		}
		return h
	}
	known := map[string]Device{}
	for _, d := range devs {
		known[d.ID] = d
	}
	for _, p := range m.plugs {
		if _, ok := known[p.Device]; !ok {
			known[p.Device] = Device{ID: p.Device, Name: p.Name, Class: p.Class}
		}
	}
	for id, list := range ivs {
		d, ok := known[id]
		if !ok {
			d = Device{ID: id, Class: ClassUnknown}
		}
		h := get(d)
		for _, iv := range clipMerge(list, from, to, now) {
			eachHour(iv.From, iv.To, func(hr int64, secs float64) error {
				h.present[hr] += secs
				return nil
			})
		}
	}
	if len(m.plugs) > 0 {
		rows, err := m.db.QueryContext(ctx, `SELECT device, hour, source, wh, seconds FROM energy_plug_hours
WHERE hour >= ? AND hour < ?`, hourOf(from), to.Unix())
		if err != nil {
			return nil, errf("read plug energy", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, src string
			var hr int64
			var wh, secs float64
			if err := rows.Scan(&id, &hr, &src, &wh, &secs); err != nil {
				return nil, errf("read plug energy", err)
			}
			frac := hourFraction(hr, from, to)
			if frac <= 0 {
				continue
			}
			d, ok := known[id]
			if !ok {
				d = Device{ID: id, Class: ClassUnknown}
			}
			h := get(d)
			h.plugWh[hr] += wh * frac
			h.plugSec[hr] += secs * frac
			h.plugSrc = Source{Kind: SourceKind(src)}
		}
		if err := rows.Err(); err != nil {
			return nil, errf("read plug energy", err)
		}
	}
	return out, nil
}

// hourFraction is the share of hour hr inside [from, to).
func hourFraction(hr int64, from, to time.Time) float64 {
	s, e := time.Unix(hr, 0), time.Unix(hr+3600, 0)
	if s.Before(from) {
		s = from
	}
	if e.After(to) {
		e = to
	}
	if !s.Before(e) {
		return 0
	}
	return e.Sub(s).Seconds() / 3600
}

// energyAt is the device's kWh in hour hr and the source of the figure.
func (m *Meter) energyAt(h *devHours, hr int64) (float64, Source) {
	var kwh float64
	var src Source
	if wh := h.plugWh[hr]; h.plugSec[hr] > 0 {
		kwh += wh / 1000
		src = h.plugSrc
	}
	if secs := h.present[hr]; secs > 0 {
		uncovered := 1 - min(h.plugSec[hr], 3600)/3600
		if uncovered > 0 {
			p := m.classOf(h.dev.Class)
			kwh += p.Watts * secs * uncovered / 3.6e6
			src = combine(src, Source{Kind: SourceClass, Detail: string(p.Class), Of: classLabels[p.Class]})
		}
	}
	return kwh, src
}

// deviceTotals sums each device's energy over hours accepted by keep.
type devTotal struct {
	kwh     float64
	present float64
	src     Source
}

func (m *Meter) deviceTotal(h *devHours, keep func(hr int64) bool) devTotal {
	var t devTotal
	seen := map[int64]bool{}
	add := func(hr int64) {
		if seen[hr] || !keep(hr) {
			return
		}
		seen[hr] = true
		k, s := m.energyAt(h, hr)
		t.kwh += k
		t.present += h.present[hr]
		t.src = combine(t.src, s)
	}
	for hr := range h.present {
		add(hr)
	}
	for hr := range h.plugWh {
		add(hr)
	}
	return t
}

// boxSum is the box's energy over a range.
type boxSum struct {
	joules  float64
	covered float64 // seconds
	src     Source
}

// boxHours sums the box's recorded hours over [from, to), by local day
// when byDay is set (else under the zero Date).
func (m *Meter) boxHours(ctx context.Context, from, to time.Time, byDay bool) (map[Date]*boxSum, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT hour, source, detail, joules, seconds FROM energy_box_hours
WHERE hour >= ? AND hour < ?`, hourOf(from), to.Unix())
	if err != nil {
		return nil, errf("read box energy", err)
	}
	defer rows.Close()
	out := map[Date]*boxSum{}
	for rows.Next() {
		var hr int64
		var kind, detail string
		var j, secs float64
		if err := rows.Scan(&hr, &kind, &detail, &j, &secs); err != nil {
			return nil, errf("read box energy", err)
		}
		frac := hourFraction(hr, from, to)
		if frac <= 0 {
			continue
		}
		var key Date
		if byDay {
			key = DateOf(time.Unix(hr, 0).In(m.cal.loc))
		}
		s := out[key]
		if s == nil {
			s = &boxSum{}
			out[key] = s
		}
		s.joules += j * frac
		s.covered += secs * frac
		s.src = combine(s.src, m.boxSource(SourceKind(kind), detail))
	}
	return out, rows.Err()
}

// boxSource rebuilds a stored box source with its label.
func (m *Meter) boxSource(kind SourceKind, detail string) Source {
	s := Source{Kind: kind, Detail: detail}
	if kind == SourceModel {
		for _, p := range m.cfg.Profiles {
			if p.Name == detail {
				s.Of = p.Label
			}
		}
	}
	return s
}

// missing is the time of [from, min(to, now)) not covered by samples.
// While the range is still running, the time since the last sample is
// not yet accounted, which is not a gap as long as it is shorter than
// MaxGap.
func (m *Meter) missing(from, to, now time.Time, covered float64) time.Duration {
	var tail time.Duration
	if now.Before(to) {
		to = now
		m.mu.Lock()
		last := m.current.At
		m.mu.Unlock()
		if d := now.Sub(last); !last.IsZero() && !last.Before(from) && d >= 0 && d <= m.cfg.MaxGap {
			tail = d
		}
	}
	if !from.Before(to) {
		return 0
	}
	d := to.Sub(from) - time.Duration(covered*float64(time.Second)) - tail
	if d < time.Second { // float residue of many small intervals
		return 0
	}
	return d.Round(time.Second)
}
