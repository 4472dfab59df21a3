// Package release is the signing tool of the municipality or academy
// that publishes Préau updates: preau release keygen|init|sign|publish|
// rotate|bundle. It keeps ed25519 keys in files (one per TUF role, 0600)
// and produces a static TUF repository with consistent snapshots that
// any web server can serve, and USB bundles of it.
//
// Imported by appliance (the CLI); it imports no other component.
package release

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"preau/firmware/internal/tufclient"
)

const usage = `usage: preau release COMMAND [options]

Commands:
  keygen  --keys DIR                         new ed25519 keys, one per role (root, targets, snapshot, timestamp)
  init    --keys DIR --repo DIR              a new repository (version 1 of every role)
  sign    --keys DIR --repo DIR --version V --part root=FILE [--part linux=FILE ...]
          [--part boot@a=FILE --part boot@b=FILE] [--channel stable] [--arch x86_64]
          [--notes-fr TEXT] [--notes-en TEXT]
                                             add a release, sign targets, publish
  publish --keys DIR --repo DIR              re-sign snapshot and timestamp (run daily from cron)
  rotate  --keys DIR --new-keys DIR --repo DIR --role ROLE[,ROLE]
                                             replace keys: new root signed by the old and new root keys
  bundle  --repo DIR --out DIR|FILE.tar [--channel stable] [--arch x86_64]
                                             copy the current release for a USB key

Keep root.key offline: it is only needed by init and rotate. The
timestamp must be re-signed at least every 7 days (publish), or boxes
refuse the repository as frozen.
`

// Run runs preau release with args (without "release"); it returns the
// exit status.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(args, stdout, stderr, time.Now)
}

