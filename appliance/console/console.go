// Package console owns the technician console of the box: its accounts
// (technicien, direction, enseignant; argon2id passwords, optional TOTP),
// the first-run setup code, sessions, CSRF protection, sign-in lock-outs,
// the audit log, API tokens, the network restriction, the live dashboard
// over WebSocket and the console's HTML pages and JSON API under /console/
// and /api/v1/, French first with an English switch.
//
// It renders data it does not own: the dashboard snapshot, the LAN devices,
// the energy figures and the update state come through the small
// interfaces it declares here (Source, Devices, Energy, Updates), which
// appliance implements over inventory, energy, firmware and the rest. It
// keeps its own tables in the *sql.DB appliance hands it (Migrations).
//
// Only package appliance imports console; console imports no other Préau
// package and never the appliance root.
package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Config holds the console's settings. The zero value, after WithDefaults,
// is a valid configuration.
type Config struct {
	// SchoolName is shown in every page's header. Default "Préau".
	SchoolName string
	// DefaultLanguage is "fr" or "en", used when the visitor has neither
	// chosen (?lang=) nor sent an Accept-Language naming one. Default "fr".
	DefaultLanguage string
	// Networks are the source networks that may reach the console and its
	// API (e.g. the staff VLAN, a VPN). Empty: any source may see the
	// sign-in page; every other page still needs a signed-in account with
	// the right role, whatever the network. Default empty.
	Networks []netip.Prefix
	// IdleTimeout ends a session nobody used for that long. Default 30 min.
	IdleTimeout time.Duration
	// SessionLifetime ends a session that long after sign-in, used or not.
	// Default 12 h.
	SessionLifetime time.Duration
	// SecureCookies marks cookies Secure even on plain HTTP requests (for a
	// box behind a TLS front end). Cookies are always Secure on TLS
	// requests. Default false.
	SecureCookies bool
	// LockAfter failed sign-ins of one login within FailureWindow lock that
	// login for LockFor; each lock in a row lasts twice the one before, up
	// to MaxLock. Defaults 5, 15 min, 15 min, 24 h.
	LockAfter     int
	FailureWindow time.Duration
	LockFor       time.Duration
	MaxLock       time.Duration
	// IPLockAfter failed sign-ins (or setup codes) from one address within
	// FailureWindow lock that address the same way. Default 20.
	IPLockAfter int
	// PollInterval is how often the dashboard's Source is read while at
	// least one browser is connected. Default 2 s.
	PollInterval time.Duration
	// PingInterval is how often a dashboard WebSocket is pinged; a client
	// that does not answer within twice that is dropped. Default 30 s.
	PingInterval time.Duration
	// MaxSockets bounds the dashboards connected at once. Default 50.
	MaxSockets int
	// AuditRetention is how long audit entries are kept. Default 400 days.
	AuditRetention time.Duration
	// TOTPIssuer names the box in authenticator apps. Default "Préau".
	TOTPIssuer string
	// Location is the time zone of the times shown. Default time.Local.
	Location *time.Location `toml:"-" json:"-"`
}

