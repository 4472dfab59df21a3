// Package webdav is the outbox's connector to a WebDAV folder: a Nextcloud
// account (apps.education "Nuage") with an app password, any WebDAV server
// (Apache mod_dav, rclone serve webdav), or a Nextcloud public share link
// (https://host/s/TOKEN, written through Nextcloud's public WebDAV,
// /public.php/dav/files/TOKEN/, Nextcloud ≥ 29, no stored credential).
//
// A Client satisfies sync/outbox's Connector. How it keeps "exactly once":
//
//   - Stat is a PROPFIND (Depth 0) of the final name: size, and the
//     SHA-256 from oc:checksums when the server keeps one.
//   - Upload never writes the final name directly. It PUTs the body to a
//     temporary name in the same folder, ".preau-<h>-<random>.upload"
//     (<h>: the first 16 hex digits of the SHA-256 of the final path; a
//     fresh name per attempt, so that a server still writing the body of
//     a cut attempt cannot mix it with the new one), checks its size (and
//     hash where the server offers one) with a PROPFIND, then MOVEs it to
//     the final name with "Overwrite: F". A 412 there means the final name
//     exists: the outbox then compares it and never overwrites it. Missing
//     folders are made with MKCOL. The suffix is not ".part": Nextcloud
//     hides and refuses names ending in .part.
//   - Large files (Config.ChunkThreshold, default 10 MiB) on a Nextcloud
//     account go through chunked upload v2: MKCOL
//     /remote.php/dav/uploads/USER/preau-<h>-<start>, PUT of numbered
//     chunks with Destination and OC-Total-Length, MOVE of .file to the
//     temporary name, then the same check and MOVE as above. The session
//     name holds its start time: a later attempt lists the uploads folder,
//     resumes a session younger than Config.ChunkLifetime (23 h; Nextcloud
//     drops sessions idle for 24 h) by listing its chunks and sending only
//     the missing ones, and deletes older ones to start cleanly. Servers
//     without chunking (any non-Nextcloud server) get a plain PUT.
//   - Cleanup deletes the temporary names and sessions of a final path.
//
// Nextcloud file-drop links cannot be read: PROPFIND answers 405, and a PUT
// onto an existing name is silently renamed ("name (2).pdf") instead of
// failing. On such a link, detected at the first Stat, Stat reports
// errors.ErrUnsupported and Upload PUTs the final name directly (with
// "If-None-Match: *", which servers that honour it turn into a 412).
// Nextcloud discards a PUT whose body did not arrive whole, so a cut or a
// kill during the body leaves nothing; the only window for a duplicate is a
// reply lost after the server stored the whole file (one round trip per
// item). The outbox then sends again: a visible "(2)" copy rather than a
// lost hand-in. Share links that allow reading (upload and edit) get the
// exactly-once path above.
//
// Bodies are streamed from the blob file (never buffered whole) and hashed
// on the way: a blob whose bytes do not match its SHA-256 is never moved
// into place. A request that moves no byte for Config.IdleTimeout is cut;
// connections are kept alive (bodies are drained); everything honours the
// context.
//
// Only appliance imports this package; it gives each Client the HTTP
// client of the WAN scheduler as Doer.
package webdav

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Doer sends one HTTP request; *http.Client satisfies it. Its transport
// should keep connections alive and set ExpectContinueTimeout, so that a
// refused PUT does not send its body.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Config of a Client. Zero values take the defaults of WithDefaults.
type Config struct {
	// URL is the destination folder: a WebDAV folder URL (for Nextcloud,
	// https://host/remote.php/dav/files/USER/Folder/) or a Nextcloud public
	// share link, https://host/s/TOKEN, used when User is empty.
	URL string
	// User and Password log in to a WebDAV folder (a Nextcloud app
	// password). For a share link, Password is the share's password, if
	// it has one.
	User     string
	Password string `json:"-"`
	// Nickname is sent as X-NC-Nickname to share links that ask who
	// uploads (Nextcloud file requests); files then land in a sub-folder
	// of that name.
	Nickname string
	// ChunkThreshold: files of at least this many bytes use Nextcloud's
	// chunked upload v2 when the URL is a Nextcloud account's. Default
	// 10 MiB; negative: never.
	ChunkThreshold int64
	// ChunkSize of chunked uploads. Default 10 MiB; Nextcloud wants 5 MiB
	// to 5 GiB (the last chunk may be smaller).
	ChunkSize int64
	// ChunkLifetime: a chunked upload session older than this is not
	// resumed but deleted and started again. Default 23 h (Nextcloud
	// drops sessions idle for 24 h).
	ChunkLifetime time.Duration
	// IdleTimeout cuts a request that moved no byte for this long (a
	// stalled link). Default 60 s.
	IdleTimeout time.Duration
	// ResponseTimeout is how long to wait for the answer once a request
	// is written to the socket (the rest of the body may still sit in the
	// kernel's buffers; Nextcloud may be assembling a large file).
	// Default 2 min.
	ResponseTimeout time.Duration

	// Bodies, when set, bounds the uploads whose bytes are on the wire at
	// once, across the clients that share it; the other requests of an
	// item (MKCOL, PROPFIND, MOVE: round trips, no load) do not count, so
	// that more items may be in progress than bodies sent. nil: no bound.
	Bodies Slots `toml:"-" json:"-"`

	// Now is the clock; nil means time.Now.
	Now func() time.Time `toml:"-" json:"-"`
}

