package appliance

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"preau/appliance/store"
	"preau/services/assignments"
	"preau/sync/budget"
	"preau/sync/outbox"
	"preau/sync/syncthing"
	"preau/sync/uplink"
	"preau/sync/usb"
	"preau/sync/webdav"
)

// handin is the pupils' hand-in path: the assignments pages, the outbox
// that delivers each file exactly once, the WebDAV connectors and the one
// WAN budget every background upload goes through.
type handin struct {
	sched       *budget.Scheduler
	capStore    capStore
	outbox      *outbox.Outbox
	assignments *assignments.Service
	courier     *usb.Courier
	syncthing   *syncthing.Syncthing // nil without a Syncthing destination
	log         *slog.Logger
}

// newHandIn builds the hand-in path. The portal links to its pages.
func (b *Box) newHandIn(ctx context.Context) error {
	cfg := b.cfg
	for _, m := range []struct {
		name string
		ms   []store.Migration
	}{
		{"outbox", convertMigrations(outbox.Migrations())},
		{"assignments", convertMigrations(assignments.Migrations())},
		{"usb", convertMigrations(usb.Migrations())},
	} {
		if err := b.store.Migrate(ctx, m.name, m.ms); err != nil {
			return err
		}
	}
	bc := budget.Config{TargetDelay: mustDuration(cfg.Sync.TargetDelay), Location: time.Local}
	for _, w := range cfg.Sync.Windows {
		sp, _ := budget.ParseSpan(w)
		bc.Windows = append(bc.Windows, sp)
	}
	for _, w := range cfg.Sync.ClassHours {
		sp, _ := budget.ParseSpan(w)
		bc.ClassHours = append(bc.ClassHours, sp)
	}
	for _, h := range cfg.Sync.Holidays {
		r, _ := budget.ParseDateRange(h)
		bc.Holidays = append(bc.Holidays, r)
	}
	if cfg.Sync.MaxRate != "" {
		bc.MaxRate = mustSize(cfg.Sync.MaxRate)
	}
	if cfg.Sync.DailyCap != "" {
		bc.DailyCap = mustSize(cfg.Sync.DailyCap)
	}
	h := &handin{log: b.log.With("component", "handin")}
	var err error
	if h.sched, err = budget.New(bc, b.uplink, time.Now, b.log.With("component", "budget")); err != nil {
		return err
	}
	h.capStore = capStore{db: b.store.DB(), log: h.log}
	h.capStore.restore(ctx, h.sched)
	var dests []assignments.Destination
	conns := map[string]outbox.Connector{}
	// sync.workers files have their bytes on the wire at once; as many
	// more items may be between round trips (folder, check, move into
	// place), which add no load but take 4 RTTs a file: on a 300 ms
	// uplink they would otherwise leave the link idle between small files.
	bodies := webdav.NewSlots(cfg.Sync.Workers)
	if h.syncthing, err = b.newSyncthing(); err != nil {
		return err
	}
	for id, d := range cfg.Destinations {
		dests = append(dests, assignments.Destination{ID: id, Label: d.Label})
		if d.Type == "syncthing" {
			folder, err := filepath.Abs(syncthingFolder(cfg.Box.DataDir))
			if err != nil {
				return err
			}
			conns[id] = syncthingConnector{st: h.syncthing, folder: folder, prefix: id}
			continue
		}
		pw := ""
		if d.PasswordFile != "" {
			raw, err := os.ReadFile(d.PasswordFile)
			if err != nil {
				return fmt.Errorf("destination %s: read password file: %w", id, err)
			}
			pw = strings.TrimSpace(string(raw))
		}
		c, err := webdav.New(webdav.Config{URL: d.URL, User: d.User, Password: pw, Nickname: d.Nickname, Bodies: bodies},
			h.sched.Doer(budget.ClassHandIn), b.log.With("component", "webdav", "destination", id))
		if err != nil {
			return fmt.Errorf("destination %s: %w", id, err)
		}
		conns[id] = c
	}
	lookup := outbox.ConnectorsFunc(func(dest string) (outbox.Connector, error) {
		if c, ok := conns[dest]; ok {
			return c, nil
		}
		return nil, fmt.Errorf("destination %q: %w", dest, outbox.ErrUnknownDestination)
	})
	gate := outbox.GateFunc(func(ctx context.Context) error { return h.sched.Wait(ctx, budget.ClassHandIn) })
	if h.outbox, err = outbox.New(outbox.Config{Workers: 2 * cfg.Sync.Workers}, b.store.DB(), b.content, lookup, gate,
		b.log.With("component", "outbox")); err != nil {
		return err
	}
	// Back online: items waiting out a backoff go now.
	b.uplink.OnChange(func(st uplink.State) {
		if st.Online {
			h.outbox.RetryNow(context.Background())
		}
	})
	if h.assignments, err = assignments.New(assignments.Config{
		Authenticate:    b.teacherAuth,
		SchoolName:      cfg.Box.Name,
		DefaultLanguage: cfg.Portal.Language,
		StylesheetURL:   b.portal.StylesheetURL(),
		PortalURL:       "/",
		Destinations:    dests,
		OnHandIn:        h.enqueue,
		MaxFileBytes:    mustSize(cfg.Assignments.MaxFileSize),
		MaxTotalBytes:   mustSize(cfg.Assignments.MaxHandInSize),
		MaxFiles:        cfg.Assignments.MaxFiles,
	}, b.store.DB(), b.content, delivery{h.outbox}, b.log.With("component", "assignments")); err != nil {
		return err
	}
	boxID := cfg.Box.UAI
	if boxID == "" {
		boxID, _ = os.Hostname()
	}
	if h.courier, err = usb.New(usb.Config{BoxID: boxID}, b.log.With("component", "usb")); err != nil {
		return err
	}
	b.handin = h
	b.metrics.MustRegister(h.sched.Collector(), h.outbox.Collector(), b.uplink.Collector())
	return nil
}

