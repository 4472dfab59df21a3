package inventory

// Migration is one numbered step of the inventory schema. Versions start
// at 1; appliance/store applies each in its own transaction, in order.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the inventory schema. A released migration never
// changes; new ones are appended.
//
// Times are unix milliseconds. Only facts are stored (what was observed
// and what the technician set); vendor and class guess are derived when a
// device is read, so that an installed ieee-data or a better rule applies
// to every device at once.
func Migrations() []Migration {
	return []Migration{{
		Version: 1,
		Name:    "devices macs presence glpi",
		SQL: `
CREATE TABLE inventory_devices (
	id          TEXT PRIMARY KEY,          -- first MAC seen, aa:bb:cc:dd:ee:ff
	randomised  INTEGER NOT NULL,          -- 1: locally administered MAC
	first_seen  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL,
	last_mac    TEXT NOT NULL,
	ipv4        TEXT NOT NULL DEFAULT '',
	ipv6        TEXT NOT NULL DEFAULT '',
	hostname    TEXT NOT NULL DEFAULT '',  -- DHCP or portal host name
	client_id   TEXT NOT NULL DEFAULT '',  -- DHCP client identifier, hex
	mdns_host   TEXT NOT NULL DEFAULT '',  -- e.g. macbook-salle-3.local
	mdns_name   TEXT NOT NULL DEFAULT '',  -- DNS-SD instance name
	user_agent  TEXT NOT NULL DEFAULT '',
	services    TEXT NOT NULL DEFAULT '[]', -- JSON array of DNS-SD types, sorted
	hints       TEXT NOT NULL DEFAULT '{}', -- JSON object of TXT model hints
	sources     TEXT NOT NULL DEFAULT '[]', -- JSON array, sorted
	neighbour   TEXT NOT NULL DEFAULT '',  -- last kernel neighbour state
	class_set   TEXT NOT NULL DEFAULT '',  -- technician's class; '' = guessed
	class_by    TEXT NOT NULL DEFAULT '',
	class_at    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX inventory_devices_client_id ON inventory_devices(client_id);
CREATE INDEX inventory_devices_hostname ON inventory_devices(hostname COLLATE NOCASE);
CREATE INDEX inventory_devices_ipv4 ON inventory_devices(ipv4);
CREATE INDEX inventory_devices_ipv6 ON inventory_devices(ipv6);
CREATE INDEX inventory_devices_last_seen ON inventory_devices(last_seen);

CREATE TABLE inventory_macs (
	mac        TEXT PRIMARY KEY,
	device     TEXT NOT NULL REFERENCES inventory_devices(id) ON DELETE CASCADE,
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL
) STRICT;
CREATE INDEX inventory_macs_device ON inventory_macs(device);

-- Presence as closed intervals [start_ms, end_ms] of sightings; two
-- sightings closer than the presence timeout share one interval, and
-- intervals of a device never overlap nor come closer than that.
CREATE TABLE inventory_presence (
	device   TEXT NOT NULL REFERENCES inventory_devices(id) ON DELETE CASCADE,
	start_ms INTEGER NOT NULL,
	end_ms   INTEGER NOT NULL,
	PRIMARY KEY (device, start_ms)
) STRICT, WITHOUT ROWID;
CREATE INDEX inventory_presence_end ON inventory_presence(end_ms);

-- What the GLPI pusher sent and when to try again.
CREATE TABLE inventory_glpi_pushes (
	device     TEXT PRIMARY KEY REFERENCES inventory_devices(id) ON DELETE CASCADE,
	hash       TEXT NOT NULL DEFAULT '', -- SHA-256 of the accepted document, log date left out
	pushed_at  INTEGER NOT NULL DEFAULT 0,
	attempts   INTEGER NOT NULL DEFAULT 0, -- failures since the last success
	next_try   INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT ''
) STRICT;
`,
	}}
}
