package appliance

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"preau/sync/budget"
)

// SyncConfig is the one WAN budget and the hand-in outbox.
type SyncConfig struct {
	// Windows when background transfers may start, e.g. ["lun-ven
	// 17:30-08:00", "sam,dim"]. Default: evenings, nights, weekends,
	// Wednesday afternoon.
	Windows []string `toml:"windows"`
	// ClassHours veto background transfers even inside a window. Default
	// Monday–Friday 08:00–17:30 except Wednesday afternoon.
	ClassHours []string `toml:"class_hours"`
	// Holidays are whole days open to transfers, e.g.
	// ["2026-12-19..2027-01-03"].
	Holidays []string `toml:"holidays"`
	// TargetDelay is the queueing delay background traffic may add on the
	// uplink (LEDBAT-like). Default "25ms".
	TargetDelay string `toml:"target_delay"`
	// MaxRate caps background upload, per second, e.g. "1MB". Default none.
	MaxRate string `toml:"max_rate"`
	// DailyCap caps background bytes a day, e.g. "2GB". Default none.
	DailyCap string `toml:"daily_cap"`
	// Workers: files whose bytes are on the wire at once (twice as many
	// items may be between their round trips). Default 2.
	Workers int `toml:"workers"`
}

// DestinationConfig is where teachers' hand-ins go. Its id (the table's
// name) is what an assignment records.
type DestinationConfig struct {
	// Label shown to teachers, e.g. "Nuage de Mme Martin".
	Label string `toml:"label"`
	// Type: "webdav" (a WebDAV folder, e.g. Nextcloud's
	// https://host/remote.php/dav/files/USER/Devoirs/, or a Nextcloud
	// file-drop link https://host/s/TOKEN).
	Type string `toml:"type"`
	URL  string `toml:"url"`
	// User and PasswordFile: a Nextcloud app password kept in a file
	// readable by preau only (never in this file). Empty for share links.
	User         string `toml:"user"`
	PasswordFile string `toml:"password_file"`
	// Nickname sent to file-drop links that ask who uploads.
	Nickname string `toml:"nickname"`
	// DeviceID and Address of a "syncthing" destination: the academy's or
	// municipality's device, and where to dial it ("tcp://host:22000";
	// empty: it dials the box).
	DeviceID string `toml:"device_id"`
	Address  string `toml:"address"`
}

// AssignmentsConfig bounds pupils' hand-ins (a teacher sets each
// assignment's own file limit up to MaxFileSize).
type AssignmentsConfig struct {
	// MaxFileSize bounds one file, e.g. "20MB" (the default).
	MaxFileSize string `toml:"max_file_size"`
	// MaxHandInSize bounds one hand-in, all files together. Default "100MB".
	MaxHandInSize string `toml:"max_handin_size"`
	// MaxFiles bounds the files of one hand-in. Default 10.
	MaxFiles int `toml:"max_files"`
}

func syncDefaults(c *Config) {
	c.Sync = SyncConfig{TargetDelay: "25ms", Workers: 2}
	c.Assignments = AssignmentsConfig{MaxFileSize: "20MB", MaxHandInSize: "100MB", MaxFiles: 10}
}

var (
	destIDRe      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	syncthingIDRe = regexp.MustCompile(`^[A-Z2-7]{7}(-[A-Z2-7]{7}){7}$`)
)

