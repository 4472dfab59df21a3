package inventory

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Doer sends one HTTP request; appliance passes the WAN scheduler's
// client, so that pushes share the uplink budget and wait while offline.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Compression of the pushed documents, as GLPI's inventory endpoint
// accepts them (its Content-Type names the compression).
const (
	CompressNone = "none" // application/json
	CompressZlib = "zlib" // application/x-compress-zlib, as GLPI Agent sends
	CompressGzip = "gzip" // application/x-compress-gzip
)

// GLPIConfig configures the push to a GLPI server.
type GLPIConfig struct {
	// URL is the inventory endpoint: https://glpi.example.fr/front/inventory.php
	// (GLPI 10 and later), or the GLPI Inventory plugin's
	// https://glpi.example.fr/marketplace/glpiinventory/ (or
	// /plugins/glpiinventory/). Required, http or https.
	URL string
	// Interval between two pushes. Default 1 h.
	Interval time.Duration
	// Refresh: a device whose document did not change is pushed again
	// after this long if it was seen since, so that GLPI's last inventory
	// date stays true. Default 24 h.
	Refresh time.Duration
	// Compression: CompressNone (default), CompressZlib or CompressGzip.
	Compression string
	// Timeout of one request. Default 2 min.
	Timeout time.Duration
}

// WithDefaults returns c with zero fields set to their defaults.
func (c GLPIConfig) WithDefaults() GLPIConfig {
	if c.Interval == 0 {
		c.Interval = time.Hour
	}
	if c.Refresh == 0 {
		c.Refresh = 24 * time.Hour
	}
	if c.Compression == "" {
		c.Compression = CompressNone
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	return c
}

// Validate reports the first invalid field.
func (c GLPIConfig) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return errors.New("glpi config: url is empty: give the inventory endpoint, e.g. https://glpi.example.fr/front/inventory.php")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("glpi config: url %q: want an http or https URL", c.URL)
	case u.User != nil:
		return fmt.Errorf("glpi config: url %q: no credentials in the URL", u.Redacted())
	case c.Interval < time.Minute:
		return fmt.Errorf("glpi config: interval %v is shorter than 1 min", c.Interval)
	case c.Refresh < c.Interval:
		return fmt.Errorf("glpi config: refresh %v is shorter than the interval %v", c.Refresh, c.Interval)
	case c.Compression != CompressNone && c.Compression != CompressZlib && c.Compression != CompressGzip:
		return fmt.Errorf("glpi config: compression %q: want none, zlib or gzip", c.Compression)
	case c.Timeout < time.Second:
		return fmt.Errorf("glpi config: timeout %v is shorter than 1s", c.Timeout)
	}
	return nil
}

// Pusher sends the inventory to a GLPI server: only the devices whose
// document changed since GLPI last accepted it (and, once a Refresh, those
// seen since), remembering in the database what was accepted. A device
// GLPI refuses waits before the next try (1 h, doubling up to 24 h); a
// server or network failure stops the round, which is retried sooner.
type Pusher struct {
	cfg  GLPIConfig
	inv  *Inventory
	http Doer
	log  *slog.Logger

	mu              sync.Mutex // one push at a time
	pushed, refused atomic.Uint64
	failed          atomic.Uint64
	lastOK          atomic.Int64
}

