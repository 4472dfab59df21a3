package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

//go:embed templates/*.html static/*
var files embed.FS

// Who may use a route (Route.Role).
const (
	// AccessPublic routes answer anyone on an allowed network: sign-in,
	// setup, static files.
	AccessPublic = "public"
	// AccessAccount routes need any signed-in account (sign-out, one's own
	// password and TOTP).
	AccessAccount = "account"
	// AccessDirection routes need a direction or technicien account (or a
	// token with either role).
	AccessDirection = "direction"
	// AccessTechnicien routes need a technicien account or token.
	AccessTechnicien = "technicien"
)

// Route is one entry of the console's routing table: the method and the
// pattern (net/http ServeMux syntax) and who may use it (Access…).
type Route struct {
	Method  string
	Pattern string
	Role    string
}

// handlerFunc serves a request whose access was checked; s is nil on
// public routes.
type handlerFunc func(w http.ResponseWriter, r *http.Request, s *session)

type route struct {
	Route
	h handlerFunc
}

// Routes returns the routing table the handler is built from, so that a
// test can walk every route.
func (c *Console) Routes() []Route {
	out := make([]Route, len(c.routes))
	for i, r := range c.routes {
		out[i] = r.Route
	}
	return out
}

func (c *Console) buildHandler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range c.routes {
		mux.Handle(rt.Method+" "+rt.Pattern, c.guard(rt))
	}
	mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) { c.notFound(w, r) })
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) { c.notFound(w, r) })
	return c.securityHeaders(c.networkGate(c.languageSwitch(mux)))
}

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// wantsJSON is true for API calls and scripts' fetches.
func wantsJSON(r *http.Request) bool {
	return isAPI(r) || r.Header.Get("X-CSRF-Token") != "" ||
		strings.Contains(r.Header.Get("Accept"), "application/json") && !strings.Contains(r.Header.Get("Accept"), "text/html")
}

func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// formOverhead bounds a form's body: the console's forms are small.
const formOverhead = 64 << 10

// guard checks access in this order: the session or token (non-public
// routes), the role, then CSRF for state changes. The network was checked
// before (networkGate).
func (c *Console) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var s *session
		if rt.Role != AccessPublic {
			sess, ok, err := c.requestSession(r)
			if err != nil {
				c.failed(w, r, err)
				return
			}
			if !ok {
				c.unauthenticated(w, r)
				return
			}
			if !allowed(sess, rt.Role) {
				c.forbidden(w, r, &sess)
				return
			}
			s = &sess
		}
		if stateChanging(r.Method) {
			r.Body = http.MaxBytesReader(w, r.Body, formOverhead)
			if !c.csrfOK(r, s) {
				c.csrfRefused(w, r, s)
				return
			}
		}
		rt.h(w, r, s)
	})
}

// allowed reports whether s may use a route of access level role.
func allowed(s session, role string) bool {
	switch role {
	case AccessAccount:
		return s.Token == nil // tokens are for the API's data routes
	case AccessDirection:
		return s.Role.rank() >= RoleDirection.rank()
	case AccessTechnicien:
		return s.Role == RoleTechnicien
	}
	return false
}

// requestSession returns the request's signed-in session (stage full) or,
// on /api/, the holder of its bearer token.
func (c *Console) requestSession(r *http.Request) (session, bool, error) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		if !isAPI(r) {
			return session{}, false, nil
		}
		scheme, secret, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return session{}, false, nil
		}
		t, ok, err := c.lookupToken(r.Context(), strings.TrimSpace(secret))
		if err != nil || !ok {
			return session{}, false, err
		}
		return session{Account: Account{Login: "jeton:" + t.Name, Name: t.Name, Role: t.Role}, Token: &t}, true, nil
	}
	s, ok, err := c.lookupSession(r.Context(), r)
	if err != nil || !ok || s.Stage != stageFull {
		return session{}, false, err
	}
	return s, true, nil
}

