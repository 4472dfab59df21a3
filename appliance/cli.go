package appliance

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"preau/services/content"
)

// Exit statuses of the preau command, distinct so that systemd units and
// scripts can tell a bad configuration from a crash.
const (
	ExitOK      = 0
	ExitFailure = 1 // a fatal error while running
	ExitUsage   = 2 // bad command line
	ExitConfig  = 3 // invalid configuration file
	ExitStartup = 4 // could not start (database, listeners, demo pack)
	ExitBusy    = 5 // another preau uses the data folder
	ExitRefused = 6 // input refused (e.g. a hostile or broken pack)
)

// Main runs the preau command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	lang := userLanguage()
	if len(args) == 0 {
		usage(stderr, lang)
		return ExitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr, lang)
	case "version", "--version":
		fmt.Fprintf(stdout, "preau %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return ExitOK
	case "import":
		return cmdImport(args[1:], stdout, stderr, lang)
	case "check-config":
		return cmdCheckConfig(args[1:], stdout, stderr, lang)
	case "status":
		return cmdStatus(args[1:], stdout, stderr, lang)
	case "captive":
		return cmdCaptive(args[1:], stdout, stderr, lang)
	case "sync":
		return cmdSync(args[1:], stdout, stderr, lang)
	case "export":
		return cmdExport(args[1:], stdout, stderr, lang)
	case "catalog":
		return cmdCatalog(args[1:], stdout, stderr, lang)
	case "cache":
		return cmdCache(args[1:], stdout, stderr, lang)
	case "mirror":
		return cmdMirror(args[1:], stdout, stderr, lang)
	case "teacher":
		return cmdTeacher(args[1:], stdout, stderr, lang, os.Stdin)
	case "devices":
		return cmdDevices(args[1:], stdout, stderr, lang)
	case "energy":
		return cmdEnergy(args[1:], stdout, stderr, lang)
	case "setup-code":
		return cmdSetupCode(args[1:], stdout, stderr, lang)
	case "update":
		return cmdUpdate(args[1:], stdout, stderr, lang)
	case "release":
		return cmdRelease(args[1:], os.Stdin, stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout, lang)
		return ExitOK
	default:
		fmt.Fprintf(stderr, "%s\n", tr(lang, fmt.Sprintf("preau : commande inconnue « %s »", args[0]),
			fmt.Sprintf("preau: unknown command %q", args[0])))
		usage(stderr, lang)
		return ExitUsage
	}
}

// userLanguage picks English when the environment asks for it, French
// otherwise: PREAU_LANG, then the usual locale variables.
func userLanguage() string {
	for _, v := range []string{"PREAU_LANG", "LC_ALL", "LC_MESSAGES", "LANG"} {
		if s := os.Getenv(v); s != "" {
			if strings.HasPrefix(s, "en") {
				return "en"
			}
			return "fr"
		}
	}
	return "fr"
}

func tr(lang, fr, en string) string {
	if lang == "en" {
		return en
	}
	return fr
}

