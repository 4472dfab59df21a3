package dhcp

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// probe broadcasts a DHCPDISCOVER from port 68 on the interface and listens
// for ProbeWait; any answer to it means another server serves the segment.
// The discover is sent twice (at the start and half way) in case one is
// lost, with the broadcast flag so that the other server broadcasts its
// offer to an address we do not have.
func (s *Server) probe(ctx context.Context, ifi *net.Interface) error {
	conn, err := server4.NewIPv4UDPConn(s.cfg.Interface, &net.UDPAddr{Port: dhcpv4.ClientPort})
	if err != nil {
		return fmt.Errorf("dhcp: probe for another server on %s: %w", s.cfg.Interface, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	mac := ifi.HardwareAddr
	if len(mac) != 6 {
		mac = make(net.HardwareAddr, 6)
		rand.Read(mac)
		mac[0] = mac[0]&^1 | 2 // unicast, locally administered
	}
	disc, err := dhcpv4.NewDiscovery(mac, dhcpv4.WithBroadcast(true))
	if err != nil {
		return fmt.Errorf("dhcp: probe for another server: %w", err)
	}
	wire := disc.ToBytes()
	dst := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}
	send := func() error {
		_, err := conn.WriteTo(wire, dst)
		return err
	}
	if err := send(); err != nil {
		return fmt.Errorf("dhcp: probe for another server on %s: send: %w", s.cfg.Interface, err)
	}
	start := time.Now()
	deadline := start.Add(s.cfg.ProbeWait)
	resent := false
	buf := make([]byte, 4096)
	for {
		wait := deadline
		if !resent {
			wait = start.Add(s.cfg.ProbeWait / 2)
		}
		conn.SetReadDeadline(wait)
		n, from, err := conn.ReadFrom(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				if !resent {
					resent = true
					send()
					continue
				}
				s.log.Debug("dhcp: no other server answered", "interface", s.cfg.Interface, "waited", s.cfg.ProbeWait)
				return nil
			}
			return fmt.Errorf("dhcp: probe for another server on %s: %w", s.cfg.Interface, err)
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || m.OpCode != dhcpv4.OpcodeBootReply || m.TransactionID != disc.TransactionID {
			continue
		}
		server := addrOf(m.ServerIdentifier())
		if !server.IsValid() {
			if u, ok := from.(*net.UDPAddr); ok {
				server = addrOf(u.IP)
			}
		}
		if server == s.cfg.ServerIP {
			continue // our own earlier instance cannot answer, but be safe
		}
		return newOtherServerError(s.cfg.Interface, server)
	}
}
