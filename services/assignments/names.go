package assignments

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNameRunes bounds a stored file name, extension included.
const maxNameRunes = 100

// sanitizeFileName turns the file name a client sent into one that is safe
// everywhere the file goes (the teacher's Windows PC, Nextcloud, WebDAV, a
// USB key) and whose extension matches the sniffed type: the last path
// segment only (either slash), no control or reserved characters, no
// leading dots or trailing dots and spaces, no Windows device names, at
// most maxNameRunes runes. An empty result becomes "fichier".
func sanitizeFileName(raw, mediaType string) string {
	raw = strings.ToValidUTF8(raw, "")
	if i := strings.LastIndexAny(raw, `/\`); i >= 0 {
		raw = raw[i+1:]
	}
	var b strings.Builder
	space := false
	for _, r := range raw {
		switch {
		case unicode.IsSpace(r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r):
			// Spaces of every kind, tabs and newlines become one space.
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError || unicode.Is(unicode.Cf, r):
			// Controls and format characters (bidi overrides, zero
			// widths) would let a name lie about its extension.
			continue
		case strings.ContainsRune(`<>:"|?*`, r):
			r = '_'
		}
		space = false
		b.WriteRune(r)
	}
	name := strings.TrimLeft(strings.TrimRight(b.String(), " ."), " .")

	base, ext := splitExt(name)
	t, known := fileTypes[mediaType]
	if known && !slices.Contains(t.exts, strings.ToLower(ext)) {
		base, ext = name, t.exts[0]
	}
	if !known {
		base, ext = name, ""
	}
	if isWindowsDevice(base) {
		base = "_" + base
	}
	if base == "" {
		base = "fichier"
	}
	if n := maxNameRunes - utf8.RuneCountInString(ext); utf8.RuneCountInString(base) > n {
		base = strings.TrimRight(string([]rune(base)[:n]), " .")
	}
	return base + ext
}

// splitExt splits "rapport.final.pdf" into "rapport.final" and ".pdf". A
// name that is only an extension (".pdf") has no base.
func splitExt(name string) (base, ext string) {
	ext = path.Ext(name)
	if len(ext) > 10 || len(ext) < 2 {
		return name, ""
	}
	return strings.TrimSuffix(name, ext), ext
}

// isWindowsDevice reports names Windows reserves whatever their extension.
func isWindowsDevice(base string) bool {
	stem, _, _ := strings.Cut(strings.ToUpper(base), ".")
	stem = strings.TrimRight(stem, " ")
	switch stem {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(stem) == 4 && (strings.HasPrefix(stem, "COM") || strings.HasPrefix(stem, "LPT")) && stem[3] >= '0' && stem[3] <= '9' {
		return true
	}
	return false
}

// uniqueName returns name, or "name (2).ext", "name (3).ext"… when a file of
// the same hand-in already has it (compared without case, as Windows does).
func uniqueName(name string, taken map[string]bool) string {
	candidate := name
	base, ext := splitExt(name)
	for i := 2; taken[strings.ToLower(candidate)]; i++ {
		suffix := " (" + strconv.Itoa(i) + ")"
		b := base
		if n := maxNameRunes - utf8.RuneCountInString(ext+suffix); utf8.RuneCountInString(b) > n {
			b = string([]rune(b)[:n])
		}
		candidate = b + suffix + ext
	}
	taken[strings.ToLower(candidate)] = true
	return candidate
}

// pathSegment makes a folder name for the destination path from a title,
// a class code or a pupil's name, with the same rules as file names.
func pathSegment(s string) string {
	s = sanitizeFileName(strings.NewReplacer("/", "-", "\\", "-").Replace(s), "")
	if s == "fichier" {
		return "_"
	}
	return s
}
