package inventory

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsRunner runs functions that open sockets in the network namespace
// Serve was called in. Sockets keep the namespace they were opened in
// whichever goroutine uses them, but a goroutine started by Serve may run
// on a thread of another namespace (in tests, Serve runs on one thread
// switched into a namespace): every later socket is opened through run.
type netnsRunner struct {
	h netns.NsHandle
}

func captureNetns() (*netnsRunner, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	return &netnsRunner{h: h}, nil
}

func (r *netnsRunner) close() { r.h.Close() }

// run calls fn on a locked thread in the captured namespace. When the
// thread is already there (the usual case: one namespace for the whole
// process) it switches nothing and needs no privilege.
func (r *netnsRunner) run(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		cur, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("network namespace: %w", err)
			return
		}
		defer cur.Close()
		if cur.Equal(r.h) {
			err := fn()
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		if err := netns.Set(r.h); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		err = fn()
		if netns.Set(cur) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and ends with the goroutine
		errc <- err
	}()
	return <-errc
}

// lanView is the LAN as the kernel sees it: the configured interfaces,
// their prefixes and the neighbours last read, for turning an address into
// a MAC.
type lanView struct {
	h     *netlink.Handle
	links map[int]string
	own   map[string]bool // the box's own MACs
	conn  *net.UDPConn    // sends the datagrams that make the kernel resolve an address

	mu       sync.Mutex
	prefixes []netip.Prefix
	byIP     map[netip.Addr]string
}

func openLAN(ns *netnsRunner, names []string) (*lanView, error) {
	lv := &lanView{links: make(map[int]string), own: make(map[string]bool), byIP: make(map[netip.Addr]string)}
	err := ns.run(func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		lv.h = h
		for _, name := range names {
			link, err := h.LinkByName(name)
			if err != nil {
				return fmt.Errorf("interface %s: %w", name, err)
			}
			lv.links[link.Attrs().Index] = name
			if mac := link.Attrs().HardwareAddr; len(mac) == 6 {
				lv.own[mac.String()] = true
			}
		}
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{})
		if err != nil {
			return fmt.Errorf("open a socket for address resolution: %w", err)
		}
		lv.conn = conn
		return nil
	})
	if err != nil {
		lv.close()
		return nil, err
	}
	lv.refreshPrefixes()
	return lv, nil
}

func (lv *lanView) close() {
	if lv.conn != nil {
		lv.conn.Close()
	}
	if lv.h != nil {
		lv.h.Close()
	}
}

// refreshPrefixes reads the on-link prefixes of the LAN interfaces: only
// addresses inside them are ever sent a resolution datagram.
func (lv *lanView) refreshPrefixes() {
	var ps []netip.Prefix
	for idx := range lv.links {
		link, err := lv.h.LinkByIndex(idx)
		if err != nil {
			continue
		}
		addrs, err := lv.h.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.IPNet == nil {
				continue
			}
			ip, ok := netip.AddrFromSlice(a.IP)
			ones, _ := a.Mask.Size()
			if ok {
				ps = append(ps, netip.PrefixFrom(ip.Unmap(), ones).Masked())
			}
		}
	}
	lv.mu.Lock()
	lv.prefixes = ps
	lv.mu.Unlock()
}

func (lv *lanView) onLink(ip netip.Addr) bool {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	for _, p := range lv.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (lv *lanView) remember(ip netip.Addr, mac string) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if len(lv.byIP) > 65536 { // bounded whatever the LAN does
		clear(lv.byIP)
	}
	lv.byIP[ip] = mac
}

func (lv *lanView) forget(ip netip.Addr) {
	lv.mu.Lock()
	delete(lv.byIP, ip)
	lv.mu.Unlock()
}

// macFor returns the MAC of ip from the last neighbours read, else from a
// fresh dump of the table.
func (lv *lanView) macFor(ip netip.Addr) (string, bool) {
	lv.mu.Lock()
	mac, ok := lv.byIP[ip]
	lv.mu.Unlock()
	if ok {
		return mac, true
	}
	for idx := range lv.links {
		list, err := lv.h.NeighList(idx, netlink.FAMILY_ALL)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			continue
		}
		for _, n := range list {
			nip, _ := netip.AddrFromSlice(n.IP)
			if nip.Unmap() != ip || !usableState(n.State) || !lv.deviceMAC(n.HardwareAddr) {
				continue
			}
			mac := n.HardwareAddr.String()
			lv.remember(ip, mac)
			return mac, true
		}
	}
	return "", false
}

// nudge sends an empty datagram to the discard port of ip, when ip is on
// the LAN, so that the kernel resolves its MAC; a later neighbour event
// then releases the observations that wait for it.
func (lv *lanView) nudge(ip netip.Addr) {
	if !ip.Is4() || !lv.onLink(ip) {
		return
	}
	lv.conn.WriteToUDPAddrPort(nil, netip.AddrPortFrom(ip, 9))
}

// deviceMAC reports whether mac can name a LAN device: unicast, not zero,
// not the box's own.
func (lv *lanView) deviceMAC(mac net.HardwareAddr) bool {
	if len(mac) != 6 || mac[0]&0x01 != 0 || string(mac) == "\x00\x00\x00\x00\x00\x00" {
		return false
	}
	return !lv.own[mac.String()]
}

