package appliance

import (
	"context"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"preau/appliance/inventory"
	"preau/captive"
	"preau/services/dhcp"
)

// lanObserver hands the inventory what other parts of the box see of the
// LAN's devices: the captive portal's acceptances, the DHCP server's
// leases and the User-Agents of the portal's visitors. It never slows
// them down: observations wait in a bounded queue that one goroutine
// (run) writes, and a full queue drops them (the next sighting comes).
type lanObserver struct {
	inv     *inventory.Inventory
	log     *slog.Logger
	queue   chan inventory.Observation
	dropped atomic.Uint64

	mu   sync.Mutex
	seen map[netip.Addr]uaSeen // by client address: the User-Agent last passed on
}

type uaSeen struct {
	ua uint64 // FNV-1a of the User-Agent
	at time.Time
}

const (
	observeQueue = 256
	// uaRefresh: the same browser at the same address is passed on again
	// only after this long, so a page with twenty assets is one
	// observation, not twenty database writes.
	uaRefresh  = 5 * time.Minute
	maxUASeen  = 4096
	leasesPoll = 5 * time.Second
)

func newLANObserver(inv *inventory.Inventory, log *slog.Logger) *lanObserver {
	return &lanObserver{inv: inv, log: log, queue: make(chan inventory.Observation, observeQueue),
		seen: map[netip.Addr]uaSeen{}}
}

func (o *lanObserver) post(ob inventory.Observation) {
	select {
	case o.queue <- ob:
	default:
		if o.dropped.Add(1)%100 == 1 {
			o.log.Info("inventaire : observations en trop, certaines ignorées", "dropped", o.dropped.Load())
		}
	}
}

// run records the queued observations until ctx ends.
func (o *lanObserver) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ob := <-o.queue:
			if err := o.inv.Observe(ctx, ob); err != nil && ctx.Err() == nil {
				o.log.Debug("inventory: observation not recorded", "source", ob.Source, "ip", ob.IP, "err", err)
			}
		}
	}
}

// middleware passes the User-Agent of the portal's visitors on.
func (o *lanObserver) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.userAgent(r)
		next.ServeHTTP(w, r)
	})
}

func (o *lanObserver) userAgent(r *http.Request) {
	ua := r.Header.Get("User-Agent")
	if ua == "" || r.URL.Path == "/metrics" || r.URL.Path == "/healthz" {
		return
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return
	}
	ip := ap.Addr().Unmap()
	if ip.IsLoopback() || ip.IsUnspecified() {
		return // the box itself, or `make run`
	}
	h := fnv.New64a()
	h.Write([]byte(ua))
	sum, now := h.Sum64(), time.Now()
	o.mu.Lock()
	s, ok := o.seen[ip]
	if ok && s.ua == sum && now.Sub(s.at) < uaRefresh {
		o.mu.Unlock()
		return
	}
	if !ok && len(o.seen) >= maxUASeen {
		for k, v := range o.seen {
			if now.Sub(v.at) >= uaRefresh {
				delete(o.seen, k)
			}
		}
		if len(o.seen) >= maxUASeen {
			clear(o.seen)
		}
	}
	o.seen[ip] = uaSeen{ua: sum, at: now}
	o.mu.Unlock()
	o.post(inventory.Observation{Source: inventory.SourcePortal, IP: ip, UserAgent: ua, At: now})
}

// captive passes on a device that accepted the charter.
func (o *lanObserver) captive(d captive.Device) {
	if !d.Accepted {
		return
	}
	ob := inventory.Observation{Source: inventory.SourceCaptive, IP: d.IP, At: d.AcceptedAt}
	if mac, err := net.ParseMAC(d.MAC); err == nil {
		ob.MAC = mac
	}
	if ob.MAC == nil && !ob.IP.IsValid() {
		return
	}
	if ob.At.IsZero() || ob.At.After(time.Now()) {
		ob.At = time.Now()
	}
	o.post(ob)
}

// leases passes on the DHCP server's leases: each new or renewed lease
// once, dated when it was bound (expiry less the lease time), with the
// host name the device gave. The server has no event hook; its lease
// table is small and read every leasesPoll.
func (o *lanObserver) leases(ctx context.Context, srv *dhcp.Server) error {
	leaseTime := srv.Config().LeaseTime
	known := map[string]time.Time{} // MAC → expiry passed on
	t := time.NewTicker(leasesPoll)
	defer t.Stop()
	for {
		if ls, err := srv.Leases(ctx); err == nil {
			now := time.Now()
			current := make(map[string]bool, len(ls))
			for _, l := range ls {
				current[l.MAC] = true
				if e, ok := known[l.MAC]; ok && e.Equal(l.Expires) {
					continue
				}
				known[l.MAC] = l.Expires
				mac, err := net.ParseMAC(l.MAC)
				if err != nil {
					continue
				}
				at := l.Expires.Add(-leaseTime)
				if at.After(now) || l.Static {
					at = now
				}
				o.post(inventory.Observation{Source: inventory.SourceDHCP, MAC: mac, IP: l.IP, Hostname: l.Hostname, At: at})
			}
			for mac := range known {
				if !current[mac] {
					delete(known, mac)
				}
			}
		} else if ctx.Err() == nil {
			o.log.Debug("inventory: read dhcp leases", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
