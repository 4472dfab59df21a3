package energy

import (
	"context"
	"slices"
	"sort"
	"time"
)

// The views are data for the console (which renders them) and the CLI.
// Every amount carries its Source; Missing is time without any sample of
// the box ("pas de mesure"), never filled in.

// Amount is energy over a range.
type Amount struct {
	KWh     float64
	Source  Source
	Missing time.Duration // box only: time not covered by samples
}

// Totals are the box and the LAN devices over [From, To).
type Totals struct {
	From, To time.Time
	Box      Amount
	Devices  Amount
	TotalKWh float64
}

// TodayView is the dashboard's energy block.
type TodayView struct {
	At        time.Time
	BoxWatts  float64 // over the last sampled interval
	BoxSource Source  // zero (pas de mesure) before the first interval
	Today     Totals  // since midnight
	// LastWeekSameTime is the same weekday last week, from midnight to
	// the same time of day: what Today compares with.
	LastWeekSameTime Totals
	LastWeekDay      Totals // that whole day
	// ChangePercent is Today against LastWeekSameTime; HasChange is false
	// when last week has nothing to compare with.
	ChangePercent float64
	HasChange     bool
}

// DeviceEnergy is one device over a day.
type DeviceEnergy struct {
	ID, Name string
	Class    Class
	KWh      float64
	Present  time.Duration
	Source   Source
}

// DayView is one day of the week view.
type DayView struct {
	Date       Date
	Start, End time.Time
	Future     bool              // the day has not begun
	ByClass    map[Class]float64 // kWh; ClassBox is the box
	TotalKWh   float64
	BoxSource  Source
	BoxMissing time.Duration
	Devices    []DeviceEnergy // by decreasing kWh
}

// ClassWeek is one class over the week and the week before.
type ClassWeek struct {
	Class         Class
	KWh           float64
	PreviousKWh   float64
	ChangePercent float64
	HasChange     bool
	Source        Source
}

// WeekView is seven days × classes, with the previous week to compare.
type WeekView struct {
	From, To time.Time // local midnights
	// PreviousFrom, PreviousTo: the week before, cut at the same point
	// when this week is still running.
	PreviousFrom, PreviousTo time.Time
	Days                     []DayView
	Classes                  []ClassWeek
	TotalKWh, PreviousKWh    float64
	ChangePercent            float64
	HasChange                bool
	CO2eKg, PreviousCO2eKg   float64
	Electricity              ElectricityFactor
	BoxSource                Source
	BoxMissing               time.Duration
	PreviousBoxMissing       time.Duration
}

// midnight is the start of t's local day; days(n) moves by calendar days.
func (m *Meter) midnight(t time.Time, days int) time.Time {
	l := t.In(m.cal.loc)
	return time.Date(l.Year(), l.Month(), l.Day()+days, 0, 0, 0, 0, m.cal.loc)
}

// weekAgo is the same wall-clock time seven days before.
func (m *Meter) weekAgo(t time.Time) time.Time {
	l := t.In(m.cal.loc)
	return time.Date(l.Year(), l.Month(), l.Day()-7, l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), m.cal.loc)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func change(cur, prev float64) (float64, bool) {
	if prev <= 0 {
		return 0, false
	}
	return (cur - prev) / prev * 100, true
}

// totals sums the box and the devices over [from, to).
func (m *Meter) totals(ctx context.Context, from, to, now time.Time) (Totals, error) {
	t := Totals{From: from, To: to}
	box, err := m.boxHours(ctx, from, minTime(to, now), false)
	if err != nil {
		return t, err
	}
	var b boxSum
	if s := box[Date{}]; s != nil {
		b = *s
	}
	t.Box = Amount{KWh: b.joules / 3.6e6, Source: b.src, Missing: m.missing(from, to, now, b.covered)}
	devs, err := m.deviceHours(ctx, from, to, now)
	if err != nil {
		return t, err
	}
	for _, h := range devs {
		d := m.deviceTotal(h, func(int64) bool { return true })
		t.Devices.KWh += d.kwh
		t.Devices.Source = combine(t.Devices.Source, d.src)
	}
	t.TotalKWh = t.Box.KWh + t.Devices.KWh
	return t, nil
}

// Today is the energy of the day so far against the same weekday last
// week.
func (m *Meter) Today(ctx context.Context) (TodayView, error) {
	now := m.now()
	v := TodayView{At: now.In(m.cal.loc)}
	m.mu.Lock()
	cur := m.current
	m.mu.Unlock()
	if !cur.At.IsZero() && now.Sub(cur.At) <= m.cfg.MaxGap {
		v.BoxWatts, v.BoxSource = cur.Watts, cur.Source
	}
	start := m.midnight(now, 0)
	var err error
	if v.Today, err = m.totals(ctx, start, m.midnight(now, 1), now); err != nil {
		return v, err
	}
	lwStart := m.midnight(now, -7)
	if v.LastWeekSameTime, err = m.totals(ctx, lwStart, m.weekAgo(now), now); err != nil {
		return v, err
	}
	if v.LastWeekDay, err = m.totals(ctx, lwStart, m.midnight(now, -6), now); err != nil {
		return v, err
	}
	v.ChangePercent, v.HasChange = change(v.Today.TotalKWh, v.LastWeekSameTime.TotalKWh)
	return v, nil
}

