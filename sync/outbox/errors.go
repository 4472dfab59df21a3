package outbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// Errors of the outbox API.
var (
	// ErrKeyConflict: Enqueue was given a key already used for another
	// content or place.
	ErrKeyConflict = errors.New("outbox: idempotency key already used for a different item")
	// ErrPathTaken: another key already sends a file to the same remote path
	// of the same destination.
	ErrPathTaken = errors.New("outbox: another item already sends to this remote path")
	// ErrNotFound: no item has this key.
	ErrNotFound = errors.New("outbox: no item with this key")
	// ErrUnknownDestination is what Connectors.Connector wraps when no
	// connector is configured for a destination id; the item fails at once.
	ErrUnknownDestination = errors.New("unknown destination")
)

// How the outbox sorts the errors of connectors (STYLE 8). A connector
// declares the kind of its errors with methods found by errors.As anywhere
// in the chain:
//
//	Permanent() bool            true: retrying cannot help (bad password,
//	                            forbidden, quota full); the item fails
//	RetryAfter() time.Duration  the server asked to wait at least this long
//	English() string            the English text; Error() is then the plain
//	                            French text shown to the teacher or technician
//
// Errors without these methods are transient: network errors, timeouts,
// resets and anything unknown are retried with backoff.
type (
	permanenter  interface{ Permanent() bool }
	retryAfterer interface{ RetryAfter() time.Duration }
	englisher    interface{ English() string }
)

// Failure is how Classify sorts an error.
type Failure struct {
	Permanent  bool
	RetryAfter time.Duration // zero when the server gave none
	FR, EN     string        // texts for people, French first
}

// Classify sorts err into transient or permanent and gives its texts.
func Classify(err error) Failure {
	var f Failure
	var p permanenter
	if errors.As(err, &p) {
		f.Permanent = p.Permanent()
	}
	var ra retryAfterer
	if errors.As(err, &ra) {
		f.RetryAfter = ra.RetryAfter()
	}
	var en englisher
	if errors.As(err, &en) {
		f.EN = en.English()
		f.FR = en.(error).Error()
		return f
	}
	detail := shorten(err.Error())
	switch {
	case errors.Is(err, ErrUnknownDestination):
		f.Permanent = true
		f.FR = "destination inconnue : elle n'est plus dans la configuration de la boîte ; " +
			"corrigez la configuration des destinations puis relancez l'envoi (" + detail + ")"
		f.EN = "unknown destination: it is no longer in the box's configuration; " +
			"fix the destinations then retry (" + detail + ")"
	case isNetwork(err):
		f.FR = "connexion au serveur de destination coupée ou impossible ; nouvel essai automatique (" + detail + ")"
		f.EN = "connection to the destination server cut or impossible; retrying automatically (" + detail + ")"
	default:
		f.FR = "erreur temporaire ; nouvel essai automatique (" + detail + ")"
		f.EN = "temporary error; retrying automatically (" + detail + ")"
	}
	return f
}

func isNetwork(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, context.DeadlineExceeded)
}

func shorten(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}

// itemError is an error the outbox itself decides about an item.
type itemError struct {
	fr, en    string
	permanent bool
	err       error
}

func (e *itemError) Error() string   { return e.fr }
func (e *itemError) English() string { return e.en }
func (e *itemError) Permanent() bool { return e.permanent }
func (e *itemError) Unwrap() error   { return e.err }

func errBlobMissing(hash string, err error) error {
	return &itemError{
		fr: "le fichier à envoyer a disparu du stockage de la boîte (" + hash[:min(12, len(hash))] +
			") ; il ne peut plus être envoyé : demandez à l'élève de le déposer à nouveau",
		en: "the file to send is gone from the box's storage (" + hash[:min(12, len(hash))] +
			"); it cannot be sent: ask the pupil to hand it in again",
		permanent: true, err: err,
	}
}

func errConflict(path string, size, wantSize int64) error {
	if size < 0 {
		return &itemError{
			fr: "un dossier porte déjà le nom « " + path + " » à la destination ; la boîte ne le remplace jamais : " +
				"renommez ou déplacez ce dossier sur le serveur, puis relancez l'envoi",
			en: "a folder is already named \"" + path + "\" at the destination; the box never replaces it: " +
				"rename or move that folder on the server, then retry",
			permanent: true,
		}
	}
	return &itemError{
		fr: fmt.Sprintf("un autre fichier porte déjà le nom « %s » dans le dossier de destination "+
			"(%d octets au lieu de %d, ou contenu différent) ; la boîte ne l'écrase jamais : "+
			"renommez ou déplacez ce fichier sur le serveur, puis relancez l'envoi", path, size, wantSize),
		en: fmt.Sprintf("another file is already named \"%s\" in the destination folder "+
			"(%d bytes instead of %d, or different content); the box never overwrites it: "+
			"rename or move that file on the server, then retry", path, size, wantSize),
		permanent: true,
	}
}

func errMissingAfterSend(path string) error {
	return &itemError{
		fr: "le fichier « " + path + " » est introuvable sur le serveur juste après son envoi ; nouvel essai automatique",
		en: "the file \"" + path + "\" cannot be found on the server right after it was sent; retrying automatically",
	}
}

func errTooManyRecoveries(n int) error {
	return &itemError{
		fr: fmt.Sprintf("l'envoi de ce fichier a été interrompu %d fois par un arrêt brutal de la boîte ; "+
			"il est mis de côté pour ne pas bloquer les autres : relancez-le depuis la console", n),
		en: fmt.Sprintf("sending this file was interrupted %d times by the box stopping abruptly; "+
			"it is set aside so as not to block the others: retry it from the console", n),
		permanent: true,
	}
}
