package tufclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// ManifestFormat is the format tag of a release manifest.
const ManifestFormat = "preau-release/1"

// MaxManifestBytes bounds a release manifest.
const MaxManifestBytes = 64 << 10

// Manifest is a release: the small JSON target
// <channel>/<arch>/release.json that names the slot images of a version.
// It is itself a TUF target (signed by the targets role through its
// length and hashes); each part it names is another target.
type Manifest struct {
	Format  string            `json:"format"`
	Version string            `json:"version"`
	Channel string            `json:"channel"`
	Arch    string            `json:"arch"`
	Created time.Time         `json:"created"`
	Parts   []ManifestPart    `json:"parts"`
	Notes   map[string]string `json:"notes,omitempty"` // "fr", "en": shown to the technician
}

// ManifestPart names the target written to one part of the slot: Target
// for both slots, or Slots["a"] / Slots["b"] when each slot needs its
// own (the Pi's boot partition carries the slot's kernel command line).
type ManifestPart struct {
	Name   string            `json:"name"`
	Target string            `json:"target,omitempty"`
	Slots  map[string]string `json:"slots,omitempty"`
}

// TargetFor returns the target of the part for slot.
func (p ManifestPart) TargetFor(slot string) string {
	if p.Target != "" {
		return p.Target
	}
	return p.Slots[slot]
}

// ManifestPath is the target name of the release manifest of a channel
// and architecture.
func ManifestPath(channel, arch string) string {
	return channel + "/" + arch + "/release.json"
}

// ParseManifest decodes and checks a release manifest.
func ParseManifest(data []byte) (Manifest, error) {
	var m Manifest
	if len(data) > MaxManifestBytes {
		return m, fmt.Errorf("release manifest: %d bytes, at most %d", len(data), MaxManifestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("release manifest: %w", err)
	}
	if dec.More() {
		return m, errors.New("release manifest: trailing data")
	}
	if err := m.Check(); err != nil {
		return m, fmt.Errorf("release manifest: %w", err)
	}
	return m, nil
}

// Check validates a manifest.
func (m Manifest) Check() error {
	if m.Format != ManifestFormat {
		return fmt.Errorf("format %q, want %q", m.Format, ManifestFormat)
	}
	if err := CheckVersion(m.Version); err != nil {
		return err
	}
	if !validName(m.Channel) {
		return fmt.Errorf("channel %q: want lower-case letters, digits, '-', '_'", m.Channel)
	}
	if !validName(m.Arch) {
		return fmt.Errorf("arch %q: want lower-case letters, digits, '-', '_'", m.Arch)
	}
	if m.Created.IsZero() || m.Created.Year() < 2000 || m.Created.Year() > 9999 {
		return fmt.Errorf("created %v: want a real date", m.Created)
	}
	if len(m.Parts) == 0 || len(m.Parts) > 16 {
		return fmt.Errorf("%d parts, want 1 to 16", len(m.Parts))
	}
	seen := map[string]bool{}
	for _, p := range m.Parts {
		if !validName(p.Name) || len(p.Name) > 32 {
			return fmt.Errorf("part name %q: want lower-case letters, digits, '-', '_'", p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("part %q listed twice", p.Name)
		}
		seen[p.Name] = true
		switch {
		case p.Target != "" && len(p.Slots) == 0:
			if err := CheckTargetPath(p.Target); err != nil {
				return fmt.Errorf("part %s: %w", p.Name, err)
			}
		case p.Target == "" && len(p.Slots) == 2 && p.Slots["a"] != "" && p.Slots["b"] != "":
			for _, t := range p.Slots {
				if err := CheckTargetPath(t); err != nil {
					return fmt.Errorf("part %s: %w", p.Name, err)
				}
			}
		default:
			return fmt.Errorf("part %s: want either target, or slots with a and b", p.Name)
		}
	}
	if !seen["root"] {
		return errors.New("no \"root\" part")
	}
	for k, v := range m.Notes {
		if k != "fr" && k != "en" {
			return fmt.Errorf("notes: language %q, want fr or en", k)
		}
		if len(v) > 4096 || !utf8.ValidString(v) {
			return fmt.Errorf("notes.%s: at most 4096 bytes of UTF-8", k)
		}
	}
	return nil
}

// CheckVersion accepts versions systemd-boot can order: a digit first
// (or "v" then a digit, as git describe writes), then letters, digits and
// . - ~ ^ +, at most 64 bytes.
func CheckVersion(v string) error {
	d := strings.TrimPrefix(v, "v")
	if d == "" || len(v) > 64 || d[0] < '0' || d[0] > '9' {
		return fmt.Errorf("version %q: want a digit first (or v and a digit) and at most 64 characters", v)
	}
	for _, r := range v {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(".-~^+", r)) {
			return fmt.Errorf("version %q: character %q not allowed", v, r)
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// CheckTargetPath accepts relative slash-separated target names made of
// safe characters, without empty, "." or ".." elements.
func CheckTargetPath(p string) error {
	if p == "" || len(p) > 256 {
		return fmt.Errorf("target %q: want 1 to 256 characters", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("target %q: empty, '.' or '..' element", p)
		}
		for _, r := range el {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-+~", r)) {
				return fmt.Errorf("target %q: character %q not allowed", p, r)
			}
		}
	}
	return nil
}

// HashedPath is where a consistent-snapshot repository stores target p
// with SHA-256 sum: the hash prefixed to its base name.
func HashedPath(p, sha256hex string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i+1] + sha256hex + "." + p[i+1:]
	}
	return sha256hex + "." + p
}
