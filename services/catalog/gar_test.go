package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"preau/services/catalog/catalogtest"
)

// A 1×1 PNG.
var pngPixel = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" +
	"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")

func garResources() []catalogtest.Resource {
	college := catalogtest.Term{URI: "http://data.education.fr/voc/scolomfr/concept/scolomfr-voc-022-num-016", Nom: "collège"}
	lycee := catalogtest.Term{URI: "http://data.education.fr/voc/scolomfr/concept/scolomfr-voc-022-num-142", Nom: "lycée général et technologique"}
	return []catalogtest.Resource{
		{ID: "ark:/32151/LA.FLE", Name: "Lingua Attack - FLE", PublisherID: "514843077", Publisher: "ENTERTAINMENT LEARNING",
			Presentation: catalogtest.Term{URI: "MUL", Nom: "ressources d'enseignement multimédias"},
			Levels:       []catalogtest.Term{college}, Domains: []catalogtest.Term{{URI: "u:fle", Nom: "français langue étrangère"}},
			Typologies: []catalogtest.Term{{URI: "u:art", Nom: "article"}}, Thumbnail: pngPixel},
		{ID: "ark:/12313/CI3977251568689", Name: "Courrier international", PublisherID: "344761861", Publisher: "COURRIER INTERNATIONAL",
			Presentation: catalogtest.Term{URI: "MUL", Nom: "ressources d'enseignement multimédias"},
			Levels:       []catalogtest.Term{lycee}, Domains: []catalogtest.Term{{URI: "u:geo", Nom: "géographie"}, {URI: "u:his", Nom: "histoire"}},
			Thumbnail: append(append([]byte{}, pngPixel...), 0)},
		{ID: "ark:/99999/SANS-VIGNETTE", Name: "Énigmes mathématiques", Publisher: "Éditions Test", Levels: []catalogtest.Term{college}},
		{ID: "ark:/99999/PIEGE", Name: "Vignette piégée", Publisher: "Hostile", Thumbnail: []byte("<html><script>alert(1)</script></html>")},
	}
}

