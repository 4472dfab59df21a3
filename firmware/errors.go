package firmware

import (
	"errors"
	"fmt"
	"strings"
)

// Codes of Error: why an update was refused, failed or rolled back. The
// history keeps them with their French and English texts.
const (
	// Refused by the TUF verification (see docs/updates.md).
	CodeBadSignature = "bad-signature"
	CodeExpired      = "expired"
	CodeRollback     = "rollback"
	CodeMixAndMatch  = "mix-and-match"
	CodeTampered     = "tampered"
	CodeWrongLength  = "wrong-length"
	CodeTooLarge     = "too-large"
	CodeNoRelease    = "no-release"
	CodeBadManifest  = "bad-manifest"
	CodeNetwork      = "network"
	CodeRepository   = "repository"
	CodeClock        = "clock-not-plausible"
	CodeDowngrade    = "not-newer"
	CodeNoRepository = "no-repository"
	CodeBundle       = "bundle-unreadable"
	CodeBundleGone   = "bundle-removed"
	CodeBusy         = "busy"
	CodeUpToDate     = "up-to-date"
	CodeRolledBefore = "rolled-back-before"

	// Failures while writing the inactive slot.
	CodeSlotTooSmall = "slot-too-small"
	CodeSlotWrite    = "slot-write"
	CodeSlotVerify   = "slot-verify"
	CodeSourceGone   = "source-gone"
	CodeReentries    = "too-many-restarts"
	CodeReboot       = "reboot-failed"

	// Outcomes of the trial boot.
	CodeHealthReady      = "health-ready"
	CodeHealthMigrations = "health-migrations"
	CodeHealthPortal     = "health-portal"
	CodeHealthConfig     = "health-config"
	CodeVersionMismatch  = "version-mismatch"
	CodeTriesExhausted   = "tries-exhausted"
	CodeTryNotConfirmed  = "tryboot-not-confirmed"
	CodeOldSlotBooted    = "old-slot-booted"
	CodeEntryMissing     = "entry-missing"
	CodeCommitLost       = "commit-interrupted"
	CodeTrialRestarts    = "trial-restarts"
	CodeCancelled        = "cancelled"
	CodeTrialPending     = "trial-pending"
	CodeNothingToCancel  = "nothing-to-cancel"
)

// Error is an update refused, failed or rolled back. Error() is the French
// text a technician reads; English() the English one.
type Error struct {
	Code      string
	FR, EN    string
	Transient bool // trying again later may work (network, clock, busy)
	Err       error
}

func (e *Error) Error() string   { return e.FR }
func (e *Error) English() string { return e.EN }
func (e *Error) Unwrap() error   { return e.Err }

// Reason is why an attempt ended the way it did, in both languages.
type Reason struct {
	Code string
	FR   string
	EN   string
}

func (e *Error) reason() Reason { return Reason{Code: e.Code, FR: e.FR, EN: e.EN} }

type text struct{ fr, en string }

