// Package captive owns what a device meets when it joins the school
// Wi-Fi: the answers to each OS family's connectivity probes (one data file,
// probes.json), the school's usage charter ("charte d'usage") and the record
// of which device accepted it until when, the RFC 8908 Captive Portal API
// whose URI DHCP and router advertisements announce (RFC 8910), and the
// HTTPS certificate that API needs on Android 16.
//
// Before a device accepts the charter, every probe is redirected to the
// charter page; after, each probe gets the exact answer its OS expects,
// whether or not the school's Internet link works, so tablets keep the
// Wi-Fi. A device is known by its MAC address (from the kernel neighbour
// table) when the box sees one, else by its IP address.
//
// Only package appliance imports captive. Other components learn about
// acceptance through the small interfaces they declare (services/dns's
// Acceptance is satisfied by (*Captive).Accepted) and through the OnChange
// callback that appliance wires to captive/gateway. captive/internal/neigh
// is used by this package only.
package captive

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"preau/captive/internal/neigh"
)

// Neighbours maps an IP address to the MAC address of the LAN device using
// it. The kernel's neighbour table satisfies it (the default); tests may
// pass their own.
type Neighbours interface {
	MAC(netip.Addr) (net.HardwareAddr, bool)
}

// Charter is the usage charter a device accepts before the probes succeed.
type Charter struct {
	// Enabled turns the charter step on. When false every device counts as
	// accepted and probes always succeed. The zero value is false:
	// appliance's configuration defaults it to true.
	Enabled bool
	// Text is the French charter: plain text, paragraphs separated by a
	// blank line, shown escaped. Default: a short generic school charter.
	Text string
	// TextEN is the English text. Default: the translation of the default.
	TextEN string
}

// Config of the captive portal. WithDefaults fills empty fields.
type Config struct {
	// PortalURL is the portal's home on the LAN, with a trailing slash:
	// probes are redirected to PortalURL + "charte". Default
	// "http://preau.lan/".
	PortalURL string
	// HTTPSURL is the same portal over HTTPS, e.g.
	// "https://preau.ecole.example.fr/". When set, the RFC 8908 API URI and
	// the user-portal-url use it. Default: empty, or "https://<host of
	// PortalURL>/" when CertFile is set.
	HTTPSURL string
	// CertFile and KeyFile are a PEM certificate chain and key for the
	// HTTPS listener (see TLSConfig); both or neither. The certificate must
	// cover the host of HTTPSURL and chain to a public root for Android 16.
	CertFile, KeyFile string
	// APIPath is where the RFC 8908 API answers. RFC 8908 fixes no path.
	// Default "/captive-portal/api".
	APIPath string
	// VenueInfoURL is the RFC 8908 venue-info-url. Default: the portal home
	// (HTTPSURL if set, else PortalURL).
	VenueInfoURL string
	// DayEnd ends every acceptance at the next such local time, "HH:MM".
	// Default "17:30". Ignored when AcceptFor is set.
	DayEnd string
	// AcceptFor, when positive, makes an acceptance last this long instead.
	AcceptFor time.Duration
	// Location is the time zone of DayEnd. Default time.Local.
	Location *time.Location
	// ForgetAfter removes devices neither seen nor accepted for this long
	// (data minimisation). Default 30 days.
	ForgetAfter time.Duration
	// DefaultLanguage of the charter page, "fr" or "en". Default "fr".
	DefaultLanguage string
	// SchoolName heads the charter page. Default "Préau".
	SchoolName string
	Charter    Charter
}

