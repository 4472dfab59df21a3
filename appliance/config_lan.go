package appliance

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// CaptiveConfig is the captive portal: OS probe answers, the school's
// charter, the RFC 8908 API.
type CaptiveConfig struct {
	// Charter: devices must accept the charter before the probes say
	// "online". Default true; false lets every device through at once.
	Charter bool `toml:"charter"`
	// CharterText and CharterTextEN replace the built-in charter (plain
	// text, paragraphs separated by blank lines).
	CharterText   string `toml:"charter_text"`
	CharterTextEN string `toml:"charter_text_en"`
	// PortalURL is the portal's home as tablets reach it. Default
	// "http://<dns.zone>/" (with the port when the HTTP port is not 80).
	PortalURL string `toml:"portal_url"`
	// HTTPSURL is the portal's public HTTPS name for the RFC 8908 API,
	// e.g. "https://preau.ecole.example.fr/". Default: none, or derived
	// from portal_url when tls_cert is set.
	HTTPSURL string `toml:"https_url"`
	// TLSCert and TLSKey are PEM files (certificate chain, key); both or
	// neither. Needed for Android 16's RFC 8908 check.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// HTTPSListen are the HTTPS addresses, used when tls_cert is set.
	// Default [":443"].
	HTTPSListen []string `toml:"https_listen"`
	// DayEnd ends acceptances at this local time. Default "17:30".
	DayEnd string `toml:"day_end"`
	// AcceptFor, when set, makes an acceptance last this long instead.
	AcceptFor string `toml:"accept_for"`
}

// DNSConfig is the local resolver.
type DNSConfig struct {
	// Enabled: default true.
	Enabled bool `toml:"enabled"`
	// Listen addresses, UDP and TCP. Default [":53"].
	Listen []string `toml:"listen"`
	// Zone the box is authoritative for. Default "preau.lan".
	Zone string `toml:"zone"`
	// ShortNames answered with the box's address. Default ["preau"].
	ShortNames []string `toml:"short_names"`
	// Addresses of the box on the LAN, answered for the local names.
	// Default: the host of http.listen when it is an address, else the
	// addresses of the box's up, non-loopback interfaces.
	Addresses []string `toml:"addresses"`
	// Upstreams are the resolvers names are forwarded to. Default: the
	// nameservers of /etc/resolv.conf that are not the box itself.
	Upstreams []string `toml:"upstreams"`
	// LANPrefixes are the clients the box resolves for. Default: private
	// and link-local ranges, loopback.
	LANPrefixes []string `toml:"lan_prefixes"`
	// RateLimit in UDP responses per second per client. Default 20; 0 off.
	RateLimit int `toml:"rate_limit"`
}

// MDNSConfig is the mDNS / DNS-SD announcement.
type MDNSConfig struct {
	// Interfaces to announce on. Default none: mDNS is off.
	Interfaces []string `toml:"interfaces"`
	// HostName: "<host_name>.local". Default "preau".
	HostName string `toml:"host_name"`
}

// DHCPConfig is the optional DHCPv4 server.
type DHCPConfig struct {
	// Enabled: default false. Preau refuses to start it when another DHCP
	// server answers on the interface.
	Enabled   bool   `toml:"enabled"`
	Interface string `toml:"interface"`
	// ServerIP is the box's address on the interface.
	ServerIP string `toml:"server_ip"`
	// Subnet, e.g. "10.20.0.0/24".
	Subnet    string `toml:"subnet"`
	PoolStart string `toml:"pool_start"`
	PoolEnd   string `toml:"pool_end"`
	// Router given to clients. Default none, or server_ip in gateway mode.
	Router string `toml:"router"`
	// LeaseTime. Default "8h".
	LeaseTime string `toml:"lease_time"`
	// Static leases as "MAC=IP", e.g. "aa:bb:cc:dd:ee:ff=10.20.0.10".
	Static []string `toml:"static"`
}

// GatewayConfig is gateway mode, for boxes that are the LAN's router.
type GatewayConfig struct {
	// Enabled: default false.
	Enabled bool `toml:"enabled"`
	// LANInterface faces the tablets (required when enabled).
	LANInterface string `toml:"lan_interface"`
	// UplinkInterface faces the internet; IPv4 is masqueraded there.
	UplinkInterface string `toml:"uplink_interface"`
}

func lanDefaults(c *Config) {
	c.Captive = CaptiveConfig{Charter: true, HTTPSListen: []string{":443"}, DayEnd: "17:30"}
	c.DNS = DNSConfig{Enabled: true, Listen: []string{":53"}, Zone: "preau.lan", ShortNames: []string{"preau"}, RateLimit: 20}
	c.MDNS = MDNSConfig{HostName: "preau"}
	c.DHCP = DHCPConfig{LeaseTime: "8h"}
}

// lanListKeys are the list keys whose default is not empty: a file that
// sets them replaces the default rather than appending to it.
var lanListKeys = []string{"captive.https_listen", "dns.listen", "dns.short_names"}

var (
	hhmmRe  = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	labelRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	macRe   = regexp.MustCompile(`^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$`)
)

