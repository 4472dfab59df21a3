package appliance

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"preau/appliance/store"
	"preau/captive"
	"preau/captive/gateway"
	"preau/services/dhcp"
	"preau/services/dns"
	"preau/services/mdns"
)

// lan is the school-network side of the box: captive portal, local DNS,
// mDNS, the optional DHCP server and the optional gateway firewall.
type lan struct {
	captive *captive.Captive
	dns     *dns.Server
	dnsUDP  []net.PacketConn
	dnsTCP  []net.Listener
	mdns    *mdns.Announcer
	dhcp    *dhcp.Server
	gateway *gateway.Gateway
	https   []net.Listener
	// portalURL is the portal's home as tablets reach it.
	portalURL string
}

// newLAN builds the LAN components and binds the DNS and HTTPS sockets.
// It runs after the HTTP listeners are known (their port goes into the
// portal's URL). On error the caller closes what b holds; newLAN closes
// its own sockets.
func (b *Box) newLAN(ctx context.Context) (err error) {
	cfg := b.cfg
	l := &lan{}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	for _, m := range []struct {
		name string
		ms   []store.Migration
	}{{"captive", convertMigrations(captive.Migrations())}, {"dhcp", convertMigrations(dhcp.Migrations())}} {
		if err := b.store.Migrate(ctx, m.name, m.ms); err != nil {
			return err
		}
	}
	httpPort := b.httpPort()
	boxAddrs, err := b.boxAddrs()
	if err != nil {
		return err
	}
	portalURL := cfg.Captive.PortalURL
	if portalURL == "" {
		portalURL = derivePortalURL(cfg.DNS.Zone, b.listenHost(), httpPort)
	}
	l.portalURL = portalURL
	acceptFor := time.Duration(0)
	if cfg.Captive.AcceptFor != "" {
		acceptFor = mustDuration(cfg.Captive.AcceptFor)
	}
	l.captive, err = captive.New(captive.Config{
		PortalURL:       portalURL,
		HTTPSURL:        cfg.Captive.HTTPSURL,
		CertFile:        cfg.Captive.TLSCert,
		KeyFile:         cfg.Captive.TLSKey,
		DayEnd:          cfg.Captive.DayEnd,
		AcceptFor:       acceptFor,
		DefaultLanguage: cfg.Portal.Language,
		SchoolName:      cfg.Box.Name,
		Charter:         captive.Charter{Enabled: cfg.Captive.Charter, Text: cfg.Captive.CharterText, TextEN: cfg.Captive.CharterTextEN},
	}, captive.Deps{DB: b.store.DB(), Log: b.log.With("component", "captive"), OnChange: b.deviceChanged})
	if err != nil {
		return err
	}
	if err := l.captive.Load(ctx); err != nil {
		return err
	}
	if cfg.Captive.TLSCert != "" {
		tc, err := l.captive.TLSConfig()
		if err != nil {
			return err
		}
		for _, addr := range cfg.Captive.HTTPSListen {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen https on %s: %w", addr, err)
			}
			l.https = append(l.https, tls.NewListener(ln, tc))
		}
	}

	if cfg.DNS.Enabled {
		if err := b.newDNS(l, boxAddrs); err != nil {
			return err
		}
	}
	if len(cfg.MDNS.Interfaces) > 0 {
		l.mdns, err = mdns.New(mdns.Config{
			SchoolName: cfg.Box.Name, HostName: cfg.MDNS.HostName, Port: httpPort,
			Interfaces: cfg.MDNS.Interfaces, Version: version, UAI: cfg.Box.UAI,
		}, b.log.With("component", "mdns"))
		if err != nil {
			return err
		}
	}
	if cfg.DHCP.Enabled {
		dc := dhcp.Config{
			Interface:  cfg.DHCP.Interface,
			ServerIP:   netip.MustParseAddr(cfg.DHCP.ServerIP),
			Subnet:     netip.MustParsePrefix(cfg.DHCP.Subnet),
			PoolStart:  netip.MustParseAddr(cfg.DHCP.PoolStart),
			PoolEnd:    netip.MustParseAddr(cfg.DHCP.PoolEnd),
			DomainName: strings.TrimSuffix(cfg.DNS.Zone, "."),
			LeaseTime:  mustDuration(cfg.DHCP.LeaseTime),
			Static:     map[string]netip.Addr{},
		}
		if cfg.DHCP.Router != "" {
			dc.Router = netip.MustParseAddr(cfg.DHCP.Router)
		} else if cfg.Gateway.Enabled {
			dc.Router = dc.ServerIP
		}
		for _, s := range cfg.DHCP.Static {
			mac, ip, _ := strings.Cut(s, "=")
			dc.Static[strings.TrimSpace(mac)] = netip.MustParseAddr(strings.TrimSpace(ip))
		}
		// RFC 8908 wants an https URI; without a certificate the box
		// sends no option 114 and the classic probes do the work.
		if l.captive.HTTPS() {
			dc.CaptiveURI = l.captive.APIURL()
		}
		if l.dhcp, err = dhcp.New(dc, b.store.DB(), b.log.With("component", "dhcp")); err != nil {
			return err
		}
	}
	if cfg.Gateway.Enabled {
		dnsPort := 53
		if len(cfg.DNS.Listen) > 0 {
			if _, p, err := net.SplitHostPort(cfg.DNS.Listen[0]); err == nil {
				dnsPort, _ = strconv.Atoi(p)
			}
		}
		l.gateway, err = gateway.New(gateway.Config{
			LANInterface: cfg.Gateway.LANInterface, UplinkInterface: cfg.Gateway.UplinkInterface,
			PortalPort: uint16(httpPort), DNSPort: uint16(dnsPort), Open: !cfg.Captive.Charter,
		}, b.log.With("component", "gateway"))
		if err != nil {
			return err
		}
		devs, err := l.captive.Devices(ctx)
		if err != nil {
			return err
		}
		for _, d := range devs {
			l.allow(d)
		}
	}
	b.lan = l
	return nil
}