// csrfOK checks a state-changing request: never from another site, and
// carrying the session's token (or, before sign-in, the pre-session
// cookie's) in the form field "csrf" or the X-CSRF-Token header. Bearer
// token requests carry no ambient credential and need no CSRF token.
func (c *Console) csrfOK(r *http.Request, s *session) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return false
		}
	}
	if s != nil && s.Token != nil {
		return true
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		if err := r.ParseForm(); err != nil {
			return false
		}
		got = r.PostForm.Get("csrf")
	}
	if got == "" {
		return false
	}
	if s != nil {
		return constantTimeEqual(got, s.CSRF)
	}
	// Public forms: the pre-session cookie, or a pending (TOTP stage)
	// session's token.
	if ck, err := r.Cookie(preCSRFCookie); err == nil && len(ck.Value) == 43 && constantTimeEqual(got, ck.Value) {
		return true
	}
	if ps, ok, err := c.lookupSession(r.Context(), r); err == nil && ok && constantTimeEqual(got, ps.CSRF) {
		return true
	}
	return false
}

// preCSRF returns the pre-session CSRF token, setting its cookie when the
// request has none.
func (c *Console) preCSRF(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(preCSRFCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	t := randomToken(32)
	http.SetCookie(w, &http.Cookie{Name: preCSRFCookie, Value: t, Path: "/console",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.secure(r)})
	return t
}

// clientIP is the peer's address, the key of rate limits. Forwarding
// headers are ignored: the console is served directly.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return host
}

// networkAllowed reports whether the request comes from Config.Networks.
func (c *Console) networkAllowed(r *http.Request) bool {
	if len(c.cfg.Networks) == 0 {
		return true
	}
	a, err := netip.ParseAddr(clientIP(r))
	if err != nil {
		return false
	}
	for _, p := range c.cfg.Networks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (c *Console) networkGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.networkAllowed(r) {
			c.logRefusal(r, "network")
			c.refuse(w, r, nil, http.StatusForbidden, "network", "refused.network.title", "refused.network.text")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// csp allows only the console's own origin: no inline script or style,
// WebSocket and fetch to the same host.
const csp = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (c *Console) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

const (
	langCookie = "preau_lang" // shared with the portal
	langParam  = "lang"
	yearSecs   = 365 * 24 * 3600
)

// languageSwitch handles ?lang=fr|en on console pages: it remembers the
// choice in a cookie and redirects to the address without it.
func (c *Console) languageSwitch(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if !q.Has(langParam) || isAPI(r) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		if lang := q.Get(langParam); catalogues[lang] != nil {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: yearSecs,
				HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: c.secure(r)})
		}
		q.Del(langParam)
		http.Redirect(w, r, localURL(r.URL.Path, q.Encode()), http.StatusSeeOther)
	})
}

// localURL builds a same-origin URL from a path, so that "//evil.example"
// cannot become an open redirect.
func localURL(path, rawQuery string) string {
	path = "/" + strings.TrimLeft(path, "/\\")
	return (&url.URL{Path: path, RawQuery: rawQuery}).String()
}

// lang returns the visitor's language: the cookie, else the first of fr
// and en the browser's Accept-Language names, else the default.
func (c *Console) lang(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil && catalogues[ck.Value] != nil {
		return ck.Value
	}
	if l := acceptLanguage(r.Header.Get("Accept-Language")); l != "" {
		return l
	}
	return c.cfg.DefaultLanguage
}

// acceptLanguage picks fr or en from an Accept-Language header by quality
// (ties: the first listed); "" when it names neither.
func acceptLanguage(h string) string {
	best, bestQ := "", 0.0
	for part := range strings.SplitSeq(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if catalogues[base] == nil {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if _, err := fmt.Sscanf(v, "%g", &q); err != nil || q < 0 || q > 1 {
				continue
			}
		}
		if q > bestQ {
			best, bestQ = base, q
		}
	}
	return best
}

// asset is a static file served under a name that carries its hash, so
// that it can be cached for a year.
type asset struct {
	data        []byte
	contentType string
}

func loadAssets() (map[string]asset, map[string]string, error) {
	assets, urls := map[string]asset{}, map[string]string{}
	for _, f := range []struct{ file, ext, ctype string }{
		{"console.css", ".css", "text/css; charset=utf-8"},
		{"console.js", ".js", "text/javascript; charset=utf-8"},
		{"favicon.svg", ".svg", "image/svg+xml"},
	} {
		data, err := fs.ReadFile(files, "static/"+f.file)
		if err != nil {
			return nil, nil, fmt.Errorf("read asset %s: %w", f.file, err)
		}
		sum := sha256.Sum256(data)
		name := strings.TrimSuffix(f.file, f.ext) + "." + hex.EncodeToString(sum[:6]) + f.ext
		assets[name] = asset{data, f.ctype}
		urls[f.file] = "/console/static/" + name
	}
	return assets, urls, nil
}

