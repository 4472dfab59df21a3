package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"preau/services/content"
	"preau/services/portal"
)

// lanHandler is what the school LAN sees: the captive portal first (OS
// probes by Host, the charter, the RFC 8908 API), then the box's routes,
// whose visitors' User-Agents the inventory learns from.
func (b *Box) lanHandler() http.Handler {
	return b.lan.captive.Handler(b.tech.observer.middleware(b.routes()))
}

func (b *Box) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", b.instrument("healthz", http.HandlerFunc(b.serveHealth)))
	mux.Handle("GET /metrics", b.metricsHandler())
	mux.Handle("/c/", b.instrument("content", corked(b.content.Handler())))
	b.handInRoutes(mux)
	mux.Handle("/catalogue/vignettes/", b.instrument("catalog", b.catalog.ThumbnailHandler()))
	// The technician console and its JSON API: the console checks the
	// network, the session and the role of every request itself.
	tech := b.instrument("console", b.tech.console.Handler())
	for _, p := range []string{"/console", "/console/", "/api/"} {
		mux.Handle(p, tech)
	}
	mux.Handle("/", b.instrument("portal", b.portal.Handler()))
	return mux
}

// Health is the JSON of GET /healthz and of `preau status`.
type Health struct {
	Status        string  `json:"status"` // "ok" or "degraded"
	Version       string  `json:"version"`
	GoVersion     string  `json:"go_version"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	Database      string  `json:"database"` // "ok" or the error
	DataDir       string  `json:"data_dir"`
	DiskFreeBytes uint64  `json:"disk_free_bytes"`
	DiskSizeBytes uint64  `json:"disk_size_bytes"`
	Online        bool    `json:"online"`
	Packs         int     `json:"packs"`
	Items         int     `json:"items"`
	ContentBytes  int64   `json:"content_bytes"`
}

func (b *Box) health(ctx context.Context) Health {
	h := Health{Status: "ok", Version: version, GoVersion: runtime.Version(), Database: "ok",
		DataDir: b.cfg.Box.DataDir, UptimeSeconds: time.Since(b.started).Seconds()}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.store.Ping(ctx); err != nil {
		h.Status, h.Database = "degraded", err.Error()
	}
	h.DiskFreeBytes, h.DiskSizeBytes = diskSpace(b.cfg.Box.DataDir)
	if b.uplink != nil {
		h.Online = b.uplink.Online()
	}
	if st, err := b.content.Stats(ctx); err == nil {
		h.Packs, h.Items, h.ContentBytes = st.Packs, st.Items, st.BlobBytes
	}
	return h
}

func (b *Box) serveHealth(w http.ResponseWriter, r *http.Request) {
	h := b.health(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if h.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(h)
}

func diskSpace(dir string) (free, size uint64) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize)
}

// catalog adapts the content store to the portal's Catalog interface; the
// portal owns the interface (STYLE 4) and never imports content.
type portalCatalog struct{ s *content.Store }

func (c portalCatalog) Items(ctx context.Context) ([]portal.Item, error) {
	items, err := c.s.Items(ctx)
	return toPortal(items), err
}

func (c portalCatalog) Item(ctx context.Context, pack, id string) (portal.Item, error) {
	it, err := c.s.Item(ctx, pack, id)
	if err != nil {
		if errors.Is(err, content.ErrNotFound) {
			return portal.Item{}, portal.ErrNotFound
		}
		return portal.Item{}, err
	}
	return toPortal([]content.Item{it})[0], nil
}

func (c portalCatalog) Search(ctx context.Context, q string, limit int) ([]portal.Item, error) {
	items, err := c.s.Search(ctx, q, limit)
	return toPortal(items), err
}

func (c portalCatalog) Open(ctx context.Context, pack, path string) (io.ReadCloser, error) {
	f, _, err := c.s.Open(ctx, pack, path)
	if err != nil {
		if errors.Is(err, content.ErrNotFound) {
			return nil, portal.ErrNotFound
		}
		return nil, err
	}
	return f, nil
}

func toPortal(items []content.Item) []portal.Item {
	out := make([]portal.Item, len(items))
	for i, it := range items {
		files := make([]portal.File, len(it.Files))
		for j, f := range it.Files {
			files[j] = portal.File{Path: f.Path, Size: f.Size, SHA256: f.SHA256, MediaType: f.MediaType}
		}
		out[i] = portal.Item{Pack: it.Pack, ID: it.ID, Title: it.Title, Description: it.Description,
			Kind: it.Kind, Language: it.Language, Licence: it.Licence, Source: it.Source,
			Authors: it.Authors, Levels: it.Levels, Subjects: it.Subjects, Entry: it.Entry,
			Thumbnail: it.Thumbnail, Files: files, Updated: it.Updated}
	}
	return out
}