func (b *Box) newDNS(l *lan, boxAddrs []netip.Addr) error {
	cfg := b.cfg.DNS
	dc := dns.Config{
		Zone:          cfg.Zone,
		ShortNames:    append(append([]string(nil), cfg.ShortNames...), b.cfg.MDNS.HostName),
		BoxAddrs:      boxAddrs,
		Upstreams:     cfg.Upstreams,
		ProbeNames:    captive.ProbeHosts(),
		DNSOnlyProbes: map[string][]netip.Addr{},
		RRL:           dns.RateLimit{Rate: cfg.RateLimit},
	}
	if cfg.RateLimit == 0 {
		dc.RRL.Rate = -1
	}
	dc.ShortNames = uniqueStrings(dc.ShortNames)
	for _, p := range captive.DNSOnlyProbes() {
		dc.DNSOnlyProbes[p.Name] = append(append([]netip.Addr(nil), p.A...), p.AAAA...)
	}
	for _, p := range cfg.LANPrefixes {
		dc.LANPrefixes = append(dc.LANPrefixes, netip.MustParsePrefix(p))
	}
	var err error
	if len(dc.Upstreams) == 0 {
		dc.Upstreams = systemResolvers("/etc/resolv.conf", boxAddrs)
	}
	if l.dns, err = dns.New(dc, l.captive, b.uplink, b.log.With("component", "dns")); err != nil {
		return err
	}
	for _, addr := range cfg.Listen {
		if b.opts.DNSAddr != "" {
			addr = b.opts.DNSAddr
		}
		pc, ln, err := dns.Listen(addr)
		if err != nil {
			return err
		}
		l.dnsUDP, l.dnsTCP = append(l.dnsUDP, pc), append(l.dnsTCP, ln)
		if b.opts.DNSAddr != "" {
			break
		}
	}
	return nil
}

// parts are the LAN's supervised parts.
func (l *lan) parts(b *Box, shutdown time.Duration) []part {
	var ps []part
	ps = append(ps, part{name: "captive", serve: l.captive.Serve})
	for i := range l.dnsUDP {
		pc, ln := l.dnsUDP[i], l.dnsTCP[i]
		ps = append(ps, part{name: "dns " + pc.LocalAddr().String(), serve: func(ctx context.Context) error {
			return l.dns.Serve(ctx, pc, ln)
		}})
	}
	for _, ln := range l.https {
		srv := b.newHTTPServer(b.lanHandler())
		ps = append(ps, serveHTTP("https "+ln.Addr().String(), srv, ln, shutdown))
	}
	if l.mdns != nil {
		ps = append(ps, part{name: "mdns", serve: l.mdns.Serve})
	}
	if l.dhcp != nil {
		ps = append(ps, part{name: "dhcp", serve: func(ctx context.Context) error {
			err := l.dhcp.Serve(ctx)
			if errors.Is(err, dhcp.ErrOtherServer) {
				// Another server owns the segment: ours stays off rather
				// than fight it; the rest of the box goes on.
				b.log.Error("serveur DHCP non démarré", "err", err)
				<-ctx.Done()
				return nil
			}
			return err
		}})
	}
	if l.gateway != nil {
		ps = append(ps, part{name: "gateway", serve: l.gateway.Serve})
	}
	return ps
}

