package dns

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	miekg "github.com/miekg/dns"
)

// Config configures the Server. Zero values take the defaults of
// WithDefaults; Validate reports the first invalid field.
type Config struct {
	// Zone is the local zone the box is authoritative for. Default
	// "preau.lan". It needs two labels or more, or one of the private-use
	// single labels "lan" and "internal"; never "local" (that is mDNS).
	Zone string
	// ShortNames are single labels (e.g. the school's short name
	// "jaures") answered with BoxAddrs as "<short>." and "<short>.<zone>".
	// Only the exact names are local: "x.<short>." is forwarded, so a
	// short name that happens to be a real top-level domain cannot hide it.
	ShortNames []string
	// Hosts are extra local records: name → addresses. A name is taken
	// relative to Zone unless it already ends with it ("imprimante" and
	// "imprimante.preau.lan" are the same record).
	Hosts map[string][]netip.Addr
	// BoxAddrs are the box's own addresses on the LAN. They answer the
	// zone apex, www.<zone>, portail.<zone>, portal.<zone>, the short names
	// and the hijacked probe names. Required.
	BoxAddrs []netip.Addr

	// Upstreams are the resolvers other names are forwarded to, tried in
	// order, as "ip:port" or "ip" (port 53). Empty: only local names are
	// answered and the rest get SERVFAIL.
	Upstreams []string
	// LANPrefixes are the clients the box resolves for. Clients outside get
	// answers for the local zone and short names only, REFUSED for the
	// rest: the box is never an open resolver. Default: RFC 1918,
	// 169.254.0.0/16, 127.0.0.0/8, fc00::/7, fe80::/10 and ::1. Add the
	// school's global IPv6 prefix when its devices use one.
	LANPrefixes []netip.Prefix

	// ProbeNames are the hosts of the operating systems' connectivity
	// probes (appliance fills them from captive's probe table). They are
	// answered with BoxAddrs while the client has not accepted the charter
	// or while the uplink is down; otherwise they are forwarded, with their
	// TTL capped to a few seconds so that a device flips quickly.
	ProbeNames []string
	// DNSOnlyProbes are names always answered locally with fixed addresses,
	// e.g. dns.msftncsi.com → 131.107.255.255 and fd3e:4f5a:5b81::1, which
	// Windows checks by DNS alone.
	DNSOnlyProbes map[string][]netip.Addr

	// CacheEntries caps the answer cache (least recently used entries go
	// first). Default 10000.
	CacheEntries int
	// StaleMaxAge is how long past its TTL a cached answer may still be
	// served while the upstreams cannot be reached (RFC 8767 §5 suggests
	// 1 to 3 days). Default 3 days; negative turns serve-stale off.
	StaleMaxAge time.Duration
	// StaleTTL is the TTL of a stale answer. Default 30 s (RFC 8767 §4).
	StaleTTL time.Duration
	// ClientTimeout is how long a client waits for the upstreams before it
	// gets a stale answer, when there is one; the refresh goes on in the
	// background. Default 1.8 s (RFC 8767 §5).
	ClientTimeout time.Duration
	// UpstreamTimeout bounds one exchange with one upstream. Default 2 s.
	UpstreamTimeout time.Duration

	// RRL is the response rate limit of UDP answers.
	RRL RateLimit

	// Now is the clock; nil means time.Now. It is not read from a file.
	Now func() time.Time `toml:"-" json:"-"`
}

// RateLimit is a token bucket per client: responses per second, with a
// burst of one second's worth for clients outside the LAN (counted per /24
// or /56, as authoritative servers do) and of five seconds' worth for LAN
// clients, counted per address (a whole school shares one /24, and a page
// load fires dozens of queries at once). Over the limit a UDP query gets no
// answer, except every Slip-th one, which gets an empty truncated answer so
// that a real client retries over TCP. TCP is never limited.
type RateLimit struct {
	// Rate in responses per second. Default 20; negative turns RRL off.
	Rate int
	// Slip: every Slip-th limited query gets a truncated answer. Default 2;
	// 1 answers every limited query with TC; negative never does.
	Slip int
}

