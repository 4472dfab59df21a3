package dhcp

import (
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// offerHold is how long an offered address stays reserved for the client
// that was offered it (RFC 2131 §4.3.1 lets the server choose).
const offerHold = 2 * time.Minute

// policy is the configuration in the shape the decisions need.
type policy struct {
	cfg       Config
	mask      net.IPMask
	broadcast netip.Addr
	reserved  map[netip.Addr]bool   // never handed out dynamically
	static    map[string]netip.Addr // MAC → address
	staticIP  map[netip.Addr]string // address → MAC
}

func newPolicy(cfg Config) *policy {
	p := &policy{
		cfg:       cfg,
		mask:      net.CIDRMask(cfg.Subnet.Bits(), 32),
		broadcast: broadcastOf(cfg.Subnet),
		reserved:  map[netip.Addr]bool{},
		static:    map[string]netip.Addr{},
		staticIP:  map[netip.Addr]string{},
	}
	p.reserved[cfg.ServerIP] = true
	p.reserved[cfg.Subnet.Masked().Addr()] = true
	p.reserved[p.broadcast] = true
	if cfg.Router.IsValid() {
		p.reserved[cfg.Router] = true
	}
	for _, d := range cfg.DNS {
		p.reserved[d] = true
	}
	for m, ip := range cfg.Static {
		mac, _ := parseMAC(m) // validated
		p.static[mac] = ip
		p.staticIP[ip] = mac
	}
	return p
}

func (p *policy) inPool(ip netip.Addr) bool {
	return ip.Is4() && !ip.Less(p.cfg.PoolStart) && !p.cfg.PoolEnd.Less(ip)
}

// usable reports whether ip may be given to mac at now.
func (p *policy) usable(ip netip.Addr, mac string, now time.Time, t *table) bool {
	if !ip.Is4() || p.reserved[ip] {
		return false
	}
	if s, ok := p.static[mac]; ok {
		// A client with a static lease gets that address and no other.
		return ip == s
	}
	if _, ok := p.staticIP[ip]; ok {
		return false
	}
	if !p.inPool(ip) {
		return false
	}
	if until, ok := t.declined[ip]; ok && now.Before(until) {
		return false
	}
	if l := t.byIP[ip]; l != nil && l.MAC != mac && l.active(now) {
		return false
	}
	return true
}

// allocate picks the address to offer mac: its static lease, else the
// address it holds or last held, else the one it asks for, else a pool
// address never used, else the one whose lease ended first. The zero Addr
// means the pool is exhausted.
func (p *policy) allocate(mac string, requested netip.Addr, now time.Time, t *table) netip.Addr {
	if s, ok := p.static[mac]; ok {
		return s
	}
	if l := t.byMAC[mac]; l != nil && p.usable(l.IP, mac, now, t) {
		return l.IP
	}
	if requested.IsValid() && p.usable(requested, mac, now, t) {
		return requested
	}
	var oldest netip.Addr
	var oldestExp time.Time
	for ip := p.cfg.PoolStart; ip.IsValid() && !p.cfg.PoolEnd.Less(ip); ip = ip.Next() {
		if !p.usable(ip, mac, now, t) {
			continue
		}
		l := t.byIP[ip]
		if l == nil {
			return ip
		}
		if !oldest.IsValid() || l.Expires.Before(oldestExp) {
			oldest, oldestExp = ip, l.Expires
		}
	}
	return oldest
}

// decision is what to do with one request.
type decision struct {
	reply  *dhcpv4.DHCPv4 // nil: stay silent
	change change
	event  string // for the log: "offer", "bind", "renew", "nak", "decline", "release", "inform", "exhausted", ""
	detail string
}

// decide applies RFC 2131 §4.3 to one request. It only reads t; the
// caller persists decision.change and then applies it to t.
func (p *policy) decide(now time.Time, t *table, req *dhcpv4.DHCPv4) decision {
	if req.OpCode != dhcpv4.OpcodeBootRequest || req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 {
		return decision{}
	}
	if gw := addrOf(req.GatewayIPAddr); gw.IsValid() && !gw.IsUnspecified() {
		return decision{} // relayed: not our segment
	}
	mac := req.ClientHWAddr.String()
	ciaddr := addrOf(req.ClientIPAddr)
	requested := addrOf(req.RequestedIPAddress())
	sid := addrOf(req.ServerIdentifier())
	host := cleanHostname(req.HostName())

	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		ip := p.allocate(mac, requested, now, t)
		if !ip.IsValid() {
			return decision{event: "exhausted", detail: mac}
		}
		l := lease{MAC: mac, IP: ip, Hostname: host, State: stateOffered, Expires: now.Add(offerHold)}
		if old := t.byMAC[mac]; old != nil && old.IP == ip && old.State == stateBound && old.active(now) {
			l = *old // an offer never shortens a lease
			if host != "" {
				l.Hostname = host
			}
		} else if old != nil && host == "" {
			l.Hostname = old.Hostname
		}
		return decision{reply: p.reply(req, dhcpv4.MessageTypeOffer, ip), change: change{put: &l}, event: "offer", detail: ip.String()}

	case dhcpv4.MessageTypeRequest:
		if sid.IsValid() && !sid.IsUnspecified() {
			// SELECTING: the client answers an offer.
			if sid != p.cfg.ServerIP {
				// It chose another server: free our offer.
				if old := t.byMAC[mac]; old != nil && old.State == stateOffered {
					return decision{change: change{drop: mac}}
				}
				return decision{}
			}
			want := requested
			if !want.IsValid() {
				want = ciaddr
			}
			old := t.byMAC[mac]
			if old == nil || old.IP != want || !p.usable(want, mac, now, t) {
				return p.nak(req, "selecting "+want.String())
			}
			return p.bind(now, req, mac, want, host, old)
		}
		// INIT-REBOOT (requested address) or RENEWING / REBINDING (ciaddr).
		want := requested
		if !want.IsValid() || want.IsUnspecified() {
			want = ciaddr
		}
		if !want.IsValid() || want.IsUnspecified() {
			return decision{}
		}
		if !p.usable(want, mac, now, t) {
			// Wrong network, taken by someone else, outside the pool, not
			// this client's static address: tell it to start again. We are
			// the only server of the segment (checked at start), so we are
			// authoritative.
			return p.nak(req, "request "+want.String())
		}
		// Usable: this client's lease, or a free pool address it kept
		// across a lost database; adopt it.
		return p.bind(now, req, mac, want, host, t.byMAC[mac])

	case dhcpv4.MessageTypeDecline:
		if sid.IsValid() && sid != p.cfg.ServerIP {
			return decision{}
		}
		old := t.byMAC[mac]
		if old == nil || !requested.IsValid() || old.IP != requested {
			return decision{} // only the holder may decline, so nobody can burn the pool
		}
		return decision{
			change: change{drop: mac, decline: requested, until: now.Add(p.cfg.LeaseTime), mac: mac},
			event:  "decline", detail: requested.String(),
		}

	case dhcpv4.MessageTypeRelease:
		if sid.IsValid() && sid != p.cfg.ServerIP {
			return decision{}
		}
		old := t.byMAC[mac]
		if old == nil || old.IP != ciaddr {
			return decision{}
		}
		l := *old
		l.State, l.Expires = stateReleased, now
		return decision{change: change{put: &l}, event: "release", detail: ciaddr.String()}

	case dhcpv4.MessageTypeInform:
		if !ciaddr.IsValid() || !p.cfg.Subnet.Contains(ciaddr) {
			return decision{}
		}
		r := p.reply(req, dhcpv4.MessageTypeAck, netip.Addr{})
		if r == nil {
			return decision{}
		}
		r.ClientIPAddr = ciaddr.AsSlice()
		// RFC 2131 §3.4: no lease time in an answer to DHCPINFORM.
		r.Options.Del(dhcpv4.OptionIPAddressLeaseTime)
		r.Options.Del(dhcpv4.OptionRenewTimeValue)
		r.Options.Del(dhcpv4.OptionRebindingTimeValue)
		return decision{reply: r, event: "inform", detail: ciaddr.String()}
	}
	return decision{}
}

