package console

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
)

// liveView is the dashboard's content as text in one language: the page
// renders it, and the script swaps it in when a new one arrives. Text
// fills elements by key, Lists fills lists, State sets a block's state
// (ok, warn, bad) for its colour and icon.
type liveView struct {
	Text  map[string]string   `json:"text"`
	Lists map[string][]string `json:"lists"`
	State map[string]string   `json:"state"`
}

// T returns the text of key (templates call it).
func (v liveView) T(key string) string { return v.Text[key] }

// L returns the list of key.
func (v liveView) L(key string) []string { return v.Lists[key] }

// S returns the state of key.
func (v liveView) S(key string) string { return v.State[key] }

// maxDashDevices and maxDashErrors bound the dashboard's lists.
const (
	maxDashDevices = 10
	maxDashErrors  = 8
)

func (c *Console) liveView(res snapshotResult, lang string) liveView {
	v := liveView{Text: map[string]string{}, Lists: map[string][]string{}, State: map[string]string{}}
	t := func(key string) string { return msg(lang, key) }
	s := res.snap
	now := s.TakenAt.In(c.cfg.Location)
	v.Text["taken"] = msgf(lang, "dash.taken", formatClockSeconds(lang, now))
	v.Text["problem"] = ""
	if res.err != nil {
		v.Text["problem"] = t("dash.problem")
		v.State["page"] = "bad"
	}

	// Uplink.
	st := s.Uplink.State
	if st == "" {
		st = UplinkUnknown
	}
	v.Text["uplink.state"] = labelOr(lang, "uplink."+st, st)
	v.State["uplink"] = map[string]string{UplinkOnline: "ok", UplinkDegraded: "warn", UplinkOffline: "bad"}[st]
	v.Text["uplink.rate"] = msgf(lang, "dash.rate", formatRate(lang, s.Uplink.DownBitsPerSec), formatRate(lang, s.Uplink.UpBitsPerSec))
	v.Text["uplink.since"] = ""
	if !s.Uplink.Since.IsZero() {
		v.Text["uplink.since"] = msgf(lang, "dash.since", formatWhen(lang, s.Uplink.Since.In(c.cfg.Location), now))
	}

	// Sync queue.
	v.Text["sync.items"] = plural(lang, s.Sync.Items, "dash.sync.none", "dash.sync.one", "dash.sync.many")
	v.Text["sync.bytes"] = ""
	if s.Sync.Items > 0 || s.Sync.Bytes > 0 {
		v.Text["sync.bytes"] = msgf(lang, "dash.sync.bytes", formatSize(lang, s.Sync.Bytes))
	}
	v.State["sync"] = "ok"
	if s.Sync.Items > 0 {
		v.State["sync"] = "warn"
	}

	// Storage.
	v.Text["cache.use"] = usage(lang, s.Storage.CacheBytes, s.Storage.CacheLimitBytes)
	v.Text["store.use"] = usage(lang, s.Storage.StoreBytes, s.Storage.DiskBytes)
	v.State["storage"] = "ok"
	if s.Storage.DiskBytes > 0 && float64(s.Storage.StoreBytes) > 0.9*float64(s.Storage.DiskBytes) {
		v.State["storage"] = "warn"
	}

	// Devices.
	v.Text["devices.count"] = plural(lang, s.Devices.Present, "dash.devices.none", "dash.devices.one", "dash.devices.many")
	v.Text["devices.known"] = ""
	if s.Devices.Known > 0 {
		v.Text["devices.known"] = msgf(lang, "dash.devices.known", s.Devices.Known)
	}
	devs := []string{}
	for i, d := range s.Devices.Recent {
		if i == maxDashDevices {
			break
		}
		name := d.Name
		if name == "" {
			name = d.MAC
		}
		parts := []string{name}
		if d.IP != "" {
			parts = append(parts, d.IP)
		}
		parts = append(parts, classLabel(lang, d.Class))
		devs = append(devs, strings.Join(parts, " · "))
	}
	v.Lists["devices"] = devs

	// Energy.
	v.Text["energy.today"] = formatKWh(lang, s.Energy.TodayKWh)
	v.Text["energy.lastweek"] = msgf(lang, "dash.energy.lastweek", weekdayName(lang, now.Weekday()), formatKWh(lang, s.Energy.LastWeekSameDay))
	v.Text["energy.trend"] = ""
	v.State["energy"] = "ok"
	if s.Energy.LastWeekSameDay > 0 {
		pct := 100 * (s.Energy.TodayKWh - s.Energy.LastWeekSameDay) / s.Energy.LastWeekSameDay
		v.Text["energy.trend"] = msgf(lang, "dash.energy.trend", formatPercent(lang, pct))
		if pct > 10 {
			v.State["energy"] = "warn"
		}
	}
	v.Text["energy.watts"] = ""
	if s.Energy.BoxWatts > 0 {
		v.Text["energy.watts"] = msgf(lang, "dash.energy.watts", formatNumber(lang, s.Energy.BoxWatts, 1))
	}

	// Update.
	ust := s.Update.State
	if ust == "" {
		ust = "unknown"
	}
	v.Text["update.state"] = labelOr(lang, "update."+ust, ust)
	v.Text["update.version"] = ""
	if s.Update.Version != "" {
		v.Text["update.version"] = msgf(lang, "dash.update.version", s.Update.Version)
	}
	v.State["update"] = map[string]string{"idle": "ok", "committed": "ok", "rolled_back": "bad", "failed": "bad",
		"downloading": "warn", "verified": "warn", "written": "warn", "trying": "warn"}[ust]

	// Recent errors.
	errs := []string{}
	for i, e := range s.Errors {
		if i == maxDashErrors {
			break
		}
		line := formatWhen(lang, e.At.In(c.cfg.Location), now) + " — "
		if e.Component != "" {
			line += e.Component + " : "
			if lang == "en" {
				line = strings.TrimSuffix(line, " : ") + ": "
			}
		}
		errs = append(errs, line+e.Message)
	}
	v.Lists["errors"] = errs
	v.State["errors"] = "ok"
	if len(errs) > 0 {
		v.State["errors"] = "bad"
	}
	return v
}

