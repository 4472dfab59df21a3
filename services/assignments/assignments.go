// Package assignments owns homework hand-in on the box: teachers' local
// accounts and sessions, the assignments they create (title, class code,
// due date, destination, allowed kinds and sizes), the pupils' hand-in pages
// under /devoirs/ and the teachers' pages under /enseignant/, the hand-ins'
// metadata in SQLite and their receipts. File bytes go to the content store
// through the Blobs interface declared here; delivery to the teacher's
// destination is the outbox's job, reached through the OnHandIn hook and
// the Delivery interface.
//
// Only the appliance root imports this package: it passes the content store
// as Blobs, an adapter over the outbox as Delivery, and mounts Handler on
// the LAN server. This package imports no other Préau package.
package assignments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Blobs is what assignments needs from the content store: blobs by SHA-256,
// written atomically, pinned under owner so that GC keeps them.
type Blobs interface {
	// PutBlob reads r to its end (at most max bytes) and returns the blob's
	// lowercase hex SHA-256 and size once it is durable and pinned.
	PutBlob(ctx context.Context, owner string, r io.Reader, max int64) (hash string, size int64, err error)
	OpenBlob(hash string) (*os.File, error)
}

// Unpinner is optional on Blobs: when the store has it, blobs of refused or
// interrupted hand-ins are unpinned so that GC can remove them.
type Unpinner interface {
	Unpin(ctx context.Context, owner string) error
}

// DeliveryStatus is where a hand-in file is on its way to the destination.
type DeliveryStatus string

// Delivery statuses, as the outbox reports them.
const (
	DeliveryQueued    DeliveryStatus = "queued"
	DeliverySending   DeliveryStatus = "sending"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryFailed    DeliveryStatus = "failed"
)

// DeliveryState is the state of one file in the outbox. Message says, in
// French, why a failed delivery failed and what to do; MessageEN is its
// English text when the outbox has one.
type DeliveryState struct {
	Status             DeliveryStatus
	Message, MessageEN string
}

// ErrNotQueued is wrapped by Delivery.State when the outbox has no item for
// the key yet (the hook has not run): the file is shown as received, waiting
// to be sent.
var ErrNotQueued = errors.New("assignments: not queued")

// Delivery reports the outbox's state of a hand-in file, by the file's Key.
type Delivery interface {
	State(ctx context.Context, key string) (DeliveryState, error)
}

// HandIn is a committed hand-in, as OnHandIn and PendingHandIns give it.
type HandIn struct {
	ID              int64
	Code            string // receipt code, such as "K7Q-4PD"
	AssignmentID    int64
	AssignmentTitle string
	ClassCode       string
	Destination     string // a Config.Destinations ID
	Teacher         string // the teacher's login
	Pupil           string // first name and initial, such as "Léa M."
	Received        time.Time
	Late            bool
	Files           []HandInFile
}

// HandInFile is one file of a hand-in. Key is the outbox's idempotency key
// and the key Delivery.State is asked about; Path is a suggested relative
// path at the destination ("CM2-A/Rédaction (12)/Léa M. K7Q-4PD/photo.jpg"),
// made only of characters that Windows, Nextcloud and WebDAV accept.
type HandInFile struct {
	ID        int64
	Key       string
	Name      string
	Path      string
	MediaType string
	Size      int64
	SHA256    string
}

// FileKey is the outbox key of the hand-in file with this id.
func FileKey(id int64) string { return fmt.Sprintf("assignments-file-%d", id) }

// Destination is a place hand-ins can be sent to (a teacher's Nextcloud
// folder, a USB export…); appliance lists them from its configuration.
type Destination struct {
	ID    string
	Label string // shown to teachers, in French
}

// Kinds of files an assignment can accept.
const (
	KindImage  = "image"  // photos and pictures: JPEG, PNG, GIF, WebP, HEIC, AVIF, BMP, TIFF
	KindPDF    = "pdf"    // PDF
	KindOffice = "office" // OpenDocument and Office Open XML documents
	KindAudio  = "audio"  // MP3, AAC, M4A, Ogg, Opus, WAV, FLAC, AMR, WebM audio, 3GPP
	KindText   = "text"   // plain text files and the text typed in the form
)

// AllKinds lists the kinds in the order the forms show them.
var AllKinds = []string{KindImage, KindPDF, KindOffice, KindAudio, KindText}

