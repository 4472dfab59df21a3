package catalog

// Migration is one numbered step of the catalog schema. Versions start at 1;
// appliance/store applies each in its own transaction, in order, under the
// component name "catalog".
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the catalog schema. A released migration never
// changes; new ones are appended.
func Migrations() []Migration {
	return []Migration{{
		Version: 1,
		Name:    "sources items gar cards",
		SQL: `
-- One catalogue source chosen by the school: a GAR list, a PeerTube
-- channel, playlist or video, a Nextcloud share, a content pack by URL.
CREATE TABLE catalog_sources (
	id           TEXT PRIMARY KEY,
	kind         TEXT NOT NULL,      -- gar, tube, nuage, pack
	name         TEXT NOT NULL,
	params       TEXT NOT NULL,      -- JSON of SourceSpec (without secrets)
	refresh_ms   INTEGER NOT NULL,   -- interval between two refreshes
	created_at   INTEGER NOT NULL,   -- unix milliseconds
	last_refresh INTEGER,            -- last successful refresh, NULL before the first
	next_refresh INTEGER NOT NULL,
	error_fr     TEXT NOT NULL DEFAULT '',
	error_en     TEXT NOT NULL DEFAULT '',
	state        TEXT NOT NULL DEFAULT ''  -- source's own memory between refreshes (JSON)
) STRICT;
CREATE INDEX catalog_sources_next ON catalog_sources(next_refresh);

-- One thing to download: a PeerTube video (one pack), a share (one pack),
-- a pack by URL, a GAR thumbnail. Its state survives restarts so that the
-- portal and the CLI show it, and the download resumes.
CREATE TABLE catalog_items (
	source       TEXT NOT NULL REFERENCES catalog_sources(id) ON DELETE CASCADE,
	key          TEXT NOT NULL,      -- unique in the source (video uuid, "share", URL, "vignette:<id>")
	kind         TEXT NOT NULL,      -- video, share, pack, thumbnail
	position     INTEGER NOT NULL,   -- order in the source's listing
	title        TEXT NOT NULL,
	plan         TEXT NOT NULL,      -- JSON: what to fetch, the pack to build
	pack_id      TEXT NOT NULL DEFAULT '',
	state        TEXT NOT NULL,      -- queued, downloading, done, failed
	bytes_done   INTEGER NOT NULL DEFAULT 0,
	bytes_total  INTEGER NOT NULL DEFAULT 0,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL DEFAULT 0,
	error_fr     TEXT NOT NULL DEFAULT '',
	error_en     TEXT NOT NULL DEFAULT '',
	updated_at   INTEGER NOT NULL,
	PRIMARY KEY (source, key)
) STRICT;
CREATE INDEX catalog_items_due ON catalog_items(state, next_attempt);

-- GAR resources of a school: cards shown offline, never pack items.
CREATE TABLE catalog_gar_cards (
	source        TEXT NOT NULL REFERENCES catalog_sources(id) ON DELETE CASCADE,
	id            TEXT NOT NULL,     -- idRessource
	position      INTEGER NOT NULL,
	id_type       TEXT NOT NULL,
	title         TEXT NOT NULL,     -- nomRessource
	sort_key      TEXT NOT NULL,
	publisher_id  TEXT NOT NULL,
	publisher     TEXT NOT NULL,
	thumbnail_url TEXT NOT NULL,
	thumbnail     TEXT NOT NULL DEFAULT '', -- sha256 of the stored thumbnail
	access_url    TEXT NOT NULL,     -- urlAccesRessource
	presentation_code TEXT NOT NULL,
	presentation  TEXT NOT NULL,
	label         TEXT NOT NULL,     -- nomSourceEtiquetteGar
	distributor   TEXT NOT NULL,
	validator     TEXT NOT NULL,
	PRIMARY KEY (source, id)
) STRICT;

-- Classification of GAR cards (ScoLOMFR terms).
CREATE TABLE catalog_gar_terms (
	source   TEXT NOT NULL,
	card     TEXT NOT NULL,
	vocab    TEXT NOT NULL,          -- niveau, domaine, typologie, pedagogique
	uri      TEXT NOT NULL,
	name     TEXT NOT NULL,
	position INTEGER NOT NULL,
	PRIMARY KEY (source, card, vocab, position),
	FOREIGN KEY (source, card) REFERENCES catalog_gar_cards(source, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX catalog_gar_terms_name ON catalog_gar_terms(vocab, name);

-- The last GAR list imported from a file exported by the ENT.
CREATE TABLE catalog_gar_lists (
	source      TEXT PRIMARY KEY REFERENCES catalog_sources(id) ON DELETE CASCADE,
	document    BLOB NOT NULL,
	imported_at INTEGER NOT NULL
) STRICT;
`,
	}}
}
