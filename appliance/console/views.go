package console

import (
	"context"
	"io"
	"time"
)

// Source gives the dashboard's data. Snapshot must be cheap (the console
// calls it every PollInterval while a browser is connected) and must not
// set TakenAt: the console stamps it.
type Source interface {
	Snapshot(ctx context.Context) (Snapshot, error)
}

// Snapshot is the state of the box at a glance: the dashboard, the
// /api/v1/status answer and `preau status` all show it.
type Snapshot struct {
	// TakenAt is when the console read it.
	TakenAt time.Time     `json:"taken_at"`
	Uplink  UplinkStatus  `json:"uplink"`
	Sync    SyncStatus    `json:"sync"`
	Storage StorageStatus `json:"storage"`
	Devices DevicesNow    `json:"devices"`
	Energy  EnergyToday   `json:"energy"`
	Update  UpdateBrief   `json:"update"`
	Errors  []RecentError `json:"errors"`
}

// Uplink states of UplinkStatus.State; other values are shown as they are.
const (
	UplinkOnline   = "online"
	UplinkDegraded = "degraded"
	UplinkOffline  = "offline"
	UplinkUnknown  = "unknown"
)

// UplinkStatus is the Internet link.
type UplinkStatus struct {
	State string `json:"state"`
	// DownBitsPerSec and UpBitsPerSec are the current rates.
	DownBitsPerSec float64 `json:"down_bits_per_sec"`
	UpBitsPerSec   float64 `json:"up_bits_per_sec"`
	// Since is when State last changed; zero when unknown.
	Since time.Time `json:"since,omitzero"`
}

// SyncStatus is the queue of what waits to go up or come down.
type SyncStatus struct {
	Items int   `json:"items"`
	Bytes int64 `json:"bytes"`
}

// StorageStatus is the use of the HTTP cache and of the content store;
// a zero limit or capacity means unknown.
type StorageStatus struct {
	CacheBytes      int64 `json:"cache_bytes"`
	CacheLimitBytes int64 `json:"cache_limit_bytes"`
	StoreBytes      int64 `json:"store_bytes"`
	// DiskBytes is the capacity of the disk that holds the store.
	DiskBytes int64 `json:"disk_bytes"`
}

// DevicesNow counts the LAN devices present now and names a few, most
// recently seen first (the console shows at most ten).
type DevicesNow struct {
	Present int           `json:"present"`
	Known   int           `json:"known"`
	Recent  []DeviceBrief `json:"recent"`
}

// DeviceBrief is one device in the dashboard's short list.
type DeviceBrief struct {
	MAC   string `json:"mac"`
	IP    string `json:"ip"`
	Name  string `json:"name"`
	Class string `json:"class"`
}

// EnergyToday compares today's energy with the same weekday last week
// (box and LAN devices, kWh).
type EnergyToday struct {
	TodayKWh        float64 `json:"today_kwh"`
	LastWeekSameDay float64 `json:"last_week_same_day_kwh"`
	BoxWatts        float64 `json:"box_watts"`
}

// UpdateBrief is the system update state in a line.
type UpdateBrief struct {
	State   string `json:"state"`
	Version string `json:"version"`
}

// RecentError is an error a technician should see.
type RecentError struct {
	At        time.Time `json:"at"`
	Component string    `json:"component"`
	Message   string    `json:"message"`
}

// Devices is the LAN inventory as the console needs it.
type Devices interface {
	// Devices lists every known device.
	Devices(ctx context.Context) ([]Device, error)
	// SetClass records the technician's correction of a device's class
	// (one of the Class… constants); by is the account's login.
	SetClass(ctx context.Context, mac, class, by string) error
	// ExportCSV writes the inventory as CSV (text/csv).
	ExportCSV(ctx context.Context, w io.Writer) error
	// ExportGLPI writes a zip of GLPI native inventory JSON documents.
	ExportGLPI(ctx context.Context, w io.Writer) error
}