// enqueue puts every file of a committed hand-in in the outbox. Enqueue is
// idempotent on the file's key, so the replay of hand-ins whose hook did
// not return (a crash) adds nothing twice.
func (h *handin) enqueue(ctx context.Context, hi assignments.HandIn) {
	log := h.log
	for _, f := range hi.Files {
		it := outbox.Item{Key: f.Key, Destination: hi.Destination, RemotePath: f.Path, BlobHash: f.SHA256,
			Size: f.Size, SHA256: f.SHA256, MediaType: f.MediaType, Priority: 10, CreatedAt: hi.Received}
		if err := h.outbox.Enqueue(ctx, it); err != nil && !errors.Is(err, context.Canceled) {
			// The hook runs again at the next start (PendingHandIns).
			log.Error("mise en file d'envoi impossible", "key", f.Key, "err", err)
		}
	}
}

func (h *handin) parts() []part {
	ps := []part{
		{name: "budget", serve: h.sched.Serve},
		{name: "budget-cap", serve: func(ctx context.Context) error { return h.capStore.keep(ctx, h.sched) }},
		{name: "outbox", serve: h.outbox.Serve},
		{name: "assignments", serve: h.assignments.Serve},
	}
	if h.syncthing != nil {
		ps = append(ps, part{name: "syncthing", serve: h.syncthing.Serve})
	}
	return ps
}

// delivery adapts the outbox to the assignments' Delivery interface.
type delivery struct{ o *outbox.Outbox }

func (d delivery) State(ctx context.Context, key string) (assignments.DeliveryState, error) {
	st, err := d.o.Get(ctx, key)
	if errors.Is(err, outbox.ErrNotFound) {
		return assignments.DeliveryState{}, fmt.Errorf("%s: %w", key, assignments.ErrNotQueued)
	}
	if err != nil {
		return assignments.DeliveryState{}, err
	}
	fr, en := st.Label()
	ds := assignments.DeliveryState{Message: fr, MessageEN: en}
	switch st.State {
	case outbox.StateDelivered:
		ds.Status = assignments.DeliveryDelivered
	case outbox.StateFailed:
		ds.Status = assignments.DeliveryFailed
	case outbox.StateSending, outbox.StateVerifying:
		ds.Status = assignments.DeliverySending
	default:
		ds.Status = assignments.DeliveryQueued
	}
	return ds, nil
}

// handInRoutes mounts the pupils' and teachers' pages.
func (b *Box) handInRoutes(mux *http.ServeMux) {
	h := b.instrument("assignments", b.handin.assignments.Handler())
	for _, p := range []string{"/devoirs", "/devoirs/", "/enseignant", "/enseignant/"} {
		mux.Handle(p, h)
	}
}

// capStore keeps the bytes of the day's cap spent in the settings table,
// so that a restart (or a power cut, losing at most capSaveEvery of
// usage) does not hand out the daily cap again.
type capStore struct {
	db  *sql.DB
	log *slog.Logger
}

const (
	capKey       = "budget.cap_used"
	capSaveEvery = 30 * time.Second
)

type capRecord struct {
	Day  string `json:"day"` // YYYY-MM-DD, in the box's time zone
	Used int64  `json:"used"`
}

func (c capStore) restore(ctx context.Context, s *budget.Scheduler) {
	var v string
	err := c.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, capKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return
	}
	var r capRecord
	if err == nil {
		err = json.Unmarshal([]byte(v), &r)
	}
	t, perr := time.Parse(time.DateOnly, r.Day)
	if err != nil || perr != nil {
		c.log.Warn("daily cap usage unreadable; counting from zero", "err", errors.Join(err, perr))
		return
	}
	s.RestoreCapUsage(budget.Date{Year: t.Year(), Month: t.Month(), Day: t.Day()}, r.Used)
}

func (c capStore) save(ctx context.Context, s *budget.Scheduler) error {
	day, used := s.CapUsage()
	b, _ := json.Marshal(capRecord{Day: day.String(), Used: used})
	_, err := c.db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, capKey, string(b))
	return err
}

// keep saves the usage every capSaveEvery when it changed, and at the end.
func (c capStore) keep(ctx context.Context, s *budget.Scheduler) error {
	t := time.NewTicker(capSaveEvery)
	defer t.Stop()
	var last budget.Date
	lastUsed := int64(-1)
	for {
		select {
		case <-ctx.Done():
			// The box is stopping: a fresh context, briefly.
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := c.save(sctx, s); err != nil {
				c.log.Warn("daily cap usage not saved", "err", err)
			}
			return nil
		case <-t.C:
			if day, used := s.CapUsage(); day != last || used != lastUsed {
				if err := c.save(ctx, s); err != nil && ctx.Err() == nil {
					c.log.Warn("daily cap usage not saved", "err", err)
				} else {
					last, lastUsed = day, used
				}
			}
		}
	}
}
