package console

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

type option struct{ Value, Label string }

// Devices page.

type devicesView struct {
	Available bool
	CanEdit   bool
	Summary   string
	Rows      []deviceRow
	Classes   []option
}

type deviceRow struct {
	ID                          int
	Name, MAC, IP, Vendor       string
	Class, ClassLabel, ClassHow string
	Randomised, Present         bool
	FirstSeen, LastSeen         string
}

func (c *Console) devicesPage(w http.ResponseWriter, r *http.Request, s *session) {
	lang := c.lang(r)
	d := c.newPage(r, s, msg(lang, "nav.devices"))
	v := &devicesView{Available: c.devices != nil, CanEdit: s.Role == RoleTechnicien}
	d.Devices = v
	if c.devices == nil {
		c.render(w, r, http.StatusOK, "devices", d)
		return
	}
	devs, err := c.devices.Devices(r.Context())
	if err != nil {
		c.failed(w, r, fmt.Errorf("list devices: %w", err))
		return
	}
	sortDevices(devs)
	present := 0
	now := c.now().In(c.cfg.Location)
	for i, dev := range devs {
		if dev.Present {
			present++
		}
		row := deviceRow{
			ID: i + 1, Name: dev.Name, MAC: dev.MAC, IP: dev.IP, Vendor: dev.Vendor,
			Class: dev.Class, ClassLabel: classLabel(lang, dev.Class),
			Randomised: dev.Randomised, Present: dev.Present,
			FirstSeen: formatDateTime(lang, dev.FirstSeen.In(c.cfg.Location), now),
			LastSeen:  formatDateTime(lang, dev.LastSeen.In(c.cfg.Location), now),
		}
		if row.Name == "" {
			row.Name = msg(lang, "devices.noname")
		}
		if row.Vendor == "" {
			row.Vendor = msg(lang, "devices.novendor")
		}
		row.ClassHow = msg(lang, "devices.class.guessed")
		if dev.ClassSet {
			row.ClassHow = msg(lang, "devices.class.set")
		}
		v.Rows = append(v.Rows, row)
	}
	v.Summary = msgf(lang, "devices.summary", len(devs), present)
	for _, cl := range Classes {
		v.Classes = append(v.Classes, option{cl, classLabel(lang, cl)})
	}
	c.render(w, r, http.StatusOK, "devices", d)
}

// sortDevices puts present devices first, then by name, then by MAC.
func sortDevices(devs []Device) {
	slices.SortStableFunc(devs, func(a, b Device) int {
		if a.Present != b.Present {
			if a.Present {
				return -1
			}
			return 1
		}
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.MAC, b.MAC)
	})
}

// normMAC returns a MAC-48 in lower case with colons; ok is false for
// anything else.
func normMAC(s string) (string, bool) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return "", false
	}
	return hw.String(), true
}

// setClass checks and records a class correction.
func (c *Console) setClass(ctx context.Context, s *session, ip, mac, class string) error {
	m, ok := normMAC(mac)
	if !ok {
		return invalid("bad-mac", fmt.Sprintf("Adresse MAC %q refusée.", mac), fmt.Sprintf("MAC address %q refused.", mac))
	}
	if !slices.Contains(Classes, class) {
		return invalid("bad-class", fmt.Sprintf("Classe %q inconnue.", class), fmt.Sprintf("Unknown class %q.", class))
	}
	if err := c.devices.SetClass(ctx, m, class, s.Login); err != nil {
		return fmt.Errorf("set class of %s: %w", m, err)
	}
	c.audit(ctx, s.Login, ActionDeviceClass, m+" → "+class, ip)
	c.hub.poke()
	return nil
}

func (c *Console) setClassPost(w http.ResponseWriter, r *http.Request, s *session) {
	if c.devices == nil {
		c.notFound(w, r)
		return
	}
	err := c.setClass(r.Context(), s, clientIP(r), r.PostForm.Get("mac"), r.PostForm.Get("classe"))
	if err != nil {
		if text := userError(err, c.lang(r)); text != "" {
			lang := c.lang(r)
			d := c.newPage(r, s, msg(lang, "nav.devices"))
			d.Message = &messageView{Text: text, Link: "/console/appareils", LinkText: msg(lang, "nav.devices")}
			c.render(w, r, http.StatusBadRequest, "message", d)
			return
		}
		c.failed(w, r, err)
		return
	}
	redirectOK(w, r, "/console/appareils", "class")
}

