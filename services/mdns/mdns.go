// Package mdns announces the box on the school LAN with multicast DNS and
// DNS-SD (RFC 6762, RFC 6763): the portal as an _http._tcp service with a
// human name ("Préau — École …"), the box itself as a _preau._tcp service
// whose TXT records carry the version and the school's UAI, and the short
// host name (preau.local) with the box's addresses.
//
// Services are announced with github.com/grandcat/zeroconf on the listed
// interfaces only; zeroconf does not answer address queries for the host
// name, so a small responder of our own (host.go) does. The same short name
// is served by the local DNS: appliance passes Config.HostName to both.
//
// Only package appliance imports mdns.
package mdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/grandcat/zeroconf"
	"github.com/miekg/dns"
)

// Service types announced.
const (
	ServiceHTTP  = "_http._tcp"
	ServicePreau = "_preau._tcp"
)

// Config of the Announcer. Zero values take the defaults of WithDefaults.
type Config struct {
	// SchoolName is the school's name, e.g. "École Jules Ferry"; it makes the
	// default InstanceName.
	SchoolName string
	// InstanceName is the human name that service browsers show. Default
	// "Préau — " + SchoolName, or "Préau" without a school name. At most 63
	// bytes of UTF-8 (one DNS label): a longer default is shortened at a
	// character boundary and ends with "…"; a longer explicit name is an
	// error.
	InstanceName string
	// HostName is the short host name announced as HostName.local. Default
	// "preau". One DNS label: letters, digits and hyphens.
	HostName string
	// Port is the portal's HTTP port. Default 80.
	Port int
	// Interfaces names the LAN interfaces to announce on. Required: an empty
	// list is refused, because zeroconf would otherwise multicast on every
	// interface of the box, the uplink included. appliance passes the LAN
	// interface.
	Interfaces []string
	// Addrs are the addresses announced for HostName.local. Default: the
	// IPv4 and global IPv6 addresses of Interfaces when Serve starts.
	Addrs []netip.Addr
	// Version is announced in the TXT record "version" (omitted if empty).
	Version string
	// UAI is the school's UAI code (7 digits and a letter, e.g. "0751234A"),
	// announced in the TXT record "uai" (omitted if empty).
	UAI string
	// Path is the portal's path, TXT record "path". Default "/".
	Path string
}

// Defaults of Config.
const (
	DefaultHostName = "preau"
	DefaultPort     = 80
	DefaultPath     = "/"
	productName     = "Préau"
	maxLabel        = 63
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.InstanceName == "" {
		name := productName
		if s := strings.TrimSpace(c.SchoolName); s != "" {
			name += " — " + s
		}
		c.InstanceName = shorten(name, maxLabel)
	}
	if c.HostName == "" {
		c.HostName = DefaultHostName
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	return c
}

var (
	hostLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	uaiCode   = regexp.MustCompile(`^[0-9]{7}[A-Z]$`)
)

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.InstanceName == "":
		return errors.New("mdns config: instance name is empty")
	case len(c.InstanceName) > maxLabel:
		return fmt.Errorf("mdns config: instance name %q is %d bytes long, at most %d allowed", c.InstanceName, len(c.InstanceName), maxLabel)
	case !utf8.ValidString(c.InstanceName) || strings.ContainsFunc(c.InstanceName, isControl):
		return fmt.Errorf("mdns config: instance name %q has invalid characters", c.InstanceName)
	case !hostLabel.MatchString(c.HostName):
		return fmt.Errorf("mdns config: host name %q: want one label of letters, digits and hyphens", c.HostName)
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("mdns config: port %d out of range", c.Port)
	case len(c.Interfaces) == 0:
		return errors.New("mdns config: interfaces is empty: name the LAN interface(s) to announce on")
	case c.UAI != "" && !uaiCode.MatchString(c.UAI):
		return fmt.Errorf("mdns config: uai %q: want 7 digits and a capital letter", c.UAI)
	case len(c.Version) > 200 || strings.ContainsFunc(c.Version, isControl):
		return fmt.Errorf("mdns config: version %q is too long or has control characters", c.Version)
	case !strings.HasPrefix(c.Path, "/") || len(c.Path) > 200 || strings.ContainsFunc(c.Path, isControl):
		return fmt.Errorf("mdns config: path %q: want an absolute path of at most 200 bytes", c.Path)
	}
	for _, name := range c.Interfaces {
		if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ ") {
			return fmt.Errorf("mdns config: interface name %q is invalid", name)
		}
	}
	for _, a := range c.Addrs {
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
			return fmt.Errorf("mdns config: address %v cannot be announced", a)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// shorten cuts s to at most n bytes, at a word boundary when one is in the
// second half, else at a rune boundary, and ends it with "…".
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	cut := n - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if sp := strings.LastIndexByte(s[:cut+1], ' '); sp > n/2 {
		cut = sp
	}
	return strings.TrimRight(s[:cut], " -—,") + ell
}

