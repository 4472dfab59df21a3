// Package appliance is the box itself: the only package that knows every
// component. It reads the configuration, opens the state store, builds the
// components (content store, portal, uplink monitor, …), wires them
// together, serves them on the LAN and the control socket, and talks to
// systemd.
//
// Only cmd/preau imports appliance. Its sub-packages (store, demo,
// internal/…) never import this root package: they are parts it assembles.
package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"

	"preau/appliance/demo"
	"preau/appliance/store"
	"preau/firmware"
	"preau/services/catalog"
	"preau/services/content"
	"preau/services/httpcache"
	"preau/services/portal"
	"preau/sync/uplink"
)

// version is set at build time with -ldflags "-X preau/appliance.version=…".
var version = "dev"

// Version is the program's version.
func Version() string { return version }

// Options are what the command line adds to the configuration file.
type Options struct {
	// Demo imports the demo pack on first start.
	Demo bool
	// Listeners, when set, replace the configured addresses (tests).
	Listeners []net.Listener
	// DNSAddr, when set, replaces dns.listen (`preau run --dns`).
	DNSAddr string
}

// Box is a running appliance.
type Box struct {
	cfg  Config
	opts Options
	log  *slog.Logger
	// rawLog is log without the recent-errors recorder (errs), for what
	// must reach the journal but not the dashboard.
	rawLog *slog.Logger
	errs   *recentErrors

	lock    *os.File
	store   *store.Store
	content *content.Store
	portal  *portal.Portal
	uplink  *uplink.Monitor
	lan     *lan
	handin  *handin
	catalog *catalog.Catalog
	cache   *httpcache.Cache
	update  *firmware.Engine // nil without A/B slots ([update] boot)
	tech    *technician      // console, LAN inventory, energy
	running context.Context  // Serve's: work a control request starts ends with the box
	metrics *prometheus.Registry
	http    *http.Client

	started   time.Time
	listeners []net.Listener
	// proxyListeners serve the LAN's forward proxy ([cache] proxy_listen).
	proxyListeners []net.Listener
	control        net.Listener
	ready          atomic.Bool
	m              boxMetrics
}

// Paths inside the data folder.
func dbPath(dataDir string) string      { return filepath.Join(dataDir, "preau.db") }
func contentDir(dataDir string) string  { return filepath.Join(dataDir, "content") }
func controlPath(dataDir string) string { return filepath.Join(dataDir, "run", "control.sock") }
func lockPath(dataDir string) string    { return filepath.Join(dataDir, "preau.lock") }

// ErrBusy means another preau already uses the data folder.
var ErrBusy = errors.New("data folder in use by another preau")

// lockDataDir takes an exclusive, non-blocking lock on the data folder so
// two processes never write the same store. The kernel drops the lock when
// the process dies, even by kill -9.
func lockDataDir(dataDir string) (*os.File, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data folder %s: %w", dataDir, err)
	}
	f, err := os.OpenFile(lockPath(dataDir), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock data folder %s: %w", dataDir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock data folder %s: %w", dataDir, ErrBusy)
		}
		return nil, fmt.Errorf("lock data folder %s: %w", dataDir, err)
	}
	return f, nil
}

// open prepares the state shared by `run` and offline commands: lock,
// database, migrations, content store. It binds no socket.
func open(ctx context.Context, cfg Config, log *slog.Logger) (*Box, error) {
	b := &Box{cfg: cfg, log: log, started: time.Now()}
	b.http = &http.Client{Timeout: 0} // per-request contexts bound each transfer
	var err error
	if b.lock, err = lockDataDir(cfg.Box.DataDir); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			b.Close()
		}
	}()
	if b.store, err = store.Open(ctx, dbPath(cfg.Box.DataDir), log.With("component", "store")); err != nil {
		return nil, err
	}
	if err := b.newUpdate(ctx); err != nil {
		return nil, err
	}
	if err := b.store.Migrate(ctx, "appliance", applianceMigrations); err != nil {
		return nil, err
	}
	if err := b.store.Migrate(ctx, "content", convertMigrations(content.Migrations())); err != nil {
		return nil, err
	}
	ccfg := content.Config{
		Dir:          contentDir(cfg.Box.DataDir),
		MaxPackBytes: mustSize(cfg.Content.MaxPackSize),
		MaxFileBytes: mustSize(cfg.Content.MaxFileSize),
		MinFreeBytes: mustSize(cfg.Content.MinFree),
		ScrubRate:    mustSize(cfg.Content.ScrubRate),
	}.WithDefaults()
	if cfg.Content.MaxStoreSize != "" {
		ccfg.MaxBytes = mustSize(cfg.Content.MaxStoreSize)
	}
	if b.content, err = content.New(ccfg, b.store.DB(), b.http, log.With("component", "content")); err != nil {
		return nil, err
	}
	ok = true
	return b, nil
}