// Config holds the settings of assignments. Zero values take the defaults
// of WithDefaults.
type Config struct {
	// Authenticate, when set, checks a teacher's login and password in
	// the box's accounts (the technician console owns them) and returns
	// the display name; the teacher's row here is created or renamed on
	// success. Nil: the passwords of this package's own table. An account
	// with a second factor is refused here (the form has no code step).
	Authenticate func(ctx context.Context, login, password, ip string) (name string, ok bool, err error) `toml:"-" json:"-"`
	// SchoolName is shown in every page's header. Default "Préau".
	SchoolName string
	// DefaultLanguage is "fr" or "en". Default "fr".
	DefaultLanguage string
	// StylesheetURL is the portal's stylesheet, linked from every page.
	// Default "/static/style.css"; appliance passes the portal's hashed URL.
	StylesheetURL string
	// PortalURL is the portal's home, linked from the header. Default "/".
	PortalURL string
	// Destinations teachers choose from. With none, assignments cannot be
	// created (the form says so).
	Destinations []Destination
	// MaxFileBytes bounds one file, and the per-assignment limit a teacher
	// may set. Default 20 MB (20 000 000 bytes).
	MaxFileBytes int64
	// MaxTotalBytes bounds one hand-in (all files and text). Default 100 MB.
	MaxTotalBytes int64
	// MaxFiles bounds the files of one hand-in. Default 10.
	MaxFiles int
	// MaxTextBytes bounds the text typed in the form. Default 100 000.
	MaxTextBytes int
	// AllowedKinds are the kinds teachers may allow, a subset of AllKinds.
	// Default all of them.
	AllowedKinds []string
	// RefuseLate is the default of a new assignment's "refuse late work"
	// box. Default false: late work is accepted and marked late.
	RefuseLate bool
	// SessionTTL is how long a teacher stays logged in. Default 12 h.
	SessionTTL time.Duration
	// LoginFailures is how many failed logins an account, five times as
	// many an address, may make per LoginWindow; an address may also try
	// six times as many receipt codes that do not exist. Default 5 per
	// 15 min.
	LoginFailures int
	LoginWindow   time.Duration
	// ReceiptsShown bounds the "my receipts" list of a device. Default 50.
	ReceiptsShown int
	// Location is the time zone of due dates and receipts. Default
	// time.Local.
	Location *time.Location `toml:"-" json:"-"`
	// Now is the clock. Default time.Now.
	Now func() time.Time `toml:"-" json:"-"`
	// OnHandIn is called after a hand-in is committed (appliance enqueues
	// each file into the outbox with HandInFile.Key). It must be idempotent:
	// Serve calls it again for hand-ins committed before a crash that did
	// not let it return. Nil: no one is told.
	OnHandIn func(context.Context, HandIn) `toml:"-" json:"-"`
}

