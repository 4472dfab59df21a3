package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Kind is the kind of a source.
type Kind string

// Kinds of sources.
const (
	KindGAR   Kind = "gar"   // the school's GAR resource list
	KindTube  Kind = "tube"  // a PeerTube channel, playlist or video
	KindNuage Kind = "nuage" // a Nextcloud public share, read through WebDAV
	KindPack  Kind = "pack"  // a content pack by URL
)

// SourceSpec says what a source is. Which fields count depends on Kind.
type SourceSpec struct {
	Kind Kind   `json:"kind"`
	Name string `json:"name,omitempty"` // shown to people; derived when empty
	// URL is, for tube, the page of a channel (/c/NAME, /video-channels/NAME),
	// a playlist (/w/p/ID, /videos/watch/playlist/ID) or a video (/w/ID,
	// /videos/watch/ID); for nuage, the share link https://host/s/TOKEN; for
	// pack, the pack's http(s) address; for gar, the base URL of the GAR
	// list service (empty when the list comes from a file).
	URL string `json:"url,omitempty"`
	// Refresh is the interval between two refreshes; 0 means Config.Refresh.
	Refresh time.Duration `json:"refresh,omitempty"`

	// GAR list service: GET {URL}/ressources/{ENT}/{UAI}/{User} over TLS
	// with the ENT's GAR-issued client certificate (PEM files). CAFile adds
	// a CA to trust for the server (a private PKI, tests); empty means the
	// system's roots.
	ENT      string `json:"ent,omitempty"`
	UAI      string `json:"uai,omitempty"`
	User     string `json:"user,omitempty"`
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	CAFile   string `json:"ca_file,omitempty"`
	// GARList is a list exported by the ENT (JSON, {"listeRessources":
	// {"ressource": […]}} or a bare array of resources), used instead of
	// the service. Kept in the database; ImportGARList replaces it.
	GARList []byte `json:"-"`

	// Height is the target height of PeerTube files; 0 means
	// Config.TubeHeight.
	Height int `json:"height,omitempty"`

	// WebDAVURL is the WebDAV folder of a Nextcloud share when it is not
	// derived from URL (https://host/s/TOKEN → https://host/public.php/dav/
	// files/TOKEN/, then the older https://host/public.php/webdav/ with the
	// token as user): a proxy, or a test server.
	WebDAVURL string `json:"webdav_url,omitempty"`

	// GARSource and GARResource link a pack source to the GAR card it is
	// the publisher's offline package of: the card then shows "disponible
	// hors ligne" and links to the pack. The GAR list has no field for such
	// packages: they are added by hand (preau catalog add pack URL).
	GARSource   string `json:"gar_source,omitempty"`
	GARResource string `json:"gar_resource,omitempty"`
}

// Source is a configured source and how it is doing.
type Source struct {
	ID          string
	Kind        Kind
	Name        string
	Spec        SourceSpec
	Refresh     time.Duration
	Created     time.Time
	LastRefresh time.Time // zero before the first successful refresh
	NextRefresh time.Time
	ErrorFR     string // last refresh error, "" when it worked
	ErrorEN     string

	Items, Done, Failed, Queued int // items (videos, files, thumbnails) by state
	BytesDone, BytesTotal       int64
}

