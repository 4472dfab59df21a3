package usb

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{"ok", Config{BoxID: "ecole-dax"}, ""},
		{"no box", Config{}, "box id is empty"},
		{"control in box", Config{BoxID: "a\nb"}, "box id"},
		{"long box", Config{BoxID: strings.Repeat("a", 129)}, "box id"},
		{"negative manifest", Config{BoxID: "a", MaxManifestBytes: -1}, "max manifest bytes"},
		{"negative items", Config{BoxID: "a", MaxItems: -1}, "max items"},
		{"negative file", Config{BoxID: "a", MaxFileBytes: -1}, "max file bytes"},
	}
	for _, tt := range tests {
		err := tt.cfg.WithDefaults().Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: got %v, want no error", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got %v, want an error naming %q", tt.name, err, tt.want)
		}
	}
}

func TestBundleName(t *testing.T) {
	at := time.Date(2026, 3, 14, 9, 26, 53, 0, time.FixedZone("CET", 3600))
	tests := []struct{ box, want string }{
		{"ecole-dax", "preau-export-ecole-dax-20260314T082653Z"},
		{"École Jules-Ferry (Dax)", "preau-export-cole-jules-ferry-dax-20260314T082653Z"},
		{"../../etc", "preau-export-etc-20260314T082653Z"},
		{"ÉÉÉ", "preau-export-box-20260314T082653Z"},
		{strings.Repeat("abc", 40), "preau-export-" + strings.Repeat("abc", 14)[:40] + "-20260314T082653Z"},
	}
	for _, tt := range tests {
		if got := bundleName(tt.box, at); got != tt.want {
			t.Errorf("bundleName(%q) = %q, want %q", tt.box, got, tt.want)
		}
	}
}

