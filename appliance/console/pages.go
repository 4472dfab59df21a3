package console

import (
	"errors"
	"net/http"
	"strings"
)

// link is a navigation entry.
type link struct {
	URL, Label string
	Current    bool
}

// pageData is what every template receives; one of the view fields is set.
type pageData struct {
	Lang, SwitchLang, SwitchLabel, SwitchURL string
	School, Title, CSS, Icon, Script         string
	Home                                     string
	Nav                                      []link
	Who                                      *session
	CSRF                                     string
	Errors                                   []string
	Notice                                   string
	MinPassword                              int

	Message  *messageView
	SignIn   *signInView
	Setup    *setupView
	Dash     *dashView
	Devices  *devicesView
	Energy   *energyView
	Update   *updateView
	Accounts *accountsView
	Audit    *auditView
	Tokens   *tokensView
	Me       *meView
	TOTP     *totpView
}

// T returns the text of key in the page's language.
func (d *pageData) T(key string) string { return msg(d.Lang, key) }

// Tf formats the text of key with args.
func (d *pageData) Tf(key string, args ...any) string { return msgf(d.Lang, key, args...) }

// RoleLabel names a role in the page's language.
func (d *pageData) RoleLabel(r Role) string { return roleLabel(d.Lang, r) }

type messageView struct {
	Text, Link, LinkText string
}

// navEntries are the console's pages, with the access each needs.
var navEntries = []struct {
	url, key, access string
}{
	{"/console/", "nav.dashboard", AccessDirection},
	{"/console/appareils", "nav.devices", AccessDirection},
	{"/console/energie", "nav.energy", AccessDirection},
	{"/console/mise-a-jour", "nav.update", AccessTechnicien},
	{"/console/comptes", "nav.accounts", AccessTechnicien},
	{"/console/jetons", "nav.tokens", AccessTechnicien},
	{"/console/journal", "nav.audit", AccessTechnicien},
	{"/console/compte", "nav.me", AccessAccount},
}

// newPage starts a page; s is nil on public pages.
func (c *Console) newPage(r *http.Request, s *session, title string) *pageData {
	lang := c.lang(r)
	other := msg(lang, "lang.switch.code")
	q := r.URL.Query()
	q.Set(langParam, other)
	q.Del("ok")
	d := &pageData{
		Lang: lang, SwitchLang: other, SwitchLabel: msg(lang, "lang.switch"),
		SwitchURL: localURL(r.URL.Path, q.Encode()),
		School:    c.cfg.SchoolName, Title: title,
		CSS: c.urls["console.css"], Icon: c.urls["favicon.svg"],
		MinPassword: MinPasswordRunes,
		Home:        homeOf(s),
	}
	if s != nil && s.Token == nil {
		d.Who, d.CSRF = s, s.CSRF
		for _, e := range navEntries {
			if allowed(*s, e.access) {
				d.Nav = append(d.Nav, link{URL: e.url, Label: msg(lang, e.key), Current: r.URL.Path == e.url})
			}
		}
	}
	if k := r.URL.Query().Get("ok"); k != "" {
		if text, ok := catalogues[lang]["ok."+k]; ok {
			d.Notice = text
		}
	}
	return d
}

// userError returns the text of an *Error in lang, or "" when err is
// another kind (a failure the caller logs).
func userError(err error, lang string) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Text(lang)
	}
	return ""
}

// statusOf maps a refusal to its HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrLocked):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrBadCredentials), errors.Is(err, ErrBadCode):
		return http.StatusUnauthorized
	case errors.Is(err, ErrAccountExists), errors.Is(err, ErrLastTechnicien), errors.Is(err, ErrSetupDone):
		return http.StatusConflict
	case errors.Is(err, ErrNoAccount):
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

// nextPath keeps a return path only if it is a console page.
func nextPath(p string) string {
	if strings.HasPrefix(p, "/console/") && !strings.ContainsAny(p, "\\\r\n") && !strings.HasPrefix(p, "/console//") &&
		!strings.HasPrefix(p, "/console/connexion") && !strings.HasPrefix(p, "/console/installation") && p != "/console/ws" {
		return p
	}
	return ""
}

// redirectOK sends the browser to path with a notice key (Post/Redirect/Get).
func redirectOK(w http.ResponseWriter, r *http.Request, path, key string) {
	http.Redirect(w, r, localURL(path, "ok="+key), http.StatusSeeOther)
}
