package appliance

// Scenario S3 of issue 5 at box level: on a fresh box a teacher adds a
// Tube channel (the PeerTube fixture), a Nuage share (a real WebDAV
// server, rclone serve webdav) and the school's GAR list (the GAR
// fixture over mutual TLS) with `preau catalog add`; `preau catalog
// refresh --wait` brings them onto the box through the WAN budget; then
// every upstream is cut and the pupils still watch and seek the videos,
// open the shared files and browse the GAR cards with their thumbnails.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"preau/appliance/internal/browsertest"
	"preau/services/catalog"
	"preau/services/catalog/catalogtest"
)

// cliRun runs the preau command line in this process against the box.
func cliRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func mustCLIRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errb := cliRun(t, args...)
	if code != ExitOK {
		t.Fatalf("preau %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errb)
	}
	return out
}

// startShare serves dir with rclone serve webdav, no account: a public
// share's WebDAV folder.
func startShare(t *testing.T, dir string) (url string, stop func()) {
	t.Helper()
	bin := requirePeer(t, "rclone")
	addr := "127.0.0.1:" + strconv.Itoa(s2FreePort(t))
	cmd := exec.Command(bin, "serve", "webdav", dir, "--addr", addr, "--config", filepath.Join(t.TempDir(), "rclone.conf"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop = func() {
		cmd.Process.Kill()
		<-done
	}
	t.Cleanup(stop)
	if !waitUntil(15*time.Second, 50*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}) {
		t.Fatal("rclone serve webdav does not answer")
	}
	return "http://" + addr + "/", stop
}

func TestScenarioS3CatalogueOffline(t *testing.T) {
	// Upstreams.
	tube := catalogtest.NewPeerTube(t)
	videos := []catalogtest.Video{
		{UUID: "0b1c2d3e-0000-4000-8000-000000000001", Name: "Les volcans d'Auvergne", Channel: "sciences_cm2",
			Description: "Une vidéo de 4 minutes.", Licence: 2, Language: "fr",
			Files:    []catalogtest.VideoFile{{Height: 480, Size: 12 << 20, Seed: 1}, {Height: 720, Size: 30 << 20, Seed: 2}},
			Captions: map[string][]byte{"fr": []byte("WEBVTT\n\n00:00.000 --> 00:02.000\nBonjour\n")}, Thumbnail: pngBytes(t)},
		{UUID: "0b1c2d3e-0000-4000-8000-000000000002", Name: "Le cycle de l'eau", Channel: "sciences_cm2",
			Files: []catalogtest.VideoFile{{Height: 360, Size: 5 << 20, Seed: 3}}},
	}
	for _, v := range videos {
		tube.AddVideo(v)
	}
	shareDir := t.TempDir()
	shared := map[string][]byte{
		"fiche-volcans.pdf":    bytes.Repeat([]byte("%PDF-1.4 volcans "), 20000),
		"images/carte-fr.png":  pngBytes(t),
		"exercices/calcul.txt": []byte("12 + 30 = ?\n"),
	}
	for p, b := range shared {
		os.MkdirAll(filepath.Join(shareDir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(shareDir, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shareURL, stopShare := startShare(t, shareDir)
	gar := catalogtest.NewGAR(t, "ent-auvergne", "0631234X", "prof-martin")
	gar.SetResources([]catalogtest.Resource{
		{ID: "ark:/99999/manuel-cm2", Name: "Manuel numérique CM2", PublisherID: "ed1", Publisher: "Éditions du Puy",
			Presentation: catalogtest.Term{URI: "MAN", Nom: "Manuel"}, Levels: []catalogtest.Term{{URI: "cm2", Nom: "CM2"}},
			Domains: []catalogtest.Term{{URI: "sci", Nom: "Sciences"}}, Thumbnail: pngBytes(t)},
		{ID: "ark:/99999/atlas", Name: "Atlas interactif", PublisherID: "ed2", Publisher: "Cartes & Co",
			Presentation: catalogtest.Term{URI: "OUT", Nom: "Outil"}, Thumbnail: pngBytes(t)},
	})

	// A fresh box, online (the probe answers), background windows closed:
	// only the teacher's refresh opens the budget.
	probe := startS2Probe(t)
	s := newS2Setup(t, s2Options{probeURL: probe})
	box := startS2InProcess(t, s, true)
	cf := []string{"--config", s.cfg}

	add := func(args ...string) string {
		out := mustCLIRun(t, append(append([]string{"catalog", "add"}, args...), cf...)...)
		f := strings.Fields(strings.SplitN(out, ":", 2)[1])
		return f[0]
	}
	tubeID := add("tube", tube.URL+"/c/sciences_cm2", "--height", "480")
	nuageID := add("nuage", "https://nuage.example.invalid/s/AbCdEf123", "--webdav", shareURL)
	garID := add("gar", "--url", gar.URL, "--ent", gar.ENT, "--uai", gar.UAI, "--user", gar.User,
		"--cert", gar.CertFile, "--key", gar.KeyFile, "--ca", gar.CAFile)
	list := mustCLIRun(t, append([]string{"catalog", "list"}, cf...)...)
	for _, id := range []string{tubeID, nuageID, garID} {
		if !strings.Contains(list, id) {
			t.Errorf("catalog list does not show %s:\n%s", id, list)
		}
	}
	for _, id := range []string{tubeID, nuageID, garID} {
		mustCLIRun(t, append([]string{"catalog", "refresh", id, "--wait"}, cf...)...)
	}
	out := mustCLIRun(t, append([]string{"catalog", "list", "--json"}, cf...)...)
	var st CatalogStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	for _, src := range st.Sources {
		if src.ErrorFR != "" || src.Failed > 0 || src.Done != src.Items || src.Items == 0 {
			t.Errorf("source %s (%s): %d/%d done, %d failed, error %q", src.ID, src.Kind, src.Done, src.Items, src.Failed, src.ErrorFR)
		}
	}
	// Only the 480p file of the first video came (not the 720p one).
	var fetched int64
	for _, sv := range tube.Served() {
		if strings.Contains(sv.Path, "-720.mp4") {
			t.Errorf("the 720p file was fetched: %+v", sv)
		}
		fetched += sv.Bytes
	}
	if want := int64(12<<20 + 5<<20); fetched != want {
		t.Errorf("PeerTube served %d bytes of files, want %d (each byte once)", fetched, want)
	}

	// Cut every upstream: the fixture servers and the share go away, and
	// the uplink probe fails.
	ctx := context.Background()
	tubePacks, err := box.catalog.Packs(ctx, tubeID)
	if err != nil || len(tubePacks) != 2 {
		t.Fatalf("tube packs %v, %v; want 2", tubePacks, err)
	}
	stopShare()
	tube.Close()
	gar.Close()

	items, err := box.content.Items(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byTitle := map[string][2]string{} // title → pack, entry
	for _, it := range items {
		byTitle[it.Title] = [2]string{it.Pack, it.Entry}
	}
	// The pupils watch the video and seek in it.
	v := byTitle["Les volcans d'Auvergne"]
	if v[0] == "" {
		t.Fatalf("the video is not in the content store: %v", byTitle)
	}
	body := catalogtest.FileBody(videos[0].Files[0])
	whole, _ := io.ReadAll(body)
	resp, got := get(t, s.baseURL()+"/c/"+v[0]+"/"+v[1])
	if resp.StatusCode != 200 || !bytes.Equal(got, whole) {
		t.Fatalf("offline video: %d, %d bytes (want the %d bytes of the 480p file)", resp.StatusCode, len(got), len(whole))
	}
	for _, off := range []int64{0, 1 << 20, 7<<20 + 12345, 12<<20 - 100} {
		req, _ := http.NewRequest("GET", s.baseURL()+"/c/"+v[0]+"/"+v[1], nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+99))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, whole[off:min(off+100, int64(len(whole)))]) {
			t.Errorf("seek to %d: %d, %d bytes", off, resp.StatusCode, len(b))
		}
	}
	// The shared files open.
	var shareItems int
	for _, it := range items {
		for p, want := range shared {
			if strings.HasSuffix(it.Entry, p) {
				shareItems++
				_, b := get(t, s.baseURL()+"/c/"+it.Pack+"/"+it.Entry)
				if sum(b) != sum(want) {
					t.Errorf("shared file %s differs offline", p)
				}
			}
		}
	}
	if shareItems != len(shared) {
		t.Errorf("%d of the %d shared files are on the box", shareItems, len(shared))
	}
	// The GAR cards show, with their thumbnails, as needing the internet.
	cards, err := box.catalog.Cards(ctx, catalog.CardFilter{Kind: catalog.KindGAR})
	if err != nil || len(cards) != 2 {
		t.Fatalf("GAR cards %d, %v; want 2", len(cards), err)
	}
	for _, cd := range cards {
		if cd.State != catalog.StateOnlineOnly || cd.Thumbnail == "" {
			t.Errorf("GAR card %q: state %s, thumbnail %q", cd.Title, cd.State, cd.Thumbnail)
			continue
		}
		resp, b := get(t, s.baseURL()+cd.Thumbnail)
		if resp.StatusCode != 200 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("thumbnail of %q offline: %d", cd.Title, resp.StatusCode)
		}
	}
	// The portal lists the videos.
	_, home := get(t, s.baseURL()+"/")
	if !strings.Contains(string(home), htmlEscape("Le cycle de l'eau")) {
		t.Errorf("the portal does not list the second video")
	}
	// The school catalogue page shows every card with its state, in
	// Chromium, and passes axe-core.
	_, page := get(t, s.baseURL()+"/catalogue")
	for _, want := range []string{"Manuel numérique CM2", "Atlas interactif", htmlEscape("Les volcans d'Auvergne"), "disponible hors ligne"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("/catalogue does not show %q", want)
		}
	}
	br := browsertest.Start(t)
	if err := br.Open(s.baseURL() + "/catalogue"); err != nil {
		t.Fatal(err)
	}
	if err := br.Screenshot(filepath.Join(browsertest.ArtefactDir(t), "catalogue.png")); err != nil {
		t.Error(err)
	}
	vs, err := br.Axe()
	if err != nil {
		t.Fatalf("axe on /catalogue: %v", err)
	}
	for _, v := range browsertest.Serious(vs) {
		t.Errorf("/catalogue: accessibility: %s", v)
	}
	// `preau cache status` tells the space used.
	if out := mustCLIRun(t, append([]string{"cache", "status"}, cf...)...); !strings.Contains(out, "Paquets") || !strings.Contains(out, "Cache HTTP") {
		t.Errorf("cache status:\n%s", out)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// pngBytes is a small real PNG (thumbnails, a map).
func pngBytes(t *testing.T) []byte {
	t.Helper()
	return s2Picture(rand.New(rand.NewPCG(uint64(len(t.Name())), 7)), 8<<10)
}

// A technician mistyping a source id is told so in French, for every
// command that takes one.
func TestCatalogUnknownSource(t *testing.T) {
	s := newS2Setup(t, s2Options{})
	startS2InProcess(t, s, false)
	for _, cmd := range [][]string{{"refresh", "tube-nope"}, {"pin", "tube-nope"}, {"remove", "tube-nope"}} {
		code, _, errb := cliRun(t, append(append([]string{"catalog"}, cmd...), "--config", s.cfg)...)
		if code == ExitOK || !strings.Contains(errb, "aucune source « tube-nope »") {
			t.Errorf("catalog %s: exit %d, %q", cmd[0], code, errb)
		}
	}
}

// TestScenarioS3KillDuringPrefetch is issue 5's resume test at the box's
// level: the real binary prefetches a 200 MB Tube video; it is killed
// with SIGKILL at seeded random points (four times) and the upstream
// cuts the connection mid-body twice; each restart resumes. The stored
// video is byte-identical to the upstream file, and no verified byte is
// fetched again: requests never start before an earlier one, and each
// resumed request starts at most one checkpoint (4 MiB, fsynced) before
// what the box had received when it was killed or cut.
func TestScenarioS3KillDuringPrefetch(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MB prefetch: not in -short")
	}
	const size = 200 << 20
	tube := catalogtest.NewPeerTube(t)
	video := catalogtest.Video{UUID: "0b1c2d3e-0000-4000-8000-0000000000aa", Name: "La Chaîne des Puys en 4K", Channel: "geo_cm2",
		Files: []catalogtest.VideoFile{{Height: 480, Size: size, Seed: 77}}}
	tube.AddVideo(video)

	probe := startS2Probe(t)
	s := newS2Setup(t, s2Options{probeURL: probe})
	p := newS2Process(t, s)
	p.start(true)
	cf := []string{"--config", s.cfg}
	out := mustCLIRun(t, append([]string{"catalog", "add", "tube", tube.URL + "/c/geo_cm2", "--height", "480"}, cf...)...)
	id := strings.Fields(strings.SplitN(out, ":", 2)[1])[0]

	// progress is the video's bytes verified so far, from the CLI's JSON;
	// -1 once it is done.
	progress := func() int64 {
		code, out, _ := cliRun(t, append([]string{"catalog", "list", "--json"}, cf...)...)
		if code != ExitOK {
			return 0
		}
		var st CatalogStatus
		if json.Unmarshal([]byte(out), &st) != nil {
			return 0
		}
		for _, it := range st.Progress {
			if it.Kind == "video" {
				return it.BytesDone
			}
		}
		for _, src := range st.Sources {
			if src.ID == id && src.Items > 0 && src.Done == src.Items {
				return -1
			}
		}
		return 0
	}
	rng := rand.New(rand.NewPCG(5, 0))
	kills, cuts := 0, 0
	const checkpoint = 4 << 20
	// resumeAt: index in tube.Served() of a resumed request → the lowest
	// start that fetches no verified byte again.
	resumeAt := map[int]int64{}
	mustCLIRun(t, append([]string{"catalog", "refresh", id}, cf...)...)
	for _, step := range []string{"kill", "cut", "kill", "kill", "cut", "kill"} {
		before := progress()
		// A random point 8 to 40 MiB further on.
		at := before + 8<<20 + rng.Int64N(32<<20)
		if at >= size-4<<20 {
			break
		}
		if step == "cut" {
			tube.CutNext(at - before)
			cuts++
		}
		deadline := time.Now().Add(3 * time.Minute)
		var got int64
		for {
			got = progress()
			if got < 0 || got >= at || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got < 0 {
			t.Fatalf("the download ended before step %s at %d MiB", step, at>>20)
		}
		if got < at && step == "kill" {
			t.Fatalf("no progress to %d MiB within 3 min (at %d MiB)", at>>20, got>>20)
		}
		if step == "kill" {
			n0 := len(tube.Served())
			p.kill()
			kills++
			t.Logf("kill -9 with %.1f MiB received", float64(got)/(1<<20))
			// The killed response is recorded once the fixture's write
			// fails; the next one recorded is the resumed request.
			for i := 0; i < 100 && len(tube.Served()) <= n0; i++ {
				time.Sleep(50 * time.Millisecond)
			}
			resumeAt[len(tube.Served())] = got - checkpoint
			p.start(true)
			// The box restarts with the sending window closed: the
			// teacher asks again, as after a reboot.
			mustCLIRun(t, append([]string{"catalog", "refresh", id}, cf...)...)
		} else {
			t.Logf("connection cut by the upstream after %.1f MiB more", float64(at-before)/(1<<20))
		}
	}
	start := time.Now()
	mustCLIRun(t, append([]string{"catalog", "refresh", id, "--wait"}, cf...)...)
	if progress() != -1 {
		t.Fatalf("the video is not done after refresh --wait")
	}
	t.Logf("finished %.1f s after the last interruption", time.Since(start).Seconds())

	// Byte-identical.
	want := sha256.New()
	io.Copy(want, catalogtest.FileBody(video.Files[0]))
	wantSum := hex.EncodeToString(want.Sum(nil))
	stored := storedVideoSum(t, s, p)
	if stored != wantSum {
		t.Fatalf("stored video sha256 %s, want %s", stored, wantSum)
	}

	// No verified byte fetched twice.
	var fetched int64
	served := tube.Served()
	for i, sv := range served {
		if !strings.HasSuffix(sv.Path, ".mp4") {
			t.Fatalf("unexpected file request %+v", sv)
		}
		t.Logf("served from %.1f MiB: %.1f MiB (cut %v)", float64(sv.Start)/(1<<20), float64(sv.Bytes)/(1<<20), sv.Cut)
		fetched += sv.Bytes
		if i == 0 {
			continue
		}
		prev := served[i-1]
		if sv.Start < prev.Start {
			t.Errorf("request %d starts at %d, before request %d (%d): verified bytes fetched again", i, sv.Start, i-1, prev.Start)
		}
		if min, ok := resumeAt[i]; ok && sv.Start < min {
			t.Errorf("after a kill, request %d starts at %.1f MiB, more than a checkpoint before what was received (%.1f MiB)",
				i, float64(sv.Start)/(1<<20), float64(min+checkpoint)/(1<<20))
		}
		if prev.Cut && sv.Start < prev.Start+prev.Bytes-checkpoint {
			t.Errorf("after a cut at %.1f MiB, request %d starts at %.1f MiB: more than a checkpoint fetched again",
				float64(prev.Start+prev.Bytes)/(1<<20), i, float64(sv.Start)/(1<<20))
		}
	}
	if len(resumeAt) != kills {
		t.Errorf("%d resumed requests recorded for %d kills", len(resumeAt), kills)
	}
	t.Logf("%d kills and %d cuts: %.1f MiB fetched for %.0f MiB (%.2f MiB re-fetched, unverified tails)", kills, cuts,
		float64(fetched)/(1<<20), float64(size)/(1<<20), float64(fetched-size)/(1<<20))
}

// storedVideoSum is the sha256 of the video as the portal serves it; its
// pack and path come from the box's database (read-only, WAL).
func storedVideoSum(t *testing.T, s *s2Setup, p *s2Process) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(s.data, "preau.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pack, path string
	if err := db.QueryRow(`SELECT pack, path FROM content_files WHERE media_type LIKE 'video/%' ORDER BY size DESC LIMIT 1`).Scan(&pack, &path); err != nil {
		t.Fatalf("find the stored video: %v", err)
	}
	resp, err := http.Get(s.baseURL() + "/c/" + pack + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /c/%s/%s: %d", pack, path, resp.StatusCode)
	}
	h := sha256.New()
	io.Copy(h, resp.Body)
	return hex.EncodeToString(h.Sum(nil))
}
