package energy

import (
	"strings"
	"testing"
	"time"
)

func TestParseSpans(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Span
		err  bool
	}{
		{"08:00-17:00", []Span{{480, 1020}}, false},
		{" 8:30-12:00 , 13:30-16:30", []Span{{510, 720}, {810, 990}}, false},
		{"00:00-24:00", []Span{{0, 1440}}, false},
		{"", []Span{}, false},
		{"-", []Span{}, false},
		{"17:00-08:00", nil, true},
		{"08:00", nil, true},
		{"8h-12h", nil, true},
		{"08:60-09:00", nil, true},
		{"24:30-25:00", nil, true},
		{"08:0-09:00", nil, true},
	} {
		got, err := ParseSpans(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%q: error %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

func TestParseDateRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  bool
	}{
		{"2025-12-20..2026-01-04", "2025-12-20..2026-01-04", false},
		{"2025-11-11", "2025-11-11", false},
		{"2026-01-04..2025-12-20", "", true},
		{"2025-02-30", "", true},
		{"20/12/2025", "", true},
	} {
		got, err := ParseDateRange(tc.in)
		if (err != nil) != tc.err || (err == nil && got.String() != tc.want) {
			t.Errorf("%q: got %v %v, want %q error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func mustCalendar(t *testing.T, c Calendar) *calendar {
	t.Helper()
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	k, err := compileCalendar(c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPeriods(t *testing.T) {
	p := func(a, b time.Time) Period { return Period{a, b} }
	toussaint := DateRange{Date{2025, time.October, 18}, Date{2025, time.November, 2}}
	lunch, _ := ParseSpans("08:30-11:30,13:30-16:30")
	for _, tc := range []struct {
		name     string
		cal      Calendar
		from, to time.Time
		want     []Period
	}{
		{
			name: "an ordinary Thursday",
			from: at(13, 10, 0), to: at(13, 20, 0),
			want: []Period{p(at(13, 17, 0), at(14, 8, 0))},
		},
		{
			name: "within opening hours",
			from: at(13, 9, 0), to: at(13, 16, 0),
		},
		{
			name: "lunch break is out of hours",
			cal:  Calendar{Hours: map[time.Weekday][]Span{time.Monday: lunch}},
			from: at(10, 0, 0), to: at(10, 23, 0),
			want: []Period{
				p(at(3, 16, 30), at(10, 8, 30)), // only Mondays open
				p(at(10, 11, 30), at(10, 13, 30)),
				p(at(10, 16, 30), at(17, 8, 30)),
			},
		},
		{
			// The autumn holidays with the clock going back on 26 October:
			// one period from Friday 17 October 17:00 to Monday 3
			// November 08:00.
			name: "holidays across the DST change",
			cal:  Calendar{Holidays: []DateRange{toussaint}},
			from: time.Date(2025, time.October, 26, 1, 0, 0, 0, paris), to: time.Date(2025, time.October, 26, 4, 0, 0, 0, paris),
			want: []Period{p(time.Date(2025, time.October, 17, 17, 0, 0, 0, paris), at(3, 8, 0))},
		},
		{
			name: "a closed Friday joins the weekend",
			cal:  Calendar{Closed: []Date{{2025, time.November, 14}}},
			from: at(14, 12, 0), to: at(14, 13, 0),
			want: []Period{p(at(13, 17, 0), at(17, 8, 0))},
		},
		{
			name: "never open: one unbounded period",
			cal:  Calendar{Hours: map[time.Weekday][]Span{}},
			from: at(10, 0, 0), to: at(11, 0, 0),
			want: []Period{p(unboundedStart, unboundedEnd)},
		},
	} {
		k := mustCalendar(t, tc.cal)
		got := k.periods(tc.from, tc.to)
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if !got[i].Start.Equal(tc.want[i].Start) || !got[i].End.Equal(tc.want[i].End) {
				t.Errorf("%s: period %d: got %v–%v, want %v–%v", tc.name, i,
					got[i].Start.In(paris), got[i].End.In(paris), tc.want[i].Start.In(paris), tc.want[i].End.In(paris))
			}
		}
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"source", Config{BoxSource: "meter"}, "BoxSource"},
		{"period", Config{SamplePeriod: time.Millisecond}, "SamplePeriod"},
		{"profile", Config{Profile: "pdp11"}, "Profile"},
		{"profile figures", Config{Profiles: []Profile{{Name: "mine", IdleWatts: 10, MaxWatts: 5}}}, "Profiles[mine]"},
		{"class watts", Config{Classes: []ClassProfile{{Class: ClassTablet, Watts: -1}}}, "Classes[tablet].Watts"},
		{"class life", Config{Classes: []ClassProfile{{Class: ClassPrinter, ManufacturingKgCO2e: 50}}}, "Classes[printer].LifeYears"},
		{"factor year", Config{Electricity: ElectricityFactor{KgCO2ePerKWh: 0.05, Source: "x"}}, "Electricity.Year"},
		{"factor source", Config{Electricity: ElectricityFactor{KgCO2ePerKWh: 0.05, Year: 2024}}, "Electricity.Source"},
		{"hours", Config{Calendar: Calendar{Hours: map[time.Weekday][]Span{time.Monday: {{600, 500}}}}}, "Calendar.Hours[Monday]"},
		{"holidays", Config{Calendar: Calendar{Holidays: []DateRange{{Date{2025, 12, 20}, Date{2025, 12, 1}}}}}, "Calendar.Holidays"},
		{"threshold", Config{LeftOn: LeftOn{Threshold: -time.Minute}}, "LeftOn.Threshold"},
		{"plug kind", Config{Plugs: []Plug{{Device: "a", Kind: "sonoff", URL: "http://10.0.0.2"}}}, "Plugs[0].Kind"},
		{"plug url", Config{Plugs: []Plug{{Device: "a", Kind: PlugTasmota, URL: "10.0.0.2"}}}, "Plugs[0].URL"},
		{"plug twice", Config{Plugs: []Plug{{Device: "a", Kind: PlugTasmota, URL: "http://x"}, {Device: "a", Kind: PlugTasmota, URL: "http://y"}}}, "Plugs[1].Device"},
	} {
		err := tc.cfg.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: got %v, want an error naming %s", tc.name, err, tc.field)
		}
	}
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if _, err := New(Config{Calendar: Calendar{Timezone: "Europe/Nowhere"}}, Deps{DB: openDB(t, t.TempDir()+"/x.db"), Presence: &fakePresence{}}); err == nil ||
		!strings.Contains(err.Error(), "Calendar.Timezone") {
		t.Errorf("bad time zone: %v", err)
	}
}