func (c *Console) static(w http.ResponseWriter, r *http.Request, _ *session) {
	a, ok := c.assets[r.PathValue("name")]
	if !ok {
		c.notFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Content-Length", fmt.Sprint(len(a.data)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.data)
	}
}

// pageNames are the page templates; each is parsed with layout.html.
var pageNames = []string{"signin", "code", "setup", "dashboard", "devices", "energy", "update",
	"accounts", "audit", "tokens", "account", "totp", "message"}

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

var templateFuncs = template.FuncMap{
	"t": msg,
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, d *pageData) {
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, "layout", d); err != nil {
		c.log.Error("render console page", "page", page, "path", r.URL.Path, "err", err)
		http.Error(w, msg(d.Lang, "error.title"), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", d.Lang)
	h.Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, `{"error":"encode"}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

// apiError is the body of every refused API call.
type apiError struct {
	Error   string `json:"error"`   // code
	Message string `json:"message"` // in the request's language
}

// refuse answers a refusal: a JSON error for API calls and scripts, else
// a page with a title and a text from the catalogue.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, s *session, status int, code, titleKey, textKey string) {
	lang := c.lang(r)
	if wantsJSON(r) {
		writeJSON(w, status, apiError{Error: code, Message: msg(lang, titleKey) + " : " + msg(lang, textKey)})
		return
	}
	d := c.newPage(r, s, msg(lang, titleKey))
	d.Message = &messageView{Text: msg(lang, textKey)}
	if s == nil {
		d.Message.Link, d.Message.LinkText = "/console/connexion", msg(lang, "msg.signin")
	} else {
		d.Message.Link, d.Message.LinkText = homeOf(s), msg(lang, "msg.home")
	}
	c.render(w, r, status, "message", d)
}

func homeOf(s *session) string {
	if s != nil && s.Role == RoleEnseignant {
		return "/console/compte"
	}
	return "/console/"
}

// unauthenticated sends a browser's GET to the sign-in page (and back
// afterwards); everything else gets 401 or 403.
func (c *Console) unauthenticated(w http.ResponseWriter, r *http.Request) {
	if isAPI(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="preau"`)
		c.refuse(w, r, nil, http.StatusUnauthorized, "unauthenticated", "refused.auth.title", "refused.auth.text")
		return
	}
	if r.Method == http.MethodGet && r.URL.Path != "/console/ws" {
		q := url.Values{}
		if r.URL.Path != "/console/" {
			q.Set("suite", r.URL.Path)
		}
		http.Redirect(w, r, localURL("/console/connexion", q.Encode()), http.StatusSeeOther)
		return
	}
	status := http.StatusForbidden
	if r.URL.Path == "/console/ws" {
		status = http.StatusUnauthorized
	}
	c.refuse(w, r, nil, status, "unauthenticated", "refused.auth.title", "refused.session.text")
}

func (c *Console) forbidden(w http.ResponseWriter, r *http.Request, s *session) {
	if s.Role == RoleEnseignant && r.Method == http.MethodGet && r.URL.Path == "/console/" {
		http.Redirect(w, r, "/console/compte", http.StatusSeeOther)
		return
	}
	c.logRefusal(r, "role")
	c.audit(r.Context(), s.Login, ActionRefused, "accès refusé au rôle "+string(s.Role)+" : "+r.Method+" "+r.URL.Path, clientIP(r))
	c.refuse(w, r, s, http.StatusForbidden, "forbidden", "refused.role.title", "refused.role.text")
}

func (c *Console) csrfRefused(w http.ResponseWriter, r *http.Request, s *session) {
	c.logRefusal(r, "csrf")
	if s != nil {
		// Only with a session: strangers cannot fill the log this way.
		c.audit(r.Context(), s.Login, ActionRefused, "requête sans jeton CSRF valide ou d'un autre site : "+r.Method+" "+r.URL.Path, clientIP(r))
	}
	c.refuse(w, r, s, http.StatusForbidden, "csrf", "refused.csrf.title", "refused.csrf.text")
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.refuse(w, r, nil, http.StatusNotFound, "not-found", "notfound.title", "notfound.text")
}

// failed answers 500 after logging err: the decision to fail is made here.
func (c *Console) failed(w http.ResponseWriter, r *http.Request, err error) {
	c.log.Error("console request failed", "path", r.URL.Path, "err", err)
	c.refuse(w, r, nil, http.StatusInternalServerError, "internal", "error.title", "error.text")
}
