package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

type signInView struct {
	Login, Next string
	SetupNeeded bool
}

type setupView struct {
	Login, Name string
}

// afterSignIn is where a freshly signed-in account goes.
func afterSignIn(a Account, next string) string {
	if a.Role == RoleEnseignant {
		return "/console/compte"
	}
	if n := nextPath(next); n != "" {
		return n
	}
	return "/console/"
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request, _ *session) {
	if s, ok, err := c.requestSession(r); err == nil && ok {
		http.Redirect(w, r, afterSignIn(s.Account, r.URL.Query().Get("suite")), http.StatusSeeOther)
		return
	}
	c.renderSignIn(w, r, http.StatusOK, &signInView{Next: nextPath(r.URL.Query().Get("suite"))}, "")
}

func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, v *signInView, errText string) {
	d := c.newPage(r, nil, msg(c.lang(r), "signin.title"))
	need, err := c.SetupNeeded(r.Context())
	if err != nil {
		c.failed(w, r, err)
		return
	}
	v.SetupNeeded = need
	d.SignIn = v
	d.CSRF = c.preCSRF(w, r)
	if errText != "" {
		d.Errors = []string{errText}
	}
	c.render(w, r, status, "signin", d)
}

func (c *Console) signInPost(w http.ResponseWriter, r *http.Request, _ *session) {
	login := strings.TrimSpace(r.PostForm.Get("identifiant"))
	if len(login) > 64 {
		login = login[:64]
	}
	v := &signInView{Login: login, Next: nextPath(r.PostForm.Get("suite"))}
	ip := clientIP(r)
	a, err := c.verifyPassword(r.Context(), login, r.PostForm.Get("motdepasse"), ip)
	if err != nil {
		text := userError(err, c.lang(r))
		if text == "" {
			c.failed(w, r, err)
			return
		}
		c.renderSignIn(w, r, statusOf(err), v, text)
		return
	}
	if a.TOTP {
		if _, err := c.openSession(w, r, a, stageTOTP); err != nil {
			c.failed(w, r, err)
			return
		}
		q := url.Values{}
		if v.Next != "" {
			q.Set("suite", v.Next)
		}
		http.Redirect(w, r, localURL("/console/connexion/code", q.Encode()), http.StatusSeeOther)
		return
	}
	if _, err := c.openSession(w, r, a, stageFull); err != nil {
		c.failed(w, r, err)
		return
	}
	c.signedIn(r.Context(), a, ip, "console")
	http.Redirect(w, r, afterSignIn(a, v.Next), http.StatusSeeOther)
}

// pendingSession returns the request's session waiting for its TOTP code.
func (c *Console) pendingSession(r *http.Request) (session, bool, error) {
	s, ok, err := c.lookupSession(r.Context(), r)
	if err != nil || !ok || s.Stage != stageTOTP {
		return session{}, false, err
	}
	return s, true, nil
}

func (c *Console) codePage(w http.ResponseWriter, r *http.Request, _ *session) {
	ps, ok, err := c.pendingSession(r)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	if !ok {
		http.Redirect(w, r, "/console/connexion", http.StatusSeeOther)
		return
	}
	c.renderCode(w, r, http.StatusOK, ps, nextPath(r.URL.Query().Get("suite")), "")
}

func (c *Console) renderCode(w http.ResponseWriter, r *http.Request, status int, ps session, next, errText string) {
	d := c.newPage(r, nil, msg(c.lang(r), "code.title"))
	d.CSRF = ps.CSRF
	d.SignIn = &signInView{Next: next}
	if errText != "" {
		d.Errors = []string{errText}
	}
	c.render(w, r, status, "code", d)
}

func (c *Console) codePost(w http.ResponseWriter, r *http.Request, _ *session) {
	ps, ok, err := c.pendingSession(r)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	if !ok {
		c.renderSignIn(w, r, http.StatusUnauthorized, &signInView{}, msg(c.lang(r), "code.expired"))
		return
	}
	next := nextPath(r.PostForm.Get("suite"))
	ip := clientIP(r)
	err = c.VerifyTOTP(r.Context(), ps.Login, r.PostForm.Get("code"), ip)
	if errors.Is(err, ErrLocked) {
		// Back to the start: the lock message, and the password again
		// after it.
		if err := c.endSession(w, r); err != nil {
			c.failed(w, r, err)
			return
		}
		c.renderSignIn(w, r, statusOf(err), &signInView{Login: ps.Login, Next: next}, userError(err, c.lang(r)))
		return
	}
	if err != nil {
		if text := userError(err, c.lang(r)); text != "" {
			c.renderCode(w, r, statusOf(err), ps, next, text)
			return
		}
		c.failed(w, r, err)
		return
	}
	if _, err := c.openSession(w, r, ps.Account, stageFull); err != nil {
		c.failed(w, r, err)
		return
	}
	c.signedIn(r.Context(), ps.Account, ip, "console (mot de passe et code TOTP)")
	http.Redirect(w, r, afterSignIn(ps.Account, next), http.StatusSeeOther)
}

func (c *Console) setupPage(w http.ResponseWriter, r *http.Request, _ *session) {
	need, err := c.SetupNeeded(r.Context())
	if err != nil {
		c.failed(w, r, err)
		return
	}
	if !need {
		c.setupOver(w, r)
		return
	}
	c.renderSetup(w, r, http.StatusOK, &setupView{}, "")
}

func (c *Console) setupOver(w http.ResponseWriter, r *http.Request) {
	lang := c.lang(r)
	d := c.newPage(r, nil, msg(lang, "setup.title"))
	d.Message = &messageView{Text: setupDone().Text(lang), Link: "/console/connexion", LinkText: msg(lang, "msg.signin")}
	c.render(w, r, http.StatusConflict, "message", d)
}

func (c *Console) renderSetup(w http.ResponseWriter, r *http.Request, status int, v *setupView, errText string) {
	d := c.newPage(r, nil, msg(c.lang(r), "setup.title"))
	d.Setup = v
	d.CSRF = c.preCSRF(w, r)
	if errText != "" {
		d.Errors = []string{errText}
	}
	c.render(w, r, status, "setup", d)
}

func (c *Console) setupPost(w http.ResponseWriter, r *http.Request, _ *session) {
	lang := c.lang(r)
	f := r.PostForm
	v := &setupView{Login: strings.TrimSpace(f.Get("identifiant")), Name: strings.TrimSpace(f.Get("nom"))}
	if f.Get("motdepasse") != f.Get("confirmation") {
		c.renderSetup(w, r, http.StatusBadRequest, v, msg(lang, "account.mismatch"))
		return
	}
	a, err := c.install(r.Context(), f.Get("code"), v.Login, v.Name, f.Get("motdepasse"), clientIP(r))
	if errors.Is(err, ErrSetupDone) {
		c.setupOver(w, r)
		return
	}
	if err != nil {
		if text := userError(err, lang); text != "" {
			c.renderSetup(w, r, statusOf(err), v, text)
			return
		}
		c.failed(w, r, err)
		return
	}
	if _, err := c.openSession(w, r, a, stageFull); err != nil {
		c.failed(w, r, err)
		return
	}
	c.signedIn(r.Context(), a, clientIP(r), "console (installation)")
	redirectOK(w, r, "/console/", "setup")
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.endSession(w, r); err != nil {
		c.failed(w, r, err)
		return
	}
	c.audit(r.Context(), s.Login, ActionSignOut, "", clientIP(r))
	redirectOK(w, r, "/console/connexion", "signed-out")
}

func (c *Console) rootRedirect(w http.ResponseWriter, r *http.Request, _ *session) {
	http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
}
