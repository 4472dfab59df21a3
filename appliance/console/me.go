package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

type meView struct {
	Login, Name, Role string
	TOTP              bool
	TeacherOnly       bool
}

type totpView struct {
	SecretGrouped, URI, Issuer, Account string
}

func (c *Console) accountPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderAccount(w, r, http.StatusOK, s, "")
}

func (c *Console) renderAccount(w http.ResponseWriter, r *http.Request, status int, s *session, errText string) {
	lang := c.lang(r)
	d := c.newPage(r, s, msg(lang, "nav.me"))
	d.Me = &meView{Login: s.Login, Name: s.Name, Role: roleLabel(lang, s.Role), TOTP: s.TOTP, TeacherOnly: s.Role == RoleEnseignant}
	if errText != "" {
		d.Errors = []string{errText}
	}
	c.render(w, r, status, "account", d)
}

func (c *Console) ownPasswordPost(w http.ResponseWriter, r *http.Request, s *session) {
	lang := c.lang(r)
	f := r.PostForm
	if f.Get("motdepasse") != f.Get("confirmation") {
		c.renderAccount(w, r, http.StatusBadRequest, s, msg(lang, "account.mismatch"))
		return
	}
	ip := clientIP(r)
	// The current password is checked like a sign-in: a stolen session
	// cannot guess it without meeting the lock-out.
	if _, err := c.verifyPassword(r.Context(), s.Login, f.Get("actuel"), ip); err != nil {
		if text := userError(err, lang); text != "" {
			if errors.Is(err, ErrBadCredentials) {
				text = msg(lang, "me.password.wrong")
			}
			c.renderAccount(w, r, statusOf(err), s, text)
			return
		}
		c.failed(w, r, err)
		return
	}
	if err := c.setPassword(r.Context(), s.Login, ip, s.Login, f.Get("motdepasse")); err != nil {
		if text := userError(err, lang); text != "" {
			c.renderAccount(w, r, statusOf(err), s, text)
			return
		}
		c.failed(w, r, err)
		return
	}
	// Every session of the account ended with the change; this browser
	// gets a new one.
	if _, err := c.openSession(w, r, s.Account, stageFull); err != nil {
		c.failed(w, r, err)
		return
	}
	redirectOK(w, r, "/console/compte", "password")
}

func (c *Console) totpPage(w http.ResponseWriter, r *http.Request, s *session) {
	if s.TOTP {
		http.Redirect(w, r, "/console/compte", http.StatusSeeOther)
		return
	}
	enr, err := c.BeginTOTP(r.Context(), s.Login)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	c.renderTOTP(w, r, http.StatusOK, s, enr.Secret, "")
}

func (c *Console) renderTOTP(w http.ResponseWriter, r *http.Request, status int, s *session, secret, errText string) {
	d := c.newPage(r, s, msg(c.lang(r), "totp.title"))
	d.TOTP = &totpView{SecretGrouped: groupSecret(secret), URI: totpURI(c.cfg.TOTPIssuer, s.Login, secret), Issuer: c.cfg.TOTPIssuer, Account: s.Login}
	if errText != "" {
		d.Errors = []string{errText}
	}
	c.render(w, r, status, "totp", d)
}

func (c *Console) totpPost(w http.ResponseWriter, r *http.Request, s *session) {
	err := c.confirmTOTP(r.Context(), s.Login, clientIP(r), s.Login, r.PostForm.Get("code"))
	if err == nil {
		redirectOK(w, r, "/console/compte", "totp-on")
		return
	}
	text := userError(err, c.lang(r))
	if text == "" {
		c.failed(w, r, err)
		return
	}
	pending, perr := c.pendingSecret(r.Context(), s.Login)
	if perr != nil {
		c.failed(w, r, perr)
		return
	}
	if pending == "" {
		http.Redirect(w, r, "/console/compte/totp", http.StatusSeeOther)
		return
	}
	c.renderTOTP(w, r, statusOf(err), s, pending, text)
}

func (c *Console) totpRemovePost(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.disableTOTP(r.Context(), s.Login, clientIP(r), s.Login); err != nil {
		c.failed(w, r, err)
		return
	}
	redirectOK(w, r, "/console/compte", "totp-off")
}

func (c *Console) pendingSecret(ctx context.Context, login string) (string, error) {
	var p string
	err := c.db.QueryRowContext(ctx, "SELECT totp_pending FROM console_accounts WHERE login = ?", normLogin(login)).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read pending totp: %w", err)
	}
	return p, nil
}

// totpURI is the otpauth URI of Google's Key Uri Format, which
// authenticator apps read.
func totpURI(issuer, account, secret string) string {
	q := url.Values{}
	q.Set("secret", secret)
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", "6")
	q.Set("period", fmt.Sprint(totpPeriod))
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + account, RawQuery: q.Encode()}
	return u.String()
}

// groupSecret writes a base32 secret in groups of four, easier to type.
func groupSecret(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
