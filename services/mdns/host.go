package mdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"syscall"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// mDNS constants (RFC 6762).
const (
	mdnsPort      = 5353
	hostTTL       = 120 // §10: records with a host name in their rdata or name
	legacyTTL     = 10  // §6.7: answers to legacy unicast queries
	classCacheBit = 1 << 15
)

var mdnsGroup = net.IPv4(224, 0, 0, 251)

// hostRecords answers questions about one host name (A, AAAA, ANY). It is
// the pure part of the responder, fuzzed by FuzzHostReply.
type hostRecords struct {
	fqdn string // "preau.local."
	v4   []netip.Addr
	v6   []netip.Addr
}

func newHostRecords(host string, addrs []netip.Addr) hostRecords {
	h := hostRecords{fqdn: dns.CanonicalName(host + ".local.")}
	for _, a := range addrs {
		a = a.WithZone("")
		if a.Is4() || a.Is4In6() {
			h.v4 = append(h.v4, a.Unmap())
		} else {
			h.v6 = append(h.v6, a)
		}
	}
	return h
}

// reply builds the response to query received from srcPort, or nil when
// nothing is due. unicast tells to answer the sender directly (QU bit, or a
// legacy resolver that does not send from port 5353) rather than the group.
func (h hostRecords) reply(query *dns.Msg, srcPort int) (resp *dns.Msg, unicast bool) {
	// §18: ignore responses, and queries with an opcode or rcode set.
	if query.Response || query.Opcode != dns.OpcodeQuery || query.Rcode != 0 {
		return nil, false
	}
	legacy := srcPort != mdnsPort
	ttl := uint32(hostTTL)
	if legacy {
		ttl = legacyTTL
	}
	resp = new(dns.Msg)
	resp.Response = true
	resp.Authoritative = true
	allQU := true
	for _, q := range query.Question {
		if q.Qclass&^classCacheBit != dns.ClassINET && q.Qclass&^classCacheBit != dns.ClassANY {
			continue
		}
		if dns.CanonicalName(q.Name) != h.fqdn {
			continue
		}
		var rrs []dns.RR
		switch q.Qtype {
		case dns.TypeA:
			rrs = h.records(ttl, !legacy, true, false)
		case dns.TypeAAAA:
			rrs = h.records(ttl, !legacy, false, true)
		case dns.TypeANY:
			rrs = h.records(ttl, !legacy, true, true)
		default:
			continue
		}
		if len(rrs) == 0 {
			// §6.1: say that the name exists but has no record of this type.
			rrs = []dns.RR{h.nsec(ttl, !legacy)}
		}
		for _, rr := range rrs {
			if !knownAnswer(query, rr) && !contains(resp.Answer, rr) {
				resp.Answer = append(resp.Answer, rr)
			}
		}
		if q.Qclass&classCacheBit == 0 {
			allQU = false
		}
		if legacy {
			resp.Question = append(resp.Question, q)
		}
	}
	if len(resp.Answer) == 0 {
		return nil, false
	}
	if legacy {
		resp.Id = query.Id // §6.7: a legacy resolver matches the ID
	}
	return resp, legacy || allQU
}

func (h hostRecords) records(ttl uint32, flush, v4, v6 bool) []dns.RR {
	class := uint16(dns.ClassINET)
	if flush {
		class |= classCacheBit // §10.2: we are the only owner of these records
	}
	var rrs []dns.RR
	if v4 {
		for _, a := range h.v4 {
			rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: h.fqdn, Rrtype: dns.TypeA, Class: class, Ttl: ttl}, A: a.AsSlice()})
		}
	}
	if v6 {
		for _, a := range h.v6 {
			rrs = append(rrs, &dns.AAAA{Hdr: dns.RR_Header{Name: h.fqdn, Rrtype: dns.TypeAAAA, Class: class, Ttl: ttl}, AAAA: a.AsSlice()})
		}
	}
	return rrs
}

