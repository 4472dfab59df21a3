package content

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ManifestName is the manifest's path at the root of a pack.
const ManifestName = "preau-pack.json"

type manifest struct {
	Format      int            `json:"format"`
	ID          string         `json:"id"`
	Version     string         `json:"version"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Publisher   string         `json:"publisher"`
	Language    string         `json:"language"`
	Created     string         `json:"created"`
	Items       []manifestItem `json:"items"`

	// Derived by parseManifest.
	created time.Time
	files   map[string]manifestFile // distinct files by path
	order   []string                // distinct paths in manifest order
	total   int64                   // sum of distinct file sizes
}

type manifestItem struct {
	ID          string         `json:"id"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Kind        string         `json:"kind"`
	Language    string         `json:"language"`
	Levels      []string       `json:"levels"`
	Subjects    []string       `json:"subjects"`
	Licence     string         `json:"licence"`
	Source      string         `json:"source"`
	Authors     []string       `json:"authors"`
	Entry       string         `json:"entry"`
	Thumbnail   string         `json:"thumbnail"`
	Files       []manifestFile `json:"files"`
}

type manifestFile struct {
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	MediaType string `json:"media_type"`
}

// Vocabularies of the pack format, version 1.
var (
	idPattern      = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	subjectPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	langPattern    = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)
	hashPattern    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	kinds          = []string{"article", "video", "audio", "pdf", "image", "document"}
	levels         = []string{"cycle1", "cycle2", "cycle3", "cycle4", "lycee"}
)

const (
	maxTextLen  = 64 << 10 // a title, description, licence…
	maxListLen  = 256      // levels, subjects, authors of an item
	maxItemsLen = 1 << 20
)

// parseManifest decodes and validates a manifest. Errors are *PackError
// with CodeManifestInvalid or CodePackTooLarge.
func parseManifest(data []byte, cfg Config) (*manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m manifest
	if err := dec.Decode(&m); err != nil {
		return nil, refuse(CodeManifestInvalid, "JSON: "+err.Error(), err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, refuse(CodeManifestInvalid, "données après l'objet JSON / data after the JSON object", nil)
	}
	if err := m.validate(cfg); err != nil {
		var pe *PackError
		if errors.As(err, &pe) {
			return nil, pe
		}
		return nil, refuse(CodeManifestInvalid, err.Error(), err)
	}
	return &m, nil
}

func (m *manifest) validate(cfg Config) error {
	if m.Format != 1 {
		return fmt.Errorf("format %d inconnu / unknown format, want 1", m.Format)
	}
	if !idPattern.MatchString(m.ID) {
		return fmt.Errorf("id %q invalide / invalid id", m.ID)
	}
	if m.Version == "" || len(m.Version) > 64 || !printable(m.Version) {
		return fmt.Errorf("version %q invalide / invalid version", m.Version)
	}
	if err := checkText("title", m.Title, true); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"description", m.Description}, {"publisher", m.Publisher}} {
		if err := checkText(f.name, f.v, false); err != nil {
			return err
		}
	}
	if !langPattern.MatchString(m.Language) {
		return fmt.Errorf("language %q invalide / invalid language", m.Language)
	}
	if m.Created != "" {
		t, err := time.Parse(time.RFC3339, m.Created)
		if err != nil {
			return fmt.Errorf("created %q n'est pas une date RFC 3339 / is not an RFC 3339 date", m.Created)
		}
		m.created = t
	}
	if len(m.Items) == 0 {
		return errors.New("aucun élément / no items")
	}
	if len(m.Items) > maxItemsLen {
		return errors.New("trop d'éléments / too many items")
	}
	m.files = make(map[string]manifestFile)
	itemIDs := make(map[string]bool, len(m.Items))
	for i := range m.Items {
		it := &m.Items[i]
		if !idPattern.MatchString(it.ID) {
			return fmt.Errorf("item %d: id %q invalide / invalid id", i, it.ID)
		}
		if itemIDs[it.ID] {
			return fmt.Errorf("item %q en double / duplicated item", it.ID)
		}
		itemIDs[it.ID] = true
		if err := it.validate(m, cfg); err != nil {
			return fmt.Errorf("item %q: %w", it.ID, err)
		}
	}
	if len(m.files) > cfg.MaxFiles {
		return refuse(CodePackTooLarge, fmt.Sprintf("%d fichiers, maximum %d / %d files, at most %d", len(m.files), cfg.MaxFiles, len(m.files), cfg.MaxFiles), nil)
	}
	if m.total > cfg.MaxPackBytes {
		return refuse(CodePackTooLarge, fmt.Sprintf("%d octets, maximum %d / %d bytes, at most %d", m.total, cfg.MaxPackBytes, m.total, cfg.MaxPackBytes), nil)
	}
	// A path cannot be both a file and the folder of another file.
	for _, p := range m.order {
		for dir := parentDir(p); dir != ""; dir = parentDir(dir) {
			if _, ok := m.files[dir]; ok {
				return fmt.Errorf("%q est à la fois un fichier et un dossier / is both a file and a folder", dir)
			}
		}
	}
	return nil
}