// Device classes, as Device.Class and SetClass use them.
const (
	ClassTablet             = "tablet"
	ClassLaptop             = "laptop"
	ClassDesktop            = "desktop"
	ClassPrinter            = "printer"
	ClassInteractiveDisplay = "interactive-display"
	ClassAccessPoint        = "access-point"
	ClassPhone              = "phone"
	ClassUnknown            = "unknown"
)

// Classes lists the device classes in the order the console offers them.
var Classes = []string{ClassTablet, ClassLaptop, ClassDesktop, ClassPrinter,
	ClassInteractiveDisplay, ClassAccessPoint, ClassPhone, ClassUnknown}

// Device is one row of the devices page.
type Device struct {
	MAC    string `json:"mac"`
	IP     string `json:"ip"`
	Name   string `json:"name"`
	Vendor string `json:"vendor"`
	Class  string `json:"class"`
	// ClassSet is true when a technician set the class, false when it is
	// guessed.
	ClassSet bool `json:"class_set"`
	// Randomised is true for a locally administered (random) MAC.
	Randomised bool      `json:"randomised"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	Present    bool      `json:"present"`
}

// Energy gives the energy page's figures.
type Energy interface {
	Energy(ctx context.Context) (EnergyView, error)
}

// Box power sources of EnergyView.BoxSource.
const (
	PowerRAPL     = "rapl"
	PowerBattery  = "battery"
	PowerEstimate = "estimate"
)

// EnergyView is the energy page: the box's power now, kWh per day and
// class over two weeks, CO₂e and "left on" alerts.
type EnergyView struct {
	BoxWatts float64 `json:"box_watts"`
	// BoxSource is PowerRAPL, PowerBattery or PowerEstimate; BoxModel
	// names the hardware profile of an estimate (e.g. "N100").
	BoxSource string `json:"box_source"`
	BoxModel  string `json:"box_model,omitempty"`
	// Week holds the last 7 days, oldest first, today last; PreviousWeek
	// the 7 days before, oldest first.
	Week         []EnergyDay `json:"week"`
	PreviousWeek []EnergyDay `json:"previous_week"`
	// CO2eKgPerKWh is the electricity factor, from FactorSource, dated
	// FactorDate; WeekCO2eKg applies it to Week.
	CO2eKgPerKWh float64   `json:"co2e_kg_per_kwh"`
	FactorSource string    `json:"factor_source"`
	FactorDate   time.Time `json:"factor_date"`
	WeekCO2eKg   float64   `json:"week_co2e_kg"`
	Alerts       []LeftOn  `json:"alerts"`
}

// EnergyDay is one day's kWh by class ("box" for the box itself, then
// the device classes). NoData marks a day without measure: it is shown
// as such, never as zero.
type EnergyDay struct {
	Date    time.Time          `json:"date"`
	ByClass map[string]float64 `json:"by_class"`
	NoData  bool               `json:"no_data,omitempty"`
}

// Total is the day's kWh over every class.
func (d EnergyDay) Total() float64 {
	var t float64
	for _, v := range d.ByClass {
		t += v
	}
	return t
}

// ClassBox is the key of the box's own consumption in EnergyDay.ByClass.
const ClassBox = "box"

// LeftOn is a "left on" alert: a device present outside school hours.
type LeftOn struct {
	MAC   string    `json:"mac"`
	Name  string    `json:"name"`
	Class string    `json:"class"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	KWh   float64   `json:"kwh"`
}

// Updates gives the system update state.
type Updates interface {
	Status(ctx context.Context) (UpdateView, error)
}

// UpdateView is the update page (display only).
type UpdateView struct {
	// State is the engine's state (idle, downloading, verified, written,
	// trying, committed, rolled_back, failed; others shown as they are).
	State          string    `json:"state"`
	Version        string    `json:"version"`
	Available      string    `json:"available,omitempty"`
	LastResult     string    `json:"last_result,omitempty"`
	LastAt         time.Time `json:"last_at,omitzero"`
	RollbackReason string    `json:"rollback_reason,omitempty"`
}