func (c Config) lanProblems(bad func(key, fr, en string)) {
	cp := c.Captive
	for key, u := range map[string]string{"captive.portal_url": cp.PortalURL, "captive.https_url": cp.HTTPSURL} {
		if u == "" {
			continue
		}
		pu, err := url.Parse(u)
		want := "http"
		if key == "captive.https_url" {
			want = "https"
		}
		if err != nil || pu.Host == "" || (pu.Scheme != want && !(want == "http" && pu.Scheme == "https")) || (pu.Path != "" && pu.Path != "/") {
			bad(key, fmt.Sprintf("« %s » n'est pas une adresse de site ; attendu par ex. « %s://preau.lan/ » (racine du site)", u, want),
				fmt.Sprintf("%q is not a site address; expected e.g. \"%s://preau.lan/\" (site root)", u, want))
		}
	}
	if (cp.TLSCert == "") != (cp.TLSKey == "") {
		bad("captive.tls_cert", "tls_cert et tls_key vont ensemble ; attendu : les deux fichiers PEM ou aucun",
			"tls_cert and tls_key go together; expected both PEM files or neither")
	}
	if cp.TLSCert != "" {
		checkListen(bad, "captive.https_listen", cp.HTTPSListen)
	}
	if !hhmmRe.MatchString(cp.DayEnd) {
		bad("captive.day_end", fmt.Sprintf("« %s » n'est pas une heure ; attendu « HH:MM », par ex. « 17:30 »", cp.DayEnd),
			fmt.Sprintf("%q is not a time of day; expected \"HH:MM\", e.g. \"17:30\"", cp.DayEnd))
	}
	if cp.AcceptFor != "" {
		checkDurationBad(bad, "captive.accept_for", cp.AcceptFor, time.Minute, 31*24*time.Hour)
	}

	d := c.DNS
	if d.Enabled {
		checkListen(bad, "dns.listen", d.Listen)
	}
	if z := strings.TrimSuffix(strings.ToLower(d.Zone), "."); z == "" || z == "local" || strings.HasSuffix(z, ".local") {
		bad("dns.zone", fmt.Sprintf("« %s » ne convient pas ; attendu un nom de domaine local, par ex. « preau.lan » (jamais « .local », réservé à mDNS)", d.Zone),
			fmt.Sprintf("%q is not usable; expected a local domain, e.g. \"preau.lan\" (never \".local\", which is mDNS)", d.Zone))
	}
	for _, s := range d.ShortNames {
		if !labelRe.MatchString(s) {
			bad("dns.short_names", fmt.Sprintf("« %s » n'est pas un nom court ; attendu des minuscules, chiffres et tirets, par ex. « jaures »", s),
				fmt.Sprintf("%q is not a short name; expected lower-case letters, digits and dashes, e.g. \"jaures\"", s))
		}
	}
	checkAddrs(bad, "dns.addresses", d.Addresses)
	for _, u := range d.Upstreams {
		if _, err := parseHostPort(u, 53); err != nil {
			bad("dns.upstreams", fmt.Sprintf("« %s » n'est pas un résolveur ; attendu une adresse IP, avec ou sans port, par ex. « 192.168.1.1 » ou « [2001:db8::1]:53 »", u),
				fmt.Sprintf("%q is not a resolver; expected an IP address, with or without a port, e.g. \"192.168.1.1\" or \"[2001:db8::1]:53\"", u))
		}
	}
	for _, p := range d.LANPrefixes {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad("dns.lan_prefixes", fmt.Sprintf("« %s » n'est pas un préfixe ; attendu par ex. « 10.0.0.0/8 »", p),
				fmt.Sprintf("%q is not a prefix; expected e.g. \"10.0.0.0/8\"", p))
		}
	}
	if d.RateLimit < 0 || d.RateLimit > 100000 {
		bad("dns.rate_limit", "hors limites ; attendu entre 0 (sans limite) et 100000 réponses par seconde",
			"out of range; expected between 0 (no limit) and 100000 responses per second")
	}

	if !labelRe.MatchString(c.MDNS.HostName) {
		bad("mdns.host_name", fmt.Sprintf("« %s » n'est pas un nom d'hôte ; attendu par ex. « preau »", c.MDNS.HostName),
			fmt.Sprintf("%q is not a host name; expected e.g. \"preau\"", c.MDNS.HostName))
	}

	h := c.DHCP
	checkDurationBad(bad, "dhcp.lease_time", h.LeaseTime, time.Minute, 30*24*time.Hour)
	if h.Enabled {
		if h.Interface == "" {
			bad("dhcp.interface", "obligatoire quand dhcp.enabled = true ; attendu le nom de l'interface du réseau de l'école, par ex. « eth1 »",
				"required when dhcp.enabled = true; expected the school network's interface, e.g. \"eth1\"")
		}
		sub, err := netip.ParsePrefix(h.Subnet)
		if err != nil {
			bad("dhcp.subnet", fmt.Sprintf("« %s » n'est pas un sous-réseau ; attendu par ex. « 10.20.0.0/24 »", h.Subnet),
				fmt.Sprintf("%q is not a subnet; expected e.g. \"10.20.0.0/24\"", h.Subnet))
		}
		for _, k := range []struct{ key, v string }{{"dhcp.server_ip", h.ServerIP}, {"dhcp.pool_start", h.PoolStart}, {"dhcp.pool_end", h.PoolEnd}, {"dhcp.router", h.Router}} {
			if k.v == "" && k.key == "dhcp.router" {
				continue
			}
			a, aerr := netip.ParseAddr(k.v)
			if aerr != nil || !a.Is4() || (err == nil && !sub.Contains(a)) {
				bad(k.key, fmt.Sprintf("« %s » n'est pas une adresse IPv4 du sous-réseau %s", k.v, h.Subnet),
					fmt.Sprintf("%q is not an IPv4 address in subnet %s", k.v, h.Subnet))
			}
		}
		for _, s := range h.Static {
			mac, ip, ok := strings.Cut(s, "=")
			a, aerr := netip.ParseAddr(strings.TrimSpace(ip))
			if !ok || !macRe.MatchString(strings.TrimSpace(mac)) || aerr != nil || !a.Is4() {
				bad("dhcp.static", fmt.Sprintf("« %s » ne convient pas ; attendu « MAC=IP », par ex. « aa:bb:cc:dd:ee:ff=10.20.0.10 »", s),
					fmt.Sprintf("%q is not usable; expected \"MAC=IP\", e.g. \"aa:bb:cc:dd:ee:ff=10.20.0.10\"", s))
			}
		}
	}

	if c.Gateway.Enabled && c.Gateway.LANInterface == "" {
		bad("gateway.lan_interface", "obligatoire quand gateway.enabled = true ; attendu l'interface côté tablettes, par ex. « eth1 »",
			"required when gateway.enabled = true; expected the interface facing the tablets, e.g. \"eth1\"")
	}
}