// validate checks a spec and returns it normalised.
func (c *Catalog) validateSpec(s SourceSpec) (SourceSpec, error) {
	s.Name = cleanText(s.Name, maxTitle)
	if s.Refresh != 0 && s.Refresh < c.cfg.MinRefresh {
		return s, specError("refresh", fmt.Sprintf("intervalle de mise à jour trop court (minimum %v)", c.cfg.MinRefresh),
			fmt.Sprintf("refresh interval too short (at least %v)", c.cfg.MinRefresh))
	}
	switch s.Kind {
	case KindGAR:
		if len(s.GARList) == 0 {
			if err := checkHTTPURL(s.URL, true); err != nil {
				return s, specError("url", "donnez l'adresse https du service de liste du GAR, ou un fichier exporté par l'ENT",
					"give the https address of the GAR list service, or a file exported by the ENT")
			}
			for _, f := range []struct{ name, v string }{{"ent", s.ENT}, {"uai", s.UAI}, {"user", s.User}, {"cert_file", s.CertFile}, {"key_file", s.KeyFile}} {
				if strings.TrimSpace(f.v) == "" {
					return s, specError(f.name, "champ "+f.name+" manquant pour interroger le GAR (identifiant ENT, UAI, utilisateur, certificat et clé)",
						"field "+f.name+" missing to ask the GAR (ENT id, UAI, user, certificate and key)")
				}
			}
		} else if _, err := parseGARList(s.GARList, c.cfg.MaxGARResources); err != nil {
			return s, err
		}
	case KindTube:
		if _, err := parseTubeURL(s.URL); err != nil {
			return s, err
		}
		if s.Height != 0 && (s.Height < 144 || s.Height > 2160) {
			return s, specError("height", "hauteur de vidéo visée invalide (144 à 2160)", "invalid target video height (144 to 2160)")
		}
	case KindNuage:
		if s.WebDAVURL != "" {
			if err := checkHTTPURL(s.WebDAVURL, false); err != nil {
				return s, specError("webdav_url", "adresse WebDAV invalide", "invalid WebDAV address")
			}
		} else if _, err := shareRoots(s.URL); err != nil {
			return s, err
		}
	case KindPack:
		if err := checkHTTPURL(s.URL, false); err != nil {
			return s, specError("url", "adresse du paquet invalide : donnez une adresse http(s)", "invalid pack address: give an http(s) address")
		}
		if (s.GARSource == "") != (s.GARResource == "") {
			return s, specError("gar_resource", "donnez la source GAR et l'identifiant de la ressource ensemble",
				"give the GAR source and the resource id together")
		}
	default:
		return s, specError("kind", fmt.Sprintf("type de source %q inconnu (gar, tube, nuage, pack)", s.Kind),
			fmt.Sprintf("unknown source kind %q (gar, tube, nuage, pack)", s.Kind))
	}
	return s, nil
}

func specError(field, fr, en string) *Error {
	return permanent("source "+field, "source refusée : "+fr, "source refused: "+en, nil)
}

func checkHTTPURL(s string, httpsOnly bool) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && (httpsOnly || u.Scheme != "http")) {
		return fmt.Errorf("url %q: want an http(s) address", s)
	}
	return nil
}

// sourceID derives a stable id from what identifies the source, so that
// adding the same source twice finds the first.
func sourceID(s SourceSpec) string {
	var id string
	switch s.Kind {
	case KindGAR:
		if len(s.GARList) > 0 && s.URL == "" {
			id = "file|" + s.UAI + "|" + s.Name
			if s.UAI == "" && s.Name == "" {
				id = "doc|" + shortHash(string(s.GARList), 32)
			}
		} else {
			id = s.URL + "|" + s.ENT + "|" + s.UAI + "|" + s.User
		}
	case KindTube:
		t, _ := parseTubeURL(s.URL)
		id = t.base + "|" + string(t.kind) + "|" + t.id
	case KindNuage:
		id = s.URL + "|" + s.WebDAVURL
	default:
		id = s.URL
	}
	return string(s.Kind) + "-" + shortHash(id, 10)
}

