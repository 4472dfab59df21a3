package energy

import (
	"fmt"
	"net/url"
	"slices"
	"time"
)

// Config of the energy component. Zero values take the defaults of
// WithDefaults; the default figures and where they come from are in
// factors.go.
type Config struct {
	// SysRoot is where sysfs is mounted. Default "/sys"; tests point it
	// at a synthetic tree.
	SysRoot string
	// ProcRoot is where procfs is mounted (device-tree model, cpuinfo).
	// Default "/proc".
	ProcRoot string

	// BoxSource forces the box's power source: "" or "auto" (RAPL, else a
	// discharging battery/UPS, else the CPU model), "rapl", "battery" or
	// "model". A forced source that cannot be read leaves a gap ("pas de
	// mesure"), it does not fall back to another source.
	BoxSource string
	// Profile names the hardware profile of the CPU model ("rpi4", "rpi5",
	// "n100", "x86" or one of Profiles). Empty: guessed from the
	// device-tree model, then the CPU model name.
	Profile string
	// Profiles add to or replace (same Name) the built-in profiles.
	Profiles []Profile

	// SamplePeriod between two samples of the box and the plugs. Default
	// 60 s.
	SamplePeriod time.Duration
	// MaxGap is the longest interval between two samples that is still
	// accounted; a longer one (suspend, stopped process, stuck clock) is a
	// gap: no energy is invented for it. Default 5 × SamplePeriod.
	MaxGap time.Duration

	// Classes add to or replace (same Class) the built-in table of device
	// classes: watts while present, manufacturing footprint, life.
	Classes []ClassProfile
	// Electricity is the CO₂e factor of the electricity used. Default:
	// France mainland, ADEME Base Empreinte, 2022.
	Electricity ElectricityFactor

	// Calendar is the school's timetable; its zero value is the default
	// week (Mon, Tue, Thu, Fri 08:00–17:00, Wed 08:00–12:00,
	// Europe/Paris) with no holiday.
	Calendar Calendar
	// LeftOn configures the "left on" alerts.
	LeftOn LeftOn

	// Plugs are the smart plugs to read, each mapped to a device.
	Plugs []Plug
	// PlugTimeout bounds one plug request. Default 5 s.
	PlugTimeout time.Duration
}

// LeftOn configures the "left on" alerts.
type LeftOn struct {
	// Threshold: an alert fires when a device is present for more than
	// this (cumulated) during one out-of-hours period. Default 30 min.
	Threshold time.Duration
	// ExcludeClasses never raise an alert. nil means the default,
	// {ClassAccessPoint}; an empty non-nil slice excludes none.
	ExcludeClasses []Class
	// ExcludeDevices (device IDs) never raise an alert, e.g. the box's own
	// interfaces or a server that must stay on.
	ExcludeDevices []string
}

// Box source names of Config.BoxSource.
const (
	BoxAuto    = "auto"
	BoxRAPL    = "rapl"
	BoxBattery = "battery"
	BoxModel   = "model"
)

// Defaults.
const (
	DefaultSamplePeriod = 60 * time.Second
	DefaultThreshold    = 30 * time.Minute
	DefaultPlugTimeout  = 5 * time.Second
	DefaultTimezone     = "Europe/Paris"
)

// WithDefaults fills the zero fields and merges the built-in tables with
// the configured ones.
func (c Config) WithDefaults() Config {
	if c.SysRoot == "" {
		c.SysRoot = "/sys"
	}
	if c.ProcRoot == "" {
		c.ProcRoot = "/proc"
	}
	if c.BoxSource == "" {
		c.BoxSource = BoxAuto
	}
	if c.SamplePeriod == 0 {
		c.SamplePeriod = DefaultSamplePeriod
	}
	if c.MaxGap == 0 {
		c.MaxGap = 5 * c.SamplePeriod
	}
	c.Profiles = mergeProfiles(DefaultProfiles(), c.Profiles)
	c.Classes = mergeClasses(DefaultClasses(), c.Classes)
	if c.Electricity == (ElectricityFactor{}) {
		c.Electricity = DefaultElectricity()
	}
	c.Calendar = c.Calendar.WithDefaults()
	if c.LeftOn.Threshold == 0 {
		c.LeftOn.Threshold = DefaultThreshold
	}
	if c.LeftOn.ExcludeClasses == nil {
		c.LeftOn.ExcludeClasses = []Class{ClassAccessPoint}
	}
	if c.PlugTimeout == 0 {
		c.PlugTimeout = DefaultPlugTimeout
	}
	for i := range c.Plugs {
		if c.Plugs[i].Class == "" {
			c.Plugs[i].Class = ClassUnknown
		}
	}
	return c
}