// NewPusher validates cfg; it does no I/O.
func NewPusher(cfg GLPIConfig, inv *Inventory, http Doer, log *slog.Logger) (*Pusher, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if inv == nil || http == nil {
		return nil, errors.New("new glpi pusher: inventory and http client are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pusher{cfg: cfg, inv: inv, http: http, log: log}, nil
}

// PushReport counts what one push did.
type PushReport struct {
	Pushed    int // accepted by GLPI
	Unchanged int // nothing new since GLPI accepted it
	Refused   int // refused by GLPI; tried again later
	Waiting   int // refused earlier, not tried again yet
}

// PushError is a push that failed. Error gives the French text, English
// the English one. Retry is true for failures of the server or the
// network (the round stops and is retried), false when GLPI refused this
// document.
type PushError struct {
	Device  string
	Status  int // HTTP status, 0 when no answer
	Message string
	Retry   bool
	Err     error
}

func (e *PushError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("envoi à GLPI impossible (%s) : %s ; nouvel essai plus tard", e.Device, e.Message)
	}
	return fmt.Sprintf("GLPI a refusé l'inventaire de %s (HTTP %d) : %s", e.Device, e.Status, e.Message)
}

// English is the English message.
func (e *PushError) English() string {
	if e.Status == 0 {
		return fmt.Sprintf("cannot reach GLPI (%s): %s; will retry", e.Device, e.Message)
	}
	return fmt.Sprintf("GLPI refused the inventory of %s (HTTP %d): %s", e.Device, e.Status, e.Message)
}

func (e *PushError) Unwrap() error { return e.Err }

// Serve pushes every Interval until ctx ends; after a failed round it
// tries again after 1 min, doubling up to Interval. The first push waits
// one minute, for the inventory to fill.
func (p *Pusher) Serve(ctx context.Context) error {
	wait, retry := min(time.Minute, p.cfg.Interval), time.Minute
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		rep, err := p.Push(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			p.log.Warn("inventory: glpi push", "err", err, "retry_in", retry)
			wait, retry = retry, min(retry*2, p.cfg.Interval)
		default:
			if rep.Pushed > 0 || rep.Refused > 0 {
				p.log.Info("inventory: glpi push", "pushed", rep.Pushed, "refused", rep.Refused, "unchanged", rep.Unchanged, "waiting", rep.Waiting)
			}
			wait, retry = p.cfg.Interval, time.Minute
		}
	}
}

type pushState struct {
	hash     string
	pushedAt time.Time
	attempts int
	nextTry  time.Time
}

