// Package energy owns the box's energy accounting: the box's own power
// (measured through RAPL or a discharging battery/UPS when the hardware
// exposes them, else estimated from CPU utilisation with a hardware
// profile), the estimated energy of the school's LAN devices (watts per
// device class × the presence timeline the inventory records, or the
// measure of a smart plug), daily kWh per class and per device, the
// week-over-week trend, CO₂e (electricity factor and the ADEME–Arcep
// manufacturing factors), the school calendar and the "left on" alerts for
// devices present outside school hours, and the Prometheus metrics of all
// that.
//
// Honesty rule: every figure carries its Source; an estimate is never shown
// as a measure, and time when the box did not sample is reported as "pas de
// mesure" (no measurement), never filled in.
//
// Only package appliance imports energy; it adapts the inventory to the
// Presence interface declared here (energy never imports inventory) and
// hands the views to the console, which renders them. This package never
// imports the appliance root.
package energy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Doer sends one HTTP request; *http.Client satisfies it. The smart plugs
// are on the LAN: appliance passes a LAN client, not the WAN scheduler's.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Device is a LAN device as the inventory knows it.
type Device struct {
	ID    string // stable identity, the MAC address in practice
	Name  string // what the technician reads; may be empty
	Class Class
}

// Interval is one presence of a device on the LAN. A zero To means the
// device is still present: the interval runs until now.
type Interval struct {
	From, To time.Time
}

// Presence is what energy needs from the inventory; appliance adapts it.
type Presence interface {
	// Devices lists the known devices with their current class.
	Devices(ctx context.Context) ([]Device, error)
	// Intervals returns, by device ID, the presence intervals that overlap
	// [from, to). Intervals may extend beyond the range; energy clips them.
	Intervals(ctx context.Context, from, to time.Time) (map[string][]Interval, error)
}

// CPUTimes are cumulated CPU times of all CPUs, in seconds.
type CPUTimes struct {
	Busy  float64 // user, nice, system, irq, softirq, steal
	Total float64 // Busy plus idle and iowait
}

// CPUReader reads the cumulated CPU times; the default uses gopsutil.
type CPUReader interface {
	CPUTimes(ctx context.Context) (CPUTimes, error)
}

// Deps are what New needs besides its Config.
type Deps struct {
	DB       *sql.DB  // required; migrations applied by appliance
	Presence Presence // required
	// HTTP reads the smart plugs; required only when Config.Plugs is set.
	HTTP Doer
	Log  *slog.Logger     // nil: discard
	Now  func() time.Time // nil: time.Now
	CPU  CPUReader        // nil: gopsutil's cpu.Times
}

// Meter is the energy component.
type Meter struct {
	cfg      Config
	db       *sql.DB
	presence Presence
	http     Doer
	log      *slog.Logger
	now      func() time.Time
	cpu      CPUReader
	cal      *calendar
	classes  map[Class]ClassProfile
	excluded map[Class]bool
	exclDev  map[string]bool
	plugs    map[string]Plug // by device ID

	// newTicker makes the sample ticker; tests replace it.
	newTicker func(time.Duration) (<-chan time.Time, func())

	// Owned by the Serve goroutine.
	started bool
	rapl    []raplZone
	state   sampleState
	warned  map[string]bool // log-once keys

	mu      sync.Mutex // guards the fields below
	profile Profile
	current boxNow
	mcache  metricsCache
}

// boxNow is the box's power over the last sampled interval.
type boxNow struct {
	Watts  float64
	Source Source
	At     time.Time
}

// New checks the configuration and builds the Meter; it does no I/O
// besides loading the calendar's time zone.
func New(cfg Config, d Deps) (*Meter, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.DB == nil {
		return nil, errors.New("energy: new: nil database")
	}
	if d.Presence == nil {
		return nil, errors.New("energy: new: nil presence source")
	}
	if len(cfg.Plugs) > 0 && d.HTTP == nil {
		return nil, errors.New("energy: new: smart plugs configured but no HTTP client")
	}
	cal, err := compileCalendar(cfg.Calendar)
	if err != nil {
		return nil, err
	}
	m := &Meter{
		cfg:      cfg,
		db:       d.DB,
		presence: d.Presence,
		http:     d.HTTP,
		log:      d.Log,
		now:      d.Now,
		cpu:      d.CPU,
		cal:      cal,
		classes:  map[Class]ClassProfile{},
		excluded: map[Class]bool{},
		exclDev:  map[string]bool{},
		plugs:    map[string]Plug{},
		warned:   map[string]bool{},
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.cpu == nil {
		m.cpu = psutilCPU{}
	}
	for _, c := range cfg.Classes {
		m.classes[c.Class] = c
	}
	for _, c := range cfg.LeftOn.ExcludeClasses {
		m.excluded[c] = true
	}
	for _, id := range cfg.LeftOn.ExcludeDevices {
		m.exclDev[id] = true
	}
	for _, p := range cfg.Plugs {
		m.plugs[p.Device] = p
	}
	m.newTicker = func(d time.Duration) (<-chan time.Time, func()) {
		t := time.NewTicker(d)
		return t.C, t.Stop
	}
	return m, nil
}

// Serve samples the box's power, the smart plugs and the left-on alerts
// every Config.SamplePeriod until ctx ends, then records the last interval.
func (m *Meter) Serve(ctx context.Context) error {
	m.start(ctx)
	tick, stop := m.newTicker(m.cfg.SamplePeriod)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			// Account the interval since the last tick so a clean stop
			// loses nothing; bounded so a stuck database cannot hold the
			// shutdown.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			m.sample(fctx)
			cancel()
			return nil
		case <-tick:
			m.sample(ctx)
		}
	}
}

// start detects the box's power sources and the hardware profile, then
// takes the baseline sample. Detection reads sysfs and procfs, which is why
// it is here and not in New.
func (m *Meter) start(ctx context.Context) {
	if !m.started {
		m.detect()
		m.started = true
	}
	m.sample(ctx)
}

// Profile reports the hardware profile used by the CPU model (known after
// Serve started).
func (m *Meter) Profile() Profile {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.profile
}

// warnOnce logs msg at warning level the first time key is seen, and again
// only after clear(key).
func (m *Meter) warnOnce(key, msg string, args ...any) {
	if m.warned[key] {
		return
	}
	m.warned[key] = true
	m.log.Warn(msg, args...)
}

func (m *Meter) clearWarn(key string) {
	if m.warned[key] {
		delete(m.warned, key)
		m.log.Info("energy: recovered", "what", key)
	}
}

func errf(op string, err error) error { return fmt.Errorf("energy: %s: %w", op, err) }
