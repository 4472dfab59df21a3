package appliance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"preau/appliance/console"
	"preau/appliance/energy"
	"preau/appliance/inventory"
	"preau/appliance/store"
	"preau/services/content"
	"preau/sync/budget"
	"preau/sync/uplink"
)

// technician is the box's side for the municipal technician: the console
// (accounts, dashboard, JSON API), the LAN inventory and the energy
// accounting it shows, and the GLPI push.
type technician struct {
	console  *console.Console
	inv      *inventory.Inventory
	collect  bool // a LAN interface is known: the neighbour and DNS-SD collectors run
	pusher   *inventory.Pusher
	meter    *energy.Meter
	observer *lanObserver
	source   *consoleSource
	log      *slog.Logger
	loc      *time.Location // the school's time zone (energy.timezone)

	setupMu   sync.Mutex
	setupCode string // the code printed at start, "" once a technicien account exists
}

// updateNotConfigured is the update state of a box without an update
// engine (no A/B slots): an honest value, shown as it is.
const updateNotConfigured = "not-configured"

// newTechnician builds the console, the inventory and the energy meter
// (after newHandIn and newCatalog: it reads the WAN budget, the outbox
// and the caches).
func (b *Box) newTechnician(ctx context.Context) error {
	for _, m := range []struct {
		name string
		ms   []store.Migration
	}{
		{"console", convertMigrations(console.Migrations())},
		{"inventory", convertMigrations(inventory.Migrations())},
		{"energy", convertMigrations(energy.Migrations())},
	} {
		if err := b.store.Migrate(ctx, m.name, m.ms); err != nil {
			return err
		}
	}
	cfg := b.cfg
	t := &technician{log: b.log.With("component", "console"), loc: time.Local}
	ifaces := cfg.lanInterfaces()
	t.collect = len(ifaces) > 0
	var err error
	if t.inv, err = inventory.New(cfg.inventoryConfig(ifaces), b.store.DB(), b.log.With("component", "inventory"), time.Now); err != nil {
		return err
	}
	if cfg.Inventory.GLPIURL != "" {
		// The push is background management traffic: the WAN budget's
		// lowest class, which yields to hand-ins, updates and the school.
		if t.pusher, err = inventory.NewPusher(cfg.glpiConfig(), t.inv, b.handin.sched.Doer(budget.ClassPrefetch),
			b.log.With("component", "glpi")); err != nil {
			return err
		}
	}
	if t.meter, err = energy.New(cfg.energyConfig(), energy.Deps{DB: b.store.DB(), Presence: energyPresence{t.inv},
		Log: b.log.With("component", "energy")}); err != nil {
		return err
	}
	t.observer = newLANObserver(t.inv, b.log.With("component", "inventory"))
	t.source = &consoleSource{b: b, t: t}
	ccfg, err := cfg.consoleConfig()
	if err != nil {
		return err
	}
	// The console shows times in the school's zone, the one the energy
	// calendar counts days in (validated by the configuration).
	if loc, err := time.LoadLocation(cfg.Energy.Timezone); err == nil {
		ccfg.Location, t.loc = loc, loc
	}
	if t.console, err = console.New(ccfg, console.Deps{DB: b.store.DB(), Log: t.log, Source: t.source,
		Devices: consoleDevices{inv: t.inv, lang: cfg.Portal.Language},
		Energy:  consoleEnergy{m: t.meter, lang: cfg.Portal.Language}, Updates: b.consoleUpdates()}); err != nil {
		return err
	}
	b.uplink.OnChange(func(uplink.State) { t.console.Changed() })
	b.metrics.MustRegister(t.inv.Collector(), t.meter.Collector())
	if t.pusher != nil {
		b.metrics.MustRegister(t.pusher.Collector())
	}
	if err := t.importTeachers(ctx, b.store.DB()); err != nil {
		return err
	}
	need, err := t.console.SetupNeeded(ctx)
	if err != nil {
		return err
	}
	if need {
		if t.setupCode, err = t.console.SetupCode(ctx); err != nil {
			return err
		}
	}
	b.tech = t
	return nil
}

