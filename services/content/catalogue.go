package content

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

var errNoRows = sql.ErrNoRows

// commit makes the pack visible in one transaction, replacing a previous
// version, and returns the blobs the previous version referenced and its
// import time (unix ms, 0 without one). source is the catalogue source, ""
// for a pack imported by hand.
func (s *Store) commit(ctx context.Context, m *manifest, manifestHash string, bodies map[string]string, importedAt time.Time, source string) (map[string]bool, int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("commit: %w", err)
	}
	defer tx.Rollback()
	var oldAt int64
	if err := tx.QueryRowContext(ctx, "SELECT imported_at FROM content_packs WHERE id = ?", m.ID).Scan(&oldAt); err != nil && !errors.Is(err, errNoRows) {
		return nil, 0, fmt.Errorf("commit: read previous version: %w", err)
	}
	old := make(map[string]bool)
	rows, err := tx.QueryContext(ctx, "SELECT DISTINCT sha256 FROM content_files WHERE pack = ?", m.ID)
	if err != nil {
		return nil, 0, fmt.Errorf("commit: list previous files: %w", err)
	}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("commit: list previous files: %w", err)
		}
		old[h] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("commit: list previous files: %w", err)
	}

	exec := func(what, q string, args ...any) error {
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("commit: %s: %w", what, err)
		}
		return nil
	}
	if err := exec("remove previous search rows", "DELETE FROM content_search WHERE pack = ?", m.ID); err != nil {
		return nil, 0, err
	}
	if err := exec("remove previous version", "DELETE FROM content_packs WHERE id = ?", m.ID); err != nil {
		return nil, 0, err
	}
	var created any
	if !m.created.IsZero() {
		created = m.created.Unix()
	}
	if err := exec("insert pack", `INSERT INTO content_packs
		(id, version, title, description, publisher, language, created, manifest_sha256, bytes, imported_at, source, last_access)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.Version, m.Title, m.Description, m.Publisher, m.Language, created, manifestHash, m.total, importedAt.UnixMilli(),
		source, importedAt.UnixMilli()); err != nil {
		return nil, 0, err
	}
	insFile, err := tx.PrepareContext(ctx, "INSERT INTO content_files (pack, path, size, sha256, media_type) VALUES (?, ?, ?, ?, ?)")
	if err != nil {
		return nil, 0, fmt.Errorf("commit: %w", err)
	}
	defer insFile.Close()
	for _, p := range m.order {
		f := m.files[p]
		if _, err := insFile.ExecContext(ctx, m.ID, f.Path, f.Size, f.SHA256, f.MediaType); err != nil {
			return nil, 0, fmt.Errorf("commit: insert file %s: %w", p, err)
		}
	}
	for i, it := range m.Items {
		lang := it.Language
		if lang == "" {
			lang = m.Language
		}
		authors, _ := json.Marshal(nonNil(it.Authors))
		if err := exec("insert item "+it.ID, `INSERT INTO content_items
			(pack, id, position, title, sort_key, description, kind, language, licence, source, authors, entry, thumbnail)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.ID, it.ID, i, it.Title, foldTitle(it.Title), it.Description, it.Kind, lang, it.Licence, it.Source, string(authors), it.Entry, it.Thumbnail); err != nil {
			return nil, 0, err
		}
		for j, l := range it.Levels {
			if err := exec("insert level", "INSERT INTO content_item_levels (pack, item, level, position) VALUES (?, ?, ?, ?)", m.ID, it.ID, l, j); err != nil {
				return nil, 0, err
			}
		}
		for j, sub := range it.Subjects {
			if err := exec("insert subject", "INSERT INTO content_item_subjects (pack, item, subject, position) VALUES (?, ?, ?, ?)", m.ID, it.ID, sub, j); err != nil {
				return nil, 0, err
			}
		}
		for j, f := range it.Files {
			if err := exec("insert item file", "INSERT INTO content_item_files (pack, item, path, position) VALUES (?, ?, ?, ?)", m.ID, it.ID, f.Path, j); err != nil {
				return nil, 0, err
			}
		}
		if err := exec("insert search row", "INSERT INTO content_search (pack, item, title, description, subjects, body) VALUES (?, ?, ?, ?, ?, ?)",
			m.ID, it.ID, it.Title, it.Description, strings.Join(it.Subjects, " "), bodies[it.ID]); err != nil {
			return nil, 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, 0, fmt.Errorf("commit: %w", err)
	}
	s.forgetAccess(m.ID) // last_access starts again at importedAt
	return old, oldAt, nil
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// Remove removes a pack, its pin and the blobs nothing else keeps.
func (s *Store) Remove(ctx context.Context, packID string) error {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	if err := s.removePackLocked(ctx, packID); err != nil {
		return fmt.Errorf("remove pack %s: %w", packID, err)
	}
	s.log.Info("pack removed", "pack", packID)
	return nil
}

