package energy

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Calendar is the school's timetable as the technician sets it: opening
// hours per weekday, holidays (entered by hand: no network lookup) and
// extra closed days, in a time zone. Everything outside opening hours —
// nights, weekends, holidays, closed days — is "out of hours".
type Calendar struct {
	// Timezone of the school. Default "Europe/Paris".
	Timezone string
	// Hours per weekday. nil means the default week: Monday, Tuesday,
	// Thursday and Friday 08:00–17:00, Wednesday 08:00–12:00. In a set
	// map, a missing weekday (or an empty list) is a closed day.
	Hours map[time.Weekday][]Span
	// Holidays are closed date ranges, both ends included.
	Holidays []DateRange
	// Closed are extra closed days (bridge days, a strike, a training
	// day).
	Closed []Date
}

// Clock is a time of day in minutes after midnight, 0 to 1440.
type Clock int

// Span is a stretch of a day, Start included, End excluded.
type Span struct{ Start, End Clock }

// Date is a calendar day.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateRange is a range of days, both ends included.
type DateRange struct{ First, Last Date }

// DefaultHours is the default school week.
func DefaultHours() map[time.Weekday][]Span {
	day := []Span{{8 * 60, 17 * 60}}
	return map[time.Weekday][]Span{
		time.Monday:    day,
		time.Tuesday:   day,
		time.Wednesday: {{8 * 60, 12 * 60}},
		time.Thursday:  day,
		time.Friday:    day,
	}
}

// WithDefaults fills the zero fields.
func (c Calendar) WithDefaults() Calendar {
	if c.Timezone == "" {
		c.Timezone = DefaultTimezone
	}
	if c.Hours == nil {
		c.Hours = DefaultHours()
	}
	return c
}

// Validate checks the calendar (time zone loading is New's job).
func (c Calendar) Validate() error {
	for wd, spans := range c.Hours {
		if wd < time.Sunday || wd > time.Saturday {
			return fmt.Errorf("energy: Calendar.Hours: weekday %d out of range", wd)
		}
		for _, s := range spans {
			if s.Start < 0 || s.End > 24*60 || s.Start >= s.End {
				return fmt.Errorf("energy: Calendar.Hours[%s]: span %s: want a start before the end, within the day", wd, s)
			}
		}
	}
	for _, r := range c.Holidays {
		if !r.First.valid() || !r.Last.valid() {
			return fmt.Errorf("energy: Calendar.Holidays: %s: invalid date", r)
		}
		if r.Last.before(r.First) {
			return fmt.Errorf("energy: Calendar.Holidays: %s: the last day is before the first", r)
		}
	}
	for _, d := range c.Closed {
		if !d.valid() {
			return fmt.Errorf("energy: Calendar.Closed: %s: invalid date", d)
		}
	}
	return nil
}

func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }
func (s Span) String() string  { return s.Start.String() + "-" + s.End.String() }
func (d Date) String() string  { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }
func (r DateRange) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + ".." + r.Last.String()
}

func (d Date) valid() bool {
	if d.Year < 1900 || d.Year > 9999 || d.Month < 1 || d.Month > 12 || d.Day < 1 {
		return false
	}
	t := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC)
	return t.Day() == d.Day
}

func (d Date) before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// DateOf is the date of t in its location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// ParseClock parses "8:00", "08:00" or "17:30"; "24:00" is the end of the
// day.
func ParseClock(s string) (Clock, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return 0, fmt.Errorf("time of day %q: want HH:MM", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || hh == 24 && mm != 0 {
		return 0, fmt.Errorf("time of day %q: want HH:MM", s)
	}
	return Clock(hh*60 + mm), nil
}

// ParseSpans parses "08:00-12:00, 13:30-17:00"; an empty string or "-"
// is a closed day.
func ParseSpans(s string) ([]Span, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "-" {
		return []Span{}, nil
	}
	var out []Span
	for part := range strings.SplitSeq(s, ",") {
		a, b, ok := strings.Cut(part, "-")
		if !ok {
			return nil, fmt.Errorf("hours %q: want HH:MM-HH:MM", part)
		}
		start, err := ParseClock(a)
		if err != nil {
			return nil, err
		}
		end, err := ParseClock(b)
		if err != nil {
			return nil, err
		}
		if start >= end {
			return nil, fmt.Errorf("hours %q: the start is not before the end", strings.TrimSpace(part))
		}
		out = append(out, Span{start, end})
	}
	return out, nil
}

// ParseDate parses "2025-12-20".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
	if err != nil {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// ParseDateRange parses "2025-12-20..2026-01-04" or a single date.
func ParseDateRange(s string) (DateRange, error) {
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		b = a
	}
	first, err := ParseDate(a)
	if err != nil {
		return DateRange{}, err
	}
	last, err := ParseDate(b)
	if err != nil {
		return DateRange{}, err
	}
	if last.before(first) {
		return DateRange{}, fmt.Errorf("dates %q: the last day is before the first", s)
	}
	return DateRange{first, last}, nil
}

// calendar is a compiled Calendar.
type calendar struct {
	loc    *time.Location
	hours  map[time.Weekday][]Span
	closed map[Date]bool
	ranges []DateRange
}

func compileCalendar(c Calendar) (*calendar, error) {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return nil, fmt.Errorf("energy: Calendar.Timezone %q: %v (is the tzdata package installed?)", c.Timezone, err)
	}
	k := &calendar{loc: loc, hours: map[time.Weekday][]Span{}, closed: map[Date]bool{}, ranges: c.Holidays}
	for wd, spans := range c.Hours {
		s := slices.Clone(spans)
		sort.Slice(s, func(i, j int) bool { return s[i].Start < s[j].Start })
		k.hours[wd] = s
	}
	for _, d := range c.Closed {
		k.closed[d] = true
	}
	return k, nil
}

