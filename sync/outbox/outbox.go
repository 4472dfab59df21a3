// Package outbox owns the durable queue of files the box must deliver
// upstream (a pupil's hand-in to the teacher's Nextcloud, an export): one
// persisted state machine per item in SQLite,
//
//	queued → sending → verifying → delivered
//	   ↑        │          │
//	   └────────┴──────────┴──→ failed-permanent
//
// with an idempotency key, a count of attempts, the next attempt (jittered
// exponential backoff with a cap, honouring Retry-After) and the last error
// in plain French (and English). Every transition is one SQLite
// transaction, committed before the next network step.
//
// Exactly once at the destination comes from three rules, so that a kill -9
// or a power cut at any instant replays safely:
//
//   - names are deterministic: an item always goes to the same RemotePath,
//     and no two items may share one (a unique index);
//   - check before sending: every attempt, including the first one after a
//     restart for items found in sending or verifying, first asks the
//     connector whether the final file exists; if it does with the right
//     size (and SHA-256 when the server has one) the item is delivered
//     without sending a byte; if it differs, the item fails and the remote
//     file is never overwritten;
//   - verify after: once the connector says it wrote the file, the item
//     moves to verifying and is delivered only when the final file is seen
//     with the right size (and hash). Connectors write the final name
//     atomically and without overwriting (package sync/webdav uploads to a
//     temporary name, verifies it, then MOVEs it with Overwrite: F).
//
// Destinations that cannot be inspected (a Nextcloud file-drop link) make
// Connector.Stat fail with errors.ErrUnsupported; items to them are
// delivered on the connector's word and marked unverified.
//
// Workers (Config.Workers) wake on Enqueue or on the timer of the earliest
// next attempt: there is no polling loop. Before each send they wait on the
// Gate (the WAN scheduler of package sync/budget).
//
// Only appliance imports this package. It passes the content store as
// Blobs, the connectors (package sync/webdav) through Connectors and the
// WAN scheduler as Gate.
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Blobs opens the body of an item: the content store.
type Blobs interface {
	OpenBlob(hash string) (*os.File, error)
}

// Connector delivers files to one destination. Paths are Item.RemotePath.
// Errors are sorted as the comment of Classify says.
type Connector interface {
	// Stat reports the final file at remotePath: its size, its SHA-256 in
	// lowercase hex when the server keeps one (else ""), and whether it
	// exists. An error wrapping errors.ErrUnsupported means the
	// destination cannot be inspected.
	Stat(ctx context.Context, remotePath string) (size int64, sha256 string, exists bool, err error)
	// Upload writes size bytes of body to remotePath without ever
	// overwriting an existing file there and without leaving a partial
	// file under that name. It calls progress with the bytes of this
	// item known sent so far. nil means the file was written, or that a
	// file already had that name: the outbox verifies which.
	// body is read at any offset (chunks, resumption, a hash check after
	// sending); the outbox passes the blob's *os.File.
	Upload(ctx context.Context, remotePath string, body io.ReaderAt, size int64, sha256 string, progress func(sent int64)) error
	// Cleanup removes what interrupted uploads of remotePath may have left
	// (temporary files, upload sessions). Best effort; the outbox calls it
	// before marking an item delivered after more than one attempt.
	Cleanup(ctx context.Context, remotePath string) error
}

// Placer is a Connector that knows when its upload put the checked body
// under remotePath itself (a verified temporary file moved into place
// without overwriting): then the outbox does not look at the destination
// again. placed false with a nil error means what Upload's nil means.
type Placer interface {
	UploadPlaced(ctx context.Context, remotePath string, body io.ReaderAt, size int64, sha256 string, progress func(sent int64)) (placed bool, err error)
}

// Connectors maps an Item.Destination to its connector. An error wrapping
// ErrUnknownDestination fails the item; other errors are transient.
type Connectors interface {
	Connector(destination string) (Connector, error)
}

// ConnectorsFunc adapts a function to Connectors.
type ConnectorsFunc func(destination string) (Connector, error)

// Connector calls f.
func (f ConnectorsFunc) Connector(destination string) (Connector, error) { return f(destination) }

// Gate blocks until background sending is allowed (the WAN scheduler).
type Gate interface {
	Wait(ctx context.Context) error
}

// GateFunc adapts a function to Gate, e.g. the scheduler's Wait for the
// hand-in class.
type GateFunc func(ctx context.Context) error

// Wait calls f.
func (f GateFunc) Wait(ctx context.Context) error { return f(ctx) }

// State of an item.
type State string

// The states of an item.
const (
	StateQueued    State = "queued"
	StateSending   State = "sending"
	StateVerifying State = "verifying"
	StateDelivered State = "delivered"
	StateFailed    State = "failed-permanent"
)

// States lists every state, in the order of the lifecycle.
var States = []State{StateQueued, StateSending, StateVerifying, StateDelivered, StateFailed}