// Week returns the seven days ending with end's day, by class and device,
// and the week before; CO₂e with the configured electricity factor.
func (m *Meter) Week(ctx context.Context, end time.Time) (WeekView, error) {
	now := m.now()
	v := WeekView{
		From:        m.midnight(end, -6),
		To:          m.midnight(end, 1),
		Electricity: m.cfg.Electricity,
	}
	v.PreviousFrom = m.midnight(end, -13)
	v.PreviousTo = v.From
	if now.Before(v.To) {
		v.PreviousTo = m.weekAgo(now)
		if v.PreviousTo.Before(v.PreviousFrom) {
			v.PreviousTo = v.PreviousFrom
		}
	}
	box, err := m.boxHours(ctx, v.From, minTime(v.To, now), true)
	if err != nil {
		return v, err
	}
	devs, err := m.deviceHours(ctx, v.From, v.To, now)
	if err != nil {
		return v, err
	}
	prev, err := m.totalsByClass(ctx, v.PreviousFrom, v.PreviousTo, now)
	if err != nil {
		return v, err
	}
	v.PreviousBoxMissing = prev.boxMissing
	cur := map[Class]*ClassWeek{}
	getClass := func(c Class) *ClassWeek {
		if cur[c] == nil {
			cur[c] = &ClassWeek{Class: c}
		}
		return cur[c]
	}
	getClass(ClassBox)
	for i := range 7 {
		ds := m.midnight(end, i-6)
		de := m.midnight(end, i-5)
		day := DayView{Date: DateOf(ds), Start: ds, End: de, Future: !ds.Before(now), ByClass: map[Class]float64{}}
		if b := box[day.Date]; b != nil {
			day.ByClass[ClassBox] = b.joules / 3.6e6
			day.BoxSource = b.src
			day.BoxMissing = m.missing(ds, de, now, b.covered)
		} else {
			day.BoxMissing = m.missing(ds, de, now, 0)
		}
		cb := getClass(ClassBox)
		cb.KWh += day.ByClass[ClassBox]
		cb.Source = combine(cb.Source, day.BoxSource)
		v.BoxSource = combine(v.BoxSource, day.BoxSource)
		v.BoxMissing += day.BoxMissing
		inDay := func(hr int64) bool { return DateOf(time.Unix(hr, 0).In(m.cal.loc)) == day.Date }
		for _, h := range devs {
			t := m.deviceTotal(h, inDay)
			if t.kwh == 0 && t.present == 0 {
				continue
			}
			day.Devices = append(day.Devices, DeviceEnergy{
				ID: h.dev.ID, Name: h.dev.Name, Class: h.dev.Class,
				KWh: t.kwh, Present: time.Duration(t.present * float64(time.Second)).Round(time.Second), Source: t.src,
			})
			day.ByClass[h.dev.Class] += t.kwh
			c := getClass(h.dev.Class)
			c.KWh += t.kwh
			c.Source = combine(c.Source, t.src)
		}
		sort.Slice(day.Devices, func(a, b int) bool {
			if day.Devices[a].KWh != day.Devices[b].KWh {
				return day.Devices[a].KWh > day.Devices[b].KWh
			}
			return day.Devices[a].ID < day.Devices[b].ID
		})
		for _, k := range day.ByClass {
			day.TotalKWh += k
		}
		v.Days = append(v.Days, day)
	}
	for c, k := range prev.byClass {
		getClass(c).PreviousKWh = k
	}
	for _, c := range orderedClasses(cur) {
		cw := *cur[c]
		cw.ChangePercent, cw.HasChange = change(cw.KWh, cw.PreviousKWh)
		v.Classes = append(v.Classes, cw)
		v.TotalKWh += cw.KWh
		v.PreviousKWh += cw.PreviousKWh
	}
	v.ChangePercent, v.HasChange = change(v.TotalKWh, v.PreviousKWh)
	v.CO2eKg = v.TotalKWh * v.Electricity.KgCO2ePerKWh
	v.PreviousCO2eKg = v.PreviousKWh * v.Electricity.KgCO2ePerKWh
	return v, nil
}

type classTotals struct {
	byClass    map[Class]float64
	boxMissing time.Duration
}

