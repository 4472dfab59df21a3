package portal

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// CardKind names the kind of catalogue source a card comes from.
type CardKind string

// Card kinds.
const (
	KindGAR   CardKind = "gar"   // a GAR resource (the school's ENT subscriptions)
	KindTube  CardKind = "tube"  // a PeerTube video
	KindNuage CardKind = "nuage" // a Nextcloud share
	KindPack  CardKind = "pack"  // a content pack by URL
)

// CardState says what a card's resource is on the box right now.
type CardState string

// Card states.
const (
	StateOffline     CardState = "offline"     // stored on the box
	StateOnlineOnly  CardState = "online-only" // opens at the publisher's, needs the Internet
	StateQueued      CardState = "queued"      // waiting to download
	StateDownloading CardState = "downloading" // download under way, Percent done
	StateFailed      CardState = "failed"      // download failed, ErrorFR/EN say why
)

// Card is one resource of the school catalogue as the portal shows it.
type Card struct {
	Source    string
	Kind      CardKind
	ID        string
	Title     string
	Publisher string
	// Thumbnail is a same-site path ("/catalogue/vignettes/…", "/c/…");
	// anything else (another host, a scheme) is not shown.
	Thumbnail string
	// Link is where the resource opens: the publisher's http(s) address
	// for a GAR resource, a same-site path for an offline one, "" when the
	// portal should list the items of PackID. Other schemes are never
	// rendered as links.
	Link   string
	PackID string // the content pack holding the resource offline, "" if none
	State  CardState
	// Percent of the download, 0–100 (StateDownloading, or StateQueued
	// after a cut).
	Percent int
	// StatusFR and StatusEN are the state as a sentence ("disponible hors
	// ligne", "en cours de téléchargement 43 %"); empty ones are replaced
	// by the portal's own words.
	StatusFR, StatusEN string
	// ErrorFR and ErrorEN explain a failure or the last failed attempt.
	ErrorFR, ErrorEN string
	// GAR classification, plain ScoLOMFR names (in French).
	Levels, Domains, Typologies []string
}

// CardQuery selects cards; zero fields select everything. Level and Domain
// are names as found in Card.Levels and Card.Domains.
type CardQuery struct {
	Query, Level, Domain string
	Kind                 CardKind
	State                CardState
	Limit, Offset        int // Limit 0: no limit
}

// Cards is what the portal needs from the school catalogue (appliance
// adapts services/catalog).
type Cards interface {
	Cards(ctx context.Context, q CardQuery) ([]Card, error)
}

var cardKinds = []CardKind{KindGAR, KindTube, KindNuage, KindPack}

var cardStates = []CardState{StateOffline, StateOnlineOnly, StateDownloading, StateQueued, StateFailed}

const (
	// cardsPerPage bounds one catalogue page: a GAR list of hundreds of
	// resources is cut into light pages.
	cardsPerPage = 50
	// maxPage keeps the offset sane whatever the address says.
	maxPage = 10_000
	// refreshSecs is how often the catalogue page reloads itself while a
	// download is under way (the visitor can stop it: RGAA 13.1).
	refreshSecs = 30
	// maxFacetOptions bounds each filter menu (the most used names stay).
	maxFacetOptions = 150
	// homeDownloads bounds the downloads listed on the home page.
	homeDownloads = 5
	// maxClassNames bounds the names of one vocabulary shown on a card.
	maxClassNames = 3
)

// Query parameters of /catalogue.
const (
	paramQuery   = "q"
	paramLevel   = "niveau"
	paramDomain  = "domaine"
	paramKind    = "type"
	paramState   = "etat"
	paramPage    = "page"
	paramRefresh = "actualiser" // "non" stops the automatic refresh
)

// cardView is one card of the catalogue page.
type cardView struct {
	N                  int
	Title, Publisher   string
	Kind, Classes      string
	ClassesLang        string
	Thumb, URL         string
	External           bool // URL is the publisher's: new window, needs the Internet
	Unavailable        bool // needs the Internet and the box is offline
	ExternalText       string
	UnavailableText    string
	State              CardState
	Status, StatusLang string
	Progress           bool
	Percent            int
	Reason, ReasonLang string
}

// option is one choice of a filter menu.
type option struct {
	Value, Label string
	Selected     bool
}

type catalogueView struct {
	Query, Level, Domain string
	Levels, Domains      []option
	Kinds, States        []option
	Filtered             bool
	StopRefresh          bool // the visitor stopped the automatic refresh
	Refresh              bool // something downloads: the page reloads itself
	RefreshText          string
	StopURL, ResumeURL   string
	Heading              string
	Cards                []cardView
	PrevURL, NextURL     string
	PageText             string
	Offline              bool // the box is offline and some cards need the Internet
}