func (c *Console) exportCSV(w http.ResponseWriter, r *http.Request, s *session) {
	if c.devices == nil {
		c.notFound(w, r)
		return
	}
	c.export(w, r, s, "text/csv; charset=utf-8", "csv", c.devices.ExportCSV)
}

func (c *Console) exportGLPI(w http.ResponseWriter, r *http.Request, s *session) {
	if c.devices == nil {
		c.notFound(w, r)
		return
	}
	c.export(w, r, s, "application/zip", "zip", c.devices.ExportGLPI)
}

// export writes the whole file first, so that a failure is a clean 500
// and not half a download.
func (c *Console) export(w http.ResponseWriter, r *http.Request, s *session, ctype, ext string, f func(context.Context, io.Writer) error) {
	var b bytes.Buffer
	if err := f(r.Context(), &b); err != nil {
		c.failed(w, r, fmt.Errorf("export inventory as %s: %w", ext, err))
		return
	}
	name := "inventaire-preau-" + c.now().In(c.cfg.Location).Format("2006-01-02")
	if ext == "zip" {
		name += "-glpi"
	}
	c.audit(r.Context(), s.Login, ActionExport, "inventaire "+ext, clientIP(r))
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", `attachment; filename="`+name+"."+ext+`"`)
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}

// Update page.

type updateView struct {
	Available                           bool
	State, StateClass, Version, Offered string
	LastResult, LastAt, Rollback        string
}

func (c *Console) updatePage(w http.ResponseWriter, r *http.Request, s *session) {
	lang := c.lang(r)
	d := c.newPage(r, s, msg(lang, "nav.update"))
	d.Update = &updateView{Available: c.updates != nil}
	if c.updates != nil {
		u, err := c.updates.Status(r.Context())
		if err != nil {
			c.failed(w, r, fmt.Errorf("read update status: %w", err))
			return
		}
		st := u.State
		if st == "" {
			st = "unknown"
		}
		d.Update.State = labelOr(lang, "update."+st, st)
		d.Update.StateClass = map[string]string{"idle": "ok", "committed": "ok", "rolled_back": "bad", "failed": "bad"}[st]
		d.Update.Version, d.Update.Offered, d.Update.LastResult, d.Update.Rollback = u.Version, u.Available, u.LastResult, u.RollbackReason
		if !u.LastAt.IsZero() {
			d.Update.LastAt = formatDateTime(lang, u.LastAt.In(c.cfg.Location), c.now().In(c.cfg.Location))
		}
	}
	c.render(w, r, http.StatusOK, "update", d)
}

// Accounts page.

type accountsView struct {
	Rows  []accountRow
	Roles []option
	Form  struct{ Login, Name, Role string }
}

type accountRow struct {
	ID                           int64
	Login, Name, Role, RoleLabel string
	LastLogin                    string
	Disabled, TOTP               bool
}

func (c *Console) accountsPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderAccounts(w, r, http.StatusOK, s, nil, "")
}

func (c *Console) renderAccounts(w http.ResponseWriter, r *http.Request, status int, s *session, form *accountsView, errText string) {
	lang := c.lang(r)
	accounts, err := c.ListAccounts(r.Context())
	if err != nil {
		c.failed(w, r, err)
		return
	}
	d := c.newPage(r, s, msg(lang, "nav.accounts"))
	v := &accountsView{}
	if form != nil {
		v.Form = form.Form
	}
	if v.Form.Role == "" {
		v.Form.Role = string(RoleEnseignant)
	}
	now := c.now().In(c.cfg.Location)
	for _, a := range accounts {
		row := accountRow{ID: a.ID, Login: a.Login, Name: a.Name, Role: string(a.Role), RoleLabel: roleLabel(lang, a.Role),
			Disabled: a.Disabled, TOTP: a.TOTP, LastLogin: msg(lang, "accounts.never")}
		if !a.LastLogin.IsZero() {
			row.LastLogin = formatDateTime(lang, a.LastLogin.In(c.cfg.Location), now)
		}
		v.Rows = append(v.Rows, row)
	}
	for _, role := range Roles {
		v.Roles = append(v.Roles, option{string(role), roleLabel(lang, role)})
	}
	d.Accounts = v
	if errText != "" {
		d.Errors = []string{errText}
	}
	c.render(w, r, status, "accounts", d)
}

