package webdav

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is a failed WebDAV operation. Error returns the French text for the
// teacher or technician, English the English one; Permanent and RetryAfter
// tell the outbox whether and when to retry (sync/outbox sorts errors by
// these methods).
type Error struct {
	Op     string // what was being done, e.g. "PUT Devoirs/a.pdf"
	Status int    // HTTP status; 0 for network errors
	FR, EN string

	permanent  bool
	retryAfter time.Duration
	Err        error
}

func (e *Error) Error() string             { return e.FR }
func (e *Error) English() string           { return e.EN }
func (e *Error) Permanent() bool           { return e.permanent }
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }
func (e *Error) Unwrap() error             { return e.Err }

// errNoChunking: the server has no Nextcloud chunked upload; the client
// falls back to a plain PUT.
var errNoChunking = errors.New("webdav: no chunked upload on this server")

// errStalled cancels a request that moved no byte for Config.IdleTimeout.
var errStalled = errors.New("webdav: transfer stalled")

func transient(op string, err error, fr, en string) *Error {
	return &Error{Op: op, FR: fr, EN: en, Err: err}
}

// netError wraps a failure to talk to the server: always transient.
func netError(op string, err error, stalled time.Duration) *Error {
	if errors.Is(err, errStalled) {
		return transient(op, err,
			fmt.Sprintf("transfert bloqué (rien n'a bougé pendant %v) : connexion coupée, nouvel essai automatique", stalled),
			fmt.Sprintf("transfer stalled (nothing moved for %v): connection cut, retrying automatically", stalled))
	}
	return transient(op, err,
		"connexion au serveur de destination coupée ou impossible ("+op+" : "+shorten(err.Error())+") ; nouvel essai automatique",
		"connection to the destination server cut or impossible ("+op+": "+shorten(err.Error())+"); retrying automatically")
}

// statusError sorts an unexpected HTTP answer. public says the destination
// is a share link (the advice differs).
func statusError(op string, resp *http.Response, public bool, now time.Time) *Error {
	code := resp.StatusCode
	e := &Error{Op: op, Status: code, Err: fmt.Errorf("%s: %s", op, resp.Status)}
	e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	st := strconv.Itoa(code)
	switch {
	case code == http.StatusUnauthorized && public:
		e.permanent = true
		e.FR = "le lien de partage demande un mot de passe, ou celui configuré est faux (401) ; " +
			"demandez à l'enseignant le mot de passe du partage ou un nouveau lien de dépôt, puis relancez l'envoi"
		e.EN = "the share link needs a password, or the configured one is wrong (401); " +
			"ask the teacher for the share's password or a new drop link, then retry"
	case code == http.StatusUnauthorized:
		e.permanent = true
		e.FR = "le serveur refuse l'identifiant ou le mot de passe d'application (401) ; créez un nouveau mot de passe " +
			"d'application dans Nuage (Paramètres › Sécurité), mettez-le dans la destination, puis relancez l'envoi"
		e.EN = "the server refuses the login or the app password (401); create a new app password in Nuage " +
			"(Settings › Security), put it in the destination, then retry"
	case code == http.StatusForbidden:
		e.permanent = true
		e.FR = "le serveur interdit d'écrire dans le dossier de destination (403) ; vérifiez que le compte ou le lien " +
			"de partage permet de déposer des fichiers dans ce dossier, puis relancez l'envoi"
		e.EN = "the server forbids writing to the destination folder (403); check that the account or share link " +
			"allows uploading files to this folder, then retry"
	case code == http.StatusNotFound && public:
		e.permanent = true
		e.FR = "le lien de partage n'existe plus ou a expiré (404) ; demandez à l'enseignant un nouveau lien de dépôt, " +
			"mettez à jour la destination, puis relancez l'envoi"
		e.EN = "the share link no longer exists or has expired (404); ask the teacher for a new drop link, " +
			"update the destination, then retry"
	case code == http.StatusRequestEntityTooLarge:
		e.permanent = true
		e.FR = "le fichier est trop gros pour le serveur de destination (413) ; demandez à l'administrateur du serveur " +
			"d'augmenter la taille maximale des envois"
		e.EN = "the file is too large for the destination server (413); ask the server's administrator " +
			"to raise the upload size limit"
	case code == http.StatusInsufficientStorage:
		e.permanent = true
		e.FR = "l'espace de stockage de la destination est plein (507) ; libérez de la place dans Nuage " +
			"ou demandez plus d'espace, puis relancez l'envoi"
		e.EN = "the destination's storage is full (507); free some space in Nuage or ask for more, then retry"
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code == http.StatusLocked ||
		code == http.StatusConflict || code >= 500:
		e.FR = "le serveur de destination est indisponible ou occupé (" + op + " : " + st + ") ; nouvel essai automatique"
		e.EN = "the destination server is unavailable or busy (" + op + ": " + st + "); retrying automatically"
	case code >= 400:
		e.permanent = true
		e.FR = "le serveur de destination refuse la requête (" + op + " : " + st + ") ; vérifiez l'adresse " +
			"de la destination et ses droits, puis relancez l'envoi"
		e.EN = "the destination server refuses the request (" + op + ": " + st + "); check the destination's " +
			"address and rights, then retry"
	default:
		e.FR = "réponse inattendue du serveur de destination (" + op + " : " + st + ") ; nouvel essai automatique"
		e.EN = "unexpected answer from the destination server (" + op + ": " + st + "); retrying automatically"
	}
	return e
}

// parseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3): seconds
// or an HTTP date. Zero when absent or unreadable; bounded to 7 days.
func parseRetryAfter(v string, now time.Time) time.Duration {
	const most = 7 * 24 * time.Hour
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || n > uint64(most/time.Second) {
			return most
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return 0
	case d > most:
		return most
	}
	return d
}

func shorten(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

func errLocalCorrupt(op string) *Error {
	return &Error{Op: op, permanent: true,
		FR: "le fichier à envoyer est abîmé dans la boîte (son empreinte SHA-256 ne correspond plus) ; " +
			"il n'est pas envoyé : demandez à l'élève de le déposer à nouveau",
		EN: "the file to send is damaged in the box (its SHA-256 no longer matches); " +
			"it is not sent: ask the pupil to hand it in again",
		Err: errors.New("webdav: local body does not match its sha256")}
}