// Defaults of Config.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultSessionLifetime = 12 * time.Hour
	DefaultLockAfter       = 5
	DefaultFailureWindow   = 15 * time.Minute
	DefaultLockFor         = 15 * time.Minute
	DefaultMaxLock         = 24 * time.Hour
	DefaultIPLockAfter     = 20
	DefaultPollInterval    = 2 * time.Second
	DefaultPingInterval    = 30 * time.Second
	DefaultMaxSockets      = 50
	DefaultAuditRetention  = 400 * 24 * time.Hour
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if strings.TrimSpace(c.SchoolName) == "" {
		c.SchoolName = "Préau"
	}
	if c.DefaultLanguage == "" {
		c.DefaultLanguage = "fr"
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.SessionLifetime == 0 {
		c.SessionLifetime = DefaultSessionLifetime
	}
	if c.LockAfter == 0 {
		c.LockAfter = DefaultLockAfter
	}
	if c.FailureWindow == 0 {
		c.FailureWindow = DefaultFailureWindow
	}
	if c.LockFor == 0 {
		c.LockFor = DefaultLockFor
	}
	if c.MaxLock == 0 {
		c.MaxLock = DefaultMaxLock
	}
	if c.IPLockAfter == 0 {
		c.IPLockAfter = DefaultIPLockAfter
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.MaxSockets == 0 {
		c.MaxSockets = DefaultMaxSockets
	}
	if c.AuditRetention == 0 {
		c.AuditRetention = DefaultAuditRetention
	}
	if strings.TrimSpace(c.TOTPIssuer) == "" {
		c.TOTPIssuer = "Préau"
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	return c
}

// Validate reports the first invalid setting, naming its field.
func (c Config) Validate() error {
	if len(c.SchoolName) > 200 || strings.ContainsAny(c.SchoolName, "\x00\r\n") {
		return errors.New("console config: SchoolName must be one line of at most 200 bytes")
	}
	if _, ok := catalogues[c.DefaultLanguage]; !ok {
		return fmt.Errorf("console config: DefaultLanguage %q: want \"fr\" or \"en\"", c.DefaultLanguage)
	}
	for i, p := range c.Networks {
		if !p.IsValid() {
			return fmt.Errorf("console config: Networks[%d] is not a valid prefix", i)
		}
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"IdleTimeout", c.IdleTimeout}, {"SessionLifetime", c.SessionLifetime},
		{"FailureWindow", c.FailureWindow}, {"LockFor", c.LockFor}, {"MaxLock", c.MaxLock},
		{"PollInterval", c.PollInterval}, {"PingInterval", c.PingInterval},
		{"AuditRetention", c.AuditRetention},
	}
	for _, p := range positive {
		if p.d < 0 {
			return fmt.Errorf("console config: %s %s must be positive", p.name, p.d)
		}
	}
	if c.IdleTimeout > c.SessionLifetime {
		return fmt.Errorf("console config: IdleTimeout %s is longer than SessionLifetime %s", c.IdleTimeout, c.SessionLifetime)
	}
	if c.MaxLock < c.LockFor {
		return fmt.Errorf("console config: MaxLock %s is shorter than LockFor %s", c.MaxLock, c.LockFor)
	}
	if c.PollInterval < 100*time.Millisecond {
		return fmt.Errorf("console config: PollInterval %s is below 100ms", c.PollInterval)
	}
	if c.PingInterval < time.Second {
		return fmt.Errorf("console config: PingInterval %s is below 1s", c.PingInterval)
	}
	if c.LockAfter < 1 || c.LockAfter > 100 {
		return fmt.Errorf("console config: LockAfter %d: want 1 to 100", c.LockAfter)
	}
	if c.IPLockAfter < c.LockAfter || c.IPLockAfter > 10000 {
		return fmt.Errorf("console config: IPLockAfter %d: want LockAfter (%d) to 10000", c.IPLockAfter, c.LockAfter)
	}
	if c.MaxSockets < 1 {
		return fmt.Errorf("console config: MaxSockets %d: want at least 1", c.MaxSockets)
	}
	if len(c.TOTPIssuer) > 100 || strings.ContainsAny(c.TOTPIssuer, ":\x00\r\n") {
		return errors.New("console config: TOTPIssuer must be one line of at most 100 bytes without ':'")
	}
	return nil
}

// Deps are what the console is given by appliance. DB and Source are
// required; Devices, Energy and Updates may be nil, their pages then say
// the feature is not available.
type Deps struct {
	// DB is the box's database, with Migrations applied.
	DB *sql.DB
	// Log is the console's logger. Default: discard.
	Log *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Source gives the dashboard's snapshot.
	Source Source
	// Devices is the LAN inventory.
	Devices Devices
	// Energy gives the energy page's figures.
	Energy Energy
	// Updates gives the system update state.
	Updates Updates
}

// Console serves the technician console. It is safe for concurrent use.
type Console struct {
	cfg     Config
	db      *sql.DB
	log     *slog.Logger
	now     func() time.Time
	src     Source
	devices Devices
	energy  Energy
	updates Updates

	pages   map[string]*template.Template
	assets  map[string]asset // by hashed name
	urls    map[string]string
	routes  []route
	handler http.Handler
	hashing chan struct{} // bounds concurrent argon2id computations
	hub     *hub
	// dummyHash is checked when a login is unknown, so that the answer
	// takes as long as for a known one.
	dummyHash string

	seenMu sync.Mutex
	seen   map[string]time.Time // token hash → last "used" write (throttles writes)

	logMu   sync.Mutex
	logSeen map[string]time.Time // throttles repeated refusal logs
}

// New checks cfg (after defaults) and deps and prepares the templates; it
// does no I/O.
func New(cfg Config, deps Deps) (*Console, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.DB == nil {
		return nil, errors.New("new console: DB is nil")
	}
	if deps.Source == nil {
		return nil, errors.New("new console: Source is nil")
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	c := &Console{
		cfg: cfg, db: deps.DB, log: deps.Log, now: deps.Now,
		src: deps.Source, devices: deps.Devices, energy: deps.Energy, updates: deps.Updates,
		hashing: make(chan struct{}, 2),
		seen:    map[string]time.Time{},
		logSeen: map[string]time.Time{},
	}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, fmt.Errorf("new console: %w", err)
	}
	if c.assets, c.urls, err = loadAssets(); err != nil {
		return nil, fmt.Errorf("new console: %w", err)
	}
	c.dummyHash = dummyPHC()
	c.hub = newHub(c)
	c.routes = c.routeTable()
	c.handler = c.buildHandler()
	return c, nil
}

// Handler returns the console's HTTP handler, serving /console/... and
// /api/...; appliance mounts it at both prefixes.
func (c *Console) Handler() http.Handler { return c.handler }

// Serve runs the dashboard's poller (only while a browser is connected)
// and the housekeeping of expired sessions, lock-outs and old audit
// entries, until ctx ends. It returns nil then.
func (c *Console) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.hub.run(ctx)
	}()
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	c.housekeeping(ctx)
	for {
		select {
		case <-ctx.Done():
			c.hub.closeAll()
			wg.Wait()
			return nil
		case <-t.C:
			c.housekeeping(ctx)
		}
	}
}

