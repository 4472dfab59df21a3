package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"preau/firmware"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"preau/appliance/console"
	"preau/appliance/energy"
	"preau/appliance/inventory"
)

// StatusReport is the JSON of `preau status --json`: the Health fields
// scripts already read, at the top level as before, and the console's
// dashboard snapshot (what /api/v1/status answers).
type StatusReport struct {
	Health
	Snapshot console.Snapshot `json:"snapshot"`
}

// SetupCodeReport is the answer of GET /v1/console/setup-code.
type SetupCodeReport struct {
	Code string `json:"code,omitempty"` // "" once a technicien account exists
	URL  string `json:"url"`
}

// glpiFile is one document of GET /v1/devices/glpi.
type glpiFile struct {
	Name     string          `json:"name"`
	Document json.RawMessage `json:"document"`
}

// technicianControl adds the console's, the inventory's and the energy's
// endpoints to the control socket.
func (b *Box) technicianControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		rep := StatusReport{Health: b.health(r.Context())}
		rep.Snapshot, _ = b.tech.source.Snapshot(r.Context()) // never fails: problems are listed in it
		rep.Snapshot.TakenAt = time.Now()
		writeJSON(w, rep)
	})
	mux.HandleFunc("GET /v1/console/setup-code", func(w http.ResponseWriter, r *http.Request) {
		code, fresh, err := b.tech.setup(r.Context())
		if err != nil {
			controlFail(w, http.StatusInternalServerError, err)
			return
		}
		if code == "" {
			writeJSON(w, SetupCodeReport{URL: strings.TrimSuffix(b.setupURL(), "installation")})
			return
		}
		if fresh {
			b.logSetupCode(code)
		}
		b.audit(r, "setup-code-shown", "code d'installation affiché par preau setup-code")
		writeJSON(w, SetupCodeReport{Code: code, URL: b.setupURL()})
	})
	mux.HandleFunc("GET /v1/devices", func(w http.ResponseWriter, r *http.Request) {
		devs, err := b.tech.inv.Devices(r.Context())
		if err != nil {
			controlFail(w, http.StatusInternalServerError, err)
			return
		}
		if r.URL.Query().Get("format") == "csv" {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			if err := inventory.WriteCSV(w, devs); err != nil {
				b.log.Warn("export csv de l'inventaire", "err", err)
			}
			b.audit(r, console.ActionExport, "inventaire csv (preau devices --csv)")
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		writeDevices(w, r.URL.Query().Get("lang"), b.tech.loc, devs)
	})
	mux.HandleFunc("GET /v1/devices/glpi", func(w http.ResponseWriter, r *http.Request) {
		devs, err := b.tech.inv.Devices(r.Context())
		if err != nil {
			controlFail(w, http.StatusInternalServerError, err)
			return
		}
		files := []glpiFile{}
		for _, d := range devs {
			doc, err := b.tech.inv.GLPIDocument(d)
			if err != nil {
				controlFail(w, http.StatusInternalServerError, err)
				return
			}
			files = append(files, glpiFile{Name: d.GLPIFileName(), Document: doc})
		}
		b.audit(r, console.ActionExport, "inventaire glpi (preau devices --glpi)")
		writeJSON(w, files)
	})
	mux.HandleFunc("GET /v1/energy", func(w http.ResponseWriter, r *http.Request) {
		lang := r.URL.Query().Get("lang")
		var buf bytes.Buffer
		var err error
		if r.URL.Query().Get("week") == "1" {
			err = b.writeEnergyWeek(r.Context(), &buf, lang)
		} else {
			err = b.writeEnergyToday(r.Context(), &buf, lang)
		}
		if err != nil {
			controlFail(w, http.StatusInternalServerError, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(buf.Bytes())
	})
}

// --- audit of the administrative actions asked through the socket ----

type peerKey struct{}

// controlPeer remembers who is on the other end of a control connection
// (SO_PEERCRED), the actor of the audit entries.
func controlPeer(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, cred.Uid)
}

// controlActor names the person behind a control request: "cli:" and the
// Unix account that ran the command.
func controlActor(r *http.Request) string {
	uid, ok := r.Context().Value(peerKey{}).(uint32)
	if !ok {
		return "cli"
	}
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return "cli:" + u.Username
	}
	return "cli:uid " + id
}

