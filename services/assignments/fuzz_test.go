package assignments

import (
	"bytes"
	"context"
	"errors"
	"mime/multipart"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// fuzzBoundary is the boundary of the bodies in testdata/multipart.
const fuzzBoundary = "XyZ"

func addSeeds(f *testing.F, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzHandInBody feeds multipart bodies to the hand-in receiver: it must
// never panic, and what it accepts must respect every limit, with safe file
// names and accepted types only.
func FuzzHandInBody(f *testing.F) {
	addSeeds(f, filepath.Join("testdata", "multipart"))
	blobs := newDiskBlobs(f, f.TempDir())
	cfg := Config{MaxFileBytes: 200_000, MaxTotalBytes: 300_000, MaxFiles: 3, MaxTextBytes: 2000}.WithDefaults()
	a := assignment{ID: 1, Kinds: []string{KindImage, KindPDF, KindOffice, KindText}, MaxFileBytes: 100_000}
	f.Fuzz(func(t *testing.T, body []byte) {
		rc := &receiver{
			blobs: blobs, a: a, cfg: cfg, csrf: "tok-tok-tok-tok-tok", owner: "fuzz",
			begin: func(context.Context) error { return nil },
		}
		form, err := rc.receive(context.Background(), multipart.NewReader(bytes.NewReader(body), fuzzBoundary))
		if err != nil {
			var r *refusal
			if !errors.As(err, &r) {
				t.Fatalf("receive: %v is not a refusal", err)
			}
			if r.text("fr") == "" || strings.Contains(r.text("fr"), "[[") || strings.Contains(r.text("en"), "%!") {
				t.Fatalf("refusal text %q", r.text("fr"))
			}
			return
		}
		if !rc.csrfOK {
			t.Fatal("accepted without the csrf token")
		}
		if len(form.Files) > cfg.MaxFiles {
			t.Fatalf("%d files accepted", len(form.Files))
		}
		var total int64
		seen := map[string]bool{}
		for _, fl := range form.Files {
			total += fl.Size
			if fl.Size <= 0 || fl.Size > a.MaxFileBytes {
				t.Fatalf("file %q of %d bytes accepted", fl.Name, fl.Size)
			}
			ft, ok := fileTypes[fl.MediaType]
			if !ok || !slices.Contains(a.Kinds, ft.kind) {
				t.Fatalf("file %q of type %q accepted", fl.Name, fl.MediaType)
			}
			checkSafeName(t, fl.Name)
			if !slices.Contains(ft.exts, strings.ToLower(filepath.Ext(fl.Name))) {
				t.Fatalf("file %q keeps an extension that is not its type's (%s)", fl.Name, fl.MediaType)
			}
			if seen[strings.ToLower(fl.Name)] {
				t.Fatalf("two files named %q", fl.Name)
			}
			seen[strings.ToLower(fl.Name)] = true
		}
		if total > cfg.MaxTotalBytes {
			t.Fatalf("%d bytes accepted", total)
		}
		if len(form.Text) > cfg.MaxTextBytes {
			t.Fatalf("text of %d bytes accepted", len(form.Text))
		}
		if pupil, probs := rc.finish(); len(probs) == 0 && (!utf8.ValidString(pupil) || strings.ContainsAny(pupil, "<>\"&\x00")) {
			t.Fatalf("pupil name %q accepted", pupil)
		}
	})
}

func checkSafeName(t *testing.T, name string) {
	t.Helper()
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameRunes {
		t.Fatalf("unsafe name %q", name)
	}
	if strings.ContainsAny(name, "/\\<>:\"|?*") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, " ") ||
		strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		t.Fatalf("unsafe name %q", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || (unicode.IsSpace(r) && r != ' ') {
			t.Fatalf("name %q holds %U", name, r)
		}
	}
	base, _ := splitExt(name)
	if isWindowsDevice(base) {
		t.Fatalf("name %q is a Windows device", name)
	}
}

// FuzzSanitizeFileName: any client name becomes a safe name, stable when
// sanitised again.
func FuzzSanitizeFileName(f *testing.F) {
	for _, s := range []string{"photo.jpg", "../../etc/passwd", `C:\Users\élève\Bureau\devoir.pdf`, "CON.pdf", " .. ", "a\u202egpj.exe",
		strings.Repeat("ü", 200) + ".docx", "x\x00y.pdf", "nul", "Résumé (2).odt"} {
		f.Add(s)
	}
	entries, _ := os.ReadDir(filepath.Join("testdata", "files"))
	for _, e := range entries {
		f.Add(e.Name())
	}
	types := append([]string{""}, typeOrder...)
	f.Fuzz(func(t *testing.T, raw string) {
		for _, mt := range types {
			got := sanitizeFileName(raw, mt)
			if mt == "" {
				if got == "" || strings.ContainsAny(got, "/\\") {
					t.Fatalf("sanitizeFileName(%q) = %q", raw, got)
				}
				continue
			}
			checkSafeName(t, got)
			if again := sanitizeFileName(got, mt); again != got {
				t.Fatalf("sanitizeFileName(%q, %s) = %q, then %q", raw, mt, got, again)
			}
		}
	})
}

// FuzzSniff: the sniffer and the ZIP reader never panic, and name only
// types of the table.
func FuzzSniff(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "files"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join("testdata", "files", e.Name()))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		mt := sniff(b[:min(len(b), sniffLen)])
		if mt != "" && mt != zipPending {
			if _, ok := fileTypes[mt]; !ok {
				t.Fatalf("sniff named %q", mt)
			}
		}
		if mt == zipPending {
			if zt := zipType(bytes.NewReader(b), int64(len(b))); zt != "" && fileTypes[zt].kind != KindOffice {
				t.Fatalf("zipType named %q", zt)
			}
		}
	})
}