// Validate checks the configuration; errors name the field.
func (c Config) Validate() error {
	switch c.BoxSource {
	case BoxAuto, BoxRAPL, BoxBattery, BoxModel:
	default:
		return fmt.Errorf("energy: BoxSource %q: want auto, rapl, battery or model", c.BoxSource)
	}
	if c.SamplePeriod < time.Second {
		return fmt.Errorf("energy: SamplePeriod %v: want at least 1s", c.SamplePeriod)
	}
	if c.MaxGap < c.SamplePeriod {
		return fmt.Errorf("energy: MaxGap %v: want at least SamplePeriod (%v)", c.MaxGap, c.SamplePeriod)
	}
	for _, p := range c.Profiles {
		if p.Name == "" {
			return fmt.Errorf("energy: Profiles: a profile has no Name")
		}
		if p.IdleWatts <= 0 || p.MaxWatts < p.IdleWatts {
			return fmt.Errorf("energy: Profiles[%s]: want 0 < IdleWatts <= MaxWatts, got %v and %v", p.Name, p.IdleWatts, p.MaxWatts)
		}
	}
	if c.Profile != "" && !slices.ContainsFunc(c.Profiles, func(p Profile) bool { return p.Name == c.Profile }) {
		return fmt.Errorf("energy: Profile %q: no such profile", c.Profile)
	}
	for _, k := range c.Classes {
		if k.Class == "" {
			return fmt.Errorf("energy: Classes: an entry has no Class")
		}
		if k.Watts < 0 {
			return fmt.Errorf("energy: Classes[%s].Watts %v: want >= 0", k.Class, k.Watts)
		}
		if k.ManufacturingKgCO2e < 0 {
			return fmt.Errorf("energy: Classes[%s].ManufacturingKgCO2e %v: want >= 0", k.Class, k.ManufacturingKgCO2e)
		}
		if k.ManufacturingKgCO2e > 0 && k.LifeYears <= 0 {
			return fmt.Errorf("energy: Classes[%s].LifeYears %v: want > 0 when a manufacturing footprint is given", k.Class, k.LifeYears)
		}
	}
	if !slices.ContainsFunc(c.Classes, func(k ClassProfile) bool { return k.Class == ClassUnknown }) {
		return fmt.Errorf("energy: Classes: the %q class is required", ClassUnknown)
	}
	e := c.Electricity
	if e.KgCO2ePerKWh < 0 || e.KgCO2ePerKWh > 2 {
		return fmt.Errorf("energy: Electricity.KgCO2ePerKWh %v: want between 0 and 2", e.KgCO2ePerKWh)
	}
	if e.Year < 1990 || e.Year > 2100 {
		return fmt.Errorf("energy: Electricity.Year %d: want the year the factor describes", e.Year)
	}
	if e.Source == "" {
		return fmt.Errorf("energy: Electricity.Source: say where the factor comes from")
	}
	if err := c.Calendar.Validate(); err != nil {
		return err
	}
	if c.LeftOn.Threshold <= 0 {
		return fmt.Errorf("energy: LeftOn.Threshold %v: want > 0", c.LeftOn.Threshold)
	}
	if c.PlugTimeout <= 0 {
		return fmt.Errorf("energy: PlugTimeout %v: want > 0", c.PlugTimeout)
	}
	seen := map[string]bool{}
	for i, p := range c.Plugs {
		if p.Device == "" {
			return fmt.Errorf("energy: Plugs[%d].Device: want the ID of the device it measures", i)
		}
		if seen[p.Device] {
			return fmt.Errorf("energy: Plugs[%d].Device %q: already measured by another plug", i, p.Device)
		}
		seen[p.Device] = true
		switch p.Kind {
		case PlugShellyGen1, PlugShellyGen2, PlugTasmota:
		default:
			return fmt.Errorf("energy: Plugs[%d].Kind %q: want %s, %s or %s", i, p.Kind, PlugShellyGen1, PlugShellyGen2, PlugTasmota)
		}
		u, err := url.Parse(p.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("energy: Plugs[%d].URL %q: want http://address of the plug", i, p.URL)
		}
		if p.Channel < 0 {
			return fmt.Errorf("energy: Plugs[%d].Channel %d: want >= 0", i, p.Channel)
		}
	}
	return nil
}

func mergeProfiles(base, extra []Profile) []Profile {
	out := slices.Clone(base)
	for _, p := range extra {
		if i := slices.IndexFunc(out, func(q Profile) bool { return q.Name == p.Name }); i >= 0 {
			out[i] = p
		} else {
			out = append(out, p)
		}
	}
	return out
}

func mergeClasses(base, extra []ClassProfile) []ClassProfile {
	out := slices.Clone(base)
	for _, k := range extra {
		if i := slices.IndexFunc(out, func(q ClassProfile) bool { return q.Class == k.Class }); i >= 0 {
			out[i] = k
		} else {
			out = append(out, k)
		}
	}
	return out
}
