package content

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/klauspost/compress/zstd"
)

// Decompression limits: zstd frames may not ask for a window (and so a
// buffer) larger than this; `zstd --long` up to 26 and every level up to 22
// with default parameters fit.
const (
	zstdMaxWindow = 64 << 20
	zstdMaxMemory = 256 << 20
)

// tarOverhead bounds the bytes a tar stream of files entries spends on
// headers, long-name records, folders and padding.
func tarOverhead(files int, manifestBytes int64) int64 {
	return 4<<20 + 8<<10*int64(files) + manifestBytes
}

// Import imports the pack at source: a folder, a .tar, .tar.zst or .tar.gz
// file (recognised by content, not name) or an http(s) URL fetched through
// the Doer. It verifies every byte it stores, resumes an interrupted import
// without copying again the blobs already stored, and makes the pack
// visible in one transaction. A refused pack is a *PackError.
func (s *Store) Import(ctx context.Context, source string, progress func(Progress)) (PackInfo, error) {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	lower := strings.ToLower(source)
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		path, err := s.download(ctx, source, progress)
		if err != nil {
			var pe *PackError
			if errors.As(err, &pe) {
				s.removeDownload(source)
			}
			return PackInfo{}, err
		}
		info, err := s.importPath(ctx, path, progress)
		var pe *PackError
		if err == nil || errors.As(err, &pe) {
			// Done or refused: the download is of no more use. Kept otherwise,
			// so that a retry does not fetch it again.
			s.removeDownload(source)
		}
		return info, err
	}
	return s.importPath(ctx, source, progress)
}

// packSource is one way of reading a pack.
type packSource interface {
	// readManifest returns the manifest's bytes.
	readManifest(ctx context.Context) ([]byte, error)
	// store checks every entry against m and writes the missing blobs.
	store(ctx context.Context, imp *importer) error
	close()
}

// importer holds the state of one import.
type importer struct {
	s       *Store
	m       *manifest
	c       *copier
	created map[string]bool // blobs written by this import
	seen    map[string]bool // paths met in the source
}

func (s *Store) importPath(ctx context.Context, source string, progress func(Progress)) (PackInfo, error) {
	src, err := s.openSource(source)
	if err != nil {
		return PackInfo{}, err
	}
	defer src.close()
	data, err := src.readManifest(ctx)
	if err != nil {
		return PackInfo{}, err
	}
	m, err := parseManifest(data, s.cfg)
	if err != nil {
		return PackInfo{}, err
	}
	sum := sha256.Sum256(data)
	manifestHash := hex.EncodeToString(sum[:])

	var oldVersion, oldHash string
	err = s.db.QueryRowContext(ctx, "SELECT version, manifest_sha256 FROM content_packs WHERE id = ?", m.ID).Scan(&oldVersion, &oldHash)
	switch {
	case errors.Is(err, errNoRows):
	case err != nil:
		return PackInfo{}, fmt.Errorf("import pack %s: %w", m.ID, err)
	case oldVersion == m.Version && oldHash == manifestHash:
		info, err := s.pack(ctx, m.ID)
		info.AlreadyPresent = true
		return info, err
	}

	res, err := s.reserveSpace(ctx, m)
	if err != nil {
		return PackInfo{}, err
	}
	defer s.unreserve(res)

	imp := &importer{
		s: s, m: m,
		created: make(map[string]bool),
		seen:    make(map[string]bool),
		c: &copier{
			s: s, ctx: ctx, report: progress, res: res,
			buf:   make([]byte, 256<<10),
			state: &Progress{BytesTotal: m.total, FilesTotal: len(m.order)},
		},
	}
	if err := src.store(ctx, imp); err != nil {
		var pe *PackError
		if errors.As(err, &pe) {
			s.removeUnreferenced(context.WithoutCancel(ctx), imp.created)
			s.log.Warn("pack refused", "source", source, "pack", m.ID, "code", pe.Code, "path", pe.Path, "err", pe.EN)
			return PackInfo{}, err
		}
		return PackInfo{}, fmt.Errorf("import pack %s: %w", m.ID, err)
	}
	for _, p := range m.order {
		if !imp.seen[p] {
			s.removeUnreferenced(context.WithoutCancel(ctx), imp.created)
			return PackInfo{}, refuse(CodeMissingFile, p, nil)
		}
	}

	imp.c.state.Phase, imp.c.state.File = "commit", ""
	imp.c.emit()
	bodies := s.articleBodies(m)
	importedAt := s.now()
	oldHashes, oldAt, err := s.commit(ctx, m, manifestHash, bodies, importedAt, "")
	if err != nil {
		return PackInfo{}, fmt.Errorf("import pack %s: %w", m.ID, err)
	}
	if len(oldHashes) > 0 {
		s.releaseFetchPins(context.WithoutCancel(ctx), oldHashes, oldAt)
		s.removeUnreferenced(context.WithoutCancel(ctx), oldHashes)
	}
	s.invalidateIndex()
	copied := len(imp.created)
	s.log.Info("pack imported", "pack", m.ID, "version", m.Version, "items", len(m.Items), "files", len(m.order), "copied", copied, "replaced", oldVersion)
	info, err := s.pack(ctx, m.ID)
	info.Copied = copied
	return info, err
}

