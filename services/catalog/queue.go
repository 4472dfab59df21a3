package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"
)

// Item kinds and states.
const (
	itemVideo     = "video"     // one PeerTube video: one pack
	itemShare     = "share"     // one Nextcloud share: one pack
	itemPack      = "pack"      // one pack by URL
	itemThumbnail = "thumbnail" // one GAR thumbnail: a pinned blob

	stateQueued      = "queued"
	stateDownloading = "downloading"
	stateDone        = "done"
	stateFailed      = "failed"
)

// item is one row of catalog_items.
type item struct {
	Source, Key, Kind     string
	Position              int
	Title                 string
	Plan                  plan
	PackID                string
	State                 string
	BytesDone, BytesTotal int64
	Attempts              int
	NextAttempt           int64
	ErrorFR, ErrorEN      string
	Updated               int64
}

// plan says what an item fetches and, for packs, the pack it builds.
type plan struct {
	// Packs (video, share): the manifest to commit, without sizes and
	// hashes (filled from Files), and the files to fetch.
	Manifest *manifest  `json:"manifest,omitempty"`
	Files    []planFile `json:"files,omitempty"`
	// Pack by URL and thumbnails: the address; the validators seen.
	URL          string `json:"url,omitempty"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// Thumbnails: the GAR card, the stored blob.
	Card   string `json:"card,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Stamp is what the source's listing says of the item's version
	// (PeerTube's updatedAt): an unchanged stamp skips the details.
	Stamp string `json:"stamp,omitempty"`
}

// planFile is one file of a pack to fetch.
type planFile struct {
	Path      string `json:"path"`
	URL       string `json:"url"`
	Size      int64  `json:"size"`             // -1 when the source gives none
	SHA256    string `json:"sha256,omitempty"` // once fetched
	MediaType string `json:"media_type"`
	ETag      string `json:"etag,omitempty"` // WebDAV ETag (shares)
}

// fingerprint identifies what a plan fetches, without what was learnt by
// fetching it.
func (p plan) fingerprint() string {
	q := p
	q.SHA256 = ""
	q.Files = make([]planFile, len(p.Files))
	for i, f := range p.Files {
		f.SHA256 = ""
		if f.ETag != "" || f.Size < 0 {
			f.Size = 0 // a share's size is the ETag's business; unknown sizes are learnt
		}
		q.Files[i] = f
	}
	b, _ := json.Marshal(q)
	return string(b)
}

// carryOver copies into p what old learnt of the same files.
func (p *plan) carryOver(old plan) {
	type fk struct {
		path, url, etag string
		size            int64
	}
	known := make(map[fk]planFile, len(old.Files))
	for _, f := range old.Files {
		if f.SHA256 != "" {
			known[fk{f.Path, f.URL, f.ETag, sizeKey(f)}] = f
		}
	}
	for i, f := range p.Files {
		if o, ok := known[fk{f.Path, f.URL, f.ETag, sizeKey(f)}]; ok {
			p.Files[i].SHA256 = o.SHA256
			p.Files[i].Size = o.Size
		}
	}
	if p.URL != "" && p.URL == old.URL {
		p.SHA256 = old.SHA256
	}
}

func sizeKey(f planFile) int64 {
	if f.ETag != "" {
		return 0
	}
	return f.Size
}

// listedItem is what a source's listing offers.
type listedItem struct {
	key, kind, title string
	plan             plan
	failFR, failEN   string // a permanent failure known from the listing
	reuse            bool   // unchanged since the last listing: keep the item's plan
}

const selectItem = `SELECT source, key, kind, position, title, plan, pack_id, state, bytes_done, bytes_total,
	attempts, next_attempt, error_fr, error_en, updated_at FROM catalog_items `

func scanItem(sc interface{ Scan(...any) error }) (item, error) {
	var it item
	var p string
	err := sc.Scan(&it.Source, &it.Key, &it.Kind, &it.Position, &it.Title, &p, &it.PackID, &it.State,
		&it.BytesDone, &it.BytesTotal, &it.Attempts, &it.NextAttempt, &it.ErrorFR, &it.ErrorEN, &it.Updated)
	if err != nil {
		return it, err
	}
	if err := json.Unmarshal([]byte(p), &it.Plan); err != nil {
		return it, fmt.Errorf("item %s/%s: plan: %w", it.Source, it.Key, err)
	}
	return it, nil
}

