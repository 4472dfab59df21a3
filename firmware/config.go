package firmware

import (
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"preau/firmware/internal/tufclient"
)

// Config configures the Engine. Zero values take the defaults of
// WithDefaults.
type Config struct {
	// RepositoryURL is the root of the static TUF repository (it holds
	// metadata/ and targets/), http or https. Empty: updates come only on
	// USB keys.
	RepositoryURL string
	// TrustedRoot is the root.json shipped in the image: the keys the box
	// trusts before any rotation. Default /usr/share/preau/update-root.json.
	TrustedRoot string
	// StateDir holds scratch files of the verification. The trusted
	// metadata and the update's state live in SQLite. Default
	// /var/lib/preau/firmware.
	StateDir string
	// Channel and Arch name the release to follow: the target
	// <channel>/<arch>/release.json. Defaults "stable" and the machine's
	// (x86_64, aarch64).
	Channel string
	Arch    string
	// Version is the version of the running image (the build's). Required.
	Version string
	// BuildTime is when the running image was built: the clock is not
	// plausible before it. Zero: unknown.
	BuildTime time.Time `toml:"-" json:"-"`

	// WindowStart and WindowEnd bound the maintenance window, "HH:MM"
	// local time of Location; reboots happen only inside it. It may span
	// midnight. Defaults 01:00 and 05:00.
	WindowStart string
	WindowEnd   string
	// Location is the time zone of the window. Default Europe/Paris.
	Location string

	// HealthTimeout is how long the new slot has to pass the health gate
	// after it starts. Default 5 min.
	HealthTimeout time.Duration
	// HealthMaxWait bounds the gate when a check reports it is still
	// working (a long data migration). Default 2 h.
	HealthMaxWait time.Duration
	// ExtendStep is how much time each extension asks systemd for
	// (EXTEND_TIMEOUT_USEC). Default 5 min.
	ExtendStep time.Duration
	// HealthPoll is the interval between health checks. Default 1 s.
	HealthPoll time.Duration

	// MaxReentries caps how many times a state is entered (restarts,
	// errors) without progress before the attempt fails or rolls back.
	// Default 5.
	MaxReentries int
	// OfflineGrace is how long past its expiry the timestamp, snapshot and
	// targets metadata of a USB update are still accepted (a key prepared
	// weeks before the visit). Never applies to root, nor to network
	// updates. Default 30 days; negative means none.
	OfflineGrace time.Duration
	// CheckInterval is how often Serve looks for a new release and applies
	// it. Default 6 h; negative: Serve only resumes interrupted updates.
	CheckInterval time.Duration
	// CheckpointBytes bounds what a restart downloads again. Default 8 MiB.
	CheckpointBytes int64
	// MaxImageBytes bounds each part. Default 32 GiB.
	MaxImageBytes int64
}

// Defaults of Config.
const (
	DefaultTrustedRoot     = "/usr/share/preau/update-root.json"
	DefaultStateDir        = "/var/lib/preau/firmware"
	DefaultChannel         = "stable"
	DefaultWindowStart     = "01:00"
	DefaultWindowEnd       = "05:00"
	DefaultLocation        = "Europe/Paris"
	DefaultHealthTimeout   = 5 * time.Minute
	DefaultHealthMaxWait   = 2 * time.Hour
	DefaultExtendStep      = 5 * time.Minute
	DefaultMaxReentries    = 5
	DefaultOfflineGrace    = 30 * 24 * time.Hour
	DefaultCheckInterval   = 6 * time.Hour
	DefaultCheckpointBytes = 8 << 20
	DefaultMaxImageBytes   = 32 << 30
)