// isOpenDay tells whether the school opens on d at all.
func (c *calendar) isOpenDay(d Date) bool {
	if c.closed[d] {
		return false
	}
	for _, r := range c.ranges {
		if !d.before(r.First) && !r.Last.before(d) {
			return false
		}
	}
	return true
}

// schoolHours returns the opening intervals of day d, merged.
func (c *calendar) schoolHours(d Date) []Interval {
	if !c.isOpenDay(d) {
		return nil
	}
	day := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, c.loc)
	var out []Interval
	for _, s := range c.hours[day.Weekday()] {
		iv := Interval{c.at(d, s.Start), c.at(d, s.End)}
		if n := len(out); n > 0 && !iv.From.After(out[n-1].To) {
			if iv.To.After(out[n-1].To) {
				out[n-1].To = iv.To
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// at is the instant of clock k on day d; 24:00 is the next midnight.
func (c *calendar) at(d Date, k Clock) time.Time {
	return time.Date(d.Year, d.Month, d.Day, int(k)/60, int(k)%60, 0, 0, c.loc)
}

// addDays moves d by n days.
func addDays(d Date, n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC))
}

// Period is one out-of-hours period: from the end of opening hours to
// their next start. A weekend or a holiday, with the nights around it, is
// a single period.
type Period struct{ Start, End time.Time }

// searchDays bounds how far the calendar looks for opening hours around a
// period; beyond, a closure has no known bound.
const searchDays = 400

var (
	unboundedStart = time.Unix(0, 0).UTC()
	unboundedEnd   = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// periods returns the out-of-hours periods that overlap [from, to), whole
// (they may start before from and end after to).
func (c *calendar) periods(from, to time.Time) []Period {
	if !from.Before(to) {
		return nil
	}
	first, last := DateOf(from.In(c.loc)), DateOf(to.In(c.loc))
	var open []Interval
	// One day before from and after to, then further until opening hours
	// bound the range on each side.
	for d := addDays(first, -1); !last.before(addDays(d, -1)); d = addDays(d, 1) {
		open = append(open, c.schoolHours(d)...)
	}
	// Further back until an opening ends at or before from, further on
	// until one starts at or after to: the periods at both ends are then
	// whole.
	for d, n := addDays(first, -2), 0; n < searchDays && (len(open) == 0 || open[0].To.After(from)); d, n = addDays(d, -1), n+1 {
		open = append(c.schoolHours(d), open...)
	}
	for d, n := addDays(last, 2), 0; n < searchDays && (len(open) == 0 || open[len(open)-1].From.Before(to)); d, n = addDays(d, 1), n+1 {
		open = append(open, c.schoolHours(d)...)
	}
	// Where no opening was found within searchDays, the period has no
	// known bound: fixed sentinels keep its identity (its start) stable
	// from one call to the next.
	lower, upper := unboundedStart, unboundedEnd
	var out []Period
	prev := lower
	add := func(s, e time.Time) {
		if s.Before(e) && s.Before(to) && e.After(from) {
			out = append(out, Period{s, e})
		}
	}
	for _, iv := range open {
		add(prev, iv.From)
		if iv.To.After(prev) {
			prev = iv.To
		}
	}
	add(prev, upper)
	return out
}
