package appliance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"preau/services/catalog"
	"preau/services/content"
	"preau/services/httpcache"
	"preau/services/portal"
	"preau/sync/budget"
)

// catalogStore adapts the content store to what the catalogue needs:
// downloads go through doer (the WAN budget's prefetch client).
type catalogStore struct {
	s    *content.Store
	doer content.Doer
}

// storeFull carries content's "store full" error so that the catalogue
// recognises it (errors.Is catalog.ErrStoreFull). Its texts are the
// store's own, without the operation prefixes: people read them on the
// catalogue's cards and in `preau catalog list`.
type storeFull struct {
	full *content.StoreFullError
	err  error
}

func (e storeFull) Error() string   { return e.full.Error() }
func (e storeFull) English() string { return e.full.English() }
func (e storeFull) Unwrap() []error { return []error{e.err, catalog.ErrStoreFull} }

// refused marks what the content store refused (wrong hash or size, a
// hostile pack) for the catalogue (errors.Is catalog.ErrRefused), its
// text unchanged.
type refused struct{ err error }

func (e refused) Error() string   { return e.err.Error() }
func (e refused) Unwrap() []error { return []error{e.err, catalog.ErrRefused} }

func (a catalogStore) Fetch(ctx context.Context, f catalog.Fetch) (catalog.Fetched, error) {
	r, err := a.s.FetchBlob(ctx, content.FetchRequest{Owner: f.Owner, URL: f.URL, Size: f.Size, SHA256: f.SHA256,
		Doer: a.doer, Progress: f.Progress})
	if full := (*content.StoreFullError)(nil); errors.As(err, &full) {
		err = storeFull{full: full, err: err}
	} else if errors.Is(err, content.ErrFetchRefused) {
		err = refused{err}
	}
	return catalog.Fetched{SHA256: r.SHA256, Size: r.Size, Resumed: r.Resumed}, err
}

func (a catalogStore) CommitPack(ctx context.Context, manifest []byte, source string) error {
	_, err := a.s.CommitPack(ctx, manifest, content.CommitOptions{Source: source})
	return err
}

func (a catalogStore) RemovePack(ctx context.Context, id string) error {
	err := a.s.Remove(ctx, id)
	if errors.Is(err, content.ErrNotFound) {
		return fmt.Errorf("%w: %w", catalog.ErrNoPack, err)
	}
	return err
}

func (a catalogStore) ImportURL(ctx context.Context, url string, progress func(done, total int64)) (string, error) {
	info, err := a.s.Import(ctx, url, func(p content.Progress) {
		if progress != nil {
			progress(p.BytesDone, p.BytesTotal)
		}
	})
	if pe := (*content.PackError)(nil); errors.As(err, &pe) {
		err = refused{err}
	}
	return info.ID, err
}

func (a catalogStore) OpenBlob(hash string) (*os.File, error) { return a.s.OpenBlob(hash) }

func (a catalogStore) Unpin(ctx context.Context, owner string) error { return a.s.Unpin(ctx, owner) }

// prefetchGate is the WAN budget as the catalogue sees it: prefetch is
// its lowest class.
type prefetchGate struct{ s *budget.Scheduler }

func (g prefetchGate) Wait(ctx context.Context) error { return g.s.Wait(ctx, budget.ClassPrefetch) }

// newCatalog builds the catalogue on the content store and the WAN
// budget (after newHandIn, which builds the budget).
func (b *Box) newCatalog(ctx context.Context) error {
	if err := b.store.Migrate(ctx, "catalog", convertMigrations(catalog.Migrations())); err != nil {
		return err
	}
	cfg := b.cfg.Catalog
	ccfg := catalog.Config{Workers: cfg.Workers, Refresh: mustDuration(cfg.Refresh), TubeHeight: cfg.TubeHeight,
		Language: b.cfg.Portal.Language}.WithDefaults()
	if err := b.store.Migrate(ctx, "httpcache", convertMigrations(httpcache.Migrations())); err != nil {
		return err
	}
	var err error
	hcfg := b.cacheConfig()
	hcfg.Dir = filepath.Join(b.cfg.Box.DataDir, "httpcache")
	hcfg.Offline = func() bool { return !b.uplink.Online() }
	if b.cache, err = httpcache.New(hcfg, b.store.DB(), b.log.With("component", "httpcache")); err != nil {
		return err
	}
	// Files go to the content store through the paced client; metadata
	// (API pages, lists, thumbnails' checks) through the RFC 9111 cache
	// in front of it, so that a refresh revalidates instead of fetching
	// again, and a cut uplink still answers from what was stored.
	doer := b.handin.sched.Doer(budget.ClassPrefetch)
	b.catalog, err = catalog.New(ccfg, b.store.DB(), catalogStore{s: b.content, doer: doer}, prefetchGate{b.handin.sched},
		b.cache.Transport(doer), time.Now, b.log.With("component", "catalog"))
	if err != nil {
		return err
	}
	b.metrics.MustRegister(newContentCollector(b.content), b.cache.Collector())
	return nil
}