// TestMultipartSeeds pins what the receiver makes of each seed body.
func TestMultipartSeeds(t *testing.T) {
	blobs := newDiskBlobs(t, t.TempDir())
	cfg := Config{MaxFileBytes: 200_000, MaxTotalBytes: 300_000, MaxFiles: 3, MaxTextBytes: 2000}.WithDefaults()
	a := assignment{ID: 1, Kinds: []string{KindImage, KindPDF, KindOffice, KindText}, MaxFileBytes: 100_000}
	tests := []struct {
		file  string
		want  string // refusal key, or the accepted names joined by "|"
		pupil string
	}{
		{"ok-photo-pdf-text.txt", "image.jpg|devoir.pdf", "Léa M."},
		{"traversal.txt", "passwd.pdf|boot.ini.pdf", "Léa M."},
		{"odt.txt", "rÃ©daction.odt", "Léa M."},
		{"fake-type.txt", "err.type", ""},
		{"no-csrf.txt", "err.csrf", ""},
		{"truncated.txt", "err.badform", ""},
		{"empty-inputs.txt", "", ""},
		{"many-parts.txt", "err.toomany", ""},
		{"header-tricks.txt", "evil.pdf|_CON.pdf", "Léa M."},
		{"header-nul.txt", "err.badform", ""},
		{"nested-multipart.txt", "err.empty", ""}, // the inner boundary ends the part at once
	}
	for _, tt := range tests {
		body, err := os.ReadFile(filepath.Join("testdata", "multipart", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		rc := &receiver{blobs: blobs, a: a, cfg: cfg, csrf: "tok-tok-tok-tok-tok", owner: "seed",
			begin: func(context.Context) error { return nil }}
		form, err := rc.receive(context.Background(), multipart.NewReader(bytes.NewReader(body), fuzzBoundary))
		var got string
		var r *refusal
		switch {
		case errors.As(err, &r):
			got = r.key
		case err != nil:
			got = err.Error()
		default:
			var names []string
			for _, f := range form.Files {
				names = append(names, f.Name)
			}
			got = strings.Join(names, "|")
		}
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.file, got, tt.want)
		}
		if tt.pupil != "" {
			if pupil, probs := rc.finish(); pupil != tt.pupil || len(probs) != 0 {
				t.Errorf("%s: pupil %q, problems %v", tt.file, pupil, probs)
			}
		}
	}
}
