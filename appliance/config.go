package appliance

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// ConfigVersion is the version of the configuration file this program
// writes and reads. Older files are migrated in memory by configMigrations.
const ConfigVersion = 1

// Production defaults (SPEC §3). `make run` overrides them with flags.
const (
	DefaultConfigPath = "/etc/preau/preau.toml"
	DefaultDataDir    = "/var/lib/preau"
	DefaultHTTPAddr   = ":80"
)

// Config is the whole configuration file, one table per component. Every
// field has a documented default, applied by Defaults; Validate checks the
// values and reports each problem with its key and line.
type Config struct {
	// Version of the file format; required.
	Version int           `toml:"version"`
	Box     BoxConfig     `toml:"box"`
	HTTP    HTTPConfig    `toml:"http"`
	Content ContentConfig `toml:"content"`
	Portal  PortalConfig  `toml:"portal"`
	Uplink  UplinkConfig  `toml:"uplink"`
	Log     LogConfig     `toml:"log"`
	Captive CaptiveConfig `toml:"captive"`
	DNS     DNSConfig     `toml:"dns"`
	MDNS    MDNSConfig    `toml:"mdns"`
	DHCP    DHCPConfig    `toml:"dhcp"`
	Gateway GatewayConfig `toml:"gateway"`
	Sync    SyncConfig    `toml:"sync"`
	Catalog CatalogConfig `toml:"catalog"`
	Cache   CacheConfig   `toml:"cache"`
	Update  UpdateConfig  `toml:"update"`
	// Console, Inventory and Energy: the technician console, the LAN
	// inventory and the energy accounting.
	Console   ConsoleConfig   `toml:"console"`
	Inventory InventoryConfig `toml:"inventory"`
	Energy    EnergyConfig    `toml:"energy"`
	// Assignments: limits of pupils' hand-ins.
	Assignments AssignmentsConfig `toml:"assignments"`
	// Destinations of hand-ins, by id: [destinations.nuage-cm2].
	Destinations map[string]DestinationConfig `toml:"destinations"`
}

// BoxConfig names the school and says where the box keeps its state.
type BoxConfig struct {
	// Name shown on the portal. Default "Préau".
	Name string `toml:"name"`
	// UAI is the school's identifier (7 digits and a letter), optional.
	UAI string `toml:"uai"`
	// DataDir holds the database, the content store and the outbox.
	// Default /var/lib/preau.
	DataDir string `toml:"data_dir"`
}

// HTTPConfig is the LAN web server.
type HTTPConfig struct {
	// Listen addresses. Default [":80"]. Ignored under socket activation.
	Listen []string `toml:"listen"`
	// ShutdownTimeout lets in-flight requests finish on stop. Default "15s".
	ShutdownTimeout string `toml:"shutdown_timeout"`
}

// ContentConfig bounds what a content pack may hold.
type ContentConfig struct {
	// MaxPackSize, e.g. "64GiB" (default).
	MaxPackSize string `toml:"max_pack_size"`
	// MaxFileSize, e.g. "16GiB" (default).
	MaxFileSize string `toml:"max_file_size"`
	// MaxStoreSize is the store's quota, e.g. "200GiB"; "" (default) means
	// 90 % of the disk. Catalogue content past it is evicted, least
	// recently used first, never what a teacher pinned.
	MaxStoreSize string `toml:"max_store_size"`
	// MinFree is kept free on the disk by downloads. Default "512MiB".
	MinFree string `toml:"min_free"`
	// ScrubRate is the nightly re-hash's read rate per second. Default "8MiB".
	ScrubRate string `toml:"scrub_rate"`
}

// PortalConfig is the pupils' portal.
type PortalConfig struct {
	// Language by default: "fr" (default) or "en".
	Language string `toml:"language"`
}

// UplinkConfig says how the box learns whether the internet is reachable.
type UplinkConfig struct {
	// ProbeURLs are fetched with HEAD; any answer means online.
	// Default ["https://apps.education.fr/"]. Empty: always offline.
	ProbeURLs []string `toml:"probe_urls"`
	// Interval between probes while online. Default "5m".
	Interval string `toml:"interval"`
}

// LogConfig is the logging setup.
type LogConfig struct {
	// Level: debug, info (default), warn, error.
	Level string `toml:"level"`
	// Format: auto (default: journal under systemd, text otherwise), text, json, journal.
	Format string `toml:"format"`
}

