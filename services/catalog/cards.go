package catalog

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"preau/services/internal/httpserve"
)

// CardState says honestly what a card's resource is on the box.
type CardState string

// Card states.
const (
	StateOffline     CardState = "offline"     // disponible hors ligne
	StateOnlineOnly  CardState = "online-only" // connexion nécessaire (a GAR resource)
	StateQueued      CardState = "queued"      // en attente de téléchargement
	StateDownloading CardState = "downloading" // en cours de téléchargement N %
	StateFailed      CardState = "failed"      // échec (the error says why)
)

// Card is one resource of the catalogue as the portal shows it.
type Card struct {
	Source     string
	SourceKind Kind
	ID         string // GAR idRessource, PeerTube uuid, "share", the pack URL
	Title      string
	Publisher  string
	// Thumbnail is the path of the card's image on the box ("" when none):
	// under Config.ThumbnailPrefix for GAR cards, /c/{pack}/{path} for packs.
	Thumbnail string
	// Link is where the resource opens: the publisher's address through
	// the GAR for online-only cards, /c/{pack}/{entry} for an offline
	// video, "" when the portal should list the pack's items.
	Link   string
	PackID string // the pack holding it offline, "" when none
	State  CardState
	// Percent of the download (StateDownloading, StateQueued after a cut).
	Percent               int
	BytesDone, BytesTotal int64
	// StatusFR and StatusEN are the sentences to show: "disponible hors
	// ligne", "connexion nécessaire", "en cours de téléchargement 43 %"…
	StatusFR, StatusEN string
	// ErrorFR and ErrorEN explain a failure or the last failed attempt.
	ErrorFR, ErrorEN string
	// GAR classification (ScoLOMFR names) and presentation.
	Levels, Domains, Typologies, Pedagogy []string
	Presentation                          string
	Label                                 string // nomSourceEtiquetteGar
}

// CardFilter selects cards; zero fields select everything.
type CardFilter struct {
	Source   string
	Kind     Kind
	State    CardState
	Query    string // words of the title or publisher, accents and case ignored
	Level    string // a GAR niveau name, e.g. "collège"
	Domain   string // a GAR domaine name
	Typology string // a GAR typologie name
	Limit    int    // 0: no limit
	Offset   int
}

