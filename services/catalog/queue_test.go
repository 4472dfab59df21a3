package catalog

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"preau/services/catalog/catalogtest"
)

// gateBudget blocks prefetch until opened; it counts the waits.
type gateBudget struct {
	waits atomic.Int32
	open  chan struct{}
}

func (b *gateBudget) Wait(ctx context.Context) error {
	b.waits.Add(1)
	select {
	case <-b.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func tubeSource(t *testing.T, n int, size int64) (*catalogtest.PeerTube, string) {
	pt := catalogtest.NewPeerTube(t)
	for i := range n {
		pt.AddVideo(catalogtest.Video{UUID: uuidN(i), Name: fmt.Sprintf("Vidéo %d", i), Channel: "c",
			Files: []catalogtest.VideoFile{{Height: 480, Size: size, Seed: uint64(i)}}})
	}
	return pt, pt.URL + "/c/c"
}

// TestBudgetGatesEveryDownload: no byte is fetched before the WAN budget
// lets prefetch through, and every download waits on it.
func TestBudgetGatesEveryDownload(t *testing.T) {
	_, u := tubeSource(t, 3, 100)
	st := newTestStore(t)
	db := openDB(t)
	b := &gateBudget{open: make(chan struct{})}
	c, err := New(Config{RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond}, db, st, b, &http.Client{}, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, _ := c.Add(ctx, SourceSpec{Kind: KindTube, URL: u})
	serve(t, c)
	time.Sleep(200 * time.Millisecond)
	if st.fetchCount() != 0 {
		t.Fatal("fetched before the budget allowed it")
	}
	close(b.open)
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "downloads", func() bool { return len(st.packIDs()) == 3 })
	if w := b.waits.Load(); w < 1+3 {
		t.Errorf("budget waits = %d, want at least one per refresh and per download", w)
	}
}

// TestStopAndRestartResume: a download under way when the box stops goes
// back to the queue, and one a crash left "downloading" is taken again at
// start; both finish after the restart.
func TestStopAndRestartResume(t *testing.T) {
	_, u := tubeSource(t, 2, 1000)
	st := newTestStore(t)
	release := make(chan struct{})
	st.fetchHook = func(ctx context.Context, f Fetch) error {
		<-release
		return ctx.Err()
	}
	db := openDB(t)
	cfg := Config{Workers: 1, RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond}
	c1, _ := New(cfg, db, st, nil, &http.Client{}, nil, testLogger(t))
	ctx := context.Background()
	src, _ := c1.Add(ctx, SourceSpec{Kind: KindTube, URL: u})
	if err := c1.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- c1.Serve(sctx) }()
	waitFor(t, "a download under way", func() bool {
		ps, _ := c1.Progress(ctx)
		return len(ps) > 0 && ps[0].State == StateDownloading
	})
	stop()
	close(release) // the fetch in flight returns; its context is gone
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A crash would have left it downloading.
	if _, err := db.Exec(`UPDATE catalog_items SET state = 'downloading' WHERE key = ?`, uuidN(1)); err != nil {
		t.Fatal(err)
	}
	var states []string
	rows, _ := db.Query(`SELECT state FROM catalog_items ORDER BY key`)
	for rows.Next() {
		var s string
		rows.Scan(&s)
		states = append(states, s)
	}
	rows.Close()
	if strings.Join(states, " ") != "queued downloading" {
		t.Fatalf("states after the stop = %v", states)
	}
	st.fetchHook = nil
	c2, _ := New(cfg, db, st, nil, &http.Client{}, nil, testLogger(t))
	serve(t, c2)
	waitFor(t, "both videos after the restart", func() bool { return len(st.packIDs()) == 2 })
}

// TestFailuresAreSorted: a permanent error fails at once, a transient one
// is retried until MaxAttempts, a full store waits without using up
// attempts, and each shows its message.
func TestFailuresAreSorted(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantState CardState
		attempts  int
		wantFR    string
	}{
		{"permanent", permanent("x", "fichier refusé par le serveur", "file refused by the server", nil), StateFailed, 1, "fichier refusé"},
		{"transient until the limit", errors.New("connection reset by peer"), StateFailed, 3, "téléchargement interrompu (fetch video.mp4: connection reset by peer)"},
		{"store full", fmt.Errorf("fetch: %w", &storeFullError{}), StateQueued, 0, "stockage plein"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, u := tubeSource(t, 1, 10)
			st := newTestStore(t)
			var calls atomic.Int32
			st.fetchHook = func(context.Context, Fetch) error { calls.Add(1); return tt.err }
			c, db := newCatalog(t, Config{MaxAttempts: 3, RetryMin: 10 * time.Millisecond, RetryMax: 30 * time.Millisecond}, st)
			if tt.name == "store full" {
				c.cfg.RetryMax = time.Hour
			}
			ctx := context.Background()
			src, _ := c.Add(ctx, SourceSpec{Kind: KindTube, URL: u})
			if err := c.Refresh(ctx, src.ID); err != nil {
				t.Fatal(err)
			}
			serve(t, c)
			waitFor(t, "the outcome", func() bool {
				ps, _ := c.Progress(ctx)
				return len(ps) == 1 && ps[0].State == tt.wantState && ps[0].ErrorFR != ""
			})
			ps, _ := c.Progress(ctx)
			var attempts int
			db.QueryRow(`SELECT attempts FROM catalog_items`).Scan(&attempts)
			if !strings.Contains(ps[0].ErrorFR, tt.wantFR) || ps[0].ErrorEN == "" || attempts != tt.attempts {
				t.Errorf("progress = %+v, attempts %d; want %q after %d", ps[0], attempts, tt.wantFR, tt.attempts)
			}
			if tt.name == "store full" && ps[0].NextAttempt.Before(time.Now().Add(30*time.Minute)) {
				t.Errorf("store full: next attempt %v, want much later", ps[0].NextAttempt)
			}
			// A refresh gives a failed item a new chance.
			if tt.wantState == StateFailed {
				st.fetchHook = nil
				if err := c.Refresh(ctx, src.ID); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the retry after the refresh", func() bool { return len(st.packIDs()) == 1 })
			}
		})
	}
}

