package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseTubeURL(t *testing.T) {
	tests := []struct {
		in       string
		base     string
		kind     tubeKind
		id       string
		rejected bool
	}{
		{"https://tube-cycle-3.apps.education.fr/c/sciences_cm2/videos", "https://tube-cycle-3.apps.education.fr", tubeChannel, "sciences_cm2", false},
		{"https://tube.example/video-channels/chaine@autre.example", "https://tube.example", tubeChannel, "chaine@autre.example", false},
		{"https://tube.example/w/p/2y84q2MQUMWPbiEcxNXMgC", "https://tube.example", tubePlaylist, "2y84q2MQUMWPbiEcxNXMgC", false},
		{"https://tube.example/videos/watch/playlist/9c9de5e8-0a1e-484a-b099-e80766180a6d", "https://tube.example", tubePlaylist, "9c9de5e8-0a1e-484a-b099-e80766180a6d", false},
		{"https://tube.example/w/kkGMgK9ZtnKfYAgnEtQxbv", "https://tube.example", tubeVideo, "kkGMgK9ZtnKfYAgnEtQxbv", false},
		{"http://127.0.0.1:8080/videos/watch/9c9de5e8-0a1e-484a-b099-e80766180a6d", "http://127.0.0.1:8080", tubeVideo, "9c9de5e8-0a1e-484a-b099-e80766180a6d", false},
		{"https://tube.example/a/prof/video-channels", "", "", "", true},
		{"ftp://tube.example/w/abc", "", "", "", true},
		{"https://u:p@tube.example/w/abc", "", "", "", true},
		{"https://tube.example/w/..", "", "", "", true},
		{"https://tube.example/c/", "", "", "", true},
		{"not a url", "", "", "", true},
	}
	for _, tt := range tests {
		got, err := parseTubeURL(tt.in)
		if tt.rejected {
			var e *Error
			if err == nil || !errors.As(err, &e) || !strings.Contains(e.FR, "adresse PeerTube") {
				t.Errorf("parseTubeURL(%q) = %+v, %v; want a refusal in French", tt.in, got, err)
			}
			continue
		}
		if err != nil || got.base != tt.base || got.kind != tt.kind || got.id != tt.id {
			t.Errorf("parseTubeURL(%q) = %+v, %v; want %s %s %s", tt.in, got, err, tt.base, tt.kind, tt.id)
		}
	}
}

func tf(h int, size int64, url string) tubeFile {
	f := tubeFile{Size: size, FileURL: url}
	f.Resolution.ID = h
	return f
}

func TestChooseFile(t *testing.T) {
	web := []tubeFile{tf(1080, 900, "a1080"), tf(720, 500, "a720"), tf(480, 300, "a480"), tf(240, 100, "a240"), tf(0, 50, "audio")}
	hls := []tubeFile{tf(720, 510, "h720"), tf(360, 200, "h360")}
	tests := []struct {
		name   string
		web    []tubeFile
		hls    []tubeFile
		height int
		want   string
	}{
		{"exact target", web, hls, 480, "a480"},
		{"largest under target", web, hls, 600, "a480"},
		{"720 target", web, hls, 720, "a720"},
		{"nothing fits: smallest", web, hls, 144, "a240"},
		{"web video preferred over HLS", web, hls, 360, "a240"},
		{"HLS only", nil, hls, 480, "h360"},
		{"HLS only, high target", nil, hls, 1080, "h720"},
		{"no size skipped", []tubeFile{tf(480, 0, "nosize"), tf(240, 10, "a240")}, nil, 480, "a240"},
		{"no address skipped", []tubeFile{tf(480, 10, ""), tf(240, 10, "a240")}, nil, 480, "a240"},
		{"audio only as last resort", []tubeFile{tf(0, 10, "audio")}, nil, 480, "audio"},
		{"none", nil, nil, 480, ""},
		{"download URL when no file URL", []tubeFile{{Size: 5, FileDownloadURL: "dl", Resolution: struct {
			ID    int    `json:"id"`
			Label string `json:"label"`
		}{ID: 360}}}, nil, 480, "dl"},
	}
	for _, tt := range tests {
		v := tubeVideoJSON{Files: tt.web}
		if tt.hls != nil {
			v.StreamingPlaylists = append(v.StreamingPlaylists, struct {
				Type  int        `json:"type"`
				Files []tubeFile `json:"files"`
			}{Type: 1, Files: tt.hls})
		}
		got, ok := chooseFile(v, tt.height)
		if addr := fileAddress(got); (tt.want == "" && ok) || (tt.want != "" && (!ok || addr != tt.want)) {
			t.Errorf("%s: chooseFile(%d) = %q, %v; want %q", tt.name, tt.height, addr, ok, tt.want)
		}
	}
}

