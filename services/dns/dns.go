// Package dns is the box's DNS server, on github.com/miekg/dns. It owns:
//
//   - the local zone (preau.lan by default), where the box is authoritative:
//     the apex, www, portail and portal point at the box, plus the school's
//     short names and the extra hosts of the configuration;
//   - the hijacking of the operating systems' connectivity-probe names,
//     answered with the box's address while a device has not accepted the
//     charter or while the uplink is down, and the DNS-only probes
//     (dns.msftncsi.com) always answered locally;
//   - a forwarder to the configured upstream resolvers with a cache that
//     honours TTLs (RFC 2308 for negative answers) and serves stale data
//     when the upstreams cannot be reached (RFC 8767, with the Extended DNS
//     Error "Stale Answer" of RFC 8914);
//   - the guards of a LAN resolver: recursion only for clients inside the
//     LAN prefixes (others get the local zone and REFUSED for the rest, so
//     the box is never an open resolver), minimal answers to ANY (RFC
//     8482) and response rate limiting on UDP.
//
// It serves UDP and TCP with EDNS0. It keeps no persistent state: the cache
// lives in memory and is lost on restart.
//
// Only package appliance imports it. The components it needs (captive's
// acceptance, the uplink monitor) are reached through the Acceptance and
// Uplink interfaces declared here.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	miekg "github.com/miekg/dns"
	"golang.org/x/net/netutil"
)

// Acceptance tells whether a device on the LAN has accepted the charter;
// captive implements it. It is called on every probe-name query, so it must
// be cheap.
type Acceptance interface {
	Accepted(netip.Addr) bool
}

// Uplink tells whether the internet link works; the uplink monitor
// implements it.
type Uplink interface {
	Online() bool
}

const (
	// ourUDPSize is the EDNS0 buffer size the box offers and asks for:
	// 1232 bytes fits any IPv6 path without fragmentation (DNS flag day
	// 2020).
	ourUDPSize = 1232
	// readUDPSize is the buffer for incoming queries, large enough for
	// any query with options and padding.
	readUDPSize = 4096
	// maxInflight bounds the concurrent upstream resolutions.
	maxInflight = 256
	// maxTCPConns bounds the concurrent TCP clients.
	maxTCPConns = 256
	// shutdownGrace is how long Serve waits for running queries on stop.
	shutdownGrace = 3 * time.Second
	// logPeriod is the throttle of repeated log lines.
	logPeriod = time.Minute
)

// Server is the DNS server. Build it with New and run it with Serve.
type Server struct {
	cfg       Config
	acc       Acceptance
	up        Uplink
	log       *slog.Logger
	now       func() time.Time
	names     *localNames
	lan       []netip.Prefix
	upstreams []string
	cache     *cache
	rrl       *limiter
	throttle  *logThrottle
	counters  counters
	// upstreamDown is set when a resolution failed, so that the recovery
	// is logged once.
	upstreamDown atomic.Bool

	// exchange sends one query to one upstream; tests may replace it.
	exchange func(ctx context.Context, m *miekg.Msg, upstream string) (*miekg.Msg, error)

	flightMu sync.Mutex
	flights  map[cacheKey]*flight
	runCtx   context.Context // bounds background resolutions; set by Serve
}

// New validates cfg and builds a server; it does no I/O. acc may be nil
// when there is no captive portal (every device counts as accepted); up
// may be nil (the uplink counts as online). log may be nil.
func New(cfg Config, acc Acceptance, up Uplink, log *slog.Logger) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		acc:      acc,
		up:       up,
		log:      log,
		now:      cfg.Now,
		names:    newLocalNames(cfg, cfg.Now()),
		cache:    newCache(cfg.CacheEntries, cfg.StaleMaxAge),
		rrl:      newLimiter(cfg.RRL, cfg.Now),
		throttle: newLogThrottle(logPeriod, cfg.Now),
		flights:  map[cacheKey]*flight{},
		runCtx:   context.Background(),
	}
	for _, p := range cfg.LANPrefixes {
		s.lan = append(s.lan, p.Masked())
	}
	for _, u := range cfg.Upstreams {
		ap, _ := parseUpstream(u) // checked by Validate
		s.upstreams = append(s.upstreams, ap.String())
	}
	s.exchange = s.exchangeNet
	return s, nil
}

// Listen binds UDP and TCP on the same address, e.g. "127.0.0.1:8053"; port
// 0 picks a free port for both. Appliance binds its own sockets (or gets
// them from systemd); this is for tests and `make run`.
func Listen(addr string) (net.PacketConn, net.Listener, error) {
	for range 20 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listen dns udp %s: %w", addr, err)
		}
		tcpAddr := pc.LocalAddr().String()
		l, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		_, port, _ := net.SplitHostPort(addr)
		if port != "0" || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("listen dns tcp %s: %w", tcpAddr, err)
		}
		// The free UDP port is taken in TCP: try another.
	}
	return nil, nil, fmt.Errorf("listen dns %s: no port free in both udp and tcp", addr)
}

