package powercut

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCut(t *testing.T) {
	root := t.TempDir()
	j := filepath.Join(root, "journal")
	d := filepath.Join(root, "data")
	os.MkdirAll(d, 0o755)
	os.WriteFile(filepath.Join(d, "old"), []byte("0123456789"), 0o644)
	p, err := New(j)
	if err != nil {
		t.Fatal(err)
	}
	// 1. a new file never synced: its name is durable (the directory is
	// synced below for another file), its data is not.
	f, _ := p.OpenFile(filepath.Join(d, "lost"), os.O_WRONLY|os.O_CREATE, 0o644)
	f.Write([]byte("lost"))
	f.Close()
	// 2. the atomic pattern survives.
	f, _ = p.OpenFile(filepath.Join(d, ".kept.tmp"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	f.Write([]byte("kept"))
	f.Sync()
	f.Close()
	p.Rename(filepath.Join(d, ".kept.tmp"), filepath.Join(d, "kept"))
	p.SyncDir(d)
	// 3. renamed and dir synced, but data never synced: empty file.
	f, _ = p.OpenFile(filepath.Join(d, ".empty.tmp"), os.O_WRONLY|os.O_CREATE, 0o644)
	f.Write([]byte("data"))
	f.Close()
	p.Rename(filepath.Join(d, ".empty.tmp"), filepath.Join(d, "empty"))
	p.SyncDir(d)
	// 4. synced writes stay, later unsynced ones go.
	f, _ = p.OpenFile(filepath.Join(d, "old"), os.O_RDWR, 0)
	f.WriteAt([]byte("AB"), 0)
	f.Sync()
	f.WriteAt([]byte("CDEFGHIJKLMN"), 2)
	f.Close()
	// 5. a rename not followed by a directory sync is undone.
	f, _ = p.OpenFile(filepath.Join(d, "moved"), os.O_WRONLY|os.O_CREATE, 0o644)
	f.Write([]byte("m"))
	f.Sync()
	f.Close()
	p.SyncDir(d)
	p.Rename(filepath.Join(d, "moved"), filepath.Join(d, "moved2"))
	p.Close()

	if err := Cut(j); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"lost": "", "kept": "kept", "empty": "", "old": "AB23456789", "moved": "m"}
	for name, content := range want {
		b, err := os.ReadFile(filepath.Join(d, name))
		if err != nil || string(b) != content {
			t.Errorf("%s = %q, %v; want %q", name, b, err, content)
		}
	}
	for _, name := range []string{"moved2", ".kept.tmp", ".empty.tmp"} {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			t.Errorf("%s survived the cut", name)
		}
	}
}
