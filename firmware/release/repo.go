package release

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"preau/firmware/internal/tufclient"
)

// expiries are how long each role's metadata stays valid after signing.
type expiries struct {
	Root, Targets, Snapshot, Timestamp time.Duration
}

// defaultExpiries: a timestamp must be re-signed (preau release publish,
// from cron) at least weekly, or boxes refuse the repository as frozen.
var defaultExpiries = expiries{
	Root:      365 * 24 * time.Hour,
	Targets:   365 * 24 * time.Hour,
	Snapshot:  30 * 24 * time.Hour,
	Timestamp: 7 * 24 * time.Hour,
}

// repo is a static TUF repository with consistent snapshots on disk:
//
//	metadata/N.root.json, root.json (a copy of the newest)
//	metadata/N.targets.json, N.snapshot.json, timestamp.json
//	targets/<channel>/<arch>/<sha256>.release.json
//	targets/<channel>/<arch>/<version>/<sha256>.<part>.img
type repo struct {
	dir string
	now func() time.Time
	exp expiries
}

func (r *repo) meta(name string) string { return filepath.Join(r.dir, "metadata", name) }

// latest returns the highest N of metadata/N.<role>.json (0 if none).
func (r *repo) latest(role string) (int64, error) {
	des, err := os.ReadDir(filepath.Join(r.dir, "metadata"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var best int64
	for _, de := range des {
		v, ok := strings.CutSuffix(de.Name(), "."+role+".json")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > best {
			best = n
		}
	}
	return best, nil
}

func loadMeta[T metadata.Roles](r *repo, name string, m *metadata.Metadata[T]) (*metadata.Metadata[T], []byte, error) {
	b, err := os.ReadFile(r.meta(name))
	if err != nil {
		return nil, nil, err
	}
	md, err := m.FromBytes(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return md, b, nil
}

// writeAtomic writes a file through a temporary one, synced and renamed.
func writeAtomic(path string, data []byte, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
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
	return os.Rename(tmp, path)
}

func signAndWrite[T metadata.Roles](m *metadata.Metadata[T], keyDirs []string, role string, paths ...string) ([]byte, error) {
	m.ClearSignatures()
	for _, dir := range keyDirs {
		sk, err := loadPrivate(dir, role)
		if err != nil {
			return nil, err
		}
		s, err := signer(sk)
		if err != nil {
			return nil, err
		}
		if _, err := m.Sign(s); err != nil {
			return nil, fmt.Errorf("sign %s: %w", role, err)
		}
	}
	b, err := m.ToBytes(true)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		if err := writeAtomic(p, b, 0o644); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// initRepo creates version 1 of every role with the keys in keyDir.
func (r *repo) init(keyDir string) error {
	if _, err := os.Stat(r.meta("1.root.json")); err == nil {
		return fmt.Errorf("init: %s already holds a repository", r.dir)
	}
	now := r.now().UTC()
	root := metadata.Root(now.Add(r.exp.Root))
	root.Signed.ConsistentSnapshot = true
	for _, role := range topRoles {
		pk, err := loadPublic(keyDir, role)
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		k, _, err := tufKey(pk)
		if err != nil {
			return err
		}
		if err := root.Signed.AddKey(k, role); err != nil {
			return err
		}
	}
	if _, err := signAndWrite(root, []string{keyDir}, "root", r.meta("1.root.json"), r.meta("root.json")); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	targets := metadata.Targets(now.Add(r.exp.Targets))
	if _, err := signAndWrite(targets, []string{keyDir}, "targets", r.meta("1.targets.json")); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(r.dir, "targets"), 0o755); err != nil {
		return err
	}
	return r.publish(keyDir, keyDir)
}

// publish signs a new snapshot of the newest targets and a new timestamp
// of that snapshot; the timestamp is written last.
func (r *repo) publish(snapshotKeys, timestampKeys string) error {
	tv, err := r.latest("targets")
	if err != nil || tv == 0 {
		return fmt.Errorf("publish: no targets metadata in %s (run preau release init)", r.dir)
	}
	tdata, err := os.ReadFile(r.meta(fmt.Sprintf("%d.targets.json", tv)))
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	sv, err := r.latest("snapshot")
	if err != nil {
		return err
	}
	now := r.now().UTC()
	snap := metadata.Snapshot(now.Add(r.exp.Snapshot))
	snap.Signed.Version = sv + 1
	snap.Signed.Meta["targets.json"] = metaFile(tv, tdata)
	sdata, err := signAndWrite(snap, []string{snapshotKeys}, "snapshot", r.meta(fmt.Sprintf("%d.snapshot.json", sv+1)))
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	var tsv int64
	if ts, _, err := loadMeta(r, "timestamp.json", metadata.Timestamp()); err == nil {
		tsv = ts.Signed.Version
	}
	ts := metadata.Timestamp(now.Add(r.exp.Timestamp))
	ts.Signed.Version = tsv + 1
	ts.Signed.Meta["snapshot.json"] = metaFile(sv+1, sdata)
	if _, err := signAndWrite(ts, []string{timestampKeys}, "timestamp", r.meta("timestamp.json")); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

func metaFile(version int64, data []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(data)
	return &metadata.MetaFiles{Version: version, Length: int64(len(data)), Hashes: metadata.Hashes{"sha256": sum[:]}}
}

// partFile is one file of a release: a part for both slots (Slot "") or
// for one slot.
type partFile struct {
	Name string
	Slot string
	Path string
}

// releaseSpec is a release to sign.
type releaseSpec struct {
	Version, Channel, Arch string
	Created                time.Time
	Parts                  []partFile
	NotesFR, NotesEN       string
}

// addRelease copies the parts into targets/ (hashing them on the way),
// writes the release manifest, signs a new targets version listing them
// and publishes.
func (r *repo) addRelease(keyDir string, spec releaseSpec, hashing func(name string, size int64) io.Writer) (tufclient.Manifest, error) {
	m := tufclient.Manifest{
		Format: tufclient.ManifestFormat, Version: spec.Version, Channel: spec.Channel, Arch: spec.Arch,
		Created: spec.Created.UTC().Truncate(time.Second),
	}
	if spec.NotesFR != "" || spec.NotesEN != "" {
		m.Notes = map[string]string{}
		if spec.NotesFR != "" {
			m.Notes["fr"] = spec.NotesFR
		}
		if spec.NotesEN != "" {
			m.Notes["en"] = spec.NotesEN
		}
	}
	tv, err := r.latest("targets")
	if err != nil || tv == 0 {
		return m, fmt.Errorf("sign: no targets metadata in %s (run preau release init)", r.dir)
	}
	targets, _, err := loadMeta(r, fmt.Sprintf("%d.targets.json", tv), metadata.Targets())
	if err != nil {
		return m, fmt.Errorf("sign: %w", err)
	}
	byName := map[string]*tufclient.ManifestPart{}
	var order []string
	for _, pf := range spec.Parts {
		base := pf.Name + ".img"
		if pf.Slot != "" {
			base = pf.Name + "-" + pf.Slot + ".img"
		}
		target := spec.Channel + "/" + spec.Arch + "/" + spec.Version + "/" + base
		tf, err := r.storeTarget(target, pf.Path, hashing)
		if err != nil {
			return m, fmt.Errorf("sign: %w", err)
		}
		targets.Signed.Targets[target] = tf
		mp, ok := byName[pf.Name]
		if !ok {
			mp = &tufclient.ManifestPart{Name: pf.Name}
			byName[pf.Name] = mp
			order = append(order, pf.Name)
		}
		if pf.Slot == "" {
			mp.Target = target
		} else {
			if mp.Slots == nil {
				mp.Slots = map[string]string{}
			}
			mp.Slots[pf.Slot] = target
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i] == "root" && order[j] != "root" })
	for _, name := range order {
		m.Parts = append(m.Parts, *byName[name])
	}
	if err := m.Check(); err != nil {
		return m, fmt.Errorf("sign: %w", err)
	}
	mdata, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	mpath := tufclient.ManifestPath(spec.Channel, spec.Arch)
	sum := sha256.Sum256(mdata)
	if err := writeAtomic(filepath.Join(r.dir, "targets", filepath.FromSlash(tufclient.HashedPath(mpath, hex.EncodeToString(sum[:])))), mdata, 0o644); err != nil {
		return m, err
	}
	targets.Signed.Targets[mpath] = &metadata.TargetFiles{Length: int64(len(mdata)), Hashes: metadata.Hashes{"sha256": sum[:]}}
	targets.Signed.Version = tv + 1
	targets.Signed.Expires = r.now().UTC().Add(r.exp.Targets)
	if _, err := signAndWrite(targets, []string{keyDir}, "targets", r.meta(fmt.Sprintf("%d.targets.json", tv+1))); err != nil {
		return m, fmt.Errorf("sign: %w", err)
	}
	return m, r.publish(keyDir, keyDir)
}

// storeTarget copies src to its hash-prefixed place under targets/,
// hashing it in one pass (never the whole file in memory).
func (r *repo) storeTarget(target, src string, hashing func(string, int64) io.Writer) (*metadata.TargetFiles, error) {
	if err := tufclient.CheckTargetPath(target); err != nil {
		return nil, err
	}
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() == 0 {
		return nil, fmt.Errorf("%s: want a non-empty regular file", src)
	}
	dir := filepath.Join(r.dir, "targets", filepath.FromSlash(target[:strings.LastIndexByte(target, '/')]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".upload-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	w := io.MultiWriter(tmp, h)
	if hashing != nil {
		if bar := hashing(filepath.Base(src), fi.Size()); bar != nil {
			w = io.MultiWriter(tmp, h, bar)
		}
	}
	n, err := io.Copy(w, in)
	if err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	sum := h.Sum(nil)
	dst := filepath.Join(r.dir, "targets", filepath.FromSlash(tufclient.HashedPath(target, hex.EncodeToString(sum))))
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return nil, err
	}
	return &metadata.TargetFiles{Length: n, Hashes: metadata.Hashes{"sha256": sum}}, nil
}

// rotate replaces the keys of roles with the ones in newDir: a new root
// version signed by the old root key and, if root is rotated, the new
// one; then targets (if rotated) are re-signed and everything published
// with the keys now trusted.
func (r *repo) rotate(keyDir, newDir string, roles []string) (int64, error) {
	rv, err := r.latest("root")
	if err != nil || rv == 0 {
		return 0, fmt.Errorf("rotate: no root metadata in %s", r.dir)
	}
	root, _, err := loadMeta(r, fmt.Sprintf("%d.root.json", rv), metadata.Root())
	if err != nil {
		return 0, fmt.Errorf("rotate: %w", err)
	}
	rotated := map[string]bool{}
	for _, role := range roles {
		pk, err := loadPublic(newDir, role)
		if err != nil {
			return 0, fmt.Errorf("rotate: %w", err)
		}
		k, id, err := tufKey(pk)
		if err != nil {
			return 0, err
		}
		old := append([]string(nil), root.Signed.Roles[role].KeyIDs...)
		if err := root.Signed.AddKey(k, role); err != nil {
			return 0, fmt.Errorf("rotate: %w", err)
		}
		for _, oid := range old {
			if oid != id {
				if err := root.Signed.RevokeKey(oid, role); err != nil {
					return 0, fmt.Errorf("rotate: %w", err)
				}
			}
		}
		rotated[role] = true
	}
	root.Signed.Version = rv + 1
	root.Signed.Expires = r.now().UTC().Add(r.exp.Root)
	signers := []string{keyDir}
	if rotated["root"] && filepath.Clean(newDir) != filepath.Clean(keyDir) {
		signers = append(signers, newDir)
	}
	if _, err := signAndWrite(root, signers, "root", r.meta(fmt.Sprintf("%d.root.json", rv+1)), r.meta("root.json")); err != nil {
		return 0, fmt.Errorf("rotate: %w", err)
	}
	dirOf := func(role string) string {
		if rotated[role] {
			return newDir
		}
		return keyDir
	}
	if rotated["targets"] {
		tv, _ := r.latest("targets")
		targets, _, err := loadMeta(r, fmt.Sprintf("%d.targets.json", tv), metadata.Targets())
		if err != nil {
			return 0, fmt.Errorf("rotate: %w", err)
		}
		targets.Signed.Version = tv + 1
		targets.Signed.Expires = r.now().UTC().Add(r.exp.Targets)
		if _, err := signAndWrite(targets, []string{newDir}, "targets", r.meta(fmt.Sprintf("%d.targets.json", tv+1))); err != nil {
			return 0, fmt.Errorf("rotate: %w", err)
		}
	}
	return rv + 1, r.publish(dirOf("snapshot"), dirOf("timestamp"))
}

// bundle copies what a box needs to verify and install the current
// release of channel/arch into out (a folder, or a .tar when out ends in
// .tar): every root, the timestamp, the snapshot and targets it names,
// the release manifest and its parts.
func (r *repo) bundle(channel, arch, out string) ([]string, error) {
	ts, _, err := loadMeta(r, "timestamp.json", metadata.Timestamp())
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	sv := ts.Signed.Meta["snapshot.json"].Version
	snap, _, err := loadMeta(r, fmt.Sprintf("%d.snapshot.json", sv), metadata.Snapshot())
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	tv := snap.Signed.Meta["targets.json"].Version
	targets, _, err := loadMeta(r, fmt.Sprintf("%d.targets.json", tv), metadata.Targets())
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	files := []string{"metadata/timestamp.json", fmt.Sprintf("metadata/%d.snapshot.json", sv), fmt.Sprintf("metadata/%d.targets.json", tv), "metadata/root.json"}
	rv, _ := r.latest("root")
	for v := int64(1); v <= rv; v++ {
		files = append(files, fmt.Sprintf("metadata/%d.root.json", v))
	}
	mpath := tufclient.ManifestPath(channel, arch)
	tf, ok := targets.Signed.Targets[mpath]
	if !ok {
		return nil, fmt.Errorf("bundle: no release for %s/%s in %s", channel, arch, r.dir)
	}
	mrel := "targets/" + tufclient.HashedPath(mpath, hex.EncodeToString(tf.Hashes["sha256"]))
	files = append(files, mrel)
	mdata, err := os.ReadFile(filepath.Join(r.dir, filepath.FromSlash(mrel)))
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	m, err := tufclient.ParseManifest(mdata)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	for _, p := range m.Parts {
		for _, t := range []string{p.Target, p.Slots["a"], p.Slots["b"]} {
			if t == "" {
				continue
			}
			ptf, ok := targets.Signed.Targets[t]
			if !ok {
				return nil, fmt.Errorf("bundle: target %s missing from targets metadata", t)
			}
			files = append(files, "targets/"+tufclient.HashedPath(t, hex.EncodeToString(ptf.Hashes["sha256"])))
		}
	}
	if strings.HasSuffix(out, ".tar") {
		return files, writeTar(r.dir, files, out)
	}
	for _, f := range files {
		if err := copyFile(filepath.Join(r.dir, filepath.FromSlash(f)), filepath.Join(out, filepath.FromSlash(f))); err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
	}
	return files, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
