package firmware

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"preau/firmware/bootenv"
	"preau/firmware/internal/stream"
	"preau/firmware/internal/tufclient"
)

// Doer sends one HTTP request; *http.Client satisfies it. appliance
// passes the WAN scheduler's client of the update class.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Clock is the engine's time; nil in Deps means the real one.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends.
	Sleep(ctx context.Context, d time.Duration) error
}

// Slots are the box's two slots (bootenv.Slots).
type Slots interface {
	// Booted is the slot the running system started from.
	Booted() (string, error)
	// Parts names the parts every slot has ("root" first).
	Parts() []string
	// OpenPart opens a part of a slot for writing and reading back; it
	// refuses the booted slot.
	OpenPart(slot, part string) (*bootenv.Part, error)
}

// BootEnv is the boot loader's view of the slots (bootenv.SystemdBoot or
// bootenv.Tryboot).
type BootEnv interface {
	// Disarm makes slot neither tried nor a fallback.
	Disarm(ctx context.Context, slot string) error
	// Arm sets slot up for a counted trial at the next boot(s).
	Arm(ctx context.Context, slot, version string) error
	// Commit makes slot the default, without counting.
	Commit(ctx context.Context, slot string) error
	// Trial tells how slot stands.
	Trial(ctx context.Context, slot string) (bootenv.Trial, error)
	// OneShot reports whether the trial needs the reboot's one-shot flag
	// (the Pi's tryboot).
	OneShot() bool
}

// Health is the local health gate a new slot must pass before it is
// committed. appliance implements it; nothing in it may depend on the
// uplink. Each method returns nil once its condition holds, an error
// wrapping ErrStillWorking while it is progressing (the gate then waits
// longer, up to Config.HealthMaxWait, and extends systemd's timeout), or
// another error while it does not hold.
type Health interface {
	// Ready: preau sent READY=1 to systemd (every listener bound).
	Ready(ctx context.Context) error
	// Migrated: every component's database migrations are applied.
	Migrated(ctx context.Context) error
	// PortalAnswers: the portal answers on loopback.
	PortalAnswers(ctx context.Context) error
	// ConfigValid: the configuration file validates.
	ConfigValid(ctx context.Context) error
}

// Deps are what the Engine is given.
type Deps struct {
	// HTTP fetches the repository: the WAN scheduler's client of the
	// update class. Nil: only USB updates.
	HTTP Doer
	// Wait, if set, is called before each image request: the scheduler's
	// gate for the update class (windows, cap, priorities).
	Wait    func(ctx context.Context) error
	Slots   Slots
	BootEnv BootEnv
	Clock   Clock
	Log     *slog.Logger
	// Reboot restarts the machine; oneShotTry asks for the Pi's tryboot
	// ("systemctl reboot '0 tryboot'"). Required.
	Reboot func(ctx context.Context, oneShotTry bool) error
	// BootID identifies the current boot; nil reads
	// /proc/sys/kernel/random/boot_id.
	BootID func() (string, error)
	// ExtendTimeout asks systemd for d more (EXTEND_TIMEOUT_USEC) while
	// the health gate waits on a long migration. Nil: not asked.
	ExtendTimeout func(d time.Duration)
}

// Engine installs signed releases into the inactive slot, reboots into
// them in the maintenance window, and commits them once the local health
// gate passes — or rolls back, with the reason recorded.
type Engine struct {
	cfg Config
	win Window
	db  *sql.DB
	d   Deps
	log *slog.Logger

	clock Clock
	sem   chan struct{} // one runner of the state machine at a time

	verifyMu sync.Mutex // a verification and the storing of what it trusts

	mu       sync.Mutex
	cancel   context.CancelFunc
	progress Progress
	onProg   func(Progress)
	rateAt   time.Time
	rateDone int64

	// hook is called at named points of the state machine; tests crash
	// or fail there. Nil in production.
	hook func(point string) error
}