// parts are the console's, the inventory's and the energy meter's loops.
func (t *technician) parts(b *Box) []part {
	ps := []part{
		{name: "console", serve: t.console.Serve},
		{name: "energy", serve: t.meter.Serve},
		{name: "inventory-observations", serve: t.observer.run},
		{name: "inventory-events", serve: t.forwardEvents},
	}
	if t.collect {
		ps = append(ps, part{name: "inventory", serve: t.inv.Serve})
	} else {
		t.log.Info("inventaire : aucune interface du réseau de l'école (inventory.interfaces, dhcp.interface, mdns.interfaces) ; table des voisins et mDNS non lus, seuls les baux DHCP, le portail captif et les visites du portail renseignent l'inventaire")
	}
	if t.pusher != nil {
		ps = append(ps, part{name: "glpi", serve: t.pusher.Serve})
	}
	if b.lan != nil && b.lan.dhcp != nil {
		srv := b.lan.dhcp
		ps = append(ps, part{name: "inventory-dhcp", serve: func(ctx context.Context) error { return t.observer.leases(ctx, srv) }})
	}
	return ps
}

// forwardEvents tells the console's live dashboard when a device appears,
// leaves or changes, so it does not wait for its next poll.
func (t *technician) forwardEvents(ctx context.Context) error {
	events, stop := t.inv.Subscribe()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-events:
			if !ok {
				return nil
			}
			t.console.Changed()
		}
	}
}

// teachersImportedKey marks, in the settings table, that the teachers of
// services/assignments were copied into the console once.
const teachersImportedKey = "console.teachers_imported"

