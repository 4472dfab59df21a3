package assignments

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// catalogues holds every user-facing string of the pages, by language then
// key. Pupils are addressed with "tu", teachers with "vous".
var catalogues = map[string]map[string]string{
	"fr": {
		"site.tagline":     "devoirs",
		"skip":             "Aller au contenu",
		"title.error":      "Erreur :",
		"lang.switch":      "English",
		"lang.switch.code": "en",
		"nav.label":        "Menu",
		"nav.portal":       "Ressources",
		"nav.handin":       "Rendre un devoir",
		"nav.receipts":     "Mes reçus",
		"nav.teacher":      "Espace enseignant",
		"footer.text":      "Préau, le serveur de l'école : les devoirs rendus ici sont gardés même sans Internet, puis envoyés à l'enseignant.",
		"size.units":       "o ko Mo Go To",
		"decimal":          ",",
		"at":               "à",
		"list.sep":         ", ",

		"classes.title":   "Rendre un devoir",
		"classes.intro":   "Choisis ta classe.",
		"classes.empty":   "Aucun devoir n'est ouvert pour l'instant.",
		"classes.label":   "Classes",
		"lookup.title":    "Retrouver un reçu",
		"lookup.label":    "Code du reçu",
		"lookup.hint":     "Le code est écrit sur le reçu, par exemple K7Q-4PD.",
		"lookup.button":   "Afficher le reçu",
		"lookup.notfound": "Aucun reçu ne porte le code « %s ». Vérifie le code.",
		"lookup.limited":  "Trop de codes essayés. Réessaie dans %d minutes.",
		"class.title":     "Classe %s",
		"class.intro":     "Choisis le devoir à rendre.",
		"class.empty":     "Aucun devoir n'est ouvert pour cette classe.",
		"due":             "À rendre le %s",
		"due.passed":      "date dépassée",

		"handin.instructions":  "Consignes",
		"handin.who":           "Qui rend ce devoir ?",
		"handin.firstname":     "Ton prénom",
		"handin.initial":       "Initiale de ton nom",
		"handin.initial.hint":  "Une lettre, par exemple M.",
		"handin.work":          "Ton travail",
		"handin.photo":         "Prendre une photo",
		"handin.files":         "Joindre des fichiers",
		"handin.limits":        "Types acceptés : %s. Au plus %s par fichier, %s en tout, %d fichiers.",
		"handin.text":          "Écrire ton texte",
		"handin.text.hint":     "Tu peux écrire ton travail ici au lieu de joindre un fichier, ou en plus.",
		"handin.submit":        "Rendre mon devoir",
		"handin.closed":        "Ce devoir est fermé : il n'accepte plus de travaux. Demande à ton enseignant.",
		"handin.late.refused":  "La date de rendu est passée : ce devoir n'accepte plus de travaux. Demande à ton enseignant.",
		"handin.late.accepted": "La date de rendu est passée : tu peux encore rendre ce devoir, il sera marqué « en retard ».",

		"err.title":         "Ton devoir n'a pas été rendu :",
		"err.csrf":          "Le formulaire a expiré. Recharge la page et recommence.",
		"err.firstname":     "Écris ton prénom (30 lettres au plus).",
		"err.initial":       "Écris l'initiale de ton nom : une lettre.",
		"err.nothing":       "Choisis au moins un fichier ou écris un texte.",
		"err.toomany":       "Tu as choisi trop de fichiers : %d au plus.",
		"err.filetoolarge":  "Le fichier « %s » est trop gros : %s au plus par fichier.",
		"err.totaltoolarge": "L'envoi est trop gros : %s au plus en tout. Envoie moins de fichiers, ou des fichiers plus petits.",
		"err.empty":         "Le fichier « %s » est vide : choisis le bon fichier.",
		"err.type":          "Le fichier « %s » n'est pas d'un type accepté pour ce devoir. Types acceptés : %s.",
		"err.texttoolong":   "Le texte est trop long : %s au plus.",
		"err.badform":       "Le formulaire reçu est incomplet ou abîmé. Recharge la page et recommence.",
		"err.server":        "Le serveur n'a pas pu enregistrer ton devoir. Réessaie dans un instant ; si cela continue, préviens ton enseignant.",
		"err.script.size":   "Le fichier « {name} » est trop gros : {max} au plus par fichier.",
		"err.script.total":  "Les fichiers choisis sont trop gros : {max} au plus en tout.",
		"err.script.count":  "Tu as choisi trop de fichiers : {max} au plus.",
		"err.script.type":   "Le fichier « {name} » n'est pas d'un type accepté pour ce devoir.",
		"err.script.empty":  "Le fichier « {name} » est vide.",

		"receipt.title":      "Reçu",
		"receipt.done":       "Ton devoir est bien rendu.",
		"receipt.code":       "Code du reçu",
		"receipt.keep":       "Garde ce code : il permet de retrouver ce reçu depuis n'importe quel appareil de l'école.",
		"receipt.assignment": "Devoir",
		"receipt.class":      "Classe",
		"receipt.pupil":      "Élève",
		"receipt.time":       "Reçu le",
		"receipt.files":      "Fichiers",
		"receipt.state":      "État",
		"receipt.late":       "Rendu en retard",
		"receipt.text":       "texte écrit",
		"receipt.another":    "Rendre un autre devoir",
		"receipts.title":     "Mes reçus",
		"receipts.intro":     "Les devoirs rendus depuis cet appareil.",
		"receipts.empty":     "Aucun devoir n'a encore été rendu depuis cet appareil.",
		"state.pending":      "reçu, en attente d'envoi",
		"state.sent":         "envoyé",
		"state.failed":       "échec, l'enseignant est prévenu",

		"t.login.title":    "Connexion enseignant",
		"t.login.login":    "Identifiant",
		"t.login.password": "Mot de passe",
		"t.login.submit":   "Se connecter",
		"t.login.failed":   "Identifiant ou mot de passe incorrect.",
		"t.login.limited":  "Trop de tentatives de connexion. Réessayez dans %d minutes.",
		"t.logout":         "Se déconnecter",
		"t.hello":          "Connecté : %s",
		"t.csrf":           "Le formulaire a expiré. Rechargez la page et recommencez.",

		"t.list.title":  "Mes devoirs",
		"t.list.new":    "Créer un devoir",
		"t.list.empty":  "Vous n'avez encore créé aucun devoir.",
		"t.list.open":   "Devoirs ouverts",
		"t.list.closed": "Devoirs fermés",
		"t.col.title":   "Devoir",
		"t.col.class":   "Classe",
		"t.col.due":     "Échéance",
		"t.col.handins": "Rendus",
		"t.col.failed":  "Échecs d'envoi",

		"t.new.title":        "Nouveau devoir",
		"t.f.title":          "Titre",
		"t.f.class":          "Code de la classe",
		"t.f.class.hint":     "Par exemple CM2-A. Les élèves choisiront ce code.",
		"t.f.due":            "Date de rendu",
		"t.f.duetime":        "Heure limite",
		"t.f.instructions":   "Consignes (facultatif)",
		"t.f.destination":    "Où envoyer les travaux",
		"t.f.kinds":          "Types de fichiers acceptés",
		"t.f.maxsize":        "Taille maximale d'un fichier, en Mo",
		"t.f.maxsize.hint":   "Entre 1 et %d Mo.",
		"t.f.refuselate":     "Refuser les travaux rendus après la date",
		"t.f.refuselate.no":  "Sinon, ils sont acceptés et marqués « en retard ».",
		"t.f.submit":         "Créer le devoir",
		"t.nodest":           "Aucune destination n'est configurée sur ce serveur : demandez au technicien d'en ajouter une avant de créer un devoir.",
		"t.err.title":        "Le devoir n'a pas été créé :",
		"t.err.title.field":  "Donnez un titre de 200 caractères au plus.",
		"t.err.class":        "Code de classe invalide : de 1 à 24 lettres, chiffres, tirets, points ou espaces.",
		"t.err.due":          "Date ou heure de rendu invalide.",
		"t.err.destination":  "Choisissez une destination dans la liste.",
		"t.err.kinds":        "Cochez au moins un type de fichier.",
		"t.err.maxsize":      "Taille maximale invalide : entre 1 et %d Mo.",
		"t.err.instructions": "Les consignes sont trop longues : %d caractères au plus.",

		"t.a.pupils":        "Les élèves rendent ce devoir depuis « Rendre un devoir », classe %s.",
		"t.a.close":         "Fermer le devoir",
		"t.a.close.why":     "Un devoir fermé n'accepte plus de travaux ; ceux déjà rendus restent ici.",
		"t.a.closed":        "Fermé le %s.",
		"t.a.open":          "Ouvert : les élèves peuvent rendre leur travail.",
		"t.a.handins":       "Travaux rendus",
		"t.a.summary":       "Travaux rendus : %d, dont en retard : %d.",
		"t.a.failed":        "Fichiers non envoyés : %d. Le détail est ci-dessous.",
		"t.a.none":          "Aucun travail rendu pour l'instant.",
		"t.a.late":          "en retard",
		"t.a.download":      "Télécharger",
		"t.a.dest":          "Destination",
		"t.a.kinds":         "Types acceptés",
		"t.a.maxsize":       "Taille maximale d'un fichier",
		"t.a.refuse":        "Travaux en retard",
		"t.a.refuse.y":      "refusés",
		"t.a.refuse.n":      "acceptés et marqués « en retard »",
		"t.a.back":          "Retour à mes devoirs",
		"t.col.pupil":       "Élève",
		"t.col.time":        "Reçu le",
		"t.col.code":        "Reçu",
		"t.col.files":       "Fichiers",
		"t.state.queued":    "en attente d'envoi",
		"t.state.sending":   "envoi en cours",
		"t.state.delivered": "envoyé",
		"t.state.failed":    "échec d'envoi",

		"kind.image":  "photos et images",
		"kind.pdf":    "PDF",
		"kind.office": "documents bureautiques (ODT, DOCX, ODS, XLSX, ODP, PPTX)",
		"kind.audio":  "enregistrements audio",
		"kind.text":   "texte",

		"notfound.title": "Page introuvable",
		"notfound.text":  "La page demandée n'existe pas, ou le devoir a été retiré.",
		"notfound.back":  "Retour aux devoirs",
		"error.title":    "Erreur du serveur",
		"error.text":     "Une erreur s'est produite. Réessayez dans quelques instants ; si elle continue, prévenez le technicien.",
	},
	"en": {
		"site.tagline":     "homework",
		"skip":             "Skip to content",
		"title.error":      "Error:",
		"lang.switch":      "Français",
		"lang.switch.code": "fr",
		"nav.label":        "Menu",
		"nav.portal":       "Resources",
		"nav.handin":       "Hand in homework",
		"nav.receipts":     "My receipts",
		"nav.teacher":      "Teachers",
		"footer.text":      "Préau, the school's server: work handed in here is kept even without the Internet, then sent to the teacher.",
		"size.units":       "B kB MB GB TB",
		"decimal":          ".",
		"at":               "at",
		"list.sep":         ", ",

		"classes.title":   "Hand in homework",
		"classes.intro":   "Choose your class.",
		"classes.empty":   "No homework is open at the moment.",
		"classes.label":   "Classes",
		"lookup.title":    "Find a receipt",
		"lookup.label":    "Receipt code",
		"lookup.hint":     "The code is written on the receipt, for example K7Q-4PD.",
		"lookup.button":   "Show the receipt",
		"lookup.notfound": "No receipt has the code “%s”. Check the code.",
		"lookup.limited":  "Too many codes tried. Try again in %d minutes.",
		"class.title":     "Class %s",
		"class.intro":     "Choose the homework to hand in.",
		"class.empty":     "No homework is open for this class.",
		"due":             "Due on %s",
		"due.passed":      "past due",

		"handin.instructions":  "Instructions",
		"handin.who":           "Who is handing in this homework?",
		"handin.firstname":     "Your first name",
		"handin.initial":       "Initial of your surname",
		"handin.initial.hint":  "One letter, for example M.",
		"handin.work":          "Your work",
		"handin.photo":         "Take a photo",
		"handin.files":         "Attach files",
		"handin.limits":        "Accepted types: %s. At most %s per file, %s in all, %d files.",
		"handin.text":          "Write your text",
		"handin.text.hint":     "You can write your work here instead of attaching a file, or as well.",
		"handin.submit":        "Hand in my homework",
		"handin.closed":        "This homework is closed: it no longer accepts work. Ask your teacher.",
		"handin.late.refused":  "The due date has passed: this homework no longer accepts work. Ask your teacher.",
		"handin.late.accepted": "The due date has passed: you can still hand in this homework, it will be marked “late”.",

		"err.title":         "Your homework was not handed in:",
		"err.csrf":          "The form has expired. Reload the page and try again.",
		"err.firstname":     "Type your first name (at most 30 letters).",
		"err.initial":       "Type the initial of your surname: one letter.",
		"err.nothing":       "Choose at least one file or write a text.",
		"err.toomany":       "You chose too many files: at most %d.",
		"err.filetoolarge":  "The file “%s” is too large: at most %s per file.",
		"err.totaltoolarge": "This is too much to send: at most %s in all. Send fewer or smaller files.",
		"err.empty":         "The file “%s” is empty: choose the right file.",
		"err.type":          "The file “%s” is not of a type this homework accepts. Accepted types: %s.",
		"err.texttoolong":   "The text is too long: at most %s.",
		"err.badform":       "The form arrived incomplete or damaged. Reload the page and try again.",
		"err.server":        "The server could not save your homework. Try again in a moment; if it goes on, tell your teacher.",
		"err.script.size":   "The file “{name}” is too large: at most {max} per file.",
		"err.script.total":  "The chosen files are too large: at most {max} in all.",
		"err.script.count":  "You chose too many files: at most {max}.",
		"err.script.type":   "The file “{name}” is not of a type this homework accepts.",
		"err.script.empty":  "The file “{name}” is empty.",

		"receipt.title":      "Receipt",
		"receipt.done":       "Your homework has been handed in.",
		"receipt.code":       "Receipt code",
		"receipt.keep":       "Keep this code: it finds this receipt again from any device at school.",
		"receipt.assignment": "Homework",
		"receipt.class":      "Class",
		"receipt.pupil":      "Pupil",
		"receipt.time":       "Received on",
		"receipt.files":      "Files",
		"receipt.state":      "State",
		"receipt.late":       "Handed in late",
		"receipt.text":       "written text",
		"receipt.another":    "Hand in other homework",
		"receipts.title":     "My receipts",
		"receipts.intro":     "Homework handed in from this device.",
		"receipts.empty":     "No homework has been handed in from this device yet.",
		"state.pending":      "received, waiting to be sent",
		"state.sent":         "sent",
		"state.failed":       "failed, the teacher has been told",

		"t.login.title":    "Teacher login",
		"t.login.login":    "Login",
		"t.login.password": "Password",
		"t.login.submit":   "Log in",
		"t.login.failed":   "Wrong login or password.",
		"t.login.limited":  "Too many login attempts. Try again in %d minutes.",
		"t.logout":         "Log out",
		"t.hello":          "Logged in: %s",
		"t.csrf":           "The form has expired. Reload the page and try again.",

		"t.list.title":  "My homework",
		"t.list.new":    "Create homework",
		"t.list.empty":  "You have not created any homework yet.",
		"t.list.open":   "Open homework",
		"t.list.closed": "Closed homework",
		"t.col.title":   "Homework",
		"t.col.class":   "Class",
		"t.col.due":     "Due",
		"t.col.handins": "Handed in",
		"t.col.failed":  "Failed deliveries",

		"t.new.title":        "New homework",
		"t.f.title":          "Title",
		"t.f.class":          "Class code",
		"t.f.class.hint":     "For example CM2-A. Pupils will choose this code.",
		"t.f.due":            "Due date",
		"t.f.duetime":        "Deadline time",
		"t.f.instructions":   "Instructions (optional)",
		"t.f.destination":    "Where to send the work",
		"t.f.kinds":          "Accepted file types",
		"t.f.maxsize":        "Largest file, in MB",
		"t.f.maxsize.hint":   "Between 1 and %d MB.",
		"t.f.refuselate":     "Refuse work handed in after the date",
		"t.f.refuselate.no":  "Otherwise it is accepted and marked “late”.",
		"t.f.submit":         "Create the homework",
		"t.nodest":           "No destination is configured on this server: ask the technician to add one before creating homework.",
		"t.err.title":        "The homework was not created:",
		"t.err.title.field":  "Give a title of at most 200 characters.",
		"t.err.class":        "Invalid class code: 1 to 24 letters, digits, dashes, dots or spaces.",
		"t.err.due":          "Invalid due date or time.",
		"t.err.destination":  "Choose a destination from the list.",
		"t.err.kinds":        "Tick at least one file type.",
		"t.err.maxsize":      "Invalid largest file size: between 1 and %d MB.",
		"t.err.instructions": "The instructions are too long: at most %d characters.",

		"t.a.pupils":        "Pupils hand in this homework from “Hand in homework”, class %s.",
		"t.a.close":         "Close the homework",
		"t.a.close.why":     "Closed homework accepts no more work; work already handed in stays here.",
		"t.a.closed":        "Closed on %s.",
		"t.a.open":          "Open: pupils can hand in their work.",
		"t.a.handins":       "Work handed in",
		"t.a.summary":       "Work handed in: %d, late: %d.",
		"t.a.failed":        "Files not sent: %d. The details are below.",
		"t.a.none":          "No work handed in yet.",
		"t.a.late":          "late",
		"t.a.download":      "Download",
		"t.a.dest":          "Destination",
		"t.a.kinds":         "Accepted types",
		"t.a.maxsize":       "Largest file",
		"t.a.refuse":        "Late work",
		"t.a.refuse.y":      "refused",
		"t.a.refuse.n":      "accepted and marked “late”",
		"t.a.back":          "Back to my homework",
		"t.col.pupil":       "Pupil",
		"t.col.time":        "Received",
		"t.col.code":        "Receipt",
		"t.col.files":       "Files",
		"t.state.queued":    "waiting to be sent",
		"t.state.sending":   "being sent",
		"t.state.delivered": "sent",
		"t.state.failed":    "delivery failed",

		"kind.image":  "photos and pictures",
		"kind.pdf":    "PDF",
		"kind.office": "office documents (ODT, DOCX, ODS, XLSX, ODP, PPTX)",
		"kind.audio":  "audio recordings",
		"kind.text":   "text",

		"notfound.title": "Page not found",
		"notfound.text":  "The page you asked for does not exist, or the homework was removed.",
		"notfound.back":  "Back to homework",
		"error.title":    "Server error",
		"error.text":     "Something went wrong. Try again in a moment; if it goes on, tell the technician.",
	},
}