func (p *policy) bind(now time.Time, req *dhcpv4.DHCPv4, mac string, ip netip.Addr, host string, old *lease) decision {
	l := lease{MAC: mac, IP: ip, Hostname: host, State: stateBound, Expires: now.Add(p.cfg.LeaseTime)}
	event := "bind"
	if old != nil {
		if host == "" {
			l.Hostname = old.Hostname
		}
		if old.IP == ip && old.State == stateBound && old.active(now) {
			event = "renew"
		}
	}
	r := p.reply(req, dhcpv4.MessageTypeAck, ip)
	if r == nil {
		return decision{}
	}
	if ci := addrOf(req.ClientIPAddr); ci.IsValid() {
		r.ClientIPAddr = ci.AsSlice()
	}
	return decision{reply: r, change: change{put: &l}, event: event, detail: ip.String()}
}

func (p *policy) nak(req *dhcpv4.DHCPv4, why string) decision {
	r, _ := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(p.cfg.ServerIP.AsSlice())),
	)
	return decision{reply: r, event: "nak", detail: why}
}

// reply builds an OFFER or ACK for yiaddr with the network's options.
// Options are sent whether or not the client listed them: clients ignore
// what they do not know, and some (option 114) are not in every client's
// default request list.
func (p *policy) reply(req *dhcpv4.DHCPv4, t dhcpv4.MessageType, yiaddr netip.Addr) *dhcpv4.DHCPv4 {
	c := p.cfg
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(t),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(c.ServerIP.AsSlice())),
		dhcpv4.WithNetmask(p.mask),
		dhcpv4.WithOption(dhcpv4.OptBroadcastAddress(p.broadcast.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptDNS(ips(c.DNS)...)),
		dhcpv4.WithOption(dhcpv4.OptDomainName(c.DomainName)),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(c.LeaseTime)),
		dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(c.LeaseTime / 2)),
		dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(c.LeaseTime * 7 / 8)),
	}
	if yiaddr.IsValid() {
		mods = append(mods, dhcpv4.WithYourIP(yiaddr.AsSlice()))
	}
	if c.Router.IsValid() {
		mods = append(mods, dhcpv4.WithRouter(c.Router.AsSlice()))
	}
	if c.CaptiveURI != "" {
		mods = append(mods, dhcpv4.WithGeneric(dhcpv4.OptionURL, []byte(c.CaptiveURI))) // code 114, RFC 8910
	}
	// NewReplyFromRequest fails only when the system has no randomness;
	// callers then stay silent.
	r, _ := dhcpv4.NewReplyFromRequest(req, mods...)
	return r
}

func ips(as []netip.Addr) []net.IP {
	out := make([]net.IP, len(as))
	for i, a := range as {
		out[i] = a.AsSlice()
	}
	return out
}

// addrOf converts a 4-byte (or 4-in-16) net.IP; anything else gives the
// zero Addr.
func addrOf(ip net.IP) netip.Addr {
	v4 := ip.To4()
	if v4 == nil {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(v4))
}

// cleanHostname keeps a client's host name displayable: letters, digits,
// '-', '_' and '.', at most 63 bytes.
func cleanHostname(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return -1
	}, s)
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}
