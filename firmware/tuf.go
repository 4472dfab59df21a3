package firmware

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"preau/firmware/internal/tufclient"
)

// Clock policy
//
// Boxes run weeks offline and Pi-class boards have no real-time clock:
// they boot in 1970 until NTP answers. TUF judges expiry against a
// reference time; go-tuf takes it from the updater (trustedmetadata's
// RefTime, set with UnsafeSetRefTime), and the engine chooses it:
//
//   - The floor F is the latest instant the box knows has passed: the
//     running image's build time, the clock at the last successful online
//     verification, and the creation date of every release it verified
//     (signed by the targets key), whichever is latest. It is kept in
//     SQLite (firmware_clock).
//   - The clock is plausible when now >= F.
//   - Network updates (Check, Apply) make no expiry decision while the
//     clock is not plausible: they stop with CodeClock (transient) and
//     try again after NTP. With a plausible clock every role is judged at
//     now, with no grace: an expired or frozen timestamp is refused.
//   - USB updates (ApplyFile) judge at R = max(now, F): with a wrong clock
//     they judge at the one instant the box knows has passed, never at
//     1970. Timestamp, snapshot and targets are accepted up to
//     Config.OfflineGrace (default 30 days) past their expiry at R — a
//     key prepared before a long offline period; root gets no grace.
//   - Accepted: metadata valid at the reference time (or, on USB, expired
//     less than the grace before it). Refused: anything expired at the
//     reference time (beyond the grace on USB), and, always, older
//     versions than already trusted (rollback), unsigned or
//     mix-and-match metadata, a target whose length or hash differs.
//   - Accepting metadata never moves F past a release's signed creation
//     date, so a wrong clock cannot lock the box out for the future.

// verify runs the TUF verification against src for the release of this
// box's channel and architecture to install in slot, under the clock
// policy; on success it stores the metadata it now trusts.
func (e *Engine) verify(ctx context.Context, src tufclient.Source, usb bool, slot string) (tufclient.Result, error) {
	e.verifyMu.Lock()
	defer e.verifyMu.Unlock()
	root, err := e.trustedRoot(ctx)
	if err != nil {
		return tufclient.Result{}, err
	}
	stored, err := e.storedMetadata(ctx)
	if err != nil {
		return tufclient.Result{}, err
	}
	floor, err := e.floor(ctx)
	if err != nil {
		return tufclient.Result{}, err
	}
	now := e.clock.Now()
	ref, rootRef := now, now
	if usb {
		ref = now
		if floor.After(ref) {
			ref = floor
		}
		rootRef = ref
		if e.cfg.OfflineGrace > 0 {
			ref = ref.Add(-e.cfg.OfflineGrace)
		}
	} else if now.Before(floor) {
		return tufclient.Result{}, newError(CodeClock, fmt.Sprintf("%s < %s",
			now.UTC().Format(time.RFC3339), floor.UTC().Format(time.RFC3339)), nil)
	}
	res, err := tufclient.Verify(ctx, tufclient.Request{
		TrustedRoot: root, Stored: stored, Source: src, RefTime: ref, RootRefTime: rootRef,
		WorkDir: filepath.Join(e.cfg.StateDir, "work"), Channel: e.cfg.Channel, Arch: e.cfg.Arch, Slot: slot,
	})
	if err != nil {
		return res, e.refusal(err)
	}
	newFloor := floor
	if !usb && now.After(newFloor) {
		newFloor = now
	}
	if c := res.Manifest.Created; c.After(newFloor) && !c.After(res.Expires) {
		newFloor = c
	}
	if err := e.storeTrusted(ctx, res.Metadata, newFloor); err != nil {
		return res, err
	}
	return res, nil
}

// refusal turns a verification error into an Error.
func (e *Engine) refusal(err error) error {
	var r *tufclient.Refusal
	if !errors.As(err, &r) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return newError(CodeNetwork, err.Error(), err)
	}
	e.log.Warn("update verification refused", "code", r.Code, "role", r.Role, "detail", r.Detail)
	detail := r.Role
	switch r.Code {
	case tufclient.CodeNetwork, tufclient.CodeRepository, tufclient.CodeBadManifest, tufclient.CodeNoRelease:
		detail = r.Detail
	case tufclient.CodeTampered, tufclient.CodeWrongLength, tufclient.CodeTooLarge:
		if r.Role == "release" {
			detail = tufclient.ManifestPath(e.cfg.Channel, e.cfg.Arch)
		}
	}
	return newError(r.Code, detail, err)
}

// trustedRoot is the newer of the root shipped in the image and the one
// stored after a rotation.
func (e *Engine) trustedRoot(ctx context.Context) ([]byte, error) {
	shipped, serr := os.ReadFile(e.cfg.TrustedRoot)
	var stored []byte
	err := e.db.QueryRowContext(ctx, `SELECT data FROM firmware_tuf WHERE name = 'root.json'`).Scan(&stored)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	switch {
	case serr != nil && stored == nil:
		return nil, fmt.Errorf("trusted root: %w", serr)
	case serr != nil:
		return stored, nil
	case stored == nil:
		return shipped, nil
	}
	sv, err1 := tufclient.RootVersion(stored)
	hv, err2 := tufclient.RootVersion(shipped)
	if err1 != nil || (err2 == nil && hv > sv) {
		return shipped, nil
	}
	return stored, nil
}

func (e *Engine) storedMetadata(ctx context.Context) (map[string][]byte, error) {
	rows, err := e.db.QueryContext(ctx, `SELECT name, data FROM firmware_tuf`)
	if err != nil {
		return nil, fmt.Errorf("trusted metadata: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var name string
		var data []byte
		if err := rows.Scan(&name, &data); err != nil {
			return nil, fmt.Errorf("trusted metadata: %w", err)
		}
		out[name] = data
	}
	return out, rows.Err()
}

// floor is the latest instant the box knows has passed.
func (e *Engine) floor(ctx context.Context) (time.Time, error) {
	f := e.cfg.BuildTime
	var s int64
	err := e.db.QueryRowContext(ctx, `SELECT last_good FROM firmware_clock WHERE id = 1`).Scan(&s)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("clock floor: %w", err)
	}
	if t := time.Unix(s, 0); err == nil && t.After(f) {
		f = t
	}
	return f, nil
}

func (e *Engine) storeTrusted(ctx context.Context, md map[string][]byte, floor time.Time) error {
	now := e.clock.Now().UnixMilli()
	err := e.durable(ctx, func(tx *sql.Tx) error {
		for name, data := range md {
			if _, err := tx.Exec(`INSERT INTO firmware_tuf (name, data, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`, name, data, now); err != nil {
				return err
			}
		}
		if !floor.IsZero() {
			if _, err := tx.Exec(`INSERT INTO firmware_clock (id, last_good) VALUES (1, ?)
			ON CONFLICT (id) DO UPDATE SET last_good = max(last_good, excluded.last_good)`, floor.Unix()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store trusted metadata: %w", err)
	}
	return nil
}
