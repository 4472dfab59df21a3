package energy

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Fuzz targets of the parsers, seeded from testdata/. Run each briefly:
//   go test -tags sqlite_fts5 -run XXX -fuzz FuzzParseShellyGen1 -fuzztime 20s ./appliance/energy/

func plugSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "plugs", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no plug fixtures: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, 0)
		f.Add(b, 1)
	}
	f.Add([]byte(`{"meters":[{"power":1e308,"total":-5}]}`), 0)
	f.Add([]byte(`{"StatusSNS":{"ENERGY":{"Power":[1,2,null],"Total":[0.1]}}}`), 2)
}

func checkFuzzReading(t *testing.T, r PlugReading, err error) {
	if err != nil {
		return
	}
	if r.Watts < 0 || r.Watts > 4000 || r.HasTotal && r.TotalWh < 0 || !r.HasTotal && r.TotalWh != 0 {
		t.Fatalf("accepted an impossible reading %+v", r)
	}
}

func FuzzParseShellyGen1(f *testing.F) {
	plugSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte, ch int) {
		if ch < 0 || ch > 8 {
			return
		}
		r, err := ParseShellyGen1(body, ch)
		checkFuzzReading(t, r, err)
	})
}

func FuzzParseShellyGen2(f *testing.F) {
	plugSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte, _ int) {
		r, err := ParseShellyGen2(body)
		checkFuzzReading(t, r, err)
	})
}

func FuzzParseTasmota(f *testing.F) {
	plugSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte, ch int) {
		if ch < 0 || ch > 8 {
			return
		}
		r, err := ParseTasmota(body, ch)
		checkFuzzReading(t, r, err)
	})
}

func FuzzParseSpans(f *testing.F) {
	for _, s := range []string{"08:00-17:00", "08:30-11:30,13:30-16:30", "", "-", "00:00-24:00", "17:00-08:00", "8:00-9:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spans, err := ParseSpans(s)
		if err != nil {
			return
		}
		for _, sp := range spans {
			if sp.Start < 0 || sp.End > 1440 || sp.Start >= sp.End {
				t.Fatalf("%q gave the invalid span %v", s, sp)
			}
		}
		if err := (Calendar{Hours: map[time.Weekday][]Span{time.Monday: spans}}).Validate(); err != nil {
			t.Fatalf("%q parsed but does not validate: %v", s, err)
		}
	})
}

func FuzzParseDateRange(f *testing.F) {
	for _, s := range []string{"2025-12-20..2026-01-04", "2025-11-11", "2025-02-30", "..", "2025-11-11.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseDateRange(s)
		if err != nil {
			return
		}
		if err := (Calendar{Holidays: []DateRange{r}}).Validate(); err != nil {
			t.Fatalf("%q parsed but does not validate: %v", s, err)
		}
		back, err := ParseDateRange(r.String())
		if err != nil || back != r {
			t.Fatalf("%q: %v does not round-trip: %v %v", s, r, back, err)
		}
	})
}

// FuzzCPUModel reads cpuinfo texts seeded from the proc fixtures.
func FuzzCPUModel(f *testing.F) {
	for _, fx := range []string{"proc/n100.txtar", "proc/rpi4.txtar", "proc/xeon.txtar"} {
		b, err := os.ReadFile(filepath.Join("testdata", fx))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(parseTxtar(string(b))["cpuinfo"])
	}
	f.Fuzz(func(t *testing.T, cpuinfo string) {
		name := parseCPUModel(bufio.NewScanner(strings.NewReader(cpuinfo)))
		if p := profileFromCPU(name); p != "" && p != "n100" {
			t.Fatalf("profile %q", p)
		}
	})
}

// FuzzPeriods checks the calendar's out-of-hours periods against its
// opening hours: sorted, disjoint, never inside opening hours, and
// together with them covering the range.
func FuzzPeriods(f *testing.F) {
	f.Add("08:00-17:00", "08:00-12:00", int64(0), int64(7*24*60), int64(0))
	f.Add("08:30-11:30,13:30-16:30", "", int64(600), int64(3*24*60), int64(2))
	f.Add("00:00-24:00", "00:00-24:00", int64(100), int64(5000), int64(9))
	f.Add("", "", int64(0), int64(60), int64(1))
	f.Fuzz(func(t *testing.T, weekday, wednesday string, fromMin, lenMin, holiday int64) {
		day, err1 := ParseSpans(weekday)
		wed, err2 := ParseSpans(wednesday)
		if err1 != nil || err2 != nil || lenMin <= 0 || lenMin > 60*24*60 || fromMin < -1e6 || fromMin > 1e6 {
			return
		}
		hours := map[time.Weekday][]Span{time.Monday: day, time.Tuesday: day, time.Wednesday: wed, time.Thursday: day, time.Friday: day}
		cal := Calendar{Hours: hours}
		if holiday%10 > 0 {
			d := DateOf(at(10, 0, 0).AddDate(0, 0, int(holiday%10)))
			cal.Holidays = []DateRange{{d, addDays(d, int(holiday%4))}}
		}
		k, err := compileCalendar(cal.WithDefaults())
		if err != nil {
			t.Fatal(err)
		}
		from := at(10, 0, 0).Add(time.Duration(fromMin) * time.Minute)
		to := from.Add(time.Duration(lenMin) * time.Minute)
		ps := k.periods(from, to)
		for i, p := range ps {
			if !p.Start.Before(p.End) || !p.Start.Before(to) || !p.End.After(from) {
				t.Fatalf("period %d %v–%v outside [%v, %v)", i, p.Start, p.End, from, to)
			}
			if i > 0 && p.Start.Before(ps[i-1].End) {
				t.Fatalf("periods overlap: %v", ps)
			}
		}
		// Walk the range minute by minute (bounded): each instant is in
		// exactly one of opening hours or a period.
		step := max(time.Duration(lenMin)*time.Minute/500, time.Minute)
		for tm := from; tm.Before(to); tm = tm.Add(step) {
			open := false
			for _, iv := range k.schoolHours(DateOf(tm.In(k.loc))) {
				if !tm.Before(iv.From) && tm.Before(iv.To) {
					open = true
				}
			}
			in := 0
			for _, p := range ps {
				if !tm.Before(p.Start) && tm.Before(p.End) {
					in++
				}
			}
			if open && in != 0 || !open && in != 1 {
				t.Fatalf("%v: open %v but in %d periods %v", tm, open, in, ps)
			}
		}
	})
}
