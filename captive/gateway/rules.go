package gateway

import (
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ifNameSize is the kernel's IFNAMSIZ: meta iifname loads that many bytes.
const ifNameSize = 16

// Names of the sets inside the table. They are part of the table's
// contract with a technician reading `nft list table inet preau`.
const (
	setAccepted4   = "accepted4"
	setAccepted6   = "accepted6"
	setAcceptedMAC = "accepted_mac"
)

// UDP ports of the LAN services an unaccepted device may still use on the
// box, besides DNS and the portal: DHCP, DHCPv6 and mDNS.
var lanUDPServices = []uint16{67, 547, 5353}

// ruleset is the whole table, built without I/O so that tests and fuzzing
// can look at it.
type ruleset struct {
	table  *nftables.Table
	sets   []*nftables.Set // accepted4, accepted6, accepted_mac
	chains []*nftables.Chain
	rules  []*nftables.Rule
}

func (r *ruleset) set(name string) *nftables.Set {
	for _, s := range r.sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// buildRuleset translates cfg into the table below (nft syntax; LAN, UP,
// PORTAL, HTTPS and DNS stand for the configured values):
//
//	table inet preau {
//	  set accepted4    { type ipv4_addr;  flags timeout; }
//	  set accepted6    { type ipv6_addr;  flags timeout; }
//	  set accepted_mac { type ether_addr; flags timeout; }
//	  chain prerouting { type nat hook prerouting priority dstnat; policy accept;
//	    iifname != LAN accept
//	    udp dport 53 redirect to :DNS                # every device, any resolver
//	    tcp dport 53 redirect to :DNS
//	    ip saddr @accepted4 accept                   # the rest only if not Open
//	    ip6 saddr @accepted6 accept
//	    meta iiftype ether ether saddr @accepted_mac accept
//	    tcp dport 80 redirect to :PORTAL }
//	  chain input { type filter hook input priority filter; policy accept;
//	    iifname != LAN accept
//	    ct state established,related accept
//	    (accepted sets) accept
//	    icmp, icmpv6, udp 67 (DHCP), 547 (DHCPv6), 5353 (mDNS),
//	    udp/tcp DNS, tcp PORTAL, tcp HTTPS accept
//	    tcp: reject with tcp reset; others: reject with icmpx admin-prohibited }
//	  chain forward { type filter hook forward priority filter; policy accept;
//	    iifname != LAN accept
//	    (accepted sets) accept
//	    tcp: reject with tcp reset; others: reject with icmpx admin-prohibited }
//	  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
//	    oifname UP meta nfproto ipv4 masquerade }    # only with UplinkInterface
//	}
//
// Every base chain's policy is accept and packets not from the LAN are
// accepted at once: the table only ever narrows what LAN devices can do
// and never overrides a drop in another table. The forward chain has no
// "ct state established accept": replies come in by the uplink (not the
// LAN) and are untouched, and a revoked device must lose its open
// connections too. Rejecting rather than dropping makes an unaccepted
// device's HTTPS or app traffic fail at once instead of hanging.
func buildRuleset(cfg Config) *ruleset {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: cfg.TableName}
	const comment = "managed by preau (captive gateway); changes are overwritten"
	r := &ruleset{table: t}
	// Explicit IDs: sets created and used in the same batch are found by
	// ID; they only need to be unique within the batch.
	r.sets = []*nftables.Set{
		{Table: t, ID: 1, Name: setAccepted4, KeyType: nftables.TypeIPAddr, HasTimeout: true, Comment: comment},
		{Table: t, ID: 2, Name: setAccepted6, KeyType: nftables.TypeIP6Addr, HasTimeout: true, Comment: comment},
		{Table: t, ID: 3, Name: setAcceptedMAC, KeyType: nftables.TypeEtherAddr, HasTimeout: true, Comment: comment},
	}
	accept := verdict(expr.VerdictAccept)
	notLAN := cat(iifname(expr.CmpOpNeq, cfg.LANInterface), accept)
	acceptedRules := func() [][]expr.Any {
		return [][]expr.Any{
			cat(nfproto(unix.NFPROTO_IPV4), ip4Saddr(), lookup(r.set(setAccepted4)), accept),
			cat(nfproto(unix.NFPROTO_IPV6), ip6Saddr(), lookup(r.set(setAccepted6)), accept),
			cat(iifEther(), etherSaddr(), lookup(r.set(setAcceptedMAC)), accept),
		}
	}
	rejectRest := [][]expr.Any{
		cat(l4proto(unix.IPPROTO_TCP), []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}),
		{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}},
	}

	pre := r.chain("prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	r.add(pre, notLAN)
	r.add(pre, cat(l4proto(unix.IPPROTO_UDP), dport(53), redirect(cfg.DNSPort)))
	r.add(pre, cat(l4proto(unix.IPPROTO_TCP), dport(53), redirect(cfg.DNSPort)))
	if !cfg.Open {
		r.add(pre, acceptedRules()...)
		r.add(pre, cat(l4proto(unix.IPPROTO_TCP), dport(80), redirect(cfg.PortalPort)))

		in := r.chain("input", nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter)
		r.add(in, notLAN)
		r.add(in, cat(ctEstablishedOrRelated(), accept))
		r.add(in, acceptedRules()...)
		r.add(in, cat(l4proto(unix.IPPROTO_ICMP), accept))
		r.add(in, cat(l4proto(unix.IPPROTO_ICMPV6), accept))
		for _, p := range lanUDPServices {
			r.add(in, cat(l4proto(unix.IPPROTO_UDP), dport(p), accept))
		}
		r.add(in, cat(l4proto(unix.IPPROTO_UDP), dport(cfg.DNSPort), accept))
		r.add(in, cat(l4proto(unix.IPPROTO_TCP), dport(cfg.DNSPort), accept))
		r.add(in, cat(l4proto(unix.IPPROTO_TCP), dport(cfg.PortalPort), accept))
		r.add(in, cat(l4proto(unix.IPPROTO_TCP), dport(cfg.HTTPSPort), accept))
		r.add(in, rejectRest...)

		fwd := r.chain("forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
		r.add(fwd, notLAN)
		r.add(fwd, acceptedRules()...)
		r.add(fwd, rejectRest...)
	}
	if cfg.UplinkInterface != "" {
		post := r.chain("postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
		r.add(post, cat(oifname(cfg.UplinkInterface), nfproto(unix.NFPROTO_IPV4), []expr.Any{&expr.Masq{}}))
	}
	return r
}

func (r *ruleset) chain(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
	policy := nftables.ChainPolicyAccept
	c := &nftables.Chain{Name: name, Table: r.table, Type: typ, Hooknum: hook, Priority: prio, Policy: &policy}
	r.chains = append(r.chains, c)
	return c
}

func (r *ruleset) add(c *nftables.Chain, rules ...[]expr.Any) {
	for _, e := range rules {
		r.rules = append(r.rules, &nftables.Rule{Table: r.table, Chain: c, Exprs: e})
	}
}

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

// ifnameBytes is name NUL-padded to IFNAMSIZ, as meta iifname loads it.
func ifnameBytes(name string) []byte {
	b := make([]byte, ifNameSize)
	copy(b, name)
	return b
}

func iifname(op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifnameBytes(name)},
	}
}

func oifname(name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameBytes(name)},
	}
}

func nfproto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

func l4proto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// dport matches the destination port of TCP or UDP (same offset in both
// headers); it must follow an l4proto match.
func dport(p uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)},
	}
}

func ip4Saddr() []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}}
}

func ip6Saddr() []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16}}
}

// iifEther guards link-layer loads: only Ethernet-like interfaces (Wi-Fi
// included) have a source MAC at offset 6.
func iifEther() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFTYPE, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint16(unix.ARPHRD_ETHER)},
	}
}

func etherSaddr() []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6}}
}

func lookup(s *nftables.Set) []expr.Any {
	return []expr.Any{&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID}}
}

func redirect(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.Redir{RegisterProtoMin: 1, Flags: unix.NF_NAT_RANGE_PROTO_SPECIFIED},
	}
}

func ctEstablishedOrRelated() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}
