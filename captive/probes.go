package captive

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// probesJSON is the one data file of every OS connectivity probe: edit it,
// not the code, when an OS changes its probe. Each row is tested.
//
//go:embed probes.json
var probesJSON []byte

// AnyPath in a row's Path matches every path on the row's hosts.
const AnyPath = "*"

// Probe is one row of the probe table: what an OS family fetches and the
// exact answer it takes as "this network reaches the Internet".
type Probe struct {
	ID      string            `json:"id"`
	Family  string            `json:"family"`
	Hosts   []string          `json:"hosts"`
	Path    string            `json:"path"` // exact, or AnyPath
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	// UserAgent is what the OS sends; empty means no User-Agent header.
	UserAgent string `json:"user_agent"`
	// Comment cites the public source of the row.
	Comment string `json:"comment"`
}

// DNSProbe is a name an OS only resolves, checking the addresses it gets
// (Windows' dns.msftncsi.com). The DNS server answers it locally, always.
type DNSProbe struct {
	Name    string       `json:"name"`
	A       []netip.Addr `json:"a"`
	AAAA    []netip.Addr `json:"aaaa"`
	Comment string       `json:"comment"`
}

// Table is a parsed probe table, indexed by host. It is read-only and safe
// for concurrent use.
type Table struct {
	probes  []Probe
	dnsOnly []DNSProbe
	byHost  map[string][]int // host → indexes of probes, exact paths first
}

type tableFile struct {
	Comment string     `json:"comment"`
	Probes  []Probe    `json:"probes"`
	DNSOnly []DNSProbe `json:"dns_only"`
}

// ParseTable reads a probe table in the format of probes.json and checks
// every row.
func ParseTable(data []byte) (*Table, error) {
	var f tableFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse probe table: %w", err)
	}
	t := &Table{probes: f.Probes, dnsOnly: f.DNSOnly, byHost: map[string][]int{}}
	ids := map[string]bool{}
	seen := map[string]bool{} // host+path pairs
	for i, p := range f.Probes {
		if err := checkProbe(p); err != nil {
			return nil, fmt.Errorf("parse probe table: row %d (%q): %w", i, p.ID, err)
		}
		if ids[p.ID] {
			return nil, fmt.Errorf("parse probe table: row %d: duplicate id %q", i, p.ID)
		}
		ids[p.ID] = true
		for _, h := range p.Hosts {
			if seen[h+p.Path] {
				return nil, fmt.Errorf("parse probe table: row %q: host %q path %q already in another row", p.ID, h, p.Path)
			}
			seen[h+p.Path] = true
			t.byHost[h] = append(t.byHost[h], i)
		}
	}
	for h, idx := range t.byHost {
		// Exact paths before the wildcard, so a specific row wins.
		slices.SortStableFunc(idx, func(a, b int) int {
			return boolCmp(t.probes[a].Path == AnyPath, t.probes[b].Path == AnyPath)
		})
		t.byHost[h] = idx
	}
	for i, d := range f.DNSOnly {
		if d.Name != normalizeHost(d.Name) || d.Name == "" || len(d.A)+len(d.AAAA) == 0 {
			return nil, fmt.Errorf("parse probe table: dns_only row %d (%q): want a lower-case name and at least one address", i, d.Name)
		}
		for _, a := range d.A {
			if !a.Is4() {
				return nil, fmt.Errorf("parse probe table: dns_only %q: %s is not IPv4", d.Name, a)
			}
		}
		for _, a := range d.AAAA {
			if !a.Is6() || a.Is4In6() {
				return nil, fmt.Errorf("parse probe table: dns_only %q: %s is not IPv6", d.Name, a)
			}
		}
	}
	return t, nil
}

// notTokenChar reports a rune not allowed in an HTTP header name (RFC 9110 token).
func notTokenChar(r rune) bool {
	return r <= ' ' || r >= 0x7f || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r)
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}

func checkProbe(p Probe) error {
	switch {
	case p.ID == "" || p.Family == "":
		return errors.New("id and family are required")
	case len(p.Hosts) == 0:
		return errors.New("no hosts")
	case p.Path != AnyPath && !strings.HasPrefix(p.Path, "/"):
		return fmt.Errorf("path %q: want \"/…\" or %q", p.Path, AnyPath)
	case p.Status < 200 || p.Status > 299:
		return fmt.Errorf("status %d: a success answer is 2xx", p.Status)
	case p.Status == http.StatusNoContent && p.Body != "":
		return errors.New("a 204 answer has no body")
	case p.Comment == "":
		return errors.New("comment must cite the source of the row")
	}
	for _, h := range p.Hosts {
		if h == "" || h != normalizeHost(h) || strings.ContainsAny(h, ":/ ") {
			return fmt.Errorf("host %q: want a lower-case name without port or trailing dot", h)
		}
	}
	for k, v := range p.Headers {
		if k == "" || strings.ContainsFunc(k, notTokenChar) || strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("header %q: %q: not a valid HTTP header", k, v)
		}
	}
	return nil
}

// Probes returns the embedded probe table. It panics if probes.json is
// invalid, which the package tests rule out.
func Probes() *Table { return embeddedTable() }

var embeddedTable = sync.OnceValue(func() *Table {
	t, err := ParseTable(probesJSON)
	if err != nil {
		panic(err)
	}
	return t
})

// ProbeHosts returns every host name of the embedded table, sorted, for the
// DNS server to answer with the box's address.
func ProbeHosts() []string { return Probes().Hosts() }

// DNSOnlyProbes returns the names an OS only resolves, with the fixed
// addresses the DNS server must answer for them.
func DNSOnlyProbes() []DNSProbe { return Probes().DNSOnly() }

// Rows returns a copy of the table's rows, in file order.
func (t *Table) Rows() []Probe { return slices.Clone(t.probes) }

// Hosts returns every probe host, sorted and unique.
func (t *Table) Hosts() []string {
	hs := make([]string, 0, len(t.byHost))
	for h := range t.byHost {
		hs = append(hs, h)
	}
	slices.Sort(hs)
	return hs
}

// DNSOnly returns a copy of the DNS-only probes.
func (t *Table) DNSOnly() []DNSProbe { return slices.Clone(t.dnsOnly) }

// IsProbeHost reports whether host (as in a Host header) is a probe host.
func (t *Table) IsProbeHost(host string) bool {
	_, ok := t.byHost[normalizeHost(host)]
	return ok
}

// Match finds the probe for a request's Host header and URL path. The host
// is compared case-insensitively, without port or trailing dots; the path
// exactly (the query is not part of it).
func (t *Table) Match(host, path string) (Probe, bool) {
	for _, i := range t.byHost[normalizeHost(host)] {
		if p := t.probes[i]; p.Path == path || p.Path == AnyPath {
			return p, true
		}
	}
	return Probe{}, false
}

// normalizeHost lower-cases a Host header value and strips its port and
// trailing dots. It allocates only when the host has upper-case letters.
func normalizeHost(host string) string {
	if strings.HasPrefix(host, "[") {
		// IPv6 literal, never a probe host; keep it recognisable.
		if end := strings.IndexByte(host, ']'); end > 0 {
			host = host[:end+1]
		}
	} else if i := strings.IndexByte(host, ':'); i >= 0 && strings.Count(host, ":") == 1 {
		host = host[:i]
	}
	host = strings.TrimRight(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return asciiLower(host)
		}
	}
	return host
}

// asciiLower folds only A-Z: host names are case-insensitive in ASCII only
// (RFC 4343), and a probe host is never an internationalised name.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
