package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"preau/services/catalog/catalogtest"
)

func uuidN(n int) string { return fmt.Sprintf("%08x-0a1e-484a-b099-e80766180a6d", n) }

func bodyOf(f catalogtest.VideoFile) []byte {
	b, _ := io.ReadAll(catalogtest.FileBody(f))
	return b
}

// TestTubeChannelPaginatesAndPicksTheFile: a channel of 130 public videos
// (two pages of the API) and one private video becomes 130 packs, each with
// the 480p file (target height), its thumbnail, captions and licence; the
// bytes are the server's. A second refresh fetches no detail and no file;
// a video gone from the channel loses its pack.
func TestTubeChannelPaginatesAndPicksTheFile(t *testing.T) {
	pt := catalogtest.NewPeerTube(t)
	const n = 130
	for i := range n {
		pt.AddVideo(catalogtest.Video{UUID: uuidN(i), Name: fmt.Sprintf("Leçon %d : les fractions", i), Channel: "maths_cm2",
			Description: "Une vidéo de cours.\nDeuxième ligne.", Licence: 2, Language: "fr",
			Files: []catalogtest.VideoFile{
				{Height: 720, Size: 3000, Seed: uint64(i*10 + 1)},
				{Height: 480, Size: 2000, Seed: uint64(i*10 + 2)},
				{Height: 240, Size: 1000, Seed: uint64(i*10 + 3)},
				{Height: 480, HLS: true, Size: 2100, Seed: uint64(i*10 + 4)},
			},
			Captions:  map[string][]byte{"fr": []byte("WEBVTT\n\n00:00.000 --> 00:01.000\nBonjour\n"), "en": []byte("WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n")},
			Thumbnail: []byte("\xff\xd8\xff\xe0 thumbnail " + itoa(i)),
		})
	}
	pt.AddVideo(catalogtest.Video{UUID: uuidN(999), Name: "Réunion privée", Channel: "maths_cm2", Privacy: 3,
		Files: []catalogtest.VideoFile{{Height: 480, Size: 10, Seed: 9}}})

	st := newTestStore(t)
	c, _ := newCatalog(t, Config{}, st)
	ctx := context.Background()
	src, err := c.Add(ctx, SourceSpec{Kind: KindTube, URL: pt.URL + "/c/maths_cm2/videos"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	if got := pt.Requests("list"); got != 2 {
		t.Errorf("list requests = %d, want 2 pages of 100", got)
	}
	serve(t, c)
	waitFor(t, "every video downloaded", func() bool { return len(st.packIDs()) == n })

	for _, i := range []int{0, 57, n - 1} {
		id := tubePackID(strings.TrimPrefix(pt.URL, "http://"), uuidN(i))
		p, ok := st.pack(id)
		if !ok {
			t.Fatalf("pack %s missing; have %v", id, st.packIDs())
		}
		if p.source != src.ID {
			t.Errorf("pack source = %q, want %q", p.source, src.ID)
		}
		it := p.manifest.Items[0]
		paths := map[string]manifestFile{}
		for _, f := range it.Files {
			paths[f.Path] = f
		}
		want480 := bodyOf(catalogtest.VideoFile{Height: 480, Size: 2000, Seed: uint64(i*10 + 2)})
		if v := paths["video.mp4"]; v.SHA256 != sum(want480) || v.Size != 2000 || v.MediaType != "video/mp4" {
			t.Errorf("video %d: file = %+v, want the 480p web video", i, v)
		}
		if got := string(st.blob(t, paths["sous-titres/fr.vtt"].SHA256)); !strings.Contains(got, "Bonjour") {
			t.Errorf("video %d: French captions = %q", i, got)
		}
		if _, ok := paths["sous-titres/en.vtt"]; !ok || it.Thumbnail != "vignette.jpg" || paths["vignette.jpg"].MediaType != "image/jpeg" {
			t.Errorf("video %d: files = %v, thumbnail %q", i, paths, it.Thumbnail)
		}
		if it.Licence != "CC-BY-SA-4.0" || it.Kind != "video" || it.Title != fmt.Sprintf("Leçon %d : les fractions", i) ||
			!strings.Contains(it.Description, "Deuxième ligne") || p.manifest.Language != "fr" || it.Authors[0] != "Mme Martin" {
			t.Errorf("video %d: item = %+v", i, it)
		}
	}
	cards, err := c.Cards(ctx, CardFilter{Source: src.ID, Query: "leçon 57"})
	if err != nil || len(cards) != 1 || cards[0].State != StateOffline || cards[0].StatusFR != "disponible hors ligne" ||
		!strings.HasPrefix(cards[0].Link, "/c/tube-") || !strings.HasSuffix(cards[0].Thumbnail, "/vignette.jpg") {
		t.Fatalf("Cards() = %+v, %v", cards, err)
	}

	// Refresh again: the listing's updatedAt is unchanged, so no details,
	// no captions, no file.
	videoReqs, fetches := pt.Requests("video"), st.fetchCount()
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if pt.Requests("video") != videoReqs || st.fetchCount() != fetches {
		t.Errorf("second refresh: %d detail requests and %d fetches, want none", pt.Requests("video")-videoReqs, st.fetchCount()-fetches)
	}

	// A video removed from the channel loses its pack.
	pt.RemoveVideo(uuidN(3))
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.pack(tubePackID(strings.TrimPrefix(pt.URL, "http://"), uuidN(3))); ok || len(st.packIDs()) != n-1 {
		t.Errorf("after removal: %d packs, removed video still there: %v", len(st.packIDs()), ok)
	}
	if owners := st.pinOwners(); len(owners) != 0 {
		t.Errorf("pins left after commit: %v", owners)
	}
}

// TestTubeResumesAfterCuts: the link is cut twice in the middle of the
// file; the card shows the interrupted download with its percentage, the
// download resumes from where it stopped (Range) and the blob is the
// server's file.
func TestTubeResumesAfterCuts(t *testing.T) {
	pt := catalogtest.NewPeerTube(t)
	file := catalogtest.VideoFile{Height: 720, Size: 3 << 20, Seed: 42}
	pt.AddVideo(catalogtest.Video{UUID: uuidN(1), Name: "Le cycle de l'eau", Channel: "sciences", Files: []catalogtest.VideoFile{file}})
	pt.CutNext(1<<20, 1<<20)
	st := newTestStore(t)
	c, _ := newCatalog(t, Config{TubeHeight: 720, RetryMin: 400 * time.Millisecond, RetryMax: 500 * time.Millisecond}, st)
	ctx := context.Background()
	src, err := c.Add(ctx, SourceSpec{Kind: KindTube, URL: pt.URL + "/w/" + uuidN(1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	serve(t, c)
	waitFor(t, "the first cut to be recorded", func() bool {
		cards, _ := c.Cards(ctx, CardFilter{Source: src.ID})
		return len(cards) == 1 && cards[0].State == StateQueued && cards[0].ErrorFR != ""
	})
	cards, _ := c.Cards(ctx, CardFilter{Source: src.ID})
	if cd := cards[0]; cd.Percent < 30 || cd.Percent > 35 || !strings.Contains(cd.StatusFR, "interrompu") || cd.BytesTotal != 3<<20 {
		t.Errorf("card after a cut = %+v, want about 33 %% and an honest status", cd)
	}
	waitFor(t, "the video downloaded", func() bool { return len(st.packIDs()) == 1 })
	p, _ := st.pack(st.packIDs()[0])
	if got := p.manifest.Items[0].Files[0].SHA256; got != sum(bodyOf(file)) {
		t.Errorf("video blob %s, want the server's file", got)
	}
	var served int64
	for _, s := range pt.Served() {
		served += s.Bytes
	}
	if served != 3<<20 {
		t.Errorf("the server sent %d bytes for a %d-byte file across %d responses; want each byte once: %+v", served, 3<<20, len(pt.Served()), pt.Served())
	}
	cards, _ = c.Cards(ctx, CardFilter{Source: src.ID})
	if cards[0].State != StateOffline || cards[0].ErrorFR != "" || cards[0].Percent != 100 {
		t.Errorf("card after the download = %+v", cards[0])
	}
}

// TestTubePrivateAndUnlistedVideos: a private video given by its address
// is refused with the message; in a playlist, a private video is
// absent from the API and a non-public one fails with the same message
// while the public one is kept.
func TestTubePrivateAndUnlistedVideos(t *testing.T) {
	pt := catalogtest.NewPeerTube(t)
	pt.AddVideo(catalogtest.Video{UUID: uuidN(1), Name: "Publique", Channel: "c", Files: []catalogtest.VideoFile{{Height: 480, Size: 100, Seed: 1}}})
	pt.AddVideo(catalogtest.Video{UUID: uuidN(2), Name: "Non répertoriée", Channel: "c", Privacy: 2, Files: []catalogtest.VideoFile{{Height: 480, Size: 100, Seed: 2}}})
	pt.AddVideo(catalogtest.Video{UUID: uuidN(3), Name: "Privée", Channel: "c", Privacy: 3, Files: []catalogtest.VideoFile{{Height: 480, Size: 100, Seed: 3}}})
	pt.AddPlaylist("pl1", uuidN(1), uuidN(2), uuidN(3))
	st := newTestStore(t)
	c, _ := newCatalog(t, Config{}, st)
	ctx := context.Background()
	const msg = "vidéo privée : non prise en charge (seules les vidéos publiques peuvent être mises hors ligne)"

	priv, err := c.Add(ctx, SourceSpec{Kind: KindTube, URL: pt.URL + "/w/" + uuidN(3)})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Refresh(ctx, priv.ID)
	var e *Error
	if !errors.As(err, &e) || e.FR != msg || !strings.Contains(e.English(), "private video") {
		t.Fatalf("Refresh(private video) = %v", err)
	}
	list, _ := c.List(ctx)
	if list[0].ErrorFR != msg {
		t.Errorf("source error = %q", list[0].ErrorFR)
	}

	pl, err := c.Add(ctx, SourceSpec{Kind: KindTube, URL: pt.URL + "/w/p/pl1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx, pl.ID); err != nil {
		t.Fatal(err)
	}
	serve(t, c)
	waitFor(t, "the playlist settled", func() bool { return allSettled(t, c) })
	cards, err := c.Cards(ctx, CardFilter{Source: pl.ID})
	if err != nil || len(cards) != 2 {
		t.Fatalf("Cards() = %+v, %v", cards, err)
	}
	if cards[0].Title != "Publique" || cards[0].State != StateOffline {
		t.Errorf("public video card = %+v", cards[0])
	}
	if cards[1].Title != "Non répertoriée" || cards[1].State != StateFailed || cards[1].ErrorFR != msg {
		t.Errorf("unlisted video card = %+v", cards[1])
	}
}

// TestTubeHLSOnly: an instance that keeps only HLS files gives the
// fragmented MP4 of the right height.
func TestTubeHLSOnly(t *testing.T) {
	pt := catalogtest.NewPeerTube(t)
	want := catalogtest.VideoFile{Height: 360, HLS: true, Size: 5000, Seed: 7}
	pt.AddVideo(catalogtest.Video{UUID: uuidN(5), Name: "HLS", Channel: "c", Files: []catalogtest.VideoFile{
		{Height: 720, HLS: true, Size: 9000, Seed: 8}, want, {Height: 480, Size: 100, Seed: 9, HideSize: true}}})
	st := newTestStore(t)
	c, _ := newCatalog(t, Config{}, st)
	ctx := context.Background()
	src, _ := c.Add(ctx, SourceSpec{Kind: KindTube, URL: pt.URL + "/videos/watch/" + uuidN(5), Height: 480})
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	serve(t, c)
	waitFor(t, "the video downloaded", func() bool { return len(st.packIDs()) == 1 })
	p, _ := st.pack(st.packIDs()[0])
	if f := p.manifest.Items[0].Files[0]; f.SHA256 != sum(bodyOf(want)) || f.Size != 5000 {
		t.Errorf("file = %+v, want the 360p HLS file", f)
	}
	if p.manifest.Items[0].Licence != "" || p.manifest.Language != "fr" {
		t.Errorf("no licence and no language given: item %+v, language %q", p.manifest.Items[0], p.manifest.Language)
	}
}
