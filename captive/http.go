package captive

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Handler returns captive's HTTP handler, to mount at "/" in front of the
// portal (next) on the LAN listeners, HTTP and HTTPS alike:
//
//   - a request whose Host is a probe host (probes.json) gets, from a device
//     that accepted the charter, the exact answer of the matching row, and a
//     redirect to the portal home for any other path; from any other device,
//     a 302 to the charter page (PortalURL + "charte");
//   - /charte is the charter page and its accept form;
//   - Config.APIPath is the RFC 8908 Captive Portal API;
//   - everything else goes to next.
func (c *Captive) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.table.IsProbeHost(r.Host) {
			c.serveProbe(w, r)
			return
		}
		switch r.URL.Path {
		case c.cfg.APIPath:
			c.serveAPI(w, r)
		case charterPath:
			c.serveCharter(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// CharterURL is where probes of devices that have not accepted are sent.
func (c *Captive) CharterURL() string {
	return strings.TrimSuffix(c.cfg.PortalURL, "/") + charterPath
}

// APIURL is the RFC 8908 API URI to announce with DHCP option 114 (and
// DHCPv6 option 103, RA option 37), per RFC 8910. It uses HTTPSURL when set;
// otherwise it is a plain http URI, which RFC 8908 clients (Android 11+,
// iOS 14+) ignore: announce it only when HTTPS() is true.
func (c *Captive) APIURL() string {
	return strings.TrimSuffix(c.portalBase(), "/") + c.cfg.APIPath
}

// HTTPS reports whether a certificate is configured, so the API URI is
// https and worth announcing.
func (c *Captive) HTTPS() bool { return c.cfg.HTTPSURL != "" }

func (c *Captive) portalBase() string {
	if c.cfg.HTTPSURL != "" {
		return c.cfg.HTTPSURL
	}
	return c.cfg.PortalURL
}

func (c *Captive) serveProbe(w http.ResponseWriter, r *http.Request) {
	ip, ok := remoteAddr(r)
	if !ok {
		http.Error(w, "bad remote address", http.StatusBadRequest)
		return
	}
	c.seen(r.Context(), ip)
	accepted := c.Accepted(ip)
	p, matched := c.table.Match(r.Host, r.URL.Path)
	c.log.Debug("connectivity probe", "host", r.Host, "path", r.URL.Path, "probe", p.ID, "ip", ip, "accepted", accepted)
	switch {
	case matched && accepted:
		h := w.Header()
		for k, v := range p.Headers {
			h.Set(k, v)
		}
		h.Set("Cache-Control", "no-store")
		if p.Status != http.StatusNoContent {
			h.Set("Content-Length", strconv.Itoa(len(p.Body)))
		}
		w.WriteHeader(p.Status)
		if r.Method != http.MethodHead {
			io.WriteString(w, p.Body)
		}
	case accepted:
		// e.g. Windows opens www.msftconnecttest.com/redirect in the
		// browser: land on the portal.
		c.redirect(w, r, c.cfg.PortalURL)
	default:
		c.redirect(w, r, c.CharterURL())
	}
}

// redirect answers 302 with a small page for clients that show the body.
func (c *Captive) redirect(w http.ResponseWriter, r *http.Request, target string) {
	lang := c.lang(r)
	h := w.Header()
	h.Set("Location", target)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	// In gateway mode this connection may be one the firewall redirected
	// from a foreign address: once the device is accepted, its next
	// request must open a new connection that goes out for real.
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusFound)
	if r.Method == http.MethodHead {
		return
	}
	t := html.EscapeString(target)
	io.WriteString(w, `<!DOCTYPE html><html lang="`+lang+`"><meta charset="utf-8"><title>`+
		html.EscapeString(c.cfg.SchoolName)+`</title><p>`+html.EscapeString(msg(lang, "redirect.text"))+
		` <a href="`+t+`">`+t+"</a></p></html>\n")
}

// apiState is the RFC 8908 §5 API JSON.
type apiState struct {
	Captive          bool   `json:"captive"`
	UserPortalURL    string `json:"user-portal-url,omitempty"`
	VenueInfoURL     string `json:"venue-info-url,omitempty"`
	SecondsRemaining *int64 `json:"seconds-remaining,omitempty"`
	CanExtendSession *bool  `json:"can-extend-session,omitempty"`
}

// serveAPI answers the RFC 8908 API for the requesting device.
func (c *Captive) serveAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	ip, ok := remoteAddr(r)
	if !ok {
		http.Error(w, "bad remote address", http.StatusBadRequest)
		return
	}
	c.seen(r.Context(), ip)
	st := apiState{
		Captive:       !c.Accepted(ip),
		UserPortalURL: strings.TrimSuffix(c.portalBase(), "/") + charterPath,
		VenueInfoURL:  c.cfg.VenueInfoURL,
	}
	if c.cfg.Charter.Enabled {
		// Accepting again extends the session only with a fixed duration;
		// a day-end acceptance cannot go past the day's end.
		ext := c.cfg.AcceptFor > 0
		st.CanExtendSession = &ext
		if dev, ok := c.Device(ip); ok && dev.Accepted && !st.Captive {
			secs := int64(dev.ExpiresAt.Sub(c.now()) / time.Second)
			st.SecondsRemaining = &secs
		}
	}
	body, _ := json.Marshal(st)
	h := w.Header()
	h.Set("Content-Type", "application/captive+json")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
