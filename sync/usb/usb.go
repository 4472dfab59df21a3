// Package usb carries the outbox on a USB key when a school has had no
// usable link for weeks (SPEC S7, sneakernet).
//
// Export writes pending outbox items as a self-verifying bundle: a folder
// preau-export-<box>-<time>/ holding files/<sha256> and, written last,
// manifest.json (see docs/usb-bundle.md). Verify re-hashes every byte of a
// bundle; Deliver hands each item to a Sink (a WebDAV connector at a school
// with connectivity, or a folder) once the whole bundle verified, skipping
// items already delivered. Exactly once holds twice over: a Seen record
// (this package offers one in SQLite) skips keys delivered before, and the
// destination is asked before each send whether the deterministic remote
// name already holds the file, so a different machine without the Seen
// record cannot duplicate either.
//
// Hostile bundles (traversal, wrong hashes, truncated or missing files,
// symbolic links, special files, oversized or malformed manifests) are
// refused with a *BundleError in French and English, and nothing is
// delivered from a bundle that fails verification.
//
// Imported by appliance only.
package usb

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"
)

// Config of the Courier. Zero values take the defaults of WithDefaults.
type Config struct {
	// BoxID names this box in the bundles it writes (folder name and
	// manifest); required, at most 128 bytes of printable text.
	BoxID string
	// MaxManifestBytes bounds manifest.json. Default 32 MiB.
	MaxManifestBytes int64
	// MaxItems bounds the items of one bundle. Default 100000.
	MaxItems int
	// MaxFileBytes bounds one file. Default 16 GiB.
	MaxFileBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time `toml:"-" json:"-"`
}

// Defaults of Config.
const (
	DefaultMaxManifestBytes = 32 << 20
	DefaultMaxItems         = 100000
	DefaultMaxFileBytes     = 16 << 30
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxManifestBytes == 0 {
		c.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if c.MaxItems == 0 {
		c.MaxItems = DefaultMaxItems
	}
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.BoxID == "":
		return errors.New("usb config: box id is empty")
	case len(c.BoxID) > maxBoxLen || !utf8.ValidString(c.BoxID) || hasControl(c.BoxID):
		return fmt.Errorf("usb config: box id %q: want at most %d bytes of printable text", c.BoxID, maxBoxLen)
	case c.MaxManifestBytes < 0:
		return errors.New("usb config: max manifest bytes is negative")
	case c.MaxItems < 0:
		return errors.New("usb config: max items is negative")
	case c.MaxFileBytes < 0:
		return errors.New("usb config: max file bytes is negative")
	}
	return nil
}

// Item is one outbox item carried by a bundle. Key is the outbox's
// idempotency key; RemotePath is the deterministic, relative name of the
// file at Destination (an opaque id that appliance maps to a connector).
type Item struct {
	Key         string `json:"key"`
	Destination string `json:"destination"`
	RemotePath  string `json:"remote_path"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	MediaType   string `json:"media_type"`
}

// Manifest is the content of a bundle's manifest.json.
type Manifest struct {
	Format  int       `json:"format"`
	Box     string    `json:"box"`
	Created time.Time `json:"created"`
	Items   []Item    `json:"items"`
}

// Bundle describes a bundle Export wrote.
type Bundle struct {
	Dir      string // the bundle's folder
	Manifest Manifest
	Files    int   // distinct files (items sharing content share a file)
	Bytes    int64 // their total size
}

// Courier exports, verifies and delivers bundles.
type Courier struct {
	cfg Config
	log *slog.Logger
}

// New validates cfg; it does no I/O.
func New(cfg Config, log *slog.Logger) (*Courier, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Courier{cfg: cfg, log: log}, nil
}
