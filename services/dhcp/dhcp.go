// Package dhcp is the box's optional DHCPv4 server for the school LAN (RFC
// 2131), off by default. It hands out addresses from one pool, honours
// static leases, keeps its leases in SQLite so that they survive a restart,
// points clients at the box for DNS and gives them the captive-portal API
// address (option 114, RFC 8910).
//
// Before serving, it asks the segment for an offer: if another DHCP server
// answers, it refuses to start with an *OtherServerError (ErrOtherServer),
// whose text in French and English tells the technician what to do. Two
// DHCP servers on one segment hand out conflicting addresses.
//
// Packets are parsed and built with github.com/insomniacslk/dhcp; the
// lease decisions (decide.go) are ours. Replies to clients without an
// address are broadcast, which RFC 2131 allows and which needs no raw
// socket; relayed requests (giaddr set) are ignored: the server serves only
// the segment it is attached to.
//
// Serve needs root, or CAP_NET_BIND_SERVICE and CAP_NET_RAW: it binds UDP
// ports 67 and 68 to the interface (SO_BINDTODEVICE).
//
// Only package appliance imports dhcp.
package dhcp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Config of the Server. Zero values take the defaults of WithDefaults.
type Config struct {
	// Interface is the LAN interface served (required).
	Interface string
	// ServerIP is the box's address on Interface (required); it is the
	// server identifier and is never handed out.
	ServerIP netip.Addr
	// Subnet is the LAN prefix, e.g. 10.0.0.0/24 (required, /8 to /30).
	Subnet netip.Prefix
	// PoolStart and PoolEnd bound the dynamic pool, inclusive (required,
	// inside Subnet). The server's address, the router, the DNS servers, the
	// static leases' addresses and the subnet's network and broadcast
	// addresses are skipped even when inside the pool.
	PoolStart, PoolEnd netip.Addr
	// Router is the default gateway given to clients (option 3). Default
	// none: the box is not a gateway unless appliance sets it.
	Router netip.Addr
	// DNS are the DNS servers given to clients (option 6). Default the box
	// (ServerIP).
	DNS []netip.Addr
	// DomainName is given as option 15. Default "preau.lan".
	DomainName string
	// LeaseTime is the lease duration. Default 8 h; 1 min to 30 days.
	LeaseTime time.Duration
	// Static maps a MAC address ("aa:bb:cc:dd:ee:ff", any case, ':' or '-')
	// to the address always given to it, inside Subnet, in or out of the
	// pool. These addresses are never given to anyone else.
	Static map[string]netip.Addr
	// CaptiveURI is the RFC 8910 captive-portal API URI (option 114), e.g.
	// "https://preau.example.fr/captive-portal/api": an https URL (RFC 8908)
	// or "urn:ietf:params:capport:unrestricted"; empty sends no option 114.
	CaptiveURI string
	// ProbeWait is how long Serve listens for another DHCP server before it
	// starts. Default 3 s.
	ProbeWait time.Duration

	// Now is the clock; nil means time.Now. It is not read from a file.
	Now func() time.Time `toml:"-" json:"-"`
}