func usage(w io.Writer, lang string) {
	fmt.Fprint(w, tr(lang, `Utilisation : preau COMMANDE [options]

Commandes :
  run [--config FICHIER] [--data DOSSIER] [--http ADRESSE] [--dns ADRESSE] [--demo]
                          démarre la box (portail, contenus, DNS, portail captif)
  import PAQUET [--config FICHIER] [--data DOSSIER]
                          importe un paquet de contenus (dossier, .tar, .tar.zst ou URL)
  status [--json] [--config FICHIER] [--data DOSSIER]
                          état de la box en cours d'exécution (comme le tableau de bord de la console)
  devices [--csv | --glpi DOSSIER]
                          appareils du réseau de l'école (inventaire ; CSV, ou un document GLPI par appareil)
  energy [--week]         énergie du jour (--week : 7 jours par type d'appareil), sources, appareils restés allumés
  setup-code              code d'installation de la console technicien (tant qu'aucun compte technicien n'existe)
  update status|check|apply [--from FICHIER]|rollback
                          mises à jour signées A/B de l'image (retour arrière automatique)
  release keygen|init|sign|publish|rotate|bundle
                          outil de signature des mises à jour (mairie, académie)
  captive status [--json] appareils du réseau et acceptation de la charte
  sync status [--json]    file d'envoi des devoirs, débit, plages horaires
  sync now                envoyer maintenant, hors des plages horaires
  export --to DOSSIER     écrit les envois en attente sur une clé USB (lot vérifiable)
  catalog add|list|refresh|pin|unpin|remove
                          catalogue de l'école : GAR, vidéos Tube, partages Nuage, paquets
  cache status            place utilisée, quota, contenus épinglés
  mirror --origin URL [--listen ADRESSE] [--data DOSSIER]
                          cache HTTP (RFC 9111) seul, en miroir d'un site
  teacher add IDENTIFIANT "Prénom Nom"
                          crée un compte enseignant, dans la console et pour les devoirs (mot de passe lu sur l'entrée)
  check-config FICHIER    vérifie un fichier de configuration
  version                 affiche la version

Par défaut : configuration /etc/preau/preau.toml, données /var/lib/preau, HTTP :80.
Messages en anglais : PREAU_LANG=en.
`, `Usage: preau COMMAND [options]

Commands:
  run [--config FILE] [--data DIR] [--http ADDR] [--dns ADDR] [--demo]
                          start the box (portal, content, DNS, captive portal)
  import PACK [--config FILE] [--data DIR]
                          import a content pack (folder, .tar, .tar.zst or URL)
  status [--json] [--config FILE] [--data DIR]
                          state of the running box (as the console's dashboard shows it)
  devices [--csv | --glpi DIR]
                          devices of the school network (inventory; CSV, or one GLPI document per device)
  energy [--week]         today's energy (--week: 7 days by device class), sources, devices left on
  setup-code              setup code of the technician console (while no technicien account exists)
  update status|check|apply [--from FILE]|rollback
                          signed A/B updates of the image (rolled back by themselves)
  release keygen|init|sign|publish|rotate|bundle
                          the update signing tool (municipality, academy)
  captive status [--json] LAN devices and charter acceptance
  sync status [--json]    hand-in outbox, rate, time windows
  sync now                send now, outside the time windows
  export --to DIR         write pending deliveries to a USB key (self-verifying bundle)
  catalog add|list|refresh|pin|unpin|remove
                          the school catalogue: GAR, Tube videos, Nuage shares, packs
  cache status            space used, quota, pinned content
  mirror --origin URL [--listen ADDR] [--data DIR]
                          the HTTP cache (RFC 9111) alone, mirroring one site
  teacher add LOGIN "First Last"
                          create a teacher account, in the console and for hand-ins (password read from input)
  check-config FILE       check a configuration file
  version                 print the version

Defaults: config /etc/preau/preau.toml, data /var/lib/preau, HTTP :80.
French messages: PREAU_LANG=fr.
`))
}

// commonFlags are the flags every command that needs the box's
// configuration accepts.
type commonFlags struct {
	config, data, http string
}

func (c *commonFlags) register(fs *flag.FlagSet, withHTTP bool) {
	fs.StringVar(&c.config, "config", "", "configuration file (default "+DefaultConfigPath+" if present)")
	fs.StringVar(&c.data, "data", "", "data folder (default: box.data_dir, "+DefaultDataDir+")")
	if withHTTP {
		fs.StringVar(&c.http, "http", "", "HTTP listen address, replaces http.listen")
	}
}

// load reads the configuration and applies the flags.
func (c *commonFlags) load() (Config, error) {
	cfg := Defaults()
	path := c.config
	if path == "" {
		if _, err := os.Stat(DefaultConfigPath); err == nil {
			path = DefaultConfigPath
		}
	}
	if path != "" {
		var err error
		if cfg, err = LoadConfig(path); err != nil {
			return Config{}, err
		}
	}
	if c.data != "" {
		cfg.Box.DataDir = c.data
	}
	if c.http != "" {
		cfg.HTTP.Listen = []string{c.http}
	}
	if abs, err := filepath.Abs(cfg.Box.DataDir); err == nil {
		cfg.Box.DataDir = abs
	}
	return cfg, cfg.Validate()
}

