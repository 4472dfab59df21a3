package appliance

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // the calendar's zone (Europe/Paris by default) whatever the OS image holds
	"unicode/utf8"

	"preau/appliance/console"
	"preau/appliance/energy"
	"preau/appliance/inventory"
)

// ConsoleConfig is the technician console, served on the LAN under
// /console/ and /api/.
type ConsoleConfig struct {
	// Networks that may reach the console and its API, e.g.
	// ["10.20.0.0/24"] (the staff VLAN, a VPN). Empty (the default): any
	// network may see the sign-in page; every other page still needs an
	// account.
	Networks []string `toml:"networks"`
	// SecureCookies marks the console's cookies Secure on plain HTTP too,
	// for a box behind a TLS front end. Default false (they are Secure on
	// HTTPS anyway).
	SecureCookies bool `toml:"secure_cookies"`
	// IdleTimeout ends a session nobody used for that long. Default "30m".
	IdleTimeout string `toml:"idle_timeout"`
	// SessionLifetime ends a session that long after sign-in. Default "12h".
	SessionLifetime string `toml:"session_lifetime"`
}

// InventoryConfig is the agentless inventory of the school LAN.
type InventoryConfig struct {
	// Interfaces whose neighbour table is read and where DNS-SD is
	// browsed. Default: dhcp.interface when the DHCP server is on, else
	// gateway.lan_interface in gateway mode, else mdns.interfaces. None of
	// them (e.g. under `make run`): the neighbour table and mDNS are not
	// read; DHCP leases, captive acceptances and the portal's visitors
	// still are.
	Interfaces []string `toml:"interfaces"`
	// PresenceTimeout: a device seen within it is present. Default "10m".
	PresenceTimeout string `toml:"presence_timeout"`
	// OUIDir holds the IEEE vendor lists. Default "/usr/share/ieee-data"
	// (Debian package ieee-data).
	OUIDir string `toml:"oui_dir"`
	// GLPIURL is a GLPI server's inventory endpoint, e.g.
	// "https://glpi.example.fr/front/inventory.php". Empty (default): no
	// push.
	GLPIURL string `toml:"glpi_url"`
	// GLPITag is the documents' tag, which GLPI's rules file devices by.
	// Default box.uai.
	GLPITag string `toml:"glpi_tag"`
}

// EnergyConfig is the energy accounting and the school calendar of the
// "left on" alerts.
type EnergyConfig struct {
	// Profile of the CPU model when nothing measures the box: "rpi4",
	// "rpi5", "n100" or "x86". Default "": guessed from the hardware.
	Profile string `toml:"profile"`
	// BoxSource forces the box's power source: "auto" (default: RAPL,
	// else a discharging battery or UPS, else the CPU model), "rapl",
	// "battery" or "model".
	BoxSource string `toml:"box_source"`
	// SamplePeriod between two samples. Default "60s".
	SamplePeriod string `toml:"sample_period"`
	// Timezone of the school's calendar. Default "Europe/Paris".
	Timezone string `toml:"timezone"`
	// SchoolHours by weekday ("mon" … "sun", or "lun" … "dim"), e.g.
	// wed = "08:30-11:30"; "-" closes the day. Days not listed keep the
	// default week: Mon, Tue, Thu, Fri 08:00–17:00, Wed 08:00–12:00.
	SchoolHours map[string]string `toml:"school_hours"`
	// Holidays, e.g. ["2026-12-19..2027-01-03"]; Closed, single closed
	// days, e.g. ["2027-05-07"].
	Holidays []string `toml:"holidays"`
	Closed   []string `toml:"closed"`
	// LeftOnAfter: a device present longer than this during one
	// out-of-hours period raises a "left on" alert. Default "30m".
	LeftOnAfter string `toml:"left_on_after"`
	// Watts by device class replace the built-in estimates, e.g.
	// {"interactive-display" = 180}.
	Watts map[string]float64 `toml:"watts"`
	// The electricity's CO₂e factor, kg per kWh, with its source and the
	// year it describes. Default: ADEME Base Empreinte, France mainland,
	// 2022, 0.052.
	ElectricityFactor float64 `toml:"electricity_kgco2e_per_kwh"`
	ElectricitySource string  `toml:"electricity_source"`
	ElectricityYear   int     `toml:"electricity_year"`
}