// Cards returns the catalogue's cards: GAR resources and what the other
// sources bring, each with its state.
func (c *Catalog) Cards(ctx context.Context, f CardFilter) ([]Card, error) {
	srcs, err := c.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []Card
	offlinePacks, err := c.garPackLinks(ctx, srcs)
	if err != nil {
		return nil, err
	}
	for _, s := range srcs {
		if (f.Source != "" && s.ID != f.Source) || (f.Kind != "" && s.Kind != f.Kind) {
			continue
		}
		var cards []Card
		if s.Kind == KindGAR {
			cards, err = c.garCards(ctx, s, offlinePacks)
		} else {
			cards, err = c.itemCards(ctx, s)
		}
		if err != nil {
			return nil, err
		}
		for _, cd := range cards {
			if f.matches(cd) {
				out = append(out, cd)
			}
		}
	}
	if f.Offset > 0 {
		if f.Offset >= len(out) {
			return nil, nil
		}
		out = out[f.Offset:]
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func (f CardFilter) matches(cd Card) bool {
	if f.State != "" && cd.State != f.State {
		return false
	}
	has := func(list []string, want string) bool {
		if want == "" {
			return true
		}
		for _, x := range list {
			if sortKey(x) == sortKey(want) {
				return true
			}
		}
		return false
	}
	if !has(cd.Levels, f.Level) || !has(cd.Domains, f.Domain) || !has(cd.Typologies, f.Typology) {
		return false
	}
	if q := strings.Fields(sortKey(f.Query)); len(q) > 0 {
		text := sortKey(cd.Title + " " + cd.Publisher)
		for _, w := range q {
			if !strings.Contains(text, w) {
				return false
			}
		}
	}
	return true
}

type garPackKey struct{ source, card string }

// garPackLinks finds the pack sources that are a GAR resource's offline
// package, with their item.
func (c *Catalog) garPackLinks(ctx context.Context, srcs []Source) (map[garPackKey]item, error) {
	out := map[garPackKey]item{}
	for _, s := range srcs {
		if s.Kind != KindPack || s.Spec.GARResource == "" {
			continue
		}
		items, err := c.items(ctx, `WHERE source = ?`, s.ID)
		if err != nil {
			return nil, fmt.Errorf("cards: %w", err)
		}
		for _, it := range items {
			out[garPackKey{s.Spec.GARSource, s.Spec.GARResource}] = it
		}
	}
	return out, nil
}

func (c *Catalog) garCards(ctx context.Context, s Source, packs map[garPackKey]item) ([]Card, error) {
	terms := map[string]map[string][]string{}
	rows, err := c.db.QueryContext(ctx, `SELECT card, vocab, name FROM catalog_gar_terms WHERE source = ? ORDER BY card, vocab, position`, s.ID)
	if err != nil {
		return nil, fmt.Errorf("cards of %s: %w", s.ID, err)
	}
	for rows.Next() {
		var card, vocab, name string
		if err := rows.Scan(&card, &vocab, &name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cards of %s: %w", s.ID, err)
		}
		if terms[card] == nil {
			terms[card] = map[string][]string{}
		}
		terms[card][vocab] = append(terms[card][vocab], name)
	}
	rows.Close()
	rows, err = c.db.QueryContext(ctx, `SELECT id, title, publisher, thumbnail, access_url, presentation, label
		FROM catalog_gar_cards WHERE source = ? ORDER BY position`, s.ID)
	if err != nil {
		return nil, fmt.Errorf("cards of %s: %w", s.ID, err)
	}
	defer rows.Close()
	var out []Card
	for rows.Next() {
		cd := Card{Source: s.ID, SourceKind: KindGAR}
		var thumb string
		if err := rows.Scan(&cd.ID, &cd.Title, &cd.Publisher, &thumb, &cd.Link, &cd.Presentation, &cd.Label); err != nil {
			return nil, fmt.Errorf("cards of %s: %w", s.ID, err)
		}
		if thumb != "" {
			cd.Thumbnail = c.cfg.ThumbnailPrefix + thumb
		}
		t := terms[cd.ID]
		cd.Levels, cd.Domains, cd.Typologies, cd.Pedagogy = t["niveau"], t["domaine"], t["typologie"], t["pedagogique"]
		cd.State = StateOnlineOnly
		if it, ok := packs[garPackKey{s.ID, cd.ID}]; ok {
			c.setItemState(&cd, it)
			if cd.State == StateOffline {
				cd.PackID = it.PackID
			} else if cd.State == StateFailed {
				// The offline package failed: the resource is still there
				// online.
				cd.State = StateOnlineOnly
			}
		}
		cd.StatusFR, cd.StatusEN = statusText(cd)
		out = append(out, cd)
	}
	return out, rows.Err()
}

func (c *Catalog) itemCards(ctx context.Context, s Source) ([]Card, error) {
	items, err := c.items(ctx, `WHERE source = ? AND kind != 'thumbnail' ORDER BY position, key`, s.ID)
	if err != nil {
		return nil, fmt.Errorf("cards of %s: %w", s.ID, err)
	}
	out := make([]Card, 0, len(items))
	for _, it := range items {
		cd := Card{Source: s.ID, SourceKind: s.Kind, ID: it.Key, Title: it.Title}
		if m := it.Plan.Manifest; m != nil {
			cd.Publisher = m.Publisher
		}
		c.setItemState(&cd, it)
		if cd.State == StateOffline {
			cd.PackID = it.PackID
			if m := it.Plan.Manifest; m != nil && it.Kind == itemVideo && len(m.Items) == 1 {
				cd.Link = "/c/" + it.PackID + "/" + m.Items[0].Entry
				if m.Items[0].Thumbnail != "" {
					cd.Thumbnail = "/c/" + it.PackID + "/" + m.Items[0].Thumbnail
				}
			}
		}
		cd.StatusFR, cd.StatusEN = statusText(cd)
		out = append(out, cd)
	}
	return out, nil
}

// setItemState sets the card's state from its item, with the live bytes
// of a download under way.
func (c *Catalog) setItemState(cd *Card, it item) {
	cd.BytesDone, cd.BytesTotal = it.BytesDone, it.BytesTotal
	c.mu.Lock()
	if fl, ok := c.flight[itemKey{it.Source, it.Key}]; ok {
		cd.BytesDone, cd.BytesTotal = fl.bytes, max(fl.total, it.BytesTotal)
	}
	c.mu.Unlock()
	cd.Percent = percent(cd.BytesDone, cd.BytesTotal)
	cd.ErrorFR, cd.ErrorEN = it.ErrorFR, it.ErrorEN
	switch it.State {
	case stateDone:
		cd.State, cd.Percent = StateOffline, 100
	case stateDownloading:
		cd.State = StateDownloading
	case stateFailed:
		cd.State = StateFailed
	default:
		cd.State = StateQueued
	}
}

func percent(done, total int64) int {
	if total <= 0 || done <= 0 {
		return 0
	}
	return int(min(done*100/total, 99)) // 100 % is "done", said by the state
}

// statusText is the sentence a card shows.
func statusText(cd Card) (fr, en string) {
	switch cd.State {
	case StateOffline:
		return "disponible hors ligne", "available offline"
	case StateOnlineOnly:
		return "connexion nécessaire", "internet connection needed"
	case StateDownloading:
		return "en cours de téléchargement " + strconv.Itoa(cd.Percent) + " %", "downloading " + strconv.Itoa(cd.Percent) + "%"
	case StateQueued:
		if cd.ErrorFR != "" {
			return "téléchargement interrompu, nouvel essai prévu (" + strconv.Itoa(cd.Percent) + " %)",
				"download interrupted, retry planned (" + strconv.Itoa(cd.Percent) + "%)"
		}
		return "en attente de téléchargement", "waiting to download"
	}
	return "échec du téléchargement", "download failed"
}

// ItemProgress is one download as the CLI's progress bars show it.
type ItemProgress struct {
	Source, Key, Title string
	Kind               string // video, share, pack, thumbnail
	State              CardState
	BytesDone          int64
	BytesTotal         int64 // 0 when not known yet
	Percent            int
	Attempts           int
	NextAttempt        time.Time // zero when due now or not queued
	ErrorFR, ErrorEN   string
}

// Progress returns the items not done yet: downloads under way first, then
// queued, then failed.
func (c *Catalog) Progress(ctx context.Context) ([]ItemProgress, error) {
	items, err := c.items(ctx, `WHERE state != 'done' ORDER BY state = 'downloading' DESC, state = 'queued' DESC, next_attempt, source, position`)
	if err != nil {
		return nil, fmt.Errorf("progress: %w", err)
	}
	out := make([]ItemProgress, 0, len(items))
	for _, it := range items {
		var cd Card
		c.setItemState(&cd, it)
		p := ItemProgress{Source: it.Source, Key: it.Key, Title: it.Title, Kind: it.Kind, State: cd.State,
			BytesDone: cd.BytesDone, BytesTotal: cd.BytesTotal, Percent: cd.Percent, Attempts: it.Attempts,
			ErrorFR: it.ErrorFR, ErrorEN: it.ErrorEN}
		if it.State == stateQueued && it.NextAttempt > c.nowMs() {
			p.NextAttempt = time.UnixMilli(it.NextAttempt)
		}
		out = append(out, p)
	}
	return out, nil
}

// ThumbnailHandler serves GAR thumbnails at Config.ThumbnailPrefix +
// sha256: only blobs that are a card's thumbnail and sniff as a raster
// image, with a strong ETag and a year of caching (the name is the hash).
func (c *Catalog) ThumbnailHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Méthode non permise / Method not allowed", http.StatusMethodNotAllowed)
			return
		}
		hash := path.Base(r.URL.Path)
		notFound := func() {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "Vignette introuvable / Thumbnail not found", http.StatusNotFound)
		}
		if !hashPattern.MatchString(hash) {
			notFound()
			return
		}
		var one int
		if err := c.db.QueryRowContext(r.Context(), `SELECT 1 FROM catalog_gar_cards WHERE thumbnail = ? LIMIT 1`, hash).Scan(&one); err != nil {
			notFound()
			return
		}
		ct, ok := c.imageType(hash)
		if !ok {
			notFound()
			return
		}
		f, err := c.store.OpenBlob(hash)
		if err != nil {
			notFound()
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			notFound()
			return
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			notFound()
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		h.Set("Content-Type", ct)
		httpserve.Serve(w, r, f, httpserve.Meta{Size: st.Size(), ETag: `"` + hash + `"`, ContentType: ct, ModTime: st.ModTime()})
	})
}
