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
