package captive

// Migration is one numbered step of the captive schema. Versions start at 1;
// appliance/store applies each in its own transaction, in order, under the
// component name "captive".
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the captive schema. A released migration never
// changes; new ones are appended.
func Migrations() []Migration {
	return []Migration{{
		Version: 1,
		Name:    "devices and charter acceptance",
		SQL: `
CREATE TABLE captive_devices (
	key         TEXT PRIMARY KEY,  -- "mac:02:00:5e:00:53:01" when the neighbour table knows it, else "ip:192.0.2.7"
	mac         TEXT NOT NULL DEFAULT '',
	ip          TEXT NOT NULL,     -- last address seen
	accepted_at INTEGER,           -- unix milliseconds; NULL: not accepted
	expires_at  INTEGER,           -- unix milliseconds; NULL with accepted_at
	last_seen   INTEGER NOT NULL,  -- unix milliseconds
	CHECK ((accepted_at IS NULL) = (expires_at IS NULL))
) STRICT;
CREATE INDEX captive_devices_last_seen ON captive_devices(last_seen);
`,
	}}
}