// MachineArch is the release architecture of this machine.
func MachineArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.TrustedRoot == "" {
		c.TrustedRoot = DefaultTrustedRoot
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Channel == "" {
		c.Channel = DefaultChannel
	}
	if c.Arch == "" {
		c.Arch = MachineArch()
	}
	if c.WindowStart == "" {
		c.WindowStart = DefaultWindowStart
	}
	if c.WindowEnd == "" {
		c.WindowEnd = DefaultWindowEnd
	}
	if c.Location == "" {
		c.Location = DefaultLocation
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = DefaultHealthTimeout
	}
	if c.HealthMaxWait == 0 {
		c.HealthMaxWait = DefaultHealthMaxWait
	}
	if c.ExtendStep == 0 {
		c.ExtendStep = DefaultExtendStep
	}
	if c.HealthPoll == 0 {
		c.HealthPoll = time.Second
	}
	if c.MaxReentries == 0 {
		c.MaxReentries = DefaultMaxReentries
	}
	if c.OfflineGrace == 0 {
		c.OfflineGrace = DefaultOfflineGrace
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.CheckpointBytes == 0 {
		c.CheckpointBytes = DefaultCheckpointBytes
	}
	if c.MaxImageBytes == 0 {
		c.MaxImageBytes = DefaultMaxImageBytes
	}
	return c
}

// Validate checks the configuration; messages name the field.
func (c Config) Validate() error {
	if c.RepositoryURL != "" {
		u, err := url.Parse(c.RepositoryURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("firmware: repository_url %q: want an http(s) URL", c.RepositoryURL)
		}
	}
	if c.TrustedRoot == "" {
		return errors.New("firmware: trusted_root: required")
	}
	if c.StateDir == "" {
		return errors.New("firmware: state_dir: required")
	}
	if err := tufclient.CheckTargetPath(tufclient.ManifestPath(c.Channel, c.Arch)); err != nil || strings.Contains(c.Channel, "/") || strings.Contains(c.Arch, "/") {
		return fmt.Errorf("firmware: channel %q / arch %q: want plain names", c.Channel, c.Arch)
	}
	if c.Version == "" {
		return errors.New("firmware: version: required (the running image's version)")
	}
	w, err := c.window()
	if err != nil {
		return err
	}
	if length := w.length(); length < c.HealthTimeout+20*time.Minute {
		return fmt.Errorf("firmware: window_start, window_end: the window (%v) must exceed health_timeout by 20 min", length)
	}
	if c.HealthTimeout <= 0 || c.HealthMaxWait < c.HealthTimeout || c.ExtendStep <= 0 || c.HealthPoll <= 0 {
		return errors.New("firmware: health_timeout, health_max_wait, extend_step, health_poll: want 0 < timeout <= max wait, positive step and poll")
	}
	if c.MaxReentries < 1 || c.MaxReentries > 100 {
		return fmt.Errorf("firmware: max_reentries %d: want 1 to 100", c.MaxReentries)
	}
	if c.CheckpointBytes < 64<<10 {
		return fmt.Errorf("firmware: checkpoint_bytes %d: want at least 64 KiB", c.CheckpointBytes)
	}
	if c.MaxImageBytes <= 0 {
		return fmt.Errorf("firmware: max_image_bytes %d: want > 0", c.MaxImageBytes)
	}
	return nil
}

// Window is the maintenance window: from Start to End (minutes after
// local midnight), wrapping past midnight when End <= Start.
type Window struct {
	Start, End int
	Loc        *time.Location
}

func (c Config) window() (Window, error) {
	s, err := parseClock(c.WindowStart)
	if err != nil {
		return Window{}, fmt.Errorf("firmware: window_start: %w", err)
	}
	e, err := parseClock(c.WindowEnd)
	if err != nil {
		return Window{}, fmt.Errorf("firmware: window_end: %w", err)
	}
	if s == e {
		return Window{}, errors.New("firmware: window_start equals window_end: the window would be empty")
	}
	loc, err := time.LoadLocation(c.Location)
	if err != nil {
		return Window{}, fmt.Errorf("firmware: location %q: %w", c.Location, err)
	}
	return Window{Start: s, End: e, Loc: loc}, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 || len(m) != 2 {
		return 0, fmt.Errorf("%q: want HH:MM", s)
	}
	return hh*60 + mm, nil
}

// length is the window's duration on an ordinary day.
func (w Window) length() time.Duration {
	d := w.End - w.Start
	if d <= 0 {
		d += 24 * 60
	}
	return time.Duration(d) * time.Minute
}

// Contains reports whether t is inside the window.
func (w Window) Contains(t time.Time) bool {
	lt := t.In(w.Loc)
	m := lt.Hour()*60 + lt.Minute()
	if w.Start < w.End {
		return m >= w.Start && m < w.End
	}
	return m >= w.Start || m < w.End
}

// Next returns t if it is inside the window, else the next opening.
// Wall-clock times: on DST days the night is shorter or longer.
func (w Window) Next(t time.Time) time.Time {
	if w.Contains(t) {
		return t
	}
	lt := t.In(w.Loc)
	for d := 0; d < 3; d++ {
		day := lt.AddDate(0, 0, d)
		open := time.Date(day.Year(), day.Month(), day.Day(), w.Start/60, w.Start%60, 0, 0, w.Loc)
		if open.After(t) && w.Contains(open) {
			return open
		}
		if open.After(t) {
			// A DST gap swallowed the opening minute: the first minute after it.
			return open.Add(time.Hour)
		}
	}
	return t.Add(24 * time.Hour)
}