func run(args []string, stdout, stderr io.Writer, now func() time.Time) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("preau release "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	keys := fs.String("keys", "", "folder of the role keys")
	repoDir := fs.String("repo", "", "folder of the repository")
	exp := defaultExpiries
	durFlag := func(name string, d *time.Duration, help string) {
		fs.Func(name, help+" (e.g. 365d, 12h; default "+fmtDur(*d)+")", func(s string) error {
			v, err := parseDur(s)
			if err == nil {
				*d = v
			}
			return err
		})
	}
	durFlag("root-expires", &exp.Root, "root validity")
	durFlag("targets-expires", &exp.Targets, "targets validity")
	durFlag("snapshot-expires", &exp.Snapshot, "snapshot validity")
	durFlag("timestamp-expires", &exp.Timestamp, "timestamp validity")
	var (
		version, notesFR, notesEN, out, newKeys, roles string
		channel, arch                                  = "stable", "x86_64"
		parts                                          []partFile
		quiet                                          bool
	)
	switch cmd {
	case "sign":
		fs.StringVar(&version, "version", "", "version of the release (as the image reports it)")
		fs.StringVar(&notesFR, "notes-fr", "", "release notes in French")
		fs.StringVar(&notesEN, "notes-en", "", "release notes in English")
		fs.Func("part", "PART=FILE or PART@SLOT=FILE (repeat)", func(s string) error {
			name, path, ok := strings.Cut(s, "=")
			if !ok || path == "" {
				return errors.New("want PART=FILE")
			}
			pf := partFile{Name: name, Path: path}
			if n, slot, ok := strings.Cut(name, "@"); ok {
				if slot != "a" && slot != "b" {
					return fmt.Errorf("slot %q: want a or b", slot)
				}
				pf.Name, pf.Slot = n, slot
			}
			parts = append(parts, pf)
			return nil
		})
		fs.BoolVar(&quiet, "quiet", false, "no progress bar")
		fallthrough
	case "bundle":
		fs.StringVar(&channel, "channel", channel, "release channel")
		fs.StringVar(&arch, "arch", arch, "architecture (x86_64, aarch64)")
		if cmd == "bundle" {
			fs.StringVar(&out, "out", "", "folder, or file ending in .tar, to write")
		}
	case "rotate":
		fs.StringVar(&newKeys, "new-keys", "", "folder of the new keys")
		fs.StringVar(&roles, "role", "", "roles whose keys change, comma-separated")
	case "keygen", "init", "publish":
	default:
		fmt.Fprintf(stderr, "preau release: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "preau release %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}
	need := func(name, v string) bool {
		if v == "" {
			fmt.Fprintf(stderr, "preau release %s: --%s is required\n", cmd, name)
			return false
		}
		return true
	}
	r := &repo{dir: *repoDir, now: now, exp: exp}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "preau release %s: %v\n", cmd, err)
		return 1
	}
	switch cmd {
	case "keygen":
		if !need("keys", *keys) {
			return 2
		}
		if err := os.MkdirAll(*keys, 0o700); err != nil {
			return fail(err)
		}
		for _, role := range topRoles {
			if err := generateKey(*keys, role); err != nil {
				return fail(err)
			}
		}
		fmt.Fprintf(stdout, "keys written to %s (root.key, targets.key, snapshot.key, timestamp.key and their .pub)\n", *keys)
		fmt.Fprintln(stdout, "move root.key to offline storage once the repository is initialised")
	case "init":
		if !need("keys", *keys) || !need("repo", *repoDir) {
			return 2
		}
		if err := r.init(*keys); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "repository initialised in %s; ship %s/metadata/1.root.json in the image as the trusted root\n", *repoDir, *repoDir)
	case "sign":
		if !need("keys", *keys) || !need("repo", *repoDir) || !need("version", version) {
			return 2
		}
		if err := tufclient.CheckVersion(version); err != nil {
			return fail(err)
		}
		if len(parts) == 0 {
			return fail(errors.New("give at least --part root=FILE"))
		}
		var bar func(string, int64) io.Writer
		if !quiet && isTerminal(stderr) {
			bar = func(name string, size int64) io.Writer {
				return progressbar.NewOptions64(size, progressbar.OptionSetWriter(stderr),
					progressbar.OptionSetDescription("sha256 "+name), progressbar.OptionShowBytes(true),
					progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
			}
		}
		m, err := r.addRelease(*keys, releaseSpec{Version: version, Channel: channel, Arch: arch, Created: now(),
			Parts: parts, NotesFR: notesFR, NotesEN: notesEN}, bar)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "release %s signed for %s/%s (%d parts) and published in %s\n", m.Version, channel, arch, len(m.Parts), *repoDir)
	case "publish":
		if !need("keys", *keys) || !need("repo", *repoDir) {
			return 2
		}
		if err := r.publish(*keys, *keys); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "snapshot and timestamp re-signed in %s (timestamp valid %s)\n", *repoDir, fmtDur(exp.Timestamp))
	case "rotate":
		if !need("keys", *keys) || !need("repo", *repoDir) || !need("new-keys", newKeys) || !need("role", roles) {
			return 2
		}
		var list []string
		for _, role := range strings.Split(roles, ",") {
			role = strings.TrimSpace(role)
			ok := false
			for _, known := range topRoles {
				ok = ok || role == known
			}
			if !ok {
				return fail(fmt.Errorf("role %q: want root, targets, snapshot or timestamp", role))
			}
			list = append(list, role)
		}
		v, err := r.rotate(*keys, newKeys, list)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "root version %d signed by the old and new keys; from now on use the keys in %s for %s\n", v, newKeys, strings.Join(list, ", "))
	case "bundle":
		if !need("repo", *repoDir) || !need("out", out) {
			return 2
		}
		files, err := r.bundle(channel, arch, out)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "%d files written to %s; on the box: preau update apply --from %s\n", len(files), out, out)
	}
	return 0
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// parseDur accepts Go durations and a number of days ("30d").
func parseDur(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 36500 {
			return 0, fmt.Errorf("%q: want a number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration such as 12h or 30d", s)
	}
	return d, nil
}

func fmtDur(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}
