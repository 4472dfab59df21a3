package tufclient

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Codes of Refusal.
const (
	CodeBadSignature = "bad-signature" // not signed by the keys the trusted root names
	CodeExpired      = "expired"       // metadata past its expiry at the reference time
	CodeRollback     = "rollback"      // older metadata than already trusted
	CodeMixAndMatch  = "mix-and-match" // metadata that does not match what the level above announced
	CodeTampered     = "tampered"      // a file whose hash differs from the signed one
	CodeWrongLength  = "wrong-length"  // a file whose length differs from the signed one
	CodeTooLarge     = "too-large"     // larger than the signed length or our limit
	CodeNoRelease    = "no-release"    // no release for this channel and architecture
	CodeBadManifest  = "bad-manifest"  // a signed but unusable release manifest
	CodeNetwork      = "network"       // the repository could not be reached (transient)
	CodeRepository   = "repository"    // a malformed repository
)

// Refusal is a verification that failed: Code says why, Role which file
// (root, timestamp, snapshot, targets, release, or a part), Detail what
// go-tuf or the check said.
type Refusal struct {
	Code    string
	Role    string
	Detail  string
	Expired time.Time // CodeExpired: when
	Err     error
}

func (r *Refusal) Error() string {
	s := "tuf: " + r.Code
	if r.Role != "" {
		s += " (" + r.Role + ")"
	}
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	return s
}

func (r *Refusal) Unwrap() error { return r.Err }

// Transient reports whether trying again later may succeed.
func (r *Refusal) Transient() bool { return r.Code == CodeNetwork }

func classifyFetch(err error, role string) error {
	var st *HTTPStatusError
	switch {
	case errors.Is(err, ErrTooLarge):
		return &Refusal{Code: CodeTooLarge, Role: role, Detail: err.Error(), Err: err}
	case errors.Is(err, ErrNotFound):
		return &Refusal{Code: CodeRepository, Role: role, Detail: err.Error(), Err: err}
	case errors.As(err, &st):
		return &Refusal{Code: CodeNetwork, Role: role, Detail: err.Error(), Err: err}
	}
	return &Refusal{Code: CodeNetwork, Role: role, Detail: err.Error(), Err: err}
}

// classify sorts a go-tuf error; role is the file fetched last.
func classify(err error, role string, _ any) error {
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	msg := err.Error()
	ref := func(code string) error { return &Refusal{Code: code, Role: role, Detail: msg, Err: err} }
	var (
		unsigned *metadata.ErrUnsignedMetadata
		expired  *metadata.ErrExpiredMetadata
		badVer   *metadata.ErrBadVersionNumber
		lenHash  *metadata.ErrLengthOrHashMismatch
		tooLong  *metadata.ErrDownloadLengthMismatch
		httpErr  *metadata.ErrDownloadHTTP
		dl       *metadata.ErrDownload
	)
	switch {
	case errors.As(err, &unsigned):
		return ref(CodeBadSignature)
	case errors.As(err, &expired):
		for _, r := range []string{"root", "timestamp", "snapshot", "targets"} {
			if strings.Contains(expired.Msg, r) {
				role = r
				break
			}
		}
		return &Refusal{Code: CodeExpired, Role: role, Detail: msg, Err: err}
	case errors.As(err, &badVer):
		if strings.Contains(badVer.Msg, "must be >=") || role == "snapshot" && strings.Contains(badVer.Msg, ".json version") {
			return ref(CodeRollback)
		}
		if strings.HasPrefix(badVer.Msg, "bad version number") {
			return ref(CodeRepository) // a root whose version is not the next one
		}
		return ref(CodeMixAndMatch)
	case errors.As(err, &lenHash):
		switch role {
		case "snapshot", "targets":
			return ref(CodeMixAndMatch)
		}
		if strings.Contains(lenHash.Msg, "length") {
			return ref(CodeWrongLength)
		}
		return ref(CodeTampered)
	case errors.As(err, &tooLong):
		if role == "snapshot" || role == "targets" {
			// Longer than the level above announced: not the file it signed.
			return ref(CodeMixAndMatch)
		}
		return ref(CodeTooLarge)
	case errors.As(err, &httpErr):
		return ref(CodeNetwork)
	case errors.As(err, &dl):
		return ref(CodeNetwork)
	case errors.Is(err, &metadata.ErrRepository{}), errors.Is(err, &metadata.ErrValue{}), errors.Is(err, &metadata.ErrType{}), errors.Is(err, &metadata.ErrRuntime{}):
		return ref(CodeRepository)
	}
	var st *HTTPStatusError
	if errors.As(err, &st) {
		return ref(CodeNetwork)
	}
	if strings.Contains(msg, "json") || strings.Contains(msg, "unexpected end") || strings.Contains(msg, "invalid character") {
		return ref(CodeRepository)
	}
	return &Refusal{Code: CodeNetwork, Role: role, Detail: fmt.Sprint(msg), Err: err}
}