// WithDefaults returns c with empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.PortalURL == "" {
		c.PortalURL = "http://preau.lan/"
	}
	if c.HTTPSURL == "" && c.CertFile != "" {
		if u, err := url.Parse(c.PortalURL); err == nil && u.Host != "" {
			c.HTTPSURL = "https://" + u.Hostname() + "/"
		}
	}
	if c.APIPath == "" {
		c.APIPath = "/captive-portal/api"
	}
	if c.VenueInfoURL == "" {
		c.VenueInfoURL = c.PortalURL
		if c.HTTPSURL != "" {
			c.VenueInfoURL = c.HTTPSURL
		}
	}
	if c.DayEnd == "" {
		c.DayEnd = "17:30"
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	if c.ForgetAfter == 0 {
		c.ForgetAfter = 30 * 24 * time.Hour
	}
	if c.DefaultLanguage == "" {
		c.DefaultLanguage = "fr"
	}
	if strings.TrimSpace(c.SchoolName) == "" {
		c.SchoolName = "Préau"
	}
	if strings.TrimSpace(c.Charter.Text) == "" {
		c.Charter.Text = defaultCharterFR
	}
	if strings.TrimSpace(c.Charter.TextEN) == "" {
		c.Charter.TextEN = defaultCharterEN
	}
	return c
}

const maxCharterBytes = 32 << 10

// Validate reports the first invalid setting, naming its field.
func (c Config) Validate() error {
	if err := checkBaseURL(c.PortalURL, "http", "https"); err != nil {
		return fmt.Errorf("captive config: PortalURL %q: %w", c.PortalURL, err)
	}
	if c.HTTPSURL != "" {
		if err := checkBaseURL(c.HTTPSURL, "https"); err != nil {
			return fmt.Errorf("captive config: HTTPSURL %q: %w", c.HTTPSURL, err)
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("captive config: CertFile and KeyFile: give both or neither")
	}
	if !strings.HasPrefix(c.APIPath, "/") || strings.ContainsAny(c.APIPath, "?#% ") || c.APIPath == "/" || c.APIPath == charterPath {
		return fmt.Errorf("captive config: APIPath %q: want a path such as \"/captive-portal/api\"", c.APIPath)
	}
	if u, err := url.Parse(c.VenueInfoURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("captive config: VenueInfoURL %q: want an http(s) URL", c.VenueInfoURL)
	}
	if _, _, err := parseDayEnd(c.DayEnd); err != nil {
		return fmt.Errorf("captive config: DayEnd %q: %w", c.DayEnd, err)
	}
	if c.AcceptFor < 0 {
		return fmt.Errorf("captive config: AcceptFor %s: want a positive duration or 0", c.AcceptFor)
	}
	if c.ForgetAfter < time.Hour {
		return fmt.Errorf("captive config: ForgetAfter %s: want at least 1h", c.ForgetAfter)
	}
	if c.DefaultLanguage != "fr" && c.DefaultLanguage != "en" {
		return fmt.Errorf("captive config: DefaultLanguage %q: want \"fr\" or \"en\"", c.DefaultLanguage)
	}
	if len(c.SchoolName) > 200 || strings.ContainsAny(c.SchoolName, "\x00\r\n") {
		return errors.New("captive config: SchoolName: want one line of at most 200 bytes")
	}
	for _, f := range []struct{ name, text string }{{"Charter.Text", c.Charter.Text}, {"Charter.TextEN", c.Charter.TextEN}} {
		if len(f.text) > maxCharterBytes || !utf8.ValidString(f.text) || strings.ContainsRune(f.text, 0) {
			return fmt.Errorf("captive config: %s: want UTF-8 text of at most %d bytes", f.name, maxCharterBytes)
		}
	}
	return nil
}

func checkBaseURL(s string, schemes ...string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case !slices.Contains(schemes, u.Scheme):
		return fmt.Errorf("want a %s URL", strings.Join(schemes, " or "))
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return errors.New("want scheme://host/ with no user, query or fragment")
	case u.Path != "/":
		return errors.New("want the site root, ending in \"/\" (the charter is served at /charte)")
	}
	return nil
}

func parseDayEnd(s string) (h, m int, err error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, 0, errors.New("want HH:MM, e.g. \"17:30\"")
	}
	return t.Hour(), t.Minute(), nil
}

