package content

// Migration is one numbered step of the content schema. Versions start at 1;
// appliance/store applies each in its own transaction, in order.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the content schema. A released migration never
// changes; new ones are appended.
func Migrations() []Migration {
	return []Migration{{
		Version: 1,
		Name:    "packs items files search",
		SQL: `
CREATE TABLE content_packs (
	id              TEXT PRIMARY KEY,
	version         TEXT NOT NULL,
	title           TEXT NOT NULL,
	description     TEXT NOT NULL DEFAULT '',
	publisher       TEXT NOT NULL DEFAULT '',
	language        TEXT NOT NULL,
	created         INTEGER,          -- unix seconds, NULL when the manifest has none
	manifest_sha256 TEXT NOT NULL,
	bytes           INTEGER NOT NULL,
	imported_at     INTEGER NOT NULL  -- unix milliseconds
) STRICT;

CREATE TABLE content_files (
	pack       TEXT NOT NULL REFERENCES content_packs(id) ON DELETE CASCADE,
	path       TEXT NOT NULL,
	size       INTEGER NOT NULL,
	sha256     TEXT NOT NULL,
	media_type TEXT NOT NULL,
	PRIMARY KEY (pack, path)
) STRICT;
CREATE INDEX content_files_sha256 ON content_files(sha256);

CREATE TABLE content_items (
	pack        TEXT NOT NULL REFERENCES content_packs(id) ON DELETE CASCADE,
	id          TEXT NOT NULL,
	position    INTEGER NOT NULL,
	title       TEXT NOT NULL,
	sort_key    TEXT NOT NULL,   -- title folded: lower case, no accents
	description TEXT NOT NULL,
	kind        TEXT NOT NULL,
	language    TEXT NOT NULL,
	licence     TEXT NOT NULL,
	source      TEXT NOT NULL,
	authors     TEXT NOT NULL,   -- JSON array
	entry       TEXT NOT NULL,
	thumbnail   TEXT NOT NULL,
	PRIMARY KEY (pack, id)
) STRICT;
CREATE INDEX content_items_sort ON content_items(sort_key, title);

CREATE TABLE content_item_levels (
	pack     TEXT NOT NULL,
	item     TEXT NOT NULL,
	level    TEXT NOT NULL,
	position INTEGER NOT NULL,
	PRIMARY KEY (pack, item, level),
	FOREIGN KEY (pack, item) REFERENCES content_items(pack, id) ON DELETE CASCADE
) STRICT;

CREATE TABLE content_item_subjects (
	pack     TEXT NOT NULL,
	item     TEXT NOT NULL,
	subject  TEXT NOT NULL,
	position INTEGER NOT NULL,
	PRIMARY KEY (pack, item, subject),
	FOREIGN KEY (pack, item) REFERENCES content_items(pack, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX content_item_subjects_subject ON content_item_subjects(subject);

CREATE TABLE content_item_files (
	pack     TEXT NOT NULL,
	item     TEXT NOT NULL,
	path     TEXT NOT NULL,
	position INTEGER NOT NULL,
	PRIMARY KEY (pack, item, path),
	FOREIGN KEY (pack, item) REFERENCES content_items(pack, id) ON DELETE CASCADE,
	FOREIGN KEY (pack, path) REFERENCES content_files(pack, path) ON DELETE CASCADE
) STRICT;

-- Search: one row per item; body is the text of an article's HTML entry.
CREATE VIRTUAL TABLE content_search USING fts5(
	pack UNINDEXED, item UNINDEXED, title, description, subjects, body,
	tokenize = 'unicode61 remove_diacritics 2'
);
`,
	}, {
		Version: 2,
		Name:    "pinned blobs",
		SQL: `
-- Blobs other components stored (pupils' hand-ins): GC and pack removal
-- keep a blob while any owner pins it.
CREATE TABLE content_pins (
	owner     TEXT NOT NULL,
	sha256    TEXT NOT NULL,
	pinned_at INTEGER NOT NULL, -- unix milliseconds
	PRIMARY KEY (owner, sha256)
) STRICT;
CREATE INDEX content_pins_sha256 ON content_pins(sha256);
`,
	}, {
		Version: 3,
		Name:    "catalogue packs, eviction, teachers' pins, scrub",
		SQL: `
-- source: the catalogue source that committed the pack ('' = imported by
-- hand, never evicted). last_access: unix milliseconds, written at most
-- every minute from memory.
ALTER TABLE content_packs ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE content_packs ADD COLUMN last_access INTEGER NOT NULL DEFAULT 0;
UPDATE content_packs SET last_access = imported_at;

-- fetched = 1: the pin FetchBlob took; it protects the blob until a pack
-- that references it goes (removal, eviction, replacement).
ALTER TABLE content_pins ADD COLUMN fetched INTEGER NOT NULL DEFAULT 0;

-- A teacher's pin on a pack. No foreign key: a pack is replaced by delete
-- and insert, and its pin must survive that.
CREATE TABLE content_pack_pins (
	pack  TEXT PRIMARY KEY,
	until INTEGER NOT NULL -- unix milliseconds
) STRICT;

-- Blobs the scrub found damaged and moved to Dir/quarantine.
CREATE TABLE content_damaged (
	sha256   TEXT PRIMARY KEY,
	size     INTEGER NOT NULL,
	found_at INTEGER NOT NULL -- unix milliseconds
) STRICT;

CREATE TABLE content_settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;
`,
	}}
}