func consoleDefaults(c *Config) {
	c.Console = ConsoleConfig{IdleTimeout: "30m", SessionLifetime: "12h"}
	c.Inventory = InventoryConfig{PresenceTimeout: "10m", OUIDir: inventory.DefaultOUIDir}
	e := energy.DefaultElectricity()
	c.Energy = EnergyConfig{BoxSource: energy.BoxAuto, SamplePeriod: "60s", Timezone: energy.DefaultTimezone,
		LeftOnAfter: "30m", ElectricityFactor: e.KgCO2ePerKWh, ElectricitySource: e.Source, ElectricityYear: e.Year}
}

// weekdays maps the school_hours keys, English and French, to weekdays.
var weekdays = map[string]time.Weekday{
	"mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday,
	"fri": time.Friday, "sat": time.Saturday, "sun": time.Sunday,
	"lun": time.Monday, "mar": time.Tuesday, "mer": time.Wednesday, "jeu": time.Thursday,
	"ven": time.Friday, "sam": time.Saturday, "dim": time.Sunday,
}

func (c Config) consoleProblems(bad func(key, fr, en string)) {
	cc := c.Console
	for _, p := range cc.Networks {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad("console.networks", fmt.Sprintf("« %s » n'est pas un réseau ; attendu par ex. « 10.20.0.0/24 »", p),
				fmt.Sprintf("%q is not a network; expected e.g. \"10.20.0.0/24\"", p))
		}
	}
	checkDurationBad(bad, "console.idle_timeout", cc.IdleTimeout, time.Minute, 24*time.Hour)
	checkDurationBad(bad, "console.session_lifetime", cc.SessionLifetime, 5*time.Minute, 30*24*time.Hour)
	idle, err1 := time.ParseDuration(cc.IdleTimeout)
	life, err2 := time.ParseDuration(cc.SessionLifetime)
	if err1 == nil && err2 == nil && idle >= time.Minute && idle <= 24*time.Hour && life >= 5*time.Minute {
		if idle > life {
			bad("console.idle_timeout", "plus long que console.session_lifetime", "longer than console.session_lifetime")
		}
	}

	ic := c.Inventory
	for _, name := range ic.Interfaces {
		if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t\n") {
			bad("inventory.interfaces", fmt.Sprintf("« %s » n'est pas un nom d'interface ; attendu par ex. « eth1 » ou « br0 »", name),
				fmt.Sprintf("%q is not an interface name; expected e.g. \"eth1\" or \"br0\"", name))
		}
	}
	checkDurationBad(bad, "inventory.presence_timeout", ic.PresenceTimeout, 10*time.Second, 24*time.Hour)
	if strings.TrimSpace(ic.OUIDir) == "" {
		bad("inventory.oui_dir", "chemin vide ; attendu un dossier, par ex. « /usr/share/ieee-data »",
			"empty path; expected a folder, e.g. \"/usr/share/ieee-data\"")
	}
	if ic.GLPIURL != "" {
		u, err := url.Parse(ic.GLPIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			bad("inventory.glpi_url", fmt.Sprintf("« %s » ne convient pas ; attendu l'adresse http(s) du point d'inventaire, sans identifiants, par ex. « https://glpi.example.fr/front/inventory.php »", ic.GLPIURL),
				fmt.Sprintf("%q is not usable; expected the inventory endpoint's http(s) address, without credentials, e.g. \"https://glpi.example.fr/front/inventory.php\"", ic.GLPIURL))
		}
	}
	if len(ic.GLPITag) > 200 || !utf8.ValidString(ic.GLPITag) || strings.ContainsFunc(ic.GLPITag, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		bad("inventory.glpi_tag", "trop long ou avec des caractères de contrôle ; attendu un texte court, par ex. l'UAI",
			"too long or with control characters; expected a short text, e.g. the UAI")
	}

	ec := c.Energy
	if ec.Profile != "" && !slices.ContainsFunc(energy.DefaultProfiles(), func(p energy.Profile) bool { return p.Name == ec.Profile }) {
		bad("energy.profile", fmt.Sprintf("« %s » inconnu ; attendu : %s, ou rien pour le deviner", ec.Profile, profileNames()),
			fmt.Sprintf("%q unknown; expected %s, or nothing to guess it", ec.Profile, profileNames()))
	}
	switch ec.BoxSource {
	case energy.BoxAuto, energy.BoxRAPL, energy.BoxBattery, energy.BoxModel:
	default:
		bad("energy.box_source", fmt.Sprintf("« %s » inconnu ; attendu : auto, rapl, battery ou model", ec.BoxSource),
			fmt.Sprintf("%q unknown; expected auto, rapl, battery or model", ec.BoxSource))
	}
	checkDurationBad(bad, "energy.sample_period", ec.SamplePeriod, time.Second, time.Hour)
	if _, err := time.LoadLocation(ec.Timezone); err != nil || ec.Timezone == "" || ec.Timezone == "Local" {
		bad("energy.timezone", fmt.Sprintf("« %s » n'est pas un fuseau horaire ; attendu par ex. « Europe/Paris » ou « Indian/Reunion »", ec.Timezone),
			fmt.Sprintf("%q is not a time zone; expected e.g. \"Europe/Paris\" or \"Indian/Reunion\"", ec.Timezone))
	}
	seen := map[time.Weekday]string{}
	for _, k := range sortedKeysOf(ec.SchoolHours) {
		key := "energy.school_hours." + k
		wd, ok := weekdays[strings.ToLower(k)]
		if !ok {
			bad(key, "jour inconnu ; attendu mon, tue, wed, thu, fri, sat, sun (ou lun, mar, mer, jeu, ven, sam, dim)",
				"unknown day; expected mon, tue, wed, thu, fri, sat, sun (or lun, mar, mer, jeu, ven, sam, dim)")
			continue
		}
		if other, dup := seen[wd]; dup {
			bad(key, "jour déjà donné par energy.school_hours."+other, "day already given by energy.school_hours."+other)
			continue
		}
		seen[wd] = k
		if _, err := energy.ParseSpans(ec.SchoolHours[k]); err != nil {
			v := ec.SchoolHours[k]
			bad(key, fmt.Sprintf("« %s » ne convient pas ; attendu des plages « HH:MM-HH:MM » séparées par des virgules, par ex. « 08:30-12:00,13:30-16:30 », ou « - » pour un jour fermé", v),
				fmt.Sprintf("%q is not usable; expected \"HH:MM-HH:MM\" ranges separated by commas, e.g. \"08:30-12:00,13:30-16:30\", or \"-\" for a closed day", v))
		}
	}
	for _, h := range ec.Holidays {
		if _, err := energy.ParseDateRange(h); err != nil {
			bad("energy.holidays", fmt.Sprintf("« %s » ne convient pas ; attendu « AAAA-MM-JJ..AAAA-MM-JJ », par ex. « 2026-12-19..2027-01-03 »", h),
				fmt.Sprintf("%q is not usable; expected \"YYYY-MM-DD..YYYY-MM-DD\", e.g. \"2026-12-19..2027-01-03\"", h))
		}
	}
	for _, d := range ec.Closed {
		if _, err := energy.ParseDate(d); err != nil {
			bad("energy.closed", fmt.Sprintf("« %s » n'est pas une date ; attendu « AAAA-MM-JJ », par ex. « 2027-05-07 »", d),
				fmt.Sprintf("%q is not a date; expected \"YYYY-MM-DD\", e.g. \"2027-05-07\"", d))
		}
	}
	checkDurationBad(bad, "energy.left_on_after", ec.LeftOnAfter, time.Second, 24*time.Hour)
	for _, k := range sortedKeysOf(ec.Watts) {
		if !slices.Contains(console.Classes, k) {
			bad("energy.watts."+k, fmt.Sprintf("classe inconnue ; attendu : %s", strings.Join(console.Classes, ", ")),
				fmt.Sprintf("unknown class; expected %s", strings.Join(console.Classes, ", ")))
		} else if w := ec.Watts[k]; w < 0 || w > 5000 {
			bad("energy.watts."+k, "hors limites ; attendu entre 0 et 5000 watts", "out of range; expected between 0 and 5000 watts")
		}
	}
	if f := ec.ElectricityFactor; f < 0 || f > 2 {
		bad("energy.electricity_kgco2e_per_kwh", "hors limites ; attendu entre 0 et 2 kg CO₂e par kWh (par ex. 0.052)",
			"out of range; expected between 0 and 2 kg CO₂e per kWh (e.g. 0.052)")
	}
	if strings.TrimSpace(ec.ElectricitySource) == "" || len(ec.ElectricitySource) > 300 {
		bad("energy.electricity_source", "obligatoire ; dites d'où vient le facteur (300 caractères au plus), par ex. « ADEME Base Empreinte »",
			"required; say where the factor comes from (at most 300 characters), e.g. \"ADEME Base Empreinte\"")
	}
	if y := ec.ElectricityYear; y < 1990 || y > 2100 {
		bad("energy.electricity_year", "hors limites ; attendu l'année que décrit le facteur, par ex. 2024",
			"out of range; expected the year the factor describes, e.g. 2024")
	}

}