// Defaults returns the configuration used when no file exists.
func Defaults() Config {
	c := Config{
		Version: ConfigVersion,
		Box:     BoxConfig{Name: "Préau", DataDir: DefaultDataDir},
		HTTP:    HTTPConfig{Listen: []string{DefaultHTTPAddr}, ShutdownTimeout: "15s"},
		Content: ContentConfig{MaxPackSize: "64GiB", MaxFileSize: "16GiB"},
		Portal:  PortalConfig{Language: "fr"},
		Uplink:  UplinkConfig{ProbeURLs: []string{"https://apps.education.fr/"}, Interval: "5m"},
		Log:     LogConfig{Level: "info", Format: "auto"},
	}
	lanDefaults(&c)
	syncDefaults(&c)
	catalogDefaults(&c)
	updateDefaults(&c)
	consoleDefaults(&c)
	return c
}

// Problem is one thing wrong in a configuration file, in French and English.
type Problem struct {
	Line int    // 0 when unknown (e.g. a key left out)
	Key  string // dotted key, e.g. "http.listen"
	FR   string
	EN   string
}

// ConfigError lists every problem found in a file, so the technician fixes
// them in one go rather than one per restart.
type ConfigError struct {
	File     string
	Problems []Problem
}

func (e *ConfigError) Error() string { return e.Localized("fr") }

// Localized renders the problems in lang ("fr" or "en"), one per line,
// as "file:line: key: message".
func (e *ConfigError) Localized(lang string) string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
		if p.Key != "" {
			b.WriteString(p.Key)
			if lang == "en" {
				b.WriteString(": ")
			} else {
				b.WriteString(" : ") // French typography: space before the colon
			}
		}
		if lang == "en" {
			b.WriteString(p.EN)
		} else {
			b.WriteString(p.FR)
		}
	}
	return b.String()
}

// configMigrations[i] rewrites a decoded file of version i+1 into version
// i+2, on the generic map before typed decoding. Version 1 is the first
// released format, so the list is empty; the test suite keeps a fixture of
// every released version under testdata/config/.
var configMigrations = []func(map[string]any) error{}

// LoadConfig reads, migrates, decodes and validates the file at path.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, &ConfigError{File: path, Problems: []Problem{{
			FR: fmt.Sprintf("impossible de lire le fichier (%v)", errors.Unwrap(err)),
			EN: fmt.Sprintf("cannot read the file (%v)", errors.Unwrap(err)),
		}}}
	}
	return ParseConfig(path, data)
}

