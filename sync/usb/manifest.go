package usb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Names inside a bundle.
const (
	ManifestName = "manifest.json"
	FilesDir     = "files"
	// Format is the version of the bundle format this package writes and reads.
	Format = 1
)

const (
	maxBoxLen       = 128
	maxKeyLen       = 512
	maxDestLen      = 256
	maxMediaTypeLen = 255
	maxJSONDepth    = 8
)

var hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// parsed is a validated manifest with what Verify and Deliver derive.
type parsed struct {
	Manifest
	order []string         // distinct sha256 in manifest order
	sizes map[string]int64 // sha256 → size
	total int64            // sum of distinct sizes
}

// parseManifest decodes and validates manifest.json strictly: one JSON
// object, no unknown or duplicated keys, no trailing data, bounded depth.
// Errors are *BundleError.
func parseManifest(data []byte, cfg Config) (*parsed, error) {
	if int64(len(data)) > cfg.MaxManifestBytes {
		return nil, refuseDetail(CodeManifestTooLarge, fmt.Sprintf("plus de %d octets", cfg.MaxManifestBytes), fmt.Sprintf("more than %d bytes", cfg.MaxManifestBytes), nil)
	}
	if !utf8.Valid(data) {
		return nil, refuseDetail(CodeManifestInvalid, "UTF-8 invalide", "invalid UTF-8", nil)
	}
	if err := checkShape(data); err != nil {
		return nil, invalid(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, invalid(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, refuseDetail(CodeManifestInvalid, "données après l'objet JSON", "data after the JSON object", nil)
	}
	return validate(m, cfg)
}

// invalid turns a validation or decoding error into a CodeManifestInvalid
// refusal; *BundleError passes through.
func invalid(err error) *BundleError {
	var be *BundleError
	if errors.As(err, &be) {
		return be
	}
	var d *detail
	if errors.As(err, &d) {
		return refuseDetail(CodeManifestInvalid, d.fr, d.en, nil)
	}
	msg := "JSON : " + strings.TrimPrefix(err.Error(), "json: ")
	return refuseDetail(CodeManifestInvalid, msg, strings.Replace(msg, " : ", ": ", 1), err)
}

// checkShape walks the JSON tokens: the top level must be an object, no
// object may repeat a key (compared case-insensitively, as encoding/json
// matches fields) and nesting stays shallow.
func checkShape(data []byte) error {
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]bool
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	first := true
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if first {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return bilingual("un objet JSON est attendu", "want a JSON object")
			}
			first = false
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			k, _ := tok.(string)
			fold := strings.ToLower(k)
			if stack[n-1].keys[fold] {
				return bilingual(fmt.Sprintf("clé %q en double", k), fmt.Sprintf("duplicated key %q", k))
			}
			stack[n-1].keys[fold] = true
			stack[n-1].wantKey = false
			continue
		}
		switch d := tok.(type) {
		case json.Delim:
			switch d {
			case '{', '[':
				if len(stack) >= maxJSONDepth {
					return bilingual("JSON trop imbriqué", "JSON nested too deeply")
				}
				stack = append(stack, &frame{object: d == '{', wantKey: d == '{', keys: map[string]bool{}})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		default:
			valueDone()
		}
		if len(stack) == 0 && !first {
			// The top-level object is closed; Decode reports trailing data.
			return nil
		}
	}
	if first {
		return bilingual("manifeste vide", "empty manifest")
	}
	return nil
}

