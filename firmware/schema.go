package firmware

// Migration is one numbered step of the update engine's schema. Versions
// start at 1; appliance/store applies each in its own transaction, in
// order, under the component name "firmware".
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the schema. A released migration never changes; new
// ones are appended. A box that rolls back runs an older preau on the same
// database: only add columns with defaults and tables, never rename.
func Migrations() []Migration {
	return []Migration{{
		Version: 1,
		Name:    "update state history tuf clock",
		SQL: `
CREATE TABLE firmware_update (
	id           INTEGER PRIMARY KEY CHECK (id = 1),
	state        TEXT NOT NULL,              -- idle downloading verified written trying committed rolled_back failed
	settled      INTEGER NOT NULL DEFAULT 1, -- the state's side effect is done (terminal states)
	attempt      INTEGER,                    -- firmware_history.id
	source       TEXT NOT NULL DEFAULT '',   -- network | file
	source_path  TEXT NOT NULL DEFAULT '',
	from_slot    TEXT NOT NULL DEFAULT '',
	from_version TEXT NOT NULL DEFAULT '',
	target_slot  TEXT NOT NULL DEFAULT '',
	version      TEXT NOT NULL DEFAULT '',
	parts        TEXT NOT NULL DEFAULT '[]', -- JSON: name, rel, length, sha256 (verified)
	part_index   INTEGER NOT NULL DEFAULT 0,
	offset       INTEGER NOT NULL DEFAULT 0, -- bytes of parts[part_index] written and synced
	hash_state   BLOB,                       -- marshalled SHA-256 state at offset
	entries      INTEGER NOT NULL DEFAULT 0, -- entries into the state without progress
	progress_mark INTEGER NOT NULL DEFAULT -1,
	armed_boot   TEXT NOT NULL DEFAULT '',   -- boot id when the trial was armed
	reboot_asked INTEGER NOT NULL DEFAULT 0, -- the engine asked for the trial reboot
	trial_boot   TEXT NOT NULL DEFAULT '',   -- boot id of the trial in the new slot
	last_check   TEXT NOT NULL DEFAULT '',   -- health check failing last, during the trial
	reason_code  TEXT NOT NULL DEFAULT '',
	reason_fr    TEXT NOT NULL DEFAULT '',
	reason_en    TEXT NOT NULL DEFAULT '',
	updated_at   INTEGER NOT NULL            -- unix milliseconds
) STRICT;

CREATE TABLE firmware_history (
	id           INTEGER PRIMARY KEY,
	started_at   INTEGER NOT NULL,           -- unix milliseconds
	ended_at     INTEGER,
	source       TEXT NOT NULL,
	from_version TEXT NOT NULL,
	to_version   TEXT NOT NULL,
	target_slot  TEXT NOT NULL,
	result       TEXT NOT NULL,              -- in_progress committed rolled_back failed
	reason_code  TEXT NOT NULL DEFAULT '',
	reason_fr    TEXT NOT NULL DEFAULT '',
	reason_en    TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE firmware_tuf (
	name       TEXT PRIMARY KEY,             -- root.json timestamp.json snapshot.json targets.json
	data       BLOB NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE firmware_clock (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	last_good INTEGER NOT NULL               -- unix seconds: a time known to have passed
) STRICT;

CREATE TABLE firmware_check (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	checked_at  INTEGER NOT NULL,            -- unix milliseconds
	version     TEXT NOT NULL DEFAULT '',
	bytes       INTEGER NOT NULL DEFAULT 0,
	created     INTEGER NOT NULL DEFAULT 0,
	notes_fr    TEXT NOT NULL DEFAULT '',
	notes_en    TEXT NOT NULL DEFAULT '',
	error_code  TEXT NOT NULL DEFAULT '',
	error_fr    TEXT NOT NULL DEFAULT '',
	error_en    TEXT NOT NULL DEFAULT ''
) STRICT;
`,
	}}
}
