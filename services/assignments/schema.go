package assignments

// Migration is one numbered step of the assignments schema. Versions start
// at 1; appliance/store applies each in its own transaction, in order, under
// the component name "assignments".
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the assignments schema. A released migration never
// changes; new ones are appended.
func Migrations() []Migration {
	return []Migration{{
		Version: 1,
		Name:    "teachers sessions assignments hand-ins",
		SQL: `
CREATE TABLE assignments_teachers (
	id            INTEGER PRIMARY KEY,
	login         TEXT NOT NULL UNIQUE,  -- lower case
	name          TEXT NOT NULL,
	password_hash TEXT NOT NULL,         -- PHC string: $argon2id$v=19$m=…,t=…,p=…$salt$hash
	created_at    INTEGER NOT NULL       -- unix milliseconds
) STRICT;

-- The cookie holds a random token; only its SHA-256 is stored, so a copy of
-- the database does not open sessions.
CREATE TABLE assignments_sessions (
	token_sha256 TEXT PRIMARY KEY,
	teacher      INTEGER NOT NULL REFERENCES assignments_teachers(id) ON DELETE CASCADE,
	csrf         TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX assignments_sessions_expires ON assignments_sessions(expires_at);

CREATE TABLE assignments (
	id             INTEGER PRIMARY KEY,
	teacher        INTEGER NOT NULL REFERENCES assignments_teachers(id),
	title          TEXT NOT NULL,
	class_code     TEXT NOT NULL,
	instructions   TEXT NOT NULL,
	due_at         INTEGER NOT NULL,     -- unix milliseconds
	destination    TEXT NOT NULL,        -- Config.Destinations[].ID
	kinds          TEXT NOT NULL,        -- allowed kinds, space separated
	max_file_bytes INTEGER NOT NULL,
	refuse_late    INTEGER NOT NULL,     -- 0 or 1
	created_at     INTEGER NOT NULL,
	closed_at      INTEGER               -- NULL while open
) STRICT;
CREATE INDEX assignments_teacher ON assignments(teacher);
CREATE INDEX assignments_open_class ON assignments(class_code) WHERE closed_at IS NULL;

-- One pupil's hand-in. blob_owner is the owner its blobs are pinned under
-- in the content store; device is the SHA-256 of the device cookie.
CREATE TABLE assignments_handins (
	id          INTEGER PRIMARY KEY,
	assignment  INTEGER NOT NULL REFERENCES assignments(id),
	code        TEXT NOT NULL UNIQUE,    -- receipt code without the dash
	pupil       TEXT NOT NULL,
	received_at INTEGER NOT NULL,
	late        INTEGER NOT NULL,
	device      TEXT NOT NULL,
	blob_owner  TEXT NOT NULL,
	notified_at INTEGER                  -- NULL until OnHandIn returned
) STRICT;
CREATE INDEX assignments_handins_assignment ON assignments_handins(assignment);
CREATE INDEX assignments_handins_device ON assignments_handins(device, received_at);
CREATE INDEX assignments_handins_pending ON assignments_handins(id) WHERE notified_at IS NULL;

CREATE TABLE assignments_files (
	id         INTEGER PRIMARY KEY,
	handin     INTEGER NOT NULL REFERENCES assignments_handins(id),
	position   INTEGER NOT NULL,
	name       TEXT NOT NULL,
	media_type TEXT NOT NULL,
	size       INTEGER NOT NULL,
	sha256     TEXT NOT NULL,
	UNIQUE (handin, position)
) STRICT;

-- Blob owners of hand-ins being received: a row is written before the
-- first blob and deleted in the transaction that commits the hand-in, so
-- after a crash every pin belongs either to a hand-in or to a row here.
CREATE TABLE assignments_uploads (
	blob_owner TEXT PRIMARY KEY,
	started_at INTEGER NOT NULL
) STRICT;
`,
	}}
}