// Slots is a counting semaphore shared by clients (Config.Bodies).
type Slots chan struct{}

// NewSlots returns n slots.
func NewSlots(n int) Slots { return make(Slots, max(n, 1)) }

// Defaults of Config.
const (
	DefaultChunkThreshold  = 10 << 20
	DefaultChunkSize       = 10 << 20
	DefaultChunkLifetime   = 23 * time.Hour
	DefaultIdleTimeout     = 60 * time.Second
	DefaultResponseTimeout = 2 * time.Minute

	minChunkSize = 5 << 20
	maxChunkSize = 5 << 30
	maxChunks    = 10000
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.ChunkThreshold == 0 {
		c.ChunkThreshold = DefaultChunkThreshold
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.ChunkLifetime == 0 {
		c.ChunkLifetime = DefaultChunkLifetime
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ResponseTimeout == 0 {
		c.ResponseTimeout = DefaultResponseTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks the configuration; errors name the field.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("webdav: URL %q: want an http(s) URL", c.URL)
	case u.User != nil:
		return errors.New("webdav: URL: put the login in User and Password, not in the URL")
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("webdav: URL %q: want no query nor fragment", c.URL)
	case c.User == "" && c.Password != "" && !isShareURL(u):
		return errors.New("webdav: Password without User")
	case c.ChunkSize < minChunkSize || c.ChunkSize > maxChunkSize:
		return fmt.Errorf("webdav: ChunkSize = %d, want 5 MiB to 5 GiB", c.ChunkSize)
	case c.ChunkLifetime <= 0:
		return fmt.Errorf("webdav: ChunkLifetime = %v, want > 0", c.ChunkLifetime)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("webdav: IdleTimeout = %v, want > 0", c.IdleTimeout)
	case c.ResponseTimeout <= 0:
		return fmt.Errorf("webdav: ResponseTimeout = %v, want > 0", c.ResponseTimeout)
	case c.Nickname != "" && (!utf8.ValidString(c.Nickname) || strings.ContainsAny(c.Nickname, "/\\\x00") || strings.HasPrefix(c.Nickname, ".")):
		return fmt.Errorf("webdav: Nickname %q: no slash, backslash or leading dot", c.Nickname)
	}
	return nil
}

// Client talks to one destination folder. It is safe for concurrent use.
type Client struct {
	cfg    Config
	http   Doer
	log    *slog.Logger
	base   *url.URL // the folder; Path ends with "/"
	public bool     // a share link
	// uploads is Nextcloud's chunked-upload home of the user, nil when
	// the URL is not a Nextcloud account's.
	uploads *url.URL

	dirs       sync.Map    // relative folder → struct{}: known to exist
	mkcol      sync.Mutex  // serialises the making of folders
	cleaning   sync.Mutex  // serialises clean-ups (see Cleanup)
	drop       atomic.Bool // the share link is a file drop: cannot be read
	noChunking atomic.Bool // the server has no chunked upload
}

var (
	shareRe  = regexp.MustCompile(`^(.*?)/(?:index\.php/)?s/([A-Za-z0-9_-]{1,64})/?$`)
	ncUserRe = regexp.MustCompile(`^(.*?)/remote\.php/dav/files/([^/]+)/`)
)

func isShareURL(u *url.URL) bool { return shareRe.MatchString(u.Path) }

// parseShareURL maps a Nextcloud share link to its public WebDAV folder.
func parseShareURL(u *url.URL) (*url.URL, bool) {
	m := shareRe.FindStringSubmatch(u.Path)
	if m == nil {
		return nil, false
	}
	dav := *u
	dav.Path = m[1] + "/public.php/dav/files/" + m[2] + "/"
	dav.RawPath = ""
	return &dav, true
}

// New builds a Client; it does no I/O.
func New(cfg Config, d Doer, log *slog.Logger) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d == nil {
		return nil, errors.New("webdav: HTTP client is nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, _ := url.Parse(cfg.URL)
	c := &Client{cfg: cfg, http: d, log: log}
	if dav, ok := parseShareURL(u); ok && cfg.User == "" {
		c.base, c.public = dav, true
	} else {
		b := *u
		if !strings.HasSuffix(b.Path, "/") {
			b.Path += "/"
		}
		b.RawPath = ""
		c.base = &b
		if m := ncUserRe.FindStringSubmatch(b.Path); m != nil && cfg.ChunkThreshold > 0 {
			up := b
			up.Path = m[1] + "/remote.php/dav/uploads/" + m[2] + "/"
			c.uploads = &up
		}
	}
	return c, nil
}

// urlOf returns the URL of rel (a '/'-separated path relative to the
// folder; "" is the folder itself), each segment escaped.
func (c *Client) urlOf(rel string) string {
	return joinURL(c.base, rel)
}

func joinURL(base *url.URL, rel string) string {
	u := *base
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(base.EscapedPath(), "/"))
	if rel == "" {
		b.WriteString("/")
	}
	for _, seg := range strings.Split(rel, "/") {
		if seg == "" {
			continue
		}
		b.WriteString("/")
		b.WriteString(url.PathEscape(seg))
	}
	u.Path, u.RawPath = "", ""
	u.Opaque = ""
	return u.Scheme + "://" + u.Host + b.String()
}

// pathHash names the temporary files and sessions of a final path.
func pathHash(rel string) string {
	sum := sha256.Sum256([]byte(rel))
	return hex.EncodeToString(sum[:8])
}

const tempPrefix = ".preau-"

func checkPath(p string) error {
	if p == "" || len(p) > 1024 || !utf8.ValidString(p) || strings.HasPrefix(p, "/") {
		return fmt.Errorf("webdav: remote path %q: want a relative path", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, tempPrefix) ||
			strings.ContainsFunc(seg, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
			return fmt.Errorf("webdav: remote path %q: bad segment %q", p, seg)
		}
	}
	return nil
}

// request is one HTTP exchange.
type request struct {
	method string
	url    string
	header http.Header
	body   io.Reader // nil for none
	size   int64     // Content-Length of body
}

// send performs r under a watchdog: the request is cancelled when no byte
// of the body went out, and no byte of the answer came in, for IdleTimeout
// (ResponseTimeout while the server works on a sent request). The caller
// closes the response body, which stops the watchdog.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	idle := c.cfg.IdleTimeout
	wd := time.AfterFunc(idle, func() { cancel(errStalled) })
	trace := &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wd.Reset(c.cfg.ResponseTimeout) },
	}
	ctx = httptrace.WithClientTrace(ctx, trace)
	var body io.Reader
	if r.body != nil {
		body = &watchedReader{r: r.body, wd: wd, idle: idle}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		wd.Stop()
		cancel(nil)
		return nil, err
	}
	if r.body != nil {
		req.ContentLength = r.size
		if r.size == 0 {
			req.Body = http.NoBody
		}
		// Bodies are re-read from the blob on retry, never by the
		// transport.
		req.GetBody = nil
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if c.cfg.User != "" {
		req.SetBasicAuth(c.cfg.User, c.cfg.Password)
	} else if c.public && c.cfg.Password != "" {
		req.SetBasicAuth("anonymous", c.cfg.Password)
	}
	if c.public {
		req.Header.Set("X-Requested-With", "XMLHttpRequest")
		if c.cfg.Nickname != "" {
			req.Header.Set("X-NC-Nickname", url.QueryEscape(c.cfg.Nickname))
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		wd.Stop()
		cause := context.Cause(ctx)
		cancel(nil)
		if errors.Is(cause, errStalled) {
			return nil, errStalled
		}
		return nil, err
	}
	wd.Reset(idle)
	resp.Body = &watchedBody{rc: resp.Body, wd: wd, idle: idle, cancel: cancel}
	return resp, nil
}

// watchedReader feeds the watchdog as the body goes out.
type watchedReader struct {
	r    io.Reader
	wd   *time.Timer
	idle time.Duration
}

func (w *watchedReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 {
		w.wd.Reset(w.idle)
	}
	return n, err
}

// watchedBody feeds the watchdog as the answer comes in.
type watchedBody struct {
	rc     io.ReadCloser
	wd     *time.Timer
	idle   time.Duration
	cancel context.CancelCauseFunc
}

func (w *watchedBody) Read(p []byte) (int, error) {
	n, err := w.rc.Read(p)
	if n > 0 {
		w.wd.Reset(w.idle)
	}
	return n, err
}

// Close drains a little of what is left, so that the connection can be
// reused, then stops the watchdog.
func (w *watchedBody) Close() error {
	io.Copy(io.Discard, io.LimitReader(w.rc, 64<<10))
	err := w.rc.Close()
	w.wd.Stop()
	w.cancel(nil)
	return err
}

// exchange sends r and returns the status, having read at most limit
// bytes of the answer into the returned slice (limit 0: none).
func (c *Client) exchange(ctx context.Context, op string, r request, limit int64) (int, *http.Response, []byte, error) {
	if r.method == http.MethodPut && c.cfg.Bodies != nil {
		select {
		case c.cfg.Bodies <- struct{}{}:
			defer func() { <-c.cfg.Bodies }()
		case <-ctx.Done():
			return 0, nil, nil, ctx.Err()
		}
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, nil, ctx.Err()
		}
		return 0, nil, nil, netError(op, err, c.cfg.IdleTimeout)
	}
	defer resp.Body.Close()
	var data []byte
	if limit > 0 {
		data, err = io.ReadAll(io.LimitReader(resp.Body, limit))
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil, nil, ctx.Err()
			}
			return 0, nil, nil, netError(op, err, c.cfg.IdleTimeout)
		}
	}
	return resp.StatusCode, resp, data, nil
}

func (c *Client) statusError(op string, resp *http.Response) error {
	return statusError(op, resp, c.public, c.cfg.Now())
}