// ParseConfig is LoadConfig on bytes already read; name is used in messages.
func ParseConfig(name string, data []byte) (Config, error) {
	lines, perr := keyLines(data)
	if perr != nil {
		return Config{}, &ConfigError{File: name, Problems: []Problem{*perr}}
	}
	var raw map[string]any
	if err := toml.Unmarshal(data, &raw); err != nil {
		return Config{}, &ConfigError{File: name, Problems: []Problem{decodeProblem(err, lines)}}
	}
	ver, ok := raw["version"].(int64)
	switch {
	case !ok:
		return Config{}, &ConfigError{File: name, Problems: []Problem{{Line: 1, Key: "version",
			FR: fmt.Sprintf("clé obligatoire absente ; ajoutez « version = %d » en tête du fichier", ConfigVersion),
			EN: fmt.Sprintf("required key missing; add \"version = %d\" at the top of the file", ConfigVersion)}}}
	case ver < 1 || ver > ConfigVersion:
		return Config{}, &ConfigError{File: name, Problems: []Problem{{Line: lines["version"], Key: "version",
			FR: fmt.Sprintf("version %d inconnue ; ce programme lit les versions %d au plus (fichier écrit par une version plus récente de preau ?)", ver, ConfigVersion),
			EN: fmt.Sprintf("unknown version %d; this program reads versions up to %d (file written by a newer preau?)", ver, ConfigVersion)}}}
	}
	if int(ver) < ConfigVersion {
		for _, m := range configMigrations[ver-1:] {
			if err := m(raw); err != nil {
				return Config{}, &ConfigError{File: name, Problems: []Problem{{Key: "version",
					FR: fmt.Sprintf("migration depuis la version %d impossible : %v", ver, err),
					EN: fmt.Sprintf("cannot migrate from version %d: %v", ver, err)}}}
			}
		}
		raw["version"] = int64(ConfigVersion)
		var err error
		if data, err = toml.Marshal(raw); err != nil {
			return Config{}, fmt.Errorf("migrate config %s: %w", name, err)
		}
		lines = map[string]int{} // lines refer to the old layout
	}

	cfg := Defaults()
	cfg.HTTP.Listen, cfg.Uplink.ProbeURLs = nil, nil
	cfg.Captive.HTTPSListen, cfg.DNS.Listen, cfg.DNS.ShortNames = nil, nil, nil
	cfg.Cache.ConnectPorts = nil
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, &ConfigError{File: name, Problems: decodeProblems(err, lines)}
	}
	if _, set := lookup(raw, "http.listen"); !set {
		cfg.HTTP.Listen = Defaults().HTTP.Listen
	}
	if _, set := lookup(raw, "uplink.probe_urls"); !set {
		cfg.Uplink.ProbeURLs = Defaults().Uplink.ProbeURLs
	}
	def := Defaults()
	if _, set := lookup(raw, "cache.connect_ports"); !set {
		cfg.Cache.ConnectPorts = def.Cache.ConnectPorts
	}
	for _, k := range lanListKeys {
		if _, set := lookup(raw, k); set {
			continue
		}
		switch k {
		case "captive.https_listen":
			cfg.Captive.HTTPSListen = def.Captive.HTTPSListen
		case "dns.listen":
			cfg.DNS.Listen = def.DNS.Listen
		case "dns.short_names":
			cfg.DNS.ShortNames = def.DNS.ShortNames
		}
	}
	if probs := cfg.problems(); len(probs) > 0 {
		for i := range probs {
			probs[i].Line = lines[probs[i].Key]
		}
		return Config{}, &ConfigError{File: name, Problems: probs}
	}
	return cfg, nil
}

// Validate checks a configuration built in code (flags, tests).
func (c Config) Validate() error {
	if p := c.problems(); len(p) > 0 {
		return &ConfigError{File: "(configuration)", Problems: p}
	}
	return nil
}

var (
	uaiRe      = regexp.MustCompile(`^[0-9]{7}[A-Z]$`)
	sizeRe     = regexp.MustCompile(`^([0-9]+)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|)$`)
	sizeFactor = map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
)

func (c Config) problems() []Problem {
	var ps []Problem
	bad := func(key, fr, en string) { ps = append(ps, Problem{Key: key, FR: fr, EN: en}) }
	if strings.TrimSpace(c.Box.Name) == "" || len(c.Box.Name) > 120 {
		bad("box.name", "nom vide ou trop long ; attendu : le nom de l'école (120 caractères au plus)",
			"empty or too long; expected the school's name (at most 120 characters)")
	}
	if c.Box.UAI != "" && !uaiRe.MatchString(c.Box.UAI) {
		bad("box.uai", fmt.Sprintf("« %s » n'est pas un UAI ; attendu : 7 chiffres et une lettre majuscule, par ex. « 0350001A »", c.Box.UAI),
			fmt.Sprintf("%q is not a UAI; expected 7 digits and an upper-case letter, e.g. \"0350001A\"", c.Box.UAI))
	}
	if c.Box.DataDir == "" {
		bad("box.data_dir", "chemin vide ; attendu : un dossier, par ex. « /var/lib/preau »",
			"empty path; expected a folder, e.g. \"/var/lib/preau\"")
	}
	if len(c.HTTP.Listen) == 0 {
		bad("http.listen", "aucune adresse ; attendu : une liste, par ex. [\":80\"]",
			"no address; expected a list, e.g. [\":80\"]")
	}
	for _, a := range c.HTTP.Listen {
		if _, port, err := net.SplitHostPort(a); err != nil || !validPort(port) {
			bad("http.listen", fmt.Sprintf("« %s » n'est pas une adresse d'écoute ; attendu : « hôte:port », par ex. « :80 » ou « 127.0.0.1:8080 »", a),
				fmt.Sprintf("%q is not a listen address; expected \"host:port\", e.g. \":80\" or \"127.0.0.1:8080\"", a))
		}
	}
	checkDuration(&ps, "http.shutdown_timeout", c.HTTP.ShutdownTimeout, time.Second, 10*time.Minute)
	checkSize(&ps, "content.max_pack_size", c.Content.MaxPackSize)
	checkSize(&ps, "content.max_file_size", c.Content.MaxFileSize)
	if c.Portal.Language != "fr" && c.Portal.Language != "en" {
		bad("portal.language", fmt.Sprintf("« %s » non pris en charge ; attendu : « fr » ou « en »", c.Portal.Language),
			fmt.Sprintf("%q not supported; expected \"fr\" or \"en\"", c.Portal.Language))
	}
	for _, u := range c.Uplink.ProbeURLs {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad("uplink.probe_urls", fmt.Sprintf("« %s » n'est pas une URL http(s) ; attendu par ex. « https://apps.education.fr/ »", u),
				fmt.Sprintf("%q is not an http(s) URL; expected e.g. \"https://apps.education.fr/\"", u))
		}
	}
	checkDuration(&ps, "uplink.interval", c.Uplink.Interval, 10*time.Second, 24*time.Hour)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", fmt.Sprintf("« %s » inconnu ; attendu : debug, info, warn ou error", c.Log.Level),
			fmt.Sprintf("%q unknown; expected debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "auto", "text", "json", "journal":
	default:
		bad("log.format", fmt.Sprintf("« %s » inconnu ; attendu : auto, text, json ou journal", c.Log.Format),
			fmt.Sprintf("%q unknown; expected auto, text, json or journal", c.Log.Format))
	}
	c.lanProblems(bad)
	c.syncProblems(bad)
	c.catalogProblems(bad)
	c.updateProblems(bad)
	c.consoleProblems(bad)
	if len(ps) == 0 {
		c.componentProblems(bad)
	}
	return ps
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}