// reserveSpace reserves the room the blobs of m that are not stored yet
// need. The caller holds importMu.
func (s *Store) reserveSpace(ctx context.Context, m *manifest) (*reservation, error) {
	var need int64
	counted := make(map[string]bool)
	for _, p := range m.order {
		f := m.files[p]
		if counted[f.SHA256] || s.blobExists(f.SHA256) {
			continue
		}
		counted[f.SHA256] = true
		need += f.Size
	}
	// Room within the quota and the free-space floor, evicting catalogue
	// packs (least recently served first, never pinned ones) when needed;
	// the reservation keeps it from downloads running meanwhile. Making
	// room takes spaceMu, then importMu to evict: the caller's importMu is
	// released meanwhile (lock order), and the blobs this import finds
	// missing are written whatever happened in between.
	res := s.reserve()
	s.importMu.Unlock()
	err := s.makeRoom(ctx, res, need)
	s.importMu.Lock()
	if err != nil {
		s.unreserve(res)
		var full *StoreFullError
		if errors.As(err, &full) {
			return nil, refuse(CodeDiskFull, fmt.Sprintf("%d Mo nécessaires, %d Mo libérables dans le catalogue / %d MB needed, %d MB freeable in the catalogue",
				need>>20, full.Freeable>>20, need>>20, full.Freeable>>20), err)
		}
		return nil, fmt.Errorf("import pack %s: %w", m.ID, err)
	}
	return res, nil
}

// fileFor checks that path is a file the manifest lists and that it is met
// once, and returns its entry.
func (imp *importer) fileFor(path string) (manifestFile, error) {
	f, ok := imp.m.files[path]
	if !ok {
		return f, refuse(CodeUnlistedFile, path, nil)
	}
	if imp.seen[path] {
		return f, refuse(CodeDuplicateEntry, path, nil)
	}
	imp.seen[path] = true
	return f, nil
}

func checkSize(f manifestFile, size int64) error {
	switch {
	case size > f.Size:
		return refuse(CodeFileTooLarge, f.Path, fmt.Errorf("%d bytes, manifest says %d", size, f.Size))
	case size < f.Size:
		return refuse(CodeSizeMismatch, f.Path, fmt.Errorf("%d bytes, manifest says %d", size, f.Size))
	}
	return nil
}

// store writes r into the blob of f unless it is already stored; skip is
// called instead when it is.
func (imp *importer) storeBlob(f manifestFile, open func() (io.Reader, error), checkLonger bool) error {
	st := imp.c.state
	st.File = f.Path
	if imp.s.blobExists(f.SHA256) {
		st.Phase = "verify"
		st.BytesDone += f.Size
		st.FilesDone++
		imp.c.emit()
		return nil
	}
	st.Phase = "copy"
	r, err := open()
	if err != nil {
		return err
	}
	if err := imp.c.writeBlob(r, f, checkLonger); err != nil {
		return err
	}
	imp.created[f.SHA256] = true
	st.FilesDone++
	imp.c.emit()
	return nil
}

func (s *Store) openSource(source string) (packSource, error) {
	fi, err := os.Stat(source)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, refuse(CodeBadSource, source+" : introuvable / not found", err)
		}
		return nil, fmt.Errorf("import %s: %w", source, err)
	}
	if fi.IsDir() {
		return &folderSource{root: source, maxManifest: s.cfg.MaxManifestBytes}, nil
	}
	if !fi.Mode().IsRegular() {
		return nil, refuse(CodeBadSource, source, nil)
	}
	f, err := os.Open(source)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", source, err)
	}
	var magic [4]byte
	n, _ := io.ReadFull(f, magic[:])
	kind := "tar"
	switch {
	case n == 4 && magic == [4]byte{0x28, 0xb5, 0x2f, 0xfd}:
		kind = "zstd"
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		kind = "gzip"
	}
	return &archiveSource{f: f, kind: kind, size: fi.Size(), cfg: s.cfg}, nil
}

// folderSource reads a pack from a folder, refusing anything but plain files
// and folders.
type folderSource struct {
	root        string
	maxManifest int64
}

func (fs *folderSource) close() {}

