// Package gateway owns the captive-portal firewall of a box that is the
// LAN's router (gateway mode, optional, off by default): one nftables table
// (family inet, default name "preau") that sends unaccepted devices' HTTP
// to the portal, every device's DNS to the box's resolver, lets DHCP, DNS,
// HTTP(S), mDNS and ICMP reach the box, forwards accepted devices (with
// IPv4 masquerade on the uplink when one is configured) and refuses the
// rest. Acceptance is kept in kernel sets with per-element timeouts, so it
// expires in the kernel even if preau is not running. The table is
// installed in one atomic netlink batch and deleted on stop; no other
// table or rule of the machine is ever touched.
//
// Imported by appliance only. Package captive does not import it either:
// appliance forwards captive's acceptance changes to Allow and Revoke.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
)

// Gateway installs and maintains the table. Its methods are safe for
// concurrent use.
type Gateway struct {
	cfg Config
	log *slog.Logger
	// netns is the path of a network namespace file (e.g. /run/netns/x)
	// the table lives in; "" is the process's own. Only tests set it.
	netns string

	mu      sync.Mutex
	applied bool // the table is (meant to be) in the kernel
	// The acceptances Allow was told about, with their end. They are the
	// desired content of the sets: Apply installs the ones not yet
	// expired, so Allow may come before Apply and a re-Apply (restart by
	// the supervisor, table removed by someone else) loses nothing.
	ips  map[netip.Addr]time.Time
	macs map[[6]byte]time.Time
}

// New checks cfg (after WithDefaults) and returns a Gateway. It does no
// I/O: nothing changes in the kernel before Apply or Serve.
func New(cfg Config, log *slog.Logger) (*Gateway, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Gateway{cfg: cfg, log: log, ips: map[netip.Addr]time.Time{}, macs: map[[6]byte]time.Time{}}, nil
}

// Serve installs the table, keeps it installed until ctx ends (it puts it
// back at once if another program deletes it, e.g. an nftables service
// reload with "flush ruleset"), then deletes it.
func (g *Gateway) Serve(ctx context.Context) error {
	// Watch before applying, so that no deletion goes unseen.
	w, err := g.watch()
	if err != nil {
		return err
	}
	defer func() { w.stop() }()
	if err := g.Apply(); err != nil {
		return err
	}
	retry := time.Second
	for {
		select {
		case <-ctx.Done():
			return g.Close()
		case evs, ok := <-w.events:
			if ok && !isOOB(evs) {
				if !deletesTable(evs, g.cfg.TableName) {
					continue
				}
			} else {
				// The monitor failed (e.g. its socket overflowed): watch
				// again after a pause, then check the table ourselves.
				w.stop()
				g.log.Warn("nftables monitor failed; watching again", "retry", retry)
				t := time.NewTimer(retry)
				select {
				case <-ctx.Done():
					t.Stop()
					return g.Close()
				case <-t.C:
				}
				retry = min(2*retry, time.Minute)
				w2, err := g.watch()
				if err != nil {
					return errors.Join(err, g.Close())
				}
				w = w2
			}
			if err := g.ensure(); err != nil {
				return errors.Join(err, g.Close())
			}
		}
	}
}

// Apply installs the table in one atomic batch, replacing any table of the
// same name (a stale one left by a crash, or ours), with the acceptances
// Allow recorded that have not expired. Calling it again is harmless.
func (g *Gateway) Apply() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.applyLocked()
}

func (g *Gateway) applyLocked() error {
	now := g.cfg.Now()
	g.prune(now)
	r := buildRuleset(g.cfg)
	c, done, err := g.conn()
	if err != nil {
		return g.opErr("apply", err)
	}
	defer done()
	// Add (a no-op if present), delete, add: the kernel applies the batch
	// as one transaction, so the old table is replaced without a moment
	// where none is installed, and deleting a missing table is no error.
	c.AddTable(r.table)
	c.DelTable(r.table)
	c.AddTable(r.table)
	for _, s := range r.sets {
		if err := c.AddSet(s, g.elements(s.Name, now)); err != nil {
			return g.opErr("apply", err)
		}
	}
	for _, ch := range r.chains {
		c.AddChain(ch)
	}
	for _, rule := range r.rules {
		c.AddRule(rule)
	}
	if err := c.Flush(); err != nil {
		return g.opErr("apply", err)
	}
	if !g.applied {
		g.log.Info("gateway rules installed", "table", "inet "+g.cfg.TableName, "lan", g.cfg.LANInterface,
			"uplink", g.cfg.UplinkInterface, "open", g.cfg.Open, "accepted", len(g.ips)+len(g.macs))
	}
	g.applied = true
	return nil
}

// Close deletes the table, if Apply installed it. Acceptances are kept in
// memory for a later Apply.
func (g *Gateway) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.applied {
		return nil
	}
	g.applied = false
	c, done, err := g.conn()
	if err != nil {
		return g.opErr("close", err)
	}
	defer done()
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: g.cfg.TableName}
	c.AddTable(t) // so that the delete succeeds even if someone removed it
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return g.opErr("close", err)
	}
	g.log.Info("gateway rules removed", "table", "inet "+g.cfg.TableName)
	return nil
}