// storeFullError is what the appliance's adapter returns for the content
// store's ErrStoreFull: French first, English on demand, wrapping
// catalog.ErrStoreFull.
type storeFullError struct{}

func (*storeFullError) Error() string {
	return "stockage plein : 120 Mo nécessaires, 0 Mo libérables ; épinglez moins de contenus ou augmentez le quota"
}
func (*storeFullError) English() string { return "storage full: 120 MB needed, 0 MB can be freed" }
func (*storeFullError) Unwrap() error   { return ErrStoreFull }

// TestRemoveStopsDownloads: removing a source cancels its downloads, takes
// its packs and pins away and forgets it.
func TestRemoveStopsDownloads(t *testing.T) {
	_, u := tubeSource(t, 3, 100)
	st := newTestStore(t)
	block := make(chan struct{})
	var mu sync.Mutex
	first := true
	st.fetchHook = func(ctx context.Context, f Fetch) error {
		mu.Lock()
		wait := !first
		first = false
		mu.Unlock()
		if wait {
			select { // every download after the first hangs
			case <-block:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	defer close(block)
	c, db := newCatalog(t, Config{Workers: 1}, st)
	ctx := context.Background()
	src, _ := c.Add(ctx, SourceSpec{Kind: KindTube, URL: u})
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	serve(t, c)
	waitFor(t, "one pack and one hanging download", func() bool {
		ps, _ := c.Progress(ctx)
		return len(st.packIDs()) == 1 && len(ps) > 0 && ps[0].State == StateDownloading
	})
	removed := make(chan error, 1)
	go func() { removed <- c.Remove(ctx, src.ID) }()
	select {
	case err := <-removed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Remove did not stop the download")
	}
	var n int
	db.QueryRow(`SELECT count(*) FROM catalog_items`).Scan(&n)
	if len(st.packIDs()) != 0 || n != 0 {
		t.Errorf("after Remove: packs %v, %d items", st.packIDs(), n)
	}
	if list, _ := c.List(ctx); len(list) != 0 {
		t.Errorf("List() = %+v", list)
	}
}

// TestAddValidatesAndIsIdempotent: specs are checked with a message that
// names the problem; the same source added twice is one source.
func TestAddValidatesAndIsIdempotent(t *testing.T) {
	c, _ := newCatalog(t, Config{}, newTestStore(t))
	ctx := context.Background()
	tests := []struct {
		spec SourceSpec
		want string
	}{
		{SourceSpec{Kind: "youtube"}, "type de source"},
		{SourceSpec{Kind: KindTube, URL: "https://tube.example/a/compte"}, "adresse PeerTube"},
		{SourceSpec{Kind: KindTube, URL: "https://tube.example/c/x", Height: 50}, "hauteur"},
		{SourceSpec{Kind: KindNuage, URL: "https://nuage.example/apps/files"}, "lien de partage"},
		{SourceSpec{Kind: KindPack, URL: "file:///etc/passwd"}, "adresse du paquet"},
		{SourceSpec{Kind: KindGAR, URL: "http://gar.example"}, "https"},
		{SourceSpec{Kind: KindGAR, URL: "https://gar.example", ENT: "e", UAI: "u", User: "p"}, "cert_file"},
		{SourceSpec{Kind: KindTube, URL: "https://tube.example/c/x", Refresh: time.Minute}, "trop court"},
	}
	for _, tt := range tests {
		_, err := c.Add(ctx, tt.spec)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.FR, tt.want) || !strings.HasPrefix(e.FR, "source refusée") || e.EN == "" {
			t.Errorf("Add(%+v) = %v; want a refusal naming %q", tt.spec, err, tt.want)
		}
	}
	a, err := c.Add(ctx, SourceSpec{Kind: KindTube, URL: "https://tube.example/c/x/videos", Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Add(ctx, SourceSpec{Kind: KindTube, URL: "https://tube.example/video-channels/x", Name: "Sciences"})
	if err != nil {
		t.Fatal(err)
	}
	list, _ := c.List(ctx)
	if a.ID != b.ID || len(list) != 1 || list[0].Name != "Sciences" || list[0].Refresh != 24*time.Hour {
		t.Errorf("sources = %+v", list)
	}
	if err := c.Refresh(ctx, "nope"); !errors.Is(err, ErrUnknownSource) {
		t.Errorf("Refresh(unknown) = %v", err)
	}
}

// TestScheduledRefresh: Serve refreshes a source when it is due, and
// again after its interval.
func TestScheduledRefresh(t *testing.T) {
	pt, u := tubeSource(t, 1, 10)
	st := newTestStore(t)
	db := openDB(t)
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC).UnixMilli())
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	c, err := New(Config{MinRefresh: time.Minute, Refresh: time.Hour}, db, st, nil, &http.Client{}, clock, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Add(ctx, SourceSpec{Kind: KindTube, URL: u}); err != nil {
		t.Fatal(err)
	}
	serve(t, c)
	waitFor(t, "the first refresh and download", func() bool { return len(st.packIDs()) == 1 })
	lists := pt.Requests("list")
	list, _ := c.List(ctx)
	if !list[0].NextRefresh.Equal(clock().Add(time.Hour)) || list[0].LastRefresh.IsZero() {
		t.Errorf("source = %+v", list[0])
	}
	// An hour later (the loop sleeps on a real timer: move the clock, then
	// wake it by adding the same source again, which reschedules nothing).
	now.Add(time.Hour.Milliseconds())
	db.Exec(`UPDATE catalog_sources SET next_refresh = ?`, now.Load())
	c.poke()
	waitFor(t, "the second refresh", func() bool { return pt.Requests("list") > lists })
}

// TestDamagedOrEvictedContentIsFetchedAgain: a blob the scrub found
// damaged (Repair) or that left the store (eviction, seen at the next
// refresh) is downloaded again and the pack committed again.
func TestDamagedOrEvictedContentIsFetchedAgain(t *testing.T) {
	_, u := tubeSource(t, 1, 500)
	st := newTestStore(t)
	c, _ := newCatalog(t, Config{}, st)
	ctx := context.Background()
	src, _ := c.Add(ctx, SourceSpec{Kind: KindTube, URL: u})
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	serve(t, c)
	waitFor(t, "downloaded", func() bool { return len(st.packIDs()) == 1 })
	id := st.packIDs()[0]
	p, _ := st.pack(id)
	video := p.manifest.Items[0].Files[0].SHA256

	for _, how := range []string{"repair", "refresh"} {
		fetches := st.fetchCount()
		os.Remove(st.blobPath(video)) // quarantined or evicted
		st.RemovePack(ctx, id)
		switch how {
		case "repair":
			if n, err := c.Repair(ctx, []string{video, sum([]byte("unrelated"))}); err != nil || n != 1 {
				t.Fatalf("Repair() = %d, %v", n, err)
			}
		case "refresh":
			if err := c.Refresh(ctx, src.ID); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, how+": downloaded again", func() bool { _, ok := st.pack(id); return ok })
		if st.fetchCount() != fetches+1 {
			t.Errorf("%s: %d fetches, want only the lost file", how, st.fetchCount()-fetches)
		}
		if b := st.blob(t, video); sum(b) != video {
			t.Errorf("%s: blob differs", how)
		}
	}
}

// TestCutAfterProgressVersusRefusal: a download cut after storing more
// bytes resumes within seconds without using up an attempt; one the
// content store refuses after its bytes came (a wrong hash) is an
// attempt like any failure, so it ends failed instead of looping.
func TestCutAfterProgressVersusRefusal(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"cut", errors.New("unexpected EOF")},
		{"refused", fmt.Errorf("fetch: %w: sha256 mismatch", ErrRefused)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, u := tubeSource(t, 1, 10)
			st := newTestStore(t)
			var calls atomic.Int32
			st.fetchHook = func(_ context.Context, f Fetch) error {
				n := calls.Add(1)
				if f.Progress != nil {
					f.Progress(int64(n)*100, 10_000)
				}
				return tt.err
			}
			c, db := newCatalog(t, Config{MaxAttempts: 3, RetryMin: 10 * time.Millisecond, RetryMax: 30 * time.Millisecond}, st)
			ctx := context.Background()
			src, _ := c.Add(ctx, SourceSpec{Kind: KindTube, URL: u})
			if err := c.Refresh(ctx, src.ID); err != nil {
				t.Fatal(err)
			}
			serve(t, c)
			if tt.name == "refused" {
				waitFor(t, "the failure", func() bool {
					ps, _ := c.Progress(ctx)
					return len(ps) == 1 && ps[0].State == StateFailed
				})
				if n := calls.Load(); n != 3 {
					t.Errorf("%d attempts, want 3", n)
				}
				return
			}
			waitFor(t, "the first cut", func() bool { return calls.Load() >= 1 })
			time.Sleep(200 * time.Millisecond)
			var attempts int
			var next int64
			db.QueryRow(`SELECT attempts, next_attempt FROM catalog_items`).Scan(&attempts, &next)
			ps, _ := c.Progress(ctx)
			if len(ps) != 1 || ps[0].State == StateFailed || attempts > 1 {
				t.Fatalf("after a cut with progress: %+v, attempts %d; want queued without using up attempts", ps, attempts)
			}
			if d := time.Until(time.UnixMilli(next)); d > 5*time.Second {
				t.Errorf("next attempt in %v, want within 5 s", d)
			}
		})
	}
}