// New validates cfg and deps; it does no I/O.
func New(cfg Config, db *sql.DB, d Deps) (*Engine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	win, _ := cfg.window()
	if db == nil || d.Slots == nil || d.BootEnv == nil || d.Reboot == nil {
		return nil, errors.New("firmware: new: db, slots, boot env and reboot are required")
	}
	if cfg.RepositoryURL != "" && d.HTTP == nil {
		return nil, errors.New("firmware: new: repository_url is set but no HTTP client was given")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Clock == nil {
		d.Clock = realClock{}
	}
	if d.BootID == nil {
		d.BootID = readBootID
	}
	return &Engine{cfg: cfg, win: win, db: db, d: d, log: d.Log, clock: d.Clock, sem: make(chan struct{}, 1)}, nil
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func readBootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// at calls the test hook.
func (e *Engine) at(point string) error {
	if e.hook == nil {
		return nil
	}
	return e.hook(point)
}

// exclusive runs fn as the one runner of the state machine; wait says
// whether to wait for the current runner (after cancelling it) or to
// answer busy.
func (e *Engine) exclusive(ctx context.Context, preempt bool, fn func(context.Context) error) error {
	if preempt {
		e.mu.Lock()
		if e.cancel != nil {
			e.cancel()
		}
		e.mu.Unlock()
		select {
		case e.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	} else {
		select {
		case e.sem <- struct{}{}:
		default:
			return newError(CodeBusy, "", nil)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	e.mu.Lock()
	e.cancel = cancel
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.cancel = nil
		e.onProg = nil
		e.mu.Unlock()
		cancel()
		<-e.sem
	}()
	return fn(ctx)
}

// Progress is how far the current update went.
type Progress struct {
	State     State
	Part      string  // part being written
	Done      int64   // bytes written of all parts
	Total     int64   // bytes of all parts
	Rate      float64 // bytes per second, smoothed
	RebootAt  time.Time
	Checking  bool // verifying the signed metadata
	Rehashing bool // reading the slot back
}

func (e *Engine) report(p Progress) {
	e.mu.Lock()
	now := e.clock.Now()
	if p.State == StateDownloading {
		if e.rateAt.IsZero() || p.Done < e.rateDone {
			e.rateAt, e.rateDone = now, p.Done
		} else if dt := now.Sub(e.rateAt).Seconds(); dt >= 0.5 {
			inst := float64(p.Done-e.rateDone) / dt
			if e.progress.Rate == 0 {
				p.Rate = inst
			} else {
				p.Rate = 0.7*e.progress.Rate + 0.3*inst
			}
			e.rateAt, e.rateDone = now, p.Done
		} else {
			p.Rate = e.progress.Rate
		}
	}
	e.progress = p
	cb := e.onProg
	e.mu.Unlock()
	if cb != nil {
		cb(p)
	}
}

// Check looks for a release newer than the running one (a TUF refresh
// over the network) without installing it.
func (e *Engine) Check(ctx context.Context) (Available, error) {
	if e.cfg.RepositoryURL == "" {
		return Available{}, newError(CodeNoRepository, "", nil)
	}
	booted, err := e.d.Slots.Booted()
	if err != nil {
		return Available{}, fmt.Errorf("check for updates: %w", err)
	}
	res, err := e.verify(ctx, e.networkSource(), false, bootenv.Other(booted))
	if err != nil {
		e.recordCheck(ctx, nil, err)
		return Available{}, err
	}
	a := available(res, e.cfg.Version)
	e.recordCheck(ctx, &a, nil)
	return a, nil
}

// Available describes the newest signed release.
type Available struct {
	Version string
	Current string
	Newer   bool
	Bytes   int64
	Created time.Time
	NotesFR string
	NotesEN string
}

func available(res tufclient.Result, current string) Available {
	a := Available{Version: res.Manifest.Version, Current: current, Created: res.Manifest.Created,
		NotesFR: res.Manifest.Notes["fr"], NotesEN: res.Manifest.Notes["en"]}
	a.Newer = bootenv.CompareVersions(a.Version, current) > 0
	for _, p := range res.Parts {
		a.Bytes += p.Length
	}
	return a
}

func (e *Engine) networkSource() tufclient.HTTPSource {
	return tufclient.HTTPSource{Base: e.cfg.RepositoryURL, HTTP: e.d.HTTP}
}

// Apply installs the newest release from the repository, or resumes the
// update in progress: download into the inactive slot, verify, wait for
// the maintenance window, arm the boot loader and reboot. It returns
// ErrRebooting once the reboot was asked for. It blocks while waiting for
// the window; a caller may cancel ctx once Progress says StateWritten:
// Serve finishes the job.
func (e *Engine) Apply(ctx context.Context, progress func(Progress)) error {
	return e.exclusive(ctx, false, func(ctx context.Context) error {
		e.setProgressCB(progress)
		r, err := e.load(ctx)
		if err != nil {
			return err
		}
		if !atRest(r.State, r.Settled) {
			return e.drive(ctx)
		}
		if e.cfg.RepositoryURL == "" {
			return newError(CodeNoRepository, "", nil)
		}
		booted, err := e.d.Slots.Booted()
		if err != nil {
			return fmt.Errorf("apply update: %w", err)
		}
		target := bootenv.Other(booted)
		e.report(Progress{State: r.State, Checking: true})
		res, err := e.verify(ctx, e.networkSource(), false, target)
		if err != nil {
			e.recordCheck(ctx, nil, err)
			return err
		}
		a := available(res, e.cfg.Version)
		e.recordCheck(ctx, &a, nil)
		if !a.Newer {
			return newError(CodeUpToDate, e.cfg.Version, nil)
		}
		// A version that failed its trial here is not tried again every
		// night: a newer release, or a technician with a USB key, is
		// needed.
		var n int
		if err := e.db.QueryRowContext(ctx, `SELECT count(*) FROM firmware_history
			WHERE to_version = ? AND result = 'rolled_back' AND reason_code != ?`, a.Version, CodeCancelled).Scan(&n); err != nil {
			return fmt.Errorf("apply update: %w", err)
		}
		if n > 0 {
			return newError(CodeRolledBefore, a.Version, nil)
		}
		if err := e.begin(ctx, res, "network", "", booted, target); err != nil {
			return err
		}
		return e.drive(ctx)
	})
}

// ApplyFile installs the release carried on a USB key: path is a bundle
// folder or .tar (preau release bundle) holding the repository's
// metadata and the release's targets. It is verified exactly like a
// network update, against the box's trusted root and the metadata it
// already trusts (see the clock policy in the package documentation).
func (e *Engine) ApplyFile(ctx context.Context, path string, progress func(Progress)) error {
	return e.exclusive(ctx, false, func(ctx context.Context) error {
		e.setProgressCB(progress)
		r, err := e.load(ctx)
		if err != nil {
			return err
		}
		if !atRest(r.State, r.Settled) {
			if r.Source == "file" && r.SourcePath == path {
				return e.drive(ctx)
			}
			return newError(CodeBusy, "", nil)
		}
		b, err := tufclient.OpenBundle(path)
		if err != nil {
			return newError(CodeBundle, err.Error(), err)
		}
		defer b.Close()
		booted, err := e.d.Slots.Booted()
		if err != nil {
			return fmt.Errorf("apply update from %s: %w", path, err)
		}
		target := bootenv.Other(booted)
		e.report(Progress{State: r.State, Checking: true})
		res, err := e.verify(ctx, b, true, target)
		if err != nil {
			return err
		}
		if bootenv.CompareVersions(res.Manifest.Version, e.cfg.Version) <= 0 {
			return newError(CodeDowngrade, res.Manifest.Version, nil)
		}
		if err := e.begin(ctx, res, "file", path, booted, target); err != nil {
			return err
		}
		return e.drive(ctx)
	})
}

func (e *Engine) setProgressCB(cb func(Progress)) {
	e.mu.Lock()
	e.onProg = cb
	e.rateAt = time.Time{}
	e.mu.Unlock()
}

// begin records a new attempt and enters downloading.
func (e *Engine) begin(ctx context.Context, res tufclient.Result, source, path, booted, target string) error {
	var parts []partRow
	for _, p := range res.Parts {
		if p.Length > e.cfg.MaxImageBytes {
			return newError(CodeTooLarge, p.Target, nil)
		}
		parts = append(parts, partRow{Name: p.Name, Target: p.Target, Rel: p.Rel, Length: p.Length, SHA256: p.SHA256})
	}
	have := map[string]bool{}
	for _, name := range e.d.Slots.Parts() {
		have[name] = true
	}
	for _, p := range parts {
		if !have[p.Name] {
			return newError(CodeBadManifest, "part "+p.Name+" unknown to this box", nil)
		}
	}
	r := row{
		State: StateDownloading, Source: source, SourcePath: path, FromSlot: booted,
		FromVersion: e.cfg.Version, TargetSlot: target, Version: res.Manifest.Version, Parts: parts,
		ProgressMark: -1,
	}
	now := e.clock.Now().UnixMilli()
	err := e.save(ctx, &r, func(tx *sql.Tx) error {
		res, err := tx.Exec(`INSERT INTO firmware_history (started_at, source, from_version,
			to_version, target_slot, result) VALUES (?, ?, ?, ?, ?, 'in_progress')`,
			now, source, e.cfg.Version, r.Version, target)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE firmware_update SET attempt = ? WHERE id = 1`, id)
		return err
	})
	if err != nil {
		return err
	}
	e.log.Info("update started", "from", e.cfg.Version, "to", r.Version, "slot", target, "source", source)
	return nil
}

// errTrialPending stops drive while the trial waits for Boot.
var errTrialPending = errors.New("the new slot is on trial")

// drive runs the state machine until the update is at rest, rebooting,
// or an error stops it.
func (e *Engine) drive(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := e.load(ctx)
		if err != nil {
			return err
		}
		if atRest(r.State, r.Settled) {
			return nil
		}
		switch r.State {
		case StateDownloading:
			err = e.doDownloading(ctx, &r)
		case StateVerified:
			err = e.doVerified(ctx, &r)
		case StateWritten:
			err = e.doWritten(ctx, &r)
		case StateTrying:
			bootID, berr := e.d.BootID()
			if berr != nil {
				return berr
			}
			if r.ArmedBoot != bootID {
				return newError(CodeTrialPending, "", errTrialPending)
			}
			err = e.doTrying(ctx, &r)
		case StateCommitted, StateRolledBack, StateFailed:
			err = e.settle(ctx, &r)
		default:
			return fmt.Errorf("update state %q unknown", r.State)
		}
		if err != nil {
			return err
		}
	}
}

// transition enters next: saved before its side effect.
func (e *Engine) transition(ctx context.Context, r *row, next State) error {
	e.log.Info("update state", "state", next, "version", r.Version, "slot", r.TargetSlot)
	r.State, r.Entries, r.ProgressMark = next, 0, -1
	return e.save(ctx, r, nil)
}

// reenter counts one more entry into r's state (mark: progress so far, or
// -1); it reports whether the cap is passed.
func (e *Engine) reenter(ctx context.Context, r *row, mark int64) (bool, error) {
	if mark >= 0 && mark > r.ProgressMark {
		r.ProgressMark, r.Entries = mark, 1
	} else {
		r.Entries++
	}
	if err := e.save(ctx, r, nil); err != nil {
		return false, err
	}
	return r.Entries > e.cfg.MaxReentries, nil
}

// end enters a terminal state with its reason, then settles it.
func (e *Engine) end(ctx context.Context, r *row, state State, why *Error) error {
	e.log.Warn("update ended", "state", state, "version", r.Version, "reason", why.Code, "detail", why.EN)
	r.State, r.Settled, r.Entries, r.Reason = state, false, 0, why.reason()
	r.Offset, r.HashState, r.PartIndex = 0, nil, 0
	if err := e.save(ctx, r, nil); err != nil {
		return err
	}
	return e.settle(ctx, r)
}

// fail ends an attempt before the trial (state failed) or during it
// (rolled_back).
func (e *Engine) fail(ctx context.Context, r *row, why *Error) error {
	state := StateFailed
	if r.State == StateTrying || r.State == StateCommitted {
		state = StateRolledBack
	}
	if err := e.end(ctx, r, state, why); err != nil {
		return err
	}
	return why
}

// settle does the side effect of a terminal state and closes the attempt.
func (e *Engine) settle(ctx context.Context, r *row) error {
	result := string(r.State)
	switch r.State {
	case StateCommitted:
		if err := e.at("commit:before"); err != nil {
			return err
		}
		if err := e.d.BootEnv.Commit(ctx, r.TargetSlot); err != nil {
			return fmt.Errorf("commit slot %s: %w", r.TargetSlot, err)
		}
		if err := e.at("commit:after"); err != nil {
			return err
		}
	case StateRolledBack, StateFailed:
		if err := e.at("rollback:before"); err != nil {
			return err
		}
		if err := e.d.BootEnv.Disarm(ctx, r.TargetSlot); err != nil && !errors.Is(err, bootenv.ErrCommittedSlot) {
			return fmt.Errorf("disarm slot %s: %w", r.TargetSlot, err)
		}
		if err := e.at("rollback:after"); err != nil {
			return err
		}
	}
	r.Settled = true
	now := e.clock.Now().UnixMilli()
	err := e.save(ctx, r, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE firmware_history SET ended_at = ?, result = ?, reason_code = ?,
			reason_fr = ?, reason_en = ? WHERE id = ?`, now, result, r.Reason.Code, r.Reason.FR, r.Reason.EN, r.Attempt)
		return err
	})
	if err != nil {
		return err
	}
	if r.State == StateCommitted {
		e.log.Info("update committed", "version", r.Version, "slot", r.TargetSlot)
	}
	if r.State == StateRolledBack {
		return e.leaveBadSlot(ctx, r)
	}
	return nil
}

// leaveBadSlot reboots when the box runs the slot that was just rolled
// back: the boot loader now starts the committed one.
func (e *Engine) leaveBadSlot(ctx context.Context, r *row) error {
	booted, err := e.d.Slots.Booted()
	if err != nil || booted != r.TargetSlot {
		return err
	}
	e.log.Warn("rebooting into the committed slot", "from", r.TargetSlot)
	if err := e.d.Reboot(ctx, false); err != nil {
		return newError(CodeReboot, err.Error(), err)
	}
	return ErrRebooting
}

func (e *Engine) doDownloading(ctx context.Context, r *row) error {
	capped, err := e.reenter(ctx, r, r.done())
	if err != nil {
		return err
	}
	if capped {
		return e.fail(ctx, r, newError(CodeReentries, string(r.State), nil))
	}
	if err := e.at("downloading:before"); err != nil {
		return err
	}
	// The boot loader must neither try nor fall back to a slot being
	// written: its entry goes first (idempotent).
	if err := e.d.BootEnv.Disarm(ctx, r.TargetSlot); err != nil {
		return fmt.Errorf("disarm slot %s: %w", r.TargetSlot, err)
	}
	var bundle *tufclient.Bundle
	if r.Source == "file" {
		bundle, err = tufclient.OpenBundle(r.SourcePath)
		if err != nil {
			return e.fail(ctx, r, newError(CodeBundleGone, r.SourcePath, err))
		}
		defer bundle.Close()
	}
	total := r.total()
	for r.PartIndex < len(r.Parts) {
		p := r.Parts[r.PartIndex]
		before := r.done() - r.Offset
		part, err := e.d.Slots.OpenPart(r.TargetSlot, p.Name)
		if err != nil {
			return e.fail(ctx, r, newError(CodeSlotWrite, err.Error(), err))
		}
		if c, err := part.Capacity(); err != nil || (c >= 0 && c < p.Length) {
			part.Close()
			return e.fail(ctx, r, newError(CodeSlotTooSmall, part.Path, err))
		}
		var src stream.Source
		if bundle != nil {
			ra, size, closer, err := bundle.Open(p.Rel)
			if err != nil {
				part.Close()
				return e.fail(ctx, r, newError(CodeBundleGone, p.Rel, err))
			}
			defer closer.Close()
			if size != p.Length {
				part.Close()
				return e.fail(ctx, r, newError(CodeWrongLength, p.Target, nil))
			}
			src = stream.File{R: ra, Size: size}
		} else {
			src = stream.HTTP{URL: e.networkSource().URL(p.Rel), Length: p.Length, Doer: e.d.HTTP, Wait: e.d.Wait}
		}
		idx := r.PartIndex
		err = stream.Run(ctx, stream.Job{
			Src: src, Dst: part, Length: p.Length, SHA256: p.SHA256,
			From: stream.Checkpoint{Offset: r.Offset, Hash: r.HashState},
			Save: func(cp stream.Checkpoint) error {
				r.PartIndex, r.Offset, r.HashState = idx, cp.Offset, cp.Hash
				return e.save(ctx, r, nil)
			},
			Progress: func(done, _ int64) {
				e.report(Progress{State: StateDownloading, Part: p.Name, Done: before + done, Total: total})
			},
			CheckpointBytes: e.cfg.CheckpointBytes,
			Sleep:           e.clock.Sleep,
			Now:             e.clock.Now,
			Hook: func(point string) error {
				return e.at("downloading:" + point)
			},
		})
		if err == nil {
			err = part.Finish(p.Length)
			if err != nil {
				err = newError(CodeSlotWrite, err.Error(), err)
			}
		}
		part.Close()
		switch {
		case err == nil:
		case errors.Is(err, stream.ErrTampered):
			return e.fail(ctx, r, newError(CodeTampered, p.Target, err))
		case errors.Is(err, stream.ErrBadLength):
			return e.fail(ctx, r, newError(CodeWrongLength, p.Target, err))
		case errors.Is(err, stream.ErrGone):
			return e.fail(ctx, r, newError(CodeSourceGone, p.Target, err))
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, stream.ErrWrite):
			return newError(CodeSlotWrite, err.Error(), err) // retried on the next entry, capped
		default:
			if _, ok := asError(err); ok {
				return err
			}
			if bundle != nil {
				return newError(CodeBundleGone, err.Error(), err)
			}
			return newError(CodeNetwork, err.Error(), err)
		}
		r.PartIndex, r.Offset, r.HashState = idx+1, 0, nil
		if err := e.save(ctx, r, nil); err != nil {
			return err
		}
	}
	if err := e.at("downloading:after"); err != nil {
		return err
	}
	return e.transition(ctx, r, StateVerified)
}

func (e *Engine) doVerified(ctx context.Context, r *row) error {
	capped, err := e.reenter(ctx, r, -1)
	if err != nil {
		return err
	}
	if capped {
		return e.fail(ctx, r, newError(CodeReentries, string(r.State), nil))
	}
	if err := e.at("verified:before"); err != nil {
		return err
	}
	e.report(Progress{State: StateVerified, Done: r.total(), Total: r.total(), Rehashing: true})
	for _, p := range r.Parts {
		part, err := e.d.Slots.OpenPart(r.TargetSlot, p.Name)
		if err != nil {
			return newError(CodeSlotWrite, err.Error(), err)
		}
		err = stream.Rehash(ctx, part, p.Length, p.SHA256)
		part.Close()
		if errors.Is(err, stream.ErrTampered) {
			return e.fail(ctx, r, newError(CodeSlotVerify, p.Name, err))
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return newError(CodeSlotVerify, err.Error(), err)
		}
	}
	if err := e.at("verified:after"); err != nil {
		return err
	}
	return e.transition(ctx, r, StateWritten)
}

func (e *Engine) doWritten(ctx context.Context, r *row) error {
	capped, err := e.reenter(ctx, r, -1)
	if err != nil {
		return err
	}
	if capped {
		return e.fail(ctx, r, newError(CodeReentries, string(r.State), nil))
	}
	if err := e.at("written:before"); err != nil {
		return err
	}
	for {
		now := e.clock.Now()
		if e.trialFits(now) {
			break
		}
		next := e.win.Next(now)
		if !next.After(now) {
			next = e.win.Next(now.Add(e.cfg.HealthTimeout + trialBootMargin))
		}
		e.report(Progress{State: StateWritten, Done: r.total(), Total: r.total(), RebootAt: next})
		// Re-read the clock at least hourly: NTP may step it.
		if err := e.clock.Sleep(ctx, min(next.Sub(now), time.Hour)); err != nil {
			return err
		}
	}
	if err := e.at("written:after"); err != nil {
		return err
	}
	bootID, err := e.d.BootID()
	if err != nil {
		return err
	}
	r.ArmedBoot, r.RebootAsked, r.TrialBoot, r.LastCheck = bootID, false, "", ""
	return e.transition(ctx, r, StateTrying)
}

// trialBootMargin is the time a reboot takes before preau runs.
const trialBootMargin = 10 * time.Minute

// trialFits reports whether a trial started at now ends, health gate
// included (HealthTimeout), inside the maintenance window: a rollback
// reboot then happens in the window too.
func (e *Engine) trialFits(now time.Time) bool {
	return e.win.Contains(now) && e.win.Contains(now.Add(e.cfg.HealthTimeout+trialBootMargin))
}

func (e *Engine) doTrying(ctx context.Context, r *row) error {
	capped, err := e.reenter(ctx, r, -1)
	if err != nil {
		return err
	}
	if capped {
		return e.fail(ctx, r, newError(CodeReentries, string(r.State), nil))
	}
	if !e.trialFits(e.clock.Now()) {
		// Restarted after the window closed: wait for the next one with
		// the slot disarmed, so a stray reboot does not try it in class.
		if err := e.d.BootEnv.Disarm(ctx, r.TargetSlot); err != nil {
			return fmt.Errorf("disarm slot %s: %w", r.TargetSlot, err)
		}
		r.ArmedBoot = ""
		return e.transition(ctx, r, StateWritten)
	}
	if err := e.at("trying:before"); err != nil {
		return err
	}
	if err := e.d.BootEnv.Arm(ctx, r.TargetSlot, r.Version); err != nil {
		return fmt.Errorf("arm slot %s: %w", r.TargetSlot, err)
	}
	if err := e.at("trying:after"); err != nil {
		return err
	}
	r.RebootAsked = true
	if err := e.save(ctx, r, nil); err != nil {
		return err
	}
	e.report(Progress{State: StateTrying, Done: r.total(), Total: r.total()})
	e.log.Info("rebooting into the new slot", "version", r.Version, "slot", r.TargetSlot)
	if err := e.d.Reboot(ctx, e.d.BootEnv.OneShot()); err != nil {
		return newError(CodeReboot, err.Error(), err)
	}
	return ErrRebooting
}

// Rollback cancels the update in progress with the technician's reason:
// before the trial the slot is disarmed and the attempt fails; during the
// trial the new slot is abandoned and, when the box runs it, the box
// reboots into the committed one. A committed update is not rolled back.
func (e *Engine) Rollback(ctx context.Context, reason string) error {
	return e.exclusive(ctx, true, func(ctx context.Context) error {
		r, err := e.load(ctx)
		if err != nil {
			return err
		}
		if atRest(r.State, r.Settled) || r.State == StateCommitted {
			return newError(CodeNothingToCancel, "", nil)
		}
		if strings.TrimSpace(reason) == "" {
			reason = "sans motif donné / no reason given"
		}
		if r.State == StateRolledBack || r.State == StateFailed {
			return e.settle(ctx, &r)
		}
		err = e.fail(ctx, &r, newError(CodeCancelled, reason, nil))
		if ue, ok := asError(err); ok && ue.Code == CodeCancelled {
			return nil
		}
		return err
	})
}

// Status is what preau update status and the console show.
type Status struct {
	State      State
	Settled    bool
	Running    string // version of the running image
	BootedSlot string
	Target     string // version being installed or last installed
	TargetSlot string
	Source     string
	SourcePath string
	Progress   Progress
	// Reason is why the last attempt failed or rolled back.
	Reason Reason
	// Last is the last finished attempt, if any.
	Last *Attempt
	// Available is the last check's result; CheckError why it failed.
	Available  *Available
	CheckedAt  time.Time
	CheckError Reason
	// Window is the maintenance window, as configured.
	WindowStart, WindowEnd string
	NextWindow             time.Time
}

// Status reports the engine's state.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	r, err := e.load(ctx)
	if err != nil {
		return Status{}, err
	}
	s := Status{
		State: r.State, Settled: r.Settled, Running: e.cfg.Version, Target: r.Version, TargetSlot: r.TargetSlot,
		Source: r.Source, SourcePath: r.SourcePath, Reason: r.Reason,
		WindowStart: e.cfg.WindowStart, WindowEnd: e.cfg.WindowEnd, NextWindow: e.win.Next(e.clock.Now()),
	}
	s.BootedSlot, _ = e.d.Slots.Booted()
	e.mu.Lock()
	s.Progress = e.progress
	e.mu.Unlock()
	if s.Progress.State != r.State {
		s.Progress = Progress{State: r.State, Done: r.done(), Total: r.total()}
	}
	hist, err := e.History(ctx, 5)
	if err != nil {
		return s, err
	}
	for _, a := range hist {
		if a.Result != "in_progress" {
			a := a
			s.Last = &a
			break
		}
	}
	var (
		checked, created, bytes int64
		a                       Available
	)
	err = e.db.QueryRowContext(ctx, `SELECT checked_at, version, bytes, created, notes_fr, notes_en,
		error_code, error_fr, error_en FROM firmware_check WHERE id = 1`).Scan(&checked, &a.Version, &bytes,
		&created, &a.NotesFR, &a.NotesEN, &s.CheckError.Code, &s.CheckError.FR, &s.CheckError.EN)
	if err == nil {
		s.CheckedAt = time.UnixMilli(checked)
		if a.Version != "" {
			a.Bytes, a.Current = bytes, e.cfg.Version
			a.Created = time.Unix(created, 0)
			a.Newer = bootenv.CompareVersions(a.Version, e.cfg.Version) > 0
			s.Available = &a
		}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("update status: %w", err)
	}
	return s, nil
}

// recordCheck keeps the last check's outcome for Status.
func (e *Engine) recordCheck(ctx context.Context, a *Available, err error) {
	var why Reason
	if err != nil {
		if ue, ok := asError(err); ok {
			why = ue.reason()
		} else {
			why = Reason{Code: "error", FR: err.Error(), EN: err.Error()}
		}
	}
	var av Available
	if a != nil {
		av = *a
	}
	_, dberr := e.db.ExecContext(context.WithoutCancel(ctx), `INSERT INTO firmware_check (id, checked_at, version,
		bytes, created, notes_fr, notes_en, error_code, error_fr, error_en) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at, version = CASE WHEN excluded.version = ''
		THEN version ELSE excluded.version END, bytes = CASE WHEN excluded.version = '' THEN bytes ELSE excluded.bytes END,
		created = CASE WHEN excluded.version = '' THEN created ELSE excluded.created END,
		notes_fr = CASE WHEN excluded.version = '' THEN notes_fr ELSE excluded.notes_fr END,
		notes_en = CASE WHEN excluded.version = '' THEN notes_en ELSE excluded.notes_en END,
		error_code = excluded.error_code, error_fr = excluded.error_fr, error_en = excluded.error_en`,
		e.clock.Now().UnixMilli(), av.Version, av.Bytes, av.Created.Unix(), av.NotesFR, av.NotesEN,
		why.Code, why.FR, why.EN)
	if dberr != nil {
		e.log.Warn("record update check", "err", dberr)
	}
}
