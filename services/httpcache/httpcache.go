// Package httpcache owns the box's shared HTTP cache (RFC 9111): every
// upstream fetch of the other components can go through it (Transport),
// and the LAN uses it as a forward proxy for plain HTTP with CONNECT
// tunnels for HTTPS, never decrypted (Proxy), and as a reverse-proxy
// mirror of configured origins (Mirror, which also honours
// CDN-Cache-Control, RFC 9213). It validates with ETag and Last-Modified,
// freshens stored headers on 304, honours Vary, the response and request
// Cache-Control directives, Age, invalidation after unsafe methods,
// stale-while-revalidate and stale-if-error (RFC 5861), serves stale
// content when the uplink is down (unless a directive forbids it), and
// serves byte ranges from complete stored responses.
//
// Bodies are files under Config.Dir written atomically; metadata lives in
// SQLite (tables httpcache_*); an in-memory index answers hits without a
// query. Only package appliance constructs a Cache; other components reach
// it through the small interfaces they declare themselves.
package httpcache

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures the Cache. Zero values take the defaults of
// WithDefaults.
type Config struct {
	// Dir holds the stored bodies (Dir/bodies) and bodies being written
	// (Dir/tmp, same filesystem so that rename is atomic).
	Dir string
	// MaxBytes is the quota of stored bodies; least recently used entries
	// are evicted beyond it. Default 2 GiB.
	MaxBytes int64
	// MaxObjectBytes is the largest body stored; bigger ones are streamed
	// through without being stored. Default 1 GiB.
	MaxObjectBytes int64
	// MaxEntries bounds the number of stored responses (each costs about a
	// kilobyte of memory in the index). Default 200000.
	MaxEntries int
	// MemoryBytes bounds the small bodies (up to 64 KiB each) also kept
	// in memory, so that hits on small objects need no file access.
	// Default 32 MiB.
	MemoryBytes int64
	// MaxHeaderBytes bounds the header block of an upstream response;
	// bigger ones are refused with 502. Default 64 KiB.
	MaxHeaderBytes int
	// HeaderTimeout bounds the wait for upstream response headers.
	// Default 30 s.
	HeaderTimeout time.Duration
	// IdleTimeout aborts an upstream body that sends nothing for that
	// long. Default 60 s.
	IdleTimeout time.Duration
	// MaxHeuristic caps heuristic freshness (a tenth of the time since
	// Last-Modified, RFC 9111 §4.2.2). Default 24 h.
	MaxHeuristic time.Duration
	// Name identifies this cache in Cache-Status (RFC 9211) and Via.
	// Default "preau".
	Name string
	// ConnectPorts are the ports the forward proxy opens CONNECT tunnels
	// to. Default 443.
	ConnectPorts []int
	// DenyHosts are host names or addresses the forward proxy refuses to
	// reach (the box's own names and addresses); loopback and unspecified
	// addresses and "localhost" are always refused.
	DenyHosts []string

	// Offline, when set, reports that the uplink is down (appliance
	// passes its uplink monitor): stale responses are then served at once
	// instead of after a failed connection. Nil means unknown.
	Offline func() bool `toml:"-" json:"-"`
	// Now is the clock; nil means time.Now.
	Now func() time.Time `toml:"-" json:"-"`
}