func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, bool) {
	fs.SetOutput(stderr)
	// Accept flags after positional arguments too: `preau import PACK --data D`.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false
		}
		if fs.NArg() == 0 {
			return pos, true
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func printErr(stderr io.Writer, lang string, err error) {
	var ce *ConfigError
	var pe *content.PackError
	var ctl *controlError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintln(stderr, ce.Localized(lang))
	case errors.As(err, &pe):
		fmt.Fprintln(stderr, tr(lang, "paquet refusé : "+pe.Error(), "pack refused: "+pe.English()))
	case errors.As(err, &ctl):
		fmt.Fprintln(stderr, tr(lang, ctl.FR, ctl.EN))
	case errors.Is(err, ErrBusy):
		fmt.Fprintln(stderr, tr(lang,
			"preau : le dossier de données est utilisé par une autre instance de preau qui ne répond pas sur sa socket de contrôle ; arrêtez-la ou attendez la fin de son opération",
			"preau: the data folder is used by another preau that does not answer on its control socket; stop it or wait for its operation to end"))
	default:
		fmt.Fprintf(stderr, "preau : %v\n", err)
	}
}

func cmdRun(args []string, stderr io.Writer, lang string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs, true)
	demoFlag := fs.Bool("demo", false, "import the demo pack on first start")
	dnsFlag := fs.String("dns", "", "DNS listen address (replaces dns.listen)")
	pos, ok := parseFlags(fs, args, stderr)
	if !ok || len(pos) > 0 {
		return ExitUsage
	}
	cfg, err := cf.load()
	if err != nil {
		printErr(stderr, lang, err)
		return ExitConfig
	}
	log := newLogger(cfg.Log, stderr)
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	box, err := New(ctx, cfg, Options{Demo: *demoFlag, DNSAddr: *dnsFlag}, log)
	if err != nil {
		log.Error("démarrage impossible", "err", err)
		printErr(stderr, lang, err)
		if errors.Is(err, ErrBusy) {
			return ExitBusy
		}
		return ExitStartup
	}
	if err := box.Serve(ctx); err != nil {
		log.Error("arrêt sur erreur", "err", err)
		return ExitFailure
	}
	return ExitOK
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer, lang string) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, tr(lang, "utilisation : preau check-config FICHIER", "usage: preau check-config FILE"))
		return ExitUsage
	}
	if _, err := LoadConfig(args[0]); err != nil {
		printErr(stderr, lang, err)
		return ExitConfig
	}
	fmt.Fprintln(stdout, tr(lang, args[0]+" : configuration valide", args[0]+": valid configuration"))
	return ExitOK
}

func cmdImport(args []string, stdout, stderr io.Writer, lang string) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs, false)
	pos, ok := parseFlags(fs, args, stderr)
	if !ok || len(pos) != 1 {
		fmt.Fprintln(stderr, tr(lang, "utilisation : preau import PAQUET [--data DOSSIER]", "usage: preau import PACK [--data DIR]"))
		return ExitUsage
	}
	source := pos[0]
	if !strings.Contains(source, "://") {
		abs, err := filepath.Abs(source)
		if err == nil {
			source = abs
		}
	}
	cfg, err := cf.load()
	if err != nil {
		printErr(stderr, lang, err)
		return ExitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	bar := newProgressBar(stderr, lang)
	var info content.PackInfo
	if c := dialControl(cfg.Box.DataDir); c != nil {
		info, err = c.importPack(ctx, source, bar.update)
	} else {
		// No box runs here: import directly, holding the data folder lock.
		var b *Box
		log := newLogger(LogConfig{Level: "warn", Format: "text"}, stderr)
		if b, err = open(ctx, cfg, log); err == nil {
			info, err = b.content.Import(ctx, source, bar.update)
			b.Close()
		}
	}
	bar.finish()
	if err != nil {
		printErr(stderr, lang, err)
		var pe *content.PackError
		var ce *controlError
		switch {
		case errors.As(err, &pe), errors.As(err, &ce):
			return ExitRefused
		case errors.Is(err, ErrBusy):
			return ExitBusy
		}
		return ExitFailure
	}
	if info.AlreadyPresent {
		fmt.Fprintf(stdout, tr(lang, "paquet %s %s déjà présent, rien à faire\n", "pack %s %s already present, nothing to do\n"), info.ID, info.Version)
	} else {
		fmt.Fprintf(stdout, tr(lang, "paquet %s %s importé : %d ressources, %s\n", "pack %s %s imported: %d items, %s\n"),
			info.ID, info.Version, info.Items, humanBytes(info.Bytes))
	}
	return ExitOK
}

