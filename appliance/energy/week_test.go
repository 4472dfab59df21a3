package energy

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// The simulated week: Monday 10 to Sunday 16 November 2025 in Paris, the
// default school hours (Mon, Tue, Thu, Fri 08:00–17:00, Wed 08:00–12:00)
// and Tuesday 11 November (Armistice) entered as a holiday. The box runs
// the CPU model of an N100 at a steady 25 % (9.5 W). Devices come and go
// as listed; the sampler runs every 15 minutes on a fake clock.

var weekDevices = []Device{
	{ID: "tab1", Name: "Tablette CM1", Class: ClassTablet},
	{ID: "lap1", Name: "Portable direction", Class: ClassLaptop},
	{ID: "desk1", Name: "Poste BCD", Class: ClassDesktop},
	{ID: "disp1", Name: "TNI CE2", Class: ClassDisplay},
	{ID: "prn1", Name: "Imprimante", Class: ClassPrinter},
	{ID: "ap1", Name: "Borne Wi-Fi", Class: ClassAccessPoint},
	{ID: "ph1", Name: "Téléphone", Class: ClassPhone},
	{ID: "srv1", Name: "NAS mairie", Class: ClassDesktop},
	// "zz" is seen but unknown to the inventory's device list.
}

func weekPresence() map[string][]Interval {
	iv := func(a, b time.Time) Interval { return Interval{a, b} }
	return map[string][]Interval{
		// In school hours only: no alert.
		"tab1": {iv(at(10, 9, 0), at(10, 12, 0))},
		// Last week in hours (for the trend), then Monday 16:00–19:00:
		// two hours after closing.
		"lap1": {iv(at(3, 9, 0), at(3, 17, 0)), iv(at(10, 16, 0), at(10, 19, 0))},
		// Wednesday 12:00–12:30: exactly the threshold, not more: no
		// alert. Thursday night twice 20 min: 40 min in one period, one
		// alert.
		"desk1": {iv(at(12, 12, 0), at(12, 12, 30)), iv(at(13, 17, 0), at(13, 17, 20)), iv(at(13, 23, 0), at(13, 23, 20))},
		// On during the holiday.
		"disp1": {iv(at(11, 10, 0), at(11, 14, 0))},
		// All weekend.
		"prn1": {iv(at(15, 0, 0), at(17, 0, 0))},
		// Always on, but access points are excluded from alerts.
		"ap1": {iv(at(3, 0, 0), at(17, 0, 0))},
		// Friday 07:00–08:40: one hour before opening.
		"ph1": {iv(at(14, 7, 0), at(14, 8, 40))},
		// Every night, but excluded by device.
		"srv1": {iv(at(10, 20, 0), at(11, 6, 0)), iv(at(11, 20, 0), at(12, 6, 0))},
		// Unknown device on Sunday morning.
		"zz": {iv(at(16, 10, 0), at(16, 11, 0))},
	}
}

func weekConfig() Config {
	return Config{
		Profile:      "n100",
		BoxSource:    BoxModel,
		SamplePeriod: 15 * time.Minute,
		Calendar: Calendar{
			Holidays: []DateRange{{Date{2025, time.November, 11}, Date{2025, time.November, 11}}},
		},
		LeftOn: LeftOn{ExcludeDevices: []string{"srv1"}},
	}
}

type wantAlert struct {
	device      string
	class       Class
	start, end  time.Time
	first, last time.Time
	present     time.Duration
	kwh         float64
	raised      time.Time
	ongoing     bool
}

func TestSimulatedWeek(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart bool
	}{
		{"uninterrupted", false},
		{"restart on Wednesday", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testSimulatedWeek(t, tc.restart)
		})
	}
}

