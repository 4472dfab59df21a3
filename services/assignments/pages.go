package assignments

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed templates/*.html static/*
var files embed.FS

// pageNames are the page templates; each is parsed with layout.html.
var pageNames = []string{"classes", "class", "handin", "receipt", "receipts", "login", "teacher", "new", "assignment", "error"}

// templateFuncs give sub-templates that do not receive the page (receipt
// cards) the words of a language.
var templateFuncs = template.FuncMap{"t": msg}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(templateFuncs).ParseFS(files, "templates/layout.html", "templates/"+name+".html")
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

const staticPrefix = "/devoirs/static/"

func loadAssets() (map[string]asset, string, string, error) {
	assets := map[string]asset{}
	add := func(file, ext, ctype string) (string, error) {
		data, err := fs.ReadFile(files, "static/"+file)
		if err != nil {
			return "", fmt.Errorf("read asset %s: %w", file, err)
		}
		sum := sha256.Sum256(data)
		name := strings.TrimSuffix(file, ext) + "." + hex.EncodeToString(sum[:6]) + ext
		assets[name] = asset{data, ctype}
		return staticPrefix + name, nil
	}
	css, err := add("devoirs.css", ".css", "text/css; charset=utf-8")
	if err != nil {
		return nil, "", "", err
	}
	js, err := add("devoirs.js", ".js", "text/javascript; charset=utf-8")
	if err != nil {
		return nil, "", "", err
	}
	return assets, css, js, nil
}

func (s *Service) static(w http.ResponseWriter, r *http.Request) {
	a, ok := s.assets[r.PathValue("name")]
	if !ok {
		s.notFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("Content-Length", fmt.Sprint(len(a.data)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.data)
	}
}

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /devoirs", redirectTo("/devoirs/"))
	mux.HandleFunc("GET /devoirs/{$}", s.classes)
	mux.HandleFunc("GET /devoirs/classe/{class}", s.class)
	mux.HandleFunc("GET /devoirs/devoir/{id}", s.handInPage)
	mux.HandleFunc("POST /devoirs/devoir/{id}", s.postHandIn)
	mux.HandleFunc("GET /devoirs/recu", s.lookup)
	mux.HandleFunc("GET /devoirs/recu/{code}", s.receipt)
	mux.HandleFunc("GET /devoirs/recus", s.receipts)
	mux.HandleFunc("GET /devoirs/static/{name}", s.static)

	mux.HandleFunc("GET /enseignant", redirectTo("/enseignant/"))
	mux.HandleFunc("GET /enseignant/{$}", s.teacherOnly(s.teacherHome))
	mux.HandleFunc("GET /enseignant/connexion", s.loginPage)
	mux.HandleFunc("POST /enseignant/connexion", s.login)
	mux.HandleFunc("POST /enseignant/deconnexion", s.teacherOnly(s.logout))
	mux.HandleFunc("GET /enseignant/devoirs/nouveau", s.teacherOnly(s.newAssignmentPage))
	mux.HandleFunc("POST /enseignant/devoirs", s.teacherOnly(s.createAssignmentPost))
	mux.HandleFunc("GET /enseignant/devoirs/{id}", s.teacherOnly(s.assignmentPage))
	mux.HandleFunc("POST /enseignant/devoirs/{id}/fermer", s.teacherOnly(s.closeAssignmentPost))
	mux.HandleFunc("GET /enseignant/fichiers/{id}", s.teacherOnly(s.download))
	mux.HandleFunc("/", s.notFound)
	return securityHeaders(s.languageSwitch(mux))
}

func redirectTo(u string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, u, http.StatusMovedPermanently)
	}
}

// csp allows only this server: no script at all, except on the hand-in form
// (see cspWithScript).
const csp = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"

// cspWithScript is the hand-in form's policy: one script file of this
// server checks the files' sizes and types before they are sent, so that a
// pupil on a slow Wi-Fi does not upload 100 MB to be refused (RGESN
// 4.14/4.15). The form works the same without it; the server checks again.
const cspWithScript = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// Cookies. The language cookie is the portal's, so the choice holds across
// the whole box.
const (
	langCookie    = "preau_lang"
	langParam     = "lang"
	csrfCookie    = "preau_csrf"
	deviceCookie  = "preau_appareil"
	sessionCookie = "preau_session"
	yearSecs      = 365 * 24 * 3600
	deviceSecs    = 400 * 24 * 3600 // the longest browsers keep a cookie
)

// languageSwitch handles ?lang=fr|en on any GET: it remembers the choice
// and redirects to the same address without the parameter.
func (s *Service) languageSwitch(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if !q.Has(langParam) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		if lang := q.Get(langParam); catalogues[lang] != nil {
			http.SetCookie(w, &http.Cookie{
				Name: langCookie, Value: lang, Path: "/", MaxAge: yearSecs,
				HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
			})
		}
		q.Del(langParam)
		http.Redirect(w, r, localURL(r.URL.Path, q.Encode()), http.StatusSeeOther)
	})
}

// localURL builds a same-origin URL from a request path, so that a path such
// as "//evil.example" cannot turn a redirect into an open redirect.
func localURL(path, rawQuery string) string {
	path = "/" + strings.TrimLeft(path, "/\\")
	return (&url.URL{Path: path, RawQuery: rawQuery}).String()
}

func (s *Service) lang(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && catalogues[c.Value] != nil {
		return c.Value
	}
	return s.cfg.DefaultLanguage
}

// csrfToken returns the double-submit token of the visitor, setting the
// cookie when it has none. Forms carry it in a hidden field.
func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && validToken(c.Value) {
		return c.Value
	}
	t := randomToken(24)
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: t, Path: "/", MaxAge: yearSecs,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
	return t
}

// cookieCSRF returns the token of the request's cookie, "" if none.
func cookieCSRF(r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && validToken(c.Value) {
		return c.Value
	}
	return ""
}

// deviceID returns the hash of the device cookie, setting the cookie when
// the device has none. Receipts are listed by this hash.
func deviceID(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(deviceCookie); err == nil && validToken(c.Value) {
		return tokenHash(c.Value)
	}
	t := randomToken(24)
	http.SetCookie(w, &http.Cookie{
		Name: deviceCookie, Value: t, Path: "/devoirs", MaxAge: deviceSecs,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
	return tokenHash(t)
}

func validToken(t string) bool {
	if len(t) < 16 || len(t) > 64 {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sameOrigin refuses POSTs that a browser says come from another site. A
// request without Origin (old browsers) relies on the CSRF token alone.
func sameOrigin(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// clientIP is the peer's address, the key of rate limits.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// link is a navigation entry.
type link struct {
	URL, Label string
	Current    bool
}

// pageData is what every template receives; one of the view fields is set.
type pageData struct {
	Lang, SwitchLang, SwitchLabel, SwitchURL string
	School, Title                            string
	PortalCSS, CSS, Script, PortalURL        string
	Nav                                      []link
	Teacher                                  *session
	CSRF                                     string
	Errors                                   []string
	Notice                                   string

	Classes    *classesView
	Class      *classView
	HandIn     *handInView
	Receipt    *receiptView
	Receipts   *receiptsView
	Login      *loginView
	List       *teacherListView
	New        *newView
	Assignment *assignmentView
	Error      *errorView
}

// T returns the text of key in the page's language.
func (d *pageData) T(key string) string { return msg(d.Lang, key) }

// Tf formats the text of key with args.
func (d *pageData) Tf(key string, args ...any) string { return msgf(d.Lang, key, args...) }

func (s *Service) newPage(r *http.Request, title string) *pageData {
	lang := s.lang(r)
	other := msg(lang, "lang.switch.code")
	q := r.URL.Query()
	q.Set(langParam, other)
	d := &pageData{
		Lang:        lang,
		SwitchLang:  other,
		SwitchLabel: msg(lang, "lang.switch"),
		SwitchURL:   localURL(r.URL.Path, q.Encode()),
		School:      s.cfg.SchoolName,
		Title:       title,
		PortalCSS:   s.cfg.StylesheetURL,
		CSS:         s.css,
		PortalURL:   s.cfg.PortalURL,
	}
	p := r.URL.Path
	d.Nav = []link{
		{URL: s.cfg.PortalURL, Label: msg(lang, "nav.portal")},
		{URL: "/devoirs/", Label: msg(lang, "nav.handin"), Current: p == "/devoirs/" || strings.HasPrefix(p, "/devoirs/classe/") || strings.HasPrefix(p, "/devoirs/devoir/")},
		{URL: "/devoirs/recus", Label: msg(lang, "nav.receipts"), Current: p == "/devoirs/recus" || strings.HasPrefix(p, "/devoirs/recu")},
		{URL: "/enseignant/", Label: msg(lang, "nav.teacher"), Current: strings.HasPrefix(p, "/enseignant")},
	}
	return d
}

func (s *Service) render(w http.ResponseWriter, r *http.Request, status int, page string, d *pageData) {
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, "layout", d); err != nil {
		s.log.Error("render page", "page", page, "path", r.URL.Path, "err", err)
		http.Error(w, msg(d.Lang, "error.title"), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	if d.Script != "" {
		h.Set("Content-Security-Policy", cspWithScript)
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages show names and delivery states: never kept by a cache.
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", d.Lang)
	h.Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// errorView is the 404 and 500 pages' content.
type errorView struct {
	Text, Back, BackURL string
}

func (s *Service) notFound(w http.ResponseWriter, r *http.Request) {
	d := s.newPage(r, "")
	d.Title = d.T("notfound.title")
	d.Error = &errorView{Text: d.T("notfound.text"), Back: d.T("notfound.back"), BackURL: "/devoirs/"}
	s.render(w, r, http.StatusNotFound, "error", d)
}

// failed answers 500 after logging err: the decision to fail is made here.
func (s *Service) failed(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("assignments request failed", "path", r.URL.Path, "err", err)
	d := s.newPage(r, "")
	d.Title = d.T("error.title")
	d.Error = &errorView{Text: d.T("error.text"), Back: d.T("notfound.back"), BackURL: "/devoirs/"}
	s.render(w, r, http.StatusInternalServerError, "error", d)
}

// deliveryState asks the outbox about one file. A file the outbox does not
// know yet, or cannot tell about, is waiting to be sent.
func (s *Service) deliveryState(r *http.Request, key string) DeliveryState {
	if s.delivery == nil {
		return DeliveryState{Status: DeliveryQueued}
	}
	st, err := s.delivery.State(r.Context(), key)
	if err != nil {
		if !errors.Is(err, ErrNotQueued) {
			s.log.Warn("delivery state", "key", key, "err", err)
		}
		return DeliveryState{Status: DeliveryQueued}
	}
	switch st.Status {
	case DeliveryQueued, DeliverySending, DeliveryDelivered, DeliveryFailed:
		return st
	}
	return DeliveryState{Status: DeliveryQueued}
}

// pupilState sums up a hand-in's files for the pupil: sent when every file
// arrived, failed when one failed, else received and waiting.
func pupilState(states []DeliveryState) string {
	sent := len(states) > 0
	for _, st := range states {
		if st.Status == DeliveryFailed {
			return "failed"
		}
		if st.Status != DeliveryDelivered {
			sent = false
		}
	}
	if sent {
		return "sent"
	}
	return "pending"
}

func (s *Service) localTime(t time.Time) time.Time { return t.In(s.cfg.Location) }
