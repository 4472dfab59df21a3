// Package catalog owns the school's catalogue sources and the prefetch of
// their content: the GAR resource list (cards, classification and
// thumbnails kept offline, a link to the publisher marked "connexion
// nécessaire"), PeerTube channels, playlists and videos (apps.education
// "Tube"), Nextcloud public shares ("Nuage") read through WebDAV, and
// content packs by URL.
//
// Each source is a small adapter that lists what it offers and turns it
// into items to download: one content pack per PeerTube video, one pack per
// share, a pack by URL, a blob per GAR thumbnail. Items are a persisted
// state machine (queued → downloading → done | failed) in SQLite, so that
// progress survives restarts and the portal and the CLI show it honestly
// ("disponible hors ligne", "connexion nécessaire", "en cours de
// téléchargement 43 %"). Serve refreshes each source on its own schedule
// and runs the download queue (Config.Workers at a time), waiting on the
// WAN budget before each download and retrying with jittered backoff.
//
// The catalogue never intercepts TLS: GAR resources are served by their
// publishers behind the GAR's single sign-on, so the box keeps only the
// cards; a publisher's downloadable offline package is added explicitly as
// a pack source linked to its card (the GAR list has no field for it).
//
// Only package appliance imports this package. It passes the content store
// through Store (the bytes, the packs and their serving are the store's),
// the WAN scheduler as Budget and the scheduler's paced HTTP client as
// Doer. Package catalog/catalogtest holds fixture servers for tests.
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Store is what the catalogue needs of the content store.
type Store interface {
	// Fetch downloads one file into a blob, resumably, checks its size (and
	// hash when given) and pins it under f.Owner.
	Fetch(ctx context.Context, f Fetch) (Fetched, error)
	// CommitPack publishes a pack (format v1 manifest) whose files are all
	// stored blobs; source is the catalogue source id, so the store may
	// evict the pack (the catalogue fetches it again).
	CommitPack(ctx context.Context, manifest []byte, source string) error
	// RemovePack removes a pack; a pack that does not exist answers an error
	// wrapping ErrNoPack (or nil).
	RemovePack(ctx context.Context, id string) error
	// ImportURL imports a content pack from an http(s) URL.
	ImportURL(ctx context.Context, url string, progress func(done, total int64)) (packID string, err error)
	// OpenBlob opens a stored blob by SHA-256.
	OpenBlob(hash string) (*os.File, error)
	// Unpin drops the pins of owner (blobs no pack uses are removed).
	Unpin(ctx context.Context, owner string) error
}

// Fetch asks the store for one file.
type Fetch struct {
	Owner    string // pin owner, kept after success
	URL      string
	Size     int64  // exact size, -1 when unknown
	SHA256   string // expected hash, "" when unknown
	Progress func(done, total int64)
}

// Fetched is the blob a Fetch stored.
type Fetched struct {
	SHA256  string
	Size    int64
	Resumed int64 // bytes kept from an earlier partial download
}

// Budget blocks until prefetch may use the uplink (the WAN scheduler).
type Budget interface {
	Wait(ctx context.Context) error
}

// Doer sends an HTTP request: the WAN scheduler's paced client, wrapped by
// the HTTP cache. It carries metadata requests (API pages, listings).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

var (
	// ErrStoreFull is what the Store adapter wraps when the content store
	// is full: downloads stop until the next refresh.
	ErrStoreFull = errors.New("catalog: content store full")
	// ErrRefused is what the Store adapter wraps when the content store
	// refuses what was downloaded (wrong hash or size, a hostile pack): a
	// retry waits for the usual backoff, however many bytes came.
	ErrRefused = errors.New("catalog: download refused by the content store")
	// ErrNoPack is what the Store adapter wraps when RemovePack finds no
	// such pack.
	ErrNoPack = errors.New("catalog: no such pack")
	// ErrUnknownSource: no source has this id.
	ErrUnknownSource = errors.New("catalog: unknown source")
)