// Push sends the devices that are due now and returns what it did. It
// returns a *PushError with Retry set when the server or the network
// failed, after recording what was accepted before.
func (p *Pusher) Push(ctx context.Context) (PushReport, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var rep PushReport
	devs, err := p.inv.Devices(ctx)
	if err != nil {
		return rep, err
	}
	states, err := p.loadStates(ctx)
	if err != nil {
		return rep, err
	}
	for _, d := range devs {
		now := p.inv.now()
		st := states[d.ID]
		hash := p.inv.glpiHash(d)
		if now.Before(st.nextTry) {
			rep.Waiting++
			continue
		}
		due := hash != st.hash || (now.Sub(st.pushedAt) >= p.cfg.Refresh && d.LastSeen.After(st.pushedAt))
		if !due {
			rep.Unchanged++
			continue
		}
		err := p.send(ctx, d)
		if err == nil {
			p.pushed.Add(1)
			p.lastOK.Store(now.UnixMilli())
			rep.Pushed++
			if err := p.saveState(ctx, d.ID, hash, now, 0, time.Time{}, ""); err != nil {
				return rep, err
			}
			continue
		}
		var pe *PushError
		if !errors.As(err, &pe) {
			return rep, err
		}
		st.attempts++
		if pe.Retry {
			p.failed.Add(1)
			if err := p.saveState(ctx, d.ID, st.hash, st.pushedAt, st.attempts, time.Time{}, pe.English()); err != nil {
				return rep, err
			}
			return rep, pe
		}
		p.refused.Add(1)
		rep.Refused++
		backoff := min(time.Hour<<min(st.attempts-1, 5), 24*time.Hour)
		p.log.Warn("inventory: glpi refused a document", "device", d.ID, "status", pe.Status, "message", pe.Message, "retry_in", backoff)
		if err := p.saveState(ctx, d.ID, st.hash, st.pushedAt, st.attempts, now.Add(backoff), pe.English()); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (p *Pusher) loadStates(ctx context.Context) (map[string]pushState, error) {
	rows, err := p.inv.db.QueryContext(ctx, `SELECT device, hash, pushed_at, attempts, next_try FROM inventory_glpi_pushes`)
	if err != nil {
		return nil, fmt.Errorf("inventory: glpi push state: %w", err)
	}
	defer rows.Close()
	out := make(map[string]pushState)
	for rows.Next() {
		var dev string
		var st pushState
		var pushed, next int64
		if err := rows.Scan(&dev, &st.hash, &pushed, &st.attempts, &next); err != nil {
			return nil, fmt.Errorf("inventory: glpi push state: %w", err)
		}
		if pushed != 0 {
			st.pushedAt = time.UnixMilli(pushed)
		}
		if next != 0 {
			st.nextTry = time.UnixMilli(next)
		}
		out[dev] = st
	}
	return out, rows.Err()
}

func (p *Pusher) saveState(ctx context.Context, dev, hash string, pushedAt time.Time, attempts int, nextTry time.Time, lastErr string) error {
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	p.inv.mu.Lock() // the inventory's single writer
	defer p.inv.mu.Unlock()
	_, err := p.inv.db.ExecContext(ctx, `INSERT INTO inventory_glpi_pushes (device, hash, pushed_at, attempts, next_try, last_error)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (device) DO UPDATE SET hash = excluded.hash, pushed_at = excluded.pushed_at, attempts = excluded.attempts,
			next_try = excluded.next_try, last_error = excluded.last_error`,
		dev, hash, ms(pushedAt), attempts, ms(nextTry), cleanText(lastErr, 500))
	if err != nil {
		return fmt.Errorf("inventory: glpi push state of %s: %w", dev, err)
	}
	return nil
}

// maxReply bounds a GLPI reply (a few hundred bytes in practice).
const maxReply = 1 << 20

// send posts one document and reads GLPI's JSON reply:
// {"status":"ok"} or {"status":"error","message":"…"}.
func (p *Pusher) send(ctx context.Context, d Device) error {
	body, err := json.Marshal(p.inv.glpiDocument(d, true))
	if err != nil {
		return err
	}
	ctype := "application/json"
	switch p.cfg.Compression {
	case CompressZlib:
		ctype, body = "application/x-compress-zlib", compress(body, func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) })
	case CompressGzip:
		ctype, body = "application/x-compress-gzip", compress(body, func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) })
	}
	rctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, p.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("inventory: glpi push: %w", err)
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "Preau-Inventory/"+p.inv.cfg.Version)
	req.Header.Set("Pragma", "no-cache") // as GLPI Agent sends, through caching proxies
	resp, err := p.http.Do(req)
	if err != nil {
		return &PushError{Device: d.ID, Message: err.Error(), Retry: true, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return &PushError{Device: d.ID, Status: resp.StatusCode, Message: "reply cut: " + err.Error(), Retry: true, Err: err}
	}
	var reply struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	if plain, err := decompressReply(resp.Header.Get("Content-Type"), raw); err == nil {
		json.Unmarshal(plain, &reply)
	}
	msg := cleanText(cmpOr(reply.Message, http.StatusText(resp.StatusCode)), 300)
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests:
		return &PushError{Device: d.ID, Status: resp.StatusCode, Message: msg, Retry: true}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return &PushError{Device: d.ID, Status: resp.StatusCode, Message: msg}
	case strings.EqualFold(reply.Status, "error"):
		return &PushError{Device: d.ID, Status: resp.StatusCode, Message: msg}
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func compress(b []byte, newWriter func(io.Writer) io.WriteCloser) []byte {
	var buf bytes.Buffer
	w := newWriter(&buf)
	w.Write(b) // writes to a bytes.Buffer do not fail
	w.Close()
	return buf.Bytes()
}

// decompressReply undoes the compression GLPI applies to its reply, the
// same as the request's.
func decompressReply(ctype string, raw []byte) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(ctype)
	var r io.ReadCloser
	var err error
	switch mt {
	case "application/x-compress-zlib", "application/x-zlib":
		r, err = zlib.NewReader(bytes.NewReader(raw))
	case "application/x-compress-gzip", "application/x-gzip":
		r, err = gzip.NewReader(bytes.NewReader(raw))
	case "application/x-compress-deflate", "application/x-deflate":
		r = flate.NewReader(bytes.NewReader(raw))
	default:
		return raw, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, maxReply))
}
