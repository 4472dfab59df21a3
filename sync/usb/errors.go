package usb

import (
	"fmt"
	"strings"
)

// Codes of BundleError. Each names one reason an export or a bundle is
// refused; the French and English texts say which file and what to do.
const (
	CodeNotABundle       = "not-a-bundle"
	CodeIncomplete       = "incomplete"
	CodeManifestTooLarge = "manifest-too-large"
	CodeManifestInvalid  = "manifest-invalid"
	CodeBadPath          = "bad-path"
	CodeHashMismatch     = "hash-mismatch"
	CodeSizeMismatch     = "size-mismatch"
	CodeTruncated        = "truncated"
	CodeMissingFile      = "missing-file"
	CodeUnlistedFile     = "unlisted-file"
	CodeSymlink          = "symlink"
	CodeSpecialFile      = "special-file"
	CodeTooLarge         = "too-large"
	CodeChanged          = "changed"
	CodeConflict         = "conflict"
	CodeNothingToExport  = "nothing-to-export"
	CodeInvalidItem      = "invalid-item"
	CodeNoSpace          = "no-space"
	CodeFATLimit         = "fat-limit"
	CodeBadTarget        = "bad-target"
	CodeCorruptBlob      = "corrupt-blob"
)

// BundleError is a refused bundle or a failed export. Error returns the
// French text; English the English one. Path names the offending file
// inside the bundle (or the item's remote path), if any.
type BundleError struct {
	Code string
	Path string
	FR   string
	EN   string
	Err  error

	detailFR, detailEN string // what filled the message's %s
}

func (e *BundleError) Error() string   { return e.FR }
func (e *BundleError) English() string { return e.EN }
func (e *BundleError) Unwrap() error   { return e.Err }

type message struct{ fr, en string }

// messages holds the texts of each code; %s is the path or the detail.
var messages = map[string]message{
	CodeNotABundle:       {"lot refusé : « %s » n'est pas un dossier d'export Préau", "bundle refused: \"%s\" is not a Préau export folder"},
	CodeIncomplete:       {"lot refusé : manifest.json est absent, l'export a été interrompu ; refaites l'export sur la clé", "bundle refused: manifest.json is missing, the export was interrupted; export again to the key"},
	CodeManifestTooLarge: {"lot refusé : manifest.json est trop gros (%s)", "bundle refused: manifest.json is too large (%s)"},
	CodeManifestInvalid:  {"lot refusé : manifest.json invalide : %s", "bundle refused: invalid manifest.json: %s"},
	CodeBadPath:          {"lot refusé : chemin interdit « %s » (chemin absolu, « .. », barre oblique inverse ou caractères invalides)", "bundle refused: forbidden path \"%s\" (absolute, '..', backslash or invalid characters)"},
	CodeHashMismatch:     {"lot refusé : le fichier « %s » est corrompu (empreinte SHA-256 différente du manifeste) ; refaites l'export", "bundle refused: file \"%s\" is corrupt (SHA-256 differs from the manifest); export again"},
	CodeSizeMismatch:     {"lot refusé : le fichier « %s » n'a pas la taille annoncée par le manifeste", "bundle refused: file \"%s\" does not have the size the manifest gives"},
	CodeTruncated:        {"lot refusé : le fichier « %s » est tronqué (copie incomplète) ; refaites l'export", "bundle refused: file \"%s\" is truncated (incomplete copy); export again"},
	CodeMissingFile:      {"lot refusé : le fichier « %s » déclaré dans le manifeste est absent", "bundle refused: file \"%s\" listed in the manifest is missing"},
	CodeUnlistedFile:     {"lot refusé : le fichier « %s » n'est pas déclaré dans le manifeste", "bundle refused: file \"%s\" is not listed in the manifest"},
	CodeSymlink:          {"lot refusé : « %s » est un lien symbolique, interdit dans un lot", "bundle refused: \"%s\" is a symbolic link, not allowed in a bundle"},
	CodeSpecialFile:      {"lot refusé : « %s » n'est pas un fichier ordinaire (dossier, périphérique, tube…)", "bundle refused: \"%s\" is not a regular file (folder, device, fifo…)"},
	CodeTooLarge:         {"lot refusé : trop gros (%s)", "bundle refused: too large (%s)"},
	CodeChanged:          {"envoi interrompu : le fichier « %s » a changé sur la clé pendant l'envoi ; vérifiez la clé et recommencez", "delivery stopped: file \"%s\" changed on the key during delivery; check the key and try again"},
	CodeConflict:         {"non livré : la destination contient déjà un autre fichier nommé « %s » ; rien n'a été écrasé, vérifiez la destination", "not delivered: the destination already holds a different file named \"%s\"; nothing was overwritten, check the destination"},
	CodeNothingToExport:  {"rien à exporter : aucun envoi en attente", "nothing to export: no pending item"},
	CodeInvalidItem:      {"export impossible : élément invalide (%s)", "export impossible: invalid item (%s)"},
	CodeNoSpace:          {"export impossible : pas assez de place sur la clé (%s) ; libérez de la place ou prenez une clé plus grande", "export impossible: not enough space on the key (%s); free some space or use a larger key"},
	CodeFATLimit:         {"export impossible : la clé est formatée en FAT32, qui ne peut pas contenir le fichier « %s » de 4 Gio ou plus ; formatez-la en exFAT", "export impossible: the key is formatted FAT32, which cannot hold the 4 GiB or larger file \"%s\"; format it as exFAT"},
	CodeBadTarget:        {"export impossible : « %s » n'est pas un dossier accessible ; vérifiez que la clé est branchée", "export impossible: \"%s\" is not a usable folder; check that the key is plugged in"},
	CodeCorruptBlob:      {"export impossible : la copie locale de « %s » est corrompue ; lancez la vérification du stockage", "export impossible: the local copy of \"%s\" is corrupt; run the storage check"},
}

// pathCodes are the codes whose argument is a path (kept in Path).
var pathCodes = map[string]bool{
	CodeBadPath: true, CodeHashMismatch: true, CodeSizeMismatch: true, CodeTruncated: true,
	CodeMissingFile: true, CodeUnlistedFile: true, CodeSymlink: true, CodeSpecialFile: true,
	CodeChanged: true, CodeConflict: true, CodeFATLimit: true, CodeCorruptBlob: true,
}

// refuse builds a BundleError for code about path (or a detail that reads
// the same in both languages: a number, a JSON error).
func refuse(code, pathOrDetail string, err error) *BundleError {
	return refuseDetail(code, pathOrDetail, pathOrDetail, err)
}

// refuseDetail builds a BundleError whose detail differs by language.
func refuseDetail(code, fr, en string, err error) *BundleError {
	m, ok := messages[code]
	if !ok {
		m = message{"lot refusé : %s", "bundle refused: %s"}
	}
	be := &BundleError{Code: code, Err: err, detailFR: displayable(fr), detailEN: displayable(en)}
	if pathCodes[code] {
		be.Path = en
	}
	if strings.Contains(m.fr, "%s") {
		be.FR = fmt.Sprintf(m.fr, be.detailFR)
		be.EN = fmt.Sprintf(m.en, be.detailEN)
	} else {
		be.FR, be.EN = m.fr, m.en
	}
	return be
}

// detail is a validation problem in both languages.
type detail struct{ fr, en string }

func (d *detail) Error() string { return d.fr + " / " + d.en }

func bilingual(fr, en string) *detail { return &detail{fr, en} }

// displayable makes a string from a hostile bundle safe to show: control
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
