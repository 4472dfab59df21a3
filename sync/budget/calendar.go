package budget

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Weekdays is a set of days of the week: bit d is time.Weekday(d).
type Weekdays uint8

// Days of the week as sets, to combine with |.
const (
	Sunday Weekdays = 1 << iota
	Monday
	Tuesday
	Wednesday
	Thursday
	Friday
	Saturday
	EveryDay = 1<<7 - 1
)

// Has reports whether d is in the set.
func (w Weekdays) Has(d time.Weekday) bool { return w&(1<<d) != 0 }

// Span is a weekly range of local wall-clock time: on each of Days, from
// From to To after midnight. When To <= From the range runs past midnight
// into the next day ("17:30-08:00"). Times are whole minutes; To may be
// 24h (the end of the day).
type Span struct {
	Days     Weekdays
	From, To time.Duration
}

// contains reports whether the wall-clock time (weekday, offset from
// midnight) falls in the span.
func (s Span) contains(d time.Weekday, t time.Duration) bool {
	if s.From < s.To {
		return s.Days.Has(d) && s.From <= t && t < s.To
	}
	return s.Days.Has(d) && t >= s.From || s.Days.Has((d+6)%7) && t < s.To
}

func (s Span) validate() error {
	switch {
	case s.Days == 0 || s.Days > EveryDay:
		return configErr("days", "aucun jour ou jour inconnu", "no day or an unknown day")
	case s.From < 0 || s.From >= 24*time.Hour || s.To <= 0 || s.To > 24*time.Hour:
		return configErr("times", "heure hors de 00:00–24:00", "time outside 00:00–24:00")
	case s.From%time.Minute != 0 || s.To%time.Minute != 0:
		return configErr("times", "heure à la minute près attendue", "times must be whole minutes")
	case s.From == s.To:
		return configErr("times", "début et fin identiques", "start and end are the same")
	}
	return nil
}

var dayNames = [7][2]string{{"sun", "sunday"}, {"mon", "monday"}, {"tue", "tuesday"}, {"wed", "wednesday"},
	{"thu", "thursday"}, {"fri", "friday"}, {"sat", "saturday"}}
var jourNames = [7][2]string{{"dim", "dimanche"}, {"lun", "lundi"}, {"mar", "mardi"}, {"mer", "mercredi"},
	{"jeu", "jeudi"}, {"ven", "vendredi"}, {"sam", "samedi"}}

func parseDay(s string) (time.Weekday, bool) {
	for d := range 7 {
		for _, n := range [][2]string{dayNames[d], jourNames[d]} {
			if s == n[0] || s == n[1] {
				return time.Weekday(d), true
			}
		}
	}
	return 0, false
}

// ParseSpan reads a weekly range: optional days, then an optional time
// range. Days are English or French names or their three-letter forms,
// separated by commas, with "a-b" for a run of days (wrapping past Sunday
// is allowed: "fri-mon"). No days means every day; no times means the
// whole day. Examples: "mon-fri 08:00-17:30", "lun,mar,jeu,ven 08:00-17:30",
// "sat,sun", "17:30-08:00".
func ParseSpan(text string) (Span, error) {
	fail := func(fr, en string) (Span, error) {
		return Span{}, configErr("time range",
			fmt.Sprintf("« %s » : %s ; attendu par ex. « lun-ven 08:00-17:30 » ou « sam,dim »", shown(text), fr),
			fmt.Sprintf("%q: %s; expected e.g. \"mon-fri 08:00-17:30\" or \"sat,sun\"", shown(text), en))
	}
	fields := strings.Fields(strings.ToLower(text))
	if len(fields) == 0 || len(fields) > 2 {
		return fail("forme inconnue", "unknown form")
	}
	sp := Span{Days: EveryDay, From: 0, To: 24 * time.Hour}
	if !strings.Contains(fields[len(fields)-1], ":") {
		if len(fields) == 2 {
			return fail("heures illisibles", "unreadable times")
		}
	} else {
		from, to, ok := strings.Cut(fields[len(fields)-1], "-")
		f, okf := parseClock(from)
		e, oke := parseClock(to)
		if !ok || !okf || !oke {
			return fail("heures illisibles (HH:MM-HH:MM)", "unreadable times (HH:MM-HH:MM)")
		}
		if e == 0 {
			e = 24 * time.Hour // "22:00-00:00" ends at midnight
		}
		sp.From, sp.To = f, e
		fields = fields[:len(fields)-1]
	}
	if len(fields) == 1 {
		sp.Days = 0
		for part := range strings.SplitSeq(fields[0], ",") {
			a, b, isRange := strings.Cut(part, "-")
			da, ok := parseDay(a)
			if !ok {
				return fail(fmt.Sprintf("jour inconnu « %s »", shown(a)), fmt.Sprintf("unknown day %q", shown(a)))
			}
			db := da
			if isRange {
				if db, ok = parseDay(b); !ok {
					return fail(fmt.Sprintf("jour inconnu « %s »", shown(b)), fmt.Sprintf("unknown day %q", shown(b)))
				}
			}
			for d := da; ; d = (d + 1) % 7 {
				sp.Days |= 1 << d
				if d == db {
					break
				}
			}
		}
	}
	if err := sp.validate(); err != nil {
		e := err.(*ConfigError)
		return fail(e.FR, e.EN)
	}
	return sp, nil
}

