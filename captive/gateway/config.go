package gateway

import (
	"fmt"
	"strings"
	"time"
)

// Config configures the Gateway. Zero values take the defaults of
// WithDefaults; Validate reports the first invalid field.
type Config struct {
	// LANInterface is the interface the school's devices reach the box by
	// (e.g. "br-lan", "eth1", "wlan0"). Required. Only packets coming in
	// by it are redirected or filtered; every other interface is left
	// alone.
	LANInterface string
	// UplinkInterface is the interface towards the internet (e.g. "eth0").
	// Optional. When set, IPv4 traffic the box forwards out of it is
	// masqueraded, so the LAN needs no route upstream; leave it empty when
	// the upstream router routes the LAN's prefix or another NAT exists.
	// IPv6 is never translated.
	UplinkInterface string

	// PortalPort is the box's HTTP port: unaccepted devices' HTTP (TCP 80,
	// whatever the destination) is redirected to it. Default 80.
	PortalPort uint16
	// HTTPSPort is the box's HTTPS port (RFC 8908 API, portal over TLS),
	// reachable before acceptance. Default 443.
	HTTPSPort uint16
	// DNSPort is the box's DNS port: every LAN device's DNS (UDP and TCP
	// 53, whatever the destination, even a hard-coded 8.8.8.8) is
	// redirected to it. Default 53.
	DNSPort uint16

	// TableName is the nftables table (family inet) the gateway owns; it
	// never touches any other. Default "preau".
	TableName string
	// AcceptedTimeout is how long an acceptance lasts in the kernel when
	// Allow is given no end time. Default 12 h.
	AcceptedTimeout time.Duration

	// Open makes every LAN device count as accepted (the captive charter
	// step is switched off): no HTTP redirect, forwarding allowed for all.
	// DNS is still redirected to the box and NAT still applies.
	Open bool

	// Now is the clock that turns Allow's end time into a kernel timeout;
	// nil means time.Now. It is not read from a file.
	Now func() time.Time `toml:"-" json:"-"`
}

// Defaults of Config.
const (
	DefaultPortalPort      = 80
	DefaultHTTPSPort       = 443
	DefaultDNSPort         = 53
	DefaultTableName       = "preau"
	DefaultAcceptedTimeout = 12 * time.Hour
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.PortalPort == 0 {
		c.PortalPort = DefaultPortalPort
	}
	if c.HTTPSPort == 0 {
		c.HTTPSPort = DefaultHTTPSPort
	}
	if c.DNSPort == 0 {
		c.DNSPort = DefaultDNSPort
	}
	if c.TableName == "" {
		c.TableName = DefaultTableName
	}
	if c.AcceptedTimeout == 0 {
		c.AcceptedTimeout = DefaultAcceptedTimeout
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
	return &ConfigError{Field: field,
		FR: "passerelle : " + fmt.Sprintf(fr, args...),
		EN: "gateway: " + fmt.Sprintf(en, args...)}
}

// Validate reports the first invalid field. Ports are checked after
// WithDefaults (a zero port is invalid).
func (c Config) Validate() error {
	if c.LANInterface == "" {
		return configErr("LANInterface", "aucune interface réseau local : donnez celle des appareils de l'école, par exemple « br-lan »",
			"no LAN interface: give the one the school's devices use, e.g. \"br-lan\"")
	}
	if !validIfname(c.LANInterface) {
		return configErr("LANInterface", "nom d'interface %q invalide (1 à 15 caractères, sans espace, « / » ni « : »)",
			"interface name %q is invalid (1 to 15 characters, no space, '/' or ':')", c.LANInterface)
	}
	if c.UplinkInterface != "" && !validIfname(c.UplinkInterface) {
		return configErr("UplinkInterface", "nom d'interface %q invalide (1 à 15 caractères, sans espace, « / » ni « : »)",
			"interface name %q is invalid (1 to 15 characters, no space, '/' or ':')", c.UplinkInterface)
	}
	if c.UplinkInterface == c.LANInterface {
		return configErr("UplinkInterface", "l'interface Internet ne peut pas être celle du réseau local (%q)",
			"the uplink interface cannot be the LAN interface (%q)", c.LANInterface)
	}
	for _, p := range []struct {
		field string
		port  uint16
	}{{"PortalPort", c.PortalPort}, {"HTTPSPort", c.HTTPSPort}, {"DNSPort", c.DNSPort}} {
		if p.port == 0 {
			return configErr(p.field, "port 0 invalide", "port 0 is invalid")
		}
	}
	if !validTableName(c.TableName) {
		return configErr("TableName", "nom de table %q invalide (une lettre puis lettres, chiffres ou « _ », 32 caractères au plus)",
			"table name %q is invalid (a letter then letters, digits or '_', at most 32 characters)", c.TableName)
	}
	if c.AcceptedTimeout < time.Second || c.AcceptedTimeout > 366*24*time.Hour {
		return configErr("AcceptedTimeout", "durée d'acceptation %s hors limites (1 s à 366 jours)",
			"acceptance timeout %s out of range (1s to 366 days)", c.AcceptedTimeout)
	}
	if c.Now == nil {
		return configErr("Now", "horloge absente", "no clock")
	}
	return nil
}

// validIfname follows the kernel's dev_valid_name (1 to IFNAMSIZ-1 bytes,
// not "." or "..", no '/', ':' or white space), a little stricter: only
// printable ASCII, since the name is compared as a NUL-padded string and
// shown in logs.
func validIfname(s string) bool {
	if s == "" || len(s) > ifNameSize-1 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return r == '/' || r == ':' || r <= ' ' || r > '~'
	})
}

// validTableName keeps to nft's identifier syntax so that `nft list table
// inet NAME` works from a shell.
func validTableName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_'):
		default:
			return false
		}
	}
	return true
}
