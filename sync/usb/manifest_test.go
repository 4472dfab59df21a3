package usb

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
		var be *BundleError
		switch {
		case err == nil:
			fmt.Fprintf(&b, "ok box %q, %d items, %d files, %d bytes\n", m.Box, len(m.Items), len(m.order), m.total)
		case errors.As(err, &be):
			fmt.Fprintf(&b, "%s %q\n  fr: %s\n  en: %s\n", be.Code, be.Path, be.Error(), be.English())
		default:
			t.Errorf("%s: error is not a BundleError: %v", p, err)
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
		{"a.pdf", true},
		{"Devoirs/6e A/Léa – copie.pdf", true},
		{"", false},
		{"/etc/passwd", false},
		{"a/../b", false},
		{"..", false},
		{"./a", false},
		{"a//b", false},
		{"a/", false},
		{`a\b`, false},
		{"a\x00b", false},
		{"a\nb", false},
		{"\xff.pdf", false},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
		{strings.Repeat("abcdefg/", 128), false},
	}
	for _, tt := range tests {
		if got := ValidPath(tt.path); got != tt.want {
			t.Errorf("ValidPath(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// FuzzManifest: whatever the bytes, the parser either refuses them with a
// bilingual BundleError or returns a manifest whose every item is safe to
// use: valid paths, hex hashes, sizes within the limits, unique keys and
// names, one size per hash.
func FuzzManifest(f *testing.F) {
	paths, _ := filepath.Glob("testdata/manifests/*.json")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	cfg := Config{BoxID: "fuzz", MaxManifestBytes: 1 << 20, MaxItems: 1000, MaxFileBytes: 1 << 40}.WithDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseManifest(data, cfg)
		if err != nil {
			var be *BundleError
			if !errors.As(err, &be) || be.Error() == "" || be.English() == "" || messages[be.Code].fr == "" {
				t.Fatalf("parseManifest error %v is not a BundleError with texts", err)
			}
			return
		}
		if len(p.Items) == 0 || len(p.Items) > cfg.MaxItems || p.Format != Format || p.Box == "" {
			t.Fatalf("accepted %d items, format %d, box %q", len(p.Items), p.Format, p.Box)
		}
		keys := map[string]bool{}
		names := map[string]bool{}
		var total int64
		for _, it := range p.Items {
			if !ValidPath(it.RemotePath) || strings.Contains(it.RemotePath, "..") && strings.Contains("/"+it.RemotePath+"/", "/../") {
				t.Fatalf("accepted path %q", it.RemotePath)
			}
			if it.Size < 0 || it.Size > cfg.MaxFileBytes || !hashPattern.MatchString(it.SHA256) || p.sizes[it.SHA256] != it.Size {
				t.Fatalf("accepted item %+v", it)
			}
			if keys[it.Key] || names[it.Destination+"\x00"+it.RemotePath] {
				t.Fatalf("accepted a duplicate %+v", it)
			}
			keys[it.Key] = true
			names[it.Destination+"\x00"+it.RemotePath] = true
		}
		for _, sum := range p.order {
			total += p.sizes[sum]
		}
		if total != p.total || len(p.order) != len(p.sizes) {
			t.Fatalf("derived files disagree: %d/%d bytes, %d/%d files", total, p.total, len(p.order), len(p.sizes))
		}
	})
}