func parseClock(s string) (time.Duration, bool) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 {
		return 0, false
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || hh == 24 && mm != 0 ||
		strings.ContainsAny(s, "+-") {
		return 0, false
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, true
}

// String writes the span in the form ParseSpan reads, days in English.
func (s Span) String() string {
	var b strings.Builder
	if s.Days != EveryDay {
		// Runs of consecutive days, Monday first.
		order := []time.Weekday{1, 2, 3, 4, 5, 6, 0}
		for i := 0; i < 7; {
			if !s.Days.Has(order[i]) {
				i++
				continue
			}
			j := i
			for j+1 < 7 && s.Days.Has(order[j+1]) {
				j++
			}
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(dayNames[order[i]][0])
			if j > i {
				b.WriteString("-" + dayNames[order[j]][0])
			}
			i = j + 1
		}
	}
	if s.From != 0 || s.To != 24*time.Hour {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%02d:%02d-%02d:%02d", int(s.From.Hours()), int(s.From.Minutes())%60, int(s.To.Hours()), int(s.To.Minutes())%60)
	}
	if b.Len() == 0 {
		return "mon-sun"
	}
	return b.String()
}

// Date is a day of the school's calendar.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

func dateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

func (d Date) valid() bool {
	return d.Year >= 1 && d.Year <= 9999 && dateOf(time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC)) == d
}

func (d Date) before(e Date) bool {
	return d.Year < e.Year || d.Year == e.Year && (d.Month < e.Month || d.Month == e.Month && d.Day < e.Day)
}

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// DateRange is a run of whole days, From to To included (school holidays).
type DateRange struct{ From, To Date }

func (r DateRange) contains(d Date) bool { return !d.before(r.From) && !r.To.before(d) }

func (r DateRange) String() string {
	if r.From == r.To {
		return r.From.String()
	}
	return r.From.String() + ".." + r.To.String()
}

// ParseDateRange reads "2025-10-18..2025-11-02" (both days included) or
// a single day "2025-11-11".
func ParseDateRange(text string) (DateRange, error) {
	fail := func(fr, en string) (DateRange, error) {
		return DateRange{}, configErr("holidays",
			fmt.Sprintf("« %s » : %s ; attendu par ex. « 2025-10-18..2025-11-02 » ou « 2025-11-11 »", shown(text), fr),
			fmt.Sprintf("%q: %s; expected e.g. \"2025-10-18..2025-11-02\" or \"2025-11-11\"", shown(text), en))
	}
	a, b, isRange := strings.Cut(strings.TrimSpace(text), "..")
	if !isRange {
		b = a
	}
	var r DateRange
	for i, s := range []string{a, b} {
		t, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
		if err != nil {
			return fail("date illisible (AAAA-MM-JJ)", "unreadable date (YYYY-MM-DD)")
		}
		*[]*Date{&r.From, &r.To}[i] = dateOf(t)
	}
	if r.To.before(r.From) {
		return fail("la fin précède le début", "the end is before the start")
	}
	return r, nil
}

// shown cuts and cleans user text quoted back in a message.
func shown(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, s)
	if len(s) > 80 {
		s = strings.ToValidUTF8(s[:80], "") + "…"
	}
	return s
}