// importTeachers copies the teachers' accounts of services/assignments
// into the console, role enseignant, with the same argon2id hash, once.
// assignments offers no listing of its accounts, so this reads its table
// directly (read-only).
func (t *technician) importTeachers(ctx context.Context, db *sql.DB) error {
	var done string
	err := db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, teachersImportedKey).Scan(&done)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("import teachers: %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT login, name, password_hash FROM assignments_teachers ORDER BY id`)
	if err != nil {
		return fmt.Errorf("import teachers: %w", err)
	}
	type teacher struct{ login, name, hash string }
	var list []teacher
	for rows.Next() {
		var tt teacher
		if err := rows.Scan(&tt.login, &tt.name, &tt.hash); err != nil {
			rows.Close()
			return fmt.Errorf("import teachers: %w", err)
		}
		list = append(list, tt)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("import teachers: %w", err)
	}
	n := 0
	for _, tt := range list {
		_, err := t.console.ImportAccount(ctx, tt.login, tt.name, console.RoleEnseignant, tt.hash)
		switch {
		case err == nil:
			n++
		case errors.Is(err, console.ErrAccountExists):
		default:
			t.log.Warn("compte enseignant non repris dans la console", "login", tt.login, "err", err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)`, teachersImportedKey,
		time.Now().UTC().Format(time.RFC3339)); err != nil {
		return fmt.Errorf("import teachers: %w", err)
	}
	if n > 0 {
		t.log.Info("comptes enseignants repris dans la console", "accounts", n)
	}
	return nil
}

// addTeacher creates a teacher's account (`preau teacher add`): in the
// console, role enseignant, and in services/assignments, whose pages and
// assignments still need its own row, with the same password hash.
func (b *Box) addTeacher(ctx context.Context, login, name, password string) error {
	l := strings.ToLower(strings.TrimSpace(login))
	accounts, err := b.tech.console.ListAccounts(ctx)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if a.Login == l {
			return &console.Error{Code: console.CodeAccountExists, Err: console.ErrAccountExists,
				FR: fmt.Sprintf("l'identifiant %s existe déjà dans la console (rôle %s) : choisissez-en un autre", l, a.Role),
				EN: fmt.Sprintf("login %s already exists in the console (role %s): choose another one", l, a.Role)}
		}
	}
	if err := b.handin.assignments.CreateTeacher(ctx, login, name, password); err != nil {
		return err
	}
	var hash, stored string
	if err := b.store.DB().QueryRowContext(ctx, `SELECT name, password_hash FROM assignments_teachers WHERE login = ?`, l).
		Scan(&stored, &hash); err != nil {
		return fmt.Errorf("add teacher %s: read its account: %w", l, err)
	}
	if _, err := b.tech.console.ImportAccount(ctx, l, stored, console.RoleEnseignant, hash); err != nil {
		return fmt.Errorf("add teacher %s: the hand-in account exists, the console account could not be made: %w", l, err)
	}
	return nil
}

// setup returns the console's setup code while no technicien account
// exists ("" once one does). The code printed at start stays valid: a new
// one is made only when none is known (e.g. the box started set up and
// every technicien account went since).
func (t *technician) setup(ctx context.Context) (code string, fresh bool, err error) {
	need, err := t.console.SetupNeeded(ctx)
	if err != nil {
		return "", false, err
	}
	t.setupMu.Lock()
	defer t.setupMu.Unlock()
	if !need {
		t.setupCode = ""
		return "", false, nil
	}
	if t.setupCode == "" {
		if t.setupCode, err = t.console.SetupCode(ctx); err != nil {
			return "", false, err
		}
		fresh = true
	}
	return t.setupCode, fresh, nil
}

// setupURL is the console's installation page as the LAN reaches it.
func (b *Box) setupURL() string {
	base := "http://preau.lan/"
	if b.lan != nil && b.lan.portalURL != "" {
		base = b.lan.portalURL
	}
	return strings.TrimSuffix(base, "/") + "/console/installation"
}

// logSetupCode prints the setup code to the journal, at WARN so that it
// stands out, through the root logger (not the dashboard's recent errors).
func (b *Box) logSetupCode(code string) {
	b.rawLog.Warn(fmt.Sprintf("code d'installation de la console : %s — ouvrez %s", code, b.setupURL()),
		"component", "console")
}

// consoleSource is the dashboard's snapshot, read from the components
// every time the console asks (every PollInterval while a browser is
// connected); what a component cannot give is shown as a recent error
// rather than failing the whole snapshot.
type consoleSource struct {
	b *Box
	t *technician

	mu         sync.Mutex
	rateAt     time.Time
	sent, recv int64
	up, down   float64 // bits/s over the last interval
	usageAt    time.Time
	usage      content.Usage
}

// Snapshot implements console.Source.
func (s *consoleSource) Snapshot(ctx context.Context) (console.Snapshot, error) {
	b, now := s.b, time.Now()
	var snap console.Snapshot
	var err error
	var problems []console.RecentError
	problem := func(component string, err error) {
		problems = append(problems, console.RecentError{At: now, Component: component, Message: clipText(err.Error(), 300)})
	}
	snap.Uplink = s.uplinkStatus(now)
	if st, err := b.handin.outbox.Status(ctx); err != nil {
		problem("outbox", err)
	} else {
		snap.Sync.Items, snap.Sync.Bytes = pendingBytes(st)
	}
	hs := b.cache.Status(ctx)
	snap.Storage.CacheBytes, snap.Storage.CacheLimitBytes = hs.Bytes, hs.QuotaBytes
	if u, err := s.contentUsage(ctx, now); err != nil {
		problem("content", err)
	} else {
		snap.Storage.StoreBytes = u.UsedBytes
	}
	_, size := diskSpace(b.cfg.Box.DataDir)
	snap.Storage.DiskBytes = int64(size)
	if devs, err := s.t.inv.Devices(ctx); err != nil {
		problem("inventory", err)
	} else {
		snap.Devices.Known = len(devs)
		snap.Devices.Recent = []console.DeviceBrief{}
		for _, d := range devs { // present first, most recently seen first
			if !d.Present {
				continue
			}
			snap.Devices.Present++
			if len(snap.Devices.Recent) < 10 {
				snap.Devices.Recent = append(snap.Devices.Recent, console.DeviceBrief{MAC: d.MAC, IP: deviceIP(d),
					Name: d.Name, Class: string(d.Class)})
			}
		}
	}
	if tv, err := s.t.meter.Today(ctx); err != nil {
		problem("energy", err)
	} else {
		// Today so far against last week's same weekday up to the same
		// time: a whole day would make every morning look frugal.
		snap.Energy = console.EnergyToday{TodayKWh: tv.Today.TotalKWh, LastWeekSameDay: tv.LastWeekSameTime.TotalKWh,
			BoxWatts: tv.BoxWatts}
	}
	if snap.Update, err = b.updateBrief(ctx); err != nil {
		problem("update", err)
	}
	snap.Errors = append(problems, b.errs.list()...)
	return snap, nil
}

func (s *consoleSource) uplinkStatus(now time.Time) console.UplinkStatus {
	b := s.b
	st := b.uplink.State()
	var u console.UplinkStatus
	switch {
	case len(b.cfg.Uplink.ProbeURLs) == 0:
		u.State = console.UplinkOffline // configured so: always offline
	case st.Checked.IsZero():
		u.State = console.UplinkUnknown
	case st.Online:
		u.State = console.UplinkOnline
	default:
		u.State = console.UplinkOffline
	}
	u.Since = st.Changed
	// The rates are what the box's background transfers (hand-ins,
	// catalogue downloads, GLPI) actually moved since the last snapshot.
	var sent, recv int64
	for _, c := range b.handin.sched.Status().Classes {
		sent += c.SentBytes
		recv += c.ReceivedBytes
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if dt := now.Sub(s.rateAt).Seconds(); !s.rateAt.IsZero() && dt >= 1 {
		s.up, s.down = float64(sent-s.sent)*8/dt, float64(recv-s.recv)*8/dt
	}
	if s.rateAt.IsZero() || now.Sub(s.rateAt) >= time.Second {
		s.rateAt, s.sent, s.recv = now, sent, recv
	}
	u.UpBitsPerSec, u.DownBitsPerSec = max(s.up, 0), max(s.down, 0)
	return u
}

// contentUsage measures the content store at most once a minute (Usage
// walks the blob folders).
func (s *consoleSource) contentUsage(ctx context.Context, now time.Time) (content.Usage, error) {
	s.mu.Lock()
	if now.Sub(s.usageAt) < time.Minute {
		u := s.usage
		s.mu.Unlock()
		return u, nil
	}
	s.mu.Unlock()
	u, err := s.b.content.Usage(ctx)
	if err != nil {
		return u, err
	}
	s.mu.Lock()
	s.usage, s.usageAt = u, now
	s.mu.Unlock()
	return u, nil
}

func deviceIP(d inventory.Device) string {
	if d.IP != "" {
		return d.IP
	}
	return d.IPv6
}

// consoleDevices is the inventory as the console sees it. The class
// codes are the same strings in both packages (tablet, laptop, desktop,
// printer, interactive-display, access-point, phone, unknown).
type consoleDevices struct {
	inv  *inventory.Inventory
	lang string
}

func (a consoleDevices) Devices(ctx context.Context) ([]console.Device, error) {
	devs, err := a.inv.Devices(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]console.Device, len(devs))
	for i, d := range devs {
		out[i] = console.Device{MAC: d.MAC, IP: deviceIP(d), Name: d.Name, Vendor: d.VendorLabel(a.lang),
			Class: string(d.Class), ClassSet: d.ClassSet, Randomised: d.Randomised,
			FirstSeen: d.FirstSeen, LastSeen: d.LastSeen, Present: d.Present}
	}
	return out, nil
}

func (a consoleDevices) SetClass(ctx context.Context, mac, class, by string) error {
	err := a.inv.SetClass(ctx, mac, inventory.Class(class), by)
	if errors.Is(err, inventory.ErrNotFound) {
		return &console.Error{Code: "no-device", Err: err,
			FR: fmt.Sprintf("Aucun appareil de l'inventaire n'a l'adresse MAC %s.", mac),
			EN: fmt.Sprintf("No device of the inventory has the MAC address %s.", mac)}
	}
	return err
}

func (a consoleDevices) ExportCSV(ctx context.Context, w io.Writer) error {
	devs, err := a.inv.Devices(ctx)
	if err != nil {
		return err
	}
	return inventory.WriteCSV(w, devs)
}

func (a consoleDevices) ExportGLPI(ctx context.Context, w io.Writer) error {
	_, err := a.inv.WriteGLPIZip(ctx, w)
	return err
}

// consoleEnergy is the energy page's figures.
type consoleEnergy struct {
	m    *energy.Meter
	lang string
}

func (a consoleEnergy) Energy(ctx context.Context) (console.EnergyView, error) {
	var v console.EnergyView
	now := time.Now()
	tv, err := a.m.Today(ctx)
	if err != nil {
		return v, err
	}
	week, err := a.m.Week(ctx, now)
	if err != nil {
		return v, err
	}
	prev, err := a.m.Week(ctx, now.AddDate(0, 0, -7))
	if err != nil {
		return v, err
	}
	alerts, err := a.m.Alerts(ctx, week.From, week.To)
	if err != nil {
		return v, err
	}
	v.BoxWatts = tv.BoxWatts
	switch tv.BoxSource.Kind {
	case energy.SourceRAPL:
		v.BoxSource = console.PowerRAPL
	case energy.SourceBattery:
		v.BoxSource = console.PowerBattery
	case energy.SourceModel:
		v.BoxSource, v.BoxModel = console.PowerEstimate, tv.BoxSource.Of.In(a.lang)
	}
	v.Week, v.PreviousWeek = energyDays(week.Days), energyDays(prev.Days)
	e := week.Electricity
	v.CO2eKgPerKWh, v.FactorSource, v.WeekCO2eKg = e.KgCO2ePerKWh, e.Source, week.CO2eKg
	v.FactorDate = time.Date(e.Year, 1, 1, 0, 0, 0, 0, time.UTC) // the factor describes a year
	for _, al := range alerts {
		v.Alerts = append(v.Alerts, console.LeftOn{MAC: al.Device, Name: al.Name, Class: string(al.Class),
			From: al.FirstSeen, To: al.LastSeen, KWh: al.KWh})
	}
	return v, nil
}

// energyDays turns the meter's days into the console's; a day without
// any figure (not begun, or the box was off and nothing was present) is
// "no data", never zero.
func energyDays(days []energy.DayView) []console.EnergyDay {
	out := make([]console.EnergyDay, len(days))
	for i, d := range days {
		by := make(map[string]float64, len(d.ByClass))
		for c, k := range d.ByClass {
			by[string(c)] = k
		}
		out[i] = console.EnergyDay{Date: d.Start, ByClass: by,
			NoData: d.Future || d.BoxSource.Kind == energy.SourceNone && len(d.Devices) == 0}
	}
	return out
}

// energyPresence is the inventory as the energy meter sees it.
type energyPresence struct{ inv *inventory.Inventory }

func (p energyPresence) Devices(ctx context.Context) ([]energy.Device, error) {
	devs, err := p.inv.Devices(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]energy.Device, len(devs))
	for i, d := range devs {
		out[i] = energy.Device{ID: d.ID, Name: d.Name, Class: energy.Class(d.Class)}
	}
	return out, nil
}

func (p energyPresence) Intervals(ctx context.Context, from, to time.Time) (map[string][]energy.Interval, error) {
	list, err := p.inv.PresentBetween(ctx, from, to)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]energy.Interval, len(list))
	for _, dp := range list {
		ivs := make([]energy.Interval, len(dp.Intervals))
		for i, iv := range dp.Intervals {
			ivs[i] = energy.Interval{From: iv.Start, To: iv.End}
			if iv.Open {
				ivs[i].To = time.Time{} // still present: until now
			}
		}
		out[dp.Device.ID] = ivs
	}
	return out, nil
}

// teacherAuth is the portal's teacher sign-in (services/assignments)
// checked against the console's accounts, which own every password: a
// password changed or an account disabled in the console applies there
// at once. A wrong password or a locked account is a refusal (the form
// says so); an account with a second factor is refused, the teachers'
// form having no code step yet.
func (b *Box) teacherAuth(ctx context.Context, login, password, ip string) (string, bool, error) {
	if b.tech == nil || b.tech.console == nil {
		return "", false, errors.New("teacher sign-in: the console's accounts are not open yet")
	}
	a, err := b.tech.console.Authenticate(ctx, login, password, ip)
	switch {
	case errors.Is(err, console.ErrBadCredentials), errors.Is(err, console.ErrLocked):
		return "", false, nil
	case err != nil:
		return "", false, err
	case a.Disabled || a.TOTP:
		return "", false, nil
	}
	return a.Name, true, nil
}
