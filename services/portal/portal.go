// Package portal owns the pupils' and teachers' web portal: the HTML pages a
// tablet lands on (home, levels, subjects, search, resource pages, 404), in
// French first with an English switch, and the portal's own stylesheet and
// icon. It reads resources through the Catalog interface it declares and
// never touches storage itself; raw pack files are served by another handler
// at Config.ContentPrefix (default "/c/"). When given the optional Cards
// interface it also shows the school catalogue (/catalogue): GAR resources
// and downloads with their honest states.
//
// Only the appliance root imports this package (it passes an adapter over
// services/content as the Catalog, one over services/catalog as Cards and
// the uplink monitor as the Uplink). The portal imports no other Préau
// package.
package portal

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/microcosm-cc/bluemonday"
)

// ErrNotFound is wrapped by Catalog implementations when an item or a file
// does not exist; the portal answers 404 for it.
var ErrNotFound = errors.New("not found")

// Item is a resource as the portal shows it. Levels and Subjects hold the
// content-pack slugs (cycle1 … lycee, francais, sciences …).
type Item struct {
	Pack, ID, Title, Description, Kind, Language, Licence, Source string
	Authors, Levels, Subjects                                     []string
	Entry, Thumbnail                                              string
	Files                                                         []File
	Updated                                                       time.Time
}

// File is one file of an item, served at ContentPrefix + Pack + "/" + Path.
type File struct {
	Path      string
	Size      int64
	SHA256    string
	MediaType string
}

// Catalog is what the portal needs from the content store.
type Catalog interface {
	Items(ctx context.Context) ([]Item, error)
	// Item returns an error wrapping ErrNotFound when the item is missing.
	Item(ctx context.Context, pack, id string) (Item, error)
	Search(ctx context.Context, query string, limit int) ([]Item, error)
	// Open returns the raw bytes of a pack file (used for articles).
	Open(ctx context.Context, pack, path string) (io.ReadCloser, error)
}

// Uplink reports whether the Internet link works, for the indicator.
type Uplink interface{ Online() bool }

// Config holds the portal's settings.
type Config struct {
	// SchoolName is shown in every page's header. Default "Préau".
	SchoolName string
	// DefaultLanguage is "fr" or "en", used when the visitor has not chosen.
	// Default "fr".
	DefaultLanguage string
	// HandInURL, when set, is linked from every page's header as "Rendre
	// un devoir" (the assignments component's pupil pages).
	HandInURL string
	// ContentPrefix is where pack files are served, with both slashes.
	// Default "/c/".
	ContentPrefix string
	// Cards, when set, is the school catalogue (GAR resources, PeerTube
	// videos, shares, packs by URL with their download states): the portal
	// then serves /catalogue and /paquet/{pack}, links the catalogue from
	// its navigation and lists downloads under way on the home page. Not a
	// setting: appliance passes an adapter. Default nil: no catalogue.
	Cards Cards `toml:"-"`
}

// WithDefaults returns c with empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if strings.TrimSpace(c.SchoolName) == "" {
		c.SchoolName = "Préau"
	}
	if c.DefaultLanguage == "" {
		c.DefaultLanguage = "fr"
	}
	if c.ContentPrefix == "" {
		c.ContentPrefix = "/c/"
	}
	return c
}

var contentPrefixPattern = regexp.MustCompile(`^/([a-z0-9_-]+/)*$`)

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if len(c.SchoolName) > 200 || strings.ContainsAny(c.SchoolName, "\x00\r\n") {
		return fmt.Errorf("portal config: school name must be one line of at most 200 bytes")
	}
	if _, ok := catalogues[c.DefaultLanguage]; !ok {
		return fmt.Errorf("portal config: default language %q: want \"fr\" or \"en\"", c.DefaultLanguage)
	}
	if c.ContentPrefix == "/" || !contentPrefixPattern.MatchString(c.ContentPrefix) {
		return fmt.Errorf("portal config: content prefix %q: want a path such as \"/c/\"", c.ContentPrefix)
	}
	return nil
}

