package content

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestManifestGolden parses every manifest of testdata/manifests and
// compares the outcome (accepted, or the refusal's code and texts) with
// testdata/manifests.golden.
func TestManifestGolden(t *testing.T) {
	paths, err := filepath.Glob("testdata/manifests/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	sort.Strings(paths)
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := parseManifest(data, Config{}.WithDefaults())
		fmt.Fprintf(&b, "%s: ", filepath.Base(p))
		var pe *PackError
		switch {
		case err == nil:
			fmt.Fprintf(&b, "ok %s %s, %d items, %d files, %d bytes\n", m.ID, m.Version, len(m.Items), len(m.order), m.total)
		case errors.As(err, &pe):
			fmt.Fprintf(&b, "%s %q\n  fr: %s\n  en: %s\n", pe.Code, pe.Path, pe.Error(), pe.English())
		default:
			t.Errorf("%s: error is not a PackError: %v", p, err)
		}
	}
	golden := "testdata/manifests.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("manifest outcomes differ from %s:\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

func TestValidPath(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"a.html", true},
		{"articles/eau/é.html", true},
		{"", false},
		{"/etc/passwd", false},
		{"a/../b", false},
		{"./a", false},
		{"a/./b", false},
		{"a//b", false},
		{"a/", false},
		{`a\b`, false},
		{"a\x00b", false},
		{"a\nb", false},
		{"\xff.html", false},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
		{strings.Repeat("abcdefg/", 128), false},
		{strings.Repeat("abcdefg/", 127) + "abcdefg", true},
	}
	for _, tt := range tests {
		if got := ValidPath(tt.path); got != tt.want {
			t.Errorf("ValidPath(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func FuzzManifest(f *testing.F) {
	paths, _ := filepath.Glob("testdata/manifests/*.json")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	cfg := Config{MaxPackBytes: 1 << 40, MaxFileBytes: 1 << 36, MaxFiles: 1000}.WithDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseManifest(data, cfg)
		if err != nil {
			var pe *PackError
			if !errors.As(err, &pe) || pe.Error() == "" || pe.English() == "" {
				t.Fatalf("parseManifest error %v is not a PackError with texts", err)
			}
			return
		}
		if m.total > cfg.MaxPackBytes || len(m.order) > cfg.MaxFiles || len(m.order) != len(m.files) {
			t.Fatalf("accepted beyond the limits: %d bytes, %d files", m.total, len(m.order))
		}
		for _, it := range m.Items {
			if _, ok := m.files[it.Entry]; !ok {
				t.Fatalf("item %s: entry %q not a file", it.ID, it.Entry)
			}
		}
		for p, file := range m.files {
			if !ValidPath(p) || p == ManifestName || file.Size < 0 || file.Size > cfg.MaxFileBytes || len(file.SHA256) != 64 {
				t.Fatalf("accepted bad file %+v", file)
			}
		}
	})
}
