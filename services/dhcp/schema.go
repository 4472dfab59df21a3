package dhcp

// Migration is one numbered step of the dhcp schema. Versions start at 1;
// appliance/store applies each in its own transaction, in order.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the dhcp schema. A released migration never changes;
// new ones are appended.
func Migrations() []Migration {
	return []Migration{{
		Version: 1,
		Name:    "leases declined",
		SQL: `
CREATE TABLE dhcp_leases (
	mac      TEXT PRIMARY KEY,          -- "aa:bb:cc:dd:ee:ff"
	ip       TEXT NOT NULL UNIQUE,      -- dotted quad
	hostname TEXT NOT NULL DEFAULT '',  -- option 12, cleaned
	state    TEXT NOT NULL CHECK (state IN ('offered', 'bound', 'released')),
	expires  INTEGER NOT NULL           -- unix milliseconds
) STRICT;

-- Addresses a client declined (RFC 2131 DHCPDECLINE: something else
-- answers ARP for them); not handed out before until.
CREATE TABLE dhcp_declined (
	ip    TEXT PRIMARY KEY,
	mac   TEXT NOT NULL,                -- who declined it
	until INTEGER NOT NULL              -- unix milliseconds
) STRICT;
`,
	}}
}