// TestExportVerifyDeliver is the sneakernet round trip: export, verify,
// deliver to a folder, deliver again from the same box (nothing sent), then
// from another machine without the Seen record (nothing sent either).
func TestExportVerifyDeliver(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	items := sampleItems(t, b, 6, 600<<10, 1)
	c := newCourier(t, Config{})
	key := t.TempDir()

	var last, total int64
	bundle, err := c.Export(ctx, key, items, b.open, func(done, tot int64) {
		if done < last || done > tot {
			t.Errorf("export progress %d/%d after %d", done, tot, last)
		}
		last, total = done, tot
	})
	if err != nil {
		t.Fatal(err)
	}
	if last != total || total != bundle.Bytes {
		t.Errorf("export progress ended at %d/%d, want %d/%d", last, total, bundle.Bytes, bundle.Bytes)
	}
	if got, want := filepath.Base(bundle.Dir), "preau-export-cole-jules-ferry-dax-20260314T092653Z"; got != want {
		t.Errorf("bundle folder %q, want %q", got, want)
	}
	if bundle.Files != 5 {
		t.Errorf("bundle has %d files, want 5 (two items share content)", bundle.Files)
	}
	entries, _ := os.ReadDir(filepath.Join(bundle.Dir, FilesDir))
	if len(entries) != 5 {
		t.Errorf("files/ holds %d entries, want 5 (no temporary file left)", len(entries))
	}
	top, _ := os.ReadDir(bundle.Dir)
	if len(top) != 2 {
		t.Errorf("bundle root holds %d entries, want manifest.json and files/", len(top))
	}

	m, err := c.Verify(ctx, bundle.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Items) != len(items) || m.Box != "École Jules-Ferry (Dax)" || !m.Created.Equal(bundle.Manifest.Created) {
		t.Errorf("verified manifest %+v differs from the export %+v", m, bundle.Manifest)
	}

	// At the school with connectivity.
	dest := t.TempDir()
	sink := &countingSink{Sink: FolderSink{Dir: dest}}
	seen := NewSeenStore(openDB(t, t.TempDir()), nil)
	last = 0
	rep, err := c.Deliver(ctx, bundle.Dir, sink, seen, func(done, tot int64) {
		if done < last || done > tot {
			t.Errorf("deliver progress %d/%d after %d", done, tot, last)
		}
		last, total = done, tot
	})
	if err != nil {
		t.Fatal(err)
	}
	if last != total {
		t.Errorf("deliver progress ended at %d/%d", last, total)
	}
	if want := (Report{Items: 6, Delivered: 6}); rep.Items != want.Items || rep.Delivered != want.Delivered || rep.Skipped != 0 || rep.Present != 0 || len(rep.Failed) != 0 {
		t.Errorf("first delivery %+v, want %+v", rep, want)
	}
	if d := diffMaps(delivered(t, dest), wantDelivered(items)); d != "" {
		t.Errorf("destination after the first delivery:\n%s", d)
	}

	// The same bundle again, same box: Seen skips everything.
	sink.puts, sink.stats = 0, 0
	rep, err = c.Deliver(ctx, bundle.Dir, sink, seen, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Skipped != 6 || rep.Delivered != 0 || sink.puts != 0 || sink.stats != 0 {
		t.Errorf("second delivery: %+v with %d puts, %d stats; want all 6 skipped, no call to the sink", rep, sink.puts, sink.stats)
	}

	// Another machine, no Seen record: the deterministic names are found.
	other := &countingSink{Sink: FolderSink{Dir: dest}}
	rep, err = c.Deliver(ctx, bundle.Dir, other, &memSeen{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Present != 6 || rep.Delivered != 0 || other.puts != 0 {
		t.Errorf("delivery from another machine: %+v with %d puts; want all 6 present, none sent", rep, other.puts)
	}
	if d := diffMaps(delivered(t, dest), wantDelivered(items)); d != "" {
		t.Errorf("destination after three deliveries:\n%s", d)
	}
}

func TestExportRefusals(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	good := sampleItems(t, b, 3, 10<<10, 2)
	corrupt := append([]Item(nil), good...)
	if err := os.WriteFile(filepath.Join(b.dir, corrupt[2].SHA256), []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	missingBlob := append([]Item(nil), good[:2]...)
	missingBlob = append(missingBlob, Item{Key: "k", Destination: "d", RemotePath: "x.pdf", Size: 3, SHA256: strings.Repeat("ab", 32)})
	traversal := append([]Item(nil), good[:2]...)
	traversal[1].RemotePath = "../../etc/passwd"
	dupKey := append([]Item(nil), good[:2]...)
	dupKey[1].Key = dupKey[0].Key

	tests := []struct {
		name  string
		items []Item
		code  string // "" for a plain error
	}{
		{"empty", nil, CodeNothingToExport},
		{"traversal", traversal, CodeBadPath},
		{"duplicated key", dupKey, CodeInvalidItem},
		{"corrupt blob", corrupt, CodeCorruptBlob},
		{"missing blob", missingBlob, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := t.TempDir()
			_, err := newCourier(t, Config{}).Export(ctx, key, tt.items, b.open, nil)
			if err == nil {
				t.Fatal("export succeeded, want a refusal")
			}
			var be *BundleError
			switch {
			case tt.code == "" && errors.As(err, &be):
				t.Errorf("got %s, want a plain error", be.Code)
			case tt.code != "" && (!errors.As(err, &be) || be.Code != tt.code):
				t.Errorf("got %v, want code %s", err, tt.code)
			}
			if entries, _ := os.ReadDir(key); len(entries) != 0 {
				t.Errorf("the key holds %d entries after a failed export, want none (partial bundle removed)", len(entries))
			}
		})
	}

	t.Run("not a folder", func(t *testing.T) {
		_, err := newCourier(t, Config{}).Export(ctx, filepath.Join(t.TempDir(), "absent"), good, b.open, nil)
		var be *BundleError
		if !errors.As(err, &be) || be.Code != CodeBadTarget || !strings.Contains(be.Error(), "clé") {
			t.Errorf("got %v, want %s in French", err, CodeBadTarget)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		key := t.TempDir()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := newCourier(t, Config{}).Export(cctx, key, good, b.open, nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		if entries, _ := os.ReadDir(key); len(entries) != 0 {
			t.Errorf("the key holds %d entries after a cancelled export, want none", len(entries))
		}
	})
}

// TestHostileBundles damages a good bundle in each way a key can be broken
// or forged, and checks that Deliver refuses it with the right code, in
// French and English, before anything reaches the sink or the Seen record.
func TestHostileBundles(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	items := sampleItems(t, b, 4, 64<<10, 3)
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("not for the bundle"), 0o600); err != nil {
		t.Fatal(err)
	}
	file0 := func(dir string) string { return filepath.Join(dir, FilesDir, items[0].SHA256) }
	editManifest := func(edit func(m map[string]any)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			p := filepath.Join(dir, ManifestName)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			edit(m)
			data, _ = json.Marshal(m)
			write(t, p, data)
		}
	}
	setItem0 := func(field string, v any) func(t *testing.T, dir string) {
		return editManifest(func(m map[string]any) { m["items"].([]any)[0].(map[string]any)[field] = v })
	}
	rawManifest := func(edit func(s string) string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			p := filepath.Join(dir, ManifestName)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			write(t, p, []byte(edit(string(data))))
		}
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		code   string
	}{
		{"interrupted export: no manifest", func(t *testing.T, dir string) { remove(t, filepath.Join(dir, ManifestName)) }, CodeIncomplete},
		{"traversal", setItem0("remote_path", "../../../etc/cron.d/x"), CodeBadPath},
		{"absolute path", setItem0("remote_path", "/etc/passwd"), CodeBadPath},
		{"backslash", setItem0("remote_path", `..\..\windows\x`), CodeBadPath},
		{"NUL in path", setItem0("remote_path", "a\x00b"), CodeBadPath},
		{"upper-case hash", setItem0("sha256", strings.ToUpper(items[0].SHA256)), CodeManifestInvalid},
		{"hash of other content", setItem0("sha256", items[2].SHA256), CodeManifestInvalid}, // same hash, two sizes
		{"negative size", setItem0("size", -1), CodeManifestInvalid},
		{"unknown format", editManifest(func(m map[string]any) { m["format"] = 2 }), CodeManifestInvalid},
		{"unknown field", editManifest(func(m map[string]any) { m["signature"] = "x" }), CodeManifestInvalid},
		{"duplicated key", rawManifest(func(s string) string { return strings.Replace(s, `"format": 1,`, `"format": 1, "format": 1,`, 1) }), CodeManifestInvalid},
		{"duplicated key other case", rawManifest(func(s string) string { return strings.Replace(s, `"format": 1,`, `"format": 1, "FORMAT": 1,`, 1) }), CodeManifestInvalid},
		{"trailing data", rawManifest(func(s string) string { return s + `{"format": 1}` }), CodeManifestInvalid},
		{"truncated manifest", rawManifest(func(s string) string { return s[:len(s)/2] }), CodeManifestInvalid},
		{"oversized manifest", rawManifest(func(s string) string { return s + strings.Repeat(" ", 70<<10) }), CodeManifestTooLarge},
		{"wrong hash", func(t *testing.T, dir string) { flipByte(t, file0(dir)) }, CodeHashMismatch},
		{"truncated file", func(t *testing.T, dir string) { truncate(t, file0(dir), items[0].Size-1) }, CodeTruncated},
		{"grown file", func(t *testing.T, dir string) { truncate(t, file0(dir), items[0].Size+1) }, CodeSizeMismatch},
		{"missing file", func(t *testing.T, dir string) { remove(t, file0(dir)) }, CodeMissingFile},
		{"missing files folder", func(t *testing.T, dir string) { os.RemoveAll(filepath.Join(dir, FilesDir)) }, CodeMissingFile},
		{"unlisted file", func(t *testing.T, dir string) { write(t, filepath.Join(dir, FilesDir, "evil.sh"), []byte("#!/bin/sh")) }, CodeUnlistedFile},
		{"symlink file", func(t *testing.T, dir string) { remove(t, file0(dir)); symlink(t, outside, file0(dir)) }, CodeSymlink},
		{"relative symlink file", func(t *testing.T, dir string) {
			remove(t, file0(dir))
			symlink(t, items[2].SHA256, file0(dir))
		}, CodeSymlink},
		{"symlink manifest", func(t *testing.T, dir string) {
			p := filepath.Join(dir, ManifestName)
			os.Rename(p, outside+".json")
			symlink(t, outside+".json", p)
		}, CodeSymlink},
		{"symlink files folder", func(t *testing.T, dir string) {
			p := filepath.Join(dir, FilesDir)
			os.Rename(p, outside+".files")
			symlink(t, outside+".files", p)
		}, CodeSymlink},
		{"fifo instead of a file", func(t *testing.T, dir string) {
			remove(t, file0(dir))
			if err := syscall.Mkfifo(file0(dir), 0o644); err != nil {
				t.Fatal(err)
			}
		}, CodeSpecialFile},
		{"folder instead of a file", func(t *testing.T, dir string) { remove(t, file0(dir)); os.Mkdir(file0(dir), 0o755) }, CodeSpecialFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCourier(t, Config{MaxManifestBytes: 64 << 10})
			bundle, err := c.Export(ctx, t.TempDir(), items, b.open, nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, bundle.Dir)
			sink := &countingSink{Sink: FolderSink{Dir: t.TempDir()}}
			seen := &memSeen{}
			done := make(chan struct{})
			var rep Report
			go func() {
				defer close(done)
				rep, err = c.Deliver(ctx, bundle.Dir, sink, seen, nil)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Deliver blocked")
			}
			var be *BundleError
			if !errors.As(err, &be) || be.Code != tt.code {
				t.Fatalf("got %v, want code %s", err, tt.code)
			}
			if !strings.HasPrefix(be.Error(), "lot refusé") || !strings.HasPrefix(be.English(), "bundle refused") {
				t.Errorf("texts %q / %q: want French then English refusals", be.Error(), be.English())
			}
			if sink.stats+sink.puts != 0 || len(seen.keys) != 0 || rep.Delivered != 0 {
				t.Errorf("%d stats, %d puts, %d marks from a refused bundle; want none", sink.stats, sink.puts, len(seen.keys))
			}
			if _, err := c.Verify(ctx, bundle.Dir, nil); err == nil {
				t.Error("Verify accepted the damaged bundle")
			}
		})
	}

	t.Run("bundle folder is a symlink", func(t *testing.T) {
		c := newCourier(t, Config{})
		bundle, err := c.Export(ctx, t.TempDir(), items, b.open, nil)
		if err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(t.TempDir(), "link")
		symlink(t, bundle.Dir, link)
		var be *BundleError
		if _, err := c.Verify(ctx, link, nil); !errors.As(err, &be) || be.Code != CodeSymlink {
			t.Errorf("got %v, want %s", err, CodeSymlink)
		}
	})
	t.Run("dot files from desktops are ignored", func(t *testing.T) {
		c := newCourier(t, Config{})
		bundle, err := c.Export(ctx, t.TempDir(), items, b.open, nil)
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(bundle.Dir, ".DS_Store"), []byte("x"))
		write(t, filepath.Join(bundle.Dir, FilesDir, "._"+items[0].SHA256), []byte("x"))
		if _, err := c.Verify(ctx, bundle.Dir, nil); err != nil {
			t.Errorf("got %v, want the bundle accepted", err)
		}
	})
}