// validate checks every field of m and derives the distinct files.
func validate(m Manifest, cfg Config) (*parsed, error) {
	bad := func(fr, en string) error {
		return refuseDetail(CodeManifestInvalid, fr, en, nil)
	}
	if m.Format != Format {
		return nil, bad(fmt.Sprintf("format %d inconnu, %d attendu", m.Format, Format), fmt.Sprintf("unknown format %d, want %d", m.Format, Format))
	}
	if m.Box == "" || len(m.Box) > maxBoxLen || !utf8.ValidString(m.Box) || hasControl(m.Box) {
		return nil, bad(fmt.Sprintf("box %q invalide", m.Box), fmt.Sprintf("invalid box %q", m.Box))
	}
	if m.Created.IsZero() {
		return nil, bad("created absent", "created missing")
	}
	if len(m.Items) == 0 {
		return nil, bad("aucun élément", "no items")
	}
	if len(m.Items) > cfg.MaxItems {
		return nil, refuseDetail(CodeTooLarge, fmt.Sprintf("%d éléments, maximum %d", len(m.Items), cfg.MaxItems), fmt.Sprintf("%d items, at most %d", len(m.Items), cfg.MaxItems), nil)
	}
	p := &parsed{Manifest: m, sizes: make(map[string]int64)}
	keys := make(map[string]bool, len(m.Items))
	names := make(map[[2]string]bool, len(m.Items))
	for i, it := range m.Items {
		if err := checkItem(it, cfg); err != nil {
			var be *BundleError
			if errors.As(err, &be) {
				return nil, be
			}
			var d *detail
			errors.As(err, &d)
			return nil, bad(fmt.Sprintf("élément %d : %s", i+1, d.fr), fmt.Sprintf("item %d: %s", i+1, d.en))
		}
		if keys[it.Key] {
			return nil, bad(fmt.Sprintf("clé d'élément %q en double", it.Key), fmt.Sprintf("duplicated item key %q", it.Key))
		}
		keys[it.Key] = true
		name := [2]string{it.Destination, it.RemotePath}
		if names[name] {
			return nil, bad(fmt.Sprintf("%q vers %q en double", it.RemotePath, it.Destination), fmt.Sprintf("duplicated %q to %q", it.RemotePath, it.Destination))
		}
		names[name] = true
		if size, ok := p.sizes[it.SHA256]; ok {
			if size != it.Size {
				return nil, bad(fmt.Sprintf("sha256 %s avec deux tailles", it.SHA256), fmt.Sprintf("sha256 %s with two sizes", it.SHA256))
			}
			continue
		}
		p.sizes[it.SHA256] = it.Size
		p.order = append(p.order, it.SHA256)
		p.total += it.Size
	}
	return p, nil
}

// checkItem validates one item; errors are *detail or *BundleError.
func checkItem(it Item, cfg Config) error {
	if it.Key == "" || len(it.Key) > maxKeyLen || !utf8.ValidString(it.Key) || hasControl(it.Key) {
		return bilingual(fmt.Sprintf("key %q invalide", it.Key), fmt.Sprintf("invalid key %q", it.Key))
	}
	if it.Destination == "" || len(it.Destination) > maxDestLen || !utf8.ValidString(it.Destination) || hasControl(it.Destination) {
		return bilingual(fmt.Sprintf("destination %q invalide", it.Destination), fmt.Sprintf("invalid destination %q", it.Destination))
	}
	if !ValidPath(it.RemotePath) {
		return refuse(CodeBadPath, it.RemotePath, nil)
	}
	if it.Size < 0 {
		return bilingual("taille négative", "negative size")
	}
	if it.Size > cfg.MaxFileBytes {
		return refuseDetail(CodeTooLarge,
			fmt.Sprintf("%s : %d octets, maximum %d", it.RemotePath, it.Size, cfg.MaxFileBytes),
			fmt.Sprintf("%s: %d bytes, at most %d", it.RemotePath, it.Size, cfg.MaxFileBytes), nil)
	}
	if !hashPattern.MatchString(it.SHA256) {
		return bilingual(fmt.Sprintf("sha256 %q invalide (64 chiffres hexadécimaux en minuscules)", it.SHA256),
			fmt.Sprintf("invalid sha256 %q (64 lower-case hex digits)", it.SHA256))
	}
	if it.MediaType != "" {
		_, _, err := mime.ParseMediaType(it.MediaType)
		if len(it.MediaType) > maxMediaTypeLen || hasControl(it.MediaType) || err != nil {
			return bilingual(fmt.Sprintf("media_type %q invalide", it.MediaType), fmt.Sprintf("invalid media_type %q", it.MediaType))
		}
	}
	return nil
}

// ValidPath reports whether p is a valid remote path: relative, slash
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

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}