func (h hostRecords) nsec(ttl uint32, flush bool) dns.RR {
	class := uint16(dns.ClassINET)
	if flush {
		class |= classCacheBit
	}
	var types []uint16
	if len(h.v4) > 0 {
		types = append(types, dns.TypeA)
	}
	if len(h.v6) > 0 {
		types = append(types, dns.TypeAAAA)
	}
	return &dns.NSEC{Hdr: dns.RR_Header{Name: h.fqdn, Rrtype: dns.TypeNSEC, Class: class, Ttl: ttl}, NextDomain: h.fqdn, TypeBitMap: types}
}

// knownAnswer implements known-answer suppression (§7.1): the querier
// already holds rr with at least half its TTL left.
func knownAnswer(query *dns.Msg, rr dns.RR) bool {
	for _, k := range query.Answer {
		if k.Header().Ttl >= rr.Header().Ttl/2 && sameData(k, rr) {
			return true
		}
	}
	return false
}

func contains(rrs []dns.RR, rr dns.RR) bool {
	for _, k := range rrs {
		if sameData(k, rr) {
			return true
		}
	}
	return false
}

func sameData(a, b dns.RR) bool {
	ca, cb := dns.Copy(a), dns.Copy(b)
	ca.Header().Class &^= classCacheBit
	cb.Header().Class &^= classCacheBit
	return dns.IsDuplicate(ca, cb)
}

// hostResponder answers address questions for the host name on the
// configured interfaces only.
type hostResponder struct {
	rec    hostRecords
	conn   *ipv4.PacketConn
	ifaces map[int]bool
	log    *slog.Logger
}

// newHostResponder opens the mDNS socket: 0.0.0.0:5353 shared with
// zeroconf and any other responder (SO_REUSEADDR), IP_MULTICAST_ALL off so
// that it hears only the group joined on our interfaces, and replies only
// to packets that came in on one of them.
func newHostResponder(ctx context.Context, host string, addrs []netip.Addr, ifaces []net.Interface, log *slog.Logger) (*hostResponder, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				return
			}
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", mdnsPort))
	if err != nil {
		return nil, fmt.Errorf("mdns: listen on port %d: %w", mdnsPort, err)
	}
	conn := ipv4.NewPacketConn(pc)
	h := &hostResponder{rec: newHostRecords(host, addrs), conn: conn, ifaces: map[int]bool{}, log: log}
	fail := func(err error) (*hostResponder, error) {
		conn.Close()
		return nil, err
	}
	if err := conn.SetControlMessage(ipv4.FlagInterface, true); err != nil {
		return fail(fmt.Errorf("mdns: %w", err))
	}
	if err := conn.SetMulticastTTL(255); err != nil {
		return fail(fmt.Errorf("mdns: %w", err))
	}
	joined := 0
	for _, ifi := range ifaces {
		if err := conn.JoinGroup(&ifi, &net.UDPAddr{IP: mdnsGroup}); err != nil {
			log.Warn("mdns: join group", "interface", ifi.Name, "err", err)
			continue
		}
		h.ifaces[ifi.Index] = true
		joined++
	}
	if joined == 0 {
		return fail(fmt.Errorf("mdns: cannot join %v on any of the interfaces", mdnsGroup))
	}
	return h, nil
}

func (h *hostResponder) serve() error {
	buf := make([]byte, 9000)
	for {
		n, cm, src, err := h.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if cm == nil || !h.ifaces[cm.IfIndex] {
			continue
		}
		udp, ok := src.(*net.UDPAddr)
		if !ok {
			continue
		}
		var query dns.Msg
		if err := query.Unpack(buf[:n]); err != nil {
			continue
		}
		resp, unicast := h.rec.reply(&query, udp.Port)
		if resp == nil {
			continue
		}
		out, err := resp.Pack()
		if err != nil {
			h.log.Warn("mdns: pack answer", "err", err)
			continue
		}
		dst := &net.UDPAddr{IP: mdnsGroup, Port: mdnsPort}
		if unicast {
			dst = udp
		}
		if _, err := h.conn.WriteTo(out, &ipv4.ControlMessage{IfIndex: cm.IfIndex}, dst); err != nil {
			h.log.Debug("mdns: send answer", "to", dst, "err", err)
		}
	}
}

func (h *hostResponder) close() { h.conn.Close() }