// applianceMigrations is the schema of the appliance's own small tables.
var applianceMigrations = []store.Migration{
	{Version: 1, Name: "settings", SQL: `CREATE TABLE settings (
		key   TEXT PRIMARY KEY,
		value TEXT NOT NULL
	) STRICT`},
}

// convertMigrations turns a component's migrations into the store's. Each
// component declares its own Migration type (it must not import the
// store); they all share the store's shape.
func convertMigrations[M ~struct {
	Version int
	Name    string
	SQL     string
}](ms []M) []store.Migration {
	out := make([]store.Migration, len(ms))
	for i, m := range ms {
		out[i] = store.Migration(m)
	}
	return out
}

// Close releases the database and the lock.
func (b *Box) Close() error {
	var errs []error
	if b.store != nil {
		errs = append(errs, b.store.Close())
	}
	if b.lock != nil {
		errs = append(errs, b.lock.Close())
	}
	return errors.Join(errs...)
}

// New opens the box for `preau run`: state, components and listeners. It
// is all or nothing: on error nothing stays open.
func New(ctx context.Context, cfg Config, opts Options, log *slog.Logger) (*Box, error) {
	b, err := newBox(ctx, cfg, opts, log)
	if !errors.Is(err, store.ErrNewerSchema) || cfg.Update.Boot == "" {
		return b, err
	}
	// A newer version tried on the other slot migrated the database and
	// did not stay: back to the copy taken before its trial, keeping the
	// update engine's record of why.
	trial, rerr := restoreBeforeTrial(dbPath(cfg.Box.DataDir), log)
	if rerr != nil || trial == "" {
		return nil, errors.Join(err, rerr)
	}
	if b, err = newBox(ctx, cfg, opts, log); err != nil {
		return nil, err
	}
	if err := firmware.CarryOver(ctx, b.store.DB(), trial); err != nil {
		log.Warn("update: carry the trial's record over", "err", err)
	}
	return b, nil
}

