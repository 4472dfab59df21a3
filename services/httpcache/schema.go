package httpcache

// Migration is one numbered step of the cache's schema. Versions start at
// 1; appliance/store applies each in its own transaction, in order, under
// the component name "httpcache".
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the cache's schema. A released migration never
// changes; new ones are appended.
func Migrations() []Migration {
	return []Migration{{
		Version: 1,
		Name:    "entries",
		SQL: `
CREATE TABLE httpcache_entries (
	name          TEXT PRIMARY KEY,    -- body file: bodies/<name[0:2]>/<name>
	pkey          TEXT NOT NULL,       -- primary cache key: the target URI
	vary          TEXT NOT NULL,       -- secondary key: request fields named by Vary, normalised; '' without Vary
	status        INTEGER NOT NULL,
	header        BLOB NOT NULL,       -- stored response fields, HTTP/1.1 wire form
	size          INTEGER NOT NULL,    -- body bytes
	request_time  INTEGER NOT NULL,    -- unix ms: request sent upstream
	response_time INTEGER NOT NULL,    -- unix ms: response (or its last 304) received
	last_used     INTEGER NOT NULL     -- unix ms, for LRU eviction
) STRICT;
CREATE UNIQUE INDEX httpcache_entries_key ON httpcache_entries(pkey, vary);
`,
	}}
}