// Item is one file to deliver.
type Item struct {
	Key         string // idempotency key, unique; at most 200 bytes
	Destination string // opaque destination id, resolved by Connectors
	RemotePath  string // deterministic relative path at the destination; see CheckRemotePath
	BlobHash    string // body in the content store (lowercase hex SHA-256)
	Size        int64
	SHA256      string // lowercase hex SHA-256 of the body
	MediaType   string
	Priority    int       // higher first
	CreatedAt   time.Time // zero means now
}

// ItemStatus is an item and where it is.
type ItemStatus struct {
	Item
	State       State
	Attempts    int
	Recoveries  int
	NextAttempt time.Time
	LastError   string // French; empty when the last attempt succeeded
	LastErrorEN string
	Verified    bool // the remote size (and hash) were checked
	UpdatedAt   time.Time
	DeliveredAt time.Time // zero until delivered
	Sent        int64     // bytes sent in the current attempt, while sending
}

// Label is the short text the portal shows a pupil about a hand-in file,
// French then English.
func (s ItemStatus) Label() (fr, en string) {
	switch s.State {
	case StateDelivered:
		return "envoyé", "sent"
	case StateFailed:
		return "échec de l'envoi : " + s.LastError, "sending failed: " + s.LastErrorEN
	case StateSending, StateVerifying:
		return "reçu, envoi en cours", "received, being sent"
	}
	return "reçu, en attente d'envoi", "received, waiting to be sent"
}

// Progress is how far the current attempt of an item has gone.
type Progress struct {
	Key        string
	Sent, Size int64
}

// Status is a summary of the queue.
type Status struct {
	Counts   map[State]int
	Items    []ItemStatus // every item not delivered, most urgent first (at most Config.StatusLimit)
	InFlight []Progress
}

// Config of the outbox. Zero values take the defaults of WithDefaults.
type Config struct {
	// Workers is how many items are sent at once. Default 2.
	Workers int
	// RetryMin is the first delay after a transient error; it doubles with
	// each attempt up to RetryMax, with jitter. Defaults 30 s and 1 h.
	RetryMin time.Duration
	RetryMax time.Duration
	// MaxRetryAfter bounds how long a server's Retry-After is honoured.
	// Default 24 h.
	MaxRetryAfter time.Duration
	// MaxRecoveries is how many times an item may be found in sending or
	// verifying at start (the box stopped abruptly while sending it)
	// before it fails, so that one item cannot crash-loop the box.
	// Default 20.
	MaxRecoveries int
	// ProgressEvery is the least interval between two progress callbacks
	// of one item. Default 250 ms.
	ProgressEvery time.Duration
	// StatusLimit bounds Status.Items. Default 1000.
	StatusLimit int

	// Now is the clock; nil means time.Now.
	Now func() time.Time `toml:"-" json:"-"`
}