func (c *Console) accountsCreatePost(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	form := &accountsView{}
	form.Form.Login, form.Form.Name, form.Form.Role = strings.TrimSpace(f.Get("identifiant")), strings.TrimSpace(f.Get("nom")), f.Get("role")
	_, err := c.createAccount(r.Context(), s.Login, clientIP(r), form.Form.Login, form.Form.Name, Role(form.Form.Role), f.Get("motdepasse"))
	if err != nil {
		if text := userError(err, c.lang(r)); text != "" {
			c.renderAccounts(w, r, statusOf(err), s, form, text)
			return
		}
		c.failed(w, r, err)
		return
	}
	redirectOK(w, r, "/console/comptes", "account-created")
}

func (c *Console) accountsChangePost(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	login, ip, ctx := f.Get("identifiant"), clientIP(r), r.Context()
	var err error
	var ok string
	switch f.Get("action") {
	case "disable":
		err, ok = c.setDisabled(ctx, s.Login, ip, login, true), "account-disabled"
	case "enable":
		err, ok = c.setDisabled(ctx, s.Login, ip, login, false), "account-enabled"
	case "role":
		err, ok = c.setRole(ctx, s.Login, ip, login, Role(f.Get("role"))), "account-role"
	case "password":
		err, ok = c.setPassword(ctx, s.Login, ip, login, f.Get("motdepasse")), "account-password"
	default:
		err = invalid("bad-action", "Action inconnue.", "Unknown action.")
	}
	if err != nil {
		if text := userError(err, c.lang(r)); text != "" {
			c.renderAccounts(w, r, statusOf(err), s, nil, text)
			return
		}
		c.failed(w, r, err)
		return
	}
	if normLogin(login) == s.Login && f.Get("action") != "enable" {
		// The technician changed their own account: its sessions ended.
		http.Redirect(w, r, "/console/connexion", http.StatusSeeOther)
		return
	}
	redirectOK(w, r, "/console/comptes", ok)
}

// Audit page.

type auditView struct {
	Rows  []auditRow
	Older string
}

type auditRow struct{ At, Actor, Action, Detail, IP string }

const auditPageSize = 50

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *session) {
	lang := c.lang(r)
	before, _ := strconv.ParseInt(r.URL.Query().Get("avant"), 10, 64)
	entries, err := c.AuditLog(r.Context(), AuditQuery{Limit: auditPageSize, Before: before})
	if err != nil {
		c.failed(w, r, err)
		return
	}
	d := c.newPage(r, s, msg(lang, "nav.audit"))
	v := &auditView{}
	now := c.now().In(c.cfg.Location)
	for _, e := range entries {
		v.Rows = append(v.Rows, auditRow{At: formatDateTime(lang, e.At.In(c.cfg.Location), now), Actor: e.Actor,
			Action: labelOr(lang, "action."+e.Action, e.Action), Detail: e.Detail, IP: e.IP})
	}
	if len(entries) == auditPageSize {
		v.Older = localURL("/console/journal", "avant="+strconv.FormatInt(entries[len(entries)-1].ID, 10))
	}
	d.Audit = v
	c.render(w, r, http.StatusOK, "audit", d)
}

// Tokens page.

type tokensView struct {
	NewSecret string
	Rows      []tokenRow
}

type tokenRow struct {
	ID                                 int64
	Name, RoleLabel, By, Created, Used string
	Revoked                            bool
}

func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderTokens(w, r, http.StatusOK, s, "", "")
}