// audit writes an administrative action asked through the control socket
// to the console's audit log.
func (b *Box) audit(r *http.Request, action, detail string) {
	if b.tech == nil {
		return
	}
	if err := b.tech.console.Audit(context.WithoutCancel(r.Context()), controlActor(r), action, detail, ""); err != nil {
		b.log.Warn("journal d'audit", "action", action, "err", err)
	}
}

// auditedControl are the control routes that change the box, by mux
// pattern, and the audit action they are logged as once they succeed.
var auditedControl = map[string]string{
	"POST /v1/catalog/sources":              "catalog-add",
	"DELETE /v1/catalog/sources/{id}":       "catalog-remove",
	"POST /v1/catalog/sources/{id}/pin":     "catalog-pin",
	"POST /v1/catalog/sources/{id}/refresh": "catalog-refresh",
	"POST /v1/sync/now":                     "sync-now",
	"POST /v1/export":                       "usb-export",
	"POST /v1/import":                       "pack-import",
	"POST /v1/update/apply":                 "update-apply",
	"POST /v1/update/rollback":              "update-rollback",
}

// auditControl logs the successful administrative requests of next.
func (b *Box) auditControl(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		aw := &auditWriter{ResponseWriter: w}
		if r.Method != http.MethodGet {
			aw.keep = 4 << 10
		}
		next.ServeHTTP(aw, r)
		action, ok := auditedControl[r.Pattern]
		if !ok || aw.code >= 400 {
			return
		}
		detail := r.URL.Path
		if id := r.PathValue("id"); id != "" {
			detail = id
		}
		switch action {
		case "catalog-add":
			var src struct{ ID, Kind, Name string }
			if json.Unmarshal(aw.body.Bytes(), &src) == nil && src.ID != "" {
				detail = fmt.Sprintf("%s (%s, %s)", src.ID, src.Kind, src.Name)
			}
		case "sync-now":
			detail = "envoi immédiat hors des plages horaires"
		}
		b.audit(r, action, detail)
	})
}

// auditWriter remembers the status and the start of the body.
type auditWriter struct {
	http.ResponseWriter
	code int
	keep int
	body bytes.Buffer
}

func (w *auditWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if room := w.keep - w.body.Len(); room > 0 {
		w.body.Write(p[:min(room, len(p))])
	}
	return w.ResponseWriter.Write(p)
}