func checkDuration(ps *[]Problem, key, v string, min, max time.Duration) {
	d, err := time.ParseDuration(v)
	if err != nil {
		*ps = append(*ps, Problem{Key: key,
			FR: fmt.Sprintf("« %s » n'est pas une durée ; attendu par ex. « 30s », « 5m » ou « 1h »", v),
			EN: fmt.Sprintf("%q is not a duration; expected e.g. \"30s\", \"5m\" or \"1h\"", v)})
		return
	}
	if d < min || d > max {
		*ps = append(*ps, Problem{Key: key,
			FR: fmt.Sprintf("%s hors limites ; attendu entre %s et %s", d, min, max),
			EN: fmt.Sprintf("%s out of range; expected between %s and %s", d, min, max)})
	}
}

func checkSize(ps *[]Problem, key, v string) {
	if _, err := ParseSize(v); err != nil {
		*ps = append(*ps, Problem{Key: key,
			FR: fmt.Sprintf("« %s » n'est pas une taille ; attendu par ex. « 500MB » ou « 16GiB »", v),
			EN: fmt.Sprintf("%q is not a size; expected e.g. \"500MB\" or \"16GiB\"", v)})
	}
}

// ParseSize reads "16GiB", "500MB", "1024" into bytes.
func ParseSize(s string) (int64, error) {
	m := sizeRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("parse size %q: want a number and a unit such as MB or GiB", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	f := sizeFactor[m[2]]
	if err != nil || n <= 0 || n > (1<<62)/f {
		return 0, fmt.Errorf("parse size %q: out of range", s)
	}
	return n * f, nil
}

func mustDuration(s string) time.Duration {
	d, _ := time.ParseDuration(s) // validated
	return d
}

func mustSize(s string) int64 {
	n, _ := ParseSize(s) // validated
	return n
}

// lookup finds a dotted key in the generic decoded document.
func lookup(m map[string]any, key string) (any, bool) {
	parts := strings.Split(key, ".")
	var cur any = m
	for _, p := range parts {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// keyLines maps every dotted key of the document to the line where it is
// set, so validation messages can point at the line. It also reports
// syntax errors with their line.
func keyLines(data []byte) (map[string]int, *Problem) {
	lines := map[string]int{}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		keys, line := nodeKey(&p, e)
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keys
			lines[strings.Join(keys, ".")] = line
		case unstable.KeyValue:
			full := append(append([]string{}, table...), keys...)
			lines[strings.Join(full, ".")] = line
		}
	}
	if err := p.Error(); err != nil {
		var pe *unstable.ParserError
		line := 0
		msg := err.Error()
		if errors.As(err, &pe) {
			line = p.Shape(p.Range(pe.Highlight)).Start.Line
			msg = pe.Message
		}
		return nil, &Problem{Line: line,
			FR: fmt.Sprintf("erreur de syntaxe TOML (%s) ; vérifiez guillemets, crochets et signes « = »", msg),
			EN: fmt.Sprintf("TOML syntax error (%s); check quotes, brackets and \"=\" signs", msg)}
	}
	return lines, nil
}

func nodeKey(p *unstable.Parser, e *unstable.Node) ([]string, int) {
	var keys []string
	line := 0
	it := e.Key()
	for it.Next() {
		n := it.Node()
		keys = append(keys, string(n.Data))
		if line == 0 && n.Raw.Length > 0 {
			line = p.Shape(n.Raw).Start.Line
		}
	}
	return keys, line
}

func decodeProblems(err error, lines map[string]int) []Problem {
	var sm *toml.StrictMissingError
	if errors.As(err, &sm) {
		var ps []Problem
		for _, de := range sm.Errors {
			row, _ := de.Position()
			key := strings.Join(de.Key(), ".")
			ps = append(ps, Problem{Line: row, Key: key,
				FR: fmt.Sprintf("clé inconnue ; clés possibles ici : %s", knownKeys(key)),
				EN: fmt.Sprintf("unknown key; keys allowed here: %s", knownKeys(key))})
		}
		return ps
	}
	return []Problem{decodeProblem(err, lines)}
}

func decodeProblem(err error, lines map[string]int) Problem {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		if key == "" {
			// Type errors carry a position but not always the key: take
			// the longest key set on that line.
			for k, l := range lines {
				if l == row && len(k) > len(key) {
					key = k
				}
			}
		}
		exp, ok := keyTypes[key]
		if !ok {
			exp = [2]string{"le type indiqué dans la documentation", "the type given in the documentation"}
		}
		return Problem{Line: row, Key: key,
			FR: "type de valeur incorrect ; attendu : " + exp[0],
			EN: "wrong type of value; expected " + exp[1]}
	}
	return Problem{FR: fmt.Sprintf("fichier illisible : %v", err), EN: fmt.Sprintf("unreadable file: %v", err)}
}

