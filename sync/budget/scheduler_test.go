package budget

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type switchUplink struct{ on atomic.Bool }

func (u *switchUplink) Online() bool { return u.on.Load() }

// harness is a scheduler on a fake clock, with Serve running.
type harness struct {
	s     *Scheduler
	clock *fakeClock
	up    *switchUplink
}

func startHarness(t *testing.T, cfg Config, at time.Time) *harness {
	t.Helper()
	h := &harness{clock: &fakeClock{t: at}, up: &switchUplink{}}
	h.up.on.Store(true)
	if cfg.Location == nil {
		cfg.Location = paris(t)
	}
	s, err := New(cfg, h.up, h.clock.now, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return h
}

// moveTo sets the clock and lets Serve notice, as its timer would.
func (h *harness) moveTo(t time.Time) {
	h.clock.set(t)
	h.s.poke()
}

// waitAsync starts Wait(class) and returns a channel with its result.
func (h *harness) waitAsync(ctx context.Context, class Class) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- h.s.Wait(ctx, class) }()
	return ch
}

func passes(t *testing.T, ch <-chan error, want bool, what string) {
	t.Helper()
	timeout := 200 * time.Millisecond
	if want {
		timeout = 5 * time.Second
	}
	select {
	case err := <-ch:
		if !want {
			t.Fatalf("%s: Wait returned %v, want it to block", what, err)
		}
		if err != nil {
			t.Fatalf("%s: Wait: %v", what, err)
		}
	case <-time.After(timeout):
		if want {
			t.Fatalf("%s: Wait still blocked", what)
		}
	}
}

func TestWaitFollowsTheCalendarAndTheUplink(t *testing.T) {
	loc := paris(t)
	h := startHarness(t, Config{}, time.Date(2025, 10, 6, 10, 0, 0, 0, loc)) // Monday, in class
	ctx := context.Background()

	ch := h.waitAsync(ctx, ClassHandIn)
	passes(t, ch, false, "in class")
	if st := h.s.Status(); st.WindowOpen || !st.NextChange.Equal(time.Date(2025, 10, 6, 17, 30, 0, 0, loc)) || st.Classes[0].Waiting != 1 {
		t.Errorf("status in class: %+v", st)
	}
	h.moveTo(time.Date(2025, 10, 6, 17, 30, 0, 0, loc))
	passes(t, ch, true, "after class")

	h.up.on.Store(false)
	ch = h.waitAsync(ctx, ClassHandIn)
	passes(t, ch, false, "offline")
	h.up.on.Store(true)
	h.s.poke()
	passes(t, ch, true, "back online")

	// A Wait given up leaves no trace.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	h.moveTo(time.Date(2025, 10, 7, 9, 0, 0, 0, loc))
	if err := h.s.Wait(cctx, ClassPrefetch); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait in class with a deadline = %v", err)
	}
	if st := h.s.Status(); st.Classes[2].Waiting != 0 {
		t.Errorf("waiting after a cancelled Wait: %+v", st.Classes)
	}
	if err := h.s.Wait(ctx, Class(0)); err == nil {
		t.Error("Wait accepted class 0")
	}
}

func TestSendNowUntilIdle(t *testing.T) {
	loc := paris(t)
	at := time.Date(2025, 10, 7, 9, 0, 0, 0, loc) // Tuesday, in class
	h := startHarness(t, Config{}, at)
	ch := h.waitAsync(context.Background(), ClassHandIn)
	passes(t, ch, false, "in class")
	h.s.SendNow()
	passes(t, ch, true, "sync now")
	if !h.s.Status().SendNow {
		t.Fatal("SendNow not in effect")
	}
	// The queue is idle now: after the grace period the calendar rules again.
	h.moveTo(at.Add(time.Second))
	time.Sleep(50 * time.Millisecond)
	h.moveTo(at.Add(idleGrace + 2*time.Second))
	deadline := time.Now().Add(5 * time.Second)
	for h.s.Status().SendNow && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		h.s.poke()
	}
	if h.s.Status().SendNow {
		t.Fatal("SendNow still in effect after an idle queue")
	}
	passes(t, h.waitAsync(context.Background(), ClassHandIn), false, "in class again")
}