func (c *Catalog) items(ctx context.Context, where string, args ...any) ([]item, error) {
	rows, err := c.db.QueryContext(ctx, selectItem+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []item
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// merge records what a listing of src offers: new items are queued,
// changed ones queued again, done ones whose blobs went (evicted, damaged)
// queued again, failed ones given a new chance, and items no longer listed
// removed with their packs.
func (c *Catalog) merge(ctx context.Context, src Source, listed []listedItem) error {
	old, err := c.items(ctx, `WHERE source = ?`, src.ID)
	if err != nil {
		return fmt.Errorf("refresh %s: %w", src.ID, err)
	}
	byKey := make(map[string]item, len(old))
	for _, it := range old {
		byKey[it.Key] = it
	}
	now := c.nowMs()
	var release []item
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("refresh %s: %w", src.ID, err)
	}
	defer tx.Rollback()
	upsert := func(l listedItem, pos int, p plan, state, fr, en string, packID string) error {
		pj, err := json.Marshal(p)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO catalog_items (source, key, kind, position, title, plan, pack_id, state,
			bytes_done, bytes_total, attempts, next_attempt, error_fr, error_en, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0, ?, ?, ?, ?)
			ON CONFLICT (source, key) DO UPDATE SET kind = excluded.kind, position = excluded.position,
				title = excluded.title, plan = excluded.plan, pack_id = excluded.pack_id, state = excluded.state,
				bytes_done = 0, bytes_total = excluded.bytes_total, attempts = 0, next_attempt = excluded.next_attempt,
				error_fr = excluded.error_fr, error_en = excluded.error_en, updated_at = excluded.updated_at`,
			src.ID, l.key, l.kind, pos, l.title, string(pj), packID, state, p.knownBytes(), now, fr, en, now)
		return err
	}
	seen := make(map[string]bool, len(listed))
	for pos, l := range listed {
		if seen[l.key] {
			continue
		}
		seen[l.key] = true
		o, exists := byKey[l.key]
		if exists && o.State == stateDownloading {
			// Under way: leave it; the next refresh sees any change.
			continue
		}
		if l.failFR != "" {
			if exists && o.PackID != "" {
				release = append(release, o)
			}
			if err := upsert(l, pos, l.plan, stateFailed, l.failFR, l.failEN, ""); err != nil {
				return fmt.Errorf("refresh %s: %w", src.ID, err)
			}
			continue
		}
		p := l.plan
		if l.reuse && exists {
			p = o.Plan
		} else if exists {
			p.carryOver(o.Plan)
		}
		same := exists && p.fingerprint() == o.Plan.fingerprint()
		switch {
		case same && o.State == stateDone && c.present(l.kind, p):
			_, err = tx.ExecContext(ctx, `UPDATE catalog_items SET position = ?, title = ? WHERE source = ? AND key = ?`,
				pos, l.title, src.ID, l.key)
		case same && o.State == stateQueued:
			_, err = tx.ExecContext(ctx, `UPDATE catalog_items SET position = ?, title = ? WHERE source = ? AND key = ?`,
				pos, l.title, src.ID, l.key)
		default:
			packID := ""
			if exists {
				packID = o.PackID
			}
			err = upsert(l, pos, p, stateQueued, "", "", packID)
		}
		if err != nil {
			return fmt.Errorf("refresh %s: %w", src.ID, err)
		}
	}
	for _, o := range old {
		if seen[o.Key] {
			continue
		}
		release = append(release, o)
		if _, err := tx.ExecContext(ctx, `DELETE FROM catalog_items WHERE source = ? AND key = ?`, src.ID, o.Key); err != nil {
			return fmt.Errorf("refresh %s: %w", src.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("refresh %s: %w", src.ID, err)
	}
	for _, o := range release {
		c.stopFlights(func(k itemKey) bool { return k == itemKey{o.Source, o.Key} })
		if err := c.releaseItem(ctx, o); err != nil {
			return fmt.Errorf("refresh %s: %w", src.ID, err)
		}
		if seen[o.Key] { // failed from the listing: its pack is gone
			if _, err := c.db.ExecContext(ctx, `UPDATE catalog_items SET pack_id = '' WHERE source = ? AND key = ?`, o.Source, o.Key); err != nil {
				return fmt.Errorf("refresh %s: %w", src.ID, err)
			}
		}
	}
	c.log.Info("catalog: source listed", "source", src.ID, "items", len(seen), "removed", len(old)-countSeen(old, seen))
	return nil
}

func countSeen(old []item, seen map[string]bool) int {
	n := 0
	for _, o := range old {
		if seen[o.Key] {
			n++
		}
	}
	return n
}

// knownBytes is the sum of the sizes the plan knows.
func (p plan) knownBytes() int64 {
	var n int64
	for _, f := range p.Files {
		if f.Size > 0 {
			n += f.Size
		}
	}
	return n
}

// present reports whether every blob a done item stored is still in the
// store (eviction and the scrub's quarantine remove them).
func (c *Catalog) present(kind string, p plan) bool {
	switch kind {
	case itemThumbnail:
		return p.SHA256 != "" && c.blobPresent(p.SHA256)
	case itemPack:
		return true // the store never evicts a pack imported by URL
	}
	for _, f := range p.Files {
		if f.SHA256 == "" || !c.blobPresent(f.SHA256) {
			return false
		}
	}
	return true
}

func (c *Catalog) blobPresent(hash string) bool {
	f, err := c.store.OpenBlob(hash)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// stopFlights cancels the downloads match selects and waits for them.
func (c *Catalog) stopFlights(match func(itemKey) bool) {
	c.mu.Lock()
	var waits []chan struct{}
	for k, f := range c.flight {
		if match(k) {
			f.cancel()
			waits = append(waits, f.done)
		}
	}
	c.mu.Unlock()
	for _, w := range waits {
		<-w
	}
}

// downloadLoop runs the queue with Config.Workers workers.
func (c *Catalog) downloadLoop(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	slots := make(chan struct{}, c.cfg.Workers)
	for range c.cfg.Workers {
		slots <- struct{}{}
	}
	fatal := make(chan error, c.cfg.Workers)
	done := make(chan struct{}, c.cfg.Workers)
	running := 0
	defer func() {
		cancel()
		for ; running > 0; running-- {
			<-done
		}
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-slots:
		case <-ctx.Done():
			return nil
		case err := <-fatal:
			return err
		case <-done:
			running--
			continue
		}
		it, wait, err := c.next(ctx)
		if err == nil && it != nil && c.budget != nil {
			if err = c.budget.Wait(ctx); err == nil {
				// The wait may have been long: take the most urgent item now.
				it, wait, err = c.next(ctx)
			} else if ctx.Err() == nil {
				err = fmt.Errorf("catalog: wait for the budget: %w", err)
			}
		}
		if err == nil && it != nil {
			var claimed bool
			if claimed, err = c.claim(ctx, it); err == nil && claimed {
				running++
				go func() {
					if err := c.work(ctx, *it); err != nil {
						fatal <- err
					}
					slots <- struct{}{}
					done <- struct{}{}
					c.pokeQueue()
				}()
				continue
			}
		}
		slots <- struct{}{}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if it != nil {
			continue // lost a race for it
		}
		var tick <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tick = timer.C
		}
		select {
		case <-c.wakeQueue:
		case <-tick:
		case <-ctx.Done():
		case err := <-fatal:
			return err
		case <-done:
			running--
		}
		timer.Stop()
	}
}

func (c *Catalog) pokeQueue() {
	select {
	case c.wakeQueue <- struct{}{}:
	default:
	}
}

// next returns the most urgent due item (thumbnails first: they are small
// and the cards need them), or how long until one is due (-1: none).
func (c *Catalog) next(ctx context.Context) (*item, time.Duration, error) {
	now := c.nowMs()
	it, err := scanItem(c.db.QueryRowContext(ctx, selectItem+`WHERE state = 'queued' AND next_attempt <= ?
		ORDER BY kind = 'thumbnail' DESC, next_attempt, source, position LIMIT 1`, now))
	if err == nil {
		return &it, 0, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, 0, fmt.Errorf("catalog: next item: %w", err)
	}
	var at sql.NullInt64
	if err := c.db.QueryRowContext(ctx, `SELECT min(next_attempt) FROM catalog_items WHERE state = 'queued'`).Scan(&at); err != nil {
		return nil, 0, fmt.Errorf("catalog: next item: %w", err)
	}
	if !at.Valid {
		return nil, -1, nil
	}
	return nil, max(time.Duration(at.Int64-now)*time.Millisecond, time.Millisecond), nil
}

// claim moves it from queued to downloading and counts the attempt. The
// download's flight is registered first, so that Remove, which marks its
// source before stopping flights, can never miss one.
func (c *Catalog) claim(ctx context.Context, it *item) (bool, error) {
	k := itemKey{it.Source, it.Key}
	fctx, cancel := context.WithCancel(ctx)
	fl := &flight{ctx: fctx, cancel: cancel, done: make(chan struct{}), total: it.BytesTotal}
	c.mu.Lock()
	if c.removing[it.Source] || c.flight[k] != nil {
		c.mu.Unlock()
		cancel()
		return false, nil
	}
	c.flight[k] = fl
	c.mu.Unlock()
	drop := func() {
		c.mu.Lock()
		delete(c.flight, k)
		c.mu.Unlock()
		cancel()
		close(fl.done)
	}
	now := c.nowMs()
	res, err := c.db.ExecContext(ctx, `UPDATE catalog_items SET state = 'downloading', attempts = attempts + 1,
		updated_at = ? WHERE source = ? AND key = ? AND state = 'queued'`, now, it.Source, it.Key)
	if err != nil {
		drop()
		return false, fmt.Errorf("catalog: claim %s/%s: %w", it.Source, it.Key, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		drop()
		return false, nil
	}
	it.State = stateDownloading
	it.Attempts++
	return true, nil
}

// work runs one attempt of a claimed item and records its outcome. It
// returns an error only when the outcome cannot be recorded.
func (c *Catalog) work(ctx context.Context, it item) error {
	k := itemKey{it.Source, it.Key}
	c.mu.Lock()
	fl := c.flight[k]
	c.mu.Unlock()
	fctx := fl.ctx
	defer func() {
		c.mu.Lock()
		delete(c.flight, k)
		c.mu.Unlock()
		fl.cancel()
		close(fl.done)
	}()
	startBytes := it.BytesDone
	err := c.download(fctx, &it, fl)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		// Stopping: back to the queue, due at once, with no penalty.
		bg, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer stop()
		now := c.nowMs()
		if _, err := c.db.ExecContext(bg, `UPDATE catalog_items SET state = 'queued', attempts = max(attempts - 1, 0),
			next_attempt = ?, updated_at = ? WHERE source = ? AND key = ? AND state = 'downloading'`,
			now, now, it.Source, it.Key); err != nil {
			c.log.Warn("catalog: put the download back in the queue; the next start will", "item", it.Key, "err", err)
		}
		return nil
	case fctx.Err() != nil:
		return nil // stopped by Remove or a refresh: they own the row now
	}
	c.mu.Lock()
	it.BytesDone, it.BytesTotal = fl.bytes, max(fl.total, it.BytesTotal)
	c.mu.Unlock()
	if it.BytesDone > startBytes && !isPermanent(err) && !errors.Is(err, ErrStoreFull) && !errors.Is(err, ErrRefused) {
		// Cut after storing more: a broken connection, not a failing
		// item. The attempt does not count and the download resumes in a
		// few seconds, within the WAN budget's send-now grace.
		it.Attempts = 0
		return c.failAfter(ctx, it, err, progressRetry)
	}
	return c.fail(ctx, it, err)
}

// progressRetry is when a download cut after progress resumes: 2 to 5 s.
func progressRetry(now time.Time) time.Time {
	return now.Add(2*time.Second + time.Duration(rand.Int64N(int64(3*time.Second))))
}

// fail records a failed attempt: a retry after a jittered backoff, or a
// failure that waits for the next refresh.
func (c *Catalog) fail(ctx context.Context, it item, err error) error {
	return c.failAfter(ctx, it, err, nil)
}

// failAfter is fail with the time of the retry chosen by retry when it is
// not nil.
func (c *Catalog) failAfter(ctx context.Context, it item, err error, retry func(time.Time) time.Time) error {
	fr, en := messages(err)
	var own interface{ English() string }
	if !errors.As(err, &own) {
		d := shorten(err.Error())
		fr = "téléchargement interrompu (" + d + ") ; il reprendra automatiquement là où il s'est arrêté"
		en = "download interrupted (" + d + "); it resumes automatically where it stopped"
	}
	now := c.now()
	state := stateQueued
	attempts := it.Attempts
	var next time.Time
	switch {
	case retry != nil:
		next = retry(now)
	case errors.Is(err, ErrStoreFull):
		// Not the item's fault: try again much later, without using up
		// its attempts.
		attempts--
		next = now.Add(jitter(c.cfg.RetryMax))
	case isPermanent(err) || attempts >= c.cfg.MaxAttempts:
		state = stateFailed
	default:
		d := c.cfg.RetryMin << min(attempts-1, 20)
		if d <= 0 || d > c.cfg.RetryMax {
			d = c.cfg.RetryMax
		}
		next = now.Add(jitter(d))
	}
	var nextMs int64
	if !next.IsZero() {
		nextMs = next.UnixMilli()
	}
	if _, dbErr := c.db.ExecContext(ctx, `UPDATE catalog_items SET state = ?, attempts = ?, next_attempt = ?,
		error_fr = ?, error_en = ?, bytes_done = ?, bytes_total = ?, updated_at = ?
		WHERE source = ? AND key = ? AND state = 'downloading'`,
		state, max(attempts, 0), nextMs, fr, en, it.BytesDone, it.BytesTotal, now.UnixMilli(), it.Source, it.Key); dbErr != nil {
		return fmt.Errorf("catalog: record failure of %s/%s: %w", it.Source, it.Key, dbErr)
	}
	if state == stateFailed {
		c.log.Warn("catalog: download failed; it waits for the next refresh of its source", "source", it.Source, "item", it.Key, "err", en)
	} else {
		c.log.Info("catalog: download failed; retrying", "source", it.Source, "item", it.Key, "at", next.Format(time.RFC3339), "err", en)
	}
	return nil
}

// progress records the bytes an item has stored: in memory at once, in the
// database at most every 2 s (the portal and the CLI read both).
func (c *Catalog) progress(ctx context.Context, it *item, fl *flight, done, total int64) {
	c.mu.Lock()
	fl.bytes, fl.total = done, max(total, done)
	persist := c.now().Sub(fl.lastPersist) >= 2*time.Second
	if persist {
		fl.lastPersist = c.now()
	}
	c.mu.Unlock()
	if persist {
		c.db.ExecContext(ctx, `UPDATE catalog_items SET bytes_done = ?, bytes_total = ? WHERE source = ? AND key = ?`,
			done, max(total, done), it.Source, it.Key)
	}
}

// download runs one attempt of it.
func (c *Catalog) download(ctx context.Context, it *item, fl *flight) error {
	switch it.Kind {
	case itemVideo, itemShare:
		return c.downloadPack(ctx, it, fl)
	case itemPack:
		return c.downloadPackURL(ctx, it, fl)
	case itemThumbnail:
		return c.downloadThumbnail(ctx, it, fl)
	}
	return permanent("download "+it.Key, "type d'élément inconnu : "+it.Kind, "unknown item kind: "+it.Kind, nil)
}

// downloadPack fetches the files of a pack plan that the store does not
// hold, then commits the pack and drops the fetch pins.
func (c *Catalog) downloadPack(ctx context.Context, it *item, fl *flight) error {
	p := &it.Plan
	if p.Manifest == nil {
		return permanent("download "+it.Key, "plan sans manifeste", "plan without a manifest", nil)
	}
	owner := ownerOf(*it)
	var total int64
	for _, f := range p.Files {
		total += max(f.Size, 0)
	}
	var done int64
	for i := range p.Files {
		f := &p.Files[i]
		if f.SHA256 != "" && c.blobPresent(f.SHA256) {
			done += max(f.Size, 0)
			c.progress(ctx, it, fl, done, total)
			continue
		}
		base := done
		res, err := c.store.Fetch(ctx, Fetch{Owner: owner, URL: f.URL, Size: f.Size, Progress: func(d, t int64) {
			c.progress(ctx, it, fl, base+d, total)
		}})
		if err != nil {
			return fmt.Errorf("fetch %s: %w", f.Path, err)
		}
		if f.Size < 0 {
			total += res.Size
		}
		f.SHA256, f.Size = res.SHA256, res.Size
		done += res.Size
		c.progress(ctx, it, fl, done, total)
		if err := c.savePlan(ctx, it); err != nil {
			return err
		}
	}
	data, err := p.buildManifest()
	if err != nil {
		return permanent("build pack "+it.Key, "paquet impossible à construire : "+shorten(err.Error()),
			"cannot build the pack: "+shorten(err.Error()), err)
	}
	if err := c.store.CommitPack(ctx, data, it.Source); err != nil {
		return fmt.Errorf("commit pack %s: %w", p.Manifest.ID, err)
	}
	if err := c.store.Unpin(ctx, owner); err != nil {
		return fmt.Errorf("commit pack %s: unpin: %w", p.Manifest.ID, err)
	}
	return c.finish(ctx, it, p.Manifest.ID, done)
}

// buildManifest fills the manifest's files from the fetched plan files.
func (p *plan) buildManifest() ([]byte, error) {
	byPath := make(map[string]planFile, len(p.Files))
	for _, f := range p.Files {
		if f.SHA256 == "" || f.Size < 0 {
			return nil, fmt.Errorf("file %s not fetched", f.Path)
		}
		byPath[f.Path] = f
	}
	m := *p.Manifest
	m.Items = make([]manifestItem, len(p.Manifest.Items))
	for i, mi := range p.Manifest.Items {
		files := make([]manifestFile, len(mi.Files))
		for j, mf := range mi.Files {
			f, ok := byPath[mf.Path]
			if !ok {
				return nil, fmt.Errorf("file %s of item %s is not in the plan", mf.Path, mi.ID)
			}
			files[j] = manifestFile{Path: f.Path, Size: f.Size, SHA256: f.SHA256, MediaType: f.MediaType}
		}
		mi.Files = files
		if mi.Levels == nil {
			mi.Levels = []string{}
		}
		if mi.Subjects == nil {
			mi.Subjects = []string{}
		}
		m.Items[i] = mi
	}
	return m.encode()
}

func (c *Catalog) savePlan(ctx context.Context, it *item) error {
	pj, err := json.Marshal(it.Plan)
	if err != nil {
		return err
	}
	if _, err := c.db.ExecContext(ctx, `UPDATE catalog_items SET plan = ? WHERE source = ? AND key = ? AND state = 'downloading'`,
		string(pj), it.Source, it.Key); err != nil {
		return fmt.Errorf("catalog: save plan of %s/%s: %w", it.Source, it.Key, err)
	}
	return nil
}

// finish records a done item.
func (c *Catalog) finish(ctx context.Context, it *item, packID string, bytes int64) error {
	pj, err := json.Marshal(it.Plan)
	if err != nil {
		return err
	}
	if _, err := c.db.ExecContext(ctx, `UPDATE catalog_items SET state = 'done', plan = ?, pack_id = ?, bytes_done = ?,
		bytes_total = ?, next_attempt = 0, error_fr = '', error_en = '', updated_at = ?
		WHERE source = ? AND key = ? AND state = 'downloading'`,
		string(pj), packID, bytes, bytes, c.nowMs(), it.Source, it.Key); err != nil {
		return fmt.Errorf("catalog: record %s/%s done: %w", it.Source, it.Key, err)
	}
	c.log.Info("catalog: available offline", "source", it.Source, "item", it.Key, "pack", packID, "bytes", bytes)
	return nil
}

// downloadPackURL imports a pack by URL through the store.
func (c *Catalog) downloadPackURL(ctx context.Context, it *item, fl *flight) error {
	id, err := c.store.ImportURL(ctx, it.Plan.URL, func(d, t int64) { c.progress(ctx, it, fl, d, t) })
	if err != nil {
		return fmt.Errorf("import %s: %w", it.Plan.URL, err)
	}
	if it.PackID != "" && it.PackID != id {
		if err := c.store.RemovePack(ctx, it.PackID); err != nil && !errors.Is(err, ErrNoPack) {
			c.log.Warn("catalog: the pack at this address changed id; the old one stays", "old", it.PackID, "new", id, "err", err)
		}
	}
	c.mu.Lock()
	n := max(fl.bytes, fl.total)
	c.mu.Unlock()
	return c.finish(ctx, it, id, n)
}

// downloadThumbnail stores a GAR thumbnail as a pinned blob and sets it on
// its card. Only images are kept: the thumbnail is served from the box's
// own origin.
func (c *Catalog) downloadThumbnail(ctx context.Context, it *item, fl *flight) error {
	owner := ownerOf(*it)
	if err := c.store.Unpin(ctx, owner); err != nil { // a previous thumbnail of this card
		return fmt.Errorf("unpin %s: %w", owner, err)
	}
	res, err := c.store.Fetch(ctx, Fetch{Owner: owner, URL: it.Plan.URL, Size: -1, Progress: func(d, t int64) {
		c.progress(ctx, it, fl, d, t)
	}})
	if err != nil {
		return fmt.Errorf("fetch thumbnail: %w", err)
	}
	if _, ok := c.imageType(res.SHA256); !ok {
		c.store.Unpin(ctx, owner)
		return permanent("thumbnail "+it.Plan.Card, "la vignette n'est pas une image (PNG, JPEG, GIF ou WebP)",
			"the thumbnail is not an image (PNG, JPEG, GIF or WebP)", nil)
	}
	it.Plan.SHA256 = res.SHA256
	if _, err := c.db.ExecContext(ctx, `UPDATE catalog_gar_cards SET thumbnail = ? WHERE source = ? AND id = ?`,
		res.SHA256, it.Source, it.Plan.Card); err != nil {
		return fmt.Errorf("catalog: set thumbnail of %s: %w", it.Plan.Card, err)
	}
	return c.finish(ctx, it, "", res.Size)
}

// imageType sniffs a stored blob: only raster images are served as
// thumbnails.
func (c *Catalog) imageType(hash string) (string, bool) {
	f, err := c.store.OpenBlob(hash)
	if err != nil {
		return "", false
	}
	defer f.Close()
	buf := make([]byte, 512)
	n, _ := io.ReadFull(f, buf)
	switch ct := http.DetectContentType(buf[:n]); ct {
	case "image/png", "image/jpeg", "image/gif", "image/webp":
		return ct, true
	}
	return "", false
}

// Repair queues again the done items that stored one of hashes: blobs the
// content store's scrub found damaged (Store.Damaged) or lost. Appliance
// calls it after a scrub; refreshes find missing blobs by themselves. It
// returns how many items were queued.
func (c *Catalog) Repair(ctx context.Context, hashes []string) (int, error) {
	if len(hashes) == 0 {
		return 0, nil
	}
	bad := make(map[string]bool, len(hashes))
	for _, h := range hashes {
		bad[h] = true
	}
	items, err := c.items(ctx, `WHERE state = 'done'`)
	if err != nil {
		return 0, fmt.Errorf("repair: %w", err)
	}
	n := 0
	for _, it := range items {
		hit := bad[it.Plan.SHA256]
		for _, f := range it.Plan.Files {
			hit = hit || bad[f.SHA256]
		}
		if !hit {
			continue
		}
		now := c.nowMs()
		res, err := c.db.ExecContext(ctx, `UPDATE catalog_items SET state = 'queued', attempts = 0, next_attempt = ?,
			bytes_done = 0, updated_at = ? WHERE source = ? AND key = ? AND state = 'done'`, now, now, it.Source, it.Key)
		if err != nil {
			return n, fmt.Errorf("repair %s/%s: %w", it.Source, it.Key, err)
		}
		if k, _ := res.RowsAffected(); k > 0 {
			n++
		}
	}
	if n > 0 {
		c.log.Info("catalog: damaged content queued for download again", "items", n)
		c.pokeQueue()
	}
	return n, nil
}