func TestParseGARList(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("testdata", "gar-list.json"))
	if err != nil {
		t.Fatal(err)
	}
	arr, err := os.ReadFile(filepath.Join("testdata", "gar-array.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    string
		ids     []string
		errPart string
	}{
		{"envelope", string(doc), []string{"ark:/32151/LA.FLE", "ark:/12313/CI3977251568689", "ark:/58826/BLNEDU-9791035815868"}, ""},
		{"bare array with ENT fields", string(arr), []string{"ark:/32151/LA.FLE", "ark:/12313/HA9782218998317"}, ""},
		{"byte order mark", "\ufeff" + `{"listeRessources":{"ressource":[{"idRessource":"a","nomRessource":"A"}]}}`, []string{"a"}, ""},
		{"duplicated id keeps the first", `[{"idRessource":"a","nomRessource":"A"},{"idRessource":"a","nomRessource":"B"}]`, []string{"a"}, ""},
		{"empty list", `{"listeRessources":{"ressource":[]}}`, nil, ""},
		{"no envelope", `{"ressources":[]}`, nil, "listeRessources"},
		{"not JSON", `<xml/>`, nil, "liste GAR illisible"},
		{"missing id", `[{"nomRessource":"A"}]`, nil, "idRessource"},
		{"missing name", `[{"idRessource":"a","nomRessource":"  "}]`, nil, "nomRessource"},
		{"javascript access link", `[{"idRessource":"a","nomRessource":"A","urlAccesRessource":"javascript:alert(1)"}]`, nil, "urlAccesRessource"},
		{"wrong type", `[{"idRessource":1,"nomRessource":"A"}]`, nil, "liste GAR illisible"},
		{"not UTF-8", "[{\"idRessource\":\"a\xff\",\"nomRessource\":\"A\"}]", nil, "UTF-8"},
	}
	for _, tt := range tests {
		got, err := parseGARList([]byte(tt.data), 100)
		if tt.errPart != "" {
			var e *Error
			if err == nil || !errors.As(err, &e) || !strings.Contains(e.FR, tt.errPart) || e.EN == "" {
				t.Errorf("%s: parseGARList() error = %v; want one naming %q", tt.name, err, tt.errPart)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: parseGARList() = %v", tt.name, err)
			continue
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.IDRessource)
		}
		if strings.Join(ids, " ") != strings.Join(tt.ids, " ") {
			t.Errorf("%s: ids = %q, want %q", tt.name, ids, tt.ids)
		}
	}
	// The classification is kept.
	got, _ := parseGARList(doc, 100)
	r := got[0]
	if r.NomEditeur != "ENTERTAINMENT LEARNING" || r.TypePresentation.Code != "MUL" || len(r.TypologieDocument) != 2 ||
		r.NiveauEducatif[0].Nom != "collège" || r.DomaineEnseign[0].Nom != "français langue étrangère" ||
		!strings.HasPrefix(r.URLAccesRessource(), "https://idp-auth.gar.education.fr/") {
		t.Errorf("first resource = %+v", r)
	}
	if _, err := parseGARList(doc, 2); err == nil {
		t.Error("a list over the limit was accepted")
	}
}