// slowServer answers uploads and downloads over loopback.
func slowServer(t *testing.T, hold <-chan struct{}) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold != nil {
			<-hold
		}
		n, _ := io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodGet {
			size := int64(512 << 10)
			w.Header().Set("Content-Length", "524288")
			io.CopyN(w, zeros{}, size)
			return
		}
		w.Write([]byte(strings.Repeat("x", int(min(n, 10)))))
	}))
	t.Cleanup(srv.Close)
	return srv
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestPriorities(t *testing.T) {
	loc := paris(t)
	h := startHarness(t, alwaysOpen(Config{}), time.Date(2025, 10, 6, 20, 0, 0, 0, loc))
	hold := make(chan struct{})
	srv := slowServer(t, hold)
	// A hand-in in flight...
	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("devoir"))
		resp, err := h.s.Doer(ClassHandIn).Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	deadline := time.Now().Add(5 * time.Second)
	for h.s.Status().Classes[0].Active == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// ...holds prefetch back but not another hand-in.
	pre := h.waitAsync(context.Background(), ClassPrefetch)
	passes(t, pre, false, "prefetch beside a hand-in")
	passes(t, h.waitAsync(context.Background(), ClassHandIn), true, "a second hand-in")
	// Both running: the rate is shared 8:1.
	h.s.begin(ClassPrefetch)
	r := h.s.ctl[up].rate()
	if got, want := h.s.buckets[ClassHandIn][up].currentRate(), r*8/9; abs(got-want) > 1 {
		t.Errorf("hand-in share %.0f, want %.0f", got, want)
	}
	if got, want := h.s.buckets[ClassPrefetch][up].currentRate(), r/9; abs(got-want) > 1 {
		t.Errorf("prefetch share %.0f, want %.0f", got, want)
	}
	h.s.end(ClassPrefetch)
	close(hold)
	resp := <-done
	passes(t, pre, false, "prefetch while the hand-in's answer is unread")
	resp.Body.Close()
	passes(t, pre, true, "prefetch after the hand-in")
}

func abs(x float64) float64 { return max(x, -x) }

func TestDailyCap(t *testing.T) {
	loc := paris(t)
	day := time.Date(2025, 10, 6, 20, 0, 0, 0, loc)
	h := startHarness(t, alwaysOpen(Config{DailyCap: 64 << 10, MaxRate: 8 << 20, MinRate: 4 << 20, InitialRate: 4 << 20}), day)
	srv := slowServer(t, nil)
	req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(make([]byte, 256<<10)))
	_, err := h.s.Doer(ClassHandIn).Do(req)
	var be *Error
	if !errors.Is(err, ErrCapSpent) || !errors.As(err, &be) || !strings.Contains(be.Error(), "plafond") || !strings.Contains(be.English(), "cap") {
		t.Fatalf("upload beyond the cap: %v, want ErrCapSpent", err)
	}
	st := h.s.Status()
	if st.CapUsed < 64<<10 || st.CapUsed > 64<<10+maxChunk || st.DailyCap != 64<<10 {
		t.Errorf("cap used %d of %d", st.CapUsed, st.DailyCap)
	}
	ch := h.waitAsync(context.Background(), ClassHandIn)
	passes(t, ch, false, "cap spent")
	h.moveTo(day.Add(5 * time.Hour)) // 01:00 the next day
	passes(t, ch, true, "next day")
	if st := h.s.Status(); st.CapUsed != 0 {
		t.Errorf("cap used %d the next day", st.CapUsed)
	}
}

// TestDoerPaces checks on loopback that request and response bodies move
// at the rate, here pinned by MinRate = MaxRate.
func TestDoerPaces(t *testing.T) {
	const rate = 256 << 10
	h := startHarness(t, alwaysOpen(Config{MaxRate: rate, MinRate: rate, InitialRate: rate}), time.Date(2025, 10, 6, 20, 0, 0, 0, paris(t)))
	srv := slowServer(t, nil)
	d := h.s.Doer(ClassPrefetch)
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(make([]byte, 512<<10)))
	resp, err := d.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	upTook := time.Since(start)
	start = time.Now()
	resp, err = d.Do(must(http.NewRequest(http.MethodGet, srv.URL, nil)))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	downTook := time.Since(start)
	t.Logf("512 KiB up in %v, %d B down in %v at %d KiB/s", upTook, n, downTook, rate>>10)
	// 2 s each, less the bucket's initial credit; generous above for a
	// loaded machine.
	for _, took := range []time.Duration{upTook, downTook} {
		if took < 1800*time.Millisecond || took > 4*time.Second {
			t.Errorf("512 KiB took %v at 256 KiB/s, want about 2 s", took)
		}
	}
	st := h.s.Status()
	if c := st.Classes[2]; c.SentBytes < 512<<10 || c.ReceivedBytes < 512<<10 || c.Active != 0 {
		t.Errorf("prefetch counters %+v", c)
	}
}

func must(r *http.Request, err error) *http.Request {
	if err != nil {
		panic(err)
	}
	return r
}

