package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"
)

// The pack format, version 1 (docs/content-pack.md): the catalogue builds
// manifests of fetched blobs and hands them to Store.CommitPack.

type manifest struct {
	Format      int            `json:"format"`
	ID          string         `json:"id"`
	Version     string         `json:"version"`
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	Publisher   string         `json:"publisher,omitempty"`
	Language    string         `json:"language"`
	Created     string         `json:"created,omitempty"`
	Items       []manifestItem `json:"items"`
}

type manifestItem struct {
	ID          string         `json:"id"`
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	Kind        string         `json:"kind"`
	Language    string         `json:"language,omitempty"`
	Levels      []string       `json:"levels"`
	Subjects    []string       `json:"subjects"`
	Licence     string         `json:"licence,omitempty"`
	Source      string         `json:"source,omitempty"`
	Authors     []string       `json:"authors,omitempty"`
	Entry       string         `json:"entry"`
	Thumbnail   string         `json:"thumbnail,omitempty"`
	Files       []manifestFile `json:"files"`
}

type manifestFile struct {
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	MediaType string `json:"media_type"`
}

var (
	idPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	langPattern = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)
	hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

const (
	maxText  = 60 << 10 // a manifest's text field (the format allows 64 KiB)
	maxTitle = 500
)

// shortHash is the first n hex digits of the SHA-256 of s.
func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// slug turns s into an id of the pack format: lower case ASCII letters,
// digits, '.', '_', '-', at most max bytes, starting with a letter or digit.
func slug(s string, max int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(foldAccents(s)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_':
			b.WriteRune(r)
			dash = false
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
		if b.Len() >= max {
			break
		}
	}
	out := strings.Trim(b.String(), "-._")
	if len(out) > max {
		out = strings.Trim(out[:max], "-._")
	}
	return out
}

// foldAccents maps the common Latin accented letters to ASCII, for ids and
// sort keys.
func foldAccents(s string) string {
	const from = "àâäáãåçéèêëíìîïñóòôöõúùûüýÿœæÀÂÄÁÃÅÇÉÈÊËÍÌÎÏÑÓÒÔÖÕÚÙÛÜÝ"
	const to = "aaaaaaceeeeiiiinooooouuuuyyoaAAAAAACEEEEIIIINOOOOOUUUUY"
	fromR, toR := []rune(from), []rune(to)
	m := make(map[rune]rune, len(fromR))
	for i, r := range fromR {
		m[r] = toR[i]
	}
	return strings.Map(func(r rune) rune {
		if t, ok := m[r]; ok {
			return t
		}
		return r
	}, s)
}

// sortKey folds a title for ordering: lower case, no accents.
func sortKey(s string) string { return strings.ToLower(foldAccents(s)) }

// cleanText makes s fit a manifest text field: valid UTF-8, no control
// characters but newlines and tabs, at most max bytes.
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

// validPackPath reports whether p is a valid pack path (docs/content-pack.md).
func validPackPath(p string) bool {
	if p == "" || len(p) > 1024 || !utf8.ValidString(p) || p == "preau-pack.json" {
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

// validMediaType reports whether mt is usable as a pack file's media_type.
func validMediaType(mt string) bool {
	if mt == "" || len(mt) > 255 || strings.ContainsAny(mt, "\r\n") {
		return false
	}
	_, _, err := mime.ParseMediaType(mt)
	return err == nil
}

// mediaTypeOf guesses a file's media type from its name; given is the
// server's, kept when valid and specific.
func mediaTypeOf(name, given string) string {
	if given != "" && validMediaType(given) && !strings.HasPrefix(given, "application/octet-stream") {
		return given
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".vtt":
		return "text/vtt; charset=utf-8"
	case ".mp4", ".m4v":
		return "video/mp4"
	case ".webm":
		return "video/webm"
	case ".html", ".htm":
		return "text/html; charset=utf-8"
	case ".md":
		return "text/markdown; charset=utf-8"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	if mt := mime.TypeByExtension(path.Ext(name)); mt != "" && validMediaType(mt) {
		return mt
	}
	return "application/octet-stream"
}

// kindOf returns the pack item kind of a media type.
func kindOf(mediaType string) string {
	mt, _, _ := mime.ParseMediaType(mediaType)
	switch {
	case strings.HasPrefix(mt, "video/"):
		return "video"
	case strings.HasPrefix(mt, "audio/"):
		return "audio"
	case mt == "application/pdf":
		return "pdf"
	case strings.HasPrefix(mt, "image/"):
		return "image"
	case mt == "text/html" || mt == "application/xhtml+xml":
		return "article"
	}
	return "document"
}

// encode finishes m: its version is derived from everything else, so that
// any change gives a new version and the same content the same manifest.
func (m *manifest) encode() ([]byte, error) {
	m.Format = 1
	m.Version = ""
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest %s: %w", m.ID, err)
	}
	m.Version = "c" + shortHash(string(body), 16)
	return json.MarshalIndent(m, "", " ")
}
