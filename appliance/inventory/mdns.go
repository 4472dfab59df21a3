package inventory

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/grandcat/zeroconf"
)

// serviceEnumeration is the DNS-SD meta-query that lists the service types
// announced on the link (RFC 6763 §9).
const serviceEnumeration = "_services._dns-sd._udp"

// browse runs DNS-SD browsing sessions one after the other until ctx ends.
// zeroconf reports each instance once per resolver, so a new session (new
// resolvers) every BrowseInterval sees every service again and refreshes
// its TXT hints. A session that cannot open its sockets is retried at the
// next interval: DNS-SD is a bonus, the neighbour table the backbone.
func (inv *Inventory) browse(ctx context.Context, ns *netnsRunner) error {
	for ctx.Err() == nil {
		if err := inv.browseSession(ctx, ns); err != nil {
			inv.log.Warn("inventory: DNS-SD browsing", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(min(inv.cfg.BrowseInterval, 30*time.Second)):
			}
		}
	}
	return nil
}

type browsed struct {
	service string
	entry   *zeroconf.ServiceEntry
}

// browseSession browses the configured service types and the enumeration
// for BrowseInterval. Each type has its own resolver: a zeroconf resolver
// serves one Browse (it closes its sockets when that Browse ends), and
// each socket receives every mDNS packet of the link, a cost bounded by
// the number of types (Services plus at most MaxExtraTypes).
func (inv *Inventory) browseSession(ctx context.Context, ns *netnsRunner) error {
	sctx, cancel := context.WithTimeout(ctx, inv.cfg.BrowseInterval)
	defer cancel()
	entries := make(chan browsed, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait: the forwarders end with the resolvers

	browsing := make(map[string]bool)
	start := func(service string) error {
		if browsing[service] {
			return nil
		}
		browsing[service] = true
		var res *zeroconf.Resolver
		err := ns.run(func() error {
			ifaces, err := multicastInterfaces(inv.cfg.Interfaces)
			if err != nil {
				return err
			}
			res, err = zeroconf.NewResolver(zeroconf.SelectIfaces(ifaces), zeroconf.SelectIPTraffic(zeroconf.IPv4))
			return err
		})
		if err != nil {
			return fmt.Errorf("browse %s: %w", service, err)
		}
		ch := make(chan *zeroconf.ServiceEntry, 16)
		if err := res.Browse(sctx, service, "local.", ch); err != nil {
			return fmt.Errorf("browse %s: %w", service, err)
		}
		wg.Go(func() {
			// Drain until zeroconf closes ch when sctx ends: it never gives
			// up a send by itself.
			for e := range ch {
				select {
				case entries <- browsed{service, e}:
				case <-sctx.Done():
				}
			}
		})
		return nil
	}

	extra := 0
	if inv.cfg.MaxExtraTypes >= 0 {
		if err := start(serviceEnumeration); err != nil {
			return err
		}
	}
	for _, s := range inv.cfg.Services {
		if err := start(s); err != nil {
			return err
		}
	}
	for {
		select {
		case <-sctx.Done():
			return nil
		case b := <-entries:
			if b.service != serviceEnumeration {
				inv.observeService(ctx, b.service, b.entry)
				continue
			}
			t := strings.TrimSuffix(strings.TrimSuffix(b.entry.Instance, "."), ".local")
			if !serviceType.MatchString(t) || browsing[t] || extra >= inv.cfg.MaxExtraTypes {
				continue
			}
			extra++
			if err := start(t); err != nil {
				inv.log.Warn("inventory: DNS-SD browsing", "err", err)
			}
		}
	}
}

// multicastInterfaces looks up the LAN interfaces; it runs in the
// namespace of Serve.
func multicastInterfaces(names []string) ([]net.Interface, error) {
	var out []net.Interface
	for _, name := range names {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", name, err)
		}
		if ifi.Flags&net.FlagMulticast != 0 {
			out = append(out, *ifi)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no multicast interface among %s", strings.Join(names, ", "))
	}
	return out, nil
}

// observeService records one resolved DNS-SD instance: one observation per
// address, whose MAC the neighbour table gives.
func (inv *Inventory) observeService(ctx context.Context, service string, e *zeroconf.ServiceEntry) {
	hints := make(map[string]string)
	for _, kv := range e.Text {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" {
			hints[k] = v
		}
	}
	o := Observation{
		Source:   SourceMDNS,
		Services: []string{service},
		Hints:    hints,
		Name:     unescapeDNS(e.Instance),
	}
	host := strings.TrimSuffix(unescapeDNS(e.HostName), ".")
	var addrs []netip.Addr
	for _, ip := range append(append([]net.IP(nil), e.AddrIPv4...), e.AddrIPv6...) {
		if a, ok := netip.AddrFromSlice(ip); ok {
			addrs = append(addrs, a.Unmap())
		}
	}
	for _, a := range addrs {
		o.IP = a
		ob, err := inv.prepare(o)
		if err != nil {
			continue
		}
		ob.mdnsHost = cleanText(host, maxHostname)
		if err := inv.observe(ctx, ob); err != nil && ctx.Err() == nil {
			inv.log.Warn("inventory: record a DNS-SD service", "service", service, "ip", a, "err", err)
		}
	}
}

// unescapeDNS reads a name in the presentation format miekg/dns gives it
// (\DDD decimal escapes and \X for a special character X): the instance
// "Brother\ HL-L2350DW" is "Brother HL-L2350DW". A trailing lone
// backslash is dropped.
func unescapeDNS(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c != '\\':
			b.WriteByte(c)
		case i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]):
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n <= 255 {
				b.WriteByte(byte(n))
			}
			i += 3
		case i+1 < len(s):
			b.WriteByte(s[i+1])
			i++
		}
	}
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