// Deps are what the caller hands in.
type Deps struct {
	// DB holds the captive_devices table (see Migrations). Required.
	DB *sql.DB
	// Log is the component's logger. Default: discard.
	Log *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Neighbours maps IP to MAC. Default: the kernel neighbour table.
	Neighbours Neighbours
	// OnChange is called after a device's acceptance changes (accepted,
	// revoked, expired) and when an accepted device shows up at a new
	// address, so appliance can update the gateway firewall. It runs on
	// the caller's goroutine for Accept and Revoke and on Serve's
	// otherwise; it must not block for long.
	OnChange func(Device)
}

// Device is a LAN device as captive knows it.
type Device struct {
	// IP is the last address the device was seen at.
	IP netip.Addr `json:"ip"`
	// Addrs are its recent addresses (IPv4 and IPv6), most recent last.
	Addrs []netip.Addr `json:"addrs"`
	// MAC is empty when the neighbour table did not know the device.
	MAC        string    `json:"mac,omitempty"`
	Accepted   bool      `json:"accepted"`
	AcceptedAt time.Time `json:"accepted_at,omitzero"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	LastSeen   time.Time `json:"last_seen"`
}

// Captive serves the probes, the charter and the API. Safe for concurrent
// use.
type Captive struct {
	cfg      Config
	db       *sql.DB
	log      *slog.Logger
	now      func() time.Time
	neigh    Neighbours
	onChange func(Device)
	table    *Table
	dayEndH  int
	dayEndM  int
	csrfKey  []byte
	cop      *http.CrossOriginProtection
	pages    *pages
	tls      *certLoader

	mu      sync.RWMutex
	loaded  bool
	devices map[string]*device // by key

	events chan string   // keys of devices that moved to a new address
	wake   chan struct{} // acceptance changed: recompute the next expiry
}

type device struct {
	key        string
	mac        string
	addrs      []netip.Addr // most recent last, at most maxAddrs
	acceptedAt time.Time    // zero: not accepted
	expiresAt  time.Time
	lastSeen   time.Time
	savedSeen  time.Time // last_seen as last written
	expired    bool      // OnChange was told about the expiry
}

const (
	maxAddrs      = 8
	seenWriteStep = 5 * time.Minute
	maxSweepWait  = time.Hour
)

// New checks cfg (after defaults) and prepares the component; it does no
// I/O. Call Load (or Serve, which calls it) before relying on Accepted.
func New(cfg Config, d Deps) (*Captive, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.DB == nil {
		return nil, errors.New("new captive: database is nil")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Neighbours == nil {
		// The table ages its snapshot on the monotonic clock, not on the
		// injected one, which may jump when NTP first answers.
		d.Neighbours = neigh.New(neigh.Options{})
	}
	h, m, _ := parseDayEnd(cfg.DayEnd)
	key := make([]byte, 32)
	rand.Read(key)
	p, err := parsePages(cfg)
	if err != nil {
		return nil, fmt.Errorf("new captive: %w", err)
	}
	return &Captive{
		cfg: cfg, db: d.DB, log: d.Log, now: d.Now, neigh: d.Neighbours, onChange: d.OnChange,
		table: Probes(), dayEndH: h, dayEndM: m, csrfKey: key, pages: p,
		cop:     http.NewCrossOriginProtection(),
		tls:     newCertLoader(cfg.CertFile, cfg.KeyFile, cfg.HTTPSURL),
		devices: map[string]*device{},
		events:  make(chan string, 256),
		wake:    make(chan struct{}, 1),
	}, nil
}

// Load reads the devices from the database into memory. Serve calls it;
// call it first to have Accepted right before the listeners open.
// Calling it again does nothing.
func (c *Captive) Load(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded {
		return nil
	}
	rows, err := c.db.QueryContext(ctx,
		`SELECT key, mac, ip, accepted_at, expires_at, last_seen FROM captive_devices`)
	if err != nil {
		return fmt.Errorf("load captive devices: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			d        device
			ip       string
			acc, exp sql.NullInt64
			seen     int64
		)
		if err := rows.Scan(&d.key, &d.mac, &ip, &acc, &exp, &seen); err != nil {
			return fmt.Errorf("load captive devices: %w", err)
		}
		if a, err := netip.ParseAddr(ip); err == nil {
			d.addrs = []netip.Addr{a}
		}
		if acc.Valid && exp.Valid {
			d.acceptedAt, d.expiresAt = time.UnixMilli(acc.Int64), time.UnixMilli(exp.Int64)
		}
		d.lastSeen = time.UnixMilli(seen)
		d.savedSeen = d.lastSeen
		if _, ok := c.devices[d.key]; !ok { // an Accept before Load wins
			c.devices[d.key] = &d
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load captive devices: %w", err)
	}
	c.loaded = true
	return nil
}

// Serve loads the devices, then tells OnChange about expiries and address
// changes and forgets old devices, until ctx ends. It wakes only when an
// acceptance expires, an address changes, or once an hour.
func (c *Captive) Serve(ctx context.Context) error {
	if err := c.Load(ctx); err != nil {
		return err
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case key := <-c.events:
			c.persistMove(ctx, key)
		case <-c.wake:
		case <-t.C:
			if err := c.sweep(ctx); err != nil {
				c.log.Warn("captive sweep failed", "err", err)
			}
		}
		t.Reset(c.nextWake())
	}
}

// nextWake is the time until the next acceptance expires, at most an hour.
func (c *Captive) nextWake() time.Duration {
	now := c.now()
	wait := maxSweepWait
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, d := range c.devices {
		if !d.acceptedAt.IsZero() && !d.expired {
			wait = min(wait, max(d.expiresAt.Sub(now), 0)+time.Second)
		}
	}
	return wait
}

// sweep reports expired acceptances to OnChange and forgets devices idle
// for ForgetAfter.
func (c *Captive) sweep(ctx context.Context) error {
	now := c.now()
	var expired []Device
	var forget []string
	c.mu.Lock()
	for k, d := range c.devices {
		if !d.acceptedAt.IsZero() && !d.expiresAt.After(now) && !d.expired {
			d.expired = true
			expired = append(expired, d.public(now))
		}
		if now.Sub(d.lastSeen) > c.cfg.ForgetAfter && !d.expiresAt.After(now) {
			forget = append(forget, k)
		}
	}
	c.mu.Unlock()
	for _, d := range expired {
		c.log.Info("charter acceptance expired", "ip", d.IP, "mac", d.MAC)
		c.notify(d)
	}
	if len(forget) == 0 {
		return nil
	}
	cutoff := now.Add(-c.cfg.ForgetAfter).UnixMilli()
	if _, err := c.db.ExecContext(ctx,
		`DELETE FROM captive_devices WHERE last_seen < ? AND (expires_at IS NULL OR expires_at <= ?)`,
		cutoff, now.UnixMilli()); err != nil {
		return fmt.Errorf("forget old devices: %w", err)
	}
	c.mu.Lock()
	for _, k := range forget {
		delete(c.devices, k)
	}
	c.mu.Unlock()
	c.log.Info("forgot idle devices", "count", len(forget))
	return nil
}

func (c *Captive) persistMove(ctx context.Context, key string) {
	c.mu.RLock()
	d, ok := c.devices[key]
	var pub Device
	if ok {
		pub = d.public(c.now())
	}
	c.mu.RUnlock()
	if !ok {
		return
	}
	if _, err := c.db.ExecContext(ctx, `UPDATE captive_devices SET ip = ? WHERE key = ?`, pub.IP.String(), key); err != nil {
		c.log.Warn("record device address failed", "ip", pub.IP, "err", err)
	}
	c.notify(pub)
}

func (c *Captive) notify(d Device) {
	if c.onChange != nil {
		c.onChange(d)
	}
}

func (d *device) public(now time.Time) Device {
	p := Device{
		Addrs:      slices.Clone(d.addrs),
		MAC:        d.mac,
		Accepted:   !d.acceptedAt.IsZero() && d.expiresAt.After(now),
		AcceptedAt: d.acceptedAt,
		ExpiresAt:  d.expiresAt,
		LastSeen:   d.lastSeen,
	}
	if len(d.addrs) > 0 {
		p.IP = d.addrs[len(d.addrs)-1]
	}
	return p
}

// addAddr records ip as the device's latest address; it reports whether ip
// is new for the device.
func (d *device) addAddr(ip netip.Addr) bool {
	if i := slices.Index(d.addrs, ip); i >= 0 {
		if i != len(d.addrs)-1 {
			d.addrs = append(slices.Delete(d.addrs, i, i+1), ip)
		}
		return false
	}
	d.addrs = append(d.addrs, ip)
	if len(d.addrs) > maxAddrs {
		d.addrs = slices.Delete(d.addrs, 0, len(d.addrs)-maxAddrs)
	}
	return true
}

// identify returns the device key for ip and the MAC behind it, if known.
// It trusts the neighbour snapshot, which may be up to a second behind
// on a miss: cheap enough for every DNS query.
func (c *Captive) identify(ip netip.Addr) (key, mac string) {
	if hw, ok := c.neigh.MAC(ip); ok && len(hw) > 0 {
		mac = hw.String()
		return "mac:" + mac, mac
	}
	return ipKey(ip), ""
}

// refresher is implemented by neighbour tables that cache (internal/neigh).
type refresher interface{ Refresh() error }

// identifyNow is identify for HTTP requests: on a miss it reads the
// kernel table again, so a device that just appeared (its ARP or neighbour
// solicitation came with this very connection) is known by its MAC.
func (c *Captive) identifyNow(ip netip.Addr) (key, mac string) {
	key, mac = c.identify(ip)
	if mac == "" {
		if r, ok := c.neigh.(refresher); ok && r.Refresh() == nil {
			key, mac = c.identify(ip)
		}
	}
	return key, mac
}

func ipKey(ip netip.Addr) string { return "ip:" + ip.String() }

func canonical(ip netip.Addr) netip.Addr { return ip.Unmap().WithZone("") }

// lookup finds the accepted device record for ip: by MAC, else a record
// made by IP when the MAC was unknown. Callers hold c.mu.
func (c *Captive) lookup(key, mac string, ip netip.Addr, now time.Time) *device {
	if d := c.devices[key]; d != nil && d.expiresAt.After(now) {
		return d
	}
	if mac != "" {
		if d := c.devices[ipKey(ip)]; d != nil && d.expiresAt.After(now) {
			return d
		}
	}
	return nil
}

// Accepted reports whether the device at ip has accepted the charter and
// the acceptance has not expired; always true when the charter step is
// off. It is cheap (no database access), for the DNS server to call per
// query.
func (c *Captive) Accepted(ip netip.Addr) bool {
	if !c.cfg.Charter.Enabled {
		return true
	}
	ip = canonical(ip)
	now := c.now()
	key, mac := c.identify(ip)
	c.mu.RLock()
	d := c.lookup(key, mac, ip, now)
	moved := d != nil && !slices.Contains(d.addrs, ip)
	c.mu.RUnlock()
	if moved {
		c.moved(d.key, ip)
	}
	return d != nil
}

// moved records a new address of an accepted device and queues the news
// for Serve (database write and OnChange), never blocking the caller.
func (c *Captive) moved(key string, ip netip.Addr) {
	c.mu.Lock()
	d, ok := c.devices[key]
	isNew := ok && d.addAddr(ip)
	c.mu.Unlock()
	if !isNew {
		return
	}
	select {
	case c.events <- key:
	default:
		c.log.Debug("address change queue full", "ip", ip)
	}
}

// seen records that the device at ip made a request to captive (a probe,
// the charter, the API); it writes the database at most every few minutes
// per device.
func (c *Captive) seen(ctx context.Context, ip netip.Addr) {
	ip = canonical(ip)
	now := c.now()
	key, mac := c.identifyNow(ip)
	c.mu.Lock()
	d, ok := c.devices[key]
	if !ok {
		d = &device{key: key, mac: mac}
		c.devices[key] = d
	}
	// A device accepted while its MAC was unknown is now known by MAC:
	// carry its acceptance over to the MAC record.
	var adopted *device
	if old, found := c.devices[ipKey(ip)]; found && mac != "" {
		adopted = old
		delete(c.devices, ipKey(ip))
		if old.expiresAt.After(d.expiresAt) {
			d.acceptedAt, d.expiresAt, d.expired = old.acceptedAt, old.expiresAt, old.expired
		}
	}
	isNew := d.addAddr(ip)
	d.lastSeen = now
	write := !ok || isNew || adopted != nil || now.Sub(d.savedSeen) >= seenWriteStep
	if write {
		d.savedSeen = now
	}
	accepted := d.expiresAt.After(now)
	acc, exp := nullMillis(d.acceptedAt), nullMillis(d.expiresAt)
	c.mu.Unlock()
	if !write {
		return
	}
	var err error
	if adopted != nil {
		err = c.adopt(ctx, key, mac, ip, acc, exp, now)
	} else {
		_, err = c.db.ExecContext(ctx, `
INSERT INTO captive_devices (key, mac, ip, last_seen) VALUES (?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET ip = excluded.ip, mac = excluded.mac, last_seen = max(last_seen, excluded.last_seen)`,
			key, mac, ip.String(), now.UnixMilli())
	}
	if err != nil {
		c.log.Warn("record device failed", "ip", ip, "err", err)
		return
	}
	if ok && isNew && accepted {
		c.notify(c.snapshot(key))
	}
}

// adopt moves the record made by IP to the device's MAC record.
func (c *Captive) adopt(ctx context.Context, key, mac string, ip netip.Addr, acc, exp sql.NullInt64, now time.Time) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `
INSERT INTO captive_devices (key, mac, ip, accepted_at, expires_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET mac = excluded.mac, ip = excluded.ip, accepted_at = excluded.accepted_at,
	expires_at = excluded.expires_at, last_seen = excluded.last_seen`,
		key, mac, ip.String(), acc, exp, now.UnixMilli()); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM captive_devices WHERE key = ?`, ipKey(ip)); err != nil {
		return err
	}
	return tx.Commit()
}

func nullMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func (c *Captive) snapshot(key string) Device {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if d, ok := c.devices[key]; ok {
		return d.public(c.now())
	}
	return Device{}
}

// expiry is when an acceptance made at now ends: now+AcceptFor, or the
// next DayEnd in Location.
func (c *Captive) expiry(now time.Time) time.Time {
	if c.cfg.AcceptFor > 0 {
		return now.Add(c.cfg.AcceptFor)
	}
	l := now.In(c.cfg.Location)
	end := time.Date(l.Year(), l.Month(), l.Day(), c.dayEndH, c.dayEndM, 0, 0, c.cfg.Location)
	if !end.After(l) {
		end = time.Date(l.Year(), l.Month(), l.Day()+1, c.dayEndH, c.dayEndM, 0, 0, c.cfg.Location)
	}
	return end
}

// Accept records that the device at ip accepted the charter, until the
// next DayEnd (or for AcceptFor), and tells OnChange.
func (c *Captive) Accept(ctx context.Context, ip netip.Addr) (Device, error) {
	ip = canonical(ip)
	if !ip.IsValid() {
		return Device{}, errors.New("accept charter: invalid address")
	}
	now := c.now()
	exp := c.expiry(now)
	key, mac := c.identifyNow(ip)
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return Device{}, fmt.Errorf("accept charter for %s: %w", ip, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `
INSERT INTO captive_devices (key, mac, ip, accepted_at, expires_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET mac = excluded.mac, ip = excluded.ip, accepted_at = excluded.accepted_at,
	expires_at = excluded.expires_at, last_seen = excluded.last_seen`,
		key, mac, ip.String(), now.UnixMilli(), exp.UnixMilli(), now.UnixMilli()); err != nil {
		return Device{}, fmt.Errorf("accept charter for %s: %w", ip, err)
	}
	if mac != "" { // the device was known by IP before its MAC was
		if _, err := tx.ExecContext(ctx, `DELETE FROM captive_devices WHERE key = ?`, ipKey(ip)); err != nil {
			return Device{}, fmt.Errorf("accept charter for %s: %w", ip, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Device{}, fmt.Errorf("accept charter for %s: commit: %w", ip, err)
	}
	c.mu.Lock()
	d, ok := c.devices[key]
	if !ok {
		d = &device{key: key}
		c.devices[key] = d
	}
	if mac != "" {
		if old, ok := c.devices[ipKey(ip)]; ok {
			for _, a := range old.addrs {
				d.addAddr(a)
			}
			delete(c.devices, ipKey(ip))
		}
	}
	d.mac = mac
	d.addAddr(ip)
	d.acceptedAt, d.expiresAt, d.lastSeen, d.savedSeen, d.expired = now, exp, now, now, false
	pub := d.public(now)
	c.mu.Unlock()
	c.kick()
	c.log.Info("charter accepted", "ip", ip, "mac", mac, "until", exp.Format(time.RFC3339))
	c.notify(pub)
	return pub, nil
}

// Revoke withdraws the acceptance of the device at ip (by its MAC when the
// neighbour table knows it, and any record of that address) and tells
// OnChange. Revoking a device that had not accepted is not an error.
func (c *Captive) Revoke(ctx context.Context, ip netip.Addr) error {
	ip = canonical(ip)
	key, _ := c.identifyNow(ip)
	c.mu.RLock()
	keys := []string{key, ipKey(ip)}
	for k, d := range c.devices {
		if slices.Contains(d.addrs, ip) && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	c.mu.RUnlock()
	for _, k := range keys {
		if _, err := c.db.ExecContext(ctx,
			`UPDATE captive_devices SET accepted_at = NULL, expires_at = NULL WHERE key = ?`, k); err != nil {
			return fmt.Errorf("revoke charter for %s: %w", ip, err)
		}
	}
	now := c.now()
	var changed []Device
	c.mu.Lock()
	for _, k := range keys {
		if d, ok := c.devices[k]; ok && !d.acceptedAt.IsZero() {
			d.acceptedAt, d.expiresAt, d.expired = time.Time{}, time.Time{}, false
			changed = append(changed, d.public(now))
		}
	}
	c.mu.Unlock()
	c.kick()
	for _, d := range changed {
		c.log.Info("charter acceptance revoked", "ip", d.IP, "mac", d.MAC)
		c.notify(d)
	}
	return nil
}

func (c *Captive) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Devices lists the known devices, accepted first, then by address.
func (c *Captive) Devices(ctx context.Context) ([]Device, error) {
	if err := c.Load(ctx); err != nil {
		return nil, err
	}
	now := c.now()
	c.mu.RLock()
	out := make([]Device, 0, len(c.devices))
	for _, d := range c.devices {
		out = append(out, d.public(now))
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b Device) int {
		if a.Accepted != b.Accepted {
			return boolCmp(!a.Accepted, !b.Accepted)
		}
		if n := a.IP.Compare(b.IP); n != 0 {
			return n
		}
		return strings.Compare(a.MAC, b.MAC)
	})
	return out, nil
}

// Device returns what captive knows of the device at ip.
func (c *Captive) Device(ip netip.Addr) (Device, bool) {
	ip = canonical(ip)
	now := c.now()
	key, mac := c.identify(ip)
	c.mu.RLock()
	defer c.mu.RUnlock()
	if d := c.lookup(key, mac, ip, now); d != nil {
		return d.public(now), true
	}
	if d, ok := c.devices[key]; ok {
		return d.public(now), true
	}
	return Device{}, false
}

// remoteAddr is the client address of a request.
func remoteAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return canonical(ap.Addr()), true
}
