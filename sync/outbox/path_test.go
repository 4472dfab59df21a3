package outbox

import (
	"bufio"
	"os"
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

// remotePathCases reads testdata/remote-paths.txt: "ok" or "bad", a tab,
// then the path (which may itself hold a tab).
func remotePathCases(t testing.TB) (ok, bad []string) {
	f, err := os.Open("testdata/remote-paths.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		verdict, p, found := strings.Cut(line, "\t")
		if !found {
			t.Fatalf("bad line %q", line)
		}
		if verdict == "ok" {
			ok = append(ok, p)
		} else {
			bad = append(bad, p)
		}
	}
	return ok, bad
}

func TestCheckRemotePath(t *testing.T) {
	ok, bad := remotePathCases(t)
	bad = append(bad, strings.Repeat("x", 256), strings.Repeat("a/", 600)+"b", "\xff.txt", "a\x00b")
	for _, p := range ok {
		if err := CheckRemotePath(p); err != nil {
			t.Errorf("CheckRemotePath(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range bad {
		if err := CheckRemotePath(p); err == nil {
			t.Errorf("CheckRemotePath(%q) = nil, want an error", p)
		}
	}
}

func FuzzCheckRemotePath(f *testing.F) {
	ok, bad := remotePathCases(f)
	for _, p := range append(ok, bad...) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if CheckRemotePath(p) != nil {
			return
		}
		// An accepted path stays inside the destination folder and is
		// its own clean form.
		if path.Clean(p) != p || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") || p == ".." || p == "." {
			t.Fatalf("accepted %q, clean form %q", p, path.Clean(p))
		}
		if !utf8.ValidString(p) || strings.ContainsAny(p, "\\\x00\n\r") || len(p) > MaxRemotePath {
			t.Fatalf("accepted %q", p)
		}
		for _, seg := range strings.Split(p, "/") {
			if strings.HasPrefix(seg, TempPrefix) {
				t.Fatalf("accepted the temporary name %q", p)
			}
		}
	})
}