func (w *auditWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// --- preau status ------------------------------------------------------

func cmdStatus(args []string, stdout, stderr io.Writer, lang string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	c, pos, rc := runningBox(fs, &cf, args, stderr, lang)
	if rc != ExitOK {
		return rc
	}
	if len(pos) > 0 {
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := c.get(ctx, "/v1/status", &buf); err != nil {
		printErr(stderr, lang, err)
		return ExitFailure
	}
	var rep StatusReport
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		printErr(stderr, lang, fmt.Errorf("read the running box's answer: %w", err))
		return ExitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return ExitOK
	}
	printStatus(stdout, lang, schoolZone(&cf), rep)
	return ExitOK
}

// printStatus is the one-screen summary of `preau status`; times are
// shown in loc, the school's time zone.
func printStatus(w io.Writer, lang string, loc *time.Location, rep StatusReport) {
	h, s := rep.Health, rep.Snapshot
	fmt.Fprintf(w, tr(lang, "Préau %s — %s\nEn marche depuis : %s\nBase de données : %s\n",
		"Préau %s — %s\nUp for: %s\nDatabase: %s\n"),
		h.Version, h.Status, (time.Duration(h.UptimeSeconds) * time.Second).String(), h.Database)

	state := map[string][2]string{console.UplinkOnline: {"en ligne", "online"}, console.UplinkOffline: {"hors ligne", "offline"},
		console.UplinkDegraded: {"dégradé", "degraded"}, console.UplinkUnknown: {"pas encore testé", "not probed yet"}}[s.Uplink.State]
	up := tr(lang, state[0], state[1])
	if up == "" {
		up = s.Uplink.State
	}
	if !s.Uplink.Since.IsZero() {
		up += tr(lang, " depuis ", " since ") + s.Uplink.Since.In(loc).Format("02/01 15:04")
	}
	fmt.Fprintf(w, tr(lang, "Internet : %s (reçu %s, envoyé %s)\n", "Internet: %s (down %s, up %s)\n"),
		up, humanBits(lang, s.Uplink.DownBitsPerSec), humanBits(lang, s.Uplink.UpBitsPerSec))
	fmt.Fprintf(w, tr(lang, "File d'envoi : %d élément(s), %s\n", "Outbox: %d item(s), %s\n"), s.Sync.Items, humanBytes(s.Sync.Bytes))
	fmt.Fprintf(w, tr(lang, "Contenus : %d paquets, %d ressources, %s ; cache HTTP %s sur %s\n",
		"Content: %d packs, %d items, %s; HTTP cache %s of %s\n"),
		h.Packs, h.Items, humanBytes(s.Storage.StoreBytes), humanBytes(s.Storage.CacheBytes), humanBytes(s.Storage.CacheLimitBytes))
	fmt.Fprintf(w, tr(lang, "Disque libre : %s sur %s\n", "Free disk: %s of %s\n"),
		humanBytes(int64(h.DiskFreeBytes)), humanBytes(int64(h.DiskSizeBytes)))
	fmt.Fprintf(w, tr(lang, "Appareils : %d présent(s), %d connu(s)\n", "Devices: %d present, %d known\n"), s.Devices.Present, s.Devices.Known)
	for _, d := range s.Devices.Recent {
		name := d.Name
		if name == "" {
			name = d.MAC
		}
		fmt.Fprintf(w, "  %-24s %-16s %s\n", name, d.IP, inventory.Class(d.Class).Label(lang))
	}
	fmt.Fprintf(w, tr(lang, "Énergie aujourd'hui : %s kWh (même heure il y a 7 jours : %s kWh) ; box en ce moment : %s W\n",
		"Energy today: %s kWh (same time 7 days ago: %s kWh); box right now: %s W\n"),
		cliNum(lang, s.Energy.TodayKWh, 3), cliNum(lang, s.Energy.LastWeekSameDay, 3), cliNum(lang, s.Energy.BoxWatts, 1))
	ust := s.Update.State
	if n, ok := updateStateNames[firmware.State(ust)]; ok {
		ust = tr(lang, n[0], n[1])
	} else if ust == updateNotConfigured {
		ust = tr(lang, "non configurées (pas de partitions A/B)", "not configured (no A/B slots)")
	}
	fmt.Fprintf(w, tr(lang, "Mise à jour : %s (version %s)\n", "Update: %s (version %s)\n"), ust, s.Update.Version)
	if len(s.Errors) == 0 {
		fmt.Fprintln(w, tr(lang, "Erreurs récentes : aucune", "Recent errors: none"))
		return
	}
	fmt.Fprintln(w, tr(lang, "Erreurs récentes :", "Recent errors:"))
	for i, e := range s.Errors {
		if i == 8 {
			fmt.Fprintf(w, tr(lang, "  … et %d autres (journalctl -u preau)\n", "  … and %d more (journalctl -u preau)\n"), len(s.Errors)-8)
			break
		}
		fmt.Fprintf(w, tr(lang, "  %s %s : %s\n", "  %s %s: %s\n"), e.At.In(loc).Format("02/01 15:04"), e.Component, e.Message)
	}
}

// schoolZone is the time zone of the school's calendar (energy.timezone),
// the one the console shows times in.
func schoolZone(cf *commonFlags) *time.Location {
	if cfg, err := cf.load(); err == nil {
		if loc, err := time.LoadLocation(cfg.Energy.Timezone); err == nil {
			return loc
		}
	}
	return time.Local
}

// humanBits writes a rate: "1,2 Mbit/s".
func humanBits(lang string, bps float64) string {
	units := []string{"bit/s", "kbit/s", "Mbit/s", "Gbit/s"}
	i := 0
	for bps >= 1000 && i < len(units)-1 {
		bps /= 1000
		i++
	}
	return cliNum(lang, bps, 1) + " " + units[i]
}

// num writes a number with prec decimals, with a decimal comma in French.
func cliNum(lang string, v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if lang != "en" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// --- preau setup-code --------------------------------------------------

func cmdSetupCode(args []string, stdout, stderr io.Writer, lang string) int {
	fs := flag.NewFlagSet("setup-code", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs, false)
	c, pos, rc := runningBox(fs, &cf, args, stderr, lang)
	if rc != ExitOK {
		return rc
	}
	if len(pos) > 0 {
		fmt.Fprintln(stderr, tr(lang, "utilisation : preau setup-code", "usage: preau setup-code"))
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := c.get(ctx, "/v1/console/setup-code", &buf); err != nil {
		printErr(stderr, lang, err)
		return ExitFailure
	}
	var rep SetupCodeReport
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		printErr(stderr, lang, fmt.Errorf("read the running box's answer: %w", err))
		return ExitFailure
	}
	if rep.Code == "" {
		fmt.Fprintf(stdout, tr(lang, "La console est déjà installée (un compte technicien existe) : connectez-vous sur %s\n",
			"The console is already set up (a technicien account exists): sign in at %s\n"), rep.URL)
		return ExitOK
	}
	fmt.Fprintf(stdout, tr(lang, "Code d'installation de la console : %s\nOuvrez %s et créez le premier compte technicien.\n",
		"Console setup code: %s\nOpen %s and create the first technicien account.\n"), rep.Code, rep.URL)
	return ExitOK
}

// --- preau devices -----------------------------------------------------

func cmdDevices(args []string, stdout, stderr io.Writer, lang string) int {
	fs := flag.NewFlagSet("devices", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs, false)
	asCSV := fs.Bool("csv", false, "print the inventory as CSV (for a spreadsheet)")
	glpiDir := fs.String("glpi", "", "write one GLPI native inventory document per device into this folder")
	c, pos, rc := runningBox(fs, &cf, args, stderr, lang)
	if rc != ExitOK {
		return rc
	}
	if len(pos) > 0 || *asCSV && *glpiDir != "" {
		fmt.Fprintln(stderr, tr(lang, "utilisation : preau devices [--csv | --glpi DOSSIER]", "usage: preau devices [--csv | --glpi DIR]"))
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	switch {
	case *asCSV:
		if err := c.get(ctx, "/v1/devices?format=csv", stdout); err != nil {
			printErr(stderr, lang, err)
			return ExitFailure
		}
	case *glpiDir != "":
		var buf bytes.Buffer
		if err := c.get(ctx, "/v1/devices/glpi", &buf); err != nil {
			printErr(stderr, lang, err)
			return ExitFailure
		}
		var files []glpiFile
		if err := json.Unmarshal(buf.Bytes(), &files); err != nil {
			printErr(stderr, lang, fmt.Errorf("read the running box's answer: %w", err))
			return ExitFailure
		}
		if err := writeGLPIFiles(*glpiDir, files); err != nil {
			printErr(stderr, lang, err)
			return ExitFailure
		}
		fmt.Fprintf(stdout, tr(lang, "%d document(s) d'inventaire GLPI écrit(s) dans %s\n", "%d GLPI inventory document(s) written to %s\n"),
			len(files), *glpiDir)
	default:
		if err := c.get(ctx, "/v1/devices?lang="+lang, stdout); err != nil {
			printErr(stderr, lang, err)
			return ExitFailure
		}
	}
	return ExitOK
}

// writeGLPIFiles writes each document into dir, each file replaced
// atomically (temporary file, sync, rename), then syncs the folder.
func writeGLPIFiles(dir string, files []glpiFile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("glpi folder: %w", err)
	}
	for _, f := range files {
		if f.Name == "" || filepath.Base(f.Name) != f.Name || strings.HasPrefix(f.Name, ".") {
			return fmt.Errorf("glpi folder: refused file name %q", f.Name)
		}
		tmp, err := os.CreateTemp(dir, ".tmp-"+f.Name+"-*")
		if err != nil {
			return fmt.Errorf("glpi folder: %w", err)
		}
		_, err = tmp.Write(f.Document)
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), filepath.Join(dir, f.Name))
		}
		if err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("glpi folder: %w", err)
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("glpi folder: %w", err)
	}
	defer d.Close()
	return d.Sync()
}

