package firmware

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// State is where an update stands. The engine saves each state (a
// committed SQLite transaction, synchronous=FULL) before doing its side
// effect, and every side effect can be done again.
type State string

const (
	StateIdle        State = "idle"        // no update ever started
	StateDownloading State = "downloading" // writing the inactive slot (its boot entry removed first)
	StateVerified    State = "verified"    // every byte matched the signed hashes; reading back the slot
	StateWritten     State = "written"     // the slot holds the release; waiting for the maintenance window
	StateTrying      State = "trying"      // boot entry armed, rebooting, then the trial boot and its health gate
	StateCommitted   State = "committed"   // the new slot passed the gate and is the default
	StateRolledBack  State = "rolled_back" // the trial failed or was cancelled: back on the old slot
	StateFailed      State = "failed"      // refused or failed before the trial: nothing changed for the boot loader
)

// atRest reports whether a new update may start from s.
func atRest(s State, settled bool) bool {
	switch s {
	case StateIdle:
		return true
	case StateCommitted, StateRolledBack, StateFailed:
		return settled
	}
	return false
}

// partRow is one verified part of the release being installed.
type partRow struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Rel    string `json:"rel"`
	Length int64  `json:"length"`
	SHA256 string `json:"sha256"`
}

// row is the persisted state of the update (one row).
type row struct {
	State        State
	Settled      bool
	Attempt      int64
	Source       string // "network" or "file"
	SourcePath   string
	FromSlot     string
	FromVersion  string
	TargetSlot   string
	Version      string
	Parts        []partRow
	PartIndex    int
	Offset       int64
	HashState    []byte
	Entries      int
	ProgressMark int64
	ArmedBoot    string
	RebootAsked  bool
	TrialBoot    string
	LastCheck    string
	Reason       Reason
}

func (r *row) total() int64 {
	var n int64
	for _, p := range r.Parts {
		n += p.Length
	}
	return n
}

// done is the number of bytes written and synced so far.
func (r *row) done() int64 {
	var n int64
	for i, p := range r.Parts {
		if i < r.PartIndex {
			n += p.Length
		}
	}
	return n + r.Offset
}

const rowColumns = `state, settled, attempt, source, source_path, from_slot, from_version, target_slot,
	version, parts, part_index, offset, hash_state, entries, progress_mark, armed_boot, reboot_asked, trial_boot,
	last_check, reason_code, reason_fr, reason_en`

func (e *Engine) load(ctx context.Context) (row, error) {
	var (
		r       row
		settled int
		asked   int
		attempt sql.NullInt64
		parts   string
	)
	err := e.db.QueryRowContext(ctx, `SELECT `+rowColumns+` FROM firmware_update WHERE id = 1`).Scan(
		&r.State, &settled, &attempt, &r.Source, &r.SourcePath, &r.FromSlot, &r.FromVersion, &r.TargetSlot,
		&r.Version, &parts, &r.PartIndex, &r.Offset, &r.HashState, &r.Entries, &r.ProgressMark, &r.ArmedBoot,
		&asked, &r.TrialBoot, &r.LastCheck, &r.Reason.Code, &r.Reason.FR, &r.Reason.EN)
	if errors.Is(err, sql.ErrNoRows) {
		return row{State: StateIdle, Settled: true, ProgressMark: -1}, nil
	}
	if err != nil {
		return row{}, fmt.Errorf("load update state: %w", err)
	}
	r.Settled = settled != 0
	r.RebootAsked = asked != 0
	r.Attempt = attempt.Int64
	if err := json.Unmarshal([]byte(parts), &r.Parts); err != nil {
		return row{}, fmt.Errorf("load update state: parts: %w", err)
	}
	return r, nil
}

// durable runs fn in one transaction on a connection switched to
// synchronous=FULL, so the change is on disk when it returns (the box's
// handle uses NORMAL, which may lose the last transactions on a power
// cut). It runs even when ctx is cancelled: a state change must land.
func (e *Engine) durable(ctx context.Context, fn func(*sql.Tx) error) error {
	ctx = context.WithoutCancel(ctx)
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The handle is shared with every component: put the connection back
	// as it was.
	var was int
	if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&was); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA synchronous = %d`, was))
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// save writes r, with extra statements, in one durable transaction,
// before the side effect that follows.
func (e *Engine) save(ctx context.Context, r *row, extra func(*sql.Tx) error) error {
	parts, _ := json.Marshal(r.Parts)
	if r.Parts == nil {
		parts = []byte("[]")
	}
	var attempt any
	if r.Attempt != 0 {
		attempt = r.Attempt
	}
	settled, asked := 0, 0
	if r.Settled {
		settled = 1
	}
	if r.RebootAsked {
		asked = 1
	}
	err := e.durable(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO firmware_update (id, `+rowColumns+`, updated_at)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, settled = excluded.settled,
		attempt = excluded.attempt, source = excluded.source, source_path = excluded.source_path,
		from_slot = excluded.from_slot, from_version = excluded.from_version,
		target_slot = excluded.target_slot, version = excluded.version, parts = excluded.parts,
		part_index = excluded.part_index, offset = excluded.offset, hash_state = excluded.hash_state,
		entries = excluded.entries, progress_mark = excluded.progress_mark,
		armed_boot = excluded.armed_boot, reboot_asked = excluded.reboot_asked, trial_boot = excluded.trial_boot,
		last_check = excluded.last_check, reason_code = excluded.reason_code,
		reason_fr = excluded.reason_fr, reason_en = excluded.reason_en, updated_at = excluded.updated_at`,
			string(r.State), settled, attempt, r.Source, r.SourcePath, r.FromSlot, r.FromVersion, r.TargetSlot,
			r.Version, string(parts), r.PartIndex, r.Offset, r.HashState, r.Entries, r.ProgressMark, r.ArmedBoot,
			asked, r.TrialBoot, r.LastCheck, r.Reason.Code, r.Reason.FR, r.Reason.EN, e.clock.Now().UnixMilli())
		if err != nil {
			return err
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save update state: %w", err)
	}
	return nil
}

// Attempt is one update attempt of the history.
type Attempt struct {
	ID          int64
	Started     time.Time
	Ended       time.Time // zero while in progress
	Source      string    // network or file
	FromVersion string
	ToVersion   string
	Slot        string
	Result      string // in_progress committed rolled_back failed
	Reason      Reason
}

// History returns the last n attempts, newest first.
func (e *Engine) History(ctx context.Context, n int) ([]Attempt, error) {
	rows, err := e.db.QueryContext(ctx, `SELECT id, started_at, ended_at, source, from_version, to_version,
		target_slot, result, reason_code, reason_fr, reason_en FROM firmware_history ORDER BY id DESC LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("update history: %w", err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var started int64
		var ended sql.NullInt64
		if err := rows.Scan(&a.ID, &started, &ended, &a.Source, &a.FromVersion, &a.ToVersion, &a.Slot,
			&a.Result, &a.Reason.Code, &a.Reason.FR, &a.Reason.EN); err != nil {
			return nil, fmt.Errorf("update history: %w", err)
		}
		a.Started = time.UnixMilli(started)
		if ended.Valid {
			a.Ended = time.UnixMilli(ended.Int64)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