// Allow lets the device with address ip through until the given time
// (Config.AcceptedTimeout from now when until is zero); the kernel drops
// the acceptance by itself then. Allowing again moves the end. An end in
// the past revokes.
func (g *Gateway) Allow(ip netip.Addr, until time.Time) error {
	ip, err := checkAddr(ip)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Now()
	if until.IsZero() {
		until = now.Add(g.cfg.AcceptedTimeout)
	}
	if until.Sub(now) < time.Millisecond {
		delete(g.ips, ip)
		return g.delElement("revoke", setOf(ip), ip.AsSlice())
	}
	g.ips[ip] = until
	return g.setElement(setOf(ip), ip.AsSlice(), until.Sub(now))
}

// Revoke withdraws the acceptance of ip at once, open connections
// included. Revoking an address that is not accepted is no error.
func (g *Gateway) Revoke(ip netip.Addr) error {
	ip, err := checkAddr(ip)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.ips, ip)
	return g.delElement("revoke", setOf(ip), ip.AsSlice())
}

// AllowMAC is Allow for a device's Ethernet (or Wi-Fi) address: it
// survives a change of IP address. Use it only when the LAN is one layer-2
// segment (access points in bridge mode): behind a router every device
// shows the router's MAC address.
func (g *Gateway) AllowMAC(mac net.HardwareAddr, until time.Time) error {
	key, err := checkMAC(mac)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Now()
	if until.IsZero() {
		until = now.Add(g.cfg.AcceptedTimeout)
	}
	if until.Sub(now) < time.Millisecond {
		delete(g.macs, key)
		return g.delElement("revoke", setAcceptedMAC, key[:])
	}
	g.macs[key] = until
	return g.setElement(setAcceptedMAC, key[:], until.Sub(now))
}

// RevokeMAC is Revoke for a MAC address.
func (g *Gateway) RevokeMAC(mac net.HardwareAddr) error {
	key, err := checkMAC(mac)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.macs, key)
	return g.delElement("revoke", setAcceptedMAC, key[:])
}

// setElement puts key in the set with a fresh timeout. Adding an element
// that exists keeps its old timeout (kernels before 6.10 cannot update
// it), so the batch adds (a no-op if present), deletes, then adds with
// the timeout: one transaction, the device never loses access.
func (g *Gateway) setElement(set string, key []byte, timeout time.Duration) error {
	if !g.applied {
		return nil
	}
	c, done, err := g.conn()
	if err != nil {
		return g.opErr("allow", err)
	}
	defer done()
	s := g.setRef(set)
	_ = c.SetAddElements(s, []nftables.SetElement{{Key: key}})
	_ = c.SetDeleteElements(s, []nftables.SetElement{{Key: key}})
	if err := c.SetAddElements(s, []nftables.SetElement{{Key: key, Timeout: timeout}}); err != nil {
		return g.opErr("allow", err)
	}
	if err := c.Flush(); err != nil {
		return g.opErr("allow", err)
	}
	return nil
}

// delElement removes key from the set; add-then-delete makes it
// idempotent (deleting a missing element fails the batch).
func (g *Gateway) delElement(op, set string, key []byte) error {
	if !g.applied {
		return nil
	}
	c, done, err := g.conn()
	if err != nil {
		return g.opErr(op, err)
	}
	defer done()
	s := g.setRef(set)
	_ = c.SetAddElements(s, []nftables.SetElement{{Key: key}})
	if err := c.SetDeleteElements(s, []nftables.SetElement{{Key: key}}); err != nil {
		return g.opErr(op, err)
	}
	if err := c.Flush(); err != nil {
		return g.opErr(op, err)
	}
	return nil
}

// setRef names an existing set of the table (the kernel finds it by name).
func (g *Gateway) setRef(name string) *nftables.Set {
	for _, s := range buildRuleset(g.cfg).sets {
		if s.Name == name {
			s.ID = 0
			return s
		}
	}
	panic("gateway: unknown set " + name)
}

// elements returns the remembered acceptances of one set, with their
// remaining time.
func (g *Gateway) elements(set string, now time.Time) []nftables.SetElement {
	var els []nftables.SetElement
	switch set {
	case setAccepted4, setAccepted6:
		for ip, until := range g.ips {
			if setOf(ip) == set {
				els = append(els, nftables.SetElement{Key: ip.AsSlice(), Timeout: until.Sub(now)})
			}
		}
	case setAcceptedMAC:
		for mac, until := range g.macs {
			els = append(els, nftables.SetElement{Key: mac[:], Timeout: until.Sub(now)})
		}
	}
	return els
}

// prune forgets acceptances with less than a millisecond left (the
// kernel's timeout unit).
func (g *Gateway) prune(now time.Time) {
	for ip, until := range g.ips {
		if until.Sub(now) < time.Millisecond {
			delete(g.ips, ip)
		}
	}
	for mac, until := range g.macs {
		if until.Sub(now) < time.Millisecond {
			delete(g.macs, mac)
		}
	}
}

