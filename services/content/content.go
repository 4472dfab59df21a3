// Package content owns the box's content store: SHA-256-addressed blobs on
// disk, the metadata of imported content packs in SQLite, the import of packs
// (folder, tar, tar.zst, tar.gz or http(s) URL), the resumable fetch of
// single files for the catalogue and the packs made of them, the storage
// budget (quota, least-recently-used eviction of catalogue packs, teachers'
// pins), the scrub that finds damaged blobs, and the HTTP serving of pack
// files under /c/{pack}/{path}.
//
// Only package appliance constructs a Store; other components (the portal)
// reach it through the small interfaces they declare themselves. The pack
// format is described in docs/content-pack.md.
package content

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures the Store. Zero values take the defaults of WithDefaults.
type Config struct {
	// Dir is the root of the blob store: blobs live in Dir/blobs/ab/<sha256>,
	// temporary files and partial downloads in Dir/tmp (same filesystem, so
	// that rename is atomic).
	Dir              string
	MaxPackBytes     int64 // default 64 GiB
	MaxFileBytes     int64 // default 16 GiB
	MaxFiles         int   // default 100000
	MaxManifestBytes int64 // default 8 MiB

	// MaxBytes is the store's quota: blobs, partial downloads and
	// quarantined blobs together. 0 means 90 % of the size of Dir's
	// filesystem (measured when needed); negative means no quota. FetchBlob
	// evicts catalogue packs, then refuses, rather than go over it.
	MaxBytes int64
	// MinFreeBytes is what FetchBlob leaves free on Dir's filesystem, for
	// the database, logs and hand-ins. Default 512 MiB; negative means none.
	MinFreeBytes int64
	// ScrubRate bounds how fast Scrub reads blobs, in bytes per second,
	// when its caller gives no rate. Default 8 MiB/s.
	ScrubRate int64

	// Now is the clock; nil means time.Now. It is not read from a file.
	Now func() time.Time `toml:"-" json:"-"`
}