func (fs *folderSource) readManifest(ctx context.Context) ([]byte, error) {
	f, err := openNoFollow(filepath.Join(fs.root, ManifestName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, refuse(CodeManifestMissing, "", err)
		}
		if errors.Is(err, syscall.ELOOP) {
			return nil, refuse(CodeSymlink, ManifestName, err)
		}
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	defer f.Close()
	return readManifestBytes(f, fs.maxManifest)
}

func readManifestBytes(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		var pe *PackError
		if errors.As(err, &pe) {
			return nil, pe
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, refuse(CodeTruncated, ManifestName, err)
		}
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if int64(len(data)) > max {
		return nil, refuse(CodeManifestTooLarge, fmt.Sprintf("plus de %d octets / more than %d bytes", max, max), nil)
	}
	return data, nil
}

// openNoFollow opens a regular file without following a final symlink and
// without blocking on a fifo.
func openNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, errNotRegular)
	}
	return f, nil
}

var errNotRegular = errors.New("not a regular file")

func (fs *folderSource) store(ctx context.Context, imp *importer) error {
	// Check the whole tree before copying a byte: walking is cheap.
	sizes := make(map[string]int64)
	err := filepath.WalkDir(fs.root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == fs.root {
			return nil
		}
		rel, err := filepath.Rel(fs.root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !ValidPath(rel) {
			return refuse(CodeBadPath, rel, nil)
		}
		t := d.Type()
		switch {
		case t&os.ModeSymlink != 0:
			return refuse(CodeSymlink, rel, nil)
		case t.IsDir():
			if _, ok := imp.m.files[rel]; ok {
				return refuse(CodeNotAFile, rel, nil)
			}
			return nil
		case !t.IsRegular():
			return refuse(CodeSpecialFile, rel, nil)
		}
		if rel == ManifestName {
			return nil
		}
		f, err := imp.fileFor(rel)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if err := checkSize(f, fi.Size()); err != nil {
			return err
		}
		sizes[rel] = fi.Size()
		return nil
	})
	if err != nil {
		var pe *PackError
		if errors.As(err, &pe) {
			return pe
		}
		return fmt.Errorf("walk %s: %w", fs.root, err)
	}
	for _, p := range imp.m.order {
		if !imp.seen[p] {
			return refuse(CodeMissingFile, p, nil)
		}
	}
	for _, p := range imp.m.order {
		f := imp.m.files[p]
		var file *os.File
		err := imp.storeBlob(f, func() (io.Reader, error) {
			var err error
			file, err = openNoFollow(filepath.Join(fs.root, filepath.FromSlash(p)))
			switch {
			case errors.Is(err, syscall.ELOOP):
				return nil, refuse(CodeSymlink, p, err)
			case errors.Is(err, errNotRegular):
				return nil, refuse(CodeSpecialFile, p, err)
			case errors.Is(err, os.ErrNotExist):
				return nil, refuse(CodeMissingFile, p, err)
			case err != nil:
				return nil, fmt.Errorf("open %s: %w", p, err)
			}
			return file, nil
		}, true)
		if file != nil {
			file.Close()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// archiveSource reads a tar, possibly compressed.
type archiveSource struct {
	f    *os.File
	kind string // tar, zstd, gzip
	size int64
	cfg  Config

	// After readManifest: the stream positioned after the manifest when it
	// was the archive's first file, so that the import goes on in one pass.
	tr        *tar.Reader
	dirs      []string // folders met before the manifest
	closeFn   func()
	cap       *capReader // the decompressed stream's limit
	firstFile bool
}

func (a *archiveSource) close() {
	if a.closeFn != nil {
		a.closeFn()
	}
	a.f.Close()
}

// stream opens the tar stream from the start of the file, with at most
// limit bytes of decompressed data.
func (a *archiveSource) stream(limit int64) (*tar.Reader, error) {
	if a.closeFn != nil {
		a.closeFn()
		a.closeFn = nil
	}
	if _, err := a.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind archive: %w", err)
	}
	switch a.kind {
	case "zstd":
		d, err := zstd.NewReader(bufio.NewReaderSize(a.f, 64<<10),
			zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(zstdMaxMemory))
		if err != nil {
			return nil, refuse(CodeBadArchive, "zstd : "+err.Error(), err)
		}
		a.closeFn = d.Close
		a.cap = &capReader{r: d, left: limit}
		return tar.NewReader(a.cap), nil
	case "gzip":
		g, err := gzip.NewReader(bufio.NewReaderSize(a.f, 64<<10))
		if err != nil {
			return nil, refuse(CodeBadArchive, "gzip : "+err.Error(), err)
		}
		a.closeFn = func() { g.Close() }
		a.cap = &capReader{r: g, left: limit}
		return tar.NewReader(a.cap), nil
	default:
		// The *os.File itself, so that tar seeks over entries it skips; the
		// file's size bounds what is read.
		a.cap = nil
		return tar.NewReader(a.f), nil
	}
}

// capReader fails once more than left bytes were read: a decompression bomb.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, refuse(CodeBomb, "limite de décompression atteinte / decompression limit reached", nil)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// entryName returns the pack path of a tar entry: "./" prefixes and a
// folder's trailing slash removed. root reports the archive's root folder.
func entryName(name string) (path string, root bool) {
	for strings.HasPrefix(name, "./") {
		name = name[2:]
	}
	if name == "." || name == "" {
		return "", true
	}
	return strings.TrimSuffix(name, "/"), false
}

func tarError(err error, last string) error {
	var pe *PackError
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		if last == "" {
			last = "archive"
		}
		return refuse(CodeTruncated, last, err)
	}
	return refuse(CodeBadArchive, err.Error(), err)
}

func (a *archiveSource) readManifest(ctx context.Context) ([]byte, error) {
	limit := a.cfg.MaxPackBytes + tarOverhead(a.cfg.MaxFiles, a.cfg.MaxManifestBytes)
	tr, err := a.stream(limit)
	if err != nil {
		return nil, err
	}
	first := true
	var dirs []string
	last := ""
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, refuse(CodeManifestMissing, "", nil)
		}
		if err != nil {
			return nil, tarError(err, last)
		}
		name, root := entryName(hdr.Name)
		last = name
		if root || hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, name)
			continue
		}
		if name != ManifestName {
			first = false
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
		case tar.TypeSymlink:
			return nil, refuse(CodeSymlink, name, nil)
		case tar.TypeLink:
			return nil, refuse(CodeHardlink, name, nil)
		default:
			return nil, refuse(CodeSpecialFile, name, nil)
		}
		if hdr.Size > a.cfg.MaxManifestBytes {
			return nil, refuse(CodeManifestTooLarge, fmt.Sprintf("%d octets / %d bytes", hdr.Size, hdr.Size), nil)
		}
		data, err := readManifestBytes(tr, a.cfg.MaxManifestBytes)
		if err != nil {
			return nil, err
		}
		if int64(len(data)) != hdr.Size {
			return nil, refuse(CodeTruncated, ManifestName, nil)
		}
		if first {
			a.tr, a.dirs, a.firstFile = tr, dirs, true
		}
		return data, nil
	}
}