var monthNames = map[string][12]string{
	"fr": {"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"},
	"en": {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
}

// msg returns the text of key in lang; a missing key shows as [[key]] so
// tests and people notice it.
func msg(lang, key string) string {
	if s, ok := catalogues[lang][key]; ok {
		return s
	}
	return "[[" + key + "]]"
}

func msgf(lang, key string, args ...any) string {
	return fmt.Sprintf(msg(lang, key), args...)
}

// formatSize writes a byte count the way the language does: "1,2 Mo" in
// French, "1.2 MB" in English (powers of 1000, one decimal below 10), like
// the portal.
func formatSize(lang string, n int64) string {
	units := strings.Fields(msg(lang, "size.units"))
	if n < 1000 {
		return strconv.FormatInt(max(n, 0), 10) + " " + units[0]
	}
	unit := int64(1)
	i := 0
	for i+1 < len(units) && n >= unit*1000 {
		unit *= 1000
		i++
	}
	tenths := (n*10 + unit/2) / unit
	if tenths >= 9995 && i+1 < len(units) {
		unit *= 1000
		i++
		tenths = (n*10 + unit/2) / unit
	}
	if tenths < 100 {
		if tenths%10 == 0 {
			return strconv.FormatInt(tenths/10, 10) + " " + units[i]
		}
		return strconv.FormatInt(tenths/10, 10) + msg(lang, "decimal") + strconv.FormatInt(tenths%10, 10) + " " + units[i]
	}
	return strconv.FormatInt((tenths+5)/10, 10) + " " + units[i]
}

// formatDate writes "23 novembre 2026" or "23 November 2026".
func formatDate(lang string, t time.Time) string {
	names, ok := monthNames[lang]
	if !ok {
		names = monthNames["fr"]
	}
	day := strconv.Itoa(t.Day())
	if lang == "fr" && t.Day() == 1 {
		day = "1er"
	}
	return day + " " + names[t.Month()-1] + " " + strconv.Itoa(t.Year())
}

// formatDateTime writes "23 novembre 2026 à 14:05".
func formatDateTime(lang string, t time.Time) string {
	return formatDate(lang, t) + " " + msg(lang, "at") + " " + t.Format("15:04")
}

// kindsLabel lists kinds in words: "photos et images, PDF".
func kindsLabel(lang string, kinds []string) string {
	var out []string
	for _, k := range AllKinds {
		if slices.Contains(kinds, k) {
			out = append(out, msg(lang, "kind."+k))
		}
	}
	return strings.Join(out, msg(lang, "list.sep"))
}
