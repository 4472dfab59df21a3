// Package neigh maps a LAN device's IP address to its MAC address by
// reading the kernel's neighbour tables (ARP for IPv4, NDP for IPv6) over
// netlink. It keeps one snapshot of both tables and refreshes it at most
// once per MissAge on a lookup miss and once per MaxAge otherwise, so the
// DNS server can ask per query without a netlink dump per query.
//
// Only package captive imports neigh (it is internal to captive).
package neigh

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Options of a Table; zero values take the defaults.
type Options struct {
	// MaxAge is how long a snapshot answers lookups. Default 30 s.
	MaxAge time.Duration
	// MissAge: an address missing from a snapshot older than this triggers
	// a refresh. Default 1 s.
	MissAge time.Duration
	// Namespace is a named network namespace (as in `ip netns`) to read
	// instead of the caller's; tests use it. Default: the process's own.
	Namespace string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Table answers MAC lookups. The zero value is not usable; call New.
type Table struct {
	opts Options

	mu      sync.Mutex // serialises refreshes and the handle
	handle  *netlink.Handle
	lastErr error

	snap atomic.Pointer[snapshot]
}

type snapshot struct {
	at   time.Time
	macs map[netip.Addr]net.HardwareAddr
}

// New returns a Table. It does no I/O: the netlink socket opens on the
// first lookup.
func New(o Options) *Table {
	if o.MaxAge <= 0 {
		o.MaxAge = 30 * time.Second
	}
	if o.MissAge <= 0 {
		o.MissAge = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Table{opts: o}
}

// MAC returns the hardware address the kernel knows for ip, if any. Entries
// that are incomplete, failed or without a link-layer address are ignored.
func (t *Table) MAC(ip netip.Addr) (net.HardwareAddr, bool) {
	ip = ip.Unmap().WithZone("")
	now := t.opts.Now()
	s := t.snap.Load()
	if s != nil && now.Sub(s.at) < t.opts.MaxAge {
		if mac, ok := s.macs[ip]; ok {
			return mac, true
		}
		if now.Sub(s.at) < t.opts.MissAge {
			return nil, false
		}
	}
	s = t.refresh(now)
	if s == nil {
		return nil, false
	}
	mac, ok := s.macs[ip]
	return mac, ok
}

// Err returns the error of the last refresh, nil if it worked.
func (t *Table) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastErr
}

// minRefresh bounds how often Refresh really reads the kernel: a flood of
// requests from an address without a neighbour entry costs at most this
// many dumps a second.
const minRefresh = 50 * time.Millisecond

// Refresh reads the kernel tables again, unless that was done in the last
// 50 ms.
func (t *Table) Refresh() error {
	t.refresh(t.opts.Now().Add(-minRefresh))
	return t.Err()
}

// Close releases the netlink socket.
func (t *Table) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.handle != nil {
		t.handle.Close()
		t.handle = nil
	}
}

// refresh dumps the tables unless a snapshot was taken at or after asked
// (so a burst of misses costs one dump). It returns the current snapshot.
func (t *Table) refresh(asked time.Time) *snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.snap.Load(); s != nil && !s.at.Before(asked) {
		return s
	}
	macs, err := t.dump()
	t.lastErr = err
	if err != nil {
		return t.snap.Load() // keep answering from the old snapshot
	}
	s := &snapshot{at: t.opts.Now(), macs: macs}
	t.snap.Store(s)
	return s
}

func (t *Table) dump() (map[netip.Addr]net.HardwareAddr, error) {
	if t.handle == nil {
		h, err := t.open()
		if err != nil {
			return nil, err
		}
		t.handle = h
	}
	macs := map[netip.Addr]net.HardwareAddr{}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		list, err := t.handle.NeighList(0, fam)
		if err != nil {
			return nil, fmt.Errorf("read neighbour table: %w", err)
		}
		for _, n := range list {
			if !usable(n) {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			macs[ip.Unmap()] = bytes.Clone(n.HardwareAddr)
		}
	}
	return macs, nil
}

func (t *Table) open() (*netlink.Handle, error) {
	if t.opts.Namespace == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("open netlink: %w", err)
		}
		return h, nil
	}
	ns, err := netns.GetFromName(t.opts.Namespace)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", t.opts.Namespace, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("open netlink in namespace %s: %w", t.opts.Namespace, err)
	}
	return h, nil
}

// usable reports whether a neighbour entry names a real device: it has a
// link-layer address and is not being resolved or known to be gone.
func usable(n netlink.Neigh) bool {
	if n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) != 0 || n.State == netlink.NUD_NONE {
		return false
	}
	if len(n.HardwareAddr) == 0 {
		return false
	}
	for _, b := range n.HardwareAddr {
		if b != 0 {
			return true
		}
	}
	return false // NOARP entries carry an all-zero address
}
