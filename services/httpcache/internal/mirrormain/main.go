// Command mirrormain runs the HTTP cache alone as a reverse-proxy mirror of
// one origin, for conformance runs of the public HTTP caching test suite
// and for the package's tests. It is an internal tool of
// services/httpcache; the product command is `preau mirror`.
//
//	go run -tags sqlite_fts5 ./services/httpcache/internal/mirrormain \
//	    --origin http://127.0.0.1:8000 --listen 127.0.0.1:8081 --data /tmp/mirror
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"preau/services/httpcache"
)

func main() {
	origin := flag.String("origin", "", "origin URL to mirror")
	listen := flag.String("listen", "127.0.0.1:8081", "listen address")
	data := flag.String("data", "", "data folder (default: a new temporary folder)")
	debug := flag.Bool("debug", false, "debug logs")
	flag.Parse()
	if err := run(*origin, *listen, *data, *debug); err != nil {
		fmt.Fprintln(os.Stderr, "mirrormain:", err)
		os.Exit(1)
	}
}

func run(origin, listen, data string, debug bool) error {
	u, err := url.Parse(origin)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("--origin %q: an absolute http(s) URL is required", origin)
	}
	if data == "" {
		if data, err = os.MkdirTemp("", "mirror-"); err != nil {
			return err
		}
	}
	if data, err = filepath.Abs(data); err != nil {
		return err
	}
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := os.MkdirAll(data, 0o750); err != nil {
		return err
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(data, "mirror.db")+"?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrate(db); err != nil {
		return err
	}
	cfg := httpcache.Config{Dir: filepath.Join(data, "cache")}
	c, err := httpcache.New(cfg, db, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- c.Serve(ctx) }()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: c.Mirror(u, httpcache.UpstreamClient(cfg)), ReadHeaderTimeout: 10 * time.Second}
	go func() { errc <- srv.Serve(ln) }()
	log.Info("mirror listening", "addr", ln.Addr().String(), "origin", u.String(), "data", data)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// migrate applies the cache's migrations not yet applied, tracked in a
// small table of its own (appliance/store does this in the product).
func migrate(db *sql.DB) error {
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS mirror_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return err
	}
	for _, m := range httpcache.Migrations() {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM mirror_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(m.SQL); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d %s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.Exec(`INSERT INTO mirror_migrations(version) VALUES (?)`, m.Version); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}
