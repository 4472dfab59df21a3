// Package tufclient verifies releases with The Update Framework (go-tuf
// v2's updater) for the update engine: it feeds the updater the trusted
// metadata the engine keeps in SQLite, fetches through a Source (the
// repository over the WAN scheduler's HTTP client, or a bundle on a USB
// key) with size limits, sets the updater's reference time from the
// engine's clock policy, and sorts go-tuf's errors into refusals a
// technician can read. It never exports go-tuf types.
//
// Imported only by package firmware.
package tufclient

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// Size limits of metadata files.
const (
	MaxRootBytes      = 512 << 10
	MaxTimestampBytes = 16 << 10
	MaxSnapshotBytes  = 2 << 20
	MaxTargetsBytes   = 5 << 20
)

// Request is one verification.
type Request struct {
	// TrustedRoot is the newest root this box trusts: the one shipped in
	// the image or the one stored after a rotation, whichever is newer.
	TrustedRoot []byte
	// Stored is the metadata verified last time ("timestamp.json",
	// "snapshot.json", "targets.json"): rollback protection.
	Stored map[string][]byte
	Source Source
	// RefTime is the instant expiry is judged at for timestamp, snapshot
	// and targets (the engine subtracts its grace before); RootRefTime the
	// instant the final root must not be expired at.
	RefTime, RootRefTime time.Time
	// WorkDir holds the updater's scratch folder.
	WorkDir string
	// Channel and Arch name the release manifest; Slot picks per-slot
	// targets.
	Channel, Arch, Slot string
}

// Part is one verified target to write to a slot part.
type Part struct {
	Name   string
	Target string // target name
	Rel    string // path in the repository: targets/<dir>/<sha256>.<base>
	Length int64
	SHA256 string // hex
}

// Result is a verified release and the metadata to trust from now on.
type Result struct {
	Manifest Manifest
	Parts    []Part
	// Metadata is root.json, timestamp.json, snapshot.json, targets.json
	// as verified: to store, in one transaction, only after success.
	Metadata map[string][]byte
	// RootVersion is the final root's version; Expires the earliest expiry
	// of the top-level metadata.
	RootVersion int64
	Expires     time.Time
}

// go-tuf logs through a package variable; it stays the discarding one.
var tufMu sync.Mutex // the updater is not safe for concurrent use

// Verify runs the TUF client workflow and verifies the release manifest
// of req.Channel/req.Arch and the parts it lists.
func Verify(ctx context.Context, req Request) (Result, error) {
	tufMu.Lock()
	defer tufMu.Unlock()
	if err := os.MkdirAll(req.WorkDir, 0o700); err != nil {
		return Result{}, fmt.Errorf("verify release: %w", err)
	}
	tmp, err := os.MkdirTemp(req.WorkDir, "tuf-")
	if err != nil {
		return Result{}, fmt.Errorf("verify release: %w", err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range req.Stored {
		if name != "timestamp.json" && name != "snapshot.json" && name != "targets.json" {
			continue
		}
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o600); err != nil {
			return Result{}, fmt.Errorf("verify release: %w", err)
		}
	}
	f := &fetcher{ctx: ctx, src: req.Source}
	cfg, err := config.New("tuf:/metadata", req.TrustedRoot)
	if err != nil {
		return Result{}, fmt.Errorf("verify release: %w", err)
	}
	cfg.LocalMetadataDir = tmp
	cfg.LocalTargetsDir = filepath.Join(tmp, "targets")
	cfg.RemoteTargetsURL = "tuf:/targets"
	cfg.Fetcher = f
	cfg.RootMaxLength = MaxRootBytes
	cfg.TimestampMaxLength = MaxTimestampBytes
	cfg.SnapshotMaxLength = MaxSnapshotBytes
	cfg.TargetsMaxLength = MaxTargetsBytes
	cfg.MaxRootRotations = 64
	cfg.MaxDelegations = 8
	up, err := updater.New(cfg)
	if err != nil {
		return Result{}, classify(err, "root", nil)
	}
	up.UnsafeSetRefTime(req.RefTime) // the engine's clock policy, see firmware/tuf.go
	if err := up.Refresh(); err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, classify(err, f.role(), nil)
	}
	trusted := up.GetTrustedMetadataSet()
	if trusted.Root.Signed.IsExpired(req.RootRefTime) {
		return Result{}, &Refusal{Code: CodeExpired, Role: "root", Detail: fmt.Sprintf("root expired %s", trusted.Root.Signed.Expires.UTC().Format(time.RFC3339)), Expired: trusted.Root.Signed.Expires}
	}
	res := Result{RootVersion: trusted.Root.Signed.Version, Metadata: map[string][]byte{}}
	res.Expires = trusted.Root.Signed.Expires
	for _, e := range []time.Time{trusted.Timestamp.Signed.Expires, trusted.Snapshot.Signed.Expires, trusted.Targets[metadata.TARGETS].Signed.Expires} {
		if e.Before(res.Expires) {
			res.Expires = e
		}
	}

	mpath := ManifestPath(req.Channel, req.Arch)
	tf, err := targetInfo(up, mpath)
	if err != nil {
		return Result{}, err
	}
	if tf.Length > MaxManifestBytes {
		return Result{}, &Refusal{Code: CodeTooLarge, Role: "release", Detail: fmt.Sprintf("%s announces %d bytes", mpath, tf.Length)}
	}
	sum, err := sha256Of(tf)
	if err != nil {
		return Result{}, err
	}
	data, err := req.Source.Fetch(ctx, "targets/"+HashedPath(mpath, sum), tf.Length)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, classifyFetch(err, "release")
	}
	if err := tf.VerifyLengthHashes(data); err != nil {
		return Result{}, classify(err, "release", nil)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return Result{}, &Refusal{Code: CodeBadManifest, Role: "release", Detail: err.Error(), Err: err}
	}
	if m.Channel != req.Channel || m.Arch != req.Arch {
		return Result{}, &Refusal{Code: CodeBadManifest, Role: "release", Detail: fmt.Sprintf("manifest is for %s/%s, not %s/%s", m.Channel, m.Arch, req.Channel, req.Arch)}
	}
	res.Manifest = m
	for _, p := range m.Parts {
		t := p.TargetFor(req.Slot)
		ptf, err := targetInfo(up, t)
		if err != nil {
			return Result{}, err
		}
		sum, err := sha256Of(ptf)
		if err != nil {
			return Result{}, err
		}
		if ptf.Length <= 0 {
			return Result{}, &Refusal{Code: CodeBadManifest, Role: "release", Detail: fmt.Sprintf("target %s has length %d", t, ptf.Length)}
		}
		res.Parts = append(res.Parts, Part{Name: p.Name, Target: t, Rel: "targets/" + HashedPath(t, sum), Length: ptf.Length, SHA256: sum})
	}
	for _, name := range []string{"root.json", "timestamp.json", "snapshot.json", "targets.json"} {
		b, err := os.ReadFile(filepath.Join(tmp, name))
		if err != nil {
			return Result{}, fmt.Errorf("verify release: read verified %s: %w", name, err)
		}
		res.Metadata[name] = b
	}
	return res, nil
}

