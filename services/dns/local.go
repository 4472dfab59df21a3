package dns

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	miekg "github.com/miekg/dns"
)

// TTLs of the names the box answers itself. Local records change only when
// the box's address does, so a minute is plenty; hijacked probe answers
// must flip within seconds of the charter being accepted.
const (
	localTTL    = 60
	negativeTTL = 60 // SOA minimum of the local zone (RFC 2308)
	hijackTTL   = 5
)

var loopbacks = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}

// boxLabels are the names under the zone that point at the box itself.
var boxLabels = []string{"www", "portail", "portal"}

// localNames holds everything the box answers without asking upstream.
type localNames struct {
	zone  string                  // canonical, e.g. "preau.lan."
	soa   miekg.SOA               // template of the zone's SOA
	addrs map[string][]netip.Addr // names inside the zone → addresses
	ents  map[string]bool         // empty non-terminals inside the zone
	short map[string]bool         // "<short>." names (outside the zone)
	box   []netip.Addr

	ptr     map[string]string       // reverse name → target, for BoxAddrs and Hosts
	probes  map[string]bool         // hijacked probe names
	dnsOnly map[string][]netip.Addr // always answered with fixed addresses
}

func newLocalNames(cfg Config, now time.Time) *localNames {
	zone, _ := checkZone(cfg.Zone)
	box := unmapAll(cfg.BoxAddrs)
	l := &localNames{
		zone:    zone,
		addrs:   map[string][]netip.Addr{},
		ents:    map[string]bool{},
		short:   map[string]bool{},
		box:     box,
		ptr:     map[string]string{},
		probes:  map[string]bool{},
		dnsOnly: map[string][]netip.Addr{},
	}
	l.soa = miekg.SOA{
		Hdr:     miekg.RR_Header{Name: zone, Rrtype: miekg.TypeSOA, Class: miekg.ClassINET, Ttl: negativeTTL},
		Ns:      zone,
		Mbox:    "hostmaster." + zone,
		Serial:  uint32(now.Unix()),
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  negativeTTL,
	}
	l.addrs[zone] = box
	for _, b := range boxLabels {
		l.addrs[b+"."+zone] = box
	}
	for _, s := range cfg.ShortNames {
		s = strings.ToLower(s)
		l.short[s+"."] = true
		l.addrs[s+"."+zone] = box
	}
	// Hosts in a stable order so that a name given twice (e.g. "nas" and
	// "nas.preau.lan") resolves the same way on every start.
	hosts := make([]string, 0, len(cfg.Hosts))
	for n := range cfg.Hosts {
		hosts = append(hosts, n)
	}
	slices.Sort(hosts)
	for _, n := range hosts {
		fq := hostName(n, zone)
		addrs := unmapAll(cfg.Hosts[n])
		l.addrs[fq] = addrs
		for _, a := range addrs {
			if rev, err := miekg.ReverseAddr(a.String()); err == nil {
				l.ptr[rev] = fq
			}
		}
	}
	for n := range l.addrs {
		for p := parentName(n); p != "" && p != zone && miekg.IsSubDomain(zone, p); p = parentName(p) {
			if _, ok := l.addrs[p]; !ok {
				l.ents[p] = true
			}
		}
	}
	for _, a := range box {
		if rev, err := miekg.ReverseAddr(a.String()); err == nil {
			l.ptr[rev] = zone
		}
	}
	for _, n := range cfg.ProbeNames {
		l.probes[canonical(n)] = true
	}
	for n, addrs := range cfg.DNSOnlyProbes {
		l.dnsOnly[canonical(n)] = unmapAll(addrs)
	}
	return l
}

func unmapAll(in []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(in))
	for _, a := range in {
		a = a.Unmap()
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func parentName(n string) string {
	i := strings.IndexByte(n, '.')
	if i < 0 || i == len(n)-1 {
		return ""
	}
	return n[i+1:]
}

// authoritative fills m with the box's own answer when name (lowercased)
// is in the local zone, is a short name or is localhost, and reports
// whether it did. m already echoes the question.
func (l *localNames) authoritative(m *miekg.Msg, q miekg.Question, name string) bool {
	switch {
	case name == l.zone || miekg.IsSubDomain(l.zone, name):
		m.Authoritative = true
		addrs, ok := l.addrs[name]
		if !ok && !l.ents[name] {
			m.Rcode = miekg.RcodeNameError
			m.Ns = []miekg.RR{l.negativeSOA()}
			return true
		}
		switch {
		case name == l.zone && q.Qtype == miekg.TypeSOA:
			soa := l.soa
			soa.Hdr.Ttl = localTTL
			m.Answer = []miekg.RR{&soa}
		case name == l.zone && q.Qtype == miekg.TypeNS:
			m.Answer = []miekg.RR{&miekg.NS{Hdr: hdr(q.Name, miekg.TypeNS, localTTL), Ns: l.zone}}
			m.Extra = addrRRs(l.zone, miekg.TypeANY, l.box, localTTL)
		default:
			m.Answer = addrRRs(q.Name, q.Qtype, addrs, localTTL)
		}
		if len(m.Answer) == 0 {
			m.Ns = []miekg.RR{l.negativeSOA()}
		}
		return true
	case l.short[name]:
		m.Authoritative = true
		m.Answer = addrRRs(q.Name, q.Qtype, l.box, localTTL)
		return true
	case name == "localhost." || miekg.IsSubDomain("localhost.", name):
		// RFC 6761 §6.3: never sent upstream.
		m.Authoritative = true
		m.Answer = addrRRs(q.Name, q.Qtype, loopbacks, localTTL)
		return true
	}
	return false
}

func (l *localNames) negativeSOA() miekg.RR {
	soa := l.soa
	return &soa
}

// reverse answers PTR queries for the box's and Hosts' addresses.
func (l *localNames) reverse(m *miekg.Msg, q miekg.Question, name string) bool {
	target, ok := l.ptr[name]
	if !ok {
		return false
	}
	m.Authoritative = true
	if q.Qtype == miekg.TypePTR || q.Qtype == miekg.TypeANY {
		m.Answer = []miekg.RR{&miekg.PTR{Hdr: hdr(q.Name, miekg.TypePTR, localTTL), Ptr: target}}
	}
	return true
}

// addrRRs returns the A and AAAA records of addrs that qtype asks for
// (both for ANY).
func addrRRs(owner string, qtype uint16, addrs []netip.Addr, ttl uint32) []miekg.RR {
	var rrs []miekg.RR
	for _, a := range addrs {
		switch {
		case a.Is4() && (qtype == miekg.TypeA || qtype == miekg.TypeANY):
			rrs = append(rrs, &miekg.A{Hdr: hdr(owner, miekg.TypeA, ttl), A: a.AsSlice()})
		case a.Is6() && (qtype == miekg.TypeAAAA || qtype == miekg.TypeANY):
			rrs = append(rrs, &miekg.AAAA{Hdr: hdr(owner, miekg.TypeAAAA, ttl), AAAA: a.AsSlice()})
		}
	}
	return rrs
}

func hdr(owner string, t uint16, ttl uint32) miekg.RR_Header {
	return miekg.RR_Header{Name: owner, Rrtype: t, Class: miekg.ClassINET, Ttl: ttl}
}
