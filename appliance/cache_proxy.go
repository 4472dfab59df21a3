package appliance

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"preau/services/httpcache"
)

// The LAN's forward proxy ([cache] proxy_listen): tablets configured with
// the box as their HTTP proxy get plain-HTTP answers from the RFC 9111
// cache and HTTPS through CONNECT tunnels, never decrypted. Its upstream
// traffic is the pupils' own (foreground): it does not go through the WAN
// budget, whose background classes yield to it.

// cacheConfig is the httpcache configuration from [cache].
func (b *Box) cacheConfig() httpcache.Config {
	c := b.cfg.Cache
	deny := append([]string{"localhost"}, b.cfg.DNS.ShortNames...)
	deny = append(deny, b.cfg.DNS.Addresses...)
	if ip := b.cfg.DHCP.ServerIP; ip != "" {
		deny = append(deny, ip)
	}
	if z := b.cfg.DNS.Zone; z != "" {
		deny = append(deny, z)
		for _, n := range b.cfg.DNS.ShortNames {
			deny = append(deny, n+"."+z)
		}
	}
	return httpcache.Config{
		MaxBytes:       mustSize(c.MaxSize),
		MaxObjectBytes: mustSize(c.MaxObjectSize),
		ConnectPorts:   c.ConnectPorts,
		DenyHosts:      deny,
	}
}

// listenProxy binds the forward proxy's addresses (before READY, like
// every socket of the box).
func (b *Box) listenProxy() error {
	for _, addr := range b.cfg.Cache.ProxyListen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s (cache.proxy_listen): %w", addr, err)
		}
		b.proxyListeners = append(b.proxyListeners, l)
	}
	return nil
}

// proxyParts serve the forward proxy on its listeners.
func (b *Box) proxyParts(shutdown time.Duration) []part {
	if len(b.proxyListeners) == 0 {
		return nil
	}
	guard := &ownAddrs{}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: guard.control}
	tr := &http.Transport{
		Proxy:                 nil, // never chain to an environment proxy
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	h := b.cache.Proxy(client, d.DialContext)
	var parts []part
	for _, l := range b.proxyListeners {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		parts = append(parts, serveHTTP("proxy "+l.Addr().String(), srv, l, shutdown))
	}
	return parts
}

// errOwnAddr refuses a proxied connection to the box itself.
var errOwnAddr = errors.New("the proxy does not connect to the box itself")

// ownAddrs refuses, at connect time (after name resolution, so a name
// that resolves to the box is caught too), connections to loopback,
// unspecified, link-local-multicast addresses and to the box's own
// interface addresses, read again at most every 30 s.
type ownAddrs struct {
	mu   sync.Mutex
	at   time.Time
	mine map[netip.Addr]bool
}

func (o *ownAddrs) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("proxy dial %s: %w", address, err)
	}
	ip := ap.Addr().Unmap()
	if ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() || o.isMine(ip) {
		return fmt.Errorf("proxy dial %s: %w", address, errOwnAddr)
	}
	return nil
}

func (o *ownAddrs) isMine(ip netip.Addr) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mine == nil || time.Since(o.at) > 30*time.Second {
		o.mine = map[netip.Addr]bool{}
		o.at = time.Now()
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					o.mine[p.Addr().Unmap()] = true
				}
			}
		}
	}
	return o.mine[ip]
}
