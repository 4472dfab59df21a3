package budget

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Paris whatever the machine has
)

func paris(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestParseSpan(t *testing.T) {
	h := func(hh, mm int) time.Duration { return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute }
	tests := []struct {
		in   string
		want Span
		str  string // String(); "" means in
	}{
		{"mon-fri 08:00-17:30", Span{Monday | Tuesday | Wednesday | Thursday | Friday, h(8, 0), h(17, 30)}, ""},
		{"lun,mar,jeu,ven 08:00-17:30", Span{Monday | Tuesday | Thursday | Friday, h(8, 0), h(17, 30)}, "mon-tue,thu-fri 08:00-17:30"},
		{"sat,sun", Span{Saturday | Sunday, 0, h(24, 0)}, "sat-sun"},
		{"17:30-08:00", Span{EveryDay, h(17, 30), h(8, 0)}, ""},
		{"Mercredi 12:00-17:30", Span{Wednesday, h(12, 0), h(17, 30)}, "wed 12:00-17:30"},
		{"fri-mon 22:00-00:00", Span{Friday | Saturday | Sunday | Monday, h(22, 0), h(24, 0)}, "mon,fri-sun 22:00-24:00"},
		{"  sunday   9:05-9:06 ", Span{Sunday, h(9, 5), h(9, 6)}, "sun 09:05-09:06"},
		{"mon-sun", Span{EveryDay, 0, h(24, 0)}, ""},
	}
	for _, tt := range tests {
		got, err := ParseSpan(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSpan(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		want := tt.str
		if want == "" {
			want = tt.in
		}
		if s := got.String(); s != want {
			t.Errorf("ParseSpan(%q).String() = %q, want %q", tt.in, s, want)
		}
	}
	for _, bad := range []string{"", "monday tuesday 08:00-09:00", "mon 8h-9h", "mon 08:00", "mon 08:00-08:00",
		"mon 25:00-26:00", "mon 08:60-09:00", "xyz 08:00-09:00", "mon-xyz", "mon 24:00-01:00", "mon 08:00-+9:00", "monkey"} {
		_, err := ParseSpan(bad)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(ce.FR, "attendu") || !strings.Contains(ce.English(), "expected") {
			t.Errorf("ParseSpan(%q) = %v, want a bilingual ConfigError", bad, err)
		}
	}
}

func TestParseDateRange(t *testing.T) {
	tests := []struct {
		in   string
		want DateRange
		ok   bool
	}{
		{"2025-10-18..2025-11-02", DateRange{Date{2025, 10, 18}, Date{2025, 11, 2}}, true},
		{"2025-11-11", DateRange{Date{2025, 11, 11}, Date{2025, 11, 11}}, true},
		{" 2025-12-20 .. 2026-01-04 ", DateRange{Date{2025, 12, 20}, Date{2026, 1, 4}}, true},
		{"2025-11-02..2025-10-18", DateRange{}, false},
		{"2025-02-30", DateRange{}, false},
		{"18/10/2025", DateRange{}, false},
		{"", DateRange{}, false},
	}
	for _, tt := range tests {
		got, err := ParseDateRange(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDateRange(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func defaultCalendar(t testing.TB, holidays ...DateRange) *calendar {
	cfg := Config{Location: paris(t), Holidays: holidays}.WithDefaults()
	return &calendar{windows: cfg.Windows, classHours: cfg.ClassHours, holidays: cfg.Holidays, loc: cfg.Location}
}

func TestOpenByDefault(t *testing.T) {
	loc := paris(t)
	at := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, loc) }
	toussaint := DateRange{Date{2025, 10, 18}, Date{2025, 11, 2}}
	cal := defaultCalendar(t, toussaint)
	tests := []struct {
		name string
		at   time.Time
		want bool
	}{
		{"Monday in class", at(2025, 10, 6, 10, 0), false},
		{"Monday just before class", at(2025, 10, 6, 7, 59), true},
		{"Monday 08:00", at(2025, 10, 6, 8, 0), false},
		{"Monday evening", at(2025, 10, 6, 17, 30), true},
		{"Monday night", at(2025, 10, 6, 23, 0), true},
		{"Wednesday morning class", at(2025, 10, 8, 11, 59), false},
		{"Wednesday afternoon", at(2025, 10, 8, 12, 0), true},
		{"Friday 17:29", at(2025, 10, 10, 17, 29), false},
		{"Saturday noon", at(2025, 10, 11, 12, 0), true},
		{"Sunday evening", at(2025, 10, 12, 20, 0), true},
		{"holiday Monday in class hours", at(2025, 10, 20, 10, 0), true},
		{"holiday's last day", at(2025, 11, 2, 23, 59), true},
		{"back to school", at(2025, 11, 3, 10, 0), false},
		{"clock not set (1970)", time.Unix(3600*24*3+3600*20, 0), false},
	}
	for _, tt := range tests {
		if got := cal.open(tt.at); got != tt.want {
			t.Errorf("%s (%s): open = %v, want %v", tt.name, tt.at.Format(time.RFC3339), got, tt.want)
		}
	}
}

func TestNextChange(t *testing.T) {
	loc := paris(t)
	utc := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, time.UTC) }
	span := func(s string) []Span {
		sp, err := ParseSpan(s)
		if err != nil {
			t.Fatal(err)
		}
		return []Span{sp}
	}
	tests := []struct {
		name string
		cal  *calendar
		from time.Time
		want []time.Time // successive changes
	}{
		{
			// Spring forward 2025-03-30: 02:00 CET becomes 03:00 CEST
			// (01:00 UTC); a window to 02:30 ends at the jump.
			name: "window ending in the spring-forward gap",
			cal:  &calendar{windows: span("sun 01:00-02:30"), loc: loc},
			from: utc(2025, 3, 29, 23, 0),
			want: []time.Time{utc(2025, 3, 30, 0, 0), utc(2025, 3, 30, 1, 0)},
		},
		{
			// Fall back 2025-10-26: 03:00 CEST becomes 02:00 CET (01:00
			// UTC); 02:15–02:45 happens twice on the wall.
			name: "window in the repeated fall-back hour",
			cal:  &calendar{windows: span("sun 02:15-02:45"), loc: loc},
			from: utc(2025, 10, 25, 23, 0),
			want: []time.Time{utc(2025, 10, 26, 0, 15), utc(2025, 10, 26, 0, 45), utc(2025, 10, 26, 1, 15), utc(2025, 10, 26, 1, 45)},
		},
		{
			// Default calendar over the spring-forward weekend: open from
			// Friday 17:30 CET to Monday 08:00 CEST, a night one hour short.
			name: "weekend across DST",
			cal:  defaultCalendar(t),
			from: utc(2025, 3, 28, 12, 0),
			want: []time.Time{utc(2025, 3, 28, 16, 30), utc(2025, 3, 31, 6, 0), utc(2025, 3, 31, 15, 30)},
		},
		{
			name: "holidays only",
			cal:  &calendar{windows: []Span{}, holidays: []DateRange{{Date{2025, 10, 18}, Date{2025, 11, 2}}}, loc: loc},
			from: utc(2025, 10, 15, 12, 0),
			want: []time.Time{utc(2025, 10, 17, 22, 0), utc(2025, 11, 2, 23, 0)},
		},
		{
			name: "always open",
			cal:  &calendar{windows: span("mon-sun"), loc: loc},
			from: utc(2025, 10, 15, 12, 0),
			want: []time.Time{{}},
		},
	}
	for _, tt := range tests {
		from := tt.from
		for i, want := range tt.want {
			got := tt.cal.nextChange(from)
			if !got.Equal(want) {
				t.Errorf("%s: change %d after %s = %s, want %s", tt.name, i+1, from.In(loc), got.In(loc), want.In(loc))
				break
			}
			if got.IsZero() {
				break
			}
			if tt.cal.open(got) == tt.cal.open(got.Add(-time.Nanosecond)) {
				t.Errorf("%s: nothing changes at %s", tt.name, got.In(loc))
			}
			from = got
		}
	}
}

func FuzzParseSpan(f *testing.F) {
	for _, s := range []string{"mon-fri 08:00-17:30", "sat,sun", "17:30-08:00", "lun,mar 8:00-9:15", "fri-mon 22:00-00:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseSpan(s)
		if err != nil {
			return
		}
		if err := sp.validate(); err != nil {
			t.Fatalf("ParseSpan(%q) = %+v, invalid: %v", s, sp, err)
		}
		again, err := ParseSpan(sp.String())
		if err != nil || again != sp {
			t.Fatalf("ParseSpan(%q) = %+v; its String %q reads back as %+v, %v", s, sp, sp.String(), again, err)
		}
	})
}

func FuzzParseDateRange(f *testing.F) {
	for _, s := range []string{"2025-10-18..2025-11-02", "2025-11-11", "2024-02-29"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseDateRange(s)
		if err != nil {
			return
		}
		if !r.From.valid() || !r.To.valid() || r.To.before(r.From) {
			t.Fatalf("ParseDateRange(%q) = %v: invalid", s, r)
		}
		again, err := ParseDateRange(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseDateRange(%q) = %v; %q reads back as %v, %v", s, r, r.String(), again, err)
		}
	})
}
