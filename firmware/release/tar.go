package release

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
)

// writeTar writes files (paths relative to root, slash-separated) into an
// uncompressed tar at out, under a top folder "preau-update/". Images are
// already compressed file systems; a plain tar lets the box read a part
// in place.
func writeTar(root string, files []string, out string) error {
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(out + ".tmp")
	tw := tar.NewWriter(f)
	for _, name := range files {
		in, err := os.Open(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil {
			f.Close()
			return err
		}
		fi, err := in.Stat()
		if err != nil {
			in.Close()
			f.Close()
			return err
		}
		h := &tar.Header{Name: "preau-update/" + name, Mode: 0o644, Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			in.Close()
			f.Close()
			return err
		}
		if _, err := io.Copy(tw, in); err != nil {
			in.Close()
			f.Close()
			return err
		}
		in.Close()
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}