// Config configures the catalogue. Zero fields take the defaults of
// WithDefaults.
type Config struct {
	// Workers is how many downloads run at once. Default 2.
	Workers int
	// Refresh is the interval between two refreshes of a source that does
	// not set its own. Default 24 h.
	Refresh time.Duration
	// MinRefresh is the shortest interval a source may ask. Default 15 min.
	MinRefresh time.Duration
	// RetryMin and RetryMax bound the jittered exponential backoff of a
	// failed download or refresh. Defaults 1 min and 6 h.
	RetryMin, RetryMax time.Duration
	// MaxAttempts is how many times an item is tried before it waits for
	// the next refresh of its source. Default 8.
	MaxAttempts int
	// TubeHeight is the target height of PeerTube files (the largest file
	// at most this high is taken, else the smallest). Default 480.
	TubeHeight int
	// MaxVideos caps the videos one PeerTube source lists. Default 500.
	MaxVideos int
	// MaxShareFiles caps the files of one Nextcloud share. Default 5000.
	MaxShareFiles int
	// MaxGARResources caps the resources of a GAR list. Default 10000.
	MaxGARResources int
	// MaxMetadataBytes bounds one metadata answer (an API page, a GAR list,
	// a folder listing). Default 16 MiB.
	MaxMetadataBytes int64
	// RequestTimeout bounds one metadata request. Default 60 s.
	RequestTimeout time.Duration
	// Language of packs whose source says none (BCP 47). Default "fr".
	Language string
	// ThumbnailPrefix is the URL path where appliance mounts
	// ThumbnailHandler; cards name thumbnails under it. Default
	// "/catalogue/vignettes/".
	ThumbnailPrefix string
}

// Defaults of Config.
const (
	DefaultWorkers          = 2
	DefaultRefresh          = 24 * time.Hour
	DefaultMinRefresh       = 15 * time.Minute
	DefaultRetryMin         = time.Minute
	DefaultRetryMax         = 6 * time.Hour
	DefaultMaxAttempts      = 8
	DefaultTubeHeight       = 480
	DefaultMaxVideos        = 500
	DefaultMaxShareFiles    = 5000
	DefaultMaxGARResources  = 10000
	DefaultMaxMetadataBytes = 16 << 20
	DefaultRequestTimeout   = 60 * time.Second
	DefaultLanguage         = "fr"
	DefaultThumbnailPrefix  = "/catalogue/vignettes/"
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	set := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	set(&c.Workers, DefaultWorkers)
	set(&c.MaxAttempts, DefaultMaxAttempts)
	set(&c.TubeHeight, DefaultTubeHeight)
	set(&c.MaxVideos, DefaultMaxVideos)
	set(&c.MaxShareFiles, DefaultMaxShareFiles)
	set(&c.MaxGARResources, DefaultMaxGARResources)
	setD(&c.Refresh, DefaultRefresh)
	setD(&c.MinRefresh, DefaultMinRefresh)
	setD(&c.RetryMin, DefaultRetryMin)
	setD(&c.RetryMax, DefaultRetryMax)
	setD(&c.RequestTimeout, DefaultRequestTimeout)
	if c.MaxMetadataBytes == 0 {
		c.MaxMetadataBytes = DefaultMaxMetadataBytes
	}
	if c.Language == "" {
		c.Language = DefaultLanguage
	}
	if c.ThumbnailPrefix == "" {
		c.ThumbnailPrefix = DefaultThumbnailPrefix
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Workers < 1 || c.Workers > 8:
		return fmt.Errorf("catalog config: workers %d: want 1 to 8", c.Workers)
	case c.MinRefresh <= 0:
		return errors.New("catalog config: min refresh must be positive")
	case c.Refresh < c.MinRefresh:
		return fmt.Errorf("catalog config: refresh %v is shorter than min refresh %v", c.Refresh, c.MinRefresh)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return errors.New("catalog config: want 0 < retry min <= retry max")
	case c.MaxAttempts < 1:
		return errors.New("catalog config: max attempts must be at least 1")
	case c.TubeHeight < 144 || c.TubeHeight > 2160:
		return fmt.Errorf("catalog config: tube height %d: want 144 to 2160", c.TubeHeight)
	case c.MaxVideos < 1, c.MaxShareFiles < 1, c.MaxGARResources < 1:
		return errors.New("catalog config: max videos, max share files and max gar resources must be positive")
	case c.MaxMetadataBytes < 1<<16:
		return errors.New("catalog config: max metadata bytes must be at least 64 KiB")
	case c.RequestTimeout <= 0:
		return errors.New("catalog config: request timeout must be positive")
	case !langPattern.MatchString(c.Language):
		return fmt.Errorf("catalog config: language %q is not a BCP 47 tag", c.Language)
	case !strings.HasPrefix(c.ThumbnailPrefix, "/") || !strings.HasSuffix(c.ThumbnailPrefix, "/"):
		return fmt.Errorf("catalog config: thumbnail prefix %q must start and end with /", c.ThumbnailPrefix)
	}
	return nil
}