// Defaults of Config.
const (
	DefaultMaxBytes       = 2 << 30
	DefaultMaxObjectBytes = 1 << 30
	DefaultMaxEntries     = 200000
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMemoryBytes    = 32 << 20
	DefaultHeaderTimeout  = 30 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	DefaultMaxHeuristic   = 24 * time.Hour
	DefaultName           = "preau"
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxObjectBytes == 0 {
		c.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MemoryBytes == 0 {
		c.MemoryBytes = DefaultMemoryBytes
	}
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = DefaultHeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxHeuristic == 0 {
		c.MaxHeuristic = DefaultMaxHeuristic
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.ConnectPorts == nil {
		c.ConnectPorts = []int{443}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("httpcache config: dir is empty")
	case !filepath.IsAbs(c.Dir):
		return fmt.Errorf("httpcache config: dir %q is not absolute", c.Dir)
	case c.MaxBytes <= 0:
		return errors.New("httpcache config: max bytes must be positive")
	case c.MaxObjectBytes <= 0:
		return errors.New("httpcache config: max object bytes must be positive")
	case c.MaxEntries <= 0:
		return errors.New("httpcache config: max entries must be positive")
	case c.MemoryBytes < 0:
		return errors.New("httpcache config: memory bytes is negative")
	case c.MaxHeaderBytes < 1024:
		return errors.New("httpcache config: max header bytes must be at least 1024")
	case c.HeaderTimeout <= 0:
		return errors.New("httpcache config: header timeout must be positive")
	case c.IdleTimeout <= 0:
		return errors.New("httpcache config: idle timeout must be positive")
	case c.MaxHeuristic < 0:
		return errors.New("httpcache config: max heuristic is negative")
	case !validFieldName(c.Name):
		return fmt.Errorf("httpcache config: name %q is not a token", c.Name)
	}
	for _, p := range c.ConnectPorts {
		if p <= 0 || p > 65535 {
			return fmt.Errorf("httpcache config: connect port %d out of range", p)
		}
	}
	return nil
}

// Doer sends an HTTP request upstream. It must not follow redirects nor
// add transparent compression (an *http.Client with CheckRedirect returning
// http.ErrUseLastResponse and a Transport with DisableCompression does
// this; see UpstreamTransport).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Status summarises the cache.
type Status struct {
	Ready         bool
	Entries       int
	Bytes         int64
	QuotaBytes    int64
	Hits          int64 // requests answered from the store without contacting upstream
	Misses        int64 // requests forwarded because nothing usable was stored
	Revalidations int64 // conditional requests sent for stale or no-cache entries
	NotModified   int64 // revalidations answered 304
	StaleServed   int64 // stale responses served (offline, stale-if-error, stale-while-revalidate, max-stale)
	Stored        int64 // responses written to the store
	Evictions     int64
	Invalidations int64 // entries removed after unsafe methods
	Bypassed      int64 // requests not eligible for caching (method, no-store)
	HitBytes      int64 // body bytes served from the store
}

// Cache is the HTTP cache.
type Cache struct {
	cfg     Config
	db      *sql.DB
	log     *slog.Logger
	now     func() time.Time
	store   *store
	via     string // our Via pseudonym, unique per process
	ready   chan struct{}
	isReady atomic.Bool

	// allowLoopback lets the proxy reach loopback addresses: tests only,
	// their servers listen on 127.0.0.1.
	allowLoopback bool

	inflightMu sync.Mutex
	inflight   map[string][]*inflight // fills other requests can share, by primary key

	revalMu  sync.Mutex
	revaling map[string]bool // background revalidations in flight

	hits, misses, revals, notMod, staleServed, stored, invalidated, bypassed, hitBytes atomic.Int64
}

// New validates cfg and returns a Cache. It does no I/O: Serve loads the
// store; until then requests pass through uncached.
func New(cfg Config, db *sql.DB, log *slog.Logger) (*Cache, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil {
		return nil, errors.New("httpcache: nil database")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var b [4]byte
	rand.Read(b[:])
	c := &Cache{
		cfg:      cfg,
		db:       db,
		log:      log,
		now:      cfg.Now,
		via:      cfg.Name + "-" + hex.EncodeToString(b[:]),
		ready:    make(chan struct{}),
		revaling: map[string]bool{},
		inflight: map[string][]*inflight{},
	}
	c.store = newStore(cfg, db, log)
	return c, nil
}

// Ready is closed once Serve has loaded the store.
func (c *Cache) Ready() <-chan struct{} { return c.ready }

// flushEvery is how often last-use times are persisted.
const flushEvery = 30 * time.Second

// Serve loads the store (dropping broken entries and orphan files), then
// persists last-use times periodically until ctx ends.
func (c *Cache) Serve(ctx context.Context) error {
	if err := c.store.load(ctx); err != nil {
		return err
	}
	c.store.evictIfNeeded(ctx)
	if c.isReady.CompareAndSwap(false, true) {
		close(c.ready)
	}
	n, b := c.store.stats()
	c.log.Info("httpcache ready", "entries", n, "bytes", b, "quota", c.cfg.MaxBytes)
	since := c.now().UnixMilli()
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := c.store.flushUsed(fctx, since)
			cancel()
			if err != nil {
				c.log.Warn("httpcache: save last use", "err", err)
			}
			return nil
		case <-t.C:
			mark := c.now().UnixMilli()
			if err := c.store.flushUsed(ctx, since); err != nil {
				c.log.Warn("httpcache: save last use", "err", err)
				continue
			}
			since = mark
		}
	}
}

// Status returns counters and the store's size.
func (c *Cache) Status(ctx context.Context) Status {
	n, b := c.store.stats()
	ev := c.store.evictions.Load()
	return Status{
		Ready:         c.isReady.Load(),
		Entries:       n,
		Bytes:         b,
		QuotaBytes:    c.cfg.MaxBytes,
		Hits:          c.hits.Load(),
		Misses:        c.misses.Load(),
		Revalidations: c.revals.Load(),
		NotModified:   c.notMod.Load(),
		StaleServed:   c.staleServed.Load(),
		Stored:        c.stored.Load(),
		Evictions:     ev,
		Invalidations: c.invalidated.Load(),
		Bypassed:      c.bypassed.Load(),
		HitBytes:      c.hitBytes.Load(),
	}
}

// Invalidate removes every stored response for the absolute URI rawURL.
func (c *Cache) Invalidate(ctx context.Context, rawURL string) error {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("httpcache invalidate: %q is not an absolute URL", rawURL)
	}
	n, err := c.store.remove(ctx, primaryKey(u))
	c.invalidated.Add(int64(n))
	return err
}