func testSimulatedWeek(t *testing.T, restart bool) {
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "preau.db")
	clock := &fakeClock{}
	clock.Set(at(10, 0, 0))
	cpu := &fakeCPU{clock: clock, util: 0.25, cpus: 4}
	pres := &fakePresence{clock: clock, devices: weekDevices, ivs: weekPresence()}
	open := func() *Meter {
		db := openDB(t, dbPath)
		t.Cleanup(func() { db.Close() })
		return newTestMeter(t, weekConfig(), Deps{DB: db, Presence: pres, Now: clock.Now, CPU: cpu})
	}
	m := open()
	end := at(17, 0, 0)
	if restart {
		// The box stops at Wednesday 12:00 and comes back at 14:00 on a
		// reopened database.
		run(t, m, clock, at(12, 12, 0), 15*time.Minute)
		m.db.Close()
		clock.Set(at(12, 14, 0))
		cpu.last = time.Time{}
		m = open()
	}
	run(t, m, clock, end, 15*time.Minute)

	// Out-of-hours periods of the week.
	wantPeriods := []Period{
		{at(7, 17, 0), at(10, 8, 0)},
		{at(10, 17, 0), at(12, 8, 0)}, // Tuesday holiday joins two nights
		{at(12, 12, 0), at(13, 8, 0)},
		{at(13, 17, 0), at(14, 8, 0)},
		{at(14, 17, 0), at(17, 8, 0)},
	}
	gotPeriods := m.Periods(at(10, 0, 0), at(17, 0, 0))
	if len(gotPeriods) != len(wantPeriods) {
		t.Fatalf("periods: got %v, want %v", gotPeriods, wantPeriods)
	}
	for i := range wantPeriods {
		if !gotPeriods[i].Start.Equal(wantPeriods[i].Start) || !gotPeriods[i].End.Equal(wantPeriods[i].End) {
			t.Errorf("period %d: got %v–%v, want %v–%v", i, gotPeriods[i].Start, gotPeriods[i].End, wantPeriods[i].Start, wantPeriods[i].End)
		}
	}

	// Left-on alerts: exactly the out-of-hours presences above 30 min.
	want := []wantAlert{
		{device: "lap1", class: ClassLaptop, start: at(10, 17, 0), end: at(12, 8, 0),
			first: at(10, 17, 0), last: at(10, 19, 0), present: 2 * time.Hour, kwh: 15 * 2 / 1000.0, raised: at(10, 17, 45)},
		{device: "disp1", class: ClassDisplay, start: at(10, 17, 0), end: at(12, 8, 0),
			first: at(11, 10, 0), last: at(11, 14, 0), present: 4 * time.Hour, kwh: 150 * 4 / 1000.0, raised: at(11, 10, 45)},
		{device: "desk1", class: ClassDesktop, start: at(13, 17, 0), end: at(14, 8, 0),
			first: at(13, 17, 0), last: at(13, 23, 20), present: 40 * time.Minute, kwh: 50 * 40.0 / 60 / 1000, raised: at(13, 23, 15)},
		{device: "ph1", class: ClassPhone, start: at(13, 17, 0), end: at(14, 8, 0),
			first: at(14, 7, 0), last: at(14, 8, 0), present: time.Hour, kwh: 2.0 / 1000, raised: at(14, 7, 45)},
		{device: "prn1", class: ClassPrinter, start: at(14, 17, 0), end: at(17, 8, 0),
			first: at(15, 0, 0), last: at(17, 0, 0), present: 48 * time.Hour, kwh: 10 * 48 / 1000.0, raised: at(15, 0, 45), ongoing: true},
		{device: "zz", class: ClassUnknown, start: at(14, 17, 0), end: at(17, 8, 0),
			first: at(16, 10, 0), last: at(16, 11, 0), present: time.Hour, kwh: 5.0 / 1000, raised: at(16, 10, 45), ongoing: true},
	}
	got, err := m.Alerts(ctx, at(10, 0, 0), at(17, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		for _, a := range got {
			t.Logf("got alert %s %s %v–%v present %v", a.Device, a.Class, a.PeriodStart, a.PeriodEnd, a.Present)
		}
		t.Fatalf("got %d alerts, want %d", len(got), len(want))
	}
	// Alerts come sorted by period start then device.
	order := map[string]int{}
	for i, w := range []string{"disp1", "lap1", "desk1", "ph1", "prn1", "zz"} {
		order[w] = i
	}
	for i, a := range got {
		var w wantAlert
		for _, c := range want {
			if c.device == a.Device {
				w = c
			}
		}
		if w.device == "" {
			t.Errorf("unexpected alert %+v", a)
			continue
		}
		if i > 0 && order[got[i-1].Device] > order[a.Device] {
			t.Errorf("alert %d: %s after %s, want period then device order", i, a.Device, got[i-1].Device)
		}
		if a.Class != w.class || !a.PeriodStart.Equal(w.start) || !a.PeriodEnd.Equal(w.end) ||
			!a.FirstSeen.Equal(w.first) || !a.LastSeen.Equal(w.last) || a.Present != w.present || !near(a.KWh, w.kwh) {
			t.Errorf("alert %s:\n got %s %v–%v seen %v–%v present %v kWh %v\nwant %s %v–%v seen %v–%v present %v kWh %v",
				a.Device, a.Class, a.PeriodStart, a.PeriodEnd, a.FirstSeen, a.LastSeen, a.Present, a.KWh,
				w.class, w.start, w.end, w.first, w.last, w.present, w.kwh)
		}
		if !a.Raised.Equal(w.raised) {
			t.Errorf("alert %s raised at %v, want %v (first sample past 30 min)", a.Device, a.Raised, w.raised)
		}
		if a.Ongoing != w.ongoing {
			t.Errorf("alert %s: ongoing %v, want %v (the weekend period ends Monday 08:00)", a.Device, a.Ongoing, w.ongoing)
		}
	}

	// kWh per class and day, by hand.
	box := 9.5 * 24 / 1000 // 6 W + 25 % of (20 − 6) W, all day
	ap := 8 * 24 / 1000.0
	wantDays := []map[Class]float64{
		{ClassBox: box, ClassTablet: 5 * 3 / 1000.0, ClassLaptop: 15 * 3 / 1000.0, ClassAccessPoint: ap,
			ClassDesktop: 50 * 4 / 1000.0},
		{ClassBox: box, ClassDisplay: 150 * 4 / 1000.0, ClassAccessPoint: ap, ClassDesktop: 50 * 10 / 1000.0},
		{ClassBox: box, ClassDesktop: 50 * 0.5 / 1000, ClassAccessPoint: ap},
		{ClassBox: box, ClassDesktop: 50 * 40.0 / 60 / 1000, ClassAccessPoint: ap},
		{ClassBox: box, ClassPhone: 2 * 100.0 / 60 / 1000, ClassAccessPoint: ap},
		{ClassBox: box, ClassPrinter: 10 * 24 / 1000.0, ClassAccessPoint: ap},
		{ClassBox: box, ClassPrinter: 10 * 24 / 1000.0, ClassAccessPoint: ap, ClassUnknown: 5 / 1000.0},
	}
	// srv1 is a desktop present 20:00–06:00 twice: Mon 4 h, Tue 6+4 h,
	// Wed 6 h.
	wantDays[2][ClassDesktop] += 50 * 6 / 1000.0
	if restart {
		wantDays[2][ClassBox] -= 9.5 * 2 / 1000
	}
	wv, err := m.Week(ctx, at(16, 12, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(wv.Days) != 7 || !wv.From.Equal(at(10, 0, 0)) || !wv.To.Equal(at(17, 0, 0)) {
		t.Fatalf("week %v–%v with %d days", wv.From, wv.To, len(wv.Days))
	}
	var weekTotal float64
	for i, d := range wv.Days {
		for c, k := range wantDays[i] {
			if !near(d.ByClass[c], k) {
				t.Errorf("%s %s: got %.6f kWh, want %.6f", d.Date, c, d.ByClass[c], k)
			}
			weekTotal += k
		}
		for c, k := range d.ByClass {
			if _, ok := wantDays[i][c]; !ok && k != 0 {
				t.Errorf("%s %s: got %.6f kWh, want none", d.Date, c, k)
			}
		}
		wantMissing := time.Duration(0)
		if restart && i == 2 {
			wantMissing = 2 * time.Hour
		}
		if d.BoxMissing != wantMissing {
			t.Errorf("%s: box missing %v, want %v", d.Date, d.BoxMissing, wantMissing)
		}
		if d.BoxSource.Label("fr") != "estimé (modèle N100)" {
			t.Errorf("%s: box source %q", d.Date, d.BoxSource.Label("fr"))
		}
	}
	if !near(wv.TotalKWh, weekTotal) {
		t.Errorf("week total %.6f, want %.6f", wv.TotalKWh, weekTotal)
	}
	if !near(wv.CO2eKg, weekTotal*0.052) {
		t.Errorf("CO2e %.6f kg, want %.6f", wv.CO2eKg, weekTotal*0.052)
	}
	// Trend: the week before had the access point all week, the laptop
	// 8 h on Monday 3, and no box sample at all.
	prev := map[Class]float64{ClassAccessPoint: 8 * 24 * 7 / 1000.0, ClassLaptop: 15 * 8 / 1000.0}
	for _, c := range wv.Classes {
		if !near(c.PreviousKWh, prev[c.Class]) {
			t.Errorf("previous week %s: got %.6f, want %.6f", c.Class, c.PreviousKWh, prev[c.Class])
		}
		if c.Class == ClassLaptop {
			if !c.HasChange || !near(c.ChangePercent, (0.045-0.12)/0.12*100) {
				t.Errorf("laptop change %v %v", c.HasChange, c.ChangePercent)
			}
		}
		if c.Class == ClassBox && c.HasChange {
			t.Errorf("box has a change against a week without measurement")
		}
	}
	if wv.PreviousBoxMissing != 7*24*time.Hour {
		t.Errorf("previous week box missing %v, want 168h", wv.PreviousBoxMissing)
	}
	// Devices of a day, with their source.
	sat := wv.Days[5]
	if len(sat.Devices) != 2 || sat.Devices[0].ID != "prn1" || sat.Devices[0].Present != 24*time.Hour ||
		sat.Devices[0].Source.Label("fr") != "estimé (profil imprimante)" {
		t.Errorf("Saturday devices: %+v", sat.Devices)
	}

	// Today's view on Sunday evening against Sunday 9.
	clock.Set(at(16, 18, 0))
	m.current = boxNow{Watts: 9.5, Source: Source{Kind: SourceModel, Detail: "n100", Of: Text{"N100", "N100"}}, At: at(16, 17, 45)}
	tv, err := m.Today(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !near(tv.Today.Box.KWh, 9.5*18/1000) || tv.Today.Box.Missing != 0 {
		t.Errorf("today box %.6f kWh missing %v, want %.6f and none", tv.Today.Box.KWh, tv.Today.Box.Missing, 9.5*18/1000)
	}
	wantDev := (10*18 + 8*18 + 5*1) / 1000.0
	if !near(tv.Today.Devices.KWh, wantDev) {
		t.Errorf("today devices %.6f, want %.6f", tv.Today.Devices.KWh, wantDev)
	}
	if tv.BoxSource.Label("fr") != "estimé (modèle N100)" || tv.BoxSource.Measured() {
		t.Errorf("today box source %q", tv.BoxSource.Label("fr"))
	}
	if tv.LastWeekSameTime.Box.Missing != 18*time.Hour || !near(tv.LastWeekSameTime.Devices.KWh, 8*18/1000.0) {
		t.Errorf("last week same time: %+v", tv.LastWeekSameTime)
	}

	// Footprint: devices seen in the last 30 days, by class.
	fp, err := m.Footprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[Class]int{}
	for _, c := range fp.Classes {
		counts[c.Class] = c.Devices
	}
	wantCounts := map[Class]int{ClassTablet: 1, ClassLaptop: 1, ClassDesktop: 2, ClassDisplay: 1, ClassPrinter: 1,
		ClassAccessPoint: 1, ClassPhone: 1, ClassUnknown: 1}
	for c, n := range wantCounts {
		if counts[c] != n {
			t.Errorf("footprint %s: %d devices, want %d", c, counts[c], n)
		}
	}
	wantKg := (56.3+3.4)/3 + (170.3+12.3)/5 + 2*(202.6+1.8+64.6+1.3)/6 + (372.6+3.2)/8 + (60.8+0.6)/5 + (83+2.1)/2.5
	if !near(fp.ManufacturingKgPerYear, wantKg) {
		t.Errorf("manufacturing %.3f kg/year, want %.3f", fp.ManufacturingKgPerYear, wantKg)
	}
	if len(fp.Unknown) != 2 || fp.Unknown[0] != ClassPrinter || fp.Unknown[1] != ClassUnknown {
		t.Errorf("classes without a figure: %v", fp.Unknown)
	}
}
