package firmware

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// sigEnv is one signed-repository case: a repository with release 1.1,
// a box running 1.0, and how to reach the repository.
type sigEnv struct {
	repo   *testRepo
	box    *box
	url    string
	opts   engineOpts
	bundle string // set: ApplyFile(bundle) instead of Apply
	check  bool   // Check instead of Apply
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

// newest returns the path of the newest metadata/N.<role>.json.
func (r *testRepo) newest(t *testing.T, role string) (string, int) {
	t.Helper()
	for n := 100; n > 0; n-- {
		p := filepath.Join(r.dir, "metadata", fmt.Sprintf("%d.%s.json", n, role))
		if _, err := os.Stat(p); err == nil {
			return p, n
		}
	}
	t.Fatalf("no %s metadata", role)
	return "", 0
}

// target returns the path of the stored target whose name ends with
// suffix.
func (r *testRepo) target(t *testing.T, suffix string) string {
	t.Helper()
	var found string
	filepath.Walk(filepath.Join(r.dir, "targets"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, suffix) && !strings.HasPrefix(fi.Name(), ".") {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no target *%s", suffix)
	}
	return found
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0xff
	f.WriteAt(b, off)
}

// resignTargets signs the newest targets metadata with the targets key
// of keyDir (an attacker's) and republishes with the real keys.
func resignTargets(t *testing.T, r *testRepo, keyDir string) {
	t.Helper()
	p, _ := r.newest(t, "targets")
	md, err := metadata.Targets().FromFile(p)
	if err != nil {
		t.Fatal(err)
	}
	md.Signed.Version++
	md.ClearSignatures()
	md.Sign(loadSignerT(t, filepath.Join(keyDir, "targets.key")))
	b, _ := md.ToBytes(true)
	if err := os.WriteFile(filepath.Join(r.dir, "metadata", fmt.Sprintf("%d.targets.json", md.Signed.Version)), b, 0o644); err != nil {
		t.Fatal(err)
	}
	runRelease(t, "publish", "--keys", r.keys, "--repo", r.dir)
}

func loadSignerT(t *testing.T, path string) signature.Signer {
	t.Helper()
	blk, _ := pem.Decode(mustRead(t, path))
	sk, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(sk, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignedRepository(t *testing.T) {
	now := nightAfter(time.Now())
	epoch := time.Date(1970, 1, 1, 2, 0, 0, 0, time.UTC) // a Pi without RTC
	tests := []struct {
		name   string
		setup  func(t *testing.T, env *sigEnv)
		want   string // error code; "" means accepted
		wantFR string // the French text names this
	}{
		{"valid release is accepted", func(t *testing.T, env *sigEnv) {}, "", ""},
		{"tampered image", func(t *testing.T, env *sigEnv) {
			flipByte(t, env.repo.target(t, ".root.img"), 70000)
		}, CodeTampered, "root.img"},
		{"tampered release manifest", func(t *testing.T, env *sigEnv) {
			flipByte(t, env.repo.target(t, ".release.json"), 20)
		}, CodeTampered, "release.json"},
		{"image of the wrong length", func(t *testing.T, env *sigEnv) {
			f, _ := os.OpenFile(env.repo.target(t, ".root.img"), os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("more"))
			f.Close()
		}, CodeWrongLength, "root.img"},
		{"manifest of the wrong length", func(t *testing.T, env *sigEnv) {
			f, _ := os.OpenFile(env.repo.target(t, ".release.json"), os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("\n\n"))
			f.Close()
		}, CodeTooLarge, "release"},
		{"older metadata (rollback attack)", func(t *testing.T, env *sigEnv) {
			old := filepath.Join(t.TempDir(), "old")
			copyDir(t, env.repo.dir, old)
			runRelease(t, "publish", "--keys", env.repo.keys, "--repo", env.repo.dir)
			e := engineFor(t, env.box, env.opts)
			if _, err := e.Check(context.Background()); err != nil {
				t.Fatalf("Check of the current repository: %v", err)
			}
			env.repo.dir = old // the mirror now serves the older copy
			env.repo.srv = nil
			env.url = env.repo.serve(t)
			env.opts.repoURL = env.url
		}, CodeRollback, "timestamp"},
		{"frozen timestamp (plausible clock, expired)", func(t *testing.T, env *sigEnv) {
			e := engineFor(t, env.box, env.opts)
			if _, err := e.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			env.opts.now = now.Add(8 * 24 * time.Hour) // the repository was not re-signed for 8 days
		}, CodeExpired, "timestamp"},
		{"expired timestamp, clock not plausible, network", func(t *testing.T, env *sigEnv) {
			env.opts.now = epoch
			env.opts.cfg = func(c *Config) { c.BuildTime = now.Add(8 * 24 * time.Hour) }
		}, CodeClock, "horloge"},
		{"expired timestamp, clock not plausible, USB within grace", func(t *testing.T, env *sigEnv) {
			env.bundle = bundleOf(t, env.repo)
			env.opts.now = epoch
			env.opts.cfg = func(c *Config) { c.BuildTime = now.Add(8 * 24 * time.Hour) }
		}, "", ""},
		{"expired timestamp, clock not plausible, USB without grace", func(t *testing.T, env *sigEnv) {
			env.bundle = bundleOf(t, env.repo)
			env.opts.now = epoch
			env.opts.cfg = func(c *Config) { c.BuildTime = now.Add(8 * 24 * time.Hour); c.OfflineGrace = -1 }
		}, CodeExpired, "timestamp"},
		{"expired timestamp, USB beyond the grace", func(t *testing.T, env *sigEnv) {
			env.bundle = bundleOf(t, env.repo)
			env.opts.now = now.Add(40 * 24 * time.Hour)
		}, CodeExpired, "timestamp"},
		{"expired root is never graced", func(t *testing.T, env *sigEnv) {
			env.bundle = bundleOf(t, env.repo)
			env.opts.now = now.Add(370 * 24 * time.Hour)
			env.opts.cfg = func(c *Config) { c.OfflineGrace = 400 * 24 * time.Hour }
		}, CodeExpired, "root"},
		{"rotated root and timestamp keys are followed", func(t *testing.T, env *sigEnv) {
			newKeys := filepath.Join(t.TempDir(), "new")
			runRelease(t, "keygen", "--keys", newKeys)
			runRelease(t, "rotate", "--keys", env.repo.keys, "--new-keys", newKeys, "--repo", env.repo.dir, "--role", "root,timestamp")
		}, "", ""},
		{"old timestamp key after rotation", func(t *testing.T, env *sigEnv) {
			newKeys := filepath.Join(t.TempDir(), "new")
			runRelease(t, "keygen", "--keys", newKeys)
			runRelease(t, "rotate", "--keys", env.repo.keys, "--new-keys", newKeys, "--repo", env.repo.dir, "--role", "timestamp")
			e := engineFor(t, env.box, env.opts)
			if _, err := e.Check(context.Background()); err != nil {
				t.Fatalf("Check after rotation: %v", err)
			}
			// The revoked key signs a newer timestamp.
			runRelease(t, "publish", "--keys", env.repo.keys, "--repo", env.repo.dir)
		}, CodeBadSignature, "timestamp"},
		{"forged root rotation", func(t *testing.T, env *sigEnv) {
			evil, evil2 := filepath.Join(t.TempDir(), "evil"), filepath.Join(t.TempDir(), "evil2")
			runRelease(t, "keygen", "--keys", evil)
			runRelease(t, "keygen", "--keys", evil2)
			runRelease(t, "rotate", "--keys", evil, "--new-keys", evil2, "--repo", env.repo.dir, "--role", "root,timestamp,snapshot,targets")
		}, CodeBadSignature, "root"},
		{"mix-and-match snapshot", func(t *testing.T, env *sigEnv) {
			p, n := env.repo.newest(t, "snapshot")
			runRelease(t, "publish", "--keys", env.repo.keys, "--repo", env.repo.dir)
			// The newest snapshot's name now holds the previous one.
			q := filepath.Join(env.repo.dir, "metadata", fmt.Sprintf("%d.snapshot.json", n+1))
			os.WriteFile(q, mustRead(t, p), 0o644)
		}, CodeMixAndMatch, "snapshot"},
		{"mix-and-match targets", func(t *testing.T, env *sigEnv) {
			p, n := env.repo.newest(t, "targets")
			env.repo.sign(t, systemdBoot, "1.2", 50<<10)
			q := filepath.Join(env.repo.dir, "metadata", fmt.Sprintf("%d.targets.json", n+1))
			os.WriteFile(q, mustRead(t, p), 0o644)
		}, CodeMixAndMatch, "targets"},
		{"targets signed by an unknown key", func(t *testing.T, env *sigEnv) {
			evil := filepath.Join(t.TempDir(), "evil")
			runRelease(t, "keygen", "--keys", evil)
			resignTargets(t, env.repo, evil)
		}, CodeBadSignature, "targets"},
		{"no release for this architecture", func(t *testing.T, env *sigEnv) {
			env.opts.cfg = func(c *Config) { c.Arch = "aarch64" }
		}, CodeNoRelease, "aarch64"},
		{"USB: older version than installed", func(t *testing.T, env *sigEnv) {
			env.repo.sign(t, systemdBoot, "0.9", 50<<10)
			env.bundle = bundleOf(t, env.repo)
		}, CodeDowngrade, "0.9"},
		{"USB: tampered image", func(t *testing.T, env *sigEnv) {
			env.bundle = bundleOf(t, env.repo)
			var img string
			filepath.Walk(env.bundle, func(p string, fi os.FileInfo, err error) error {
				if err == nil && strings.HasSuffix(p, ".root.img") {
					img = p
				}
				return nil
			})
			flipByte(t, img, 5000)
		}, CodeTampered, "root.img"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			repo := newTestRepo(t)
			repo.sign(t, systemdBoot, "1.1", 200<<10)
			url := repo.serve(t)
			env := &sigEnv{repo: repo, url: url, opts: engineOpts{repoURL: url, now: now}}
			env.box = newBox(t, systemdBoot, filepath.Join(repo.dir, "metadata", "1.root.json"))
			tt.setup(t, env)
			e := engineFor(t, env.box, env.opts)
			var err error
			if env.bundle != "" {
				err = e.ApplyFile(ctx, env.bundle, nil)
			} else {
				err = e.Apply(ctx, nil)
			}
			if tt.want == "" {
				if !errors.Is(err, ErrRebooting) {
					t.Fatalf("got %v (%s), want the release accepted", err, errCode(err))
				}
				return
			}
			if got := errCode(err); got != tt.want {
				t.Fatalf("got %q (%v), want %s", got, err, tt.want)
			}
			ue, _ := asError(err)
			if !strings.Contains(ue.FR, tt.wantFR) || ue.EN == "" {
				t.Fatalf("message %q does not name %q", ue.FR, tt.wantFR)
			}
			t.Logf("%s | %s", ue.FR, ue.EN)
			// Nothing was armed: the box still boots the committed slot.
			for range 2 {
				if got := env.box.boot(t, true); got != "a" {
					t.Fatalf("firmware started %s after a refused update", got)
				}
			}
		})
	}
}

// bundleOf copies the repository's current release for a USB key.
func bundleOf(t *testing.T, r *testRepo) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "usb", "preau-update")
	runRelease(t, "bundle", "--repo", r.dir, "--out", out)
	return out
}
