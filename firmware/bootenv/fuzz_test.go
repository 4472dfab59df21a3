package bootenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseAutoboot(f *testing.F) {
	files, _ := filepath.Glob("testdata/autoboot/*.txt")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAutoboot(s)
		if err != nil {
			return
		}
		if a.All < 1 || a.All > 63 {
			t.Fatalf("accepted boot_partition=%d", a.All)
		}
		// What we write reads back the same.
		b, err := ParseAutoboot(a.String())
		if err != nil || b.All != a.All || (a.Try != 0 && b.Try != a.Try) || !b.AB {
			t.Fatalf("round trip of %+v gave %+v, %v", a, b, err)
		}
	})
}

func FuzzEntryName(f *testing.F) {
	files, _ := filepath.Glob("testdata/entries/*.conf")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(strings.TrimSuffix(filepath.Base(p), ".conf"), string(b))
	}
	f.Add("preau-b+3", "")
	f.Fuzz(func(t *testing.T, stem, body string) {
		id, left, done, counting := ParseCounter(stem)
		if counting {
			if left < 0 || done < 0 || !strings.HasPrefix(stem, id+"+") {
				t.Fatalf("ParseCounter(%q) = %q %d %d", stem, id, left, done)
			}
		} else if id != stem {
			t.Fatalf("ParseCounter(%q) changed the id to %q without a counter", stem, id)
		}
		kv := parseEntry(body)
		if o, ok := kv["options"]; ok && strings.Contains(o, "\n") {
			t.Fatalf("options span lines: %q", o)
		}
		_ = CompareVersions(stem, body)
	})
}