// Serve answers queries on udp and tcp (either may be nil, not both) until
// ctx ends, then lets running queries finish for a few seconds. The caller
// keeps ownership of the sockets: Serve works on duplicates of them and
// closes only those, so that a supervisor can call Serve again with the
// same (e.g. socket-activated) sockets.
func (s *Server) Serve(ctx context.Context, udp net.PacketConn, tcp net.Listener) error {
	if udp == nil && tcp == nil {
		return errors.New("serve dns: no socket")
	}
	if err := s.checkLoop(udp, tcp); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.flightMu.Lock()
	s.runCtx = runCtx
	s.flightMu.Unlock()

	handler := miekg.HandlerFunc(s.serveDNS)
	var servers []*miekg.Server
	if udp != nil {
		pc, err := dupPacketConn(udp)
		if err != nil {
			return fmt.Errorf("serve dns: %w", err)
		}
		servers = append(servers, &miekg.Server{PacketConn: pc, Handler: handler, UDPSize: readUDPSize})
	}
	if tcp != nil {
		l, err := dupListener(tcp)
		if err != nil {
			for _, srv := range servers {
				srv.PacketConn.Close()
			}
			return fmt.Errorf("serve dns: %w", err)
		}
		servers = append(servers, &miekg.Server{Listener: netutil.LimitListener(l, maxTCPConns), Handler: handler,
			ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	}

	type running struct {
		srv     *miekg.Server
		started chan struct{}
		done    chan error
	}
	runs := make([]*running, len(servers))
	for i, srv := range servers {
		r := &running{srv: srv, started: make(chan struct{}), done: make(chan error, 1)}
		srv.NotifyStartedFunc = func() { close(r.started) }
		runs[i] = r
		go func() { r.done <- srv.ActivateAndServe() }()
	}
	s.log.Info("serving", "udp", sockName(udp), "tcp", sockName(tcp), "zone", s.names.zone, "upstreams", s.upstreams)
	// Wait until every server runs (or failed), so that shutting down
	// cannot race with a start.
	var errs []error
	live := runs[:0:0]
	for _, r := range runs {
		select {
		case <-r.started:
			live = append(live, r)
		case err := <-r.done:
			errs = append(errs, fmt.Errorf("serve dns: start: %w", err))
		}
	}
	if len(errs) == 0 {
		stopped := make(chan error, len(live))
		for _, r := range live {
			go func() { stopped <- <-r.done }()
		}
		select {
		case <-ctx.Done():
		case err := <-stopped:
			if err == nil {
				err = errors.New("stopped by itself")
			}
			errs = append(errs, fmt.Errorf("serve dns: %w", err))
		}
	}
	sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer scancel()
	for _, r := range live {
		// An error here means the server had already stopped, or that
		// queries were still running after the grace period: neither is
		// worth more than what errs already says.
		_ = r.srv.ShutdownContext(sctx)
	}
	cancel() // end background resolutions
	return errors.Join(errs...)
}

// checkLoop refuses an upstream that is this very server.
func (s *Server) checkLoop(udp net.PacketConn, tcp net.Listener) error {
	var locals []netip.AddrPort
	if udp != nil {
		if ua, ok := udp.LocalAddr().(*net.UDPAddr); ok {
			locals = append(locals, ua.AddrPort())
		}
	}
	if tcp != nil {
		if ta, ok := tcp.Addr().(*net.TCPAddr); ok {
			locals = append(locals, ta.AddrPort())
		}
	}
	for _, u := range s.upstreams {
		up := netip.MustParseAddrPort(u)
		for _, l := range locals {
			la := l.Addr().Unmap()
			same := la == up.Addr() || la.IsUnspecified() && (up.Addr().IsLoopback() || containsAddr(s.names.box, up.Addr()))
			if l.Port() == up.Port() && same {
				return &ConfigError{Field: "Upstreams",
					FR: fmt.Sprintf("dns : le serveur amont %s est ce serveur lui-même (boucle) ; donnez le résolveur de la box internet ou de l'académie", u),
					EN: fmt.Sprintf("dns: upstream %s is this server itself (a loop); give the resolver of the internet router or of the academy", u)}
			}
		}
	}
	return nil
}

func sockName(v any) string {
	switch v := v.(type) {
	case net.PacketConn:
		if v != nil {
			return v.LocalAddr().String()
		}
	case net.Listener:
		if v != nil {
			return v.Addr().String()
		}
	}
	return ""
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, b := range list {
		if b == a {
			return true
		}
	}
	return false
}

// dupPacketConn returns a second handle on the same socket, so that
// closing it leaves the caller's open. It stays a *net.UDPConn, which
// miekg/dns needs to answer from the address a query came to.
func dupPacketConn(pc net.PacketConn) (net.PacketConn, error) {
	u, ok := pc.(*net.UDPConn)
	if !ok {
		return pc, nil
	}
	f, err := u.File()
	if err != nil {
		return nil, fmt.Errorf("duplicate udp socket: %w", err)
	}
	defer f.Close()
	d, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("duplicate udp socket: %w", err)
	}
	return d, nil
}

func dupListener(l net.Listener) (net.Listener, error) {
	t, ok := l.(*net.TCPListener)
	if !ok {
		return l, nil
	}
	f, err := t.File()
	if err != nil {
		return nil, fmt.Errorf("duplicate tcp socket: %w", err)
	}
	defer f.Close()
	d, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("duplicate tcp socket: %w", err)
	}
	return d, nil
}

func (s *Server) inLAN(a netip.Addr) bool {
	for _, p := range s.lan {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Server) accepted(a netip.Addr) bool { return s.acc == nil || s.acc.Accepted(a) }
func (s *Server) online() bool               { return s.up == nil || s.up.Online() }