// Portal serves the portal's pages. It is safe for concurrent use.
type Portal struct {
	cfg     Config
	cat     Catalog
	up      Uplink
	log     *slog.Logger
	pages   map[string]*template.Template
	assets  map[string]asset // by hashed name
	css     string           // URL of the stylesheet
	catCSS  string           // URL of the catalogue page's stylesheet
	icon    string           // URL of the favicon
	policy  *bluemonday.Policy
	handler http.Handler
	facets  facetMemo // every card, for the catalogue's filter menus
}

// New checks cfg (after defaults) and prepares the templates; it does no
// I/O. up may be nil: the online indicator is then hidden.
func New(cfg Config, cat Catalog, up Uplink, log *slog.Logger) (*Portal, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cat == nil {
		return nil, errors.New("new portal: catalog is nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Portal{cfg: cfg, cat: cat, up: up, log: log, policy: articlePolicy()}
	var err error
	if p.pages, err = parsePages(); err != nil {
		return nil, fmt.Errorf("new portal: %w", err)
	}
	var urls map[string]string
	if p.assets, urls, err = loadAssets(); err != nil {
		return nil, fmt.Errorf("new portal: %w", err)
	}
	p.css, p.catCSS, p.icon = urls["style.css"], urls["catalogue.css"], urls["favicon.svg"]
	p.handler = p.routes()
	return p, nil
}

// Handler returns the portal's HTTP handler, to be mounted at "/".
func (p *Portal) Handler() http.Handler { return p.handler }

func (p *Portal) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.home)
	mux.HandleFunc("GET /niveau/{level}", p.level)
	mux.HandleFunc("GET /matiere/{subject}", p.subject)
	mux.HandleFunc("GET /recherche", p.search)
	mux.HandleFunc("GET /ressource/{pack}/{item}", p.item)
	mux.HandleFunc("GET /catalogue", p.catalogue)
	mux.HandleFunc("GET /paquet/{pack}", p.pack)
	mux.HandleFunc("GET /static/{name}", p.static)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.notFound(w, r)
	})
	return securityHeaders(p.languageSwitch(mux))
}

// csp allows only the portal's own origin: no inline script or style, media
// and frames from the content handler on the same host.
const csp = "default-src 'self'; img-src 'self' data:; media-src 'self'; frame-src 'self'; object-src 'self'; style-src 'self'; script-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

const (
	langCookie = "preau_lang"
	langParam  = "lang"
	yearSecs   = 365 * 24 * 3600
)

// languageSwitch handles ?lang=fr|en on any URL: it remembers the choice in
// a cookie and redirects to the same address without the parameter, so the
// address bar and bookmarks stay clean.
func (p *Portal) languageSwitch(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if !q.Has(langParam) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		if lang := q.Get(langParam); catalogues[lang] != nil {
			http.SetCookie(w, &http.Cookie{
				Name: langCookie, Value: lang, Path: "/", MaxAge: yearSecs,
				HttpOnly: true, SameSite: http.SameSiteLaxMode,
			})
		}
		q.Del(langParam)
		http.Redirect(w, r, localURL(r.URL.Path, q.Encode()), http.StatusSeeOther)
	})
}

// localURL builds a same-origin URL from a request path, so that a path such
// as "//evil.example" cannot turn the redirect into an open redirect.
func localURL(path, rawQuery string) string {
	path = "/" + strings.TrimLeft(path, "/\\")
	return (&url.URL{Path: path, RawQuery: rawQuery}).String()
}

// lang returns the visitor's language: the cookie if valid, else the default.
func (p *Portal) lang(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && catalogues[c.Value] != nil {
		return c.Value
	}
	return p.cfg.DefaultLanguage
}

// StylesheetURL is the URL of the portal's stylesheet (its name carries
// the content hash), for other components' pages to share the look.
func (p *Portal) StylesheetURL() string { return p.css }