// Defaults of Config.
const (
	DefaultMaxFileBytes  = 20_000_000
	DefaultMaxTotalBytes = 100_000_000
	DefaultMaxFiles      = 10
	DefaultMaxTextBytes  = 100_000
	DefaultSessionTTL    = 12 * time.Hour
	DefaultLoginFailures = 5
	DefaultLoginWindow   = 15 * time.Minute
	DefaultReceiptsShown = 50
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if strings.TrimSpace(c.SchoolName) == "" {
		c.SchoolName = "Préau"
	}
	if c.DefaultLanguage == "" {
		c.DefaultLanguage = "fr"
	}
	if c.StylesheetURL == "" {
		c.StylesheetURL = "/static/style.css"
	}
	if c.PortalURL == "" {
		c.PortalURL = "/"
	}
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.MaxTotalBytes == 0 {
		c.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if c.MaxFiles == 0 {
		c.MaxFiles = DefaultMaxFiles
	}
	if c.MaxTextBytes == 0 {
		c.MaxTextBytes = DefaultMaxTextBytes
	}
	if c.AllowedKinds == nil {
		c.AllowedKinds = slices.Clone(AllKinds)
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.LoginFailures == 0 {
		c.LoginFailures = DefaultLoginFailures
	}
	if c.LoginWindow == 0 {
		c.LoginWindow = DefaultLoginWindow
	}
	if c.ReceiptsShown == 0 {
		c.ReceiptsShown = DefaultReceiptsShown
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

var (
	destinationIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)
	localURLPattern      = regexp.MustCompile(`^/[^/\\]`)
)

// Validate reports the first invalid field.
func (c Config) Validate() error {
	oneLine := func(s string, n int) bool { return len(s) <= n && !strings.ContainsAny(s, "\x00\r\n") }
	switch {
	case !oneLine(c.SchoolName, 200):
		return errors.New("assignments config: school name must be one line of at most 200 bytes")
	case catalogues[c.DefaultLanguage] == nil:
		return fmt.Errorf("assignments config: default language %q: want \"fr\" or \"en\"", c.DefaultLanguage)
	case !localURLPattern.MatchString(c.StylesheetURL) || !oneLine(c.StylesheetURL, 300) || strings.ContainsAny(c.StylesheetURL, "\"<> "):
		return fmt.Errorf("assignments config: stylesheet url %q: want a path on this server such as \"/static/style.css\"", c.StylesheetURL)
	case c.PortalURL != "/" && (!localURLPattern.MatchString(c.PortalURL) || !oneLine(c.PortalURL, 300) || strings.ContainsAny(c.PortalURL, "\"<> ")):
		return fmt.Errorf("assignments config: portal url %q: want a path on this server such as \"/\"", c.PortalURL)
	case c.MaxFileBytes < 1:
		return errors.New("assignments config: max file bytes must be positive")
	case c.MaxTotalBytes < c.MaxFileBytes:
		return errors.New("assignments config: max total bytes must be at least max file bytes")
	case c.MaxFiles < 1 || c.MaxFiles > 100:
		return fmt.Errorf("assignments config: max files %d: want 1 to 100", c.MaxFiles)
	case c.MaxTextBytes < 1 || c.MaxTextBytes > 10_000_000:
		return fmt.Errorf("assignments config: max text bytes %d: want 1 to 10000000", c.MaxTextBytes)
	case len(c.AllowedKinds) == 0:
		return errors.New("assignments config: allowed kinds is empty")
	case c.SessionTTL < time.Minute:
		return errors.New("assignments config: session ttl must be at least one minute")
	case c.LoginFailures < 1:
		return errors.New("assignments config: login failures must be positive")
	case c.LoginWindow < time.Second:
		return errors.New("assignments config: login window must be at least one second")
	case c.ReceiptsShown < 1:
		return errors.New("assignments config: receipts shown must be positive")
	}
	for _, k := range c.AllowedKinds {
		if !slices.Contains(AllKinds, k) {
			return fmt.Errorf("assignments config: allowed kinds: unknown kind %q (want some of %s)", k, strings.Join(AllKinds, ", "))
		}
	}
	seen := map[string]bool{}
	for i, d := range c.Destinations {
		switch {
		case !destinationIDPattern.MatchString(d.ID):
			return fmt.Errorf("assignments config: destinations[%d]: id %q: want letters, digits, '.', '_', ':' or '-'", i, d.ID)
		case seen[d.ID]:
			return fmt.Errorf("assignments config: destinations[%d]: id %q is listed twice", i, d.ID)
		case strings.TrimSpace(d.Label) == "" || !oneLine(d.Label, 200):
			return fmt.Errorf("assignments config: destinations[%d]: label must be one line of 1 to 200 bytes", i)
		}
		seen[d.ID] = true
	}
	return nil
}

// Service serves the hand-in and teachers' pages. It is safe for
// concurrent use.
type Service struct {
	cfg      Config
	db       *sql.DB
	blobs    Blobs
	delivery Delivery
	log      *slog.Logger
	now      func() time.Time

	pages  map[string]*template.Template
	assets map[string]asset // by hashed name
	css    string           // URL of our own small stylesheet
	script string           // URL of the size-check script

	logins  *limiter // failed logins, by "login:" account and "ip:" address
	lookups *limiter // receipt codes not found, by address
	hashing chan struct{}

	mu      sync.Mutex
	active  map[string]bool // blob owners of hand-ins being received
	handler http.Handler
}

// New checks cfg (after defaults) and prepares the templates; it does no
// I/O. delivery may be nil: every file is then shown as waiting to be sent.
func New(cfg Config, db *sql.DB, blobs Blobs, delivery Delivery, log *slog.Logger) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil {
		return nil, errors.New("new assignments: no database")
	}
	if blobs == nil {
		return nil, errors.New("new assignments: no blob store")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg: cfg, db: db, blobs: blobs, delivery: delivery, log: log, now: cfg.Now,
		logins:  newLimiter(cfg.LoginWindow),
		lookups: newLimiter(cfg.LoginWindow),
		hashing: make(chan struct{}, 2),
		active:  map[string]bool{},
	}
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, fmt.Errorf("new assignments: %w", err)
	}
	if s.assets, s.css, s.script, err = loadAssets(); err != nil {
		return nil, fmt.Errorf("new assignments: %w", err)
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the HTTP handler of /devoirs/… and /enseignant/…; mount it
// at both prefixes (or at "/" behind a mux that sends them here).
func (s *Service) Handler() http.Handler { return s.handler }

// maintenanceEvery is how often Serve forgets expired sessions, login
// counters and interrupted uploads: rarely, the box must stay idle.
const maintenanceEvery = time.Hour

// Serve first tells OnHandIn again about hand-ins committed before a crash
// that did not let the hook return, and releases the blobs of hand-ins that
// were interrupted; then it cleans up expired sessions and counters every
// hour until ctx ends.
func (s *Service) Serve(ctx context.Context) error {
	if err := s.replayPending(ctx); err != nil {
		return err
	}
	for {
		if err := s.maintain(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("assignments maintenance", "err", err)
		}
		t := time.NewTimer(maintenanceEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// replayPending calls OnHandIn for every committed hand-in it has not seen
// return. Enqueueing is idempotent, so a second call is harmless.
func (s *Service) replayPending(ctx context.Context) error {
	if s.cfg.OnHandIn == nil {
		return nil
	}
	pending, err := s.PendingHandIns(ctx)
	if err != nil {
		return err
	}
	for _, h := range pending {
		s.notify(ctx, h)
	}
	if len(pending) > 0 {
		s.log.Info("hand-ins handed to the outbox again after a restart", "count", len(pending))
	}
	return nil
}

// notify runs the hook and records that it returned.
func (s *Service) notify(ctx context.Context, h HandIn) {
	if s.cfg.OnHandIn == nil {
		return
	}
	s.cfg.OnHandIn(ctx, h)
	if _, err := s.db.ExecContext(ctx, "UPDATE assignments_handins SET notified_at = ? WHERE id = ?", s.now().UnixMilli(), h.ID); err != nil {
		// The hand-in stays pending: Serve will call the hook again.
		s.log.Warn("mark hand-in notified", "handin", h.ID, "err", err)
	}
}

// maintain drops expired sessions and login counters, and releases blobs of
// uploads that no request is receiving any more (a crash or a cut).
func (s *Service) maintain(ctx context.Context) error {
	now := s.now()
	s.logins.prune(now)
	s.lookups.prune(now)
	if _, err := s.db.ExecContext(ctx, "DELETE FROM assignments_sessions WHERE expires_at <= ?", now.UnixMilli()); err != nil {
		return fmt.Errorf("drop expired sessions: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT blob_owner FROM assignments_uploads")
	if err != nil {
		return fmt.Errorf("list interrupted uploads: %w", err)
	}
	var owners []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			rows.Close()
			return fmt.Errorf("list interrupted uploads: %w", err)
		}
		owners = append(owners, o)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("list interrupted uploads: %w", err)
	}
	n := 0
	for _, o := range owners {
		released, err := s.releaseStale(ctx, o)
		if err != nil {
			return err
		}
		if released {
			n++
		}
	}
	if n > 0 {
		s.log.Info("blobs of interrupted hand-ins released", "uploads", n)
	}
	return nil
}

// releaseStale releases the blobs of an upload listed earlier, unless a
// request is still receiving it or has finished it since. The order
// matters: a request removes its row (commit or refusal) before it stops
// being active, so once it is seen inactive, a row still there is stale.
func (s *Service) releaseStale(ctx context.Context, owner string) (bool, error) {
	s.mu.Lock()
	busy := s.active[owner]
	s.mu.Unlock()
	if busy {
		return false, nil
	}
	var one int
	err := s.db.QueryRowContext(ctx, "SELECT 1 FROM assignments_uploads WHERE blob_owner = ?", owner).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // committed or dropped meanwhile: not ours to release
	}
	if err != nil {
		return false, fmt.Errorf("release upload %s: %w", owner, err)
	}
	return true, s.dropUpload(ctx, owner)
}

// dropUpload unpins the blobs of an upload that will not be committed and
// forgets it.
func (s *Service) dropUpload(ctx context.Context, owner string) error {
	if u, ok := s.blobs.(Unpinner); ok {
		if err := u.Unpin(ctx, owner); err != nil {
			return fmt.Errorf("release upload %s: %w", owner, err)
		}
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM assignments_uploads WHERE blob_owner = ?", owner); err != nil {
		return fmt.Errorf("release upload %s: %w", owner, err)
	}
	return nil
}