func targetInfo(up *updater.Updater, name string) (*metadata.TargetFiles, error) {
	if err := CheckTargetPath(name); err != nil {
		return nil, &Refusal{Code: CodeBadManifest, Role: "release", Detail: err.Error()}
	}
	tf, err := up.GetTargetInfo(name)
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return nil, &Refusal{Code: CodeNoRelease, Role: "targets", Detail: name, Err: err}
		}
		return nil, classify(err, "targets", nil)
	}
	return tf, nil
}

func sha256Of(tf *metadata.TargetFiles) (string, error) {
	h, ok := tf.Hashes["sha256"]
	if !ok || len(h) != 32 {
		return "", &Refusal{Code: CodeBadManifest, Role: "targets", Detail: fmt.Sprintf("target %s has no SHA-256", tf.Path)}
	}
	return hex.EncodeToString(h), nil
}

// RootVersion returns the version of a root metadata file, without
// verifying it (to pick the newer of two trusted roots).
func RootVersion(data []byte) (int64, error) {
	r, err := metadata.Root().FromBytes(data)
	if err != nil {
		return 0, err
	}
	return r.Signed.Version, nil
}

// fetcher is go-tuf's Fetcher over a Source. go-tuf's interface has no
// context; the fetcher carries the one of the verification.
type fetcher struct {
	ctx  context.Context
	src  Source
	mu   sync.Mutex
	last string
}

func (f *fetcher) role() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, role := parseVersionedName(f.last)
	return role
}

// DownloadFile implements go-tuf's fetcher.Fetcher.
func (f *fetcher) DownloadFile(u string, maxLength int64, _ time.Duration) ([]byte, error) {
	rel, ok := strings.CutPrefix(u, "tuf:/")
	if !ok {
		return nil, &metadata.ErrDownload{Msg: "unexpected URL " + u}
	}
	f.mu.Lock()
	f.last = rel[strings.LastIndexByte(rel, '/')+1:]
	f.mu.Unlock()
	b, err := f.src.Fetch(f.ctx, rel, maxLength)
	switch {
	case errors.Is(err, ErrNotFound):
		// The end of the root chain: go-tuf stops at a 404.
		return nil, &metadata.ErrDownloadHTTP{StatusCode: 404, URL: rel}
	case errors.Is(err, ErrTooLarge):
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: err.Error()}
	}
	return b, err
}
