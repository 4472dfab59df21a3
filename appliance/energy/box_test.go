package energy

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestFindRAPLPackagesOnly(t *testing.T) {
	root := materialize(t, "sysfs/rapl-two-packages.txtar")
	zones, err := findRAPL(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, z := range zones {
		got = append(got, filepath.Base(z.Dir)+"="+z.Name)
	}
	want := []string{"intel-rapl:0=package-0", "intel-rapl:1=package-1"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("zones: got %v, want %v (sub-zones and psys must not be counted)", got, want)
	}
	if zones[0].MaxUJ != 262143328850 {
		t.Errorf("max range %d", zones[0].MaxUJ)
	}
	// No powercap at all: no zone, no error.
	if z, err := findRAPL(t.TempDir()); z != nil || err != nil {
		t.Errorf("empty sysfs: %v %v", z, err)
	}
}

func TestRAPLDelta(t *testing.T) {
	const max = 262143328850
	for _, tc := range []struct {
		name            string
		prev, cur, maxE uint64
		want            uint64
		ok              bool
	}{
		{"forward", 1000, 61000, max, 60000, true},
		{"still", 5, 5, max, 0, true},
		{"wrap", max - 1000, 500, max, 1500, true},
		{"reset beyond range", max + 10, 3, max, 0, false},
	} {
		got, ok := raplDelta(tc.prev, tc.cur, tc.maxE)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %d %v, want %d %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// TestBoxFromRAPL samples a synthetic powercap tree whose counters move
// between samples, one of them wrapping around; the sub-zones and psys
// move too and must not be counted.
func TestBoxFromRAPL(t *testing.T) {
	root := materialize(t, "sysfs/rapl-two-packages.txtar")
	clock := &fakeClock{}
	clock.Set(at(10, 8, 0))
	cpu := &fakeCPU{clock: clock, util: 0.5, cpus: 4}
	m := newTestMeter(t, Config{SysRoot: root}, Deps{Presence: &fakePresence{clock: clock}, Now: clock.Now, CPU: cpu})
	zone := func(n, v string) {
		writeFile(t, filepath.Join(root, "class/powercap", n, "energy_uj"), v+"\n")
	}
	ctx := context.Background()
	m.start(ctx)
	// 60 s later: package-0 +600 J (10 W), package-1 wraps after +328850 µJ
	// and adds 300 J more; core, dram and psys change wildly; the MMIO
	// view of package-0 moves with it.
	clock.Add(time.Minute)
	zone("intel-rapl:0", strconv.FormatUint(1000000+600000000, 10))
	zone("intel-rapl:1", strconv.FormatUint(300000000-328850, 10))
	zone("intel-rapl:0:0", "999999999")
	zone("intel-rapl:0:2", "888888888")
	zone("intel-rapl:2", "777777777777")
	zone("intel-rapl-mmio:0", strconv.FormatUint(1000000+600000000, 10))
	m.sample(ctx)

	want := 600.0 + 300.0 // joules
	var kind string
	var joules, secs float64
	if err := m.db.QueryRow(`SELECT source, sum(joules), sum(seconds) FROM energy_box_hours`).Scan(&kind, &joules, &secs); err != nil {
		t.Fatal(err)
	}
	if kind != "rapl" || !near(joules, want) || secs != 60 {
		t.Errorf("recorded %s %.3f J over %v s, want rapl %.3f J over 60 s", kind, joules, secs, want)
	}
	tv, err := m.Today(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !near(tv.BoxWatts, 15) || tv.BoxSource.Label("fr") != "mesuré (RAPL)" || !tv.BoxSource.Measured() {
		t.Errorf("now: %.2f W %q, want 15 W mesuré (RAPL)", tv.BoxWatts, tv.BoxSource.Label("fr"))
	}
}

func TestPowerSupplies(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		ok      bool
		watts   float64
		names   string
	}{
		{"sysfs/ups-discharging.txtar", true, 12.5, "ups"},
		{"sysfs/battery-discharging-current.txtar", true, 18, "BAT0"},
		{"sysfs/battery-charging.txtar", false, 0, ""},
	} {
		r, ok, err := readSupplies(materialize(t, tc.fixture))
		if err != nil {
			t.Fatal(err)
		}
		if ok != tc.ok || !near(r.Watts, tc.watts) || supplyNames(r) != tc.names {
			t.Errorf("%s: got %v %.3f W from %q, want %v %.3f W from %q", tc.fixture, ok, r.Watts, supplyNames(r), tc.ok, tc.watts, tc.names)
		}
	}
}

// TestBoxFromUPSThenModel: a discharging UPS measures the box; when mains
// comes back the UPS charges and the CPU model takes over, and the day
// says so.
func TestBoxFromUPSThenModel(t *testing.T) {
	root := materialize(t, "sysfs/ups-discharging.txtar")
	clock := &fakeClock{}
	clock.Set(at(10, 8, 0))
	cpu := &fakeCPU{clock: clock, util: 0, cpus: 4}
	m := newTestMeter(t, Config{SysRoot: root, Profile: "rpi4"}, Deps{Presence: &fakePresence{clock: clock}, Now: clock.Now, CPU: cpu})
	run(t, m, clock, at(10, 9, 0), time.Minute)
	tv, err := m.Today(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !near(tv.BoxWatts, 12.5) || tv.BoxSource.Label("fr") != "mesuré (batterie/onduleur)" {
		t.Errorf("on UPS: %.2f W %q", tv.BoxWatts, tv.BoxSource.Label("fr"))
	}
	writeFile(t, filepath.Join(root, "class/power_supply/ups/status"), "Charging\n")
	run(t, m, clock, at(10, 10, 0), time.Minute)
	tv, err = m.Today(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !near(tv.BoxWatts, 2.7) || tv.BoxSource.Label("fr") != "estimé (modèle Raspberry Pi 4)" || tv.BoxSource.Measured() {
		t.Errorf("on mains: %.2f W %q", tv.BoxWatts, tv.BoxSource.Label("fr"))
	}
	if want := (12.5 + 2.7) / 1000; !near(tv.Today.Box.KWh, want) {
		t.Errorf("today box %.6f kWh, want %.6f", tv.Today.Box.KWh, want)
	}
	if got := tv.Today.Box.Source.Label("fr"); got != "en partie mesuré, en partie estimé" {
		t.Errorf("today's box source %q", got)
	}
	if got := tv.Today.Box.Missing; got != 8*time.Hour {
		t.Errorf("today missing %v, want 8h (midnight to the first sample)", got)
	}
}

func TestModel(t *testing.T) {
	p := Profile{Name: "n100", IdleWatts: 6, MaxWatts: 20}
	for _, tc := range []struct {
		prev, cur CPUTimes
		util      float64
		ok        bool
		watts     float64
	}{
		{CPUTimes{10, 100}, CPUTimes{10, 200}, 0, true, 6},
		{CPUTimes{10, 100}, CPUTimes{35, 200}, 0.25, true, 9.5},
		{CPUTimes{10, 100}, CPUTimes{110, 200}, 1, true, 20},
		{CPUTimes{10, 100}, CPUTimes{10, 100}, 0, false, 0},
		{CPUTimes{50, 100}, CPUTimes{10, 200}, 0, false, 0}, // counters reset
	} {
		u, ok := utilisation(tc.prev, tc.cur)
		if ok != tc.ok || !near(u, tc.util) {
			t.Errorf("%v→%v: utilisation %v %v, want %v %v", tc.prev, tc.cur, u, ok, tc.util, tc.ok)
		}
		if ok && !near(modelWatts(p, u), tc.watts) {
			t.Errorf("%v→%v: %v W, want %v", tc.prev, tc.cur, modelWatts(p, u), tc.watts)
		}
	}
}

func TestGuessProfile(t *testing.T) {
	for _, tc := range []struct{ fixture, want string }{
		{"proc/rpi4.txtar", "rpi4"},
		{"proc/rpi5.txtar", "rpi5"},
		{"proc/n100.txtar", "n100"},
		{"proc/xeon.txtar", "x86"},
	} {
		got, why := guessProfile(materialize(t, tc.fixture))
		if got != tc.want {
			t.Errorf("%s: got %s (%s), want %s", tc.fixture, got, why, tc.want)
		}
	}
	if got, _ := guessProfile(t.TempDir()); got != "x86" {
		t.Errorf("nothing known: got %s, want x86", got)
	}
}

// TestModelFallbackWithFakeCPU: no RAPL, no battery: the model estimates
// from the fake CPU, with the profile guessed from the device tree.
func TestModelFallbackWithFakeCPU(t *testing.T) {
	clock := &fakeClock{}
	clock.Set(at(10, 8, 0))
	cpu := &fakeCPU{clock: clock, util: 0.5, cpus: 4}
	m := newTestMeter(t, Config{ProcRoot: materialize(t, "proc/rpi4.txtar")},
		Deps{Presence: &fakePresence{clock: clock}, Now: clock.Now, CPU: cpu})
	run(t, m, clock, at(10, 10, 0), time.Minute)
	if m.Profile().Name != "rpi4" {
		t.Fatalf("profile %s", m.Profile().Name)
	}
	tv, err := m.Today(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w := 2.7 + (6.4-2.7)*0.5
	if !near(tv.BoxWatts, w) || !near(tv.Today.Box.KWh, w*2/1000) {
		t.Errorf("got %.3f W, %.6f kWh; want %.3f W, %.6f kWh", tv.BoxWatts, tv.Today.Box.KWh, w, w*2/1000)
	}
	if tv.BoxSource.Label("en") != "estimated (Raspberry Pi 4 model)" {
		t.Errorf("label %q", tv.BoxSource.Label("en"))
	}
	// The CPU becomes unreadable: no energy is invented.
	cpu.fail = true
	run(t, m, clock, at(10, 11, 0), time.Minute)
	tv, err = m.Today(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !near(tv.Today.Box.KWh, w*2/1000) || tv.BoxSource.Kind != SourceNone || tv.BoxSource.Label("fr") != "pas de mesure" {
		t.Errorf("after cpu failure: %.6f kWh, source %q", tv.Today.Box.KWh, tv.BoxSource.Label("fr"))
	}
}

// TestGapIsNotFilled: an interval longer than MaxGap (the process was
// stopped, the machine suspended) is not accounted.
func TestGapIsNotFilled(t *testing.T) {
	clock := &fakeClock{}
	clock.Set(at(10, 8, 0))
	cpu := &fakeCPU{clock: clock, util: 0, cpus: 1}
	m := newTestMeter(t, Config{Profile: "n100"}, Deps{Presence: &fakePresence{clock: clock}, Now: clock.Now, CPU: cpu})
	run(t, m, clock, at(10, 9, 0), time.Minute)
	clock.Add(time.Hour) // no sample for an hour
	m.sample(context.Background())
	run(t, m, clock, at(10, 11, 0), time.Minute)
	clock.Set(at(10, 23, 0))
	wv, err := m.Week(context.Background(), at(16, 12, 0))
	if err != nil {
		t.Fatal(err)
	}
	// Monday until 23:00: sampled 08:00–09:00 and 10:00–11:00 only.
	d := wv.Days[0]
	if !near(d.ByClass[ClassBox], 6*2/1000.0) || d.BoxMissing != 21*time.Hour {
		t.Errorf("Monday: %.6f kWh, missing %v; want %.6f and 21h", d.ByClass[ClassBox], d.BoxMissing, 6*2/1000.0)
	}
	if !wv.Days[1].Future || wv.Days[1].BoxMissing != 0 {
		t.Errorf("Tuesday should be in the future: %+v", wv.Days[1])
	}
}

// TestServe runs the real loop with a fake ticker and checks that the
// interval since the last tick is accounted when the context ends.
func TestServe(t *testing.T) {
	clock := &fakeClock{}
	clock.Set(at(10, 8, 0))
	cpu := &fakeCPU{clock: clock, util: 0, cpus: 1}
	m := newTestMeter(t, Config{Profile: "n100"}, Deps{Presence: &fakePresence{clock: clock}, Now: clock.Now, CPU: cpu})
	tick := make(chan time.Time)
	m.newTicker = func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} }
	ctx, cancel := context.WithCancel(context.Background())
	m.start(ctx) // baseline now, so that the clock can move
	done := make(chan error)
	go func() { done <- m.Serve(ctx) }()
	recorded := func() (secs, joules float64) {
		t.Helper()
		if err := m.db.QueryRow(`SELECT coalesce(sum(seconds), 0), coalesce(sum(joules), 0) FROM energy_box_hours`).Scan(&secs, &joules); err != nil {
			t.Fatal(err)
		}
		return
	}
	for i := range 3 {
		clock.Add(time.Minute)
		tick <- clock.Now()
		// Wait until the sample is in before moving the clock again.
		for deadline := time.Now().Add(10 * time.Second); ; {
			if s, _ := recorded(); s == float64(60*(i+1)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("tick %d not recorded", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	clock.Add(30 * time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	secs, joules := recorded()
	if secs != 210 || !near(joules, 6*210) {
		t.Errorf("recorded %v s, %v J; want 210 s, %v J", secs, joules, 6*210)
	}
}

// TestPsutilCPU reads this machine's /proc/stat through gopsutil.
func TestPsutilCPU(t *testing.T) {
	a, err := psutilCPU{}.CPUTimes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	b, err := psutilCPU{}.CPUTimes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.Total <= 0 || a.Busy < 0 || a.Busy > a.Total || b.Total < a.Total {
		t.Errorf("cpu times %+v then %+v", a, b)
	}
	if u, ok := utilisation(a, b); ok && (u < 0 || u > 1) {
		t.Errorf("utilisation %v", u)
	}
}