// catalogParts are the catalogue's and the content store's loops: the
// download queue and refreshes, the last-access flush, the nightly scrub.
func (b *Box) catalogParts() []part {
	return []part{
		{name: "httpcache", serve: b.cache.Serve},
		{name: "catalog", serve: b.catalog.Serve},
		{name: "content", serve: b.content.Serve},
		{name: "scrub", serve: b.scrubNightly},
	}
}

// Scrub schedule: every night from scrubFrom for at most scrubFor, at
// the content store's scrub rate; the pass resumes the next night.
const (
	scrubFrom = 1 * time.Hour
	scrubFor  = 4 * time.Hour
)

// scrubNightly re-hashes the stored blobs at night and asks the
// catalogue to fetch again what it found damaged.
func (b *Box) scrubNightly(ctx context.Context) error {
	for {
		now := time.Now()
		next := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location()).Add(scrubFrom)
		if !next.After(now) {
			next = next.AddDate(0, 0, 1)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(next)):
		}
		b.scrubOnce(ctx, scrubFor)
	}
}

// scrubOnce runs the scrub for at most d and queues repairs.
func (b *Box) scrubOnce(ctx context.Context, d time.Duration) {
	sctx, cancel := context.WithTimeout(ctx, d)
	rep, err := b.content.Scrub(sctx, 0)
	cancel()
	if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
		b.log.Warn("vérification des contenus interrompue", "err", err)
	}
	b.log.Info("vérification des contenus", "checked", rep.Checked, "bytes", rep.Bytes, "damaged", len(rep.Damaged), "complete", rep.Complete)
	damaged, err := b.content.Damaged(ctx)
	if err != nil || len(damaged) == 0 {
		return
	}
	hashes := make([]string, len(damaged))
	for i, d := range damaged {
		hashes[i] = d.SHA256
	}
	if n, err := b.catalog.Repair(ctx, hashes); err != nil {
		b.log.Warn("réparation des contenus endommagés", "err", err)
	} else if n > 0 {
		b.log.Info("contenus endommagés remis en file de téléchargement", "items", n)
	}
}

// contentCollector exports the content store's usage; it measures at
// most once a minute (Usage walks the blob folders).
type contentCollector struct {
	s     *content.Store
	descs map[string]*prometheus.Desc
	mu    chan struct{}
	last  time.Time
	u     content.Usage
}

func newContentCollector(s *content.Store) *contentCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("preau_content_"+name, help, nil, nil)
	}
	return &contentCollector{s: s, mu: make(chan struct{}, 1), descs: map[string]*prometheus.Desc{
		"used":      d("used_bytes", "Bytes the content store uses on disk (blobs, partial downloads, quarantine)."),
		"quota":     d("quota_bytes", "Effective quota of the content store in bytes (-1: none)."),
		"free":      d("disk_free_bytes", "Free bytes on the content store's filesystem."),
		"pinned":    d("pinned_bytes", "Bytes of packs a teacher pinned."),
		"evictable": d("evictable_bytes", "Bytes that evicting every evictable catalogue pack would free."),
		"catalog":   d("catalog_packs", "Content packs a catalogue source brought (evictable unless pinned)."),
		"damaged":   d("damaged_blobs", "Blobs the scrub found damaged, waiting to be fetched again."),
	}}
}

func (c *contentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *contentCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu <- struct{}{}
	if time.Since(c.last) > time.Minute {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if u, err := c.s.Usage(ctx); err == nil {
			c.u, c.last = u, time.Now()
		}
		cancel()
	}
	u := c.u
	<-c.mu
	g := func(k string, v int64) {
		ch <- prometheus.MustNewConstMetric(c.descs[k], prometheus.GaugeValue, float64(v))
	}
	g("used", u.UsedBytes)
	g("quota", u.QuotaBytes)
	g("free", u.FreeBytes)
	g("pinned", u.PinnedBytes)
	g("evictable", u.EvictableBytes)
	g("catalog", int64(u.CatalogPacks))
	g("damaged", int64(u.DamagedBlobs))
}

// portalCards shows the catalogue's cards on the portal. The portal is
// built before the catalogue, so it reaches it through the box.
type portalCards struct{ b *Box }

func (p portalCards) Cards(ctx context.Context, q portal.CardQuery) ([]portal.Card, error) {
	if p.b.catalog == nil {
		return nil, nil
	}
	cards, err := p.b.catalog.Cards(ctx, catalog.CardFilter{Query: q.Query, Level: q.Level, Domain: q.Domain,
		Kind: catalog.Kind(q.Kind), State: catalog.CardState(q.State), Limit: q.Limit, Offset: q.Offset})
	if err != nil {
		return nil, err
	}
	out := make([]portal.Card, len(cards))
	for i, c := range cards {
		out[i] = portal.Card{Source: c.Source, Kind: portal.CardKind(c.SourceKind), ID: c.ID, Title: c.Title,
			Publisher: c.Publisher, Thumbnail: c.Thumbnail, Link: c.Link, PackID: c.PackID,
			State: portal.CardState(c.State), Percent: c.Percent, StatusFR: c.StatusFR, StatusEN: c.StatusEN,
			ErrorFR: c.ErrorFR, ErrorEN: c.ErrorEN, Levels: c.Levels, Domains: c.Domains, Typologies: c.Typologies}
	}
	return out, nil
}
