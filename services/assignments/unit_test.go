package assignments

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{}.WithDefaults()
	tests := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" for valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"language", func(c *Config) { c.DefaultLanguage = "de" }, "default language"},
		{"stylesheet absolute url", func(c *Config) { c.StylesheetURL = "https://cdn.example/x.css" }, "stylesheet url"},
		{"stylesheet protocol relative", func(c *Config) { c.StylesheetURL = "//cdn.example/x.css" }, "stylesheet url"},
		{"stylesheet quote", func(c *Config) { c.StylesheetURL = `/x.css" onload="` }, "stylesheet url"},
		{"portal url", func(c *Config) { c.PortalURL = "javascript:alert(1)" }, "portal url"},
		{"file bytes", func(c *Config) { c.MaxFileBytes = -1 }, "max file bytes"},
		{"total below file", func(c *Config) { c.MaxTotalBytes = c.MaxFileBytes - 1 }, "max total bytes"},
		{"files", func(c *Config) { c.MaxFiles = 1000 }, "max files"},
		{"kinds unknown", func(c *Config) { c.AllowedKinds = []string{"video"} }, "unknown kind"},
		{"kinds empty", func(c *Config) { c.AllowedKinds = []string{} }, "allowed kinds is empty"},
		{"session", func(c *Config) { c.SessionTTL = time.Second }, "session ttl"},
		{"destination id", func(c *Config) { c.Destinations = []Destination{{ID: "a b", Label: "x"}} }, "destinations[0]: id"},
		{"destination twice", func(c *Config) { c.Destinations = []Destination{{ID: "a", Label: "x"}, {ID: "a", Label: "y"}} }, "listed twice"},
		{"destination label", func(c *Config) { c.Destinations = []Destination{{ID: "a", Label: " "}} }, "destinations[0]: label"},
		{"school", func(c *Config) { c.SchoolName = "a\nb" }, "school name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.MaxFileBytes != 20_000_000 || c.MaxTotalBytes != 100_000_000 || c.MaxFiles != 10 || c.StylesheetURL != "/static/style.css" {
		t.Errorf("defaults = %+v", c)
	}
	if got, want := strings.Join(c.AllowedKinds, " "), "image pdf office audio text"; got != want {
		t.Errorf("default kinds = %q, want %q", got, want)
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		file, want string
	}{
		{"photo.jpg", "image/jpeg"},
		{"image.png", "image/png"},
		{"image.gif", "image/gif"},
		{"image.webp", "image/webp"},
		{"image.bmp", "image/bmp"},
		{"image.tif", "image/tiff"},
		{"photo-header.heic", "image/heic"},
		{"doc.pdf", "application/pdf"},
		{"doc.odt", zipPending},
		{"doc.docx", zipPending},
		{"archive.zip", zipPending},
		{"sound.mp3", "audio/mpeg"},
		{"sound-notag.mp3", "audio/mpeg"},
		{"sound.aac", "audio/aac"},
		{"sound.m4a", "audio/mp4"},
		{"sound.3gp", "audio/3gpp"},
		{"sound.ogg", "audio/ogg"},
		{"sound.flac", "audio/flac"},
		{"sound.wav", "audio/wav"},
		{"sound.webm", "audio/webm"},
		{"note.txt", "text/plain; charset=utf-8"},
		{"page.html", "text/plain; charset=utf-8"},
		{"fake.jpg", ""},
		{"video.mp4", ""},
	}
	for _, tt := range tests {
		data := readFixture(t, tt.file)
		if got := sniff(data[:min(len(data), sniffLen)]); got != tt.want {
			t.Errorf("sniff(%s) = %q, want %q", tt.file, got, tt.want)
		}
	}
	for _, b := range [][]byte{nil, {0}, []byte("\x00\x00\x00\x08ftyp"), []byte("RIFF\x00\x00\x00\x00AVI "), []byte("\x7fELF\x02\x01\x01")} {
		if got := sniff(b); got != "" {
			t.Errorf("sniff(%q) = %q, want \"\"", b, got)
		}
	}
}

