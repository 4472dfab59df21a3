package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// ArtefactDir returns the directory where a test keeps files worth looking
// at after the run (screenshots, videos, axe reports), created:
// $PREAU_ARTEFACTS/<test name> when the variable is set, else
// <repo root>/test-artefacts/<test name> (git-ignored). Characters of the
// test name other than letters, digits, '.', '-' and '_' become '_'.
func ArtefactDir(t testing.TB) string {
	t.Helper()
	root := os.Getenv(ArtefactsEnv)
	if root == "" {
		root = filepath.Join(repoRoot(), "test-artefacts")
	}
	dir := filepath.Join(root, safeName(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create artefact directory: %v", err)
	}
	return dir
}

func safeName(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
}

// repoRoot walks up from this source file (or, when built with -trimpath,
// from the working directory) to the directory holding go.mod.
func repoRoot() string {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return d
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "."
}

// MakeVideo writes a WebM test video of the given length to path: VP8,
// 320×240 at 25 frames per second, showing a running clock (ffmpeg's testsrc
// with two decimals), a keyframe every second and cues for seeking. A
// missing ffmpeg skips the test, or fails it when PREAU_REQUIRE_BROWSER=1.
func MakeVideo(t testing.TB, path string, seconds int) {
	t.Helper()
	if seconds < 1 {
		t.Fatalf("make test video: length %d s, want at least 1", seconds)
	}
	ffmpeg, err := findTool("ffmpeg")
	if err != nil {
		missing(t, "ffmpeg introuvable : installez le paquet Debian « ffmpeg » / ffmpeg not found: install the Debian package ffmpeg")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("make test video: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(30+2*seconds)*time.Second)
	defer cancel()
	const fps = 25
	cmd := exec.CommandContext(ctx, ffmpeg,
		"-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=320x240:rate=%d:decimals=2", fps),
		"-t", fmt.Sprint(seconds),
		"-c:v", "libvpx", "-b:v", "300k", "-deadline", "realtime", "-cpu-used", "8",
		"-g", fmt.Sprint(fps), "-keyint_min", fmt.Sprint(fps), "-auto-alt-ref", "0",
		"-pix_fmt", "yuv420p", "-an", "-f", "webm", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make test video %s: ffmpeg: %v\n%s", path, err, out)
	}
}