func usableState(s int) bool {
	return s&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE) != 0
}

var stateNames = []struct {
	bit  int
	name string
}{
	{netlink.NUD_REACHABLE, "REACHABLE"}, {netlink.NUD_STALE, "STALE"}, {netlink.NUD_DELAY, "DELAY"},
	{netlink.NUD_PROBE, "PROBE"}, {netlink.NUD_FAILED, "FAILED"}, {netlink.NUD_INCOMPLETE, "INCOMPLETE"},
	{netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"},
}

func stateName(s int) string {
	for _, n := range stateNames {
		if s&n.bit != 0 {
			return n.name
		}
	}
	return "NONE"
}

// clockTick is the unit of the neighbour cache times (USER_HZ, which
// Linux fixes at 100 for user space).
const clockTick = 10 * time.Millisecond

// neighbourSeen says when a neighbour entry shows the device was last
// there, or false when the entry says nothing of presence.
//
// REACHABLE means confirmed within the last reachable time (about 30 s):
// present now. STALE, DELAY and PROBE count from the later of the last
// confirmation and the last state change: a device's own ARP or neighbour
// discovery packet puts its entry in STALE (a sighting); the kernel also
// moves REACHABLE to STALE by itself after the reachable time, which
// overstates presence by at most that time. FAILED and INCOMPLETE mean
// not answering; NOARP and PERMANENT entries are configuration.
func neighbourSeen(n netlink.Neigh, now time.Time) (time.Time, bool) {
	switch {
	case n.State&netlink.NUD_REACHABLE != 0:
		return now, true
	case n.State&(netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE) != 0:
		ago := min(n.Confirmed, n.Updated)
		return now.Add(-time.Duration(ago) * clockTick), true
	}
	return time.Time{}, false
}

// watchNeighbours follows the neighbour table of the LAN interfaces: a
// dump every NeighbourPoll (presence is refreshed only by reading the
// entries: a REACHABLE entry that stays REACHABLE sends no event) and the
// kernel's notifications in between, so that a device appears at once.
func (inv *Inventory) watchNeighbours(ctx context.Context, ns *netnsRunner, lv *lanView) error {
	for {
		err := inv.neighbourSession(ctx, ns, lv)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, errSubscriptionEnded) {
			return err
		}
		inv.log.Warn("inventory: neighbour notifications interrupted, subscribing again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

var errSubscriptionEnded = errors.New("neighbour notifications ended")

func (inv *Inventory) neighbourSession(ctx context.Context, ns *netnsRunner, lv *lanView) error {
	updates := make(chan netlink.NeighUpdate, 256)
	done := make(chan struct{})
	var subErr error
	var subMu sync.Mutex
	err := ns.run(func() error {
		return netlink.NeighSubscribeWithOptions(updates, done, netlink.NeighSubscribeOptions{
			ErrorCallback: func(err error) {
				subMu.Lock()
				subErr = err
				subMu.Unlock()
			},
		})
	})
	if err != nil {
		return fmt.Errorf("subscribe to neighbour notifications: %w", err)
	}
	defer func() {
		close(done)
		go func() { // the subscription's goroutine ends once it can send
			for range updates {
			}
		}()
	}()

	inv.pollNeighbours(ctx, lv)
	t := time.NewTicker(inv.cfg.NeighbourPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				subMu.Lock()
				defer subMu.Unlock()
				return fmt.Errorf("%w: %v", errSubscriptionEnded, subErr)
			}
			if u.Type == unix.RTM_DELNEIGH {
				if ip, ok := netip.AddrFromSlice(u.IP); ok {
					lv.forget(ip.Unmap())
				}
				continue
			}
			inv.handleNeighbour(ctx, lv, u.Neigh, inv.now())
		case <-t.C:
			lv.refreshPrefixes()
			inv.pollNeighbours(ctx, lv)
		}
	}
}

func (inv *Inventory) pollNeighbours(ctx context.Context, lv *lanView) {
	now := inv.now()
	for idx, name := range lv.links {
		list, err := lv.h.NeighList(idx, netlink.FAMILY_ALL)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			inv.log.Warn("inventory: read the neighbour table", "interface", name, "err", err)
			continue
		}
		for _, n := range list {
			inv.handleNeighbour(ctx, lv, n, now)
		}
	}
}

func (inv *Inventory) handleNeighbour(ctx context.Context, lv *lanView, n netlink.Neigh, now time.Time) {
	if _, ok := lv.links[n.LinkIndex]; !ok || (n.Family != unix.AF_INET && n.Family != unix.AF_INET6) {
		return
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok || !lv.deviceMAC(n.HardwareAddr) {
		return
	}
	ip = ip.Unmap()
	if n.State&netlink.NUD_FAILED != 0 {
		lv.forget(ip)
		return
	}
	at, ok := neighbourSeen(n, now)
	if !ok {
		return
	}
	mac := n.HardwareAddr.String()
	lv.remember(ip, mac)
	inv.flushPending(ctx, ip, mac)
	ob := observation{Observation: Observation{IP: ip, Source: SourceNeighbour, At: at}, mac: mac, neighState: stateName(n.State)}
	if err := inv.observe(ctx, ob); err != nil && ctx.Err() == nil {
		inv.log.Warn("inventory: record a neighbour", "mac", mac, "ip", ip, "err", err)
	}
}