// Defaults of Config.
const (
	DefaultWorkers       = 2
	DefaultRetryMin      = 30 * time.Second
	DefaultRetryMax      = time.Hour
	DefaultMaxRetryAfter = 24 * time.Hour
	DefaultMaxRecoveries = 20
	DefaultProgressEvery = 250 * time.Millisecond
	DefaultStatusLimit   = 1000
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if c.MaxRecoveries == 0 {
		c.MaxRecoveries = DefaultMaxRecoveries
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = DefaultProgressEvery
	}
	if c.StatusLimit == 0 {
		c.StatusLimit = DefaultStatusLimit
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks the configuration; errors name the field.
func (c Config) Validate() error {
	switch {
	case c.Workers < 1 || c.Workers > 64:
		return fmt.Errorf("outbox: Workers = %d, want 1 to 64", c.Workers)
	case c.RetryMin <= 0:
		return fmt.Errorf("outbox: RetryMin = %v, want > 0", c.RetryMin)
	case c.RetryMax < c.RetryMin:
		return fmt.Errorf("outbox: RetryMax = %v, want >= RetryMin (%v)", c.RetryMax, c.RetryMin)
	case c.MaxRetryAfter < 0:
		return fmt.Errorf("outbox: MaxRetryAfter = %v, want >= 0", c.MaxRetryAfter)
	case c.MaxRecoveries < 1:
		return fmt.Errorf("outbox: MaxRecoveries = %d, want >= 1", c.MaxRecoveries)
	case c.ProgressEvery < 0:
		return fmt.Errorf("outbox: ProgressEvery = %v, want >= 0", c.ProgressEvery)
	case c.StatusLimit < 1:
		return fmt.Errorf("outbox: StatusLimit = %d, want >= 1", c.StatusLimit)
	}
	return nil
}

// Outbox is the queue.
type Outbox struct {
	cfg   Config
	db    *sql.DB
	blobs Blobs
	conns Connectors
	gate  Gate
	log   *slog.Logger

	wake chan struct{} // buffered 1: Enqueue, Retry and finished workers poke the dispatcher

	mu         sync.Mutex
	onChange   []func(ItemStatus)
	onProgress []func(Progress)
	inFlight   map[string]*flight

	m counters
}

// flight is an item being worked on.
type flight struct {
	size int64
	sent atomic.Int64
}

type counters struct {
	sent       atomic.Int64 // delivered: sent then verified
	found      atomic.Int64 // delivered without sending: found at the destination
	unverified atomic.Int64 // delivered: sent, the destination cannot be inspected
	transient  atomic.Int64
	permanent  atomic.Int64
	recovered  atomic.Int64
	// deliveredBytes counts the bodies sent and verified: the goodput.
	deliveredBytes atomic.Int64
}

// New builds an outbox; it does no I/O. gate may be nil: sending is then
// always allowed.
func New(cfg Config, db *sql.DB, blobs Blobs, conns Connectors, gate Gate, log *slog.Logger) (*Outbox, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case db == nil:
		return nil, errors.New("outbox: database is nil")
	case blobs == nil:
		return nil, errors.New("outbox: blobs is nil")
	case conns == nil:
		return nil, errors.New("outbox: connectors is nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Outbox{
		cfg: cfg, db: db, blobs: blobs, conns: conns, gate: gate, log: log,
		wake:     make(chan struct{}, 1),
		inFlight: make(map[string]*flight),
	}, nil
}

// OnChange registers fn, called after each committed transition of an
// item (from a worker's goroutine: keep it short).
func (o *Outbox) OnChange(fn func(ItemStatus)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.onChange = append(o.onChange, fn)
}

// OnProgress registers fn, called while an item is sent, at most every
// Config.ProgressEvery per item and once at the end of each attempt.
func (o *Outbox) OnProgress(fn func(Progress)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.onProgress = append(o.onProgress, fn)
}

func (o *Outbox) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (it Item) check() error {
	switch {
	case it.Key == "" || len(it.Key) > 200:
		return fmt.Errorf("key %q: want 1 to 200 bytes", it.Key)
	case it.Destination == "":
		return errors.New("destination is empty")
	case !hexSHA256.MatchString(it.BlobHash):
		return fmt.Errorf("blob hash %q: want 64 lowercase hex digits", it.BlobHash)
	case !hexSHA256.MatchString(it.SHA256):
		return fmt.Errorf("sha256 %q: want 64 lowercase hex digits", it.SHA256)
	case it.Size < 0:
		return fmt.Errorf("size %d is negative", it.Size)
	}
	return CheckRemotePath(it.RemotePath)
}

// Enqueue adds it to the queue. It is idempotent on Key: the same item
// twice is one item; the same key with another destination, path or
// content is ErrKeyConflict; another key to the same destination and path
// is ErrPathTaken.
func (o *Outbox) Enqueue(ctx context.Context, it Item) error {
	if err := it.check(); err != nil {
		return fmt.Errorf("enqueue %q: %w", it.Key, err)
	}
	now := o.cfg.Now()
	if it.CreatedAt.IsZero() {
		it.CreatedAt = now
	}
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("enqueue %q: %w", it.Key, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO outbox_items
		(key, destination, remote_path, blob_hash, size, sha256, media_type, priority, created_at,
		 state, next_attempt, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)
		ON CONFLICT (key) DO NOTHING`,
		it.Key, it.Destination, it.RemotePath, it.BlobHash, it.Size, it.SHA256, it.MediaType, it.Priority,
		it.CreatedAt.UnixMilli(), now.UnixMilli(), now.UnixMilli())
	if err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("enqueue %q: %s: %w", it.Key, it.RemotePath, ErrPathTaken)
		}
		return fmt.Errorf("enqueue %q: %w", it.Key, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		got, err := scanItem(tx.QueryRowContext(ctx, selectItem+` WHERE key = ?`, it.Key))
		if err != nil {
			return fmt.Errorf("enqueue %q: %w", it.Key, err)
		}
		if got.Destination != it.Destination || got.RemotePath != it.RemotePath || got.BlobHash != it.BlobHash ||
			got.Size != it.Size || got.SHA256 != it.SHA256 || got.MediaType != it.MediaType {
			return fmt.Errorf("enqueue %q: %w", it.Key, ErrKeyConflict)
		}
		return nil
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("enqueue %q: %w", it.Key, err)
	}
	o.poke()
	if st, err := o.Get(ctx, it.Key); err == nil {
		o.changed(st)
	}
	return nil
}

func isUniqueViolation(err error) bool {
	// mattn/go-sqlite3 reports "UNIQUE constraint failed: …"; matching the
	// text keeps the driver's types out of this package.
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

const selectItem = `SELECT key, destination, remote_path, blob_hash, size, sha256, media_type, priority,
	created_at, state, attempts, recoveries, next_attempt, last_error, last_error_en, verified, updated_at,
	delivered_at FROM outbox_items`

type scanner interface{ Scan(...any) error }

func scanItem(r scanner) (ItemStatus, error) {
	var s ItemStatus
	var created, next, updated int64
	var delivered sql.NullInt64
	var state string
	err := r.Scan(&s.Key, &s.Destination, &s.RemotePath, &s.BlobHash, &s.Size, &s.SHA256, &s.MediaType,
		&s.Priority, &created, &state, &s.Attempts, &s.Recoveries, &next, &s.LastError, &s.LastErrorEN,
		&s.Verified, &updated, &delivered)
	if errors.Is(err, sql.ErrNoRows) {
		return s, ErrNotFound
	}
	if err != nil {
		return s, err
	}
	s.State = State(state)
	s.CreatedAt = time.UnixMilli(created)
	s.NextAttempt = time.UnixMilli(next)
	s.UpdatedAt = time.UnixMilli(updated)
	if delivered.Valid {
		s.DeliveredAt = time.UnixMilli(delivered.Int64)
	}
	return s, nil
}

// Get returns the item with key, or an error wrapping ErrNotFound.
func (o *Outbox) Get(ctx context.Context, key string) (ItemStatus, error) {
	s, err := scanItem(o.db.QueryRowContext(ctx, selectItem+` WHERE key = ?`, key))
	if err != nil {
		return s, fmt.Errorf("outbox get %q: %w", key, err)
	}
	o.addSent(&s)
	return s, nil
}

func (o *Outbox) addSent(s *ItemStatus) {
	o.mu.Lock()
	if f := o.inFlight[s.Key]; f != nil {
		s.Sent = f.sent.Load()
	}
	o.mu.Unlock()
}

// Status counts the items by state and lists those not delivered.
func (o *Outbox) Status(ctx context.Context) (Status, error) {
	st := Status{Counts: make(map[State]int, len(States))}
	for _, s := range States {
		st.Counts[s] = 0
	}
	rows, err := o.db.QueryContext(ctx, `SELECT state, count(*) FROM outbox_items GROUP BY state`)
	if err != nil {
		return st, fmt.Errorf("outbox status: %w", err)
	}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			rows.Close()
			return st, fmt.Errorf("outbox status: %w", err)
		}
		st.Counts[State(s)] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("outbox status: %w", err)
	}
	rows, err = o.db.QueryContext(ctx, selectItem+` WHERE state != 'delivered'
		ORDER BY state = 'failed-permanent', priority DESC, next_attempt, created_at LIMIT ?`, o.cfg.StatusLimit)
	if err != nil {
		return st, fmt.Errorf("outbox status: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		s, err := scanItem(rows)
		if err != nil {
			return st, fmt.Errorf("outbox status: %w", err)
		}
		o.addSent(&s)
		st.Items = append(st.Items, s)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("outbox status: %w", err)
	}
	o.mu.Lock()
	for k, f := range o.inFlight {
		st.InFlight = append(st.InFlight, Progress{Key: k, Sent: f.sent.Load(), Size: f.size})
	}
	o.mu.Unlock()
	return st, nil
}

// Retry puts a failed item back in the queue, due now, with its counts
// reset (after the technician fixed the cause).
func (o *Outbox) Retry(ctx context.Context, key string) error {
	now := o.cfg.Now().UnixMilli()
	res, err := o.db.ExecContext(ctx, `UPDATE outbox_items SET state = 'queued', attempts = 0, recoveries = 0,
		next_attempt = ?, updated_at = ? WHERE key = ? AND state = 'failed-permanent'`, now, now, key)
	if err != nil {
		return fmt.Errorf("outbox retry %q: %w", key, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := o.Get(ctx, key); err != nil {
			return fmt.Errorf("outbox retry: %w", err)
		}
		return nil // not failed: nothing to do
	}
	o.poke()
	if st, err := o.Get(ctx, key); err == nil {
		o.changed(st)
	}
	return nil
}

// RetryNow makes every queued item due now, e.g. when the uplink comes
// back after a cut, so that the backoff does not delay them further.
func (o *Outbox) RetryNow(ctx context.Context) error {
	now := o.cfg.Now().UnixMilli()
	if _, err := o.db.ExecContext(ctx, `UPDATE outbox_items SET next_attempt = ?
		WHERE state = 'queued' AND next_attempt > ?`, now, now); err != nil {
		return fmt.Errorf("outbox retry now: %w", err)
	}
	o.poke()
	return nil
}

func (o *Outbox) changed(s ItemStatus) {
	o.mu.Lock()
	fns := append([]func(ItemStatus){}, o.onChange...)
	o.mu.Unlock()
	for _, fn := range fns {
		fn(s)
	}
}