func (it *manifestItem) validate(m *manifest, cfg Config) error {
	if err := checkText("title", it.Title, true); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"description", it.Description}, {"licence", it.Licence}, {"source", it.Source}} {
		if err := checkText(f.name, f.v, false); err != nil {
			return err
		}
	}
	if !slices.Contains(kinds, it.Kind) {
		return fmt.Errorf("kind %q inconnu / unknown kind", it.Kind)
	}
	if it.Language != "" && !langPattern.MatchString(it.Language) {
		return fmt.Errorf("language %q invalide / invalid language", it.Language)
	}
	if len(it.Levels) > maxListLen || len(it.Subjects) > maxListLen || len(it.Authors) > maxListLen {
		return errors.New("liste trop longue / list too long")
	}
	for _, l := range it.Levels {
		if !slices.Contains(levels, l) {
			return fmt.Errorf("niveau %q inconnu / unknown level", l)
		}
	}
	if hasDuplicates(it.Levels) || hasDuplicates(it.Subjects) {
		return errors.New("niveau ou discipline en double / duplicated level or subject")
	}
	for _, s := range it.Subjects {
		if !subjectPattern.MatchString(s) {
			return fmt.Errorf("discipline %q invalide / invalid subject", s)
		}
	}
	for _, a := range it.Authors {
		if err := checkText("author", a, true); err != nil {
			return err
		}
	}
	if len(it.Files) == 0 {
		return errors.New("aucun fichier / no files")
	}
	own := make(map[string]bool, len(it.Files))
	for _, f := range it.Files {
		if !ValidPath(f.Path) || f.Path == ManifestName {
			return refuse(CodeBadPath, f.Path, nil)
		}
		if own[f.Path] {
			return fmt.Errorf("fichier %q en double / duplicated file", f.Path)
		}
		own[f.Path] = true
		if f.Size < 0 {
			return fmt.Errorf("fichier %q : taille négative / negative size", f.Path)
		}
		if f.Size > cfg.MaxFileBytes {
			return refuse(CodeFileTooLarge, f.Path, nil)
		}
		if !hashPattern.MatchString(f.SHA256) {
			return fmt.Errorf("fichier %q : sha256 invalide / invalid sha256", f.Path)
		}
		if len(f.MediaType) > 255 {
			return fmt.Errorf("fichier %q : media_type trop long / media_type too long", f.Path)
		}
		if _, _, err := mime.ParseMediaType(f.MediaType); err != nil || strings.ContainsAny(f.MediaType, "\r\n") {
			return fmt.Errorf("fichier %q : media_type %q invalide / invalid media_type", f.Path, f.MediaType)
		}
		if prev, ok := m.files[f.Path]; ok {
			if prev != f {
				return fmt.Errorf("fichier %q partagé avec des tailles, empreintes ou types différents / shared with different size, hash or type", f.Path)
			}
			continue
		}
		m.files[f.Path] = f
		m.order = append(m.order, f.Path)
		m.total += f.Size
		if m.total > cfg.MaxPackBytes || m.total < 0 {
			return refuse(CodePackTooLarge, fmt.Sprintf("plus de %d octets / more than %d bytes", cfg.MaxPackBytes, cfg.MaxPackBytes), nil)
		}
	}
	if !own[it.Entry] {
		return fmt.Errorf("entry %q n'est pas un fichier de l'élément / is not one of the item's files", it.Entry)
	}
	if it.Thumbnail != "" && !own[it.Thumbnail] {
		return fmt.Errorf("thumbnail %q n'est pas un fichier de l'élément / is not one of the item's files", it.Thumbnail)
	}
	return nil
}

// ValidPath reports whether p is a valid pack path: relative, slash
// separated, clean, valid UTF-8 without control characters or backslashes,
// at most 255 bytes per segment and 1024 in all.
func ValidPath(p string) bool {
	if p == "" || len(p) > 1024 || !utf8.ValidString(p) {
		return false
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return false
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > 255 {
			return false
		}
	}
	return true
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ""
	}
	return p[:i]
}

func checkText(name, v string, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return fmt.Errorf("%s vide / empty %s", name, name)
	}
	if len(v) > maxTextLen || !utf8.ValidString(v) {
		return fmt.Errorf("%s invalide ou trop long / invalid or too long %s", name, name)
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return utf8.ValidString(s)
}

func hasDuplicates(xs []string) bool {
	seen := make(map[string]bool, len(xs))
	for _, x := range xs {
		if seen[x] {
			return true
		}
		seen[x] = true
	}
	return false
}