// writeDevices is the text table of `preau devices`.
func writeDevices(w io.Writer, lang string, loc *time.Location, devs []inventory.Device) {
	present := 0
	for _, d := range devs {
		if d.Present {
			present++
		}
	}
	fmt.Fprintf(w, tr(lang, "%d appareil(s) connu(s), %d présent(s)\n", "%d device(s) known, %d present\n"), len(devs), present)
	if len(devs) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, tr(lang, "MAC\tIP\tNOM\tCLASSE\tFABRICANT\tPRÉSENT\tVU LE", "MAC\tIP\tNAME\tCLASS\tVENDOR\tPRESENT\tLAST SEEN"))
	for _, d := range devs {
		name := d.Name
		if name == "" {
			name = "—"
		}
		class := d.Class.Label(lang)
		if d.ClassSet {
			class += tr(lang, " (corrigé)", " (set)")
		}
		pres := tr(lang, "non", "no")
		if d.Present {
			pres = tr(lang, "oui", "yes")
		}
		ip := deviceIP(d)
		if ip == "" {
			ip = "—"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.MAC, ip, cliLine(name, 32), class, cliLine(d.VendorLabel(lang), 32),
			pres, d.LastSeen.In(loc).Format("02/01 15:04"))
	}
	tw.Flush()
}