func (c *Console) renderTokens(w http.ResponseWriter, r *http.Request, status int, s *session, secret, errText string) {
	lang := c.lang(r)
	tokens, err := c.ListAPITokens(r.Context())
	if err != nil {
		c.failed(w, r, err)
		return
	}
	d := c.newPage(r, s, msg(lang, "nav.tokens"))
	v := &tokensView{NewSecret: secret}
	now := c.now().In(c.cfg.Location)
	for _, t := range tokens {
		row := tokenRow{ID: t.ID, Name: t.Name, RoleLabel: tokenRoleLabel(lang, t.Role), By: t.CreatedBy,
			Created: formatDateTime(lang, t.CreatedAt.In(c.cfg.Location), now), Used: msg(lang, "accounts.never"), Revoked: t.Revoked}
		if !t.UsedAt.IsZero() {
			row.Used = formatDateTime(lang, t.UsedAt.In(c.cfg.Location), now)
		}
		v.Rows = append(v.Rows, row)
	}
	d.Tokens = v
	if errText != "" {
		d.Errors = []string{errText}
	}
	c.render(w, r, status, "tokens", d)
}

func (c *Console) tokensCreatePost(w http.ResponseWriter, r *http.Request, s *session) {
	secret, _, err := c.createAPIToken(r.Context(), s.Login, clientIP(r), r.PostForm.Get("nom"), Role(r.PostForm.Get("role")))
	if err != nil {
		if text := userError(err, c.lang(r)); text != "" {
			c.renderTokens(w, r, statusOf(err), s, "", text)
			return
		}
		c.failed(w, r, err)
		return
	}
	// Shown once, in this answer (not stored, not in a URL).
	c.renderTokens(w, r, http.StatusOK, s, secret, "")
}

func (c *Console) tokensRevokePost(w http.ResponseWriter, r *http.Request, s *session) {
	id, _ := strconv.ParseInt(r.PostForm.Get("id"), 10, 64)
	if err := c.revokeAPIToken(r.Context(), s.Login, clientIP(r), id); err != nil {
		if text := userError(err, c.lang(r)); text != "" {
			c.renderTokens(w, r, http.StatusNotFound, s, "", text)
			return
		}
		c.failed(w, r, err)
		return
	}
	redirectOK(w, r, "/console/jetons", "token-revoked")
}

// Energy page.

type energyView struct {
	Available                   bool
	BoxWatts, BoxSource         string
	WeekTotal, PrevTotal, Trend string
	CO2, Factor                 string
	Chart                       template.HTML
	Legend                      []legendItem
	Columns                     []string
	Rows                        []energyRow
	Alerts                      []alertRow
}

type legendItem struct {
	Swatch template.HTML
	Label  string
}

type energyRow struct {
	Day         string
	Cells       []string
	Total, Prev string
}

type alertRow struct{ Name, Class, Period, KWh string }

func (c *Console) energyPage(w http.ResponseWriter, r *http.Request, s *session) {
	lang := c.lang(r)
	d := c.newPage(r, s, msg(lang, "nav.energy"))
	d.Energy = &energyView{}
	if c.energy != nil {
		ev, err := c.energy.Energy(r.Context())
		if err != nil {
			c.failed(w, r, fmt.Errorf("read energy: %w", err))
			return
		}
		d.Energy = c.energyViewOf(ev, lang)
	}
	c.render(w, r, http.StatusOK, "energy", d)
}

// energyClasses lists the classes present in the data: the box first,
// then the device classes in their usual order, then any other sorted.
func energyClasses(days ...[]EnergyDay) []string {
	seen := map[string]bool{}
	for _, ds := range days {
		for _, d := range ds {
			for k := range d.ByClass {
				seen[k] = true
			}
		}
	}
	var out []string
	for _, k := range append([]string{ClassBox}, Classes...) {
		if seen[k] {
			out = append(out, k)
			delete(seen, k)
		}
	}
	var rest []string
	for k := range seen {
		rest = append(rest, k)
	}
	slices.Sort(rest)
	return append(out, rest...)
}