func newBox(ctx context.Context, cfg Config, opts Options, log *slog.Logger) (*Box, error) {
	// Every component's warnings and errors also go to the console's
	// dashboard.
	rawLog, errs := log, newRecentErrors()
	log = slog.New(errs.handler(log.Handler()))
	b, err := open(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	b.opts, b.rawLog, b.errs = opts, rawLog, errs
	ok := false
	defer func() {
		if !ok {
			for _, l := range append(b.listeners, b.proxyListeners...) {
				l.Close()
			}
			if b.control != nil {
				b.control.Close()
			}
			b.Close()
		}
	}()
	interval := mustDuration(cfg.Uplink.Interval)
	if b.uplink, err = uplink.New(uplink.Config{
		ProbeURLs: cfg.Uplink.ProbeURLs,
		Interval:  interval,
		// Offline retries start at 15 s, or at the interval when shorter.
		MinRetry: min(15*time.Second, interval),
	}, b.http, log.With("component", "uplink")); err != nil {
		return nil, err
	}
	pcfg := portal.Config{SchoolName: cfg.Box.Name, DefaultLanguage: cfg.Portal.Language, ContentPrefix: "/c/",
		HandInURL: "/devoirs/", Cards: portalCards{b}}.WithDefaults()
	if b.portal, err = portal.New(pcfg, portalCatalog{b.content}, b.uplink, log.With("component", "portal")); err != nil {
		return nil, err
	}
	b.metrics = b.newMetrics()
	if err := b.newHandIn(ctx); err != nil {
		return nil, err
	}
	if err := b.newCatalog(ctx); err != nil {
		return nil, err
	}
	if err := b.newTechnician(ctx); err != nil {
		return nil, err
	}

	if opts.Demo {
		if err := b.importDemo(ctx); err != nil {
			return nil, err
		}
	}
	// Bind every socket before READY=1: socket activation first, then the
	// configured addresses.
	switch {
	case len(opts.Listeners) > 0:
		b.listeners = opts.Listeners
	default:
		ls, err := activatedListeners()
		if err != nil {
			return nil, err
		}
		if ls == nil {
			for _, addr := range cfg.HTTP.Listen {
				l, err := net.Listen("tcp", addr)
				if err != nil {
					return nil, fmt.Errorf("listen on %s: %w", addr, err)
				}
				ls = append(ls, l)
			}
		}
		b.listeners = ls
	}
	if err := b.listenProxy(); err != nil {
		return nil, err
	}
	if err := b.newLAN(ctx); err != nil {
		return nil, err
	}
	b.registerLANMetrics(b.metrics)
	if b.control, err = listenControl(controlPath(cfg.Box.DataDir)); err != nil {
		b.lan.close()
		return nil, err
	}
	ok = true
	return b, nil
}

// Addrs are the bound LAN addresses.
func (b *Box) Addrs() []net.Addr {
	var out []net.Addr
	for _, l := range b.listeners {
		out = append(out, l.Addr())
	}
	return out
}

// importDemo builds the demo pack inside the data folder and imports it,
// once: a later start finds it already present and does nothing.
func (b *Box) importDemo(ctx context.Context) error {
	dir := filepath.Join(b.cfg.Box.DataDir, "demo-pack")
	if err := demo.Write(dir); err != nil {
		return fmt.Errorf("build demo pack: %w", err)
	}
	info, err := b.content.Import(ctx, dir, nil)
	if err != nil {
		return fmt.Errorf("import demo pack: %w", err)
	}
	if !info.AlreadyPresent {
		b.log.Info("demo pack imported", "pack", info.ID, "items", info.Items)
	}
	return nil
}

// Serve runs the box until ctx ends, then shuts down gracefully.
func (b *Box) Serve(ctx context.Context) error {
	defer b.Close()
	b.running = ctx
	shutdown := mustDuration(b.cfg.HTTP.ShutdownTimeout)
	handler := b.lanHandler()
	var parts []part
	for _, l := range b.listeners {
		parts = append(parts, serveHTTP("http "+l.Addr().String(), b.newHTTPServer(handler), l, shutdown))
	}
	parts = append(parts, b.lan.parts(b, shutdown)...)
	parts = append(parts, b.handin.parts()...)
	parts = append(parts, b.catalogParts()...)
	parts = append(parts, b.proxyParts(shutdown)...)
	parts = append(parts, b.updateParts()...)
	parts = append(parts, b.tech.parts(b)...)
	csrv := &http.Server{Handler: b.controlHandler(), ReadHeaderTimeout: 10 * time.Second, ConnContext: controlPeer}
	parts = append(parts,
		serveHTTP("control", csrv, b.control, shutdown),
		part{name: "uplink", serve: b.uplink.Serve},
		b.maintenance(),
		watchdog(b.log, b.healthy),
	)
	b.ready.Store(true)
	notify(b.log, daemon.SdNotifyReady)
	b.log.Info("préau prêt", "version", version, "addrs", fmt.Sprint(b.Addrs()), "data", b.cfg.Box.DataDir)
	if code, _, err := b.tech.setup(ctx); err == nil && code != "" {
		b.logSetupCode(code)
	}
	err := supervise(ctx, b.log, parts)
	notify(b.log, daemon.SdNotifyStopping)
	b.log.Info("préau arrêté")
	return err
}

// serveHTTP serves on l until ctx ends, then lets in-flight requests
// finish within grace before closing what remains.
func serveHTTP(name string, srv *http.Server, l net.Listener, grace time.Duration) part {
	return part{name: name, critical: true, serve: func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(l) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		<-errc
		return nil
	}}
}

// healthy is the watchdog's and /healthz's check: the database answers.
func (b *Box) healthy(ctx context.Context) error {
	return b.store.Ping(ctx)
}
