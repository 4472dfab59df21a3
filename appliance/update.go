package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"preau/appliance/store"
	"preau/firmware"
	"preau/firmware/bootenv"
	"preau/sync/budget"
)

// Signed A/B updates of the OS image ([update], issue 7): the firmware
// engine runs only on a box installed from the image, where the boot
// loader and the two root slots exist; elsewhere (`make run`, a
// developer's machine) `preau update` says updates are not configured.

// UpdateConfig is [update].
type UpdateConfig struct {
	// Boot is the boot loader that counts the tries of a new slot:
	// "systemd-boot" (x86-64 UEFI) or "tryboot" (Raspberry Pi 4/5). Empty
	// (the default): no A/B slots, updates off.
	Boot string `toml:"boot"`
	// Repository is the URL of the signed (TUF) repository; empty: updates
	// come only on USB keys (`preau update apply --from`).
	Repository string `toml:"repository"`
	// TrustedRoot is the root.json shipped with the image.
	TrustedRoot string `toml:"trusted_root"`
	// Channel is the release channel followed. Default "stable".
	Channel string `toml:"channel"`
	// Window is the maintenance window for reboots, "HH:MM-HH:MM" local
	// time (Europe/Paris). Default "01:00-05:00": never during class.
	Window string `toml:"window"`
	// ESP is where the EFI system partition is mounted (systemd-boot).
	ESP string `toml:"esp"`
	// Autoboot is the Pi firmware's autoboot.txt (tryboot).
	Autoboot string `toml:"autoboot"`
	// RootA and RootB are the root partitions of the two slots.
	RootA string `toml:"root_a"`
	RootB string `toml:"root_b"`
	// BootA and BootB are the Pi's boot partitions of the two slots.
	BootA string `toml:"boot_a"`
	BootB string `toml:"boot_b"`
	// Cmdline is the file holding the kernel command line, whose
	// preau.slot=a|b names the booted slot. Default /proc/cmdline.
	Cmdline string `toml:"cmdline"`
}

func updateDefaults(c *Config) {
	c.Update = UpdateConfig{Channel: "stable", Window: "01:00-05:00",
		TrustedRoot: firmware.DefaultTrustedRoot, ESP: "/boot/efi",
		RootA: "/dev/disk/by-partlabel/preau-root-a", RootB: "/dev/disk/by-partlabel/preau-root-b"}
}

func (c Config) updateProblems(bad func(key, fr, en string)) {
	u := c.Update
	switch u.Boot {
	case "", "systemd-boot":
	case "tryboot":
		if u.Autoboot == "" || u.BootA == "" || u.BootB == "" {
			bad("update.boot", "« tryboot » demande update.autoboot, update.boot_a et update.boot_b",
				"\"tryboot\" needs update.autoboot, update.boot_a and update.boot_b")
		}
	default:
		bad("update.boot", fmt.Sprintf("« %s » inconnu ; attendu « systemd-boot », « tryboot » ou rien", u.Boot),
			fmt.Sprintf("unknown %q; expected \"systemd-boot\", \"tryboot\" or nothing", u.Boot))
	}
	if u.Repository != "" && !strings.HasPrefix(u.Repository, "https://") && !strings.HasPrefix(u.Repository, "http://") {
		bad("update.repository", "adresse http(s):// attendue", "an http(s):// address is expected")
	}
	if _, _, ok := splitWindow(u.Window); !ok {
		bad("update.window", fmt.Sprintf("« %s » n'est pas une plage ; attendu par ex. « 01:00-05:00 »", u.Window),
			fmt.Sprintf("%q is not a time range; expected e.g. \"01:00-05:00\"", u.Window))
	}
}

func splitWindow(s string) (from, to string, ok bool) {
	from, to, ok = strings.Cut(s, "-")
	if !ok {
		return "", "", false
	}
	for _, t := range []string{from, to} {
		if _, err := time.Parse("15:04", strings.TrimSpace(t)); err != nil {
			return "", "", false
		}
	}
	return strings.TrimSpace(from), strings.TrimSpace(to), true
}

