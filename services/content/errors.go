package content

import (
	"fmt"
	"strings"
)

// Codes of PackError. Each names one reason a pack is refused; the French
// and English texts say which file and what to do.
const (
	CodeManifestMissing  = "manifest-missing"
	CodeManifestTooLarge = "manifest-too-large"
	CodeManifestInvalid  = "manifest-invalid"
	CodeBadPath          = "bad-path"
	CodeHashMismatch     = "hash-mismatch"
	CodeSizeMismatch     = "size-mismatch"
	CodeFileTooLarge     = "file-too-large"
	CodeTruncated        = "truncated"
	CodeUnlistedFile     = "unlisted-file"
	CodeMissingFile      = "missing-file"
	CodeDuplicateEntry   = "duplicate-entry"
	CodeSymlink          = "symlink"
	CodeHardlink         = "hardlink"
	CodeSpecialFile      = "special-file"
	CodeNotAFile         = "not-a-file"
	CodePackTooLarge     = "pack-too-large"
	CodeDiskFull         = "disk-full"
	CodeBadArchive       = "bad-archive"
	CodeBomb             = "decompression-bomb"
	CodeBadSource        = "bad-source"
)

// PackError is a refused pack. Error returns the French text; English the
// English one. Path names the offending file inside the pack, if any.
type PackError struct {
	Code string
	Path string
	FR   string
	EN   string
	Err  error
}

func (e *PackError) Error() string   { return e.FR }
func (e *PackError) English() string { return e.EN }
func (e *PackError) Unwrap() error   { return e.Err }

type packMessage struct{ fr, en string }

// packMessages holds the texts of each code; %s is the path (or the detail
// for codes without a path).
var packMessages = map[string]packMessage{
	CodeManifestMissing:  {"paquet refusé : le manifeste preau-pack.json est absent de la racine du paquet", "pack refused: the manifest preau-pack.json is missing from the root of the pack"},
	CodeManifestTooLarge: {"paquet refusé : le manifeste preau-pack.json est trop gros (%s)", "pack refused: the manifest preau-pack.json is too large (%s)"},
	CodeManifestInvalid:  {"paquet refusé : manifeste invalide : %s ; corrigez preau-pack.json", "pack refused: invalid manifest: %s; fix preau-pack.json"},
	CodeBadPath:          {"paquet refusé : chemin interdit « %s » (chemin absolu, « .. », barre oblique inverse ou caractères invalides)", "pack refused: forbidden path \"%s\" (absolute, '..', backslash or invalid characters)"},
	CodeHashMismatch:     {"paquet refusé : le fichier « %s » est corrompu (empreinte SHA-256 différente du manifeste)", "pack refused: file \"%s\" is corrupt (SHA-256 differs from the manifest)"},
	CodeSizeMismatch:     {"paquet refusé : le fichier « %s » n'a pas la taille annoncée par le manifeste", "pack refused: file \"%s\" does not have the size the manifest gives"},
	CodeFileTooLarge:     {"paquet refusé : le fichier « %s » est plus gros que permis", "pack refused: file \"%s\" is larger than allowed"},
	CodeTruncated:        {"paquet refusé : le fichier « %s » est tronqué (archive incomplète) ; copiez à nouveau le paquet", "pack refused: file \"%s\" is truncated (incomplete archive); copy the pack again"},
	CodeUnlistedFile:     {"paquet refusé : le fichier « %s » n'est pas déclaré dans le manifeste", "pack refused: file \"%s\" is not listed in the manifest"},
	CodeMissingFile:      {"paquet refusé : le fichier « %s » déclaré dans le manifeste est absent", "pack refused: file \"%s\" listed in the manifest is missing"},
	CodeDuplicateEntry:   {"paquet refusé : le fichier « %s » apparaît plusieurs fois dans l'archive", "pack refused: file \"%s\" appears more than once in the archive"},
	CodeSymlink:          {"paquet refusé : « %s » est un lien symbolique, interdit dans un paquet", "pack refused: \"%s\" is a symbolic link, not allowed in a pack"},
	CodeHardlink:         {"paquet refusé : « %s » est un lien physique, interdit dans un paquet", "pack refused: \"%s\" is a hard link, not allowed in a pack"},
	CodeSpecialFile:      {"paquet refusé : « %s » est un fichier spécial (périphérique, tube…), interdit dans un paquet", "pack refused: \"%s\" is a special file (device, fifo…), not allowed in a pack"},
	CodeNotAFile:         {"paquet refusé : « %s » est un dossier alors que le manifeste annonce un fichier", "pack refused: \"%s\" is a directory where the manifest lists a file"},
	CodePackTooLarge:     {"paquet refusé : le paquet est trop gros (%s)", "pack refused: the pack is too large (%s)"},
	CodeDiskFull:         {"paquet refusé : pas assez de place sur le disque (%s) ; libérez de la place ou retirez un paquet", "pack refused: not enough disk space (%s); free some space or remove a pack"},
	CodeBadArchive:       {"paquet refusé : archive illisible (%s) ; vérifiez le fichier", "pack refused: unreadable archive (%s); check the file"},
	CodeBomb:             {"paquet refusé : l'archive décompressée est bien plus grosse que le contenu annoncé (%s)", "pack refused: the decompressed archive is much larger than the listed content (%s)"},
	CodeBadSource:        {"paquet refusé : source inutilisable (%s) ; donnez un dossier, un .tar, .tar.zst, .tar.gz ou une adresse http(s)", "pack refused: unusable source (%s); give a folder, a .tar, .tar.zst, .tar.gz or an http(s) address"},
}

// refuse builds a PackError for code about path (or detail).
func refuse(code, pathOrDetail string, err error) *PackError {
	m, ok := packMessages[code]
	if !ok {
		m = packMessage{"paquet refusé : %s", "pack refused: %s"}
	}
	pe := &PackError{Code: code, Err: err}
	switch code {
	case CodeManifestTooLarge, CodeManifestInvalid, CodePackTooLarge, CodeDiskFull, CodeBadArchive, CodeBomb, CodeBadSource:
	default:
		pe.Path = pathOrDetail
	}
	if countVerbs(m.fr) > 0 {
		shown := displayable(pathOrDetail)
		pe.FR = fmt.Sprintf(m.fr, shown)
		pe.EN = fmt.Sprintf(m.en, shown)
	} else {
		pe.FR, pe.EN = m.fr, m.en
	}
	return pe
}

func countVerbs(s string) int {
	n := 0
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '%' && s[i+1] != '%' {
			n++
		}
	}
	return n
}

// displayable makes a path from a hostile pack safe to show: control
// characters and invalid UTF-8 become U+FFFD, and it is cut at 300 bytes.
func displayable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, s)
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}