// keyTypes describes each key's type for the technician, in French and English.
var keyTypes = func() map[string][2]string {
	text := [2]string{"un texte entre guillemets", "quoted text"}
	dur := [2]string{"une durée entre guillemets, par ex. \"30s\"", "a quoted duration, e.g. \"30s\""}
	size := [2]string{"une taille entre guillemets, par ex. \"16GiB\"", "a quoted size, e.g. \"16GiB\""}
	table := [2]string{"une section [nom]", "a [name] table"}
	return map[string][2]string{
		"version": {"un nombre entier, par ex. 1", "a whole number, e.g. 1"},
		"box":     table, "http": table, "content": table, "portal": table, "uplink": table, "log": table,
		"box.name": text, "box.uai": text, "box.data_dir": text,
		"http.listen":           {"une liste de textes, par ex. [\":80\"]", "a list of quoted texts, e.g. [\":80\"]"},
		"http.shutdown_timeout": dur,
		"content.max_pack_size": size, "content.max_file_size": size,
		"portal.language":   text,
		"uplink.probe_urls": {"une liste d'URL entre guillemets", "a list of quoted URLs"},
		"uplink.interval":   dur,
		"log.level":         text, "log.format": text,
	}
}()

func init() {
	for _, m := range []map[string][2]string{lanKeyTypes, syncKeyTypes, catalogKeyTypes, consoleKeyTypes, updateKeyTypes} {
		for k, v := range m {
			keyTypes[k] = v
		}
	}
}

// knownKeys lists the keys allowed in the table that holds key.
func knownKeys(key string) string {
	table := ""
	if i := strings.LastIndex(key, "."); i >= 0 {
		table = key[:i]
	}
	var out []string
	for _, k := range allKeys() {
		t := ""
		if i := strings.LastIndex(k, "."); i >= 0 {
			t = k[:i]
		}
		if t == table {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func allKeys() []string {
	keys := make([]string, 0, len(keyTypes))
	for k := range keyTypes {
		keys = append(keys, k)
	}
	return keys
}
