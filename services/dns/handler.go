package dns

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	miekg "github.com/miekg/dns"
)

// reply is the answer to one query before EDNS and truncation.
type reply struct {
	msg    *miekg.Msg
	result result
	ede    uint16 // Extended DNS Error code (RFC 8914), when hasEDE
	hasEDE bool
	noRA   bool // outside clients are not offered recursion
}

func (r *reply) withEDE(code uint16) *reply {
	r.ede, r.hasEDE = code, true
	return r
}

// serveDNS is the miekg/dns handler.
func (s *Server) serveDNS(w miekg.ResponseWriter, req *miekg.Msg) {
	client := remoteAddr(w.RemoteAddr())
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	lan := s.inLAN(client)
	if req.Response {
		return // never answer an answer: it could be a reflection loop
	}
	if udp && s.rrl != nil {
		switch v, p := s.rrl.check(client, lan); v {
		case drop:
			s.counters.add(resRateLimited)
			s.throttle.log(s.log, slog.LevelInfo, "rrl", "rate limiting a client", "prefix", p, "lan", lan)
			return
		case slip:
			s.counters.add(resTruncated)
			m := new(miekg.Msg)
			m.SetReply(req)
			m.Truncated = true
			s.write(w, req, &reply{msg: m, result: resTruncated, noRA: !lan}, udp)
			return
		}
	}
	rep := s.respond(req, client, lan)
	s.counters.add(rep.result)
	s.write(w, req, rep, udp)
}

