package appliance

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"preau/appliance/store"
	"preau/services/httpcache"
)

// DefaultMirrorData is the data folder of `preau mirror` when --data is
// not given, relative to the current folder: a technician mirroring a site
// from a laptop keeps the cache next to where the command runs.
const DefaultMirrorData = "preau-mirror"

// cmdMirror runs `preau mirror --origin URL [--listen ADDR] [--data DIR]`:
// the HTTP cache alone, as a reverse-proxy mirror of one origin, until
// SIGINT or SIGTERM. Every method is forwarded (PUT included) and GET/HEAD
// are cached by RFC 9111, CDN-Cache-Control first. The folder holds the
// database (mirror.db) and the bodies (cache/); it is locked against a
// second instance.
func cmdMirror(args []string, _, stderr io.Writer, lang string) int {
	fs := flag.NewFlagSet("mirror", flag.ContinueOnError)
	origin := fs.String("origin", "", "origin to mirror, e.g. https://example.org")
	listen := fs.String("listen", "127.0.0.1:8081", "address to listen on")
	data := fs.String("data", DefaultMirrorData, "data folder (database and cached bodies)")
	usage := func() int {
		fmt.Fprintln(stderr, tr(lang,
			"utilisation : preau mirror --origin URL [--listen ADRESSE (127.0.0.1:8081)] [--data DOSSIER (./"+DefaultMirrorData+")]",
			"usage: preau mirror --origin URL [--listen ADDR (127.0.0.1:8081)] [--data DIR (./"+DefaultMirrorData+")]"))
		return ExitUsage
	}
	pos, ok := parseFlags(fs, args, stderr)
	if !ok || len(pos) != 0 {
		return usage()
	}
	u, err := url.Parse(*origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		fmt.Fprintln(stderr, tr(lang,
			fmt.Sprintf("preau mirror : origine « %s » invalide ; donnez une adresse http:// ou https:// sans requête", *origin),
			fmt.Sprintf("preau mirror: invalid origin %q; give an http:// or https:// address without a query", *origin)))
		return usage()
	}
	dir, err := filepath.Abs(*data)
	if err != nil {
		fmt.Fprintf(stderr, "preau mirror : %v\n", err)
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := newLogger(LogConfig{Level: "info", Format: "auto"}, stderr)

	lock, err := lockDataDir(dir)
	if err != nil {
		printErr(stderr, lang, err)
		if errors.Is(err, ErrBusy) {
			return ExitBusy
		}
		return ExitStartup
	}
	defer lock.Close()
	st, err := store.Open(ctx, filepath.Join(dir, "mirror.db"), log.With("component", "store"))
	if err != nil {
		printErr(stderr, lang, err)
		return ExitStartup
	}
	defer st.Close()
	if err := st.Migrate(ctx, "httpcache", convertMigrations(httpcache.Migrations())); err != nil {
		printErr(stderr, lang, err)
		return ExitStartup
	}
	cfg := httpcache.Config{Dir: filepath.Join(dir, "cache")}
	cache, err := httpcache.New(cfg, st.DB(), log.With("component", "httpcache"))
	if err != nil {
		printErr(stderr, lang, err)
		return ExitStartup
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(stderr, tr(lang,
			fmt.Sprintf("preau mirror : impossible d'écouter sur %s : %v", *listen, err),
			fmt.Sprintf("preau mirror: cannot listen on %s: %v", *listen, err)))
		return ExitStartup
	}
	srv := &http.Server{
		Handler:           cache.Mirror(u, httpcache.UpstreamClient(cfg)),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 2)
	cacheDone := make(chan struct{})
	go func() {
		defer close(cacheDone)
		if err := cache.Serve(ctx); err != nil {
			errc <- err
		}
	}()
	go func() { errc <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	if strings.HasPrefix(addr, "[::]") || strings.HasPrefix(addr, "0.0.0.0") {
		addr = "localhost" + addr[strings.LastIndexByte(addr, ':'):]
	}
	fmt.Fprintln(stderr, tr(lang,
		fmt.Sprintf("miroir de %s sur http://%s (données : %s) ; Ctrl+C pour arrêter", u, addr, dir),
		fmt.Sprintf("mirroring %s on http://%s (data: %s); Ctrl+C to stop", u, addr, dir)))

	status := ExitOK
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stderr, "preau mirror : %v\n", err)
			status = ExitFailure
		}
	}
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	<-cacheDone // last-use times saved
	fmt.Fprintln(stderr, tr(lang, "miroir arrêté", "mirror stopped"))
	return status
}