// Catalog is the catalogue: sources, their items and the download queue.
type Catalog struct {
	cfg    Config
	db     *sql.DB
	store  Store
	budget Budget
	http   Doer
	now    func() time.Time
	log    *slog.Logger

	wakeRefresh chan struct{} // a source was added or changed
	wakeQueue   chan struct{} // an item was queued or a download ended

	// refreshing serialises refreshes of one source.
	refreshMu  sync.Mutex
	refreshing map[string]*sync.Mutex

	mu       sync.Mutex
	flight   map[itemKey]*flight // downloads under way
	removing map[string]bool     // sources being removed: no new download
}

type itemKey struct{ source, key string }

// flight is one download under way.
type flight struct {
	ctx         context.Context
	cancel      context.CancelFunc
	done        chan struct{}
	bytes       int64 // bytes of the item stored so far
	total       int64
	lastPersist time.Time
}

// New validates cfg and builds the catalogue; it does no I/O. budget may be
// nil (no waiting: tests).
func New(cfg Config, db *sql.DB, store Store, budget Budget, http Doer, now func() time.Time, log *slog.Logger) (*Catalog, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case db == nil:
		return nil, errors.New("new catalog: no database")
	case store == nil:
		return nil, errors.New("new catalog: no content store")
	case http == nil:
		return nil, errors.New("new catalog: no http client")
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Catalog{
		cfg: cfg, db: db, store: store, budget: budget, http: http, now: now, log: log,
		wakeRefresh: make(chan struct{}, 1),
		wakeQueue:   make(chan struct{}, 1),
		refreshing:  map[string]*sync.Mutex{},
		flight:      map[itemKey]*flight{},
		removing:    map[string]bool{},
	}, nil
}

// poke wakes Serve's loops.
func (c *Catalog) poke() {
	for _, ch := range []chan struct{}{c.wakeRefresh, c.wakeQueue} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (c *Catalog) nowMs() int64 { return c.now().UnixMilli() }

// Serve runs the refresh schedule and the download queue until ctx ends. It
// returns nil when ctx ends, an error when the database fails.
func (c *Catalog) Serve(ctx context.Context) error {
	if err := c.recoverInterrupted(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); errc <- c.refreshLoop(ctx) }()
	go func() { defer wg.Done(); errc <- c.downloadLoop(ctx) }()
	err := <-errc
	cancel()
	wg.Wait()
	if ctx.Err() != nil && err != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// recoverInterrupted puts the items a previous run was downloading back in
// the queue, due now: the store resumes their files from the last verified
// byte.
func (c *Catalog) recoverInterrupted(ctx context.Context) error {
	now := c.nowMs()
	res, err := c.db.ExecContext(ctx, `UPDATE catalog_items SET state = 'queued', next_attempt = ?, updated_at = ?
		WHERE state = 'downloading'`, now, now)
	if err != nil {
		return fmt.Errorf("catalog recover: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		c.log.Info("catalog: downloads interrupted by the last stop resume", "items", n)
	}
	return nil
}