func TestObservations(t *testing.T) {
	obs := &recordingUplink{}
	s, err := New(Config{}, obs, time.Now, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.ctl[up].base, s.ctl[up].q = 300*time.Millisecond, 20*time.Millisecond // full
	s.ctl[down].base, s.ctl[down].q = 300*time.Millisecond, 0               // not full
	var rep pathReport
	var ok bool
	for range int(observeSpan / sampleEvery) {
		rep, ok = s.observeLocked([2]sample{{bytes: 24000}, {bytes: 50000}}, sampleEvery)
	}
	if !ok || abs(rep.up-240000) > 1 || rep.down != 0 || rep.base != 300*time.Millisecond {
		t.Errorf("report %+v, %v; want 240000 B/s up, nothing down, base 300ms", rep, ok)
	}
}

type recordingUplink struct{ switchUplink }

func (*recordingUplink) ObservePath(up, down float64, base time.Duration) {}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg   Config
		field string // "" = valid
	}{
		{Config{}, ""},
		{Config{Windows: []Span{}, ClassHours: []Span{}}, ""},
		{Config{TargetDelay: time.Millisecond}, "target_delay"},
		{Config{MaxRate: 1000, MinRate: 2000}, "min_rate"},
		{Config{MaxRate: -1}, "max_rate"},
		{Config{DailyCap: -1}, "daily_cap"},
		{Config{InitialRate: 1 << 20, MaxRate: 1 << 10, MinRate: 1 << 9}, "initial_rate"},
		{Config{Windows: []Span{{Days: Monday, From: time.Hour, To: time.Hour}}}, "windows[0]"},
		{Config{ClassHours: []Span{{Days: 0, From: 0, To: time.Hour}}}, "class_hours[0]"},
		{Config{Holidays: []DateRange{{Date{2025, 11, 2}, Date{2025, 10, 18}}}}, "holidays[0]"},
		{Config{Congestion: "a-name-far-too-long"}, "congestion"},
	}
	for _, tt := range tests {
		err := tt.cfg.WithDefaults().Validate()
		var ce *ConfigError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", tt.cfg, err)
		case tt.field != "" && (!errors.As(err, &ce) || ce.Field != tt.field):
			t.Errorf("Validate(%+v) = %v, want an error on %s", tt.cfg, err, tt.field)
		case ce != nil && (!strings.Contains(ce.Error(), tt.field) || !strings.Contains(ce.English(), tt.field)):
			t.Errorf("error %q / %q does not name %s", ce.Error(), ce.English(), tt.field)
		}
	}
	if _, err := New(Config{}, nil, time.Now, testLogger(t)); err == nil {
		t.Error("New without an uplink succeeded")
	}
}

// TestMetricsPassPromtool checks the exposition with Prometheus's linter.
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
			t.Fatal("promtool not found: .ci/run must install it (Debian package prometheus)")
		}
		t.Skip("promtool not installed; skipping (CI installs it)")
	}
	s, err := New(Config{DailyCap: 1 << 30}, online(true), time.Now, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"preau_budget_rate_bytes_per_second{direction=\"up\"}", "preau_budget_window_open",
		"preau_budget_transferred_bytes_total{class=\"hand-in\",direction=\"up\"}", "preau_budget_daily_cap_bytes 1.073741824e+09"} {
		if !strings.Contains(buf.String(), name) {
			t.Errorf("metric %s missing from\n%s", name, buf.String())
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestCapUsageSurvivesARestart: what a scheduler spent today, handed to
// the next one, still counts against the cap; yesterday's does not.
func TestCapUsageSurvivesARestart(t *testing.T) {
	loc := paris(t)
	day := time.Date(2025, 10, 6, 20, 0, 0, 0, loc)
	cfg := alwaysOpen(Config{DailyCap: 64 << 10, MaxRate: 8 << 20, MinRate: 4 << 20, InitialRate: 4 << 20})
	h := startHarness(t, cfg, day)
	srv := slowServer(t, nil)
	req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(make([]byte, 256<<10)))
	h.s.Doer(ClassHandIn).Do(req)
	d, used := h.s.CapUsage()
	if d != (Date{2025, 10, 6}) || used < 64<<10 {
		t.Fatalf("CapUsage() = %v, %d; want 2025-10-06 and the cap spent", d, used)
	}

	next := startHarness(t, cfg, day.Add(time.Hour))
	next.s.RestoreCapUsage(Date{2025, 10, 5}, used) // yesterday's: ignored
	if _, u := next.s.CapUsage(); u != 0 {
		t.Fatalf("yesterday's usage counted: %d", u)
	}
	next.s.RestoreCapUsage(d, used)
	if _, err := next.s.Doer(ClassHandIn).Do(req.Clone(context.Background())); !errors.Is(err, ErrCapSpent) {
		t.Fatalf("after a restart the cap was handed out again: %v", err)
	}
	if st := next.s.Status(); st.CapUsed != used {
		t.Errorf("Status().CapUsed = %d, want %d", st.CapUsed, used)
	}
}