func (r garResource) URLAccesRessource() string { return r.URLAcces }

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"defaults", func(*Config) {}, ""},
		{"workers", func(c *Config) { c.Workers = 9 }, "workers"},
		{"refresh", func(c *Config) { c.Refresh = time.Minute }, "refresh"},
		{"retry", func(c *Config) { c.RetryMax = time.Second; c.RetryMin = time.Minute }, "retry"},
		{"tube height", func(c *Config) { c.TubeHeight = 100 }, "tube height"},
		{"language", func(c *Config) { c.Language = "français" }, "language"},
		{"thumbnail prefix", func(c *Config) { c.ThumbnailPrefix = "/v" }, "thumbnail prefix"},
	}
	for _, tt := range tests {
		c := Config{}.WithDefaults()
		tt.mod(&c)
		err := c.Validate()
		if (tt.field == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.field)) {
			t.Errorf("%s: Validate() = %v, want an error naming %q", tt.name, err, tt.field)
		}
	}
	d := Config{}.WithDefaults()
	if d.Workers != 2 || d.Refresh != 24*time.Hour || d.TubeHeight != 480 || d.ThumbnailPrefix != "/catalogue/vignettes/" {
		t.Errorf("defaults = %+v", d)
	}
}

func TestShareRoots(t *testing.T) {
	tests := []struct {
		in, dav, old, user string
	}{
		{"https://nuage03.apps.education.fr/index.php/s/AbC123xyz", "https://nuage03.apps.education.fr/public.php/dav/files/AbC123xyz/",
			"https://nuage03.apps.education.fr/public.php/webdav/", "AbC123xyz"},
		{"https://cloud.example/nc/s/tok_en-1/", "https://cloud.example/nc/public.php/dav/files/tok_en-1/",
			"https://cloud.example/nc/public.php/webdav/", "tok_en-1"},
	}
	for _, tt := range tests {
		roots, err := shareRoots(tt.in)
		if err != nil || len(roots) != 2 || roots[0].url.String() != tt.dav || roots[1].url.String() != tt.old || roots[1].user != tt.user {
			t.Errorf("shareRoots(%q) = %+v, %v", tt.in, roots, err)
		}
	}
	for _, bad := range []string{"https://cloud.example/apps/files/", "ftp://cloud.example/s/abc", "https://cloud.example/s/a b"} {
		if _, err := shareRoots(bad); err == nil {
			t.Errorf("shareRoots(%q) accepted", bad)
		}
	}
	r := davRoot{url: mustURL("https://h/public.php/webdav/"), user: "TOK"}
	if got, want := r.fileURL("Cours/Été 1/fiche #2.pdf"), "https://TOK:@h/public.php/webdav/Cours/%C3%89t%C3%A9%201/fiche%20%232.pdf"; got != want {
		t.Errorf("fileURL = %q, want %q", got, want)
	}
}

func TestSlugAndPackIDs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Cours/Été 1/fiche #2.pdf", "cours-ete-1-fiche-2.pdf"},
		{"--Énigme--", "enigme"},
		{"日本語", ""},
		{strings.Repeat("a", 80), strings.Repeat("a", 55)},
	}
	for _, tt := range tests {
		if got := slug(tt.in, 55); got != tt.want {
			t.Errorf("slug(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	id := tubePackID("tube.example", "9c9de5e8-0a1e-484a-b099-e80766180a6d")
	if !idPattern.MatchString(id) || !strings.HasPrefix(id, "tube-") || !strings.HasSuffix(id, "-9c9de5e80a1e484ab099e80766180a6d") {
		t.Errorf("tubePackID = %q", id)
	}
	// Two videos whose uuids share a long prefix get two packs.
	if a, b := tubePackID("tube.example", "0b1c2d3e-0000-4000-8000-000000000001"),
		tubePackID("tube.example", "0b1c2d3e-0000-4000-8000-000000000002"); a == b {
		t.Errorf("two videos share the pack %s", a)
	}
	for _, odd := range []string{"", "abc", strings.Repeat("z", 40), "../../etc"} {
		if id := tubePackID("tube.example", odd); !idPattern.MatchString(id) {
			t.Errorf("tubePackID(%q) = %q, not a pack id", odd, id)
		}
	}
}