// homeCatalogue is the home page's short "Catalogue de l'école" section.
type homeCatalogue struct {
	Downloads []cardView
}

// catalogue serves /catalogue: the school catalogue's cards with their
// honest states, a GET form of filters and pages of cardsPerPage cards.
func (p *Portal) catalogue(w http.ResponseWriter, r *http.Request) {
	if p.cfg.Cards == nil {
		p.notFound(w, r)
		return
	}
	in := r.URL.Query()
	q := CardQuery{
		Query:  cleanParam(in.Get(paramQuery)),
		Level:  cleanParam(in.Get(paramLevel)),
		Domain: cleanParam(in.Get(paramDomain)),
	}
	if k := CardKind(in.Get(paramKind)); slices.Contains(cardKinds, k) {
		q.Kind = k
	}
	if s := CardState(in.Get(paramState)); slices.Contains(cardStates, s) {
		q.State = s
	}
	page := 1
	if n, err := strconv.Atoi(in.Get(paramPage)); err == nil && n > 1 {
		page = min(n, maxPage)
	}
	stop := in.Get(paramRefresh) == "non"
	// One card more than a page tells whether a next page exists without
	// counting every card.
	q.Limit, q.Offset = cardsPerPage+1, (page-1)*cardsPerPage
	cards, err := p.cfg.Cards.Cards(r.Context(), q)
	if err != nil {
		p.failed(w, r, fmt.Errorf("list catalogue cards: %w", err))
		return
	}
	more := len(cards) > cardsPerPage
	if more {
		cards = cards[:cardsPerPage]
	}
	// The menus offer the names every card uses, not only this page's.
	all, err := p.facets.get(r.Context(), p.cfg.Cards)
	if err != nil {
		p.failed(w, r, fmt.Errorf("list catalogue filters: %w", err))
		return
	}

	d := p.newPage(r, "")
	d.Title = d.T("cat.title")
	d.PageCSS = p.catCSS
	offline := p.up != nil && !p.up.Online()
	v := &catalogueView{Query: q.Query, Level: q.Level, Domain: q.Domain, StopRefresh: stop,
		Filtered: q.Query != "" || q.Level != "" || q.Domain != "" || q.Kind != "" || q.State != ""}
	v.Levels = facet(all, func(c Card) []string { return c.Levels }, q.Level)
	v.Domains = facet(all, func(c Card) []string { return c.Domains }, q.Domain)
	v.Kinds = fixedOptions(all, cardKinds, q.Kind, func(c Card) CardKind { return c.Kind }, func(k CardKind) string { return d.T("card.kind." + string(k)) })
	v.States = fixedOptions(all, cardStates, q.State, func(c Card) CardState { return c.State }, func(s CardState) string { return d.T("cat.state." + string(s)) })

	packs := p.packLinks(r.Context(), cards)
	for i, c := range cards {
		cv := p.cardView(d.Lang, c, packs, offline)
		cv.N = i + 1
		v.Cards = append(v.Cards, cv)
		if c.State == StateDownloading {
			v.Refresh = true
		}
		if cv.Unavailable {
			v.Offline = true
		}
	}
	if v.Offline {
		d.OfflineKey = "status.offline.catalogue"
	}

	base := url.Values{}
	for k, val := range map[string]string{paramQuery: q.Query, paramLevel: q.Level, paramDomain: q.Domain, paramKind: string(q.Kind), paramState: string(q.State)} {
		if val != "" {
			base.Set(k, val)
		}
	}
	pageURL := func(n int, stop bool) string {
		u := url.Values{}
		for k, vs := range base {
			u[k] = vs
		}
		if n > 1 {
			u.Set(paramPage, strconv.Itoa(n))
		}
		if stop {
			u.Set(paramRefresh, "non")
		}
		return localURL("/catalogue", u.Encode())
	}
	if page > 1 {
		v.PrevURL = pageURL(page-1, stop)
	}
	if more {
		v.NextURL = pageURL(page+1, stop)
	}
	if v.Refresh {
		v.RefreshText = d.Tf("cat.refresh", refreshSecs)
		v.StopURL, v.ResumeURL = pageURL(page, true), pageURL(page, false)
		if !stop {
			d.Refresh = refreshSecs
		}
	}
	first := q.Offset + 1
	switch {
	case len(cards) == 0 && page > 1:
		v.Heading = d.T("cat.page.empty")
	case len(cards) == 0:
		v.Heading = d.T("cat.none")
	case page == 1 && !more:
		v.Heading = countText(d.Lang, len(cards))
	default:
		v.Heading = d.Tf("cat.range", first, q.Offset+len(cards))
	}
	if page > 1 || more {
		v.PageText = d.Tf("cat.page", page)
		d.Title = d.Tf("cat.title.page", page)
	}
	d.Catalogue = v
	p.render(w, r, http.StatusOK, "catalogue", d)
}

