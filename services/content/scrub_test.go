package content

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// corrupt flips one byte of a blob on disk, as bit rot does.
func corrupt(t *testing.T, s *Store, hash string) {
	t.Helper()
	p := s.blobPath(hash)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestScrubQuarantinesAndRepairs(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(&bodies{})
	defer srv.Close()
	e := newTestEnv(t, Config{}, srv.Client())
	s := e.store
	p := demoPack("1")
	src := p.writeFolder(t, t.TempDir())
	mustImport(t, s, src)
	if err := fetchPack(t, s, srv.URL, "tube-1", 1, 300000); err != nil {
		t.Fatal(err)
	}
	video := p.items[2].files[0].data
	image := p.items[0].files[1].data
	tube := (seededBody{seed: 1, size: 300000}).bytes()
	for _, b := range [][]byte{video, image, tube} {
		corrupt(t, s, sum(b))
	}
	// Serve the image once so that the hot cache holds its (bad) bytes.
	serveStatus(s, "/c/demo-preau/images/eau.png")

	rep, err := s.Scrub(ctx, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{sum(video), sum(image), sum(tube)}
	slices.Sort(want)
	if !rep.Complete || rep.Checked != len(p.files())+1 || !slices.Equal(rep.Damaged, want) {
		t.Fatalf("Scrub() = %+v, want complete, %d checked, damaged %v", rep, len(p.files())+1, want)
	}
	for _, h := range want {
		if _, err := os.Stat(filepath.Join(s.quarantineDir, h)); err != nil {
			t.Errorf("damaged blob %s not in quarantine: %v", h[:12], err)
		}
	}
	damaged, err := s.Damaged(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, d := range damaged {
		for _, f := range d.Files {
			files = append(files, f.Pack+"/"+f.Path)
		}
		if d.SHA256 == sum(tube) && (d.Size != 300000 || !slices.Equal(d.Owners, []string{"catalog:tube:tube-1"})) {
			t.Errorf("damaged tube blob = %+v", d)
		}
	}
	slices.Sort(files)
	if want := []string{"demo-preau/images/eau.png", "demo-preau/videos/fables.mp4", "tube-1/video.mp4"}; !slices.Equal(files, want) {
		t.Errorf("Damaged() files = %v, want %v", files, want)
	}
	for _, path := range []string{"/c/demo-preau/videos/fables.mp4", "/c/demo-preau/images/eau.png", "/c/tube-1/video.mp4"} {
		code, body := serveStatus(s, path)
		if code != 503 || !strings.HasPrefix(string(body), "Ce fichier est endommagé") {
			t.Errorf("GET %s = %d %q, want 503 with the French message", path, code, body)
		}
	}
	if _, _, err := s.Open(ctx, "demo-preau", "videos/fables.mp4"); !errors.Is(err, ErrDamaged) {
		t.Errorf("Open of a damaged file: err = %v, want ErrDamaged", err)
	}
	if code, _ := serveStatus(s, "/c/demo-preau/pdf/ecole.pdf"); code != 200 {
		t.Errorf("a sound file answers %d", code)
	}
	if u, _ := s.Usage(ctx); u.DamagedBlobs != 3 {
		t.Errorf("Usage().DamagedBlobs = %d, want 3", u.DamagedBlobs)
	}

	// Repairs: the import again, a PutBlob of the same bytes, a fetch.
	mustImport(t, s, src) // same manifest: AlreadyPresent, nothing copied…
	if code, _ := serveStatus(s, "/c/demo-preau/videos/fables.mp4"); code != 503 {
		t.Errorf("an unchanged import repaired nothing but the file answers %d", code)
	}
	if _, _, err := s.PutBlob(ctx, "handin:1", bytes.NewReader(video), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "demo-preau"); err != nil {
		t.Fatal(err)
	}
	mustImport(t, s, src) // …a new import copies the missing image
	if _, err := s.FetchBlob(ctx, FetchRequest{Owner: "catalog:tube:tube-1", URL: srv.URL + "/1/300000", Size: 300000}); err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{"/c/demo-preau/videos/fables.mp4": video, "/c/demo-preau/images/eau.png": image, "/c/tube-1/video.mp4": tube} {
		if code, body := serveStatus(s, path); code != 200 || !bytes.Equal(body, data) {
			t.Errorf("after the repair GET %s = %d, %d bytes", path, code, len(body))
		}
	}
	if d, _ := s.Damaged(ctx); len(d) != 0 {
		t.Errorf("Damaged() after the repairs = %+v", d)
	}
	if ents, _ := os.ReadDir(s.quarantineDir); len(ents) != 0 {
		t.Errorf("quarantine keeps %d files after the repairs", len(ents))
	}
	checkNothingCorrupt(t, s)
}

// TestScrubResumesAndPaces: a scrub stopped in the middle goes on after
// the last blob it checked, even in a new Store (a reboot), and reads no
// faster than its rate.
func TestScrubResumesAndPaces(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	p := crashPack() // 40 files, 4 of 1 MiB
	mustImport(t, e.store, p.writeFolder(t, t.TempDir()))
	var total int64
	for _, f := range p.files() {
		total += int64(len(f.data))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	const rate = 8 << 20
	start := time.Now()
	rep1, err := e.store.Scrub(ctx, rate)
	if !errors.Is(err, context.DeadlineExceeded) || rep1.Complete || rep1.Checked == 0 {
		t.Fatalf("first Scrub() = %+v, %v; want stopped by its deadline after a few blobs", rep1, err)
	}
	if got, max := rep1.Bytes, int64(float64(rate)*time.Since(start).Seconds())+256<<10; got > max {
		t.Errorf("read %d bytes in %v at %d B/s, more than %d", got, time.Since(start), rate, max)
	}
	s2, err := New(e.store.cfg, e.db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep2, err := s2.Scrub(context.Background(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.From == "" || !rep2.Complete || rep1.Checked+rep2.Checked < len(p.files()) || rep2.Checked >= len(p.files()) {
		t.Errorf("resumed Scrub() = %+v after %d checked, want the rest of %d from the saved position", rep2, rep1.Checked, len(p.files()))
	}
	rep3, err := s2.Scrub(context.Background(), 1<<30)
	if err != nil || rep3.From != "" || rep3.Checked != len(p.files()) || rep3.Bytes != total {
		t.Errorf("next pass = %+v, %v; want a whole pass of %d blobs, %d bytes", rep3, err, len(p.files()), total)
	}
}
