package httpcache

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// store keeps the stored responses: bodies as files under dir/bodies
// (written to dir/tmp, fsynced, renamed), their metadata in SQLite, and an
// in-memory index of every entry so that a hit never queries SQLite.
//
// Writes take wmu and change SQLite first, then the index, so both see
// changes in the same order. Index slices are copied on write: readers
// holding a slice see a consistent, immutable set of variants.
type store struct {
	bodies, tmp string
	db          *sql.DB
	log         *slog.Logger
	now         func() time.Time
	maxBytes    int64
	maxEntries  int

	mu    sync.RWMutex
	byKey map[string][]*entry
	bytes int64
	count int

	wmu       sync.Mutex
	evictions atomic.Int64

	// Small bodies are also kept in memory, within memBudget, so that a hit
	// on a small object costs no open/read/close.
	memBudget int64
	memBytes  atomic.Int64
	mem       sync.Map // body name → []byte
}

// smallObjectBytes is the largest body kept in memory.
const smallObjectBytes = 64 << 10

// memBody returns the body of e from memory, loading it from its file
// when it is small and the budget allows; ok is false otherwise.
func (s *store) memBody(e *entry) ([]byte, bool) {
	if v, ok := s.mem.Load(e.name); ok {
		return v.([]byte), true
	}
	if e.size > smallObjectBytes || s.memBytes.Load()+e.size > s.memBudget {
		return nil, false
	}
	b, err := os.ReadFile(s.bodyPath(e.name))
	if err != nil || int64(len(b)) != e.size {
		return nil, false
	}
	if _, loaded := s.mem.LoadOrStore(e.name, b); !loaded {
		s.memBytes.Add(int64(len(b)))
	}
	return b, true
}

// removeBody deletes a body file and its copy in memory.
func (s *store) removeBody(name string) {
	if v, ok := s.mem.LoadAndDelete(name); ok {
		s.memBytes.Add(-int64(len(v.([]byte))))
	}
	os.Remove(s.bodyPath(name))
}

func newStore(cfg Config, db *sql.DB, log *slog.Logger) *store {
	return &store{
		bodies:     filepath.Join(cfg.Dir, "bodies"),
		tmp:        filepath.Join(cfg.Dir, "tmp"),
		db:         db,
		log:        log,
		now:        cfg.Now,
		maxBytes:   cfg.MaxBytes,
		maxEntries: cfg.MaxEntries,
		memBudget:  cfg.MemoryBytes,
		byKey:      map[string][]*entry{},
	}
}

func (s *store) bodyPath(name string) string {
	return filepath.Join(s.bodies, name[:2], name)
}

// load prepares the folders, drops rows whose body is missing or of the
// wrong size (a crash between the file and the row can leave neither, but a
// lost file must never be served), removes bodies no row references and
// leftover temporary files, and fills the index.
func (s *store) load(ctx context.Context) error {
	for _, d := range []string{s.bodies, s.tmp} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("httpcache load: %w", err)
		}
	}
	if ents, err := os.ReadDir(s.tmp); err == nil {
		for _, de := range ents {
			os.Remove(filepath.Join(s.tmp, de.Name()))
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name, pkey, vary, status, header, size, request_time, response_time, last_used FROM httpcache_entries`)
	if err != nil {
		return fmt.Errorf("httpcache load: %w", err)
	}
	var bad []string
	known := map[string]bool{}
	byKey := map[string][]*entry{}
	var total int64
	count := 0
	for rows.Next() {
		var (
			e                       entry
			hdr                     []byte
			reqMs, respMs, lastUsed int64
		)
		if err := rows.Scan(&e.name, &e.pkey, &e.varyKey, &e.status, &hdr, &e.size, &reqMs, &respMs, &lastUsed); err != nil {
			rows.Close()
			return fmt.Errorf("httpcache load: %w", err)
		}
		vary, okVary := decodeVary(e.varyKey)
		h, okHdr := decodeHeader(hdr)
		if !okVary || !okHdr || len(e.name) < 3 || strings.ContainsAny(e.name, `/\.`) {
			bad = append(bad, e.name)
			continue
		}
		st, err := os.Stat(s.bodyPath(e.name))
		if err != nil || st.Size() != e.size {
			bad = append(bad, e.name)
			continue
		}
		e.vary, e.header = vary, h
		e.reqTime, e.respTime = time.UnixMilli(reqMs), time.UnixMilli(respMs)
		ne := newEntry(&e)
		ne.lastUsed.Store(lastUsed)
		byKey[e.pkey] = append(byKey[e.pkey], ne)
		known[e.name] = true
		total += e.size
		count++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("httpcache load: %w", err)
	}
	rows.Close()
	for _, name := range bad {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM httpcache_entries WHERE name = ?`, name); err != nil {
			return fmt.Errorf("httpcache load: drop broken entry: %w", err)
		}
	}
	if len(bad) > 0 {
		s.log.Warn("httpcache: broken entries dropped", "count", len(bad))
	}
	orphans := 0
	filepath.WalkDir(s.bodies, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !known[d.Name()] {
			os.Remove(p)
			orphans++
		}
		return nil
	})
	if orphans > 0 {
		s.log.Info("httpcache: unreferenced bodies removed", "count", orphans)
	}
	s.mu.Lock()
	s.byKey, s.bytes, s.count = byKey, total, count
	s.mu.Unlock()
	return nil
}

