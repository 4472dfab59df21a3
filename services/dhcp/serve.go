package dhcp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// Serve checks the segment for another DHCP server, then serves until ctx
// ends. It returns an *OtherServerError when another server answers. It
// opens its sockets and looks up the interface before starting other
// goroutines, so it uses the network namespace of the calling thread.
func (s *Server) Serve(ctx context.Context) error {
	ifi, err := s.checkInterface()
	if err != nil {
		return err
	}
	if err := s.probe(ctx, ifi); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	tbl, err := loadTable(ctx, s.db)
	if err != nil {
		return err
	}
	if err := purge(ctx, s.db, tbl, s.cfg.Now()); err != nil {
		return err
	}
	s.mu.Lock()
	s.tbl = tbl
	s.mu.Unlock()

	conn, err := server4.NewIPv4UDPConn(s.cfg.Interface, &net.UDPAddr{Port: dhcpv4.ServerPort})
	if err != nil {
		return fmt.Errorf("dhcp: listen on %s port %d: %w", s.cfg.Interface, dhcpv4.ServerPort, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	go s.purgeDaily(ctx)
	s.log.Info("dhcp serving", "interface", s.cfg.Interface, "server", s.cfg.ServerIP,
		"pool", s.cfg.PoolStart.String()+"-"+s.cfg.PoolEnd.String(), "leases", len(tbl.byMAC))

	buf := make([]byte, 4096)
	for {
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dhcp: read on %s: %w", s.cfg.Interface, err)
		}
		req, err := dhcpv4.FromBytes(bytes.Clone(buf[:n]))
		if err != nil {
			s.log.Debug("dhcp: malformed packet", "from", peer, "err", err)
			continue
		}
		reply, dst := s.handle(ctx, req)
		if reply == nil {
			continue
		}
		if _, err := conn.WriteTo(reply.ToBytes(), dst); err != nil {
			s.log.Warn("dhcp: send reply", "to", dst, "type", reply.MessageType().String(), "err", err)
		}
	}
}

// handle decides, persists and applies; it returns the reply and where to
// send it, or nil.
func (s *Server) handle(ctx context.Context, req *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	d := s.pol.decide(now, s.tbl, req)
	if !d.change.empty() {
		if err := persist(ctx, s.db, d.change); err != nil {
			// Without a durable lease we must not promise the address.
			s.warnThrottled("persist", "dhcp: lease not saved, request dropped", "err", err)
			return nil, nil
		}
		s.tbl.apply(d.change)
	}
	mac := req.ClientHWAddr.String()
	switch d.event {
	case "bind":
		s.log.Info("dhcp lease", "mac", mac, "ip", d.detail, "hostname", cleanHostname(req.HostName()))
	case "exhausted":
		s.warnThrottled("exhausted", "dhcp: no free address in the pool", "mac", mac,
			"pool", s.cfg.PoolStart.String()+"-"+s.cfg.PoolEnd.String())
	case "decline":
		s.warnThrottled("decline "+d.detail, "dhcp: address declined, another device uses it; not handed out for one lease time",
			"ip", d.detail, "mac", mac)
	case "nak":
		s.log.Debug("dhcp nak", "mac", mac, "why", d.detail)
	case "":
	default:
		s.log.Debug("dhcp "+d.event, "mac", mac, "ip", d.detail)
	}
	if d.reply == nil {
		return nil, nil
	}
	return d.reply, destination(req, d.reply)
}

// destination follows RFC 2131 §4.1 for a server on the client's segment:
// a NAK is broadcast; a client that has an address (ciaddr) gets unicast;
// anyone else gets a broadcast, which needs no ARP entry for an address
// the client does not have yet.
func destination(req, reply *dhcpv4.DHCPv4) *net.UDPAddr {
	bcast := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	if reply.MessageType() == dhcpv4.MessageTypeNak {
		return bcast
	}
	if ci := addrOf(req.ClientIPAddr); ci.IsValid() && !ci.IsUnspecified() {
		return &net.UDPAddr{IP: ci.AsSlice(), Port: dhcpv4.ClientPort}
	}
	return bcast
}

// checkInterface makes sure the interface exists and carries ServerIP: a
// server identifier the clients cannot reach would break renewals.
func (s *Server) checkInterface() (*net.Interface, error) {
	ifi, err := net.InterfaceByName(s.cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("dhcp: interface %s: %w", s.cfg.Interface, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("dhcp: addresses of %s: %w", s.cfg.Interface, err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == s.cfg.ServerIP {
			return ifi, nil
		}
	}
	return nil, fmt.Errorf("dhcp: interface %s does not have the server address %v", s.cfg.Interface, s.cfg.ServerIP)
}

func (s *Server) purgeDaily(ctx context.Context) {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			err := purge(ctx, s.db, s.tbl, s.cfg.Now())
			s.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				s.log.Warn("dhcp: purge old leases", "err", err)
			}
		}
	}
}
