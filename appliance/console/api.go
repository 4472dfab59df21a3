package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// routeTable is every route of the console, the one list the handler is
// built from (and that Routes returns for the tests).
func (c *Console) routeTable() []route {
	return []route{
		{Route{http.MethodGet, "/console/static/{name}", AccessPublic}, c.static},
		{Route{http.MethodGet, "/console", AccessPublic}, c.rootRedirect},
		{Route{http.MethodGet, "/console/connexion", AccessPublic}, c.signInPage},
		{Route{http.MethodPost, "/console/connexion", AccessPublic}, c.signInPost},
		{Route{http.MethodGet, "/console/connexion/code", AccessPublic}, c.codePage},
		{Route{http.MethodPost, "/console/connexion/code", AccessPublic}, c.codePost},
		{Route{http.MethodGet, "/console/installation", AccessPublic}, c.setupPage},
		{Route{http.MethodPost, "/console/installation", AccessPublic}, c.setupPost},

		{Route{http.MethodPost, "/console/deconnexion", AccessAccount}, c.signOut},
		{Route{http.MethodGet, "/console/compte", AccessAccount}, c.accountPage},
		{Route{http.MethodPost, "/console/compte/mot-de-passe", AccessAccount}, c.ownPasswordPost},
		{Route{http.MethodGet, "/console/compte/totp", AccessAccount}, c.totpPage},
		{Route{http.MethodPost, "/console/compte/totp", AccessAccount}, c.totpPost},
		{Route{http.MethodPost, "/console/compte/totp/retirer", AccessAccount}, c.totpRemovePost},

		{Route{http.MethodGet, "/console/{$}", AccessDirection}, c.dashboard},
		{Route{http.MethodGet, "/console/ws", AccessDirection}, c.websocket},
		{Route{http.MethodGet, "/console/appareils", AccessDirection}, c.devicesPage},
		{Route{http.MethodGet, "/console/appareils/inventaire.csv", AccessDirection}, c.exportCSV},
		{Route{http.MethodGet, "/console/appareils/inventaire-glpi.zip", AccessDirection}, c.exportGLPI},
		{Route{http.MethodPost, "/console/appareils/classe", AccessTechnicien}, c.setClassPost},
		{Route{http.MethodGet, "/console/energie", AccessDirection}, c.energyPage},
		{Route{http.MethodGet, "/console/mise-a-jour", AccessTechnicien}, c.updatePage},
		{Route{http.MethodGet, "/console/comptes", AccessTechnicien}, c.accountsPage},
		{Route{http.MethodPost, "/console/comptes", AccessTechnicien}, c.accountsCreatePost},
		{Route{http.MethodPost, "/console/comptes/modifier", AccessTechnicien}, c.accountsChangePost},
		{Route{http.MethodGet, "/console/journal", AccessTechnicien}, c.auditPage},
		{Route{http.MethodGet, "/console/jetons", AccessTechnicien}, c.tokensPage},
		{Route{http.MethodPost, "/console/jetons", AccessTechnicien}, c.tokensCreatePost},
		{Route{http.MethodPost, "/console/jetons/revoquer", AccessTechnicien}, c.tokensRevokePost},

		{Route{http.MethodGet, "/api/v1/status", AccessDirection}, c.apiStatus},
		{Route{http.MethodGet, "/api/v1/devices", AccessDirection}, c.apiDevices},
		{Route{http.MethodPut, "/api/v1/devices/{mac}/class", AccessTechnicien}, c.apiSetClass},
		{Route{http.MethodGet, "/api/v1/energy", AccessDirection}, c.apiEnergy},
		{Route{http.MethodGet, "/api/v1/update", AccessTechnicien}, c.apiUpdate},
		{Route{http.MethodGet, "/api/v1/audit", AccessTechnicien}, c.apiAudit},
	}
}

// apiStatus answers the snapshot; with ?view=1, the dashboard's text view
// in the caller's language (the dashboard script's fallback when its
// socket keeps failing).
func (c *Console) apiStatus(w http.ResponseWriter, r *http.Request, s *session) {
	res := c.hub.current(r.Context())
	if r.URL.Query().Get("view") == "1" {
		writeJSON(w, http.StatusOK, liveMessage{Type: "snapshot", View: c.liveView(res, c.lang(r))})
		return
	}
	if res.err != nil {
		c.apiFailed(w, r, fmt.Errorf("read snapshot: %w", res.err))
		return
	}
	writeJSON(w, http.StatusOK, res.snap)
}

func (c *Console) apiUnavailable(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, apiError{Error: "unavailable", Message: msg(c.lang(r), "api.unavailable")})
}

func (c *Console) apiFailed(w http.ResponseWriter, r *http.Request, err error) {
	c.log.Error("console api request failed", "path", r.URL.Path, "err", err)
	writeJSON(w, http.StatusInternalServerError, apiError{Error: "internal", Message: msg(c.lang(r), "error.text")})
}

func (c *Console) apiDevices(w http.ResponseWriter, r *http.Request, s *session) {
	if c.devices == nil {
		c.apiUnavailable(w, r)
		return
	}
	devs, err := c.devices.Devices(r.Context())
	if err != nil {
		c.apiFailed(w, r, fmt.Errorf("list devices: %w", err))
		return
	}
	if devs == nil {
		devs = []Device{}
	}
	sortDevices(devs)
	writeJSON(w, http.StatusOK, struct {
		Devices []Device `json:"devices"`
	}{devs})
}

func (c *Console) apiSetClass(w http.ResponseWriter, r *http.Request, s *session) {
	if c.devices == nil {
		c.apiUnavailable(w, r)
		return
	}
	var body struct {
		Class string `json:"class"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "bad-request", Message: msg(c.lang(r), "api.badjson")})
		return
	}
	if err := c.setClass(r.Context(), s, clientIP(r), r.PathValue("mac"), body.Class); err != nil {
		var e *Error
		if errors.As(err, &e) {
			writeJSON(w, http.StatusBadRequest, apiError{Error: e.Code, Message: e.Text(c.lang(r))})
			return
		}
		c.apiFailed(w, r, err)
		return
	}
	m, _ := normMAC(r.PathValue("mac"))
	writeJSON(w, http.StatusOK, struct {
		MAC   string `json:"mac"`
		Class string `json:"class"`
	}{m, body.Class})
}

func (c *Console) apiEnergy(w http.ResponseWriter, r *http.Request, s *session) {
	if c.energy == nil {
		c.apiUnavailable(w, r)
		return
	}
	ev, err := c.energy.Energy(r.Context())
	if err != nil {
		c.apiFailed(w, r, fmt.Errorf("read energy: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, ev)
}

func (c *Console) apiUpdate(w http.ResponseWriter, r *http.Request, s *session) {
	if c.updates == nil {
		c.apiUnavailable(w, r)
		return
	}
	u, err := c.updates.Status(r.Context())
	if err != nil {
		c.apiFailed(w, r, fmt.Errorf("read update status: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (c *Console) apiAudit(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	before, _ := strconv.ParseInt(strings.TrimSpace(q.Get("before")), 10, 64)
	entries, err := c.AuditLog(r.Context(), AuditQuery{Limit: limit, Before: before})
	if err != nil {
		c.apiFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Entries []AuditEntry `json:"entries"`
	}{entries})
}