// totalsByClass sums [from, to) by class (ClassBox for the box).
func (m *Meter) totalsByClass(ctx context.Context, from, to, now time.Time) (classTotals, error) {
	out := classTotals{byClass: map[Class]float64{}}
	if !from.Before(to) {
		return out, nil
	}
	box, err := m.boxHours(ctx, from, minTime(to, now), false)
	if err != nil {
		return out, err
	}
	var covered float64
	if b := box[Date{}]; b != nil {
		out.byClass[ClassBox] = b.joules / 3.6e6
		covered = b.covered
	}
	out.boxMissing = m.missing(from, to, now, covered)
	devs, err := m.deviceHours(ctx, from, to, now)
	if err != nil {
		return out, err
	}
	for _, h := range devs {
		out.byClass[h.dev.Class] += m.deviceTotal(h, func(int64) bool { return true }).kwh
	}
	return out, nil
}

// orderedClasses lists the classes of set in ClassOrder, then the others
// by name.
func orderedClasses[T any](set map[Class]T) []Class {
	var out []Class
	order := ClassOrder()
	for _, c := range order {
		if _, ok := set[c]; ok {
			out = append(out, c)
		}
	}
	var rest []Class
	for c := range set {
		if !slices.Contains(order, c) {
			rest = append(rest, c)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// ClassFootprint is the manufacturing footprint of one class's devices.
type ClassFootprint struct {
	Class       Class
	Devices     int     // seen on the LAN in the last 30 days (or plugged)
	KgPerDevice float64 // kgCO₂e to make and deliver one device
	LifeYears   float64
	KgPerYear   float64 // Devices × KgPerDevice / LifeYears
	Known       bool    // false: no figure, not in the totals
	Source      string
}

// FootprintView compares the devices' manufacturing footprint, amortised
// over their life, with the CO₂e of the electricity used.
type FootprintView struct {
	At      time.Time
	Classes []ClassFootprint
	// ManufacturingKgPerYear sums the known classes.
	ManufacturingKgPerYear float64
	// ManufacturingKgPer7Days is the same, for one week.
	ManufacturingKgPer7Days float64
	// Unknown are the classes with devices but no manufacturing figure.
	Unknown []Class
	// UseKWhLast7Days and UseKgLast7Days are the box and the devices over
	// the last seven days, with Electricity.
	UseKWhLast7Days float64
	UseKgLast7Days  float64
	Electricity     ElectricityFactor
	Note            Text
}

// FootprintNote says what the manufacturing figures are.
func FootprintNote() Text {
	return Text{
		"Fabrication : moyennes par type d'appareil de l'étude ADEME–Arcep (2022), amorties sur la durée d'usage ; pas les chiffres de vos modèles. Usage : kWh mesurés ou estimés × facteur de l'électricité indiqué.",
		"Manufacturing: averages per kind of device from the ADEME–Arcep study (2022), amortised over the years of use; not your models' figures. Use: measured or estimated kWh × the electricity factor shown.",
	}
}

// Footprint returns the footprint view.
func (m *Meter) Footprint(ctx context.Context) (FootprintView, error) {
	now := m.now()
	v := FootprintView{At: now.In(m.cal.loc), Electricity: m.cfg.Electricity, Note: FootprintNote()}
	devs, err := m.deviceMap(ctx)
	if err != nil {
		return v, err
	}
	ivs, err := m.presence.Intervals(ctx, now.Add(-30*24*time.Hour), now)
	if err != nil {
		return v, errf("read presence", err)
	}
	count := map[Class]int{}
	seen := map[string]bool{}
	add := func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		d, ok := devs[id]
		if !ok {
			d.Class = ClassUnknown
		}
		count[m.classOf(d.Class).Class]++
	}
	for id, list := range ivs {
		if len(list) > 0 {
			add(id)
		}
	}
	for id := range m.plugs {
		add(id)
	}
	for _, c := range orderedClasses(count) {
		p := m.classOf(c)
		f := ClassFootprint{Class: c, Devices: count[c], KgPerDevice: p.ManufacturingKgCO2e,
			LifeYears: p.LifeYears, Source: p.ManufacturingSource}
		if p.ManufacturingKgCO2e > 0 && p.LifeYears > 0 {
			f.Known = true
			f.KgPerYear = float64(f.Devices) * p.ManufacturingKgCO2e / p.LifeYears
			v.ManufacturingKgPerYear += f.KgPerYear
		} else {
			v.Unknown = append(v.Unknown, c)
		}
		v.Classes = append(v.Classes, f)
	}
	v.ManufacturingKgPer7Days = v.ManufacturingKgPerYear * 7 / 365.25
	t, err := m.totals(ctx, now.Add(-7*24*time.Hour), now, now)
	if err != nil {
		return v, err
	}
	v.UseKWhLast7Days = t.TotalKWh
	v.UseKgLast7Days = t.TotalKWh * m.cfg.Electricity.KgCO2ePerKWh
	return v, nil
}
