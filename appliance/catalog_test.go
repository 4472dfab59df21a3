package appliance

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"preau/appliance/store"
	"preau/services/catalog"
	"preau/services/content"
)

// The content store's refusals reach the catalogue as the errors it
// recognises: a full store (downloads wait for the next refresh without
// spending their attempts) and a pack already gone.
func TestCatalogStoreAdapterErrors(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(t.TempDir(), "preau.db"), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx, "content", convertMigrations(content.Migrations())); err != nil {
		t.Fatal(err)
	}
	cs, err := content.New(content.Config{Dir: t.TempDir(), MaxBytes: 64 << 10}.WithDefaults(), s.DB(), http.DefaultClient, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("v"), 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := body
		if r.URL.RawQuery == "small" {
			b = body[:1000]
		}
		http.ServeContent(w, r, "v.mp4", time.Unix(1_700_000_000, 0), bytes.NewReader(b))
	}))
	defer srv.Close()
	a := catalogStore{s: cs, doer: http.DefaultClient}

	_, err = a.Fetch(ctx, catalog.Fetch{Owner: "catalog:test", URL: srv.URL + "/v.mp4", Size: int64(len(body))})
	if !errors.Is(err, catalog.ErrStoreFull) || !errors.Is(err, content.ErrStoreFull) {
		t.Fatalf("fetch past the quota: %v; want catalog.ErrStoreFull wrapping content's", err)
	}
	if !strings.HasPrefix(err.Error(), "stockage plein") || !strings.HasPrefix(englishText(err), "storage full") {
		t.Errorf("messages %q / %q", err.Error(), englishText(err))
	}
	if err := a.RemovePack(ctx, "nothing-here"); !errors.Is(err, catalog.ErrNoPack) {
		t.Errorf("remove a missing pack: %v; want catalog.ErrNoPack", err)
	}

	// A download whose bytes do not match the catalogue's hash is a
	// refusal (retried after the usual backoff), not a cut link.
	_, err = a.Fetch(ctx, catalog.Fetch{Owner: "catalog:test", URL: srv.URL + "/v.mp4?small", Size: 1000,
		SHA256: "0000000000000000000000000000000000000000000000000000000000000000"})
	if !errors.Is(err, catalog.ErrRefused) || errors.Is(err, catalog.ErrStoreFull) {
		t.Errorf("fetch with a wrong hash: %v; want catalog.ErrRefused", err)
	}
}