const packColumns = `p.id, p.version, p.title, p.description, p.publisher, p.language, p.bytes, p.imported_at,
	(SELECT COUNT(*) FROM content_items i WHERE i.pack = p.id), p.source, p.last_access,
	(SELECT until FROM content_pack_pins x WHERE x.pack = p.id)`

func scanPack(sc interface{ Scan(...any) error }) (PackInfo, error) {
	var p PackInfo
	var ms, access int64
	var until sql.NullInt64
	err := sc.Scan(&p.ID, &p.Version, &p.Title, &p.Description, &p.Publisher, &p.Language, &p.Bytes, &ms, &p.Items,
		&p.Source, &access, &until)
	p.ImportedAt = time.UnixMilli(ms).UTC()
	p.LastAccess = time.UnixMilli(access).UTC()
	if until.Valid {
		p.PinnedUntil = time.UnixMilli(until.Int64).UTC()
	}
	return p, err
}

// Packs lists the imported packs by id.
func (s *Store) Packs(ctx context.Context) ([]PackInfo, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+packColumns+" FROM content_packs p ORDER BY p.id")
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	defer rows.Close()
	var out []PackInfo
	for rows.Next() {
		p, err := scanPack(rows)
		if err != nil {
			return nil, fmt.Errorf("list packs: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	return out, nil
}

func (s *Store) pack(ctx context.Context, id string) (PackInfo, error) {
	p, err := scanPack(s.db.QueryRowContext(ctx, "SELECT "+packColumns+" FROM content_packs p WHERE p.id = ?", id))
	if errors.Is(err, errNoRows) {
		return PackInfo{}, fmt.Errorf("read pack %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return PackInfo{}, fmt.Errorf("read pack %s: %w", id, err)
	}
	return p, nil
}

// Items returns every item, sorted by title with accents and case folded.
func (s *Store) Items(ctx context.Context) ([]Item, error) {
	return s.items(ctx, "", "", nil)
}

// Item returns one item, or ErrNotFound.
func (s *Store) Item(ctx context.Context, pack, id string) (Item, error) {
	items, err := s.items(ctx, pack, id, nil)
	if err != nil {
		return Item{}, err
	}
	if len(items) == 0 {
		return Item{}, fmt.Errorf("item %s/%s: %w", pack, id, ErrNotFound)
	}
	return items[0], nil
}

type itemKey struct{ pack, id string }

// items loads items: all, one (pack and id), or those of keys in that order.
func (s *Store) items(ctx context.Context, pack, id string, keys []itemKey) ([]Item, error) {
	where, args := "", []any{}
	if pack != "" {
		where, args = " WHERE i.pack = ? AND i.id = ?", []any{pack, id}
	}
	q := `SELECT i.pack, i.id, i.title, i.description, i.kind, i.language, i.licence, i.source, i.authors,
		i.entry, i.thumbnail, COALESCE(p.created, p.imported_at / 1000)
		FROM content_items i JOIN content_packs p ON p.id = i.pack` + where + ` ORDER BY i.sort_key, i.title, i.pack, i.id`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	var all []Item
	byKey := make(map[itemKey]int)
	for rows.Next() {
		var it Item
		var authors string
		var updated int64
		if err := rows.Scan(&it.Pack, &it.ID, &it.Title, &it.Description, &it.Kind, &it.Language, &it.Licence, &it.Source, &authors,
			&it.Entry, &it.Thumbnail, &updated); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list items: %w", err)
		}
		if err := json.Unmarshal([]byte(authors), &it.Authors); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list items: authors of %s/%s: %w", it.Pack, it.ID, err)
		}
		it.Updated = time.Unix(updated, 0).UTC()
		byKey[itemKey{it.Pack, it.ID}] = len(all)
		all = append(all, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	if len(all) == 0 {
		return nil, nil
	}
	// Lists, in one query each.
	lists := []struct {
		q   string
		add func(it *Item, v string)
	}{
		{"SELECT pack, item, level FROM content_item_levels x" + where2(pack) + " ORDER BY pack, item, position", func(it *Item, v string) { it.Levels = append(it.Levels, v) }},
		{"SELECT pack, item, subject FROM content_item_subjects x" + where2(pack) + " ORDER BY pack, item, position", func(it *Item, v string) { it.Subjects = append(it.Subjects, v) }},
	}
	for _, l := range lists {
		if err := s.eachRow(ctx, l.q, args, func(k itemKey, v string) {
			if i, ok := byKey[k]; ok {
				l.add(&all[i], v)
			}
		}); err != nil {
			return nil, err
		}
	}
	fq := `SELECT x.pack, x.item, f.path, f.size, f.sha256, f.media_type FROM content_item_files x
		JOIN content_files f ON f.pack = x.pack AND f.path = x.path` + where2(pack) + ` ORDER BY x.pack, x.item, x.position`
	rows, err = s.db.QueryContext(ctx, fq, args...)
	if err != nil {
		return nil, fmt.Errorf("list item files: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k itemKey
		var f File
		if err := rows.Scan(&k.pack, &k.id, &f.Path, &f.Size, &f.SHA256, &f.MediaType); err != nil {
			return nil, fmt.Errorf("list item files: %w", err)
		}
		if i, ok := byKey[k]; ok {
			all[i].Files = append(all[i].Files, f)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list item files: %w", err)
	}
	for i := range all {
		all[i].Levels = nonNil(all[i].Levels)
		all[i].Subjects = nonNil(all[i].Subjects)
		all[i].Authors = nonNil(all[i].Authors)
	}
	if keys != nil {
		out := make([]Item, 0, len(keys))
		for _, k := range keys {
			if i, ok := byKey[k]; ok {
				out = append(out, all[i])
			}
		}
		return out, nil
	}
	return all, nil
}

func where2(pack string) string {
	if pack == "" {
		return ""
	}
	return " WHERE x.pack = ? AND x.item = ?"
}

func (s *Store) eachRow(ctx context.Context, q string, args []any, fn func(itemKey, string)) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("list items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k itemKey
		var v string
		if err := rows.Scan(&k.pack, &k.id, &v); err != nil {
			return fmt.Errorf("list items: %w", err)
		}
		fn(k, v)
	}
	return rows.Err()
}

// Search returns up to limit items matching every word of query, as
// prefixes, ignoring accents and case, best first. The query is reduced to
// words, so no input can be an FTS syntax error.
func (s *Store) Search(ctx context.Context, query string, limit int) ([]Item, error) {
	match := ftsQuery(query)
	if match == "" {
		return nil, nil
	}
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	rows, err := s.db.QueryContext(ctx, `SELECT pack, item FROM content_search
		WHERE content_search MATCH ? ORDER BY bm25(content_search, 0, 0, 10.0, 4.0, 3.0, 1.0) LIMIT ?`, match, limit)
	if err != nil {
		return nil, fmt.Errorf("search %q: %w", query, err)
	}
	var keys []itemKey
	for rows.Next() {
		var k itemKey
		if err := rows.Scan(&k.pack, &k.id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("search %q: %w", query, err)
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search %q: %w", query, err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	items, err := s.items(ctx, "", "", keys)
	if err != nil {
		return nil, fmt.Errorf("search %q: %w", query, err)
	}
	return items, nil
}

// ftsQuery turns user input into an FTS5 query: each run of letters and
// digits becomes a quoted prefix term, all of them required. At most 16
// terms are kept.
func ftsQuery(q string) string {
	words := strings.FieldsFunc(q, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(words) > 16 {
		words = words[:16]
	}
	terms := make([]string, 0, len(words))
	for _, w := range words {
		if len(w) > 64 {
			w = w[:64]
			for !utf8.ValidString(w) {
				w = w[:len(w)-1]
			}
		}
		terms = append(terms, `"`+w+`"*`)
	}
	return strings.Join(terms, " ")
}

// Stats counts packs, items and the distinct blobs packs reference.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	var bytes sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM content_packs),
		(SELECT COUNT(*) FROM content_items),
		(SELECT COUNT(*) FROM (SELECT DISTINCT sha256 FROM content_files)),
		(SELECT SUM(size) FROM (SELECT sha256, MAX(size) AS size FROM content_files GROUP BY sha256))`).Scan(&st.Packs, &st.Items, &st.Blobs, &bytes)
	if err != nil {
		return Stats{}, fmt.Errorf("content stats: %w", err)
	}
	st.BlobBytes = bytes.Int64
	return st, nil
}

// blobNames lists the blob files on disk.
func (s *Store) blobNames(fn func(hash, path string, info fs.FileInfo) error) error {
	dirs, err := os.ReadDir(s.blobsDir)
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := s.blobsDir + string(os.PathSeparator) + d.Name()
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("list blobs: %w", err)
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return fmt.Errorf("list blobs: %w", err)
			}
			if err := fn(e.Name(), dir+string(os.PathSeparator)+e.Name(), info); err != nil {
				return err
			}
		}
	}
	return nil
}