// remoteAddr returns the client's address, IPv4-mapped addresses unmapped.
func remoteAddr(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// write adds EDNS0 to the answer when the query had it, fits it to the
// client's buffer on UDP and sends it.
func (s *Server) write(w miekg.ResponseWriter, req *miekg.Msg, rep *reply, udp bool) {
	m := rep.msg
	m.RecursionAvailable = !rep.noRA
	limit := miekg.MinMsgSize
	if !udp {
		limit = miekg.MaxMsgSize
	}
	if opt := req.IsEdns0(); opt != nil {
		o := &miekg.OPT{Hdr: miekg.RR_Header{Name: ".", Rrtype: miekg.TypeOPT}}
		o.SetUDPSize(ourUDPSize)
		if opt.Do() {
			o.SetDo()
		}
		if rep.hasEDE {
			o.Option = append(o.Option, &miekg.EDNS0_EDE{InfoCode: rep.ede})
		}
		m.Extra = append(m.Extra, o)
		if udp {
			limit = int(min(max(opt.UDPSize(), miekg.MinMsgSize), ourUDPSize))
		}
	} else if m.Rcode > 0xF {
		m.Rcode = miekg.RcodeServerFailure // extended codes need EDNS
	}
	m.Truncate(limit)
	if err := w.WriteMsg(m); err != nil {
		s.throttle.log(s.log, slog.LevelWarn, "write", "cannot send an answer", "client", w.RemoteAddr().String(), "err", err)
	}
}

// respond decides the answer to req from client.
func (s *Server) respond(req *miekg.Msg, client netip.Addr, lan bool) *reply {
	m := new(miekg.Msg)
	m.SetReply(req)
	rep := &reply{msg: m, noRA: !lan}
	invalid := func(rcode int) *reply {
		m.Rcode = rcode
		rep.result = resInvalid
		return rep
	}
	refused := func() *reply {
		m.Rcode = miekg.RcodeRefused
		rep.result = resRefused
		return rep.withEDE(miekg.ExtendedErrorCodeProhibited)
	}
	if req.Opcode != miekg.OpcodeQuery {
		m.Question = nil
		return invalid(miekg.RcodeNotImplemented)
	}
	if len(req.Question) != 1 {
		m.Question = nil
		return invalid(miekg.RcodeFormatError)
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		return invalid(miekg.RcodeBadVers) // RFC 6891 §6.1.3
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if q.Qclass != miekg.ClassINET {
		return refused()
	}
	switch q.Qtype {
	case miekg.TypeAXFR, miekg.TypeIXFR, miekg.TypeMAILA, miekg.TypeMAILB, miekg.TypeTSIG, miekg.TypeTKEY, miekg.TypeOPT, miekg.TypeNone:
		return refused()
	}

	// The local zone and short names: authoritative, for every client.
	if s.names.authoritative(m, q, name) {
		rep.result = resLocal
		return rep
	}
	if !lan {
		// Never recursion for the rest of the world.
		s.throttle.log(s.log, slog.LevelInfo, "refused", "refused recursion to a client outside the LAN", "client", client)
		return refused()
	}
	if s.names.reverse(m, q, name) {
		rep.result = resLocal
		return rep
	}
	if addrs, ok := s.names.dnsOnly[name]; ok {
		m.Answer = addrRRs(q.Name, q.Qtype, addrs, localTTL)
		rep.result = resLocal
		return rep
	}
	probe := s.names.probes[name]
	if probe && (!s.online() || !s.accepted(client)) {
		// The captive portal's answer: the box for A and AAAA, nothing
		// for other types (an HTTPS record's address hints would lead
		// around the portal). No SOA: the client must not cache it.
		m.Answer = addrRRs(q.Name, q.Qtype, s.names.box, hijackTTL)
		rep.result = resHijacked
		return rep
	}
	if q.Qtype == miekg.TypeANY {
		// RFC 8482 §4.2: a synthesized HINFO rather than everything.
		m.Answer = []miekg.RR{&miekg.HINFO{Hdr: hdr(q.Name, miekg.TypeHINFO, 3600), Cpu: "RFC8482"}}
		rep.result = resLocal
		return rep
	}
	do := false
	if opt := req.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	s.forward(rep, q, name, do, req.AuthenticatedData)
	if probe && rep.result == resFailed {
		// The uplink monitor has not seen the cut yet: answer like the
		// box does offline rather than make the device leave the Wi-Fi.
		m.Rcode = miekg.RcodeSuccess
		m.Answer = addrRRs(q.Name, q.Qtype, s.names.box, hijackTTL)
		rep.result, rep.hasEDE = resHijacked, false
		return rep
	}
	if probe {
		for _, sec := range [][]miekg.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range sec {
				rr.Header().Ttl = min(rr.Header().Ttl, hijackTTL)
			}
		}
	}
	return rep
}

// forward answers rep from the cache or the upstreams. Stale data is used
// when the upstreams fail, when they are known to have failed for this
// name in the last 30 s or when the uplink is down, and when they take
// longer than ClientTimeout; the refresh then goes on in the background.
func (s *Server) forward(rep *reply, q miekg.Question, name string, do, ad bool) {
	key := cacheKey{name: name, qtype: q.Qtype, qclass: q.Qclass, do: do}
	now := s.now()
	entry, state := s.cache.get(key, now)
	switch state {
	case cacheFresh:
		if s.fill(rep, entry, now, false, do || ad) {
			rep.result = resCached
			return
		}
	case cacheFailed:
		s.servfail(rep)
		return
	case cacheStale:
		recent := !entry.failedAt.IsZero() && now.Sub(entry.failedAt) < failureRecheck && !now.Before(entry.failedAt)
		if recent || !s.online() {
			if !recent {
				s.start(key) // refresh in the background
			}
			if s.fill(rep, entry, now, true, do || ad) {
				return
			}
		}
	}
	f := s.start(key)
	if f == nil { // too many resolutions running
		if state == cacheStale && s.fill(rep, entry, now, true, do || ad) {
			return
		}
		s.servfail(rep)
		return
	}
	var timeout <-chan time.Time
	if state == cacheStale {
		t := time.NewTimer(s.cfg.ClientTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-f.done:
	case <-timeout:
		if s.fill(rep, entry, s.now(), true, do || ad) {
			return
		}
		<-f.done
	}
	if f.err == nil {
		copyAnswer(rep.msg, f.msg.Copy(), do || ad) // f.msg is shared by every waiter
		rep.result = resForwarded
		return
	}
	if state == cacheStale && s.fill(rep, entry, s.now(), true, do || ad) {
		return
	}
	s.servfail(rep)
}

func (s *Server) servfail(rep *reply) {
	rep.msg.Rcode = miekg.RcodeServerFailure
	rep.result = resFailed
	code := uint16(miekg.ExtendedErrorCodeNoReachableAuthority)
	if len(s.upstreams) == 0 {
		code = miekg.ExtendedErrorCodeNotReady
	}
	rep.withEDE(code)
}

// fill answers rep from a cache entry; stale answers carry StaleTTL and
// the EDE "Stale Answer" (or "Stale NXDOMAIN Answer").
func (s *Server) fill(rep *reply, e cacheEntry, now time.Time, stale, ad bool) bool {
	m, err := agedCopy(e, now, stale, uint32(s.cfg.StaleTTL/time.Second))
	if err != nil {
		return false
	}
	copyAnswer(rep.msg, m, ad)
	if stale {
		rep.result = resStale
		if m.Rcode == miekg.RcodeNameError {
			rep.withEDE(miekg.ExtendedErrorCodeStaleNXDOMAINAnswer)
		} else {
			rep.withEDE(miekg.ExtendedErrorCodeStaleAnswer)
		}
	}
	return true
}

// copyAnswer puts an upstream answer into the reply to the client. AD is
// kept only for a client that asked for it (RFC 6840 §5.8).
func copyAnswer(dst, src *miekg.Msg, ad bool) {
	dst.Rcode = src.Rcode
	dst.Answer = src.Answer
	dst.Ns = src.Ns
	dst.Extra = withoutOPT(src.Extra)
	dst.AuthenticatedData = ad && src.AuthenticatedData
	dst.Authoritative = false
}
