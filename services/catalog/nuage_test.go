package catalog

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The real WebDAV peer: Debian's rclone serving a folder on 127.0.0.1. A
// missing rclone skips the tests unless PREAU_REQUIRE_PEERS=1.

func needPeer(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startRclone serves dir with rclone serve webdav under baseURL ("" for
// the root); user "" serves without authentication. It returns the
// server's http://127.0.0.1:PORT.
func startRclone(t testing.TB, dir, baseURL, user, pass string) string {
	t.Helper()
	bin, err := exec.LookPath("rclone")
	if err != nil {
		needPeer(t, "rclone is not installed (Debian package rclone)")
	}
	work := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	args := []string{"serve", "webdav", dir, "--addr", addr, "--config", filepath.Join(work, "rclone.conf"), "--log-level", "ERROR"}
	if user != "" {
		args = append(args, "--user", user, "--pass", pass)
	}
	if baseURL != "" {
		args = append(args, "--baseurl", baseURL)
	}
	logFile := filepath.Join(work, "rclone.log")
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("rclone log:\n%s", b)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(logFile)
			t.Fatalf("rclone exited early:\n%s", b)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatal("rclone did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sharePack returns the share's pack and its files by path.
func sharePack(t testing.TB, st *testStore) (storedPack, map[string]manifestFile, map[string]manifestItem) {
	t.Helper()
	ids := st.packIDs()
	if len(ids) != 1 || !strings.HasPrefix(ids[0], "nuage-") {
		t.Fatalf("packs = %v, want one nuage pack", ids)
	}
	p, _ := st.pack(ids[0])
	files := map[string]manifestFile{}
	items := map[string]manifestItem{}
	for _, it := range p.manifest.Items {
		items[it.Entry] = it
		for _, f := range it.Files {
			files[f.Path] = f
		}
	}
	return p, files, items
}

// TestNuageShareMirror: a teacher's share (rclone serving the public
// WebDAV path of a share link) becomes one pack of its files; after a
// change, only the changed and new files are fetched again (ETags) and the
// deleted file leaves the next version of the pack.
func TestNuageShareMirror(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"Cours/Été 1/fiche #2.pdf": "%PDF-1.4 fiche",
		"Cours/video.mp4":          "\x00\x00\x00\x18ftypmp42 video",
		"lisez-moi.txt":            "Bonjour la classe",
		"images/carte.png":         string(pngPixel),
		"index.html":               "<h1>Accueil</h1>",
	}
	writeFiles(t, dir, files)
	base := startRclone(t, dir, "/public.php/dav/files/Tok3n", "", "")
	st := newTestStore(t)
	c, _ := newCatalog(t, Config{}, st)
	ctx := context.Background()
	src, err := c.Add(ctx, SourceSpec{Kind: KindNuage, URL: base + "/s/Tok3n", Name: "Partage CM2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	serve(t, c)
	waitFor(t, "the share downloaded", func() bool { return len(st.packIDs()) == 1 })
	p, got, items := sharePack(t, st)
	if p.manifest.Title != "Partage CM2" || p.source != src.ID || len(got) != 5 {
		t.Fatalf("pack = %+v", p.manifest)
	}
	for path, body := range files {
		if f, ok := got[path]; !ok || f.SHA256 != sum([]byte(body)) || f.Size != int64(len(body)) {
			t.Errorf("file %s = %+v, want the share's", path, f)
		}
	}
	for entry, kind := range map[string]string{"Cours/Été 1/fiche #2.pdf": "pdf", "Cours/video.mp4": "video",
		"images/carte.png": "image", "index.html": "article", "lisez-moi.txt": "document"} {
		if items[entry].Kind != kind {
			t.Errorf("item of %s: kind %q, want %q", entry, items[entry].Kind, kind)
		}
	}
	if it := items["Cours/Été 1/fiche #2.pdf"]; it.ID != "cours-ete-1-fiche-2.pdf" || it.Title != "fiche #2.pdf" {
		t.Errorf("item = %+v", it)
	}
	version := p.manifest.Version

	// Nothing changed: nothing fetched, same pack.
	fetches := st.fetchCount()
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if st.fetchCount() != fetches {
		t.Errorf("unchanged share: %d fetches", st.fetchCount()-fetches)
	}

	// Change one file, delete one, add one.
	// The teacher changes the share through WebDAV (rclone caches the
	// folder's listing, as Nextcloud does its file cache).
	time.Sleep(1100 * time.Millisecond) // a new modification second, so a new ETag
	dav := base + "/public.php/dav/files/Tok3n/"
	davDo(t, "PUT", dav+"lisez-moi.txt", "Bonjour la classe, version 2")
	davDo(t, "PUT", dav+"Cours/nouveau.txt", "Nouveau")
	davDo(t, "DELETE", dav+"images/carte.png", "")
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new version", func() bool {
		p, _ := st.pack(st.packIDs()[0])
		return p.manifest.Version != version && allSettled(t, c)
	})
	var fetched []string
	for _, f := range st.fetches[fetches:] {
		fetched = append(fetched, f.URL[strings.LastIndex(f.URL, "/")+1:])
	}
	slices.Sort(fetched)
	if !slices.Equal(fetched, []string{"lisez-moi.txt", "nouveau.txt"}) {
		t.Errorf("fetched after the change: %v, want only the changed and the new file", fetched)
	}
	_, got, _ = sharePack(t, st)
	if _, ok := got["images/carte.png"]; ok || len(got) != 5 || got["lisez-moi.txt"].SHA256 != sum([]byte("Bonjour la classe, version 2")) {
		t.Errorf("files after the change = %v", got)
	}
	cards, _ := c.Cards(ctx, CardFilter{Kind: KindNuage})
	if len(cards) != 1 || cards[0].State != StateOffline || cards[0].Title != "Partage CM2" {
		t.Errorf("Cards() = %+v", cards)
	}

	// The share emptied: the pack goes.
	for _, p := range []string{"Cours", "images", "lisez-moi.txt", "index.html"} {
		davDo(t, "DELETE", dav+p, "")
	}
	if err := c.Refresh(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	if ids := st.packIDs(); len(ids) != 0 {
		t.Errorf("packs after the share emptied: %v", ids)
	}
	cards, _ = c.Cards(ctx, CardFilter{Kind: KindNuage})
	if len(cards) != 1 || cards[0].State != StateFailed || !strings.Contains(cards[0].ErrorFR, "vide") {
		t.Errorf("Cards() of an empty share = %+v", cards)
	}
}

// TestNuageOlderEndpointAndOverride: a server without the public DAV
// endpoint is read through /public.php/webdav with the token as user; a
// WebDAV folder given explicitly is used as is.
func TestNuageOlderEndpointAndOverride(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a/b.txt": "bébé", "c.txt": "c"})
	tests := []struct {
		name string
		spec func() SourceSpec
	}{
		{"older endpoint, token as user", func() SourceSpec {
			base := startRclone(t, dir, "/public.php/webdav", "T0k", "")
			return SourceSpec{Kind: KindNuage, URL: base + "/index.php/s/T0k"}
		}},
		{"explicit WebDAV folder", func() SourceSpec {
			base := startRclone(t, dir, "", "", "")
			return SourceSpec{Kind: KindNuage, URL: "https://nuage.example/s/T0k", WebDAVURL: base + "/a"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newTestStore(t)
			c, _ := newCatalog(t, Config{}, st)
			ctx := context.Background()
			spec := tt.spec()
			src, err := c.Add(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Refresh(ctx, src.ID); err != nil {
				t.Fatal(err)
			}
			serve(t, c)
			waitFor(t, "the share downloaded", func() bool { return len(st.packIDs()) == 1 })
			_, got, _ := sharePack(t, st)
			want := []string{"a/b.txt", "c.txt"}
			if spec.WebDAVURL != "" {
				want = []string{"b.txt"}
			}
			var paths []string
			for p := range got {
				paths = append(paths, p)
			}
			slices.Sort(paths)
			if !slices.Equal(paths, want) {
				t.Errorf("paths = %v, want %v", paths, want)
			}
		})
	}
}

// TestNuagePasswordShare: a share that refuses anonymous reading is
// reported plainly.
func TestNuagePasswordShare(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.txt": "a"})
	base := startRclone(t, dir, "", "someone", "secret")
	st := newTestStore(t)
	c, _ := newCatalog(t, Config{}, st)
	ctx := context.Background()
	src, _ := c.Add(ctx, SourceSpec{Kind: KindNuage, URL: base + "/s/T0k"})
	err := c.Refresh(ctx, src.ID)
	if err == nil || !strings.Contains(err.Error(), "mot de passe") {
		t.Errorf("Refresh() = %v", err)
	}
}

// davDo sends one WebDAV request to rclone.
func davDo(t testing.TB, method, u, body string) {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, pu.String(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 && !(method == "DELETE" && resp.StatusCode == 404) {
		t.Fatalf("%s %s = %s", method, u, resp.Status)
	}
}