// deviceChanged tells the gateway firewall about acceptance changes, and
// the inventory about devices that accepted the charter.
func (b *Box) deviceChanged(d captive.Device) {
	if b.lan != nil {
		b.lan.allow(d)
	}
	if b.tech != nil {
		b.tech.observer.captive(d)
	}
}

func (l *lan) allow(d captive.Device) {
	if l.gateway == nil {
		return
	}
	for _, a := range d.Addrs {
		if d.Accepted {
			l.gateway.Allow(a, d.ExpiresAt)
		} else {
			l.gateway.Revoke(a)
		}
	}
}

func (l *lan) close() {
	for _, c := range l.dnsUDP {
		c.Close()
	}
	for _, c := range l.dnsTCP {
		c.Close()
	}
	for _, c := range l.https {
		c.Close()
	}
}

// DNSAddrs are the bound DNS addresses (UDP; TCP uses the same).
func (b *Box) DNSAddrs() []net.Addr {
	if b.lan == nil {
		return nil
	}
	var out []net.Addr
	for _, c := range b.lan.dnsUDP {
		out = append(out, c.LocalAddr())
	}
	return out
}

// httpPort is the port of the first LAN HTTP listener.
func (b *Box) httpPort() int {
	for _, l := range b.listeners {
		if ta, ok := l.Addr().(*net.TCPAddr); ok {
			return ta.Port
		}
	}
	return 80
}

// listenHost is the first HTTP listener's address when it is a specific
// one (e.g. 127.0.0.1 under `make run`), else the zero Addr.
func (b *Box) listenHost() netip.Addr {
	for _, l := range b.listeners {
		if ta, ok := l.Addr().(*net.TCPAddr); ok {
			if a, ok := netip.AddrFromSlice(ta.IP); ok && !a.IsUnspecified() {
				return a.Unmap()
			}
		}
	}
	return netip.Addr{}
}

// derivePortalURL is the portal's home as tablets reach it: by name
// through the box's DNS, or by address when the box listens on one
// address only (loopback under `make run`, where no DNS points at it).
func derivePortalURL(zone string, host netip.Addr, port int) string {
	h := strings.TrimSuffix(zone, ".")
	if host.IsValid() && host.IsLoopback() {
		h = host.String()
		if host.Is6() {
			h = "[" + h + "]"
		}
	}
	if port != 80 {
		h += ":" + strconv.Itoa(port)
	}
	return "http://" + h + "/"
}

// boxAddrs are the addresses the DNS answers for the box's names.
func (b *Box) boxAddrs() ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range b.cfg.DNS.Addresses {
		out = append(out, netip.MustParseAddr(s))
	}
	if len(out) > 0 {
		return out, nil
	}
	if h := b.listenHost(); h.IsValid() {
		return []netip.Addr{h}, nil
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("box addresses: %w", err)
	}
	for _, ifi := range ifaces {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if pn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(pn.IP); ok && (ip.Unmap().Is4() || ip.IsGlobalUnicast()) && !ip.IsLinkLocalUnicast() {
					out = append(out, ip.Unmap())
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("box addresses: no address on any interface; set dns.addresses")
	}
	return out, nil
}

// systemResolvers reads the nameservers of a resolv.conf, leaving out the
// box's own addresses and loopback (this very server, or a local stub).
func systemResolvers(path string, own []netip.Addr) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil || a.IsLoopback() || a.IsUnspecified() {
			continue
		}
		mine := false
		for _, o := range own {
			mine = mine || o == a
		}
		if !mine {
			out = append(out, netip.AddrPortFrom(a.WithZone(""), 53).String())
		}
	}
	return out
}

func uniqueStrings(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// newHTTPServer is the LAN HTTP server's settings, for every listener.
func (b *Box) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ConnContext:       rememberConn,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(httpErrorLog{b.log.With("component", "http")}, "", 0),
	}
}

// httpErrorLog receives net/http's server errors. TLS handshake failures
// are routine on a captive network (every tablet tries HTTPS on redirected
// names and refuses the box's certificate): they go to debug, the rest to
// warn.
type httpErrorLog struct{ log *slog.Logger }

func (h httpErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.Contains(msg, "TLS handshake error") {
		level = slog.LevelDebug
	}
	h.log.Log(context.Background(), level, msg)
	return len(p), nil
}