var updateKeyTypes = func() map[string][2]string {
	text := [2]string{"un texte entre guillemets", "a quoted text"}
	m := map[string][2]string{"update": table()}
	for _, k := range []string{"boot", "repository", "trusted_root", "channel", "window", "esp", "autoboot", "root_a", "root_b", "boot_a", "boot_b", "cmdline"} {
		m["update."+k] = text
	}
	return m
}()

// newUpdate builds the engine when the box has A/B slots. It runs first
// in open(), before every other component's migrations: on the trial boot
// of a new version the database is copied aside before they run, because
// a rollback returns to a preau that refuses a newer schema.
func (b *Box) newUpdate(ctx context.Context) error {
	if err := b.store.Migrate(ctx, "firmware", convertMigrations(firmware.Migrations())); err != nil {
		return err
	}
	u := b.cfg.Update
	if u.Boot == "" {
		return nil
	}
	from, to, _ := splitWindow(u.Window)
	fcfg := firmware.Config{RepositoryURL: u.Repository, TrustedRoot: u.TrustedRoot, Channel: u.Channel,
		StateDir: filepath.Join(b.cfg.Box.DataDir, "firmware"), Version: version, WindowStart: from, WindowEnd: to}
	var (
		env   firmware.BootEnv
		parts = map[string]bootenv.SlotPaths{"root": {A: u.RootA, B: u.RootB}}
		err   error
	)
	switch u.Boot {
	case "systemd-boot":
		env, err = bootenv.NewSystemdBoot(bootenv.SystemdBootConfig{ESP: u.ESP})
		parts["linux"] = bootenv.SlotPaths{A: filepath.Join(u.ESP, "preau-a", "linux"), B: filepath.Join(u.ESP, "preau-b", "linux")}
		parts["initrd"] = bootenv.SlotPaths{A: filepath.Join(u.ESP, "preau-a", "initrd"), B: filepath.Join(u.ESP, "preau-b", "initrd")}
	case "tryboot":
		env, err = bootenv.NewTryboot(bootenv.TrybootConfig{Autoboot: u.Autoboot})
		parts["boot"] = bootenv.SlotPaths{A: u.BootA, B: u.BootB}
	}
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	slots, err := bootenv.NewSlots(bootenv.SlotsConfig{Parts: parts, Cmdline: u.Cmdline})
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	b.update, err = firmware.New(fcfg, b.store.DB(), firmware.Deps{
		// The image download is background traffic of the update class;
		// the scheduler exists only later, so these ask for it then.
		HTTP:    lateDoer{b},
		Wait:    func(ctx context.Context) error { return b.waitUpdateClass(ctx) },
		Slots:   slots,
		BootEnv: env,
		Log:     b.log.With("component", "update"),
		Reboot:  systemReboot,
		ExtendTimeout: func(d time.Duration) {
			notify(b.log, fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", d.Microseconds()))
		},
	})
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if v, on, err := b.update.OnTrial(ctx); err != nil {
		return fmt.Errorf("update: %w", err)
	} else if on {
		if err := backupBeforeTrial(ctx, b.store, v); err != nil {
			return err
		}
	}
	return nil
}

// lateDoer sends the engine's requests through the WAN budget's update
// class once the box has built it.
type lateDoer struct{ b *Box }

func (d lateDoer) Do(r *http.Request) (*http.Response, error) {
	if d.b.handin == nil || d.b.handin.sched == nil {
		return nil, errors.New("update: the WAN budget is not running")
	}
	return d.b.handin.sched.Doer(budget.ClassUpdate).Do(r)
}

func (b *Box) waitUpdateClass(ctx context.Context) error {
	if b.handin == nil || b.handin.sched == nil {
		return errors.New("update: the WAN budget is not running")
	}
	return b.handin.sched.Wait(ctx, budget.ClassUpdate)
}

// systemReboot asks systemd for a reboot; oneShotTry is the Pi's tryboot.
func systemReboot(ctx context.Context, oneShotTry bool) error {
	args := []string{"reboot"}
	if oneShotTry {
		args = append(args, "0 tryboot")
	}
	if out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Database copies around a trial boot: preau.db.before-VERSION is the
// database as the running version left it, taken on the new version's
// first start before its migrations; preau.db.trial-TIME is the trial's
// database set aside when the old version comes back.
func beforeTrialPath(db, v string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, v)
	return db + ".before-" + safe
}

// backupBeforeTrial writes the consistent copy (VACUUM INTO a temporary
// name, fsync, rename) once per version tried.
func backupBeforeTrial(ctx context.Context, st *store.Store, v string) error {
	dst := beforeTrialPath(st.Path(), v)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	tmp := dst + ".tmp"
	os.Remove(tmp)
	if _, err := st.DB().ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		return fmt.Errorf("update: copy the database before the trial: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("update: copy the database before the trial: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("update: copy the database before the trial: %w", err)
	}
	return syncDir(filepath.Dir(dst))
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// restoreBeforeTrial puts back the newest copy taken before a trial, when
// the database was migrated by a newer version that did not stay (the
// boot loader or the health gate went back to this one). The trial's
// database is kept beside it, and its path returned so that the update
// engine's record (the reason of the rollback) is carried over. It
// returns "" when there is no copy to restore.
func restoreBeforeTrial(db string, log interface{ Warn(string, ...any) }) (string, error) {
	copies, _ := filepath.Glob(db + ".before-*")
	var keep []string
	for _, c := range copies {
		if !strings.HasSuffix(c, ".tmp") {
			keep = append(keep, c)
		}
	}
	if len(keep) == 0 {
		return "", nil
	}
	sort.Slice(keep, func(i, j int) bool {
		fi, _ := os.Stat(keep[i])
		fj, _ := os.Stat(keep[j])
		return fi != nil && fj != nil && fi.ModTime().After(fj.ModTime())
	})
	src := keep[0]
	trial := fmt.Sprintf("%s.trial-%d", db, time.Now().Unix())
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(db+suffix, trial+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("update: set the trial's database aside: %w", err)
		}
	}
	if err := copyFile(src, db); err != nil {
		return "", fmt.Errorf("update: restore the database from before the trial: %w", err)
	}
	log.Warn("base de données remise dans l'état d'avant l'essai d'une nouvelle version (schéma plus récent laissé par cet essai)",
		"copie", filepath.Base(src), "essai", filepath.Base(trial))
	return trial, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".restore"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// updateParts run the engine: Serve resumes an interrupted update and
// checks for new releases; Boot judges a trial boot on the local health
// gate once the box is ready.
func (b *Box) updateParts() []part {
	if b.update == nil {
		return nil
	}
	return []part{
		{name: "update", serve: b.update.Serve},
		{name: "update-boot", serve: func(ctx context.Context) error {
			if err := b.update.Boot(ctx, boxHealth{b}); err != nil && ctx.Err() == nil {
				b.log.Error("update: health gate", "err", err)
			}
			<-ctx.Done()
			return nil
		}},
	}
}

// boxHealth is the local health gate of a trial boot: never the uplink.
type boxHealth struct{ b *Box }

func (h boxHealth) Ready(context.Context) error {
	if !h.b.ready.Load() {
		return fmt.Errorf("not ready yet: %w", firmware.ErrStillWorking)
	}
	return nil
}

// Migrated: the box reaches Serve only after every component migrated.
func (h boxHealth) Migrated(ctx context.Context) error { return h.b.store.Ping(ctx) }

func (h boxHealth) PortalAnswers(ctx context.Context) error {
	if len(h.b.listeners) == 0 {
		return errors.New("no portal listener")
	}
	_, port, err := net.SplitHostPort(h.b.listeners[0].Addr().String())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort("127.0.0.1", port)+"/healthz", nil)
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return fmt.Errorf("portal on loopback: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("portal on loopback: %s", resp.Status)
	}
	return nil
}

func (h boxHealth) ConfigValid(context.Context) error {
	if ps := h.b.cfg.problems(); len(ps) > 0 {
		return fmt.Errorf("configuration: %s %s", ps[0].Key, ps[0].EN)
	}
	return nil
}
