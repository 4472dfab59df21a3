package appliance

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"preau/appliance/internal/browsertest"
)

// TestPortalInChromium plays S1 in a real browser against a whole box:
// every page renders, passes axe-core with no serious or critical
// violation, a video seeks through Range requests, the language switch
// and the keyboard work. Screenshots go to the test artefact folder.
func TestPortalInChromium(t *testing.T) {
	b := browsertest.Start(t)
	art := browsertest.ArtefactDir(t)
	dir := t.TempDir()
	tb := startBox(t, dir, true)

	video := filepath.Join(t.TempDir(), "horloge.webm")
	browsertest.MakeVideo(t, video, 12)
	data, err := os.ReadFile(video)
	if err != nil {
		t.Fatal(err)
	}
	pack := writeTestPack(t, map[string][]byte{"videos/horloge.webm": data}, "video/webm")
	if _, err := tb.content.Import(context.Background(), pack, nil); err != nil {
		t.Fatalf("import video pack: %v", err)
	}
	m := readDemoManifest(t, dir)

	pages := map[string]string{
		"accueil":   "/",
		"recherche": "/recherche?q=eau",
		"niveau":    "/niveau/cycle3",
		"video":     "/ressource/test-pack/videos-horloge-webm",
		"catalogue": "/catalogue", // no source yet: the empty state
	}
	for _, it := range m.Items {
		pages["ressource-"+it.ID] = "/ressource/" + m.ID + "/" + it.ID
	}
	for name, path := range pages {
		if err := b.Open(tb.url + path); err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		if n, err := b.Count("h1"); err != nil || n != 1 {
			t.Errorf("%s: %d h1 elements, want 1 (%v)", path, n, err)
		}
		if err := b.Screenshot(filepath.Join(art, name+".png")); err != nil {
			t.Error(err)
		}
		vs, err := b.Axe()
		if err != nil {
			t.Fatalf("axe on %s: %v", path, err)
		}
		for _, v := range browsertest.Serious(vs) {
			t.Errorf("%s: accessibility: %s", path, v)
		}
	}

	t.Run("video seeks", func(t *testing.T) {
		if err := b.Open(tb.url + pages["video"]); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Wait(10*time.Second, `const v = document.querySelector("video"); return v && v.readyState >= 1`); err != nil {
			t.Fatalf("video metadata never loaded: %v", err)
		}
		got, err := b.ExecAsync(`const done = arguments[arguments.length-1];
			const v = document.querySelector("video");
			v.muted = true;
			v.addEventListener("seeked", () => done(v.currentTime), {once: true});
			v.addEventListener("error", () => done("error " + (v.error && v.error.code)), {once: true});
			v.currentTime = 8.5;`)
		if err != nil {
			t.Fatal(err)
		}
		pos, ok := got.(float64)
		if !ok || math.Abs(pos-8.5) > 0.6 {
			t.Errorf("after seeking to 8.5 s the video is at %v", got)
		}
		if _, err := b.Wait(10*time.Second, `const v = document.querySelector("video"); return v.readyState >= 2`); err != nil {
			t.Errorf("no frame after seeking: %v", err)
		}
		b.Screenshot(filepath.Join(art, "video-apres-saut.png"))
	})

	t.Run("english switch", func(t *testing.T) {
		if err := b.Open(tb.url + "/"); err != nil {
			t.Fatal(err)
		}
		if err := b.Click("a.lang"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Wait(5*time.Second, `return document.documentElement.lang === "en"`); err != nil {
			t.Fatalf("page not in English after the switch: %v", err)
		}
		b.Screenshot(filepath.Join(art, "accueil-en.png"))
		b.Click("a.lang")
		if _, err := b.Wait(5*time.Second, `return document.documentElement.lang === "fr"`); err != nil {
			t.Errorf("page not back in French: %v", err)
		}
	})

	t.Run("keyboard reaches the skip link first", func(t *testing.T) {
		if err := b.Open(tb.url + "/"); err != nil {
			t.Fatal(err)
		}
		if err := b.Key("body", "\uE004"); err != nil { // Tab
			t.Fatal(err)
		}
		got, err := b.Exec(`return document.activeElement.getAttribute("href") + "|" + document.activeElement.textContent`)
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := got.(string); !strings.HasPrefix(s, "#contenu|") {
			t.Errorf("first Tab focuses %q, want the skip link", got)
		}
	})

	t.Run("search from the form", func(t *testing.T) {
		if err := b.Open(tb.url + "/"); err != nil {
			t.Fatal(err)
		}
		if err := b.Type("input[type=search]", "volcans\uE007"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Wait(5*time.Second, `return location.pathname === "/recherche" && document.body.textContent.includes("Auvergne")`); err != nil {
			t.Errorf("search for volcans did not find the Auvergne article: %v", err)
		}
	})
}
