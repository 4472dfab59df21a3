// Package inventory keeps the agentless inventory of the school LAN: which
// devices the box sees, their vendor, a guess of their class, when they
// were first and last seen and a compact timeline of their presence. It
// owns the inventory_* tables of the box's SQLite database.
//
// It learns only from what the box already sees, through one entry point,
// Observe:
//   - the kernel neighbour table (ARP and IPv6 neighbour discovery) of the
//     LAN interfaces, read through netlink: a dump every NeighbourPoll and
//     the kernel's change notifications in between (Serve);
//   - multicast DNS service discovery (DNS-SD) on the LAN interfaces:
//     service type enumeration, then printers, casting receivers,
//     workstations, other Préau boxes… with their names and TXT model
//     hints (Serve);
//   - what appliance passes from other components: the DHCP server's
//     leases (host name, client identifier), the captive portal's
//     acceptances and the User-Agents the portal sees.
//
// The vendor comes from the MAC prefix, looked up in the IEEE registries
// that Debian's ieee-data package installs (read at run time; without them
// the vendor says so and how to fix it). A locally administered
// ("randomised") MAC has no vendor and is never merged with another device
// unless a stable hint links them: see linkRandom for the exact rule.
//
// The class guess (tablet, laptop, desktop, printer, interactive display,
// access point, phone, unknown) combines services and TXT hints,
// User-Agent, vendor and host name rules, each with a confidence; a
// technician's correction (SetClass) always wins and is kept. The
// User-Agent rules are a small hand-written table (useragent.go): the
// device classes need a handful of stable tokens (iPad, iPhone, Android
// with or without "Mobile", CrOS, Windows, Macintosh, X11), no UA library
// is pinned in go.mod, and full UA databases track browser versions, not
// device classes, at the cost of megabytes of patterns.
//
// DNS-SD answers are not authenticated: a device may announce services
// for another's address. The inventory describes the LAN; it grants
// nothing, so such a lie only misleads a class guess, which the
// technician can correct.
//
// Exports: CSV for spreadsheets (WriteCSV) and GLPI native inventory JSON,
// one document per device (GLPIDocument, WriteGLPIDir, WriteGLPIZip),
// pushed to a GLPI server by a Pusher through the WAN scheduler's HTTP
// client.
//
// Only package appliance imports inventory; inventory imports no other
// component of the box. Its sub-packages under internal/ are its own.
package inventory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Defaults of Config.
const (
	DefaultPresenceTimeout = 10 * time.Minute
	DefaultNeighbourPoll   = 30 * time.Second
	DefaultBrowseInterval  = 15 * time.Minute
	DefaultOUIDir          = "/usr/share/ieee-data"
	DefaultRetainPresence  = 400 * 24 * time.Hour
	DefaultMaxExtraTypes   = 8
)

// DefaultServices are the DNS-SD service types browsed besides those the
// enumeration (_services._dns-sd._udp) reveals.
var DefaultServices = []string{
	"_ipp._tcp", "_ipps._tcp", "_printer._tcp", "_pdl-datastream._tcp",
	"_googlecast._tcp", "_airplay._tcp", "_raop._tcp",
	"_workstation._tcp", "_device-info._tcp", "_smb._tcp", "_http._tcp",
	"_preau._tcp",
}

