package portal

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

//go:embed templates/*.html static/*
var files embed.FS

// pageNames are the page templates; each is parsed with layout.html.
var pageNames = []string{"home", "list", "search", "item", "error", "catalogue"}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).ParseFS(files, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// asset is a static file served under a name that carries its hash, so it
// can be cached for a year.
type asset struct {
	data        []byte
	contentType string
}

// loadAssets reads the static files; urls maps a file's name to the URL
// of its hashed copy.
func loadAssets() (assets map[string]asset, urls map[string]string, err error) {
	assets, urls = map[string]asset{}, map[string]string{}
	for _, f := range []struct{ file, ext, ctype string }{
		{"style.css", ".css", "text/css; charset=utf-8"},
		// The catalogue's cards have their own small stylesheet, fetched
		// only by the page that shows them.
		{"catalogue.css", ".css", "text/css; charset=utf-8"},
		{"favicon.svg", ".svg", "image/svg+xml"},
	} {
		data, err := fs.ReadFile(files, "static/"+f.file)
		if err != nil {
			return nil, nil, fmt.Errorf("read asset %s: %w", f.file, err)
		}
		sum := sha256.Sum256(data)
		name := strings.TrimSuffix(f.file, f.ext) + "." + hex.EncodeToString(sum[:6]) + f.ext
		assets[name] = asset{data, f.ctype}
		urls[f.file] = "/static/" + name
	}
	return assets, urls, nil
}

func (p *Portal) static(w http.ResponseWriter, r *http.Request) {
	a, ok := p.assets[r.PathValue("name")]
	if !ok {
		p.notFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("Content-Length", fmt.Sprint(len(a.data)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.data)
	}
}

// link is a navigation entry.
type link struct {
	URL, Label string
	Current    bool
}

// pageData is what every template receives; one of the view fields is set.
type pageData struct {
	Lang, SwitchLang, SwitchLabel, SwitchURL string
	School, Title, Description               string
	CSS, Icon, Status, Query                 string
	HandIn                                   string
	Nav                                      []link
	// PageCSS is a second stylesheet some pages add; Refresh, when not 0,
	// reloads the page after that many seconds; OfflineKey is the
	// catalogue key of the offline indicator's text.
	PageCSS    string
	Refresh    int
	OfflineKey string

	Home   *homeView
	List   *listView
	Search *searchView
	Item   *itemView
	Error  *errorView

	Catalogue *catalogueView
}

// T returns the text of key in the page's language.
func (d *pageData) T(key string) string { return msg(d.Lang, key) }

// Tf formats the text of key with args.
func (d *pageData) Tf(key string, args ...any) string { return msgf(d.Lang, key, args...) }

func (p *Portal) newPage(r *http.Request, title string) *pageData {
	lang := p.lang(r)
	other := msg(lang, "lang.switch.code")
	q := r.URL.Query()
	q.Set(langParam, other)
	d := &pageData{
		Lang:        lang,
		SwitchLang:  other,
		SwitchLabel: msg(lang, "lang.switch"),
		SwitchURL:   localURL(r.URL.Path, q.Encode()),
		School:      p.cfg.SchoolName,
		Title:       title,
		CSS:         p.css,
		Icon:        p.icon,
		HandIn:      p.cfg.HandInURL,
		OfflineKey:  "status.offline",
	}
	if p.up != nil {
		d.Status = "offline"
		if p.up.Online() {
			d.Status = "online"
		}
	}
	d.Nav = append(d.Nav, link{URL: "/", Label: msg(lang, "nav.home"), Current: r.URL.Path == "/"})
	for _, l := range levelOrder {
		u := "/niveau/" + l
		d.Nav = append(d.Nav, link{URL: u, Label: levelLabel(lang, l), Current: r.URL.Path == u})
	}
	if p.cfg.Cards != nil {
		d.Nav = append(d.Nav, link{URL: "/catalogue", Label: msg(lang, "nav.catalogue"), Current: r.URL.Path == "/catalogue"})
	}
	return d
}

func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, page string, d *pageData) {
	var buf bytes.Buffer
	if err := p.pages[page].ExecuteTemplate(&buf, "layout", d); err != nil {
		p.log.Error("render page", "page", page, "path", r.URL.Path, "err", err)
		http.Error(w, msg(d.Lang, "error.title"), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Cookie")
	h.Set("Content-Language", d.Lang)
	h.Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// errorView is the 404 and 500 pages' content.
type errorView struct{ Text string }

func (p *Portal) notFound(w http.ResponseWriter, r *http.Request) {
	d := p.newPage(r, "")
	d.Title = d.T("notfound.title")
	d.Error = &errorView{Text: d.T("notfound.text")}
	p.render(w, r, http.StatusNotFound, "error", d)
}

// failed answers 500 after logging err: the decision to fail is made here.
func (p *Portal) failed(w http.ResponseWriter, r *http.Request, err error) {
	p.log.Error("portal request failed", "path", r.URL.Path, "err", err)
	d := p.newPage(r, "")
	d.Title = d.T("error.title")
	d.Error = &errorView{Text: d.T("error.text")}
	p.render(w, r, http.StatusInternalServerError, "error", d)
}

// card is one resource in a list.
type card struct{ URL, Title, Kind, Size, Thumb, Lang string }

// group is a titled list of cards, with a link to the rest when cut short.
type group struct {
	ID, Title string
	Cards     []card
	MoreURL   string
	MoreText  string
}

// section is a level (home, subject pages) or a subject (level pages).
type section struct {
	ID, Title, URL string
	Groups         []group
}

type homeView struct {
	Sections  []section
	Catalogue *homeCatalogue // nil without a school catalogue
}

type listView struct {
	Count    string
	Sections []section
}

// allLevels is the pseudo-level of items that name no level.
const allLevels = "tous"

// homeCardsPerGroup bounds the home page: a school with thousands of
// resources still gets a light page (the rest is one link away).
const homeCardsPerGroup = 4

func (p *Portal) home(w http.ResponseWriter, r *http.Request) {
	items, err := p.cat.Items(r.Context())
	if err != nil {
		p.failed(w, r, fmt.Errorf("list items: %w", err))
		return
	}
	d := p.newPage(r, "")
	d.Title = d.T("home.title")
	v := &homeView{}
	for _, lvl := range levelsOf(items) {
		var in []Item
		for _, it := range items {
			if hasLevel(it, lvl) {
				in = append(in, it)
			}
		}
		sec := section{ID: "n-" + lvl, Title: levelLabel(d.Lang, lvl), URL: "/niveau/" + url.PathEscape(lvl)}
		for _, g := range p.groupBySubject(d.Lang, in) {
			if len(g.Cards) > homeCardsPerGroup {
				g.MoreURL = sec.URL + "#" + g.ID
				g.MoreText = d.Tf("home.more", len(g.Cards), g.Title)
				g.Cards = g.Cards[:homeCardsPerGroup]
			}
			sec.Groups = append(sec.Groups, g)
		}
		v.Sections = append(v.Sections, sec)
	}
	v.Catalogue = p.homeCatalogue(r, d.Lang)
	d.Home = v
	p.render(w, r, http.StatusOK, "home", d)
}

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

func (p *Portal) level(w http.ResponseWriter, r *http.Request) {
	lvl := r.PathValue("level")
	items, err := p.cat.Items(r.Context())
	if err != nil {
		p.failed(w, r, fmt.Errorf("list items: %w", err))
		return
	}
	var in []Item
	for _, it := range items {
		if hasLevel(it, lvl) {
			in = append(in, it)
		}
	}
	_, known := levelLabels[lvl]
	if !slugPattern.MatchString(lvl) || (!known && lvl != allLevels && len(in) == 0) {
		p.notFound(w, r)
		return
	}
	d := p.newPage(r, "")
	d.Title = d.Tf("list.level", levelLabel(d.Lang, lvl))
	d.List = &listView{Count: countText(d.Lang, len(in))}
	for _, g := range p.groupBySubject(d.Lang, in) {
		d.List.Sections = append(d.List.Sections, section{ID: g.ID, Title: g.Title, URL: "/matiere/" + url.PathEscape(strings.TrimPrefix(g.ID, "m-")), Groups: []group{{Cards: g.Cards}}})
	}
	p.render(w, r, http.StatusOK, "list", d)
}

func (p *Portal) subject(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	items, err := p.cat.Items(r.Context())
	if err != nil {
		p.failed(w, r, fmt.Errorf("list items: %w", err))
		return
	}
	var in []Item
	for _, it := range items {
		if slices.Contains(it.Subjects, subj) {
			in = append(in, it)
		}
	}
	_, known := subjectLabels[subj]
	if !slugPattern.MatchString(subj) || (!known && len(in) == 0) {
		p.notFound(w, r)
		return
	}
	d := p.newPage(r, "")
	d.Title = d.Tf("list.subject", subjectLabel(d.Lang, subj))
	d.List = &listView{Count: countText(d.Lang, len(in))}
	for _, lvl := range levelsOf(in) {
		sec := section{ID: "n-" + lvl, Title: levelLabel(d.Lang, lvl), URL: "/niveau/" + url.PathEscape(lvl)}
		var g group
		for _, it := range sortedByTitle(in) {
			if hasLevel(it, lvl) {
				g.Cards = append(g.Cards, p.card(d.Lang, it))
			}
		}
		sec.Groups = []group{g}
		d.List.Sections = append(d.List.Sections, sec)
	}
	p.render(w, r, http.StatusOK, "list", d)
}

func countText(lang string, n int) string {
	if n == 1 {
		return msg(lang, "list.count.one")
	}
	return msgf(lang, "list.count.many", n)
}

type searchView struct {
	Asked   bool
	Heading string
	Cards   []card
}

// searchLimit bounds one results page.
const searchLimit = 50

func (p *Portal) search(w http.ResponseWriter, r *http.Request) {
	q := strings.Join(strings.Fields(r.URL.Query().Get("q")), " ")
	if utf8.RuneCountInString(q) > 200 {
		q = string([]rune(q)[:200])
	}
	d := p.newPage(r, "")
	d.Title = d.T("search.title")
	d.Query = q
	v := &searchView{}
	if q != "" {
		items, err := p.cat.Search(r.Context(), q, searchLimit)
		if err != nil {
			p.failed(w, r, fmt.Errorf("search %q: %w", q, err))
			return
		}
		v.Asked = true
		switch len(items) {
		case 0:
			v.Heading = d.Tf("search.none", q)
		case 1:
			v.Heading = d.Tf("search.one", q)
		default:
			v.Heading = d.Tf("search.many", len(items), q)
		}
		for _, it := range items {
			v.Cards = append(v.Cards, p.card(d.Lang, it))
		}
		d.Title = v.Heading
	}
	d.Search = v
	p.render(w, r, http.StatusOK, "search", d)
}

// groupBySubject sorts items into one group per subject (items may be in
// several), groups ordered by label, cards by title.
func (p *Portal) groupBySubject(lang string, items []Item) []group {
	bySubject := map[string][]Item{}
	for _, it := range sortedByTitle(items) {
		if len(it.Subjects) == 0 {
			bySubject[""] = append(bySubject[""], it)
		}
		for _, s := range uniq(it.Subjects) {
			bySubject[s] = append(bySubject[s], it)
		}
	}
	subjects := make([]string, 0, len(bySubject))
	for s := range bySubject {
		subjects = append(subjects, s)
	}
	slices.SortFunc(subjects, func(a, b string) int {
		if (a == "") != (b == "") { // "Divers" last
			if a == "" {
				return 1
			}
			return -1
		}
		return strings.Compare(foldKey(subjectLabel(lang, a)), foldKey(subjectLabel(lang, b)))
	})
	groups := make([]group, 0, len(subjects))
	for _, s := range subjects {
		g := group{ID: "m-" + s, Title: subjectLabel(lang, s)}
		if s == "" {
			g.ID = "m-divers"
		}
		for _, it := range bySubject[s] {
			g.Cards = append(g.Cards, p.card(lang, it))
		}
		groups = append(groups, g)
	}
	return groups
}

// levelsOf returns the levels used by items: known ones in school order,
// then unknown ones sorted, then "tous" for items with no level.
func levelsOf(items []Item) []string {
	seen := map[string]bool{}
	for _, it := range items {
		if len(it.Levels) == 0 {
			seen[allLevels] = true
		}
		for _, l := range it.Levels {
			seen[l] = true
		}
	}
	var out, unknown []string
	for _, l := range levelOrder {
		if seen[l] {
			out = append(out, l)
		}
	}
	for l := range seen {
		if _, ok := levelLabels[l]; !ok && l != allLevels {
			unknown = append(unknown, l)
		}
	}
	slices.Sort(unknown)
	out = append(out, unknown...)
	if seen[allLevels] {
		out = append(out, allLevels)
	}
	return out
}

func hasLevel(it Item, lvl string) bool {
	if lvl == allLevels {
		return len(it.Levels) == 0
	}
	return slices.Contains(it.Levels, lvl)
}

func sortedByTitle(items []Item) []Item {
	out := slices.Clone(items)
	slices.SortStableFunc(out, func(a, b Item) int {
		if c := strings.Compare(foldKey(a.Title), foldKey(b.Title)); c != 0 {
			return c
		}
		return strings.Compare(a.Pack+"/"+a.ID, b.Pack+"/"+b.ID)
	})
	return out
}

func uniq(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (p *Portal) card(lang string, it Item) card {
	c := card{
		URL:   itemURL(it),
		Title: it.Title,
		Kind:  kindLabel(lang, it.Kind),
		Size:  formatSize(lang, totalSize(it)),
		Lang:  contentLang(lang, it.Language),
	}
	if c.Title == "" {
		c.Title = it.ID
	}
	if it.Thumbnail != "" && validPackPath(it.Thumbnail) {
		c.Thumb = p.contentURL(it.Pack, it.Thumbnail)
	}
	return c
}

func itemURL(it Item) string {
	return "/ressource/" + url.PathEscape(it.Pack) + "/" + url.PathEscape(it.ID)
}

func (p *Portal) contentURL(pack, file string) string {
	return p.cfg.ContentPrefix + url.PathEscape(pack) + "/" + escapePath(file)
}

func totalSize(it Item) int64 {
	var n int64
	for _, f := range it.Files {
		n += max(f.Size, 0)
	}
	return n
}

var langTagPattern = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)

// contentLang returns the item's language when it differs from the page's,
// for a lang attribute; "" otherwise.
func contentLang(pageLang, itemLang string) string {
	if itemLang == "" || !langTagPattern.MatchString(itemLang) || strings.EqualFold(itemLang, pageLang) {
		return ""
	}
	return itemLang
}

// itemView is a resource page's content.
type itemView struct {
	Title, Description, Lang           string
	Kind, KindLabel                    string
	EntryURL, EntryType, EntryName     string
	Licence, Source, SourceURL, Author string
	Updated                            string
	Levels, Subjects                   []link
	Files                              []fileView
	Tracks                             []trackView
	Article                            template.HTML
	ArticleFailed                      bool
	FrameTitle                         string
}

type fileView struct{ URL, Name, Type, Size string }

type trackView struct{ URL, Lang, Label string }

func (p *Portal) item(w http.ResponseWriter, r *http.Request) {
	pack, id := r.PathValue("pack"), r.PathValue("item")
	if !slugPattern.MatchString(pack) || !slugPattern.MatchString(id) {
		p.notFound(w, r)
		return
	}
	it, err := p.cat.Item(r.Context(), pack, id)
	if errors.Is(err, ErrNotFound) {
		p.notFound(w, r)
		return
	}
	if err != nil {
		p.failed(w, r, fmt.Errorf("get item %s/%s: %w", pack, id, err))
		return
	}
	d := p.newPage(r, it.Title)
	if d.Title == "" {
		d.Title = it.ID
	}
	d.Description = it.Description
	v := &itemView{
		Title:       d.Title,
		Description: it.Description,
		Lang:        contentLang(d.Lang, it.Language),
		Kind:        it.Kind,
		KindLabel:   kindLabel(d.Lang, it.Kind),
		Licence:     licenceLabel(it.Licence),
		Source:      it.Source,
		Author:      strings.Join(it.Authors, ", "),
		Updated:     formatDate(d.Lang, it.Updated),
		FrameTitle:  d.Tf("item.pdf.frame", d.Title),
	}
	if u, err := url.Parse(it.Source); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		v.SourceURL = u.String()
	}
	for _, l := range uniq(it.Levels) {
		v.Levels = append(v.Levels, link{URL: "/niveau/" + url.PathEscape(l), Label: levelLabel(d.Lang, l)})
	}
	for _, s := range uniq(it.Subjects) {
		v.Subjects = append(v.Subjects, link{URL: "/matiere/" + url.PathEscape(s), Label: subjectLabel(d.Lang, s)})
	}
	for _, f := range it.Files {
		if !validPackPath(f.Path) {
			continue
		}
		fv := fileView{URL: p.contentURL(it.Pack, f.Path), Name: path.Base(f.Path), Type: mediaLabel(f.MediaType), Size: formatSize(d.Lang, f.Size)}
		v.Files = append(v.Files, fv)
		if f.Path == it.Entry {
			v.EntryURL, v.EntryType, v.EntryName = fv.URL, mediaBase(f.MediaType), fv.Name
		}
		if mediaBase(f.MediaType) == "text/vtt" {
			v.Tracks = append(v.Tracks, trackView{URL: fv.URL, Lang: trackLang(f.Path, it.Language), Label: path.Base(f.Path)})
		}
	}
	if v.EntryURL == "" && validPackPath(it.Entry) {
		v.EntryURL, v.EntryName = p.contentURL(it.Pack, it.Entry), path.Base(it.Entry)
	}
	if it.Kind == "article" && v.EntryURL != "" {
		art, err := p.article(r, it)
		if err != nil {
			// The page still works: the article's file is offered for
			// download below.
			p.log.Warn("show article", "pack", it.Pack, "item", it.ID, "err", err)
			v.ArticleFailed = true
		} else {
			v.Article = art.HTML
			if d.Description == "" {
				d.Description = truncateRunes(art.Text, 160)
			}
		}
	}
	d.Item = v
	p.render(w, r, http.StatusOK, "item", d)
}

func (p *Portal) article(r *http.Request, it Item) (renderedArticle, error) {
	rc, err := p.cat.Open(r.Context(), it.Pack, it.Entry)
	if err != nil {
		return renderedArticle{}, fmt.Errorf("open %s/%s: %w", it.Pack, it.Entry, err)
	}
	defer rc.Close()
	return renderArticle(p.policy, p.cfg.ContentPrefix, it.Pack, it.Entry, rc)
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// mediaBase returns the media type without parameters, lowercased.
func mediaBase(mt string) string {
	base, _, _ := strings.Cut(mt, ";")
	return strings.ToLower(strings.TrimSpace(base))
}

// mediaLabel names a media type briefly for the file list ("PDF", "PNG").
func mediaLabel(mt string) string {
	base := mediaBase(mt)
	if base == "" {
		return "?"
	}
	_, sub, _ := strings.Cut(base, "/")
	sub = strings.TrimPrefix(sub, "x-")
	switch sub {
	case "vnd.oasis.opendocument.text":
		return "ODT"
	case "mpeg":
		if strings.HasPrefix(base, "audio/") {
			return "MP3"
		}
	case "plain":
		return "TXT"
	}
	if len(sub) > 12 {
		return base
	}
	return strings.ToUpper(sub)
}

// licenceLabel writes the common Creative Commons identifiers the way they
// are usually read ("CC BY 4.0"); other licences are shown as given.
func licenceLabel(l string) string {
	if strings.HasPrefix(l, "CC-") || l == "CC0-1.0" {
		parts := strings.Split(l, "-")
		if len(parts) >= 3 {
			return parts[0] + " " + strings.Join(parts[1:len(parts)-1], "-") + " " + parts[len(parts)-1]
		}
		if len(parts) == 2 {
			return parts[0] + " " + parts[1]
		}
	}
	return l
}

// trackLang guesses a subtitle file's language from a suffix such as
// ".fr.vtt", else uses the item's language.
func trackLang(p, itemLang string) string {
	name := strings.TrimSuffix(path.Base(p), path.Ext(p))
	if i := strings.LastIndexByte(name, '.'); i >= 0 && langTagPattern.MatchString(name[i+1:]) {
		return name[i+1:]
	}
	if itemLang != "" && langTagPattern.MatchString(itemLang) {
		return itemLang
	}
	return "fr"
}
