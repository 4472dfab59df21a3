package captive

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/charter.html templates/charter.css
var files embed.FS

const (
	charterPath = "/charte"
	langCookie  = "preau_lang" // shared with the portal, so both speak the same language
	langParam   = "lang"
	tokenTTL    = 2 * time.Hour
	maxFormSize = 4 << 10
)

// pages holds the parsed charter template and its inline stylesheet; the
// page's Content-Security-Policy allows that stylesheet by hash and nothing
// else (no script at all), like the portal's.
type pages struct {
	tmpl       *template.Template
	css        template.CSS
	csp        string
	paragraphs map[string][]string
}

func parsePages(cfg Config) (*pages, error) {
	t, err := template.ParseFS(files, "templates/charter.html")
	if err != nil {
		return nil, fmt.Errorf("parse charter template: %w", err)
	}
	css, err := files.ReadFile("templates/charter.css")
	if err != nil {
		return nil, fmt.Errorf("read charter stylesheet: %w", err)
	}
	sum := sha256.Sum256(css)
	return &pages{
		tmpl: t,
		css:  template.CSS(css), // our own embedded file
		csp: "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
			"'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
		paragraphs: map[string][]string{
			"fr": splitParagraphs(cfg.Charter.Text),
			"en": splitParagraphs(cfg.Charter.TextEN),
		},
	}, nil
}

// splitParagraphs cuts plain text at blank lines and joins the lines of
// each paragraph with spaces.
func splitParagraphs(text string) []string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	var out []string
	for _, block := range strings.Split(text, "\n\n") {
		p := strings.Join(strings.Fields(block), " ")
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

type pageData struct {
	Lang, SwitchLang, SwitchLabel, SwitchURL string
	School, Title                            string
	CSS                                      template.CSS
	Paragraphs                               []string
	Token, Until                             string
	Done                                     bool
	Message, BackURL, BackLabel              string
}

func (d *pageData) T(key string) string               { return msg(d.Lang, key) }
func (d *pageData) Tf(key string, args ...any) string { return msgf(d.Lang, key, args...) }

// lang returns the visitor's language: the portal's cookie, else the default.
func (c *Captive) lang(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil && messages[ck.Value] != nil {
		return ck.Value
	}
	return c.cfg.DefaultLanguage
}

func (c *Captive) newPage(r *http.Request, titleKey string) *pageData {
	lang := c.lang(r)
	other := msg(lang, "charter.lang.code")
	return &pageData{
		Lang: lang, SwitchLang: other, SwitchLabel: msg(lang, "charter.lang"),
		SwitchURL: charterPath + "?" + langParam + "=" + other,
		School:    c.cfg.SchoolName, Title: msg(lang, titleKey), CSS: c.pages.css,
	}
}

func (c *Captive) render(w http.ResponseWriter, status int, d *pageData) {
	var buf bytes.Buffer
	if err := c.pages.tmpl.ExecuteTemplate(&buf, "charter.html", d); err != nil {
		c.log.Error("render charter page", "err", err)
		http.Error(w, msg(d.Lang, "error.text"), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", c.pages.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// formatDate writes t for people, in lang, in the configured time zone.
func (c *Captive) formatDate(lang string, t time.Time) string {
	t = t.In(c.cfg.Location)
	months := strings.Fields(msg(lang, "months"))
	return msgf(lang, "date.format", t.Day(), months[t.Month()-1], t.Hour(), t.Minute())
}

func (c *Captive) serveCharter(w http.ResponseWriter, r *http.Request) {
	if !c.cfg.Charter.Enabled {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		c.charterPage(w, r)
	case http.MethodPost:
		c.acceptCharter(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	}
}

// charterPage shows the charter and the accept form. ?lang=fr|en sets the
// language cookie and redirects to the clean address, like the portal.
func (c *Captive) charterPage(w http.ResponseWriter, r *http.Request) {
	if q := r.URL.Query(); q.Has(langParam) {
		if lang := q.Get(langParam); messages[lang] != nil {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
				HttpOnly: true, SameSite: http.SameSiteLaxMode})
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, charterPath, http.StatusSeeOther)
		return
	}
	ip, ok := remoteAddr(r)
	if !ok {
		http.Error(w, "bad remote address", http.StatusBadRequest)
		return
	}
	c.seen(r.Context(), ip)
	now := c.now()
	d := c.newPage(r, "charter.title")
	d.Paragraphs = c.pages.paragraphs[d.Lang]
	d.Until = c.formatDate(d.Lang, c.expiry(now))
	if dev, ok := c.Device(ip); ok && dev.Accepted {
		d.Done = true
		d.Until = c.formatDate(d.Lang, dev.ExpiresAt)
	}
	// With a fixed day end, accepting again changes nothing: no form.
	if !d.Done || c.cfg.AcceptFor > 0 {
		d.Token = c.token(ip, now)
		if d.Done {
			d.Until = c.formatDate(d.Lang, c.expiry(now))
		}
	}
	c.render(w, http.StatusOK, d)
}

// acceptCharter records the acceptance of the requesting device. The form
// must come from our own page: the browser's Sec-Fetch-Site / Origin say
// so (http.CrossOriginProtection), and its token is an HMAC bound to the
// device's address and to a two-hour window.
func (c *Captive) acceptCharter(w http.ResponseWriter, r *http.Request) {
	ip, ok := remoteAddr(r)
	if !ok {
		http.Error(w, "bad remote address", http.StatusBadRequest)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormSize)
	if err := c.cop.Check(r); err != nil {
		c.refuse(w, r, "cross-origin request")
		return
	}
	if err := r.ParseForm(); err != nil {
		c.refuse(w, r, "unreadable form")
		return
	}
	if !c.checkToken(r.PostForm.Get("t"), ip, c.now()) {
		c.refuse(w, r, "bad or expired token")
		return
	}
	if _, err := c.Accept(r.Context(), ip); err != nil {
		c.log.Error("record charter acceptance", "ip", ip, "err", err)
		d := c.newPage(r, "error.title")
		d.Message, d.BackURL, d.BackLabel = msg(d.Lang, "error.text"), charterPath, msg(d.Lang, "refused.back")
		c.render(w, http.StatusInternalServerError, d)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Captive) refuse(w http.ResponseWriter, r *http.Request, why string) {
	c.log.Info("charter acceptance refused", "remote", r.RemoteAddr, "reason", why)
	d := c.newPage(r, "refused.title")
	d.Message, d.BackURL, d.BackLabel = msg(d.Lang, "refused.text"), charterPath, msg(d.Lang, "refused.back")
	c.render(w, http.StatusForbidden, d)
}

// token is "expiry.mac": expiry in unix seconds, mac an HMAC-SHA256 of the
// device address and the expiry under a key drawn at start-up (a restart
// only costs a pupil one more tap).
func (c *Captive) token(ip netip.Addr, now time.Time) string {
	exp := strconv.FormatInt(now.Add(tokenTTL).Unix(), 10)
	return exp + "." + c.tokenMAC(ip, exp)
}

func (c *Captive) tokenMAC(ip netip.Addr, exp string) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte("preau charter\x00" + ip.String() + "\x00" + exp))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:20])
}

func (c *Captive) checkToken(tok string, ip netip.Addr, now time.Time) bool {
	exp, sig, ok := strings.Cut(tok, ".")
	if !ok || len(tok) > 64 {
		return false
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || now.Unix() > n || n > now.Add(tokenTTL).Unix() {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(c.tokenMAC(ip, exp)))
}