// TestDeliverChangedAfterVerify swaps a file's bytes between verification
// and sending: the sink's last read fails and nothing is published.
func TestDeliverChangedAfterVerify(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	items := sampleItems(t, b, 3, 32<<10, 4)[2:]
	c := newCourier(t, Config{})
	bundle, err := c.Export(ctx, t.TempDir(), items, b.open, nil)
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	sink := &countingSink{Sink: FolderSink{Dir: dest}, beforePut: func(it Item) {
		flipByte(t, filepath.Join(bundle.Dir, FilesDir, it.SHA256))
	}}
	seen := &memSeen{}
	rep, err := c.Deliver(ctx, bundle.Dir, sink, seen, nil)
	var be *BundleError
	if !errors.As(err, &be) || be.Code != CodeChanged {
		t.Fatalf("got %v, want %s", err, CodeChanged)
	}
	if len(rep.Failed) != 1 || len(seen.keys) != 0 {
		t.Errorf("report %+v, marks %v: want one failure, no mark", rep, seen.keys)
	}
	if got := delivered(t, dest); len(got) != 0 {
		t.Errorf("destination holds %v, want nothing", got)
	}
}

// TestDeliverConflict: a different file already holds an item's name at
// the destination. It is not overwritten; the other items are delivered.
func TestDeliverConflict(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	items := sampleItems(t, b, 4, 8<<10, 5)
	c := newCourier(t, Config{})
	bundle, err := c.Export(ctx, t.TempDir(), items, b.open, nil)
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	theirs := filepath.Join(dest, items[3].Destination, filepath.FromSlash(items[3].RemotePath))
	if err := os.MkdirAll(filepath.Dir(theirs), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, theirs, []byte("a teacher's own file"))
	seen := &memSeen{}
	rep, err := c.Deliver(ctx, bundle.Dir, FolderSink{Dir: dest}, seen, nil)
	var be *BundleError
	if !errors.As(err, &be) || be.Code != CodeConflict || be.Path != items[3].RemotePath {
		t.Fatalf("got %v, want %s on %s", err, CodeConflict, items[3].RemotePath)
	}
	if rep.Delivered != 3 || len(rep.Failed) != 1 || seen.keys[items[3].Key] {
		t.Errorf("report %+v: want 3 delivered, 1 failed and unmarked", rep)
	}
	if data, _ := os.ReadFile(theirs); string(data) != "a teacher's own file" {
		t.Errorf("the existing file was overwritten: %q", data)
	}
}

