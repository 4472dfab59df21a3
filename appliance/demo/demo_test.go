package demo

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"image/png"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// readTree returns every file under dir keyed by slash path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

func writeDemo(t *testing.T) (string, map[string][]byte, manifest) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pack")
	if err := Write(dir); err != nil {
		t.Fatalf("Write(%q) = %v, want nil", dir, err)
	}
	tree := readTree(t, dir)
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(tree[manifestName]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode manifest: %v", err)
	}
	return dir, tree, m
}

func TestWriteIsDeterministic(t *testing.T) {
	_, a, _ := writeDemo(t)
	_, b, _ := writeDemo(t)
	if len(a) != len(b) {
		t.Fatalf("file count: got %d then %d, want equal", len(a), len(b))
	}
	for p, data := range a {
		if !bytes.Equal(data, b[p]) {
			t.Errorf("%s: bytes differ between two runs", p)
		}
	}
}

var (
	idPattern      = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	subjectPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	hexPattern     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func validPackPath(p string) bool {
	if p == "" || len(p) > 1024 || !utf8.ValidString(p) || strings.ContainsAny(p, "\\\x00") || strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." || seg == "" || len(seg) > 255 {
			return false
		}
	}
	return true
}

func TestManifestFollowsContract(t *testing.T) {
	_, tree, m := writeDemo(t)
	if m.Format != 1 || m.ID != PackID || m.Language != "fr" || m.Version == "" || m.Title == "" {
		t.Fatalf("header: got format=%d id=%q lang=%q version=%q title=%q, want 1, %q, fr, non-empty", m.Format, m.ID, m.Language, m.Version, m.Title, PackID)
	}
	kinds := map[string]bool{"article": true, "video": true, "audio": true, "pdf": true, "image": true, "document": true}
	levels := map[string]bool{"cycle1": true, "cycle2": true, "cycle3": true, "cycle4": true, "lycee": true}
	known := map[string]bool{"francais": true, "mathematiques": true, "sciences": true, "histoire-geographie": true, "emc": true, "langues-vivantes": true, "arts-plastiques": true, "education-musicale": true, "eps": true, "technologie": true, "physique-chimie": true, "svt": true, "philosophie": true, "numerique": true}
	wantMedia := map[string]string{".html": "text/html; charset=utf-8", ".png": "image/png", ".pdf": "application/pdf", ".wav": "audio/wav"}

	ids := map[string]bool{}
	listed := map[string]manifestFile{}
	seenKinds := map[string]bool{}
	for _, it := range m.Items {
		if !idPattern.MatchString(it.ID) || ids[it.ID] {
			t.Errorf("item id %q: invalid or duplicate", it.ID)
		}
		ids[it.ID] = true
		if !kinds[it.Kind] {
			t.Errorf("item %s: kind %q not in the contract", it.ID, it.Kind)
		}
		seenKinds[it.Kind] = true
		if it.Title == "" || it.Licence != "CC-BY-4.0" || it.Source != "Projet Préau" {
			t.Errorf("item %s: got title=%q licence=%q source=%q", it.ID, it.Title, it.Licence, it.Source)
		}
		for _, l := range it.Levels {
			if !levels[l] {
				t.Errorf("item %s: level %q not in the contract", it.ID, l)
			}
		}
		for _, s := range it.Subjects {
			if !subjectPattern.MatchString(s) || !known[s] {
				t.Errorf("item %s: subject %q invalid or unknown", it.ID, s)
			}
		}
		own := map[string]bool{}
		for _, f := range it.Files {
			if !validPackPath(f.Path) || own[f.Path] {
				t.Errorf("item %s: path %q invalid or repeated", it.ID, f.Path)
			}
			own[f.Path] = true
			data, ok := tree[f.Path]
			if !ok {
				t.Errorf("item %s: %s listed but not written", it.ID, f.Path)
				continue
			}
			sum := sha256.Sum256(data)
			if f.Size != int64(len(data)) || f.SHA256 != hex.EncodeToString(sum[:]) || !hexPattern.MatchString(f.SHA256) {
				t.Errorf("item %s: %s: got size %d sha %s, want %d %x", it.ID, f.Path, f.Size, f.SHA256, len(data), sum)
			}
			if want := wantMedia[path.Ext(f.Path)]; f.MediaType != want {
				t.Errorf("item %s: %s: got media type %q, want %q", it.ID, f.Path, f.MediaType, want)
			}
			if prev, ok := listed[f.Path]; ok && prev != f {
				t.Errorf("shared path %s listed with different metadata: %+v and %+v", f.Path, prev, f)
			}
			listed[f.Path] = f
		}
		if !own[it.Entry] {
			t.Errorf("item %s: entry %q is not one of its files", it.ID, it.Entry)
		}
		if it.Thumbnail != "" && !own[it.Thumbnail] {
			t.Errorf("item %s: thumbnail %q is not one of its files", it.ID, it.Thumbnail)
		}
	}
	for p := range tree {
		if _, ok := listed[p]; !ok && p != manifestName {
			t.Errorf("file %s written but not listed in the manifest", p)
		}
	}
	for _, k := range []string{"article", "image", "pdf", "audio"} {
		if !seenKinds[k] {
			t.Errorf("no item of kind %q", k)
		}
	}
	if n := len(articles()); n < 5 || n > 6 {
		t.Errorf("got %d articles, want 5 or 6", n)
	}
}

