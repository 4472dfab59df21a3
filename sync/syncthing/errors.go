package syncthing

import (
	"fmt"
	"strings"
)

// Codes of Error.
const (
	CodeNotRunning    = "not-running"
	CodeBinaryMissing = "binary-missing"
	CodeGenerate      = "generate"
	CodeStartTimeout  = "start-timeout"
	CodeExited        = "exited"
	CodeAPI           = "api"
	CodeConflict      = "conflict"
	CodeMismatch      = "content-mismatch"
	CodeBadPath       = "bad-path"
)

// Error is a failure a technician may see (console, Status). Error returns
// the French text; English the English one. Errors with the same Code match
// with errors.Is, so errors.Is(err, ErrNotRunning) works.
type Error struct {
	Code string
	FR   string
	EN   string
	Err  error
}

func (e *Error) Error() string   { return e.FR }
func (e *Error) English() string { return e.EN }
func (e *Error) Unwrap() error   { return e.Err }

// Is matches any *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	// ErrNotRunning: the Syncthing process is not (yet, or no longer) up;
	// transient, retry later.
	ErrNotRunning = newError(CodeNotRunning, "", nil)
	// ErrConflict: the folder already holds a different file under that
	// name; permanent, nothing was overwritten.
	ErrConflict = newError(CodeConflict, "", nil)
)

var messages = map[string][2]string{
	CodeNotRunning:    {"Syncthing n'est pas démarré%s", "Syncthing is not running%s"},
	CodeBinaryMissing: {"Syncthing est introuvable (%s) : installez le paquet syncthing", "Syncthing not found (%s): install the syncthing package"},
	CodeGenerate:      {"Syncthing n'a pas pu créer son identité (%s) ; vérifiez le dossier et la place disque", "Syncthing could not create its identity (%s); check the folder and the disk space"},
	CodeStartTimeout:  {"Syncthing ne répond pas après son démarrage%s ; il va être relancé", "Syncthing does not answer after starting%s; it will be restarted"},
	CodeExited:        {"Syncthing s'est arrêté (%s) ; il va être relancé", "Syncthing stopped (%s); it will be restarted"},
	CodeAPI:           {"Syncthing a refusé une demande (%s)", "Syncthing refused a request (%s)"},
	CodeConflict:      {"non déposé : le dossier Syncthing contient déjà un autre fichier nommé « %s » ; rien n'a été écrasé", "not added: the Syncthing folder already holds a different file named \"%s\"; nothing was overwritten"},
	CodeMismatch:      {"non déposé : le contenu de « %s » ne correspond pas à sa taille ou à son empreinte SHA-256", "not added: the content of \"%s\" does not match its size or SHA-256"},
	CodeBadPath:       {"nom de fichier refusé « %s » (absolu, « .. », caché, barre oblique inverse ou caractères invalides)", "file name refused \"%s\" (absolute, '..', hidden, backslash or invalid characters)"},
}

// newError builds an Error of code; detail fills the message's %s (codes
// whose message starts its detail with a separator get it added).
func newError(code, detail string, err error) *Error {
	m := messages[code]
	switch code {
	case CodeNotRunning, CodeStartTimeout:
		if detail != "" {
			detail = " (" + detail + ")"
		}
	}
	detail = strings.ToValidUTF8(detail, "\uFFFD")
	if len(detail) > 300 {
		detail = strings.ToValidUTF8(detail[:300], "") + "…"
	}
	return &Error{Code: code, FR: fmt.Sprintf(m[0], detail), EN: fmt.Sprintf(m[1], detail), Err: err}
}