// Config of the Inventory. Zero values take the defaults of WithDefaults.
type Config struct {
	// Interfaces names the LAN interfaces whose neighbours are listed and
	// on which DNS-SD is browsed (e.g. the LAN bridge). Required: the
	// uplink must never be browsed.
	Interfaces []string
	// PresenceTimeout: a device seen within it is present now, and two
	// sightings closer than it belong to one presence interval. Default
	// 10 min. A neighbour entry in state REACHABLE counts as a sighting at
	// every NeighbourPoll, so such a device is always present.
	PresenceTimeout time.Duration
	// NeighbourPoll is the period of the neighbour table dumps. Default
	// 30 s; must be shorter than PresenceTimeout.
	NeighbourPoll time.Duration
	// BrowseInterval is the length of one DNS-SD browsing session; a new
	// session starts at its end, so that every announced service is seen
	// again and its TXT hints refreshed. Default 15 min.
	BrowseInterval time.Duration
	// Services are the DNS-SD service types browsed. Default
	// DefaultServices.
	Services []string
	// MaxExtraTypes bounds the service types learnt from the enumeration
	// that are browsed too (each costs a socket). Default 8; -1 browses
	// none.
	MaxExtraTypes int
	// DisableMDNS turns DNS-SD browsing off.
	DisableMDNS bool
	// OUIDir is the folder of the IEEE registries (oui.csv, and mam.csv,
	// oui36.csv, iab.csv when present). Default /usr/share/ieee-data
	// (Debian package ieee-data).
	OUIDir string
	// RetainPresence is how long presence intervals are kept. Default
	// 400 days (a school year and its holidays).
	RetainPresence time.Duration
	// GLPITag is the "tag" of the GLPI documents, which GLPI's entity
	// rules use to file the devices (e.g. the school's UAI). Optional.
	GLPITag string
	// Version is the Préau version, written in the GLPI documents
	// (versionclient). Default "dev".
	Version string
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.PresenceTimeout == 0 {
		c.PresenceTimeout = DefaultPresenceTimeout
	}
	if c.NeighbourPoll == 0 {
		c.NeighbourPoll = min(DefaultNeighbourPoll, c.PresenceTimeout/2)
	}
	if c.BrowseInterval == 0 {
		c.BrowseInterval = DefaultBrowseInterval
	}
	if c.Services == nil {
		c.Services = DefaultServices
	}
	if c.MaxExtraTypes == 0 {
		c.MaxExtraTypes = DefaultMaxExtraTypes
	}
	if c.OUIDir == "" {
		c.OUIDir = DefaultOUIDir
	}
	if c.RetainPresence == 0 {
		c.RetainPresence = DefaultRetainPresence
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	return c
}

var serviceType = regexp.MustCompile(`^_[A-Za-z0-9]([A-Za-z0-9-]{0,14})\._(tcp|udp)$`)

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case len(c.Interfaces) == 0:
		return errors.New("inventory config: interfaces is empty: name the LAN interface(s)")
	case c.PresenceTimeout < time.Second:
		return fmt.Errorf("inventory config: presence timeout %v is shorter than 1s", c.PresenceTimeout)
	case c.NeighbourPoll < 100*time.Millisecond || c.NeighbourPoll >= c.PresenceTimeout:
		return fmt.Errorf("inventory config: neighbour poll %v: want at least 100ms and less than the presence timeout %v", c.NeighbourPoll, c.PresenceTimeout)
	case c.BrowseInterval < 5*time.Second:
		return fmt.Errorf("inventory config: browse interval %v is shorter than 5s", c.BrowseInterval)
	case c.MaxExtraTypes < -1 || c.MaxExtraTypes > 64:
		return fmt.Errorf("inventory config: max extra types %d: want -1 to 64", c.MaxExtraTypes)
	case c.RetainPresence < c.PresenceTimeout:
		return fmt.Errorf("inventory config: retain presence %v is shorter than the presence timeout", c.RetainPresence)
	case len(c.GLPITag) > 200 || !utf8.ValidString(c.GLPITag) || strings.ContainsFunc(c.GLPITag, isControl):
		return fmt.Errorf("inventory config: glpi tag %q is too long or has control characters", c.GLPITag)
	case len(c.Version) > 100 || strings.ContainsFunc(c.Version, isControl):
		return fmt.Errorf("inventory config: version %q is too long or has control characters", c.Version)
	}
	for _, name := range c.Interfaces {
		if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t\n") {
			return fmt.Errorf("inventory config: interface name %q is invalid", name)
		}
	}
	for _, s := range c.Services {
		if !serviceType.MatchString(s) {
			return fmt.Errorf("inventory config: service %q: want a DNS-SD type like _ipp._tcp", s)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Errors.
var (
	// ErrNotFound means no device has this MAC address.
	ErrNotFound = errors.New("inventory: no such device")
	// ErrBadMAC means an observation or a request names an unusable MAC
	// address (not 6 bytes, group, all zeros).
	ErrBadMAC = errors.New("inventory: invalid MAC address")
	// ErrBadClass means SetClass was given an unknown class.
	ErrBadClass = errors.New("inventory: unknown device class")
	// ErrServing means Serve was called while already running.
	ErrServing = errors.New("inventory: already serving")
)

// Inventory is the LAN inventory. Its methods are safe for concurrent use.
type Inventory struct {
	cfg Config
	db  *sql.DB
	log *slog.Logger
	now func() time.Time

	vendorsOnce sync.Once
	vendorTab   atomic.Pointer[vendorTable]

	// mu serialises the writers of the inventory tables and guards the
	// caches below.
	mu      sync.Mutex
	written map[string]writtenObs     // MAC|source → what was last written
	present map[string]bool           // device id → present as last announced
	pending map[pendingKey]pendingObs // observations waiting for a MAC

	subMu sync.Mutex
	subs  map[chan Event]struct{}

	serving atomic.Bool
	lan     atomic.Pointer[lanView]

	observed [numSources]atomic.Uint64
	dropped  atomic.Uint64
}

// New validates cfg; it does no I/O. log may be nil; now defaults to
// time.Now.
func New(cfg Config, db *sql.DB, log *slog.Logger, now func() time.Time) (*Inventory, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil {
		return nil, errors.New("new inventory: no database")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Inventory{
		cfg:     cfg,
		db:      db,
		log:     log,
		now:     now,
		written: make(map[string]writtenObs),
		present: make(map[string]bool),
		pending: make(map[pendingKey]pendingObs),
		subs:    make(map[chan Event]struct{}),
	}, nil
}

// Config returns the configuration in use, defaults applied.
func (inv *Inventory) Config() Config { return inv.cfg }

// writeGranularity is how far last seen may lag when nothing else changes:
// an observation that brings nothing new is written only when it moves
// last seen by at least this much, so that a neighbour poll of a few
// hundred devices does not rewrite a few hundred rows every 30 s.
func (inv *Inventory) writeGranularity() time.Duration {
	return min(inv.cfg.PresenceTimeout/4, time.Minute)
}

// Serve runs the collectors (neighbour table, DNS-SD browsing) and the
// presence sweep until ctx ends. It opens its netlink and multicast
// sockets in the network namespace of the calling thread, and reopens
// the DNS-SD ones there at every browsing session, so a test may run it on
// a locked thread switched into a namespace. Reading the neighbour table
// and browsing DNS-SD need no privilege.
func (inv *Inventory) Serve(ctx context.Context) error {
	if !inv.serving.CompareAndSwap(false, true) {
		return ErrServing
	}
	defer inv.serving.Store(false)
	inv.vendors() // load the IEEE registries now, and say once if absent

	ns, err := captureNetns()
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	defer ns.close()
	lv, err := openLAN(ns, inv.cfg.Interfaces)
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	defer lv.close()
	inv.lan.Store(lv)
	defer inv.lan.Store(nil)

	if err := inv.loadPresent(ctx); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	run := func(name string, fn func(context.Context) error) {
		wg.Go(func() {
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("inventory: %s: %w", name, err)
				cancel()
			}
		})
	}
	run("neighbours", func(ctx context.Context) error { return inv.watchNeighbours(ctx, ns, lv) })
	if !inv.cfg.DisableMDNS {
		run("dns-sd", func(ctx context.Context) error { return inv.browse(ctx, ns) })
	}
	run("sweep", inv.sweepLoop)
	inv.log.Info("inventory started", "interfaces", inv.cfg.Interfaces, "presence_timeout", inv.cfg.PresenceTimeout,
		"mdns", !inv.cfg.DisableMDNS)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// EventKind says what happened to a device.
type EventKind string

// Event kinds.
const (
	// EventAppeared: a new device, or a known one present again.
	EventAppeared EventKind = "appeared"
	// EventLeft: a device not seen for PresenceTimeout (sent by Serve's
	// sweep).
	EventLeft EventKind = "left"
	// EventChanged: name, class, vendor, model, address or services
	// changed, or a technician set the class.
	EventChanged EventKind = "changed"
)

// Event is a change of a device, for the console's live view.
type Event struct {
	Kind   EventKind
	Device Device
}

// subscriberBuffer is the capacity of a subscription's channel; events
// that do not fit are dropped (and counted), never waited for.
const subscriberBuffer = 64

// Subscribe returns a channel of device events and a function that ends
// the subscription (and closes the channel). A slow reader loses events
// rather than slowing the inventory: re-read Devices after a gap.
func (inv *Inventory) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, subscriberBuffer)
	inv.subMu.Lock()
	inv.subs[ch] = struct{}{}
	inv.subMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			inv.subMu.Lock()
			delete(inv.subs, ch)
			inv.subMu.Unlock()
			close(ch)
		})
	}
}

func (inv *Inventory) publish(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	inv.subMu.Lock()
	defer inv.subMu.Unlock()
	for ch := range inv.subs {
		for _, ev := range evs {
			select {
			case ch <- ev:
			default:
				inv.dropped.Add(1)
			}
		}
	}
}