// progressBar draws a bar on a terminal and a few plain lines otherwise
// (journal, CI logs), so long imports always show they are alive.
type progressBar struct {
	w     io.Writer
	lang  string
	tty   bool
	bar   *progressbar.ProgressBar
	phase string
	last  time.Time
}

func newProgressBar(w io.Writer, lang string) *progressBar {
	p := &progressBar{w: w, lang: lang}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

var phaseNames = map[string][2]string{
	"download": {"téléchargement", "download"},
	"verify":   {"vérification", "verify"},
	"copy":     {"copie", "copy"},
	"commit":   {"enregistrement", "commit"},
	"export":   {"export", "export"},
	"send":     {"envoi", "upload"},
	"reread":   {"relecture de la partition", "reading the slot back"},
}

func (p *progressBar) update(pr content.Progress) {
	name := pr.Phase
	if n, ok := phaseNames[pr.Phase]; ok {
		name = tr(p.lang, n[0], n[1])
	}
	if p.tty {
		if p.bar == nil || p.phase != pr.Phase {
			if p.bar != nil {
				p.bar.Finish()
				fmt.Fprintln(p.w)
			}
			p.bar = progressbar.NewOptions64(max(pr.BytesTotal, 1),
				progressbar.OptionSetWriter(p.w), progressbar.OptionShowBytes(true),
				progressbar.OptionSetDescription(name), progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionShowCount())
			p.phase = pr.Phase
		}
		p.bar.Set64(pr.BytesDone)
		return
	}
	if pr.Phase != p.phase || time.Since(p.last) > 5*time.Second {
		p.phase, p.last = pr.Phase, time.Now()
		pct := 0.0
		if pr.BytesTotal > 0 {
			pct = 100 * float64(pr.BytesDone) / float64(pr.BytesTotal)
		}
		if pr.FilesTotal == 0 {
			fmt.Fprintf(p.w, "%s : %.0f %% (%s/%s)\n", name, pct, humanBytes(pr.BytesDone), humanBytes(pr.BytesTotal))
		} else {
			fmt.Fprintf(p.w, "%s : %.0f %% (%d/%d fichiers, %s/%s)\n", name, pct, pr.FilesDone, pr.FilesTotal,
				humanBytes(pr.BytesDone), humanBytes(pr.BytesTotal))
		}
	}
}

func (p *progressBar) finish() {
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}

// humanBytes writes sizes the French way: "1,5 Mo".
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d o", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	s := fmt.Sprintf("%.1f %co", float64(n)/float64(div), "kMGTPE"[exp])
	return strings.Replace(s, ".", ",", 1)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// tuneGC makes the collector run less often than Go's default. The box's
// live heap is a few megabytes while serving allocates fast, so GOGC=100
// collects many times a second under load; 400 keeps the heap well inside a
// 1 GB board's budget and a soft limit caps it. GOGC and GOMEMLIMIT in the
// environment still win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(256 << 20)
	}
}

func cmdCaptive(args []string, stdout, stderr io.Writer, lang string) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(stderr, tr(lang, "utilisation : preau captive status [--json] [--data DOSSIER]", "usage: preau captive status [--json] [--data DIR]"))
		return ExitUsage
	}
	fs := flag.NewFlagSet("captive status", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	c, pos, rc := runningBox(fs, &cf, args[1:], stderr, lang)
	if rc != ExitOK {
		return rc
	}
	if len(pos) > 0 {
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	path := "/v1/captive/status?lang=" + lang
	if *asJSON {
		path = "/v1/captive/devices"
	}
	if err := c.get(ctx, path, stdout); err != nil {
		printErr(stderr, lang, err)
		return ExitFailure
	}
	return ExitOK
}