func checkListen(bad func(key, fr, en string), key string, addrs []string) {
	if len(addrs) == 0 {
		bad(key, "aucune adresse ; attendu une liste, par ex. [\":53\"]", "no address; expected a list, e.g. [\":53\"]")
	}
	for _, a := range addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || !validPort(port) {
			bad(key, fmt.Sprintf("« %s » n'est pas une adresse d'écoute ; attendu « hôte:port », par ex. « :53 » ou « 127.0.0.1:8053 »", a),
				fmt.Sprintf("%q is not a listen address; expected \"host:port\", e.g. \":53\" or \"127.0.0.1:8053\"", a))
		}
	}
}

func checkAddrs(bad func(key, fr, en string), key string, addrs []string) {
	for _, a := range addrs {
		if _, err := netip.ParseAddr(a); err != nil {
			bad(key, fmt.Sprintf("« %s » n'est pas une adresse IP ; attendu par ex. « 10.20.0.1 »", a),
				fmt.Sprintf("%q is not an IP address; expected e.g. \"10.20.0.1\"", a))
		}
	}
}

func checkDurationBad(bad func(key, fr, en string), key, v string, min, max time.Duration) {
	var ps []Problem
	checkDuration(&ps, key, v, min, max)
	for _, p := range ps {
		bad(p.Key, p.FR, p.EN)
	}
}

// parseHostPort reads "ip" or "ip:port" (IPv6 in brackets with a port).
func parseHostPort(s string, defPort uint16) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, defPort), nil
}

var lanKeyTypes = func() map[string][2]string {
	text := [2]string{"un texte entre guillemets", "quoted text"}
	list := [2]string{"une liste de textes, par ex. [\"a\", \"b\"]", "a list of quoted texts, e.g. [\"a\", \"b\"]"}
	boolean := [2]string{"true ou false", "true or false"}
	table := [2]string{"une section [nom]", "a [name] table"}
	return map[string][2]string{
		"captive": table, "dns": table, "mdns": table, "dhcp": table, "gateway": table,
		"captive.charter": boolean, "captive.charter_text": text, "captive.charter_text_en": text,
		"captive.portal_url": text, "captive.https_url": text, "captive.tls_cert": text, "captive.tls_key": text,
		"captive.https_listen": list, "captive.day_end": text, "captive.accept_for": text,
		"dns.enabled": boolean, "dns.listen": list, "dns.zone": text, "dns.short_names": list,
		"dns.addresses": list, "dns.upstreams": list, "dns.lan_prefixes": list,
		"dns.rate_limit":  {"un nombre entier, par ex. 20", "a whole number, e.g. 20"},
		"mdns.interfaces": list, "mdns.host_name": text,
		"dhcp.enabled": boolean, "dhcp.interface": text, "dhcp.server_ip": text, "dhcp.subnet": text,
		"dhcp.pool_start": text, "dhcp.pool_end": text, "dhcp.router": text, "dhcp.lease_time": text, "dhcp.static": list,
		"gateway.enabled": boolean, "gateway.lan_interface": text, "gateway.uplink_interface": text,
	}
}()