// Defaults of Config.
const (
	DefaultDomainName = "preau.lan"
	DefaultLeaseTime  = 8 * time.Hour
	DefaultProbeWait  = 3 * time.Second
	// CaptiveUnrestricted is the RFC 8910 value meaning "no captive portal".
	CaptiveUnrestricted = "urn:ietf:params:capport:unrestricted"
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if len(c.DNS) == 0 && c.ServerIP.IsValid() {
		c.DNS = []netip.Addr{c.ServerIP}
	}
	if c.DomainName == "" {
		c.DomainName = DefaultDomainName
	}
	if c.LeaseTime == 0 {
		c.LeaseTime = DefaultLeaseTime
	}
	if c.ProbeWait == 0 {
		c.ProbeWait = DefaultProbeWait
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

var domainName = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Validate reports the first invalid field.
func (c Config) Validate() error {
	inSubnet := func(a netip.Addr) bool { return a.Is4() && c.Subnet.Contains(a) }
	switch {
	case c.Interface == "" || len(c.Interface) > 15 || strings.ContainsAny(c.Interface, "/ "):
		return fmt.Errorf("dhcp config: interface %q is invalid", c.Interface)
	case !c.Subnet.IsValid() || !c.Subnet.Addr().Is4():
		return errors.New("dhcp config: subnet is not an IPv4 prefix")
	case c.Subnet != c.Subnet.Masked():
		return fmt.Errorf("dhcp config: subnet %v has host bits set (want %v)", c.Subnet, c.Subnet.Masked())
	case c.Subnet.Bits() < 8 || c.Subnet.Bits() > 30:
		return fmt.Errorf("dhcp config: subnet %v: want a prefix length from 8 to 30", c.Subnet)
	case !inSubnet(c.ServerIP) || isEdge(c.Subnet, c.ServerIP):
		return fmt.Errorf("dhcp config: server ip %v is not a host address of subnet %v", c.ServerIP, c.Subnet)
	case !inSubnet(c.PoolStart) || isEdge(c.Subnet, c.PoolStart):
		return fmt.Errorf("dhcp config: pool start %v is not a host address of subnet %v", c.PoolStart, c.Subnet)
	case !inSubnet(c.PoolEnd) || isEdge(c.Subnet, c.PoolEnd):
		return fmt.Errorf("dhcp config: pool end %v is not a host address of subnet %v", c.PoolEnd, c.Subnet)
	case c.PoolEnd.Less(c.PoolStart):
		return fmt.Errorf("dhcp config: pool end %v is before pool start %v", c.PoolEnd, c.PoolStart)
	case c.Router.IsValid() && (!inSubnet(c.Router) || isEdge(c.Subnet, c.Router)):
		return fmt.Errorf("dhcp config: router %v is not a host address of subnet %v", c.Router, c.Subnet)
	case len(c.DNS) == 0:
		return errors.New("dhcp config: dns is empty")
	case len(c.DomainName) > 253 || !domainName.MatchString(c.DomainName):
		return fmt.Errorf("dhcp config: domain name %q is invalid (lower-case letters, digits, hyphens, dots)", c.DomainName)
	case c.LeaseTime < time.Minute || c.LeaseTime > 30*24*time.Hour:
		return fmt.Errorf("dhcp config: lease time %v: want 1 min to 30 days", c.LeaseTime)
	case c.ProbeWait < 100*time.Millisecond || c.ProbeWait > time.Minute:
		return fmt.Errorf("dhcp config: probe wait %v: want 100 ms to 1 min", c.ProbeWait)
	}
	for _, d := range c.DNS {
		if !d.Is4() || d.IsUnspecified() {
			return fmt.Errorf("dhcp config: dns server %v is not an IPv4 address", d)
		}
	}
	if err := validCaptiveURI(c.CaptiveURI); err != nil {
		return err
	}
	seen := map[netip.Addr]string{}
	for m, ip := range c.Static {
		mac, err := parseMAC(m)
		if err != nil {
			return fmt.Errorf("dhcp config: static lease %q: %w", m, err)
		}
		switch {
		case !inSubnet(ip) || isEdge(c.Subnet, ip):
			return fmt.Errorf("dhcp config: static lease %s: %v is not a host address of subnet %v", mac, ip, c.Subnet)
		case ip == c.ServerIP || ip == c.Router:
			return fmt.Errorf("dhcp config: static lease %s: %v is the server's or the router's address", mac, ip)
		}
		if other, dup := seen[ip]; dup && other != mac {
			return fmt.Errorf("dhcp config: static leases %s and %s share %v", other, mac, ip)
		}
		seen[ip] = mac
	}
	return nil
}

func validCaptiveURI(s string) error {
	if s == "" || s == CaptiveUnrestricted {
		return nil
	}
	if len(s) > 255 {
		return fmt.Errorf("dhcp config: captive uri is %d bytes, at most 255 fit in option 114", len(s))
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("dhcp config: captive uri %q: want an https URL (RFC 8908) or %s", s, CaptiveUnrestricted)
	}
	return nil
}

// isEdge reports whether a is the network or the broadcast address of p.
func isEdge(p netip.Prefix, a netip.Addr) bool {
	return a == p.Masked().Addr() || a == broadcastOf(p)
}

func broadcastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := ^uint32(0) >> p.Bits()
	for i := 0; i < 4; i++ {
		b[i] |= byte(host >> (24 - 8*i))
	}
	return netip.AddrFrom4(b)
}

// parseMAC returns the canonical form (lower case, colons) of a 6-byte MAC.
func parseMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return "", err
	}
	if len(hw) != 6 {
		return "", fmt.Errorf("%q is not a 6-byte Ethernet address", s)
	}
	return hw.String(), nil
}

// Lease is one bound, unexpired lease, for the console.
type Lease struct {
	MAC      string // "aa:bb:cc:dd:ee:ff"
	IP       netip.Addr
	Hostname string // as the client gave it (option 12), cleaned
	Expires  time.Time
	Static   bool
}

// Server is the DHCPv4 server.
type Server struct {
	cfg Config
	pol *policy
	db  *sql.DB
	log *slog.Logger

	mu  sync.Mutex // serialises decisions; guards tbl
	tbl *table

	warnedAt map[string]time.Time // throttles repeated warnings; under mu
}

// New validates cfg; it does no I/O. db is the box's database, with the
// migrations of Migrations applied.
func New(cfg Config, db *sql.DB, log *slog.Logger) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil {
		return nil, errors.New("dhcp: no database")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, pol: newPolicy(cfg), db: db, log: log, warnedAt: map[string]time.Time{}}, nil
}

// Config returns the configuration in use, defaults applied.
func (s *Server) Config() Config { return s.cfg }

// Leases returns the bound, unexpired leases sorted by address.
func (s *Server) Leases(ctx context.Context) ([]Lease, error) {
	tbl, err := loadTable(ctx, s.db)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	var out []Lease
	for _, l := range tbl.sorted() {
		if l.State != stateBound || !now.Before(l.Expires) {
			continue
		}
		_, static := s.pol.static[l.MAC]
		out = append(out, Lease{MAC: l.MAC, IP: l.IP, Hostname: l.Hostname, Expires: l.Expires, Static: static})
	}
	return out, nil
}

// warnThrottled logs msg at most once a minute per key.
func (s *Server) warnThrottled(key, msg string, args ...any) {
	now := s.cfg.Now()
	if t, ok := s.warnedAt[key]; ok && now.Sub(t) < time.Minute {
		return
	}
	s.warnedAt[key] = now
	s.log.Warn(msg, args...)
}