func TestZipType(t *testing.T) {
	tests := []struct{ file, want string }{
		{"doc.odt", "application/vnd.oasis.opendocument.text"},
		{"doc.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"archive.zip", ""},
		{"fake.odt", ""},
		{"photo.jpg", ""},
	}
	for _, tt := range tests {
		data := readFixture(t, tt.file)
		if got := zipType(bytes.NewReader(data), int64(len(data))); got != tt.want {
			t.Errorf("zipType(%s) = %q, want %q", tt.file, got, tt.want)
		}
	}
}

func TestSanitizeFileName(t *testing.T) {
	const jpeg, pdf, text = "image/jpeg", "application/pdf", "text/plain; charset=utf-8"
	long := strings.Repeat("é", 150) + ".pdf"
	tests := []struct {
		raw, mediaType, want string
	}{
		{"photo.jpg", jpeg, "photo.jpg"},
		{"IMG_0001.JPG", jpeg, "IMG_0001.JPG"},
		{"image", jpeg, "image.jpg"},
		{"../../etc/passwd", jpeg, "passwd.jpg"},
		{`..\..\Windows\system32\evil.pdf`, pdf, "evil.pdf"},
		{"/absolute/path/devoir.pdf", pdf, "devoir.pdf"},
		{"devoir.exe", pdf, "devoir.exe.pdf"},
		{"rapport.pdf", jpeg, "rapport.pdf.jpg"},
		{"a<b>c:d\"e|f?g*h.pdf", pdf, "a_b_c_d_e_f_g_h.pdf"},
		{"  ..hidden.pdf  ", pdf, "hidden.pdf"},
		{"name.pdf...", pdf, "name.pdf"},
		{"CON.pdf", pdf, "_CON.pdf"},
		{"lpt1", pdf, "_lpt1.pdf"},
		{"com1.txt", text, "_com1.txt"},
		{"", jpeg, "fichier.jpg"},
		{"...", pdf, "fichier.pdf"},
		{".pdf", pdf, "pdf.pdf"},
		{"tab\there\nnew\x00line.pdf", pdf, "tab here newline.pdf"},
		{"evil\u202etxt.exe", text, "eviltxt.exe.txt"},
		{"zero\u200bwidth.pdf", pdf, "zerowidth.pdf"},
		{"bad\xff\xfeutf8.pdf", pdf, "badutf8.pdf"},
		{"page.html", text, "page.html.txt"},
		{"notes.md", text, "notes.md"},
		{"Résumé du livre.odt", "application/vnd.oasis.opendocument.text", "Résumé du livre.odt"},
		{long, pdf, strings.Repeat("é", 96) + ".pdf"},
	}
	for _, tt := range tests {
		if got := sanitizeFileName(tt.raw, tt.mediaType); got != tt.want {
			t.Errorf("sanitizeFileName(%q, %s) = %q, want %q", tt.raw, tt.mediaType, got, tt.want)
		}
	}
}

func TestUniqueName(t *testing.T) {
	taken := map[string]bool{}
	var got []string
	for _, n := range []string{"photo.jpg", "Photo.jpg", "photo.jpg", "photo (2).jpg", "texte.txt"} {
		got = append(got, uniqueName(n, taken))
	}
	want := []string{"photo.jpg", "Photo (2).jpg", "photo (3).jpg", "photo (2) (2).jpg", "texte.txt"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("uniqueName sequence = %q, want %q", got, want)
	}
}

func TestCodes(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		c := newCode()
		if len(c) != 6 || strings.Trim(c, codeAlphabet) != "" {
			t.Fatalf("newCode() = %q", c)
		}
		seen[c] = true
	}
	if len(seen) < 1990 {
		t.Errorf("only %d distinct codes in 2000", len(seen))
	}
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"K7Q-4PD", "K7Q4PD", true},
		{"k7q 4pd", "K7Q4PD", true},
		{" K7Q4PD ", "K7Q4PD", true},
		{"K7Q-4P", "", false},
		{"K7Q-4PDX", "", false},
		{"K0Q-4PD", "", false}, // 0 is not in the alphabet
		{"K7Q/4PD", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := normalizeCode(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("normalizeCode(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if got := displayCode("K7Q4PD"); got != "K7Q-4PD" {
		t.Errorf("displayCode = %q", got)
	}
}

func TestValidFirstName(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"Léa", true}, {"Jean-Éric", true}, {"N'Golo", true}, {"Zoë Anne", true}, {"李", true},
		{"", false}, {"-", false}, {"Léa2", false}, {"<b>", false}, {strings.Repeat("a", 31), false},
	}
	for _, tt := range tests {
		if got := validFirstName(tt.in); got != tt.ok {
			t.Errorf("validFirstName(%q) = %v, want %v", tt.in, got, tt.ok)
		}
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		lang string
		n    int64
		want string
	}{
		{"fr", 999, "999 o"}, {"fr", 20_000_000, "20 Mo"}, {"fr", 1_200_000, "1,2 Mo"}, {"en", 1_200_000, "1.2 MB"},
		{"fr", 100_000_000, "100 Mo"}, {"en", 45, "45 B"},
	}
	for _, tt := range tests {
		if got := formatSize(tt.lang, tt.n); got != tt.want {
			t.Errorf("formatSize(%s, %d) = %q, want %q", tt.lang, tt.n, got, tt.want)
		}
	}
}

func TestCataloguesMatch(t *testing.T) {
	for key := range catalogues["fr"] {
		if _, ok := catalogues["en"][key]; !ok {
			t.Errorf("key %q has no English text", key)
		}
	}
	for key := range catalogues["en"] {
		if _, ok := catalogues["fr"][key]; !ok {
			t.Errorf("key %q has no French text", key)
		}
	}
}

func TestAcceptAttr(t *testing.T) {
	got := acceptAttr([]string{KindImage, KindPDF})
	for _, want := range []string{"image/*", ".heic", "application/pdf", ".pdf"} {
		if !strings.Contains(got, want) {
			t.Errorf("acceptAttr = %q, missing %q", got, want)
		}
	}
	if strings.Contains(got, "audio") || strings.Contains(got, ".docx") {
		t.Errorf("acceptAttr = %q lists kinds not asked for", got)
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(time.Minute)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if _, blocked := l.blocked("k", 3, now); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.fail("k", now)
	}
	wait, blocked := l.blocked("k", 3, now.Add(10*time.Second))
	if !blocked || wait != 50*time.Second {
		t.Errorf("blocked = %v, wait %v; want true, 50s", blocked, wait)
	}
	if _, blocked := l.blocked("k", 3, now.Add(time.Minute)); blocked {
		t.Error("still blocked after the window")
	}
	for i := range maxLimiterKeys + 10 {
		l.fail(strings.Repeat("x", i%7)+string(rune(i)), now)
	}
	if len(l.m) > maxLimiterKeys {
		t.Errorf("limiter holds %d keys, want at most %d", len(l.m), maxLimiterKeys)
	}
}

func TestPathSegment(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Maths/Français", "Maths-Français"},
		{`a\b`, "a-b"},
		{"..", "_"},
		{"CM2-A", "CM2-A"},
		{"Rédaction : mon week-end (3)", "Rédaction _ mon week-end (3)"},
	}
	for _, tt := range tests {
		if got := pathSegment(tt.in); got != tt.want {
			t.Errorf("pathSegment(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