// housekeeping deletes what has expired. Failures are logged: the next
// round tries again.
func (c *Console) housekeeping(ctx context.Context) {
	now := c.now()
	// A lock-out row is forgotten once its lock and its window are both
	// older than MaxLock, so the doubling of locks in a row is remembered
	// that long.
	old := now.Add(-c.cfg.MaxLock).UnixMilli()
	steps := []struct {
		what string
		q    string
		args []any
	}{
		{"expired sessions", "DELETE FROM console_sessions WHERE expires_at <= ? OR seen_at <= ?",
			[]any{now.UnixMilli(), now.Add(-c.cfg.IdleTimeout).UnixMilli()}},
		{"old lock-outs", "DELETE FROM console_lockouts WHERE locked_until < ? AND window_start < ?", []any{old, old}},
		{"old audit entries", "DELETE FROM console_audit WHERE at < ?", []any{now.Add(-c.cfg.AuditRetention).UnixMilli()}},
	}
	for _, s := range steps {
		if _, err := c.db.ExecContext(ctx, s.q, s.args...); err != nil && ctx.Err() == nil {
			c.log.Warn("console housekeeping failed", "what", s.what, "err", err)
		}
	}
}

// logRefusal logs a refused request once a minute per reason and
// address: a device that keeps knocking does not fill the journal.
func (c *Console) logRefusal(r *http.Request, reason string) {
	key := reason + " " + clientIP(r)
	now := time.Now()
	c.logMu.Lock()
	last, seen := c.logSeen[key]
	if !seen || now.Sub(last) >= time.Minute {
		if len(c.logSeen) >= 1000 {
			clear(c.logSeen)
		}
		c.logSeen[key] = now
	}
	c.logMu.Unlock()
	if !seen || now.Sub(last) >= time.Minute {
		c.log.Info("console request refused", "reason", reason, "ip", clientIP(r), "method", r.Method, "path", r.URL.Path)
	}
}

// Changed tells the console that the dashboard's data changed: connected
// browsers get a new snapshot at once instead of at the next poll.
func (c *Console) Changed() { c.hub.poke() }
