package captive

import "fmt"

// messages holds every user-facing string of captive, by language then key.
var messages = map[string]map[string]string{
	"fr": {
		"charter.title":     "Charte d'usage du réseau de l'école",
		"charter.intro":     "Pour utiliser le réseau Wi-Fi de l'école, lisez la charte ci-dessous puis acceptez-la.",
		"charter.accept":    "J'accepte",
		"charter.until":     "Votre acceptation vaut jusqu'au %s.",
		"charter.done":      "Vous avez déjà accepté la charte, jusqu'au %s.",
		"charter.portal":    "Aller aux ressources de l'école",
		"charter.skip":      "Aller au contenu",
		"charter.lang":      "English",
		"charter.lang.code": "en",
		"refused.title":     "Demande refusée",
		"refused.text":      "Votre acceptation n'a pas pu être enregistrée : le formulaire a expiré ou ne vient pas de cette page. Rechargez la charte et acceptez-la de nouveau.",
		"refused.back":      "Revenir à la charte",
		"redirect.text":     "Ce réseau demande d'accepter la charte de l'école :",
		"error.title":       "Erreur du serveur",
		"error.text":        "Votre acceptation n'a pas pu être enregistrée. Réessayez dans quelques instants ; si l'erreur continue, prévenez l'enseignant ou le technicien.",
		"date.format":       "%[1]d %[2]s à %02[3]dh%02[4]d",
		"months":            "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
		"status.header":     "ADRESSE\tMAC\tCHARTE\tJUSQU'AU\tVU LE",
		"status.yes":        "acceptée",
		"status.no":         "non",
		"status.none":       "Aucun appareil connu.",
		"status.off":        "Étape de la charte désactivée : tous les appareils sont considérés comme acceptés.",
	},
	"en": {
		"charter.title":     "School network usage charter",
		"charter.intro":     "To use the school's Wi-Fi network, read the charter below and accept it.",
		"charter.accept":    "I accept",
		"charter.until":     "Your acceptance lasts until %s.",
		"charter.done":      "You have already accepted the charter, until %s.",
		"charter.portal":    "Go to the school's resources",
		"charter.skip":      "Skip to content",
		"charter.lang":      "Français",
		"charter.lang.code": "fr",
		"refused.title":     "Request refused",
		"refused.text":      "Your acceptance could not be recorded: the form expired or did not come from this page. Reload the charter and accept it again.",
		"refused.back":      "Back to the charter",
		"redirect.text":     "This network asks you to accept the school's charter:",
		"error.title":       "Server error",
		"error.text":        "Your acceptance could not be recorded. Try again in a moment; if the error continues, tell the teacher or the technician.",
		"date.format":       "%[2]s %[1]d at %02[3]d:%02[4]d",
		"months":            "January February March April May June July August September October November December",
		"status.header":     "ADDRESS\tMAC\tCHARTER\tUNTIL\tSEEN",
		"status.yes":        "accepted",
		"status.no":         "no",
		"status.none":       "No known device.",
		"status.off":        "Charter step disabled: every device counts as accepted.",
	},
}

// msg returns the text of key in lang, falling back to French.
func msg(lang, key string) string {
	if m, ok := messages[lang]; ok {
		if s, ok := m[key]; ok {
			return s
		}
	}
	return messages["fr"][key]
}

func msgf(lang, key string, args ...any) string { return fmt.Sprintf(msg(lang, key), args...) }

// The default charter: short, for pupils, in plain words. Schools replace
// it with their own through Charter.Text / Charter.TextEN.
const defaultCharterFR = `Le réseau Wi-Fi de l'école sert aux activités de la classe. Je l'utilise pour apprendre, chercher des informations et rendre mon travail.

Je respecte les autres : je ne publie ni ne partage rien qui puisse blesser, gêner ou tromper quelqu'un, et je ne diffuse pas de photo ou de vidéo d'une personne sans son accord.

Je protège mes informations : je garde mes mots de passe pour moi et je ne donne pas d'informations personnelles sur Internet.

Je respecte le matériel et le travail des autres : je n'essaie pas de contourner les protections du réseau, et je cite mes sources.

Si quelque chose me choque ou m'inquiète, j'en parle tout de suite à un adulte de l'école.

Les enseignants peuvent vérifier l'usage qui est fait du réseau. Si je ne respecte pas cette charte, mon accès peut être suspendu.`

const defaultCharterEN = `The school's Wi-Fi network is for class activities. I use it to learn, look for information and hand in my work.

I respect others: I do not post or share anything that could hurt, embarrass or deceive someone, and I do not share a photo or video of a person without their consent.

I protect my information: I keep my passwords to myself and I do not give personal information on the Internet.

I respect the equipment and other people's work: I do not try to get around the network's protections, and I cite my sources.

If something shocks or worries me, I tell an adult at the school straight away.

Teachers may check how the network is used. If I do not follow this charter, my access may be suspended.`