// Announcer announces the box while Serve runs.
type Announcer struct {
	cfg Config
	log *slog.Logger
}

// New validates cfg; it does no I/O.
func New(cfg Config, log *slog.Logger) (*Announcer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Announcer{cfg: cfg, log: log}, nil
}

// Config returns the configuration in use, defaults applied.
func (a *Announcer) Config() Config { return a.cfg }

// TXT returns the TXT records of both services.
func (a *Announcer) TXT() []string {
	var txt []string
	if a.cfg.Version != "" {
		txt = append(txt, "version="+a.cfg.Version)
	}
	if a.cfg.UAI != "" {
		txt = append(txt, "uai="+a.cfg.UAI)
	}
	return append(txt, "path="+a.cfg.Path)
}

// Serve announces the services and answers for the host name until ctx
// ends, then says goodbye (records with TTL 0). It opens its sockets and
// looks up the interfaces before returning control to other goroutines, so
// it uses the network namespace of the calling thread.
func (a *Announcer) Serve(ctx context.Context) error {
	ifaces, err := lookupInterfaces(a.cfg.Interfaces)
	if err != nil {
		return err
	}
	addrs := a.cfg.Addrs
	if len(addrs) == 0 {
		if addrs, err = interfaceAddrs(ifaces); err != nil {
			return err
		}
		if len(addrs) == 0 {
			return fmt.Errorf("mdns: no address to announce on %s", strings.Join(a.cfg.Interfaces, ", "))
		}
	}
	host, err := newHostResponder(ctx, a.cfg.HostName, addrs, ifaces, a.log)
	if err != nil {
		return err
	}
	defer host.close()

	ips := make([]string, len(addrs))
	for i, ad := range addrs {
		ips[i] = ad.WithZone("").String()
	}
	instance := escapeInstance(a.cfg.InstanceName)
	txt := a.TXT()
	var servers []*zeroconf.Server
	defer func() {
		for _, s := range servers {
			s.Shutdown() // sends the goodbye packets
		}
	}()
	for _, svc := range []string{ServiceHTTP, ServicePreau} {
		s, err := zeroconf.RegisterProxy(instance, svc, "local.", a.cfg.Port, a.cfg.HostName, ips, txt, ifaces)
		if err != nil {
			return fmt.Errorf("mdns: announce %s on %s: %w", svc, strings.Join(a.cfg.Interfaces, ", "), err)
		}
		servers = append(servers, s)
	}
	a.log.Info("mdns announced", "name", a.cfg.InstanceName, "host", a.cfg.HostName+".local",
		"port", a.cfg.Port, "addrs", ips, "interfaces", a.cfg.Interfaces)

	errc := make(chan error, 1)
	go func() { errc <- host.serve() }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return fmt.Errorf("mdns: host name responder: %w", err)
	}
}

func lookupInterfaces(names []string) ([]net.Interface, error) {
	var out []net.Interface
	for _, name := range names {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("mdns: interface %s: %w", name, err)
		}
		if ifi.Flags&net.FlagMulticast == 0 {
			return nil, fmt.Errorf("mdns: interface %s does not support multicast", name)
		}
		out = append(out, *ifi)
	}
	return out, nil
}

// interfaceAddrs lists the IPv4 and global IPv6 addresses of ifaces;
// link-local IPv6 addresses are left out, being ambiguous without a zone.
func interfaceAddrs(ifaces []net.Interface) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, ifi := range ifaces {
		as, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("mdns: addresses of %s: %w", ifi.Name, err)
		}
		for _, a := range as {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr().Unmap()
			if ip.IsLoopback() || ip.IsLinkLocalUnicast() {
				continue
			}
			out = append(out, ip)
		}
	}
	return out, nil
}

// escapeInstance writes the instance label in the presentation format that
// miekg/dns gives to names it unpacks (\. \\ \032 \195…). zeroconf matches
// incoming questions by string equality with the name it was given, so the
// name must be spelled the way a question is unpacked; packing turns the
// escapes back into the same UTF-8 bytes.
func escapeInstance(label string) string {
	wire := make([]byte, 0, len(label)+2)
	wire = append(wire, byte(len(label)))
	wire = append(wire, label...)
	wire = append(wire, 0)
	name, _, err := dns.UnpackDomainName(wire, 0)
	if err != nil { // cannot happen for a label of 1..63 bytes
		return label
	}
	return strings.TrimSuffix(name, ".")
}