// Defaults of Config.
const (
	DefaultZone            = "preau.lan"
	DefaultCacheEntries    = 10000
	DefaultStaleMaxAge     = 3 * 24 * time.Hour
	DefaultStaleTTL        = 30 * time.Second
	DefaultClientTimeout   = 1800 * time.Millisecond
	DefaultUpstreamTimeout = 2 * time.Second
	DefaultRRLRate         = 20
	DefaultRRLSlip         = 2
)

// DefaultLANPrefixes returns the prefixes of Config.LANPrefixes' default.
func DefaultLANPrefixes() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8",
		"fc00::/7", "fe80::/10", "::1/128"} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Zone == "" {
		c.Zone = DefaultZone
	}
	if c.LANPrefixes == nil {
		c.LANPrefixes = DefaultLANPrefixes()
	}
	if c.CacheEntries == 0 {
		c.CacheEntries = DefaultCacheEntries
	}
	if c.StaleMaxAge == 0 {
		c.StaleMaxAge = DefaultStaleMaxAge
	}
	if c.StaleTTL == 0 {
		c.StaleTTL = DefaultStaleTTL
	}
	if c.ClientTimeout == 0 {
		c.ClientTimeout = DefaultClientTimeout
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if c.RRL.Rate == 0 {
		c.RRL.Rate = DefaultRRLRate
	}
	if c.RRL.Slip == 0 {
		c.RRL.Slip = DefaultRRLSlip
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// ConfigError is an invalid field. Error returns the French text, English
// the English one; Field names the Config field.
type ConfigError struct {
	Field string
	FR    string
	EN    string
}

func (e *ConfigError) Error() string   { return e.FR }
func (e *ConfigError) English() string { return e.EN }

func configErr(field, fr, en string, args ...any) *ConfigError {
	return &ConfigError{Field: field, FR: "dns : " + fmt.Sprintf(fr, args...), EN: "dns: " + fmt.Sprintf(en, args...)}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	zone, err := checkZone(c.Zone)
	if err != nil {
		return err
	}
	for _, s := range c.ShortNames {
		if !isLabel(s) {
			return configErr("ShortNames", "nom court %q invalide : un seul mot de lettres, chiffres et tirets, sans point",
				"short name %q is invalid: one word of letters, digits and hyphens, no dot", s)
		}
		if strings.EqualFold(s, "localhost") || strings.EqualFold(s, "local") {
			return configErr("ShortNames", "le nom court %q est réservé", "short name %q is reserved", s)
		}
	}
	for name, addrs := range c.Hosts {
		fq := hostName(name, zone)
		if fq == "" {
			return configErr("Hosts", "nom d'hôte %q invalide", "host name %q is invalid", name)
		}
		if err := checkAddrs("Hosts", name, addrs, false); err != nil {
			return err
		}
	}
	if len(c.BoxAddrs) == 0 {
		return configErr("BoxAddrs", "aucune adresse du serveur : donnez son adresse IPv4 (et IPv6) sur le réseau de l'école",
			"no box address: give its IPv4 (and IPv6) address on the school network")
	}
	if err := checkAddrs("BoxAddrs", "", c.BoxAddrs, true); err != nil {
		return err
	}
	for _, u := range c.Upstreams {
		if _, err := parseUpstream(u); err != nil {
			return configErr("Upstreams", "serveur DNS amont %q invalide : donnez une adresse IP et un port, par exemple 9.9.9.9:53",
				"upstream resolver %q is invalid: give an IP address and a port, e.g. 9.9.9.9:53", u)
		}
	}
	if len(c.LANPrefixes) == 0 {
		return configErr("LANPrefixes", "aucun préfixe du réseau local : le serveur ne répondrait à personne",
			"no LAN prefix: the server would resolve for nobody")
	}
	for _, p := range c.LANPrefixes {
		if !p.IsValid() {
			return configErr("LANPrefixes", "préfixe du réseau local invalide", "invalid LAN prefix")
		}
		if p.Bits() == 0 {
			return configErr("LANPrefixes", "le préfixe %s couvre tout Internet : le serveur deviendrait un résolveur ouvert",
				"prefix %s covers the whole internet: the server would be an open resolver", p)
		}
	}
	for _, n := range c.ProbeNames {
		if canonical(n) == "" {
			return configErr("ProbeNames", "nom de sonde %q invalide", "probe name %q is invalid", n)
		}
	}
	for n, addrs := range c.DNSOnlyProbes {
		if canonical(n) == "" {
			return configErr("DNSOnlyProbes", "nom de sonde %q invalide", "probe name %q is invalid", n)
		}
		if err := checkAddrs("DNSOnlyProbes", n, addrs, false); err != nil {
			return err
		}
	}
	switch {
	case c.CacheEntries < 0 || c.CacheEntries > 1_000_000:
		return configErr("CacheEntries", "taille du cache %d hors limites (0 à 1 000 000)", "cache size %d out of range (0 to 1,000,000)", c.CacheEntries)
	case c.StaleTTL < time.Second || c.StaleTTL > time.Hour:
		return configErr("StaleTTL", "durée de vie des réponses périmées %s hors limites (1 s à 1 h)", "stale TTL %s out of range (1s to 1h)", c.StaleTTL)
	case c.ClientTimeout <= 0 || c.ClientTimeout > time.Minute:
		return configErr("ClientTimeout", "délai client %s hors limites", "client timeout %s out of range", c.ClientTimeout)
	case c.UpstreamTimeout <= 0 || c.UpstreamTimeout > time.Minute:
		return configErr("UpstreamTimeout", "délai des serveurs amont %s hors limites", "upstream timeout %s out of range", c.UpstreamTimeout)
	case c.RRL.Rate > 100000:
		return configErr("RRL", "limite de débit %d trop haute", "rate limit %d too high", c.RRL.Rate)
	}
	return nil
}

func checkAddrs(field, name string, addrs []netip.Addr, box bool) error {
	if len(addrs) == 0 && !box {
		return configErr(field, "%q n'a aucune adresse", "%q has no address", name)
	}
	for _, a := range addrs {
		if !a.IsValid() || a.Unmap().IsUnspecified() {
			return configErr(field, "adresse invalide pour %q", "invalid address for %q", name)
		}
	}
	return nil
}

// checkZone returns the zone in canonical form.
func checkZone(z string) (string, error) {
	fq := canonical(z)
	if fq == "" {
		return "", configErr("Zone", "zone %q invalide", "zone %q is invalid", z)
	}
	labels := miekg.CountLabel(fq)
	if fq == "local." || miekg.IsSubDomain("local.", fq) || fq == "arpa." || miekg.IsSubDomain("in-addr.arpa.", fq) || miekg.IsSubDomain("ip6.arpa.", fq) {
		return "", configErr("Zone", "zone %q réservée (mDNS ou résolution inverse)", "zone %q is reserved (mDNS or reverse lookups)", z)
	}
	if labels < 2 && fq != "lan." && fq != "internal." {
		return "", configErr("Zone", "zone %q trop large : il faut au moins deux mots (par exemple preau.lan), ou « lan », « internal »",
			"zone %q is too wide: it needs two labels or more (e.g. preau.lan), or \"lan\", \"internal\"", z)
	}
	return fq, nil
}

// canonical returns name lowercased and fully qualified, or "" when it is
// not a usable host name (wildcards, empty labels, over-long names).
func canonical(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" || name == "." || strings.Contains(name, "*") {
		return ""
	}
	fq := miekg.Fqdn(name)
	if _, ok := miekg.IsDomainName(fq); !ok {
		return ""
	}
	for _, l := range miekg.SplitDomainName(fq) {
		if l == "" || strings.ContainsAny(l, " \\\"()") {
			return ""
		}
	}
	return fq
}

// hostName places a Hosts key in the zone.
func hostName(name, zone string) string {
	fq := canonical(name)
	if fq == "" {
		return ""
	}
	if fq == zone || miekg.IsSubDomain(zone, fq) {
		return fq
	}
	return canonical(strings.TrimSuffix(fq, ".") + "." + zone)
}

func isLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// parseUpstream accepts "ip:port", "[v6]:port" and a bare IP (port 53).
func parseUpstream(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 || ap.Addr().IsUnspecified() {
			return netip.AddrPort{}, fmt.Errorf("parse upstream %q: want a port and a unicast address", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("parse upstream %q: %w", s, err)
	}
	if a.IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("parse upstream %q: want a unicast address", s)
	}
	return netip.AddrPortFrom(a.Unmap(), 53), nil
}
