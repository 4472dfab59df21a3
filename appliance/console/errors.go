package console

import (
	"errors"
	"time"
)

// Error is a refusal a technician, a head teacher or a teacher reads:
// Error returns the French text, English the English one. Code names the
// reason; Until is when a lock ends (CodeLocked).
type Error struct {
	Code   string
	FR, EN string
	Until  time.Time
	Err    error
}

func (e *Error) Error() string   { return e.FR }
func (e *Error) English() string { return e.EN }
func (e *Error) Unwrap() error   { return e.Err }

// Text returns the message in lang ("fr" or "en").
func (e *Error) Text(lang string) string {
	if lang == "en" {
		return e.EN
	}
	return e.FR
}

// Codes of Error.
const (
	CodeBadLogin       = "bad-login"
	CodeBadName        = "bad-name"
	CodeBadRole        = "bad-role"
	CodeWeakPassword   = "weak-password"
	CodeBadHash        = "bad-hash"
	CodeAccountExists  = "account-exists"
	CodeNoAccount      = "no-account"
	CodeBadCredentials = "bad-credentials"
	CodeLocked         = "locked"
	CodeBadCode        = "bad-code"
	CodeSetupDone      = "setup-done"
	CodeLastTechnicien = "last-technicien"
	CodeBadTokenName   = "bad-token-name"
)

// Sentinel errors wrapped by the Error values of the same names, for
// errors.Is.
var (
	ErrBadCredentials = errors.New("console: bad login or password")
	ErrLocked         = errors.New("console: locked after too many failures")
	ErrBadCode        = errors.New("console: wrong code")
	ErrAccountExists  = errors.New("console: account exists")
	ErrNoAccount      = errors.New("console: no such account")
	ErrSetupDone      = errors.New("console: a technicien account exists: setup is over")
	ErrLastTechnicien = errors.New("console: last active technicien account")
	ErrInvalid        = errors.New("console: invalid value")
)

func invalid(code, fr, en string) *Error {
	return &Error{Code: code, FR: fr, EN: en, Err: ErrInvalid}
}

// badCredentials never says whether the login exists.
func badCredentials() *Error {
	return &Error{Code: CodeBadCredentials, Err: ErrBadCredentials,
		FR: "Identifiant ou mot de passe incorrect.",
		EN: "Wrong login or password."}
}

func badCode() *Error {
	return &Error{Code: CodeBadCode, Err: ErrBadCode,
		FR: "Code incorrect ou déjà utilisé : saisissez le code affiché maintenant par votre application.",
		EN: "Wrong or already used code: type the code your app shows now."}
}

func noAccount(login string) *Error {
	return &Error{Code: CodeNoAccount, Err: ErrNoAccount,
		FR: "Aucun compte n'a l'identifiant " + login + ".",
		EN: "No account has the login " + login + "."}
}

func lastTechnicien() *Error {
	return &Error{Code: CodeLastTechnicien, Err: ErrLastTechnicien,
		FR: "C'est le dernier compte technicien actif : créez-en un autre avant de le désactiver ou de changer son rôle.",
		EN: "This is the last active technicien account: create another one before you disable it or change its role."}
}