// cleanParam keeps one line of at most 200 characters with single spaces.
func cleanParam(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > 200 {
		s = string([]rune(s)[:200])
	}
	return s
}

// facet lists the names cards use in one vocabulary, for a filter menu:
// the most used first when there are too many, then sorted; the selected
// name is always offered.
func facet(cards []Card, names func(Card) []string, selected string) []option {
	count := map[string]int{}
	label := map[string]string{}
	for _, c := range cards {
		for _, n := range uniq(names(c)) {
			n = cleanParam(n)
			if n == "" {
				continue
			}
			k := foldKey(n)
			if _, ok := label[k]; !ok {
				label[k] = n
			}
			count[k]++
		}
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	if len(keys) > maxFacetOptions {
		slices.SortFunc(keys, func(a, b string) int { return cmp.Or(count[b]-count[a], strings.Compare(a, b)) })
		keys = keys[:maxFacetOptions]
	}
	if sel := foldKey(selected); selected != "" && !slices.Contains(keys, sel) {
		keys = append(keys, sel)
		label[sel] = selected
	}
	slices.Sort(keys)
	out := make([]option, len(keys))
	for i, k := range keys {
		out[i] = option{Value: label[k], Label: label[k], Selected: selected != "" && k == foldKey(selected)}
	}
	return out
}

// fixedOptions offers the values of a closed list that some card uses, in
// the list's order, and the selected one.
func fixedOptions[T comparable](cards []Card, values []T, selected T, of func(Card) T, label func(T) string) []option {
	used := map[T]bool{}
	for _, c := range cards {
		used[of(c)] = true
	}
	var zero T
	var out []option
	for _, v := range values {
		if used[v] || (v == selected && v != zero) {
			out = append(out, option{Value: fmt.Sprint(v), Label: label(v), Selected: v == selected})
		}
	}
	return out
}

// packLinks finds where the offline cards' packs open: the item page when
// the pack holds one item, the pack's listing otherwise. A failing content
// catalogue only costs the links (the cards still show).
func (p *Portal) packLinks(ctx context.Context, cards []Card) map[string]string {
	need := false
	for _, c := range cards {
		if c.State == StateOffline && c.PackID != "" {
			need = true
			break
		}
	}
	if !need {
		return nil
	}
	items, err := p.cat.Items(ctx)
	if err != nil {
		p.log.Warn("catalogue: list items for pack links", "err", err)
		return nil
	}
	byPack := map[string][]Item{}
	for _, it := range items {
		byPack[it.Pack] = append(byPack[it.Pack], it)
	}
	out := map[string]string{}
	for pack, its := range byPack {
		if len(its) == 1 {
			out[pack] = itemURL(its[0])
		} else {
			out[pack] = "/paquet/" + url.PathEscape(pack)
		}
	}
	return out
}

// cardView turns a card into what the template shows, deciding honestly
// whether and where it opens.
func (p *Portal) cardView(lang string, c Card, packs map[string]string, offline bool) cardView {
	cv := cardView{Title: c.Title, Publisher: c.Publisher, State: c.State, Thumb: sameSitePath(c.Thumbnail)}
	if cv.Title == "" {
		cv.Title = c.ID
	}
	if slices.Contains(cardKinds, c.Kind) {
		cv.Kind = msg(lang, "card.kind."+string(c.Kind))
	}
	cv.Classes = classText(c)
	if cv.Classes != "" && lang != "fr" {
		cv.ClassesLang = "fr"
	}
	cv.Percent = min(max(c.Percent, 0), 100)
	cv.Status, cv.StatusLang = localized(lang, c.StatusFR, c.StatusEN)
	if cv.Status == "" {
		cv.Status = p.stateText(lang, c.State, cv.Percent)
	}
	if c.State == StateFailed || c.State == StateQueued {
		if reason, rl := localized(lang, c.ErrorFR, c.ErrorEN); reason != "" {
			cv.Reason, cv.ReasonLang = msgf(lang, "card.reason", reason), rl
		}
	}
	cv.Progress = c.State == StateDownloading || (c.State == StateQueued && cv.Percent > 0)

	local := ""
	if c.PackID != "" && slugPattern.MatchString(c.PackID) {
		local = packs[c.PackID]
	}
	if local == "" {
		local = sameSitePath(c.Link)
	}
	external := externalURL(c.Link)
	switch {
	case c.State == StateOffline && local != "":
		cv.URL = local
	case external != "" && offline:
		cv.Unavailable, cv.UnavailableText = true, msg(lang, "card.unavailable")
	case external != "":
		cv.URL, cv.External, cv.ExternalText = external, true, msg(lang, "card.external")
	}
	return cv
}

// localized picks the page language's text, else the French one marked
// as French.
func localized(lang, fr, en string) (text, textLang string) {
	if lang == "en" && en != "" {
		return en, ""
	}
	if lang == "en" && fr != "" {
		return fr, "fr"
	}
	return fr, ""
}

// stateText is the portal's own sentence for a state, used when the
// catalogue gives none.
func (p *Portal) stateText(lang string, s CardState, percent int) string {
	switch s {
	case StateDownloading:
		return msgf(lang, "card.status.downloading", percent)
	case StateOffline, StateOnlineOnly, StateQueued, StateFailed:
		return msg(lang, "card.state."+string(s))
	}
	return ""
}

// classText is a card's GAR classification in one short line.
func classText(c Card) string {
	var parts []string
	for _, names := range [][]string{c.Levels, c.Domains, c.Typologies} {
		var kept []string
		for _, n := range uniq(names) {
			if n = cleanParam(n); n != "" {
				kept = append(kept, n)
			}
		}
		if len(kept) > maxClassNames {
			kept = append(kept[:maxClassNames], "…")
		}
		if len(kept) > 0 {
			parts = append(parts, strings.Join(kept, ", "))
		}
	}
	return strings.Join(parts, " · ")
}

// sameSitePath returns s when it is a path on this site ("/c/…"), with no
// scheme, host, backslash or control character; "" otherwise.
func sameSitePath(s string) string {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\") || hasControl(s) {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil {
		return ""
	}
	return u.String()
}