// oneLine keeps a device-given text on one short line of the table.
func cliLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\t' {
			return ' '
		}
		return r
	}, s)
	return clipText(s, n)
}

// --- preau energy ------------------------------------------------------

func cmdEnergy(args []string, stdout, stderr io.Writer, lang string) int {
	fs := flag.NewFlagSet("energy", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs, false)
	week := fs.Bool("week", false, "the last 7 days by class, with the week before")
	c, pos, rc := runningBox(fs, &cf, args, stderr, lang)
	if rc != ExitOK {
		return rc
	}
	if len(pos) > 0 {
		fmt.Fprintln(stderr, tr(lang, "utilisation : preau energy [--week]", "usage: preau energy [--week]"))
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := "/v1/energy?lang=" + lang
	if *week {
		path += "&week=1"
	}
	if err := c.get(ctx, path, stdout); err != nil {
		printErr(stderr, lang, err)
		return ExitFailure
	}
	return ExitOK
}

func cliKWh(lang string, v float64) string { return cliNum(lang, v, 3) + " kWh" }

// writeEnergyToday is `preau energy`: the day so far, with the source of
// each figure, and the left-on alerts of the last 7 days.
func (b *Box) writeEnergyToday(ctx context.Context, w io.Writer, lang string) error {
	m := b.tech.meter
	tv, err := m.Today(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, tr(lang, "Énergie aujourd'hui (jusqu'à %s) : %s\n", "Energy today (until %s): %s\n"),
		tv.At.Format("15:04"), cliKWh(lang, tv.Today.TotalKWh))
	if tv.Today.Box.Source.Kind == energy.SourceNone {
		fmt.Fprintf(w, tr(lang, "  box : %s\n", "  box: %s\n"), energy.NoMeasurement().In(lang))
	} else {
		fmt.Fprintf(w, tr(lang, "  box : %s — %s%s\n", "  box: %s — %s%s\n"), cliKWh(lang, tv.Today.Box.KWh), tv.Today.Box.Source.Label(lang),
			cliMissing(lang, tv.Today.Box.Missing))
	}
	fmt.Fprintf(w, tr(lang, "  appareils du réseau : %s — %s\n", "  LAN devices: %s — %s\n"), cliKWh(lang, tv.Today.Devices.KWh),
		sourceOrNone(lang, tv.Today.Devices.Source, tv.Today.Devices.KWh))
	fmt.Fprintf(w, tr(lang, "Même jour il y a 7 jours, à la même heure : %s", "Same day 7 days ago, at the same time: %s"),
		cliKWh(lang, tv.LastWeekSameTime.TotalKWh))
	if tv.HasChange {
		fmt.Fprintf(w, " (%s)", cliPercent(lang, tv.ChangePercent))
	}
	fmt.Fprintln(w)
	if tv.BoxSource.Kind == energy.SourceNone {
		fmt.Fprintf(w, tr(lang, "Box en ce moment : %s\n", "Box right now: %s\n"), energy.NoMeasurement().In(lang))
	} else {
		fmt.Fprintf(w, tr(lang, "Box en ce moment : %s W — %s\n", "Box right now: %s W — %s\n"), cliNum(lang, tv.BoxWatts, 1), tv.BoxSource.Label(lang))
	}
	alerts, err := m.Alerts(ctx, tv.At.AddDate(0, 0, -7), tv.At.Add(time.Second))
	if err != nil {
		return err
	}
	writeLeftOn(w, lang, alerts)
	return nil
}

// writeEnergyWeek is `preau energy --week`: kWh per day and class, the
// source of each class's figures, the week before, CO₂e and the alerts.
func (b *Box) writeEnergyWeek(ctx context.Context, w io.Writer, lang string) error {
	m := b.tech.meter
	wv, err := m.Week(ctx, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(w, tr(lang, "Énergie du %s au %s, en kWh\n", "Energy from %s to %s, in kWh\n"),
		wv.From.Format("02/01"), wv.To.AddDate(0, 0, -1).Format("02/01"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, tr(lang, "JOUR\t", "DAY\t"))
	for _, c := range wv.Classes {
		fmt.Fprintf(tw, "%s\t", c.Class.Label(lang))
	}
	fmt.Fprintln(tw, tr(lang, "TOTAL\t", "TOTAL\t"))
	for _, d := range wv.Days {
		fmt.Fprintf(tw, "%s\t", cliDay(lang, d.Start))
		noData := d.Future || d.BoxSource.Kind == energy.SourceNone && len(d.Devices) == 0
		for _, c := range wv.Classes {
			if noData {
				fmt.Fprint(tw, "—\t")
				continue
			}
			fmt.Fprintf(tw, "%s\t", cliNum(lang, d.ByClass[c.Class], 3))
		}
		if noData {
			fmt.Fprintf(tw, "%s\t\n", energy.NoMeasurement().In(lang))
			continue
		}
		fmt.Fprintf(tw, "%s\t\n", cliNum(lang, d.TotalKWh, 3))
	}
	tw.Flush()
	fmt.Fprintln(w, tr(lang, "Sources :", "Sources:"))
	for _, c := range wv.Classes {
		src := sourceOrNone(lang, c.Source, c.KWh)
		if c.Class == energy.ClassBox {
			src = energy.NoMeasurement().In(lang)
			if c.Source.Kind != energy.SourceNone {
				src = c.Source.Label(lang) + cliMissing(lang, wv.BoxMissing)
			}
		}
		fmt.Fprintf(w, tr(lang, "  %s : %s\n", "  %s: %s\n"), c.Class.Label(lang), src)
	}
	fmt.Fprintf(w, tr(lang, "Total : %s ; semaine précédente (même durée) : %s", "Total: %s; the week before (same length): %s"),
		cliKWh(lang, wv.TotalKWh), cliKWh(lang, wv.PreviousKWh))
	if wv.HasChange {
		fmt.Fprintf(w, " (%s)", cliPercent(lang, wv.ChangePercent))
	}
	fmt.Fprintln(w)
	e := wv.Electricity
	fmt.Fprintf(w, tr(lang, "Émissions : %s kg CO₂e (facteur %s kg CO₂e/kWh, %s, %d)\n", "Emissions: %s kg CO₂e (factor %s kg CO₂e/kWh, %s, %d)\n"),
		cliNum(lang, wv.CO2eKg, 3), cliNum(lang, e.KgCO2ePerKWh, 3), e.Source, e.Year)
	alerts, err := m.Alerts(ctx, wv.From, wv.To)
	if err != nil {
		return err
	}
	writeLeftOn(w, lang, alerts)
	return nil
}

func writeLeftOn(w io.Writer, lang string, alerts []energy.Alert) {
	if len(alerts) == 0 {
		fmt.Fprintln(w, tr(lang, "Aucun appareil resté allumé hors des heures de classe.", "No device left on outside school hours."))
		return
	}
	fmt.Fprintln(w, tr(lang, "Restés allumés hors des heures de classe :", "Left on outside school hours:"))
	for _, a := range alerts {
		name := a.Name
		if name == "" {
			name = a.Device
		}
		ongoing := ""
		if a.Ongoing {
			ongoing = tr(lang, " (en cours)", " (ongoing)")
		}
		fmt.Fprintf(w, tr(lang, "  %s (%s) : présent %s, de %s à %s%s, environ %s (estimé, %s W)\n",
			"  %s (%s): present %s, from %s to %s%s, about %s (estimated, %s W)\n"),
			cliLine(name, 40), a.Class.Label(lang), cliDuration(a.Present), cliDayTime(lang, a.FirstSeen),
			cliDayTime(lang, a.LastSeen), ongoing, cliKWh(lang, a.KWh), cliNum(lang, a.Watts, 0))
	}
}

func sourceOrNone(lang string, s energy.Source, v float64) string {
	if s.Kind == energy.SourceNone && v == 0 {
		return tr(lang, "rien de présent", "nothing present")
	}
	return s.Label(lang)
}

func cliMissing(lang string, d time.Duration) string {
	if d < time.Minute {
		return ""
	}
	return fmt.Sprintf(tr(lang, " ; %s pendant %s", "; %s for %s"), energy.NoMeasurement().In(lang), cliDuration(d))
}

// duration writes "2 h 05 min", "12 min" or "40 s".
func cliDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
}

func cliPercent(lang string, p float64) string {
	s := cliNum(lang, p, 0)
	if p >= 0 {
		s = "+" + s
	}
	return s + tr(lang, "\u202f%", "%")
}

var cliDayNames = map[time.Weekday][2]string{
	time.Monday: {"lun.", "Mon"}, time.Tuesday: {"mar.", "Tue"}, time.Wednesday: {"mer.", "Wed"},
	time.Thursday: {"jeu.", "Thu"}, time.Friday: {"ven.", "Fri"}, time.Saturday: {"sam.", "Sat"}, time.Sunday: {"dim.", "Sun"},
}

func cliDay(lang string, t time.Time) string {
	n := cliDayNames[t.Weekday()]
	return tr(lang, n[0], n[1]) + " " + t.Format("02/01")
}

func cliDayTime(lang string, t time.Time) string { return cliDay(lang, t) + " " + t.Format("15:04") }