func (c Config) syncProblems(bad func(key, fr, en string)) {
	s := c.Sync
	badErr := func(key string, err error) {
		fr, en := bilingual(err)
		bad(key, fr, en)
	}
	for _, w := range s.Windows {
		if _, err := budget.ParseSpan(w); err != nil {
			badErr("sync.windows", err)
		}
	}
	for _, w := range s.ClassHours {
		if _, err := budget.ParseSpan(w); err != nil {
			badErr("sync.class_hours", err)
		}
	}
	for _, h := range s.Holidays {
		if _, err := budget.ParseDateRange(h); err != nil {
			badErr("sync.holidays", err)
		}
	}
	checkDurationBad(bad, "sync.target_delay", s.TargetDelay, time.Millisecond, 2*time.Second)
	for key, v := range map[string]string{"sync.max_rate": s.MaxRate, "sync.daily_cap": s.DailyCap} {
		if v != "" {
			var ps []Problem
			checkSize(&ps, key, v)
			for _, p := range ps {
				bad(p.Key, p.FR, p.EN)
			}
		}
	}
	a := c.Assignments
	var ps []Problem
	checkSize(&ps, "assignments.max_file_size", a.MaxFileSize)
	checkSize(&ps, "assignments.max_handin_size", a.MaxHandInSize)
	for _, p := range ps {
		bad(p.Key, p.FR, p.EN)
	}
	if len(ps) == 0 && mustSize(a.MaxFileSize) > mustSize(a.MaxHandInSize) {
		bad("assignments.max_file_size", "plus grand que assignments.max_handin_size ; attendu au plus la taille d'un rendu entier",
			"larger than assignments.max_handin_size; expected at most the size of a whole hand-in")
	}
	if len(ps) == 0 && mustSize(a.MaxFileSize) < 1_000_000 {
		bad("assignments.max_file_size", "trop petit ; attendu au moins 1MB", "too small; expected at least 1MB")
	}
	if a.MaxFiles < 1 || a.MaxFiles > 100 {
		bad("assignments.max_files", "hors limites ; attendu entre 1 et 100", "out of range; expected between 1 and 100")
	}
	if s.Workers < 1 || s.Workers > 16 {
		bad("sync.workers", "hors limites ; attendu entre 1 et 16", "out of range; expected between 1 and 16")
	}
	for id, d := range c.Destinations {
		key := "destinations." + id
		if !destIDRe.MatchString(id) {
			bad(key, fmt.Sprintf("« %s » ne convient pas comme identifiant ; attendu des minuscules, chiffres et tirets, par ex. « nuage-cm2 »", id),
				fmt.Sprintf("%q is not usable as an id; expected lower-case letters, digits and dashes, e.g. \"nuage-cm2\"", id))
		}
		switch d.Type {
		case "webdav":
		case "syncthing":
			if !syncthingIDRe.MatchString(d.DeviceID) {
				bad(key+".device_id", fmt.Sprintf("« %s » n'est pas un identifiant d'appareil Syncthing ; attendu 8 groupes de 7 caractères séparés par des tirets", d.DeviceID),
					fmt.Sprintf("%q is not a Syncthing device ID; expected 8 groups of 7 characters separated by dashes", d.DeviceID))
			}
		default:
			bad(key+".type", fmt.Sprintf("« %s » inconnu ; attendu « webdav » ou « syncthing »", d.Type), fmt.Sprintf("%q unknown; expected \"webdav\" or \"syncthing\"", d.Type))
		}
		if u, err := url.Parse(d.URL); d.Type == "webdav" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
			bad(key+".url", fmt.Sprintf("« %s » n'est pas une URL ; attendu par ex. « https://nuage03.apps.education.fr/s/AbCdEf »", d.URL),
				fmt.Sprintf("%q is not a URL; expected e.g. \"https://nuage03.apps.education.fr/s/AbCdEf\"", d.URL))
		}
		if (d.User == "") != (d.PasswordFile == "") {
			bad(key+".user", "user et password_file vont ensemble (mot de passe d'application dans un fichier)",
				"user and password_file go together (an app password kept in a file)")
		}
		if d.Label == "" {
			bad(key+".label", "libellé vide ; attendu ce que les enseignants verront, par ex. « Nuage de Mme Martin »",
				"empty label; expected what teachers will see, e.g. \"Nuage de Mme Martin\"")
		}
	}
}

// bilingual is the French and English text of a budget setting's error.
func bilingual(err error) (string, string) {
	var ce *budget.ConfigError
	if errors.As(err, &ce) {
		return ce.FR, ce.EN
	}
	return err.Error(), err.Error()
}

var syncKeyTypes = func() map[string][2]string {
	text := [2]string{"un texte entre guillemets", "quoted text"}
	list := [2]string{"une liste de textes, par ex. [\"a\", \"b\"]", "a list of quoted texts, e.g. [\"a\", \"b\"]"}
	table := [2]string{"une section [nom]", "a [name] table"}
	return map[string][2]string{
		"sync": table, "destinations": table, "assignments": table,
		"assignments.max_file_size": text, "assignments.max_handin_size": text,
		"assignments.max_files": {"un nombre entier, par ex. 10", "a whole number, e.g. 10"},
		"sync.windows":          list, "sync.class_hours": list, "sync.holidays": list,
		"sync.target_delay": text, "sync.max_rate": text, "sync.daily_cap": text,
		"sync.workers": {"un nombre entier, par ex. 2", "a whole number, e.g. 2"},
	}
}()