// ensure puts the table back if it is meant to be installed and is not.
func (g *Gateway) ensure() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.applied {
		return nil
	}
	c, done, err := g.conn()
	if err != nil {
		return g.opErr("apply", err)
	}
	defer done()
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return g.opErr("apply", err)
	}
	for _, t := range tables {
		if t.Name == g.cfg.TableName {
			return nil
		}
	}
	g.log.Warn("gateway table deleted by another program (nftables reload?); installing it again", "table", "inet "+g.cfg.TableName)
	return g.applyLocked()
}

// watcher is a running nftables monitor.
type watcher struct {
	events chan *nftables.MonitorEvents
	stop   func()
}

func (g *Gateway) watch() (*watcher, error) {
	c, done, err := g.conn()
	if err != nil {
		return nil, g.opErr("watch", err)
	}
	defer done() // the socket keeps its namespace once open
	mon := nftables.NewMonitor(
		nftables.WithMonitorAction(nftables.MonitorActionAny),
		nftables.WithMonitorObject(nftables.MonitorObjectTables),
		nftables.WithMonitorEventBuffer(16))
	ch, err := c.AddGenerationalMonitor(mon)
	if err != nil {
		return nil, g.opErr("watch", err)
	}
	var once sync.Once
	return &watcher{events: ch, stop: func() {
		once.Do(func() {
			_ = mon.Close()
			for range ch { // the monitor goroutine may be blocked sending
			}
		})
	}}, nil
}

func deletesTable(evs *nftables.MonitorEvents, name string) bool {
	for _, ev := range evs.Changes {
		if t, ok := ev.Data.(*nftables.Table); ok && ev.Type == nftables.MonitorEventTypeDelTable &&
			t.Name == name && t.Family == nftables.TableFamilyINet {
			return true
		}
	}
	return false
}

func isOOB(evs *nftables.MonitorEvents) bool {
	return evs.GeneratedBy != nil && evs.GeneratedBy.Type == nftables.MonitorEventTypeOOB
}

// conn opens a netlink connection in the gateway's namespace; done
// releases the namespace handle.
func (g *Gateway) conn() (*nftables.Conn, func(), error) {
	if g.netns == "" {
		c, err := nftables.New()
		return c, func() {}, err
	}
	f, err := os.Open(g.netns)
	if err != nil {
		return nil, nil, err
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return c, func() { f.Close() }, nil
}

func setOf(ip netip.Addr) string {
	if ip.Is4() {
		return setAccepted4
	}
	return setAccepted6
}

func checkAddr(ip netip.Addr) (netip.Addr, error) {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("gateway: address %v is not a device's unicast address", ip)
	}
	return ip, nil
}

func checkMAC(mac net.HardwareAddr) ([6]byte, error) {
	var key [6]byte
	if len(mac) != 6 || mac[0]&1 != 0 || [6]byte(mac) == key {
		return key, fmt.Errorf("gateway: %q is not a device's Ethernet address", mac.String())
	}
	return [6]byte(mac), nil
}

// Error is a failed nftables operation. Error returns the French text,
// English the English one; both say what to do when the cause is known.
type Error struct {
	Op  string // apply, allow, revoke, close, watch
	FR  string
	EN  string
	Err error
}

func (e *Error) Error() string   { return e.FR + " : " + e.Err.Error() }
func (e *Error) English() string { return e.EN + ": " + e.Err.Error() }
func (e *Error) Unwrap() error   { return e.Err }

func (g *Gateway) opErr(op string, err error) error {
	t := g.cfg.TableName
	e := &Error{Op: op, Err: err}
	switch op {
	case "apply":
		e.FR, e.EN = "passerelle : installation des règles nftables (table inet "+t+") impossible",
			"gateway: cannot install the nftables rules (table inet "+t+")"
	case "close":
		e.FR, e.EN = "passerelle : suppression des règles nftables (table inet "+t+") impossible",
			"gateway: cannot remove the nftables rules (table inet "+t+")"
	case "watch":
		e.FR, e.EN = "passerelle : surveillance des règles nftables impossible",
			"gateway: cannot watch the nftables rules"
	default:
		e.FR, e.EN = "passerelle : mise à jour des appareils acceptés impossible",
			"gateway: cannot update the accepted devices"
	}
	switch {
	case errors.Is(err, os.ErrPermission):
		e.FR += " ; droits insuffisants : lancez preau en root ou avec la capacité CAP_NET_ADMIN"
		e.EN += "; not permitted: run preau as root or with the CAP_NET_ADMIN capability"
	case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.EAFNOSUPPORT), errors.Is(err, syscall.EPROTONOSUPPORT):
		e.FR += " ; le noyau ne prend pas en charge nftables : il faut les modules nf_tables, nft_nat, nft_redir, nft_masq et nft_reject_inet"
		e.EN += "; the kernel lacks nftables support: modules nf_tables, nft_nat, nft_redir, nft_masq and nft_reject_inet are needed"
	}
	return e
}