func TestArticlesAreWellFormed(t *testing.T) {
	_, tree, _ := writeDemo(t)
	tags := regexp.MustCompile(`<[^>]*>`)
	for _, a := range articles() {
		t.Run(a.id, func(t *testing.T) {
			doc := string(tree["articles/"+a.id+".html"])
			for _, want := range []string{"<article>", "</article>", `lang="fr"`, "<h1>"} {
				if !strings.Contains(doc, want) {
					t.Errorf("article lacks %q", want)
				}
			}
			words := len(strings.Fields(tags.ReplaceAllString(doc, " ")))
			if words < 300 || words > 650 {
				t.Errorf("got %d words, want about 300 to 600", words)
			}
			for _, img := range a.images {
				rel := "../" + img
				if !strings.Contains(doc, `src="`+rel+`"`) {
					t.Errorf("article does not show %s", rel)
				}
			}
			if strings.Contains(doc, "<img") && !regexp.MustCompile(`<img[^>]+alt="[^"]{20,}"`).MatchString(doc) {
				t.Errorf("article image without a real alt text")
			}
		})
	}
}

func TestPDF(t *testing.T) {
	_, tree, _ := writeDemo(t)
	pdf := tree["documents/fiche-fractions.pdf"]
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("PDF starts with %q, want %%PDF-", pdf[:min(8, len(pdf))])
	}
	pages := regexp.MustCompile(`/Type /Page\b[^s]`).FindAll(pdf, -1)
	if got := len(pages); got < 1 || got > 2 {
		t.Errorf("got %d pages, want 1 or 2", got)
	}
	if !bytes.Contains(pdf, []byte("%%EOF")) {
		t.Errorf("PDF has no %%%%EOF trailer")
	}
}

func TestPDFAccentsUseWinAnsi(t *testing.T) {
	// Uncompressed rendering lets us read the text: "é" must be the cp1252
	// byte 0xE9, not UTF-8's two bytes.
	raw, err := renderFractions(false)
	if err != nil {
		t.Fatalf("renderFractions: %v", err)
	}
	for _, want := range []string{"(Corrig\xe9)", "Probl\xe8mes", "Pr\xe9au \x97 licence"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("uncompressed PDF lacks %q (cp1252 text)", want)
		}
	}
	if !bytes.Contains(raw, []byte("/WinAnsiEncoding")) {
		t.Errorf("fonts are not WinAnsi (cp1252) encoded")
	}
}

func TestWAV(t *testing.T) {
	_, tree, _ := writeDemo(t)
	w := tree["audio/au-clair-de-la-lune.wav"]
	if len(w) < 44 {
		t.Fatalf("WAV is %d bytes, want a 44-byte header and data", len(w))
	}
	le := binary.LittleEndian
	checks := []struct {
		name      string
		got, want any
	}{
		{"RIFF", string(w[0:4]), "RIFF"},
		{"RIFF size", le.Uint32(w[4:8]), uint32(len(w) - 8)},
		{"WAVE", string(w[8:12]), "WAVE"},
		{"fmt", string(w[12:16]), "fmt "},
		{"fmt size", le.Uint32(w[16:20]), uint32(16)},
		{"PCM", le.Uint16(w[20:22]), uint16(1)},
		{"channels", le.Uint16(w[22:24]), uint16(1)},
		{"rate", le.Uint32(w[24:28]), uint32(22050)},
		{"byte rate", le.Uint32(w[28:32]), uint32(44100)},
		{"block align", le.Uint16(w[32:34]), uint16(2)},
		{"bits", le.Uint16(w[34:36]), uint16(16)},
		{"data", string(w[36:40]), "data"},
		{"data size", le.Uint32(w[40:44]), uint32(len(w) - 44)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	seconds := float64(len(w)-44) / 2 / 22050
	if seconds < 20 || seconds > 30 {
		t.Errorf("duration: got %.1f s, want 20 to 30 s", seconds)
	}
	// Not silence, and no clipping at full scale.
	var peak int
	for i := 44; i+1 < len(w); i += 2 {
		v := int(int16(le.Uint16(w[i:])))
		if v < 0 {
			v = -v
		}
		peak = max(peak, v)
	}
	if peak < 8000 || peak >= 32767 {
		t.Errorf("peak amplitude: got %d, want between 8000 and 32766", peak)
	}
}

func TestSineTable(t *testing.T) {
	tab := sineTable()
	tests := []struct {
		index int
		want  int32
	}{
		{0, 0}, {tableSize / 4, 32767}, {tableSize / 2, 0}, {tableSize * 3 / 4, -32767},
	}
	for _, tt := range tests {
		if got := tab[tt.index]; got != tt.want {
			t.Errorf("table[%d]: got %d, want %d", tt.index, got, tt.want)
		}
	}
}

func TestPNGsDecode(t *testing.T) {
	_, tree, _ := writeDemo(t)
	n := 0
	for p, data := range tree {
		if path.Ext(p) != ".png" {
			continue
		}
		n++
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s: decode: %v", p, err)
			continue
		}
		if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
			t.Errorf("%s: got size %v, want at least 100×100", p, b.Size())
		}
	}
	if n < 2 {
		t.Errorf("got %d PNG files, want the diagram and thumbnails", n)
	}
}

func TestUnknownThumbnailTheme(t *testing.T) {
	if _, err := thumbnail("nope"); err == nil {
		t.Errorf("thumbnail(nope): got nil error, want one")
	}
}
