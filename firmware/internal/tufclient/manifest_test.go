package tufclient

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestManifestGolden parses every manifest in testdata/manifests and
// compares the outcome with testdata/manifests.golden.
func TestManifestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/manifests/*.json")
	sort.Strings(files)
	var got strings.Builder
	for _, f := range files {
		b, _ := os.ReadFile(f)
		m, err := ParseManifest(b)
		got.WriteString(filepath.Base(f) + ": ")
		if err != nil {
			got.WriteString(err.Error() + "\n")
			continue
		}
		var names []string
		for _, p := range m.Parts {
			names = append(names, p.Name)
		}
		got.WriteString("ok " + m.Version + " " + m.Channel + "/" + m.Arch + " parts=" + strings.Join(names, ",") + "\n")
	}
	want, _ := os.ReadFile("testdata/manifests.golden")
	if got.String() != string(want) {
		t.Fatalf("got:\n%s\nwant:\n%s", got.String(), want)
	}
}

func TestHashedPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"stable/x86_64/release.json", "stable/x86_64/abc.release.json"},
		{"root.img", "abc.root.img"},
	}
	for _, tt := range tests {
		if got := HashedPath(tt.in, "abc"); got != tt.want {
			t.Errorf("HashedPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	files, _ := filepath.Glob("testdata/manifests/*.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		// Whatever is accepted names safe targets for both slots.
		for _, p := range m.Parts {
			for _, slot := range []string{"a", "b"} {
				tgt := p.TargetFor(slot)
				if err := CheckTargetPath(tgt); err != nil {
					t.Fatalf("accepted manifest with target %q for slot %s: %v", tgt, slot, err)
				}
				if strings.Contains(tgt, "..") && strings.Contains("/"+tgt+"/", "/../") {
					t.Fatalf("accepted %q", tgt)
				}
			}
		}
		if err := CheckVersion(m.Version); err != nil {
			t.Fatalf("accepted version %q", m.Version)
		}
	})
}

func TestCheckVersion(t *testing.T) {
	for v, ok := range map[string]bool{"1.4.0": true, "v0.3.0-12-gabc1234": true, "2025.11.2~rc1": true,
		"v": false, "vx1": false, "": false, "../1": false, "1 2": false, "beta": false} {
		if err := CheckVersion(v); (err == nil) != ok {
			t.Errorf("CheckVersion(%q) = %v, want ok=%v", v, err, ok)
		}
	}
}