// lookup returns the variants stored for pkey; the slice must not be
// modified.
func (s *store) lookup(pkey string) []*entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byKey[pkey]
}

// stats returns the number of entries and their body bytes.
func (s *store) stats() (int, int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.count, s.bytes
}

// insert publishes e, whose body is the complete, fsynced temporary file
// tmpPath: the file is renamed into place, then the row is written
// (replacing the variant with the same keys), then the index changes. A
// crash in between leaves an unreferenced body, removed by load.
func (s *store) insert(ctx context.Context, e *entry, tmpPath string) error {
	final := s.bodyPath(e.name)
	s.wmu.Lock()
	old, err := s.insertLocked(ctx, e, tmpPath, final)
	s.wmu.Unlock()
	if err != nil {
		os.Remove(tmpPath)
		return err
	}
	if old != "" && old != e.name {
		s.removeBody(old)
	}
	s.evictIfNeeded(ctx)
	return nil
}

// errWholeStored refuses a stored range over a stored whole response.
var errWholeStored = errors.New("httpcache store: the whole response is already stored")

func (s *store) insertLocked(ctx context.Context, e *entry, tmpPath, final string) (string, error) {
	if e.status == http.StatusPartialContent {
		for _, v := range s.lookup(e.pkey) {
			if v.varyKey == e.varyKey && v.status != http.StatusPartialContent {
				return "", errWholeStored
			}
		}
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("httpcache store: %w", err)
	}
	if err := os.Rename(tmpPath, final); err != nil {
		return "", fmt.Errorf("httpcache store: %w", err)
	}
	syncDir(dir)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		os.Remove(final)
		return "", fmt.Errorf("httpcache store: %w", err)
	}
	defer tx.Rollback()
	var old string
	err = tx.QueryRowContext(ctx, `SELECT name FROM httpcache_entries WHERE pkey = ? AND vary = ?`, e.pkey, e.varyKey).Scan(&old)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		os.Remove(final)
		return "", fmt.Errorf("httpcache store: %w", err)
	}
	if old != "" {
		if _, err := tx.ExecContext(ctx, `DELETE FROM httpcache_entries WHERE name = ?`, old); err != nil {
			os.Remove(final)
			return "", fmt.Errorf("httpcache store: %w", err)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO httpcache_entries(name, pkey, vary, status, header, size, request_time, response_time, last_used)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.name, e.pkey, e.varyKey, e.status, encodeHeader(e.header), e.size,
		e.reqTime.UnixMilli(), e.respTime.UnixMilli(), e.lastUsed.Load())
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		os.Remove(final)
		return "", fmt.Errorf("httpcache store: %w", err)
	}
	s.mu.Lock()
	vs := s.byKey[e.pkey]
	next := make([]*entry, 0, len(vs)+1)
	for _, v := range vs {
		if v.varyKey == e.varyKey {
			s.bytes -= v.size
			s.count--
			continue
		}
		next = append(next, v)
	}
	s.byKey[e.pkey] = append(next, e)
	s.bytes += e.size
	s.count++
	s.mu.Unlock()
	return old, nil
}

// update replaces old by fresh, a freshened copy sharing old's body (after
// a 304 or a matching HEAD). It does nothing when old is no longer stored.
func (s *store) update(ctx context.Context, old, fresh *entry) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	current := false
	for _, v := range s.byKey[old.pkey] {
		current = current || v == old
	}
	s.mu.RUnlock()
	if !current {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `UPDATE httpcache_entries SET header = ?, request_time = ?, response_time = ?, last_used = ? WHERE name = ?`,
		encodeHeader(fresh.header), fresh.reqTime.UnixMilli(), fresh.respTime.UnixMilli(), fresh.lastUsed.Load(), old.name)
	if err != nil {
		return fmt.Errorf("httpcache freshen: %w", err)
	}
	s.mu.Lock()
	vs := s.byKey[old.pkey]
	next := make([]*entry, len(vs))
	for i, v := range vs {
		if v == old {
			v = fresh
		}
		next[i] = v
	}
	s.byKey[old.pkey] = next
	s.mu.Unlock()
	return nil
}