// Defaults of Config.
const (
	DefaultMaxPackBytes     = 64 << 30
	DefaultMaxFileBytes     = 16 << 30
	DefaultMaxFiles         = 100000
	DefaultMaxManifestBytes = 8 << 20
	DefaultMinFreeBytes     = 512 << 20
	DefaultScrubRate        = 8 << 20
	// defaultQuotaPercent of the filesystem is the quota when MaxBytes is 0.
	defaultQuotaPercent = 90
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxPackBytes == 0 {
		c.MaxPackBytes = DefaultMaxPackBytes
	}
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.MaxFiles == 0 {
		c.MaxFiles = DefaultMaxFiles
	}
	if c.MaxManifestBytes == 0 {
		c.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
	if c.ScrubRate == 0 {
		c.ScrubRate = DefaultScrubRate
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
		return errors.New("content config: dir is empty")
	case !filepath.IsAbs(c.Dir):
		return fmt.Errorf("content config: dir %q is not absolute", c.Dir)
	case c.MaxPackBytes < 0:
		return errors.New("content config: max pack bytes is negative")
	case c.MaxFileBytes < 0:
		return errors.New("content config: max file bytes is negative")
	case c.MaxFiles < 0:
		return errors.New("content config: max files is negative")
	case c.MaxManifestBytes < 0:
		return errors.New("content config: max manifest bytes is negative")
	case c.ScrubRate < 0:
		return errors.New("content config: scrub rate is negative")
	}
	return nil
}

// Doer sends an HTTP request; the appliance passes the client of the WAN
// scheduler so that pack downloads share the uplink budget.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// ErrNotFound means no such pack, item or file.
var ErrNotFound = errors.New("content: not found")

// Progress reports an import's advance. Phases: "download" (URL sources),
// "verify" (a file whose blob is already stored: skipped), "copy" (a file
// being written to the blob store), "commit".
type Progress struct {
	Phase      string
	File       string
	BytesDone  int64
	BytesTotal int64
	FilesDone  int
	FilesTotal int
}

// PackInfo describes an imported pack.
type PackInfo struct {
	ID, Version, Title, Description, Publisher, Language string
	Items                                                int
	Bytes                                                int64 // sum of the sizes of the pack's distinct files
	ImportedAt                                           time.Time
	Source                                               string    // catalogue source that committed it; "" for a pack imported by hand (never evicted)
	LastAccess                                           time.Time // last time a file of it was served, as last flushed (at most a minute late), or its import
	PinnedUntil                                          time.Time // a teacher's pin protects it from eviction until then; zero when not pinned
	AlreadyPresent                                       bool      // Import: the same version and manifest were already there
	Copied                                               int       // Import: files whose blob this import wrote (the others were already stored)
}

// File is one file of a pack.
type File struct {
	Path      string
	Size      int64
	SHA256    string
	MediaType string
}

// Item is one resource of a pack.
type Item struct {
	Pack, ID, Title, Description, Kind, Language, Licence, Source string
	Authors, Levels, Subjects                                     []string
	Entry, Thumbnail                                              string
	Files                                                         []File
	Updated                                                       time.Time
}

// Stats summarises the store; blobs are those referenced by packs.
type Stats struct {
	Packs, Items, Blobs int
	BlobBytes           int64
}

// Store is the content store.
type Store struct {
	cfg  Config
	db   *sql.DB
	http Doer
	log  *slog.Logger
	now  func() time.Time

	blobsDir, tmpDir, quarantineDir string

	// importMu serialises imports, removals and GC: they all decide which
	// blobs are referenced.
	importMu sync.Mutex

	indexMu     sync.RWMutex
	index       map[string]map[string]servedFile // pack → path → file
	indexLoaded bool

	hot *hotCache

	// fetchMu guards fetching: the partial downloads in use, so that two
	// fetches of one URL take turns.
	fetchMu  sync.Mutex
	fetching map[string]chan struct{}

	// spaceMu serialises the decisions about room (and so evictions);
	// reservations are the bytes fetches in flight still expect to write.
	// It is taken before importMu, never while holding it.
	spaceMu      sync.Mutex
	reservations map[*reservation]struct{}

	// access holds when each pack was last served, in memory; Serve
	// writes it to SQLite every minute.
	accessMu sync.Mutex
	access   map[string]*packAccess

	// damaged is the set of quarantined blobs (copy on write, read without
	// a lock on the hot path); nil until loaded from SQLite.
	damagedMu sync.Mutex
	damaged   atomic.Pointer[map[string]bool]
}

// New validates cfg, creates the store's folders and removes the temporary
// files an interrupted import left (partial downloads are kept so that they
// resume).
func New(cfg Config, db *sql.DB, http Doer, log *slog.Logger) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil {
		return nil, errors.New("new content store: no database")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		hot:           newHotCache(hotMaxBytes),
		cfg:           cfg,
		db:            db,
		http:          http,
		log:           log,
		now:           cfg.Now,
		blobsDir:      filepath.Join(cfg.Dir, "blobs"),
		tmpDir:        filepath.Join(cfg.Dir, "tmp"),
		quarantineDir: filepath.Join(cfg.Dir, "quarantine"),
		fetching:      make(map[string]chan struct{}),
		reservations:  make(map[*reservation]struct{}),
		access:        make(map[string]*packAccess),
	}
	for _, d := range []string{s.blobsDir, s.tmpDir, s.quarantineDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("new content store: create %s: %w", d, err)
		}
	}
	entries, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return nil, fmt.Errorf("new content store: list %s: %w", s.tmpDir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), downloadPrefix) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.tmpDir, e.Name())); err != nil {
			return nil, fmt.Errorf("new content store: remove stale %s: %w", e.Name(), err)
		}
	}
	return s, nil
}