func (c *Console) energyViewOf(ev EnergyView, lang string) *energyView {
	v := &energyView{Available: true}
	v.BoxWatts = formatNumber(lang, ev.BoxWatts, 1) + "\u00a0W"
	switch ev.BoxSource {
	case PowerRAPL:
		v.BoxSource = msg(lang, "energy.source.rapl")
	case PowerBattery:
		v.BoxSource = msg(lang, "energy.source.battery")
	case "":
		// No sample yet (a box just started): no figure, not an estimate.
		v.BoxSource = msg(lang, "energy.nodata")
		v.BoxWatts = "—"
	default:
		v.BoxSource = msg(lang, "energy.source.estimate")
		if ev.BoxModel != "" {
			v.BoxSource = msgf(lang, "energy.source.estimate.model", ev.BoxModel)
		}
	}
	classes := energyClasses(ev.Week, ev.PreviousWeek)
	prevByDate := map[string]EnergyDay{}
	var prevTotal float64
	prevKnown := false
	for _, d := range ev.PreviousWeek {
		prevByDate[d.Date.In(c.cfg.Location).Format(time.DateOnly)] = d
		if !d.NoData {
			prevTotal += d.Total()
			prevKnown = true
		}
	}
	var weekTotal float64
	ch := barChart{Title: msg(lang, "energy.chart"), Desc: msg(lang, "energy.chart.desc"), Classes: classes, Unit: "kWh", Lang: lang}
	for _, day := range ev.Week {
		date := day.Date.In(c.cfg.Location)
		prev, hasPrev := prevByDate[date.AddDate(0, 0, -7).Format(time.DateOnly)]
		bar := chartBar{Label: shortDay(lang, date), NoData: day.NoData, PrevNone: !hasPrev || prev.NoData}
		row := energyRow{Day: longDay(lang, date)}
		for _, cl := range classes {
			val := day.ByClass[cl]
			bar.Segments = append(bar.Segments, val)
			if day.NoData {
				row.Cells = append(row.Cells, "—")
			} else {
				row.Cells = append(row.Cells, formatNumber(lang, val, 2))
			}
		}
		if day.NoData {
			row.Total = msg(lang, "energy.nodata")
		} else {
			weekTotal += day.Total()
			row.Total = formatNumber(lang, day.Total(), 2)
		}
		if bar.PrevNone {
			row.Prev = msg(lang, "energy.nodata")
		} else {
			bar.Previous = prev.Total()
			row.Prev = formatNumber(lang, prev.Total(), 2)
		}
		ch.Bars = append(ch.Bars, bar)
		v.Rows = append(v.Rows, row)
	}
	for _, cl := range classes {
		label := energyClassLabel(lang, cl)
		v.Columns = append(v.Columns, label)
		v.Legend = append(v.Legend, legendItem{Swatch: swatch(colourOf(cl), false), Label: label})
	}
	v.Legend = append(v.Legend, legendItem{Swatch: swatch("", true), Label: msg(lang, "energy.legend.prev")})
	v.Chart = ch.svg()
	v.WeekTotal = formatKWh(lang, weekTotal)
	if prevKnown {
		v.PrevTotal = msgf(lang, "energy.prev.total", formatKWh(lang, prevTotal))
		if prevTotal > 0 {
			v.Trend = msgf(lang, "energy.trend", formatPercent(lang, 100*(weekTotal-prevTotal)/prevTotal))
		}
	}
	v.CO2 = formatNumber(lang, ev.WeekCO2eKg, 2) + "\u00a0kg CO₂e"
	factorDate := ""
	switch fd := ev.FactorDate; {
	case fd.IsZero():
	case fd.Month() == time.January && fd.Day() == 1:
		factorDate = strconv.Itoa(fd.Year()) // a yearly factor: its year, not 1 January
	default:
		factorDate = formatDate(lang, fd.In(c.cfg.Location))
	}
	v.Factor = msgf(lang, "energy.factor", formatNumber(lang, ev.CO2eKgPerKWh, 3), ev.FactorSource, factorDate)
	now := c.now().In(c.cfg.Location)
	for _, a := range ev.Alerts {
		name := a.Name
		if name == "" {
			name = a.MAC
		}
		row := alertRow{Name: name, Class: classLabel(lang, a.Class),
			Period: msgf(lang, "energy.alert.period", formatDateTime(lang, a.From.In(c.cfg.Location), now), formatDateTime(lang, a.To.In(c.cfg.Location), now))}
		if a.KWh > 0 {
			row.KWh = msgf(lang, "energy.alert.kwh", formatKWh(lang, a.KWh))
		}
		v.Alerts = append(v.Alerts, row)
	}
	return v
}