// remove deletes every variant stored under pkey (invalidation, RFC 9111
// §4.4) and returns how many there were.
func (s *store) remove(ctx context.Context, pkey string) (int, error) {
	s.wmu.Lock()
	vs := s.lookup(pkey)
	if len(vs) == 0 {
		s.wmu.Unlock()
		return 0, nil
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM httpcache_entries WHERE pkey = ?`, pkey); err != nil {
		s.wmu.Unlock()
		return 0, fmt.Errorf("httpcache invalidate: %w", err)
	}
	s.mu.Lock()
	delete(s.byKey, pkey)
	for _, v := range vs {
		s.bytes -= v.size
		s.count--
	}
	s.mu.Unlock()
	s.wmu.Unlock()
	for _, v := range vs {
		s.removeBody(v.name)
	}
	return len(vs), nil
}

// removeEntry deletes one stored response (a body found missing, an
// outdated variant).
func (s *store) removeEntry(ctx context.Context, e *entry) {
	s.removeEntries(ctx, []*entry{e})
}

func (s *store) removeEntries(ctx context.Context, es []*entry) int {
	s.wmu.Lock()
	// Only entries still published are removed: a freshened entry shares
	// its body and row name with the one it replaced.
	s.mu.RLock()
	current := es[:0:0]
	for _, e := range es {
		for _, v := range s.byKey[e.pkey] {
			if v == e {
				current = append(current, e)
				break
			}
		}
	}
	s.mu.RUnlock()
	es = current
	if len(es) == 0 {
		s.wmu.Unlock()
		return 0
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		s.wmu.Unlock()
		s.log.Warn("httpcache: remove entries", "err", err)
		return 0
	}
	for _, e := range es {
		if _, err := tx.ExecContext(ctx, `DELETE FROM httpcache_entries WHERE name = ?`, e.name); err != nil {
			tx.Rollback()
			s.wmu.Unlock()
			s.log.Warn("httpcache: remove entries", "err", err)
			return 0
		}
	}
	if err := tx.Commit(); err != nil {
		s.wmu.Unlock()
		s.log.Warn("httpcache: remove entries", "err", err)
		return 0
	}
	gone := map[*entry]bool{}
	for _, e := range es {
		gone[e] = true
	}
	removed := 0
	s.mu.Lock()
	for _, e := range es {
		vs := s.byKey[e.pkey]
		next := make([]*entry, 0, len(vs))
		for _, v := range vs {
			if gone[v] {
				s.bytes -= v.size
				s.count--
				removed++
				continue
			}
			next = append(next, v)
		}
		if len(next) == 0 {
			delete(s.byKey, e.pkey)
		} else {
			s.byKey[e.pkey] = next
		}
		delete(gone, e) // count each entry once even if listed twice
	}
	s.mu.Unlock()
	s.wmu.Unlock()
	for _, e := range es {
		s.removeBody(e.name)
	}
	return removed
}

// evictIfNeeded removes least recently used entries while the store is
// over its byte or entry quota, down to 90 % of it.
func (s *store) evictIfNeeded(ctx context.Context) {
	count, total := s.stats()
	if total <= s.maxBytes && count <= s.maxEntries {
		return
	}
	s.evict(ctx, total-s.maxBytes*9/10, count-s.maxEntries*9/10)
}

// evict removes least recently used entries until at least needBytes
// bytes and needEntries entries are gone.
func (s *store) evict(ctx context.Context, needBytes int64, needEntries int) int {
	s.mu.RLock()
	all := make([]*entry, 0, s.count)
	for _, vs := range s.byKey {
		all = append(all, vs...)
	}
	s.mu.RUnlock()
	sort.Slice(all, func(i, j int) bool { return all[i].lastUsed.Load() < all[j].lastUsed.Load() })
	var victims []*entry
	var freed int64
	for _, e := range all {
		if freed >= needBytes && len(victims) >= needEntries {
			break
		}
		victims = append(victims, e)
		freed += e.size
	}
	if len(victims) == 0 {
		return 0
	}
	n := s.removeEntries(ctx, victims)
	s.evictions.Add(int64(n))
	s.log.Debug("httpcache: evicted", "entries", n, "bytes", freed)
	return n
}

// flushUsed persists last-use times changed since the last flush, in one
// transaction, so that LRU order survives restarts without a write per hit.
func (s *store) flushUsed(ctx context.Context, since int64) error {
	s.mu.RLock()
	var dirty []*entry
	for _, vs := range s.byKey {
		for _, v := range vs {
			if v.lastUsed.Load() > since {
				dirty = append(dirty, v)
			}
		}
	}
	s.mu.RUnlock()
	if len(dirty) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("httpcache flush: %w", err)
	}
	defer tx.Rollback()
	for _, v := range dirty {
		if _, err := tx.ExecContext(ctx, `UPDATE httpcache_entries SET last_used = ? WHERE name = ?`, v.lastUsed.Load(), v.name); err != nil {
			return fmt.Errorf("httpcache flush: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("httpcache flush: %w", err)
	}
	return nil
}

// encodeHeader writes h in HTTP/1.1 wire form, keys sorted.
func encodeHeader(h http.Header) []byte {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		for _, v := range h[k] {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteString("\r\n")
		}
	}
	return b.Bytes()
}

// decodeHeader is the inverse of encodeHeader.
func decodeHeader(b []byte) (http.Header, bool) {
	h := http.Header{}
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			return nil, false
		}
		line := string(b[:i])
		b = b[i+2:]
		k, v, ok := strings.Cut(line, ": ")
		if !ok || k == "" {
			return nil, false
		}
		h[k] = append(h[k], v)
	}
	return h, true
}

// syncDir fsyncs a directory so that a rename into it survives a power
// cut.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