// texts holds each code's texts; %s is the detail.
var texts = map[string]text{
	CodeBadSignature:     {"mise à jour refusée : la signature des métadonnées %s n'est pas valide (clé inconnue ou falsification)", "update refused: the signature of the %s metadata is not valid (unknown key or forgery)"},
	CodeExpired:          {"mise à jour refusée : les métadonnées %s ont expiré ; le dépôt n'est plus tenu à jour ou l'horloge de la boîte est fausse", "update refused: the %s metadata has expired; the repository is no longer maintained or the box's clock is wrong"},
	CodeRollback:         {"mise à jour refusée : le dépôt présente des métadonnées %s plus anciennes que celles déjà vues (tentative de retour en arrière)", "update refused: the repository offers %s metadata older than already seen (rollback attempt)"},
	CodeMixAndMatch:      {"mise à jour refusée : les métadonnées %s ne correspondent pas à celles annoncées (mélange de versions du dépôt)", "update refused: the %s metadata does not match what was announced (mix-and-match of repository versions)"},
	CodeTampered:         {"mise à jour refusée : le fichier %s a été modifié (empreinte SHA-256 différente de la signature)", "update refused: file %s was tampered with (SHA-256 differs from the signed one)"},
	CodeWrongLength:      {"mise à jour refusée : le fichier %s n'a pas la taille signée", "update refused: file %s does not have the signed length"},
	CodeTooLarge:         {"mise à jour refusée : le fichier %s est plus gros que permis", "update refused: file %s is larger than allowed"},
	CodeNoRelease:        {"aucune version publiée pour ce canal et cette architecture (%s)", "no release published for this channel and architecture (%s)"},
	CodeBadManifest:      {"mise à jour refusée : la description de la version est inutilisable (%s)", "update refused: the release description is unusable (%s)"},
	CodeNetwork:          {"le dépôt de mises à jour est injoignable (%s) ; nouvel essai plus tard", "the update repository cannot be reached (%s); will try again later"},
	CodeRepository:       {"le dépôt de mises à jour est mal formé (%s) ; prévenez son responsable", "the update repository is malformed (%s); tell its maintainer"},
	CodeClock:            {"l'horloge de la boîte n'est pas encore à l'heure (%s) ; la vérification attend la synchronisation NTP", "the box's clock is not set yet (%s); verification waits for NTP"},
	CodeDowngrade:        {"mise à jour refusée : la version %s n'est pas plus récente que celle installée", "update refused: version %s is not newer than the installed one"},
	CodeNoRepository:     {"aucun dépôt de mises à jour n'est configuré ; utilisez une clé USB (preau update apply --from FICHIER)", "no update repository is configured; use a USB key (preau update apply --from FILE)"},
	CodeBundle:           {"mise à jour refusée : la clé USB ne contient pas de mise à jour lisible (%s)", "update refused: the USB key holds no readable update (%s)"},
	CodeBundleGone:       {"mise à jour abandonnée : la clé USB a été retirée avant la fin de la copie (%s)", "update abandoned: the USB key was removed before the copy ended (%s)"},
	CodeBusy:             {"une mise à jour est déjà en cours ; voyez preau update status", "an update is already running; see preau update status"},
	CodeUpToDate:         {"la boîte est à jour (version %s)", "the box is up to date (version %s)"},
	CodeSlotTooSmall:     {"mise à jour impossible : la partition %s est trop petite pour l'image", "update impossible: partition %s is too small for the image"},
	CodeSlotWrite:        {"mise à jour échouée : écriture impossible sur la partition inactive (%s) ; le disque est peut-être défaillant", "update failed: cannot write the inactive partition (%s); the disk may be failing"},
	CodeSlotVerify:       {"mise à jour échouée : la partition inactive ne relit pas ce qui a été écrit (%s) ; le disque est peut-être défaillant", "update failed: the inactive partition does not read back what was written (%s); the disk may be failing"},
	CodeSourceGone:       {"mise à jour échouée : le dépôt ne propose plus le fichier %s ; une nouvelle vérification suivra", "update failed: the repository no longer has file %s; a new check will follow"},
	CodeReentries:        {"mise à jour abandonnée : l'étape « %s » a été reprise trop de fois sans aboutir (redémarrages ou erreurs répétés)", "update abandoned: step \"%s\" was restarted too many times without finishing (repeated restarts or errors)"},
	CodeReboot:           {"le redémarrage vers la nouvelle version a échoué (%s)", "the reboot into the new version failed (%s)"},
	CodeHealthReady:      {"retour à l'ancienne version : la nouvelle n'a pas signalé qu'elle était prête à temps (%s)", "rolled back: the new version did not report ready in time (%s)"},
	CodeHealthMigrations: {"retour à l'ancienne version : la nouvelle n'a pas terminé la mise à niveau de la base de données (%s)", "rolled back: the new version did not finish migrating the database (%s)"},
	CodeHealthPortal:     {"retour à l'ancienne version : le portail de la nouvelle version ne répondait pas (%s)", "rolled back: the new version's portal did not answer (%s)"},
	CodeHealthConfig:     {"retour à l'ancienne version : la nouvelle version refuse la configuration (%s)", "rolled back: the new version rejects the configuration (%s)"},
	CodeVersionMismatch:  {"retour à l'ancienne version : la partition démarrée contient la version %s", "rolled back: the booted partition holds version %s"},
	CodeTriesExhausted:   {"retour à l'ancienne version : la nouvelle n'a pas démarré (%s essais épuisés)", "rolled back: the new version did not start (%s tries used up)"},
	CodeTryNotConfirmed:  {"retour à l'ancienne version : la nouvelle n'a pas confirmé son démarrage (essai unique du Raspberry Pi)%s", "rolled back: the new version did not confirm its start (the Raspberry Pi's single try)%s"},
	CodeOldSlotBooted:    {"retour à l'ancienne version : l'ancienne partition a été démarrée pendant l'essai (%s)", "rolled back: the old partition was booted during the trial (%s)"},
	CodeEntryMissing:     {"retour à l'ancienne version : l'entrée de démarrage de la nouvelle version a disparu%s", "rolled back: the new version's boot entry disappeared%s"},
	CodeCommitLost:       {"retour à l'ancienne version : la validation de la nouvelle version a été interrompue%s", "rolled back: confirming the new version was interrupted%s"},
	CodeTrialRestarts:    {"retour à l'ancienne version : preau a redémarré trop souvent pendant l'essai de la nouvelle version%s", "rolled back: preau restarted too often while the new version was on trial%s"},
	CodeCancelled:        {"mise à jour annulée par le technicien : %s", "update cancelled by the technician: %s"},
	CodeTrialPending:     {"la nouvelle version est en essai ; attendez sa validation ou son retour arrière", "the new version is on trial; wait for it to commit or roll back"},
	CodeNothingToCancel:  {"aucune mise à jour en cours à annuler ; une version validée ne revient pas en arrière (sa base de données a été mise à niveau)", "no update in progress to cancel; a committed version is not rolled back (its database was migrated)"},
}

// newError builds an Error for code with detail.
func newError(code, detail string, err error) *Error {
	t, ok := texts[code]
	if !ok {
		t = text{"mise à jour : %s", "update: %s"}
	}
	e := &Error{Code: code, Err: err}
	if strings.Contains(t.fr, "%s") {
		d := displayable(detail)
		e.FR, e.EN = fmt.Sprintf(t.fr, d), fmt.Sprintf(t.en, d)
	} else {
		e.FR, e.EN = t.fr, t.en
	}
	switch code {
	case CodeNetwork, CodeClock, CodeBusy, CodeReboot:
		e.Transient = true
	}
	return e
}

// displayable makes a detail from a hostile repository safe to show.
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

// Sentinel errors callers may test with errors.Is.
var (
	// ErrRebooting is returned by Apply and ApplyFile once the reboot into
	// the new slot was asked for.
	ErrRebooting = errors.New("rebooting into the new version")
	// ErrStillWorking is what a Health check returns (wrapped) while its
	// work is under way and progressing (a long migration): the gate waits
	// longer and asks systemd for more time.
	ErrStillWorking = errors.New("still working")
)

// asError returns err's *Error, if any.
func asError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