// componentProblems runs the components' own validation on a file whose
// keys are all fine (problems calls it last), so that a file this accepts
// never fails at start-up.
func (c Config) componentProblems(bad func(key, fr, en string)) {
	if _, err := c.consoleConfig(); err != nil {
		bad("console", "réglages refusés : "+err.Error(), "settings refused: "+err.Error())
	}
	if err := c.inventoryConfig(nil).Validate(); err != nil {
		bad("inventory", "réglages refusés : "+err.Error(), "settings refused: "+err.Error())
	}
	if c.Inventory.GLPIURL != "" {
		if err := c.glpiConfig().WithDefaults().Validate(); err != nil {
			bad("inventory.glpi_url", "réglage refusé : "+err.Error(), "setting refused: "+err.Error())
		}
	}
	if err := c.energyConfig().WithDefaults().Validate(); err != nil {
		bad("energy", "réglages refusés : "+err.Error(), "settings refused: "+err.Error())
	}
}

func profileNames() string {
	var names []string
	for _, p := range energy.DefaultProfiles() {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

func sortedKeysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// consoleConfig is the console's configuration (validated keys).
func (c Config) consoleConfig() (console.Config, error) {
	cc := console.Config{SchoolName: c.Box.Name, DefaultLanguage: c.Portal.Language, SecureCookies: c.Console.SecureCookies,
		IdleTimeout: mustDuration(c.Console.IdleTimeout), SessionLifetime: mustDuration(c.Console.SessionLifetime)}
	for _, p := range c.Console.Networks {
		pp, _ := netip.ParsePrefix(p)
		cc.Networks = append(cc.Networks, pp.Masked())
	}
	cc = cc.WithDefaults()
	return cc, cc.Validate()
}

// lanInterfaces are the inventory's interfaces: the configured ones, else
// the LAN interfaces other settings name.
func (c Config) lanInterfaces() []string {
	if len(c.Inventory.Interfaces) > 0 {
		return c.Inventory.Interfaces
	}
	var out []string
	if c.DHCP.Enabled && c.DHCP.Interface != "" {
		out = append(out, c.DHCP.Interface)
	}
	if c.Gateway.Enabled && c.Gateway.LANInterface != "" {
		out = append(out, c.Gateway.LANInterface)
	}
	out = append(out, c.MDNS.Interfaces...)
	return uniqueStrings(out)
}

// noInterface stands in for the inventory's interface list when the box
// knows no LAN interface: inventory.Config requires one, and only Serve
// (the neighbour and DNS-SD collectors, not run then) uses it.
const noInterface = "lo"

// inventoryConfig is the inventory's configuration; ifaces nil means
// lanInterfaces (or noInterface when there is none).
func (c Config) inventoryConfig(ifaces []string) inventory.Config {
	if ifaces == nil {
		ifaces = c.lanInterfaces()
	}
	if len(ifaces) == 0 {
		ifaces = []string{noInterface}
	}
	tag := c.Inventory.GLPITag
	if tag == "" {
		tag = c.Box.UAI
	}
	return inventory.Config{Interfaces: ifaces, PresenceTimeout: mustDuration(c.Inventory.PresenceTimeout),
		OUIDir: c.Inventory.OUIDir, GLPITag: tag, Version: version}.WithDefaults()
}

func (c Config) glpiConfig() inventory.GLPIConfig {
	return inventory.GLPIConfig{URL: c.Inventory.GLPIURL}
}

// energyConfig is the energy component's configuration (validated keys).
func (c Config) energyConfig() energy.Config {
	ec := c.Energy
	cfg := energy.Config{Profile: ec.Profile, BoxSource: ec.BoxSource, SamplePeriod: mustDuration(ec.SamplePeriod),
		Electricity: energy.ElectricityFactor{KgCO2ePerKWh: ec.ElectricityFactor, Year: ec.ElectricityYear, Source: ec.ElectricitySource},
		LeftOn:      energy.LeftOn{Threshold: mustDuration(ec.LeftOnAfter)}}
	cfg.Calendar.Timezone = ec.Timezone
	if len(ec.SchoolHours) > 0 {
		cfg.Calendar.Hours = energy.DefaultHours()
		for k, v := range ec.SchoolHours {
			if wd, ok := weekdays[strings.ToLower(k)]; ok {
				spans, _ := energy.ParseSpans(v)
				cfg.Calendar.Hours[wd] = spans
			}
		}
	}
	for _, h := range ec.Holidays {
		if r, err := energy.ParseDateRange(h); err == nil {
			cfg.Calendar.Holidays = append(cfg.Calendar.Holidays, r)
		}
	}
	for _, d := range ec.Closed {
		if day, err := energy.ParseDate(d); err == nil {
			cfg.Calendar.Closed = append(cfg.Calendar.Closed, day)
		}
	}
	for _, p := range energy.DefaultClasses() {
		if w, ok := ec.Watts[string(p.Class)]; ok {
			p.Watts, p.WattsSource = w, "réglé par le technicien (energy.watts)"
			cfg.Classes = append(cfg.Classes, p)
		}
	}
	return cfg
}

var consoleKeyTypes = func() map[string][2]string {
	text := [2]string{"un texte entre guillemets", "quoted text"}
	dur := [2]string{"une durée entre guillemets, par ex. \"30m\"", "a quoted duration, e.g. \"30m\""}
	list := [2]string{"une liste de textes, par ex. [\"a\", \"b\"]", "a list of quoted texts, e.g. [\"a\", \"b\"]"}
	num := [2]string{"un nombre, par ex. 0.052", "a number, e.g. 0.052"}
	m := map[string][2]string{
		"console": table(), "inventory": table(), "energy": table(),
		"console.networks": list, "console.secure_cookies": {"true ou false", "true or false"},
		"console.idle_timeout": dur, "console.session_lifetime": dur,
		"inventory.interfaces": list, "inventory.presence_timeout": dur, "inventory.oui_dir": text,
		"inventory.glpi_url": text, "inventory.glpi_tag": text,
		"energy.profile": text, "energy.box_source": text, "energy.sample_period": dur, "energy.timezone": text,
		"energy.school_hours": {"une section de jours, par ex. mon = \"08:00-12:00\"", "a table of days, e.g. mon = \"08:00-12:00\""},
		"energy.holidays":     list, "energy.closed": list, "energy.left_on_after": dur,
		"energy.watts":                      {"une section de classes, par ex. tablet = 5", "a table of classes, e.g. tablet = 5"},
		"energy.electricity_kgco2e_per_kwh": num, "energy.electricity_source": text,
		"energy.electricity_year": {"un nombre entier, par ex. 2024", "a whole number, e.g. 2024"},
	}
	for day := range weekdays {
		m["energy.school_hours."+day] = [2]string{"des plages entre guillemets, par ex. \"08:30-12:00,13:30-16:30\"",
			"quoted ranges, e.g. \"08:30-12:00,13:30-16:30\""}
	}
	for _, class := range console.Classes {
		m["energy.watts."+class] = [2]string{"un nombre de watts, par ex. 5", "a number of watts, e.g. 5"}
	}
	return m
}()
