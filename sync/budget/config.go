package budget

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Class is the kind of a background transfer; a lower value has a higher
// priority.
type Class int

// Classes, highest priority first.
const (
	ClassHandIn   Class = iota + 1 // pupils' work going to the teachers' folders
	ClassUpdate                    // software updates of the box
	ClassPrefetch                  // content fetched ahead of need
	numClasses    = 3
)

// weights share the rate between classes transferring at the same time
// (a lower class already running when a higher one starts keeps a small
// share, so its server-side upload session does not time out).
var weights = [numClasses + 1]float64{ClassHandIn: 8, ClassUpdate: 4, ClassPrefetch: 1}

func (c Class) valid() bool { return c >= ClassHandIn && c <= ClassPrefetch }

// String is the class's name in logs and metric labels.
func (c Class) String() string {
	switch c {
	case ClassHandIn:
		return "hand-in"
	case ClassUpdate:
		return "update"
	case ClassPrefetch:
		return "prefetch"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Dialer opens the scheduler's connections; *net.Dialer satisfies it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Config of the scheduler. Zero values take the defaults of WithDefaults.
//
// Background transfers may start when the clock is set and the day is a
// holiday, or the time is in one of Windows and not in ClassHours. So
// Windows say when the link is free for us, and ClassHours are a veto
// that protects lessons even if a window is set too wide.
type Config struct {
	// Windows: weekly ranges open to background traffic. nil means
	// DefaultWindows (evenings and nights 17:30–08:00, weekends, Wednesday
	// afternoon); an empty non-nil slice means none (holidays only).
	Windows []Span
	// ClassHours: weekly ranges when background transfers never start,
	// even inside a window. nil means DefaultClassHours (Monday, Tuesday,
	// Thursday, Friday 08:00–17:30 and Wednesday 08:00–12:00).
	ClassHours []Span
	// Holidays: days open all day. None by default.
	Holidays []DateRange
	// Location of the school's clock. Default time.Local.
	Location *time.Location `toml:"-" json:"-"`

	// TargetDelay is the queueing delay the scheduler allows itself to
	// add at the bottleneck (LEDBAT's TARGET). Default 25 ms; 5 ms–1 s.
	TargetDelay time.Duration
	// MaxRate is a hard ceiling in bytes/s of each direction; 0 = none.
	MaxRate int64
	// MinRate is the floor of each direction's rate in bytes/s, so
	// transfers progress even beside a busy foreground. Default 4 KiB/s.
	MinRate int64
	// InitialRate is the rate before the first delay samples, in bytes/s.
	// Default 32 KiB/s.
	InitialRate int64
	// DailyCap bounds the bytes sent and received by background transfers
	// per local day; 0 = no cap. Once spent, transfers fail with
	// ErrCapSpent and Wait blocks until midnight.
	DailyCap int64
	// Congestion is the TCP congestion control of the scheduler's own
	// connections, when the kernel allows it. Default "bbr": a loss-based
	// control such as cubic backs off on every random loss of a lossy
	// rural line and cannot fill it; the delay-based rate above is what
	// keeps the scheduler polite. "system" keeps the system's default.
	Congestion string

	// Dialer opens connections; nil means a net.Dialer with a 30 s
	// timeout. Tests dial from inside a network namespace with it.
	Dialer Dialer `toml:"-" json:"-"`
}

// Defaults of Config.
const (
	DefaultTargetDelay = 25 * time.Millisecond
	DefaultMinRate     = 4 << 10
	DefaultInitialRate = 32 << 10
	DefaultCongestion  = "bbr"
)

// DefaultWindows: evenings and nights, weekends, Wednesday afternoon.
func DefaultWindows() []Span {
	return []Span{
		{Days: EveryDay, From: 17*time.Hour + 30*time.Minute, To: 8 * time.Hour},
		{Days: Saturday | Sunday, From: 0, To: 24 * time.Hour},
		{Days: Wednesday, From: 12 * time.Hour, To: 17*time.Hour + 30*time.Minute},
	}
}

// DefaultClassHours: Monday–Friday 08:00–17:30 except Wednesday afternoon.
func DefaultClassHours() []Span {
	return []Span{
		{Days: Monday | Tuesday | Thursday | Friday, From: 8 * time.Hour, To: 17*time.Hour + 30*time.Minute},
		{Days: Wednesday, From: 8 * time.Hour, To: 12 * time.Hour},
	}
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Windows == nil {
		c.Windows = DefaultWindows()
	}
	if c.ClassHours == nil {
		c.ClassHours = DefaultClassHours()
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	if c.TargetDelay == 0 {
		c.TargetDelay = DefaultTargetDelay
	}
	if c.MinRate == 0 {
		c.MinRate = DefaultMinRate
	}
	if c.InitialRate == 0 {
		c.InitialRate = max(DefaultInitialRate, c.MinRate)
		if c.MaxRate > 0 {
			c.InitialRate = min(c.InitialRate, c.MaxRate)
		}
	}
	if c.Congestion == "" {
		c.Congestion = DefaultCongestion
	}
	if c.Dialer == nil {
		c.Dialer = &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	}
	return c
}

// Validate reports the first invalid field, in French and English (see
// ConfigError).
func (c Config) Validate() error {
	for i, s := range c.Windows {
		if err := s.validate(); err != nil {
			return fieldErr(fmt.Sprintf("windows[%d]", i), err)
		}
	}
	for i, s := range c.ClassHours {
		if err := s.validate(); err != nil {
			return fieldErr(fmt.Sprintf("class_hours[%d]", i), err)
		}
	}
	for i, h := range c.Holidays {
		if !h.From.valid() || !h.To.valid() || h.To.before(h.From) {
			return configErr(fmt.Sprintf("holidays[%d]", i),
				fmt.Sprintf("%s : dates invalides ou fin avant le début", h), fmt.Sprintf("%s: invalid dates or end before start", h))
		}
	}
	switch {
	case c.Location == nil:
		return configErr("location", "fuseau horaire absent", "no time zone")
	case c.TargetDelay < 5*time.Millisecond || c.TargetDelay > time.Second:
		return configErr("target_delay",
			fmt.Sprintf("%s hors limites ; attendu entre 5ms et 1s (25ms conseillé)", c.TargetDelay),
			fmt.Sprintf("%s out of range; expected between 5ms and 1s (25ms advised)", c.TargetDelay))
	case c.MaxRate < 0:
		return configErr("max_rate", "débit négatif ; attendu 0 (aucun plafond) ou un débit en octets/s", "negative rate; expected 0 (no ceiling) or bytes/s")
	case c.MinRate <= 0:
		return configErr("min_rate", "débit plancher nul ou négatif ; attendu des octets/s", "floor rate zero or negative; expected bytes/s")
	case c.InitialRate <= 0:
		return configErr("initial_rate", "débit initial nul ou négatif ; attendu des octets/s", "initial rate zero or negative; expected bytes/s")
	case c.DailyCap < 0:
		return configErr("daily_cap", "plafond négatif ; attendu 0 (aucun) ou des octets par jour", "negative cap; expected 0 (none) or bytes per day")
	case c.MaxRate > 0 && c.MinRate > c.MaxRate:
		return configErr("min_rate",
			fmt.Sprintf("plancher %d o/s au-dessus du plafond max_rate %d o/s", c.MinRate, c.MaxRate),
			fmt.Sprintf("floor %d B/s above max_rate %d B/s", c.MinRate, c.MaxRate))
	case c.InitialRate < c.MinRate || c.MaxRate > 0 && c.InitialRate > c.MaxRate:
		return configErr("initial_rate", "débit initial hors de [min_rate, max_rate]", "initial rate outside [min_rate, max_rate]")
	case c.Congestion == "" || len(c.Congestion) > 15:
		return configErr("congestion", "nom d'algorithme TCP invalide (par ex. « bbr » ou « system »)",
			"invalid TCP congestion control name (e.g. \"bbr\" or \"system\")")
	case c.Dialer == nil:
		return configErr("dialer", "aucun moyen d'ouvrir une connexion", "no dialer")
	}
	return nil
}

// ConfigError is a refused setting. Error gives the French text, English
// the English one; Field names the setting.
type ConfigError struct {
	Field  string
	FR, EN string
}

func (e *ConfigError) Error() string   { return "budget : " + e.Field + " : " + e.FR }
func (e *ConfigError) English() string { return "budget: " + e.Field + ": " + e.EN }

func configErr(field, fr, en string) *ConfigError {
	return &ConfigError{Field: field, FR: fr, EN: en}
}

func fieldErr(field string, err error) *ConfigError {
	e := err.(*ConfigError)
	return &ConfigError{Field: field, FR: e.FR, EN: e.EN}
}
