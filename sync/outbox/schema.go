package outbox

// Migration is one numbered step of the outbox schema. Versions start at 1;
// appliance/store applies each in its own transaction, in order, under the
// component name "outbox".
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the outbox schema. A released migration never changes;
// new ones are appended.
func Migrations() []Migration {
	return []Migration{{
		Version: 1,
		Name:    "items",
		SQL: `
CREATE TABLE outbox_items (
	key           TEXT PRIMARY KEY,          -- idempotency key
	destination   TEXT NOT NULL,             -- opaque id, mapped to a connector by appliance
	remote_path   TEXT NOT NULL,             -- deterministic, relative, '/'-separated
	blob_hash     TEXT NOT NULL,             -- the body, in the content store
	size          INTEGER NOT NULL CHECK (size >= 0),
	sha256        TEXT NOT NULL,
	media_type    TEXT NOT NULL,
	priority      INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,          -- unix milliseconds
	state         TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'verifying', 'delivered', 'failed-permanent')),
	attempts      INTEGER NOT NULL DEFAULT 0, -- claims, each counted before any byte leaves
	recoveries    INTEGER NOT NULL DEFAULT 0, -- times found in sending/verifying at start
	next_attempt  INTEGER NOT NULL,          -- unix milliseconds
	last_error    TEXT NOT NULL DEFAULT '',  -- French, for the teacher and the technician
	last_error_en TEXT NOT NULL DEFAULT '',
	verified      INTEGER NOT NULL DEFAULT 0, -- 1 when the remote size (and hash) were checked
	updated_at    INTEGER NOT NULL,
	delivered_at  INTEGER                    -- unix milliseconds, NULL until delivered
) STRICT;
-- Two items can never claim the same remote file: the check before sending
-- would take one's file for the other's.
CREATE UNIQUE INDEX outbox_items_remote ON outbox_items(destination, remote_path);
CREATE INDEX outbox_items_due ON outbox_items(state, next_attempt);
`,
	}}
}
