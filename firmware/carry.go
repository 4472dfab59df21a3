package firmware

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// OnTrial reports whether this boot is the trial of a new version that
// the health gate has not judged yet, and which version. appliance calls
// it after applying the firmware migrations and before the others: on a
// trial boot it copies the database aside (VACUUM INTO) before migrating,
// because a rollback returns to a preau that refuses a newer schema.
func (e *Engine) OnTrial(ctx context.Context) (string, bool, error) {
	r, err := e.load(ctx)
	if err != nil {
		return "", false, err
	}
	booted, err := e.d.Slots.Booted()
	if err != nil {
		return "", false, err
	}
	trial := booted == r.TargetSlot && (r.State == StateTrying || r.State == StateCommitted && !r.Settled)
	return r.Version, trial, nil
}

// firmwareTables are the engine's tables; their schema only ever grows
// with defaulted columns, so every preau version can read them.
var firmwareTables = []string{"firmware_update", "firmware_history", "firmware_tuf", "firmware_clock", "firmware_check"}

// CarryOver copies the engine's rows from the database file at srcPath
// into dst, replacing dst's. appliance uses it after a rollback: it
// restores the database saved before the trial, then carries the update's
// state and history over from the database the trial left, so the reason
// of the rollback is not lost with the trial's migrations.
func CarryOver(ctx context.Context, dst *sql.DB, srcPath string) error {
	conn, err := dst.Conn(ctx)
	if err != nil {
		return fmt.Errorf("carry over update state: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS trial`, srcPath); err != nil {
		return fmt.Errorf("carry over update state: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE trial`)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("carry over update state: %w", err)
	}
	defer tx.Rollback()
	for _, table := range firmwareTables {
		cols, err := columns(ctx, tx, "main", table)
		if err != nil {
			return fmt.Errorf("carry over %s: %w", table, err)
		}
		have, err := columns(ctx, tx, "trial", table)
		if err != nil {
			return fmt.Errorf("carry over %s: %w", table, err)
		}
		var common []string
		for _, c := range cols {
			for _, h := range have {
				if c == h {
					common = append(common, c)
				}
			}
		}
		list := strings.Join(common, ", ")
		if _, err := tx.ExecContext(ctx, `DELETE FROM main.`+table); err != nil {
			return fmt.Errorf("carry over %s: %w", table, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO main.`+table+` (`+list+`) SELECT `+list+` FROM trial.`+table); err != nil {
			return fmt.Errorf("carry over %s: %w", table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("carry over update state: %w", err)
	}
	return nil
}

func columns(ctx context.Context, tx *sql.Tx, schema, table string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info(?, ?)`, table, schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, `"`+n+`"`)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no table %s.%s", schema, table)
	}
	return out, rows.Err()
}