// clockFloor: a clock before this date has not been set (boards without
// a real-time clock boot in 1970 until NTP answers). Windows stay closed
// until the clock is trusted, since they would be guesses.
var clockFloor = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// calendar decides when background transfers may run.
type calendar struct {
	windows, classHours []Span
	holidays            []DateRange
	loc                 *time.Location
}

// open: the clock is trusted, and the day is a holiday, or the time is in
// a window and not in class hours.
func (c *calendar) open(t time.Time) bool {
	if t.Before(clockFloor) {
		return false
	}
	t = t.In(c.loc)
	day := dateOf(t)
	for _, h := range c.holidays {
		if h.contains(day) {
			return true
		}
	}
	// Wall-clock time of day: on DST days it differs from the time
	// elapsed since midnight.
	wd := t.Weekday()
	wall := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute +
		time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond())
	in := func(spans []Span) bool {
		return slices.ContainsFunc(spans, func(s Span) bool { return s.contains(wd, wall) })
	}
	return in(c.windows) && !in(c.classHours)
}

// horizon bounds the search for the next change from weekly ranges; a
// calendar that does not change within it (or at the end of a holiday
// within a year) is reported as never changing.
const horizon = 9 * 24 * time.Hour

// nextChange returns the first instant after t when open changes, or the
// zero time if it does not change within the horizon. Boundaries are
// wall-clock times, so it tries every instant that shows a boundary on
// the wall (none in a spring-forward gap, two in a fall-back hour), the
// DST shifts themselves, and holiday ends with the days after them.
func (c *calendar) nextChange(t time.Time) time.Time {
	if t.Before(clockFloor) {
		return clockFloor // nothing is known before; look again then
	}
	lt := t.In(c.loc)
	var marks []time.Duration // wall-clock boundaries within a day
	for _, s := range append(slices.Clone(c.windows), c.classHours...) {
		marks = append(marks, s.From, s.To)
	}
	marks = append(marks, 0) // midnight: days, holidays
	days := []time.Time{lt}
	for _, h := range c.holidays {
		end := time.Date(h.To.Year, h.To.Month, h.To.Day+1, 12, 0, 0, 0, c.loc)
		if end.After(t) && end.Sub(t) < 400*24*time.Hour {
			days = append(days, end)
		}
	}
	var cand []time.Time
	for _, h := range c.holidays {
		cand = append(cand, wallInstants(h.From.Year, h.From.Month, h.From.Day, 0, c.loc)...)
	}
	for _, from := range days {
		y, m, d := from.Date()
		for i := -1; i <= int(horizon/(24*time.Hour)); i++ {
			for _, mk := range marks {
				cand = append(cand, wallInstants(y, m, d+i, mk, c.loc)...)
			}
			// DST shifts of that day.
			day := time.Date(y, m, d+i, 0, 0, 0, 0, c.loc)
			if _, end := day.ZoneBounds(); !end.IsZero() && end.Sub(day) < 48*time.Hour {
				cand = append(cand, end)
			}
		}
	}
	slices.SortFunc(cand, func(a, b time.Time) int { return a.Compare(b) })
	now := c.open(t)
	for _, x := range cand {
		if x.After(t) && c.open(x) != now {
			return x
		}
	}
	return time.Time{}
}

// wallInstants returns the instants whose wall clock in loc reads the
// given day at offset off after midnight: usually one, none in a
// spring-forward gap, two in a fall-back hour.
func wallInstants(y int, m time.Month, d int, off time.Duration, loc *time.Location) []time.Time {
	wall := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(off) // the wall reading, as if UTC
	var out []time.Time
	seen := map[int]bool{}
	for _, probe := range []time.Duration{-26 * time.Hour, 0, 26 * time.Hour} {
		_, zoff := wall.Add(probe).In(loc).Zone()
		if seen[zoff] {
			continue
		}
		seen[zoff] = true
		inst := wall.Add(-time.Duration(zoff) * time.Second)
		lw := inst.In(loc)
		if time.Date(lw.Year(), lw.Month(), lw.Day(), lw.Hour(), lw.Minute(), lw.Second(), lw.Nanosecond(), time.UTC).Equal(wall) {
			out = append(out, inst)
		}
	}
	return out
}