// externalURL returns s when it is an absolute http or https address with
// a host; "" otherwise (javascript:, data:, relative paths…).
func externalURL(s string) string {
	if s == "" || hasControl(s) || strings.ContainsAny(s, " \\") {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" || u.User != nil {
		return ""
	}
	return u.String()
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// homeCatalogue lists a few downloads under way for the home page; a
// failing catalogue only hides the list.
func (p *Portal) homeCatalogue(r *http.Request, lang string) *homeCatalogue {
	if p.cfg.Cards == nil {
		return nil
	}
	hc := &homeCatalogue{}
	cards, err := p.cfg.Cards.Cards(r.Context(), CardQuery{State: StateDownloading, Limit: homeDownloads})
	if err != nil {
		p.log.Warn("home: list downloads", "err", err)
		return hc
	}
	for i, c := range cards[:min(len(cards), homeDownloads)] {
		cv := p.cardView(lang, c, nil, false)
		cv.N = i + 1
		cv.Progress = true
		hc.Downloads = append(hc.Downloads, cv)
	}
	return hc
}

// pack serves /paquet/{pack}: the items of a pack the catalogue brought,
// for offline cards whose pack holds several items.
func (p *Portal) pack(w http.ResponseWriter, r *http.Request) {
	pack := r.PathValue("pack")
	if p.cfg.Cards == nil || !slugPattern.MatchString(pack) {
		p.notFound(w, r)
		return
	}
	items, err := p.cat.Items(r.Context())
	if err != nil {
		p.failed(w, r, fmt.Errorf("list items: %w", err))
		return
	}
	var in []Item
	for _, it := range items {
		if it.Pack == pack {
			in = append(in, it)
		}
	}
	if len(in) == 0 {
		p.notFound(w, r)
		return
	}
	d := p.newPage(r, "")
	d.Title = d.Tf("pack.title", pack)
	d.List = &listView{Count: countText(d.Lang, len(in))}
	for _, g := range p.groupBySubject(d.Lang, in) {
		d.List.Sections = append(d.List.Sections, section{ID: g.ID, Title: g.Title, URL: "/matiere/" + url.PathEscape(strings.TrimPrefix(g.ID, "m-")), Groups: []group{{Cards: g.Cards}}})
	}
	p.render(w, r, http.StatusOK, "list", d)
}

// facetTTL is how long the catalogue's filter menus reuse one listing of
// every card: the menus' names change when a source is refreshed, and a
// page must not list the whole catalogue on every request.
const facetTTL = 30 * time.Second

// facetMemo keeps the last listing of every card for facetTTL.
type facetMemo struct {
	mu    sync.Mutex
	at    time.Time
	cards []Card
}

func (m *facetMemo) get(ctx context.Context, src Cards) ([]Card, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cards != nil && time.Since(m.at) < facetTTL {
		return m.cards, nil
	}
	cards, err := src.Cards(ctx, CardQuery{})
	if err != nil {
		return nil, err
	}
	m.cards, m.at = cards, time.Now()
	return cards, nil
}
