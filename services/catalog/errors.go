package catalog

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error is a failed catalogue operation. Error returns the French text for
// the teacher or technician, English the English one. A permanent error
// waits for the next refresh of its source (or a change of the source);
// others are retried with backoff.
type Error struct {
	Op        string // what was being done, e.g. "list channel cours_cm2"
	Status    int    // HTTP status of the answer, 0 when none
	FR, EN    string
	Permanent bool
	Err       error
}

func (e *Error) Error() string   { return e.FR }
func (e *Error) English() string { return e.EN }
func (e *Error) Unwrap() error   { return e.Err }

func permanent(op, fr, en string, err error) *Error {
	return &Error{Op: op, FR: fr, EN: en, Permanent: true, Err: err}
}

func transient(op, fr, en string, err error) *Error {
	return &Error{Op: op, FR: fr, EN: en, Err: err}
}

// errPrivateVideo is the message the issue asks for private videos.
func errPrivateVideo(op string) *Error {
	return permanent(op,
		"vidéo privée : non prise en charge (seules les vidéos publiques peuvent être mises hors ligne)",
		"private video: not supported (only public videos can be made available offline)", nil)
}

// messages returns the French and English texts of err: its own when it
// has them (English()), else a generic sentence around its text.
func messages(err error) (fr, en string) {
	var e interface{ English() string }
	if errors.As(err, &e) {
		return shorten(err.Error()), shorten(e.English())
	}
	s := shorten(err.Error())
	return "échec : " + s + " ; nouvel essai automatique", "failed: " + s + "; retrying automatically"
}

// isPermanent reports whether err waits for the next refresh.
func isPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// statusError sorts an unexpected HTTP status of a metadata request.
func statusError(op string, resp *http.Response) *Error {
	e := statusErrorText(op, resp)
	e.Status = resp.StatusCode
	return e
}

func statusErrorText(op string, resp *http.Response) *Error {
	code := resp.StatusCode
	st := fmt.Sprintf("%d", code)
	switch {
	case code == http.StatusNotFound || code == http.StatusGone:
		return permanent(op, "introuvable sur le serveur ("+op+", "+st+") ; vérifiez l'adresse de la source",
			"not found on the server ("+op+", "+st+"); check the source's address", fmt.Errorf("%s: %s", op, resp.Status))
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return permanent(op, "accès refusé par le serveur ("+op+", "+st+") ; le contenu n'est pas public ou le lien a changé",
			"access refused by the server ("+op+", "+st+"); the content is not public or the link changed", fmt.Errorf("%s: %s", op, resp.Status))
	default:
		return transient(op, "le serveur a répondu "+st+" ("+op+") ; nouvel essai automatique",
			"the server answered "+st+" ("+op+"); retrying automatically", fmt.Errorf("%s: %s", op, resp.Status))
	}
}

func netError(op string, err error) *Error {
	return transient(op, "serveur injoignable ou connexion coupée ("+op+" : "+shorten(err.Error())+") ; nouvel essai automatique",
		"server unreachable or connection cut ("+op+": "+shorten(err.Error())+"); retrying automatically", err)
}

func badAnswer(op string, err error) *Error {
	return transient(op, "réponse illisible du serveur ("+op+" : "+shorten(err.Error())+") ; nouvel essai automatique",
		"unreadable answer from the server ("+op+": "+shorten(err.Error())+"); retrying automatically", err)
}

// shorten keeps messages readable: one line, at most 300 bytes.
func shorten(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}
