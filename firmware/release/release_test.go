package release

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func runT(t *testing.T, want int, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Run(args, nil, &out, &errb); code != want {
		t.Fatalf("preau release %s: exit %d, want %d: %s%s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String() + errb.String()
}

func TestKeysAndRepository(t *testing.T) {
	dir := t.TempDir()
	keys, repo := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	runT(t, 0, "keygen", "--keys", keys)
	for _, role := range topRoles {
		fi, err := os.Stat(filepath.Join(keys, role+".key"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s.key: %v %v, want mode 0600", role, fi.Mode(), err)
		}
	}
	if out := runT(t, 1, "keygen", "--keys", keys); !strings.Contains(out, "refusing to overwrite") {
		t.Fatalf("second keygen: %s", out)
	}
	runT(t, 2, "sign", "--keys", keys, "--repo", repo)
	runT(t, 0, "init", "--keys", keys, "--repo", repo)
	runT(t, 1, "init", "--keys", keys, "--repo", repo)

	img := filepath.Join(dir, "root.img")
	os.WriteFile(img, bytes.Repeat([]byte("x"), 100000), 0o644)
	runT(t, 1, "sign", "--keys", keys, "--repo", repo, "--version", "../1", "--part", "root="+img)
	runT(t, 0, "sign", "--keys", keys, "--repo", repo, "--version", "1.1", "--part", "root="+img, "--quiet")
	runT(t, 0, "publish", "--keys", keys, "--repo", repo, "--timestamp-expires", "1d")
	ts, err := metadata.Timestamp().FromFile(filepath.Join(repo, "metadata", "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ts.Signed.Version != 3 || ts.Signed.Expires.After(time.Now().Add(25*time.Hour)) {
		t.Fatalf("timestamp version %d expires %v", ts.Signed.Version, ts.Signed.Expires)
	}
	// A private key others can read is refused.
	os.Chmod(filepath.Join(keys, "timestamp.key"), 0o644)
	if out := runT(t, 1, "publish", "--keys", keys, "--repo", repo); !strings.Contains(out, "chmod 600") {
		t.Fatalf("publish with a readable key: %s", out)
	}
	os.Chmod(filepath.Join(keys, "timestamp.key"), 0o600)

	// Rotation: root 2 signed by the old and the new root keys.
	newKeys := filepath.Join(dir, "new")
	runT(t, 0, "keygen", "--keys", newKeys)
	runT(t, 0, "rotate", "--keys", keys, "--new-keys", newKeys, "--repo", repo, "--role", "root,targets")
	r1, _ := metadata.Root().FromFile(filepath.Join(repo, "metadata", "1.root.json"))
	r2, err := metadata.Root().FromFile(filepath.Join(repo, "metadata", "2.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.VerifyDelegate("root", r2); err != nil {
		t.Fatalf("root 2 not signed by root 1's key: %v", err)
	}
	if err := r2.VerifyDelegate("root", r2); err != nil {
		t.Fatalf("root 2 not signed by its own key: %v", err)
	}
	if len(r2.Signatures) != 2 {
		t.Fatalf("root 2 has %d signatures, want 2", len(r2.Signatures))
	}
	for role, changed := range map[string]bool{"root": true, "targets": true, "snapshot": false, "timestamp": false} {
		same := strings.Join(r1.Signed.Roles[role].KeyIDs, ",") == strings.Join(r2.Signed.Roles[role].KeyIDs, ",")
		if same == changed {
			t.Errorf("role %s: keys changed %v, want %v", role, !same, changed)
		}
	}

	out := filepath.Join(dir, "usb.tar")
	runT(t, 0, "bundle", "--repo", repo, "--out", out)
	if fi, err := os.Stat(out); err != nil || fi.Size() < 100000 {
		t.Fatalf("bundle: %v", err)
	}
	runT(t, 1, "bundle", "--repo", repo, "--out", out+"2", "--arch", "aarch64")
	runT(t, 2, "frobnicate")
}

func TestParseDur(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7d", 7 * 24 * time.Hour, true},
		{"12h", 12 * time.Hour, true},
		{"0d", 0, false},
		{"-1h", 0, false},
		{"x", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDur(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDur(%q) = %v, %v", tt.in, got, err)
		}
	}
}