// TestDeliverMarkFails: the file reached the destination but the Seen
// record failed (power cut between the two). The next run finds the file
// and does not send it again.
func TestDeliverMarkFails(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	items := sampleItems(t, b, 2, 8<<10, 6)
	c := newCourier(t, Config{})
	bundle, err := c.Export(ctx, t.TempDir(), items, b.open, nil)
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	sink := &countingSink{Sink: FolderSink{Dir: dest}}
	seen := &memSeen{failMark: 1}
	if _, err := c.Deliver(ctx, bundle.Dir, sink, seen, nil); err == nil {
		t.Fatal("first delivery succeeded despite the failing mark")
	}
	rep, err := c.Deliver(ctx, bundle.Dir, sink, seen, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sink.puts != 2 || rep.Present != 1 || rep.Skipped != 1 {
		t.Errorf("%d puts, second report %+v; want 2 puts in all, 1 present, 1 skipped", sink.puts, rep)
	}
	if d := diffMaps(delivered(t, dest), wantDelivered(items)); d != "" {
		t.Errorf("destination:\n%s", d)
	}
}

func TestSinkErrorsDoNotStopOthers(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	items := sampleItems(t, b, 3, 8<<10, 8)
	c := newCourier(t, Config{})
	bundle, err := c.Export(ctx, t.TempDir(), items, b.open, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := &countingSink{Sink: FolderSink{Dir: t.TempDir()}, putFailure: errors.New("503 service unavailable")}
	seen := &memSeen{}
	rep, err := c.Deliver(ctx, bundle.Dir, sink, seen, nil)
	if err == nil || len(rep.Failed) != 3 || sink.puts != 3 || len(seen.keys) != 0 {
		t.Errorf("got %v, %+v, %d puts, %d marks; want 3 failures, 3 tries, no mark", err, rep, sink.puts, len(seen.keys))
	}
}

func TestSeenStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := NewSeenStore(openDB(t, dir), nil)
	for _, k := range []string{"a", "b", "a"} {
		if err := s.Mark(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	// A second handle sees what the first wrote (another boot of the box).
	s2 := NewSeenStore(openDB(t, dir), nil)
	tests := []struct {
		key  string
		want bool
	}{{"a", true}, {"b", true}, {"c", false}, {"", false}}
	for _, tt := range tests {
		got, err := s2.Seen(ctx, tt.key)
		if err != nil || got != tt.want {
			t.Errorf("Seen(%q) = %v, %v; want %v", tt.key, got, err, tt.want)
		}
	}
}

func write(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, p string, size int64) {
	t.Helper()
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 {
		t.Fatalf("%s is empty", p)
	}
	data[len(data)/2] ^= 0xff
	write(t, p, data)
}

// readAtSink reads bodies at offsets, like a chunked WebDAV upload.
type readAtSink struct{ FolderSink }

func (s readAtSink) Put(ctx context.Context, it Item, body io.Reader) error {
	return s.FolderSink.Put(ctx, it, io.NewSectionReader(body.(io.ReaderAt), 0, it.Size))
}

// TestDeliverReadAtSink: a connector reading at offsets delivers too, and
// a file changed on the key during such a send is caught after it and not
// marked as delivered.
func TestDeliverReadAtSink(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	items := sampleItems(t, b, 3, 300<<10, 11)
	c := newCourier(t, Config{})
	bundle, err := c.Export(ctx, t.TempDir(), items, b.open, nil)
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	var last, total int64
	rep, err := c.Deliver(ctx, bundle.Dir, readAtSink{FolderSink{Dir: dest}}, &memSeen{}, func(d, tot int64) { last, total = d, tot })
	if err != nil || rep.Delivered != 3 {
		t.Fatalf("got %+v, %v; want 3 delivered", rep, err)
	}
	if last != total {
		t.Errorf("progress ended at %d/%d", last, total)
	}
	if d := diffMaps(delivered(t, dest), wantDelivered(items)); d != "" {
		t.Errorf("destination:\n%s", d)
	}

	// Items 0 and 1 share a file: one damage fails both.
	changing := &countingSink{Sink: readAtSink{FolderSink{Dir: t.TempDir()}}, beforePut: func(it Item) {
		if it.Key == items[0].Key {
			flipByte(t, filepath.Join(bundle.Dir, FilesDir, it.SHA256))
		}
	}}
	seen := &memSeen{}
	rep, err = c.Deliver(ctx, bundle.Dir, changing, seen, nil)
	var be *BundleError
	if !errors.As(err, &be) || be.Code != CodeChanged || len(rep.Failed) != 2 || len(seen.keys) != 1 || !seen.keys[items[2].Key] {
		t.Errorf("got %v, %+v with marks %v; want %s for the two items of the changed file, only the third marked", err, rep, seen.keys, CodeChanged)
	}
}