func (a *archiveSource) store(ctx context.Context, imp *importer) error {
	limit := imp.m.total + tarOverhead(len(imp.m.order), a.cfg.MaxManifestBytes)
	tr := a.tr
	manifestSeen := false
	if a.firstFile && a.kind != "tar" {
		// Go on after the manifest; its folders were met already.
		manifestSeen = true
		for _, d := range a.dirs {
			if err := imp.checkDir(d); err != nil {
				return err
			}
		}
		if a.cap != nil {
			a.cap.left = min(a.cap.left, limit)
		}
	} else {
		var err error
		if tr, err = a.stream(limit); err != nil {
			return err
		}
	}
	last := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return tarError(err, last)
		}
		name, root := entryName(hdr.Name)
		last = name
		if root || hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if !ValidPath(name) {
			return refuse(CodeBadPath, name, nil)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
		case tar.TypeDir:
			if err := imp.checkDir(name); err != nil {
				return err
			}
			continue
		case tar.TypeSymlink:
			return refuse(CodeSymlink, name, nil)
		case tar.TypeLink:
			return refuse(CodeHardlink, name, nil)
		default:
			return refuse(CodeSpecialFile, name, nil)
		}
		if name == ManifestName {
			if manifestSeen {
				return refuse(CodeDuplicateEntry, name, nil)
			}
			manifestSeen = true
			continue
		}
		f, err := imp.fileFor(name)
		if err != nil {
			return err
		}
		if err := checkSize(f, hdr.Size); err != nil {
			return err
		}
		if err := imp.storeBlob(f, func() (io.Reader, error) { return tr, nil }, false); err != nil {
			return err
		}
	}
}

func (imp *importer) checkDir(name string) error {
	if !ValidPath(name) {
		return refuse(CodeBadPath, name, nil)
	}
	if _, ok := imp.m.files[name]; ok {
		return refuse(CodeNotAFile, name, nil)
	}
	return nil
}

// removeUnreferenced deletes the blobs among hashes that no pack references
// and no owner pinned.
func (s *Store) removeUnreferenced(ctx context.Context, hashes map[string]bool) {
	for h := range hashes {
		var one int
		err := s.db.QueryRowContext(ctx, `SELECT 1 FROM content_files WHERE sha256 = ?1
			UNION ALL SELECT 1 FROM content_pins WHERE sha256 = ?1 LIMIT 1`, h).Scan(&one)
		if !errors.Is(err, errNoRows) {
			continue // referenced, or unknown: keep it, GC will decide
		}
		if err := os.Remove(s.blobPath(h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("remove unreferenced blob", "blob", h, "err", err)
		}
		s.repaired(ctx, h) // a damaged blob nothing needs is no longer missing
	}
}