// TestGARWithClientCertificate: the list is fetched over TLS with the
// ENT's client certificate (the fixture requires and verifies it); cards
// keep the classification and their thumbnails offline; thumbnails are
// served from the box with long caching, only if they are images; a
// certificate from another CA is refused with a clear message.
func TestGARWithClientCertificate(t *testing.T) {
	g := catalogtest.NewGAR(t, "QjA=", "9999991F", "prof-1")
	g.SetResources(garResources())
	st := newTestStore(t)
	c, _ := newCatalog(t, Config{}, st)
	ctx := context.Background()
	spec := SourceSpec{Kind: KindGAR, URL: g.URL, ENT: g.ENT, UAI: g.UAI, User: g.User,
		CertFile: g.CertFile, KeyFile: g.KeyFile, CAFile: g.CAFile}
	src, err := c.Add(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	if g.Requests() != 1 {
		t.Fatalf("GAR list requests = %d", g.Requests())
	}
	serve(t, c)
	waitFor(t, "thumbnails fetched", func() bool { return allSettled(t, c) })

	cards, err := c.Cards(ctx, CardFilter{Source: src.ID})
	if err != nil || len(cards) != 4 {
		t.Fatalf("Cards() = %+v, %v", cards, err)
	}
	fle := cards[0]
	if fle.Title != "Lingua Attack - FLE" || fle.State != StateOnlineOnly || fle.StatusFR != "connexion nécessaire" ||
		!strings.HasPrefix(fle.Link, "https://idp-auth.gar.education.fr/domaineGar?idENT=QjA=") ||
		!slices.Equal(fle.Levels, []string{"collège"}) || !slices.Equal(fle.Domains, []string{"français langue étrangère"}) ||
		!slices.Equal(fle.Typologies, []string{"article"}) || fle.Presentation != "ressources d'enseignement multimédias" ||
		!strings.HasPrefix(fle.Thumbnail, "/catalogue/vignettes/") || !strings.Contains(fle.Label, "GAR") {
		t.Errorf("first card = %+v", fle)
	}
	if cards[2].Thumbnail != "" || cards[3].Thumbnail != "" {
		t.Errorf("cards without a usable thumbnail got one: %q, %q", cards[2].Thumbnail, cards[3].Thumbnail)
	}
	// Thumbnails are pinned, one owner per card.
	if owners := st.pinOwners(); len(owners) != 2 || !strings.HasPrefix(owners[0], "catalog:gar:"+src.ID+":") {
		t.Errorf("pinned owners = %v", owners)
	}
	ps, _ := c.Progress(ctx)
	if len(ps) != 1 || ps[0].State != StateFailed || !strings.Contains(ps[0].ErrorFR, "n'est pas une image") {
		t.Errorf("Progress() = %+v, want the hostile thumbnail refused", ps)
	}

	// Filters.
	for _, tt := range []struct {
		f    CardFilter
		want []string
	}{
		{CardFilter{Level: "Collège"}, []string{"Lingua Attack - FLE", "Énigmes mathématiques"}},
		{CardFilter{Domain: "histoire"}, []string{"Courrier international"}},
		{CardFilter{Query: "enigmes"}, []string{"Énigmes mathématiques"}},
		{CardFilter{Query: "courrier", State: StateOffline}, nil},
		{CardFilter{Kind: KindGAR, Limit: 1, Offset: 1}, []string{"Courrier international"}},
	} {
		got, err := c.Cards(ctx, tt.f)
		var titles []string
		for _, cd := range got {
			titles = append(titles, cd.Title)
		}
		if err != nil || !slices.Equal(titles, tt.want) {
			t.Errorf("Cards(%+v) = %q, %v; want %q", tt.f, titles, err, tt.want)
		}
	}

	// The thumbnail handler.
	h := c.ThumbnailHandler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, fle.Thumbnail, nil))
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), pngPixel) || rec.Header().Get("Content-Type") != "image/png" ||
		!strings.Contains(rec.Header().Get("Cache-Control"), "immutable") || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET thumbnail = %d %v", rec.Code, rec.Header())
	}
	etag := rec.Header().Get("ETag")
	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, fle.Thumbnail, nil)
	req.Header.Set("If-None-Match", etag)
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("conditional GET = %d, want 304", rec.Code)
	}
	// A blob that is not a card's thumbnail (a pupil's hand-in…) is not
	// served, even if the store holds it.
	// A pupil's photo: an image like a thumbnail, so only the list of
	// cards' thumbnails keeps it out.
	photo := append(slices.Clone(pngPixel), "devoir"...)
	other := sum(photo)
	if err := os.WriteFile(st.blobPath(other), photo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/catalogue/vignettes/" + other, "/catalogue/vignettes/../../etc/passwd", "/catalogue/vignettes/abc"} {
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, rec.Code)
		}
	}

	// A second refresh with an unchanged list fetches no thumbnail.
	hits := g.ThumbnailRequests()
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "settled", func() bool { return allSettled(t, c) })
	if g.ThumbnailRequests() != hits+1 { // only the hostile one, tried again
		t.Errorf("second refresh fetched %d thumbnails, want 1 (the refused one)", g.ThumbnailRequests()-hits)
	}

	// A resource leaving the list takes its card and its thumbnail pin.
	g.SetResources(garResources()[1:3])
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "settled", func() bool { return allSettled(t, c) })
	cards, _ = c.Cards(ctx, CardFilter{Source: src.ID})
	if len(cards) != 2 || len(st.pinOwners()) != 1 {
		t.Errorf("after the list shrank: %d cards, pins %v", len(cards), st.pinOwners())
	}

	// Another CA's certificate, or none known: refused, in French.
	spec.CertFile, spec.KeyFile, spec.Name = g.StrangerCertFile, g.StrangerKeyFile, "autre"
	spec.User = "prof-2"
	bad, err := c.Add(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Refresh(ctx, bad.ID)
	var e *Error
	if !errors.As(err, &e) || !e.Permanent || !strings.Contains(e.FR, "refuse le certificat client") {
		t.Errorf("Refresh(stranger certificate) = %v", err)
	}
	spec.CertFile, spec.KeyFile, spec.CAFile = g.CertFile, g.KeyFile, ""
	spec.User = "prof-3"
	untrusted, _ := c.Add(ctx, spec)
	if err := c.Refresh(ctx, untrusted.ID); !errors.As(err, &e) || !strings.Contains(e.FR, "certificat du serveur GAR n'est pas reconnu") {
		t.Errorf("Refresh(server not trusted) = %v", err)
	}

	// Removing the source unpins its thumbnails.
	if err := c.Remove(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	if owners := st.pinOwners(); len(owners) != 0 {
		t.Errorf("pins after Remove: %v", owners)
	}
}

// TestGARFromFileAndOfflinePackage: a list exported by the ENT is
// imported from a file; a publisher's offline package added by hand as a
// pack source linked to a card makes that card "disponible hors ligne";
// a bad file is refused whole.
func TestGARFromFileAndOfflinePackage(t *testing.T) {
	g := catalogtest.NewGAR(t, "QjA=", "9999991F", "prof-1")
	g.SetResources(garResources()[:3])
	st := newTestStore(t)
	c, _ := newCatalog(t, Config{}, st)
	ctx := context.Background()
	if _, err := c.Add(ctx, SourceSpec{Kind: KindGAR, UAI: "9999991F", GARList: []byte(`{"listeRessources":{"ressource":[{"idRessource":"x"}]}}`)}); err == nil ||
		!strings.Contains(err.Error(), "nomRessource") {
		t.Errorf("Add(bad list) = %v", err)
	}
	src, err := c.Add(ctx, SourceSpec{Kind: KindGAR, UAI: "9999991F", GARList: g.Document()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}

	// The publisher's offline package, served as a .tar pack.
	pack := buildTarPack(t, "manuel-hors-ligne", map[string]string{"index.html": "<h1>Chapitre 1</h1>"})
	var gets atomic.Int32
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			gets.Add(1)
		}
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(pack)
	}))
	t.Cleanup(ps.Close)
	if _, err := c.Add(ctx, SourceSpec{Kind: KindPack, URL: ps.URL + "/manuel.tar", GARSource: src.ID}); err == nil {
		t.Error("a pack linked to a GAR source without a resource id was accepted")
	}
	pk, err := c.Add(ctx, SourceSpec{Kind: KindPack, URL: ps.URL + "/manuel.tar", GARSource: src.ID, GARResource: "ark:/12313/CI3977251568689"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx, pk.ID); err != nil {
		t.Fatal(err)
	}
	serve(t, c)
	waitFor(t, "pack imported", func() bool { return len(st.packIDs()) == 1 })
	waitFor(t, "settled", func() bool { return allSettled(t, c) })
	cards, err := c.Cards(ctx, CardFilter{Source: src.ID})
	if err != nil || len(cards) != 3 {
		t.Fatalf("Cards() = %+v, %v", cards, err)
	}
	if cd := cards[1]; cd.State != StateOffline || cd.PackID != "manuel-hors-ligne" || cd.StatusFR != "disponible hors ligne" {
		t.Errorf("card with its offline package = %+v", cd)
	}
	if cd := cards[0]; cd.State != StateOnlineOnly {
		t.Errorf("card without = %+v", cd)
	}
	// Refresh: the pack did not change (304), it is not downloaded again.
	if err := c.Refresh(ctx, pk.ID); err != nil {
		t.Fatal(err)
	}
	if gets.Load() != 1 || st.imports.Load() != 1 {
		t.Errorf("pack downloaded %d times, imported %d, want once", gets.Load(), st.imports.Load())
	}
	if ids, _ := c.Packs(ctx, pk.ID); !slices.Equal(ids, []string{"manuel-hors-ligne"}) {
		t.Errorf("Packs() = %v", ids)
	}
	if err := c.Remove(ctx, pk.ID); err != nil || len(st.packIDs()) != 0 {
		t.Errorf("Remove() = %v, packs left %v", err, st.packIDs())
	}
	if err := c.Remove(ctx, pk.ID); !errors.Is(err, ErrUnknownSource) {
		t.Errorf("second Remove() = %v", err)
	}
}

// buildTarPack makes a .tar content pack of files (one item per file).
func buildTarPack(t testing.TB, id string, files map[string]string) []byte {
	t.Helper()
	m := manifest{Format: 1, ID: id, Title: "Paquet " + id, Language: "fr"}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		mt := mediaTypeOf(n, "")
		m.Items = append(m.Items, manifestItem{ID: slug(n, 60), Title: n, Kind: kindOf(mt), Entry: n, Levels: []string{}, Subjects: []string{},
			Files: []manifestFile{{Path: n, Size: int64(len(files[n])), SHA256: sum([]byte(files[n])), MediaType: mt}}})
	}
	m.Version = "1"
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	add("preau-pack.json", raw)
	for _, n := range names {
		add(n, []byte(files[n]))
	}
	tw.Close()
	return buf.Bytes()
}