// Add adds a source (or updates the name, refresh interval and parameters
// of the same source added before) and schedules its first refresh now.
func (c *Catalog) Add(ctx context.Context, spec SourceSpec) (Source, error) {
	spec, err := c.validateSpec(spec)
	if err != nil {
		return Source{}, err
	}
	id := sourceID(spec)
	if spec.Name == "" {
		spec.Name = defaultName(spec)
	}
	params, err := json.Marshal(spec)
	if err != nil {
		return Source{}, fmt.Errorf("add source: %w", err)
	}
	refresh := spec.Refresh
	if refresh == 0 {
		refresh = c.cfg.Refresh
	}
	now := c.nowMs()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return Source{}, fmt.Errorf("add source: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO catalog_sources (id, kind, name, params, refresh_ms, created_at, next_refresh)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, params = excluded.params,
			refresh_ms = excluded.refresh_ms, next_refresh = excluded.next_refresh`,
		id, string(spec.Kind), spec.Name, string(params), refresh.Milliseconds(), now, now); err != nil {
		return Source{}, fmt.Errorf("add source: %w", err)
	}
	if len(spec.GARList) > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO catalog_gar_lists (source, document, imported_at) VALUES (?, ?, ?)
			ON CONFLICT (source) DO UPDATE SET document = excluded.document, imported_at = excluded.imported_at`,
			id, spec.GARList, now); err != nil {
			return Source{}, fmt.Errorf("add source: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Source{}, fmt.Errorf("add source: %w", err)
	}
	c.log.Info("catalog: source added", "source", id, "kind", spec.Kind, "name", spec.Name)
	c.poke()
	return c.source(ctx, id)
}

// ImportGARList replaces the list of a GAR source with a new export from
// the ENT and refreshes the cards at once.
func (c *Catalog) ImportGARList(ctx context.Context, id string, doc []byte) error {
	src, err := c.source(ctx, id)
	if err != nil {
		return err
	}
	if src.Kind != KindGAR {
		return fmt.Errorf("import gar list: source %s is not a GAR source", id)
	}
	if _, err := parseGARList(doc, c.cfg.MaxGARResources); err != nil {
		return err
	}
	if _, err := c.db.ExecContext(ctx, `INSERT INTO catalog_gar_lists (source, document, imported_at) VALUES (?, ?, ?)
		ON CONFLICT (source) DO UPDATE SET document = excluded.document, imported_at = excluded.imported_at`,
		id, doc, c.nowMs()); err != nil {
		return fmt.Errorf("import gar list: %w", err)
	}
	return c.Refresh(ctx, id)
}

func defaultName(s SourceSpec) string {
	switch s.Kind {
	case KindGAR:
		if s.UAI != "" {
			return "Ressources GAR " + s.UAI
		}
		return "Ressources GAR"
	case KindTube:
		t, _ := parseTubeURL(s.URL)
		return "Tube " + t.id
	case KindNuage:
		return "Partage Nuage"
	}
	if u, err := url.Parse(s.URL); err == nil {
		return "Paquet " + u.Host + u.Path
	}
	return "Paquet"
}

const selectSource = `SELECT s.id, s.kind, s.name, s.params, s.refresh_ms, s.created_at, s.last_refresh, s.next_refresh,
	s.error_fr, s.error_en,
	count(i.key), count(i.key) FILTER (WHERE i.state = 'done'), count(i.key) FILTER (WHERE i.state = 'failed'),
	count(i.key) FILTER (WHERE i.state IN ('queued', 'downloading')),
	coalesce(sum(i.bytes_done), 0), coalesce(sum(i.bytes_total), 0)
	FROM catalog_sources s LEFT JOIN catalog_items i ON i.source = s.id`

func scanSource(sc interface{ Scan(...any) error }) (Source, error) {
	var s Source
	var kind, params string
	var refresh, created, next int64
	var last sql.NullInt64
	if err := sc.Scan(&s.ID, &kind, &s.Name, &params, &refresh, &created, &last, &next, &s.ErrorFR, &s.ErrorEN,
		&s.Items, &s.Done, &s.Failed, &s.Queued, &s.BytesDone, &s.BytesTotal); err != nil {
		return s, err
	}
	s.Kind = Kind(kind)
	if err := json.Unmarshal([]byte(params), &s.Spec); err != nil {
		return s, fmt.Errorf("source %s: params: %w", s.ID, err)
	}
	s.Refresh = time.Duration(refresh) * time.Millisecond
	s.Created = time.UnixMilli(created)
	if last.Valid {
		s.LastRefresh = time.UnixMilli(last.Int64)
	}
	s.NextRefresh = time.UnixMilli(next)
	return s, nil
}

// List returns the sources, oldest first.
func (c *Catalog) List(ctx context.Context) ([]Source, error) {
	rows, err := c.db.QueryContext(ctx, selectSource+` GROUP BY s.id ORDER BY s.created_at, s.id`)
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	defer rows.Close()
	var out []Source
	for rows.Next() {
		s, err := scanSource(rows)
		if err != nil {
			return nil, fmt.Errorf("list sources: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (c *Catalog) source(ctx context.Context, id string) (Source, error) {
	s, err := scanSource(c.db.QueryRowContext(ctx, selectSource+` WHERE s.id = ? GROUP BY s.id`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("source %q: %w", id, ErrUnknownSource)
	}
	if err != nil {
		return s, fmt.Errorf("source %q: %w", id, err)
	}
	return s, nil
}

// Packs returns the ids of the packs a source has published (for the CLI's
// pin, which is the content store's).
func (c *Catalog) Packs(ctx context.Context, id string) ([]string, error) {
	if _, err := c.source(ctx, id); err != nil {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, `SELECT DISTINCT pack_id FROM catalog_items WHERE source = ? AND pack_id != '' ORDER BY pack_id`, id)
	if err != nil {
		return nil, fmt.Errorf("packs of %s: %w", id, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Remove removes a source: its downloads stop, its packs and pinned
// thumbnails leave the store, its rows go.
func (c *Catalog) Remove(ctx context.Context, id string) error {
	if _, err := c.source(ctx, id); err != nil {
		return err
	}
	mu := c.sourceLock(id)
	mu.Lock()
	defer mu.Unlock()
	// Mark the source as going, so no worker claims its items meanwhile.
	c.mu.Lock()
	c.removing[id] = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.removing, id)
		c.mu.Unlock()
	}()
	if _, err := c.db.ExecContext(ctx, `UPDATE catalog_items SET state = 'failed', next_attempt = 0
		WHERE source = ? AND state = 'queued'`, id); err != nil {
		return fmt.Errorf("remove source %s: %w", id, err)
	}
	c.stopFlights(func(k itemKey) bool { return k.source == id })
	items, err := c.items(ctx, `WHERE source = ?`, id)
	if err != nil {
		return fmt.Errorf("remove source %s: %w", id, err)
	}
	for _, it := range items {
		if err := c.releaseItem(ctx, it); err != nil {
			return fmt.Errorf("remove source %s: %w", id, err)
		}
	}
	if _, err := c.db.ExecContext(ctx, `DELETE FROM catalog_sources WHERE id = ?`, id); err != nil {
		return fmt.Errorf("remove source %s: %w", id, err)
	}
	c.log.Info("catalog: source removed", "source", id, "items", len(items))
	return nil
}

// releaseItem removes what an item holds in the store: its pack, its pins.
func (c *Catalog) releaseItem(ctx context.Context, it item) error {
	if it.PackID != "" {
		if err := c.store.RemovePack(ctx, it.PackID); err != nil && !errors.Is(err, ErrNoPack) {
			return fmt.Errorf("remove pack %s: %w", it.PackID, err)
		}
	}
	if err := c.store.Unpin(ctx, ownerOf(it)); err != nil {
		return fmt.Errorf("unpin %s: %w", ownerOf(it), err)
	}
	return nil
}

// ownerOf is the pin owner of an item's blobs in the content store:
// catalog:gar:<source>:<card> for a GAR thumbnail (kept pinned: cards are
// not packs), catalog:<source>:<key> for a pack's files until the pack is
// committed.
func ownerOf(it item) string {
	if it.Kind == itemThumbnail {
		return "catalog:gar:" + it.Source + ":" + shortHash(it.Key, 12)
	}
	return "catalog:" + it.Source + ":" + shortHash(it.Key, 12)
}

func (c *Catalog) sourceLock(id string) *sync.Mutex {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	mu := c.refreshing[id]
	if mu == nil {
		mu = &sync.Mutex{}
		c.refreshing[id] = mu
	}
	return mu
}

// Refresh lists a source now (a person asked: it does not wait for the
// prefetch window; its requests still go through the paced Doer) and
// queues what changed; downloads wait for the budget as always. It returns
// the refresh's error, also recorded on the source.
func (c *Catalog) Refresh(ctx context.Context, id string) error {
	return c.refreshNow(ctx, id, false)
}

// refreshNow refreshes source id; scheduled refreshes wait for the budget
// first (without holding the source's lock, so Remove is never stuck
// behind a closed window).
func (c *Catalog) refreshNow(ctx context.Context, id string, wait bool) error {
	if wait && c.budget != nil {
		if err := c.budget.Wait(ctx); err != nil {
			return fmt.Errorf("refresh %s: wait for the budget: %w", id, err)
		}
	}
	mu := c.sourceLock(id)
	mu.Lock()
	defer mu.Unlock()
	src, err := c.source(ctx, id)
	if err != nil {
		return err
	}
	err = c.refresh(ctx, src)
	if ctx.Err() != nil {
		return err
	}
	now := c.now()
	if err != nil {
		fr, en := messages(err)
		next := now.Add(jitter(min(c.cfg.RetryMax, max(c.cfg.RetryMin*8, src.Refresh/8))))
		if _, dbErr := c.db.ExecContext(ctx, `UPDATE catalog_sources SET error_fr = ?, error_en = ?, next_refresh = ? WHERE id = ?`,
			fr, en, next.UnixMilli(), id); dbErr != nil {
			return fmt.Errorf("refresh %s: %w", id, dbErr)
		}
		c.log.Warn("catalog: refresh failed", "source", id, "err", en)
		return err
	}
	if _, err := c.db.ExecContext(ctx, `UPDATE catalog_sources SET error_fr = '', error_en = '', last_refresh = ?, next_refresh = ?
		WHERE id = ?`, now.UnixMilli(), now.Add(src.Refresh).UnixMilli(), id); err != nil {
		return fmt.Errorf("refresh %s: %w", id, err)
	}
	c.poke()
	return nil
}

// refresh lists src and merges what it offers with its items.
func (c *Catalog) refresh(ctx context.Context, src Source) error {
	var listed []listedItem
	var err error
	switch src.Kind {
	case KindGAR:
		listed, err = c.refreshGAR(ctx, src)
	case KindTube:
		listed, err = c.listTube(ctx, src)
	case KindNuage:
		listed, err = c.listShare(ctx, src)
	case KindPack:
		listed, err = c.listPackURL(ctx, src)
	default:
		err = fmt.Errorf("refresh %s: unknown kind %q", src.ID, src.Kind)
	}
	if err != nil {
		return err
	}
	return c.merge(ctx, src, listed)
}

// refreshLoop refreshes each source when it is due.
func (c *Catalog) refreshLoop(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var id string
		var next sql.NullInt64
		err := c.db.QueryRowContext(ctx, `SELECT id, next_refresh FROM catalog_sources ORDER BY next_refresh, id LIMIT 1`).Scan(&id, &next)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, sql.ErrNoRows):
			id = ""
		case err != nil:
			return fmt.Errorf("catalog: next refresh: %w", err)
		}
		var wait time.Duration = -1
		if id != "" {
			wait = time.Duration(next.Int64-c.nowMs()) * time.Millisecond
		}
		if id != "" && wait <= 0 {
			err := c.refreshNow(ctx, id, true)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil && !errors.Is(err, ErrUnknownSource) {
				// A failed listing is recorded with its next attempt; any
				// other failure (database, budget) goes to the supervisor.
				var again int64
				if qerr := c.db.QueryRowContext(ctx, `SELECT next_refresh FROM catalog_sources WHERE id = ?`, id).Scan(&again); qerr == nil && again <= c.nowMs() {
					return fmt.Errorf("catalog: refresh %s: %w", id, err)
				}
			}
			continue
		}
		var tick <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.wakeRefresh:
		case <-tick:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// jitter spreads d by ±25 %.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	q := int64(d) / 4
	return time.Duration(int64(d) - q + rand.Int64N(2*q+1))
}