// usage writes "1,2 Go sur 4 Go (30 %)", or just the use when the total is
// unknown.
func usage(lang string, used, total int64) string {
	if total <= 0 {
		return formatSize(lang, used)
	}
	pct := 100 * float64(used) / float64(total)
	return msgf(lang, "dash.usage", formatSize(lang, used), formatSize(lang, total), formatPercentPlain(lang, pct))
}

type dashView struct {
	Live      liveView
	Fallback  int // seconds between fetches when the socket fails
	ShowAdmin bool
}

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, s *session) {
	d := c.newPage(r, s, msg(c.lang(r), "nav.dashboard"))
	res := c.hub.current(r.Context())
	d.Dash = &dashView{Live: c.liveView(res, d.Lang), Fallback: 10, ShowAdmin: s.Role == RoleTechnicien}
	d.Script = c.urls["console.js"]
	c.render(w, r, http.StatusOK, "dashboard", d)
}

// formatPercent writes a signed change: "+12 %", "−3 %".
func formatPercent(lang string, pct float64) string {
	r := math.Round(pct)
	sign := "+"
	if r < 0 {
		sign = "−"
		r = -r
	} else if r == 0 {
		sign = "±"
	}
	if lang == "en" {
		return fmt.Sprintf("%s%.0f%%", sign, r)
	}
	return fmt.Sprintf("%s%.0f\u202f%%", sign, r)
}

func formatPercentPlain(lang string, pct float64) string {
	if lang == "en" {
		return fmt.Sprintf("%.0f%%", math.Round(pct))
	}
	return fmt.Sprintf("%.0f\u202f%%", math.Round(pct))
}

// formatWhen writes a time of today as a clock time, else with its date.
func formatWhen(lang string, t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatClock(lang, t, now)
}
