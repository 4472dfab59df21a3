package portal

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// catalogues holds every user-facing string of the portal, by language then
// key. Templates take their words from here only. Values are read-only.
var catalogues = map[string]map[string]string{
	"fr": {
		"site.name":                "Préau",
		"site.tagline":             "ressources de l'école",
		"skip":                     "Aller au contenu",
		"nav.label":                "Niveaux",
		"nav.home":                 "Accueil",
		"handin":                   "Rendre un devoir",
		"lang.switch":              "English",
		"lang.switch.code":         "en",
		"status.online":            "En ligne",
		"status.offline":           "Hors ligne — tout le contenu de cette page reste disponible",
		"search.label":             "Rechercher une ressource",
		"search.button":            "Rechercher",
		"search.title":             "Recherche",
		"search.prompt":            "Saisissez un ou plusieurs mots dans le champ de recherche.",
		"search.none":              "Aucun résultat pour « %s »",
		"search.one":               "1 résultat pour « %s »",
		"search.many":              "%d résultats pour « %s »",
		"search.none.help":         "Vérifiez l'orthographe, essayez un mot plus court ou parcourez les ressources par niveau.",
		"home.title":               "Ressources disponibles",
		"home.intro":               "Ces ressources sont enregistrées sur le serveur de l'école : elles restent accessibles même sans Internet.",
		"home.empty":               "Aucune ressource n'est encore installée sur ce serveur.",
		"home.more":                "Voir les %d ressources : %s",
		"level.all":                "Pour tous",
		"subject.none":             "Divers",
		"list.level":               "Niveau : %s",
		"list.subject":             "Matière : %s",
		"list.count.one":           "1 ressource",
		"list.count.many":          "%d ressources",
		"list.empty":               "Aucune ressource pour l'instant.",
		"kind.article":             "Article",
		"kind.video":               "Vidéo",
		"kind.audio":               "Audio",
		"kind.pdf":                 "PDF",
		"kind.image":               "Image",
		"kind.document":            "Document",
		"item.about":               "À propos de cette ressource",
		"item.kind":                "Type",
		"item.levels":              "Niveaux",
		"item.subjects":            "Matières",
		"item.licence":             "Licence",
		"item.source":              "Source",
		"item.authors":             "Auteurs",
		"item.updated":             "Mise à jour",
		"item.language":            "Langue",
		"item.files":               "Fichiers",
		"item.open.pdf":            "Ouvrir le PDF",
		"item.pdf.frame":           "Aperçu du document PDF : %s",
		"item.download":            "Télécharger",
		"item.nomedia":             "Votre navigateur ne peut pas lire ce média.",
		"item.article.error":       "Cet article ne peut pas être affiché ici. Vous pouvez télécharger le fichier ci-dessous.",
		"notfound.title":           "Page introuvable",
		"notfound.text":            "La page demandée n'existe pas, ou la ressource a été retirée du serveur.",
		"notfound.back":            "Retour à l'accueil",
		"error.title":              "Erreur du serveur",
		"error.text":               "Une erreur s'est produite. Réessayez dans quelques instants ; si elle continue, prévenez l'enseignant ou le technicien.",
		"footer.text":              "Préau, le serveur de l'école : il fonctionne même sans Internet.",
		"size.units":               "o ko Mo Go To",
		"decimal":                  ",",
		"nav.catalogue":            "Catalogue de l'école",
		"status.offline.catalogue": "Hors ligne — les ressources disponibles hors ligne fonctionnent ; celles qui demandent une connexion ne s'ouvrent pas pour l'instant",
		"home.catalogue":           "Ouvrir le catalogue de l'école",
		"cat.title":                "Catalogue de l'école",
		"cat.title.page":           "Catalogue de l'école, page %d",
		"cat.intro":                "Les ressources « disponibles hors ligne » sont sur le serveur de l'école. Celles marquées « connexion nécessaire » (GAR) s'ouvrent sur le site de l'éditeur : il faut Internet et votre connexion ENT.",
		"cat.refresh":              "Des téléchargements sont en cours : cette page s'actualise toutes les %d secondes.",
		"cat.refresh.stop":         "Arrêter l'actualisation automatique",
		"cat.refresh.resume":       "Reprendre l'actualisation automatique",
		"cat.filters":              "Filtrer le catalogue",
		"cat.query":                "Mots du titre ou de l'éditeur",
		"cat.level":                "Niveau",
		"cat.level.all":            "Tous les niveaux",
		"cat.domain":               "Domaine d'enseignement",
		"cat.domain.all":           "Tous les domaines",
		"cat.kind":                 "Origine",
		"cat.kind.all":             "Toutes les origines",
		"cat.state":                "État",
		"cat.state.all":            "Tous les états",
		"cat.state.offline":        "Disponible hors ligne",
		"cat.state.online-only":    "Connexion nécessaire",
		"cat.state.downloading":    "En cours de téléchargement",
		"cat.state.queued":         "En attente de téléchargement",
		"cat.state.failed":         "Échec du téléchargement",
		"cat.apply":                "Filtrer",
		"cat.clear":                "Effacer les filtres",
		"cat.none":                 "Aucune ressource ne correspond",
		"cat.none.help":            "Essayez d'autres mots ou retirez un filtre.",
		"cat.empty":                "Le catalogue de l'école est vide pour l'instant.",
		"cat.page.empty":           "Cette page est vide : le catalogue compte moins de ressources.",
		"cat.range":                "Ressources %d à %d",
		"cat.page":                 "Page %d",
		"cat.pages":                "Pages du catalogue",
		"cat.prev":                 "Page précédente",
		"cat.next":                 "Page suivante",
		"card.kind.gar":            "GAR",
		"card.kind.tube":           "Vidéo PeerTube",
		"card.kind.nuage":          "Partage Nextcloud",
		"card.kind.pack":           "Paquet de ressources",
		"card.state.offline":       "disponible hors ligne",
		"card.state.online-only":   "connexion nécessaire",
		"card.state.queued":        "en attente de téléchargement",
		"card.state.failed":        "échec du téléchargement",
		"card.status.downloading":  "en cours de téléchargement %d %%",
		"card.reason":              "Raison : %s",
		"card.external":            "(connexion nécessaire, nouvelle fenêtre)",
		"card.unavailable":         "indisponible hors connexion",
		"pack.title":               "Ressources du paquet « %s »",
	},
	"en": {
		"site.name":                "Préau",
		"site.tagline":             "school resources",
		"skip":                     "Skip to content",
		"nav.label":                "Levels",
		"nav.home":                 "Home",
		"handin":                   "Hand in work",
		"lang.switch":              "Français",
		"lang.switch.code":         "fr",
		"status.online":            "Online",
		"status.offline":           "Offline — everything on this page remains available",
		"search.label":             "Search for a resource",
		"search.button":            "Search",
		"search.title":             "Search",
		"search.prompt":            "Type one or more words in the search field.",
		"search.none":              "No results for “%s”",
		"search.one":               "1 result for “%s”",
		"search.many":              "%d results for “%s”",
		"search.none.help":         "Check the spelling, try a shorter word or browse the resources by level.",
		"home.title":               "Available resources",
		"home.intro":               "These resources are stored on the school's server: they remain available even without the Internet.",
		"home.empty":               "No resources are installed on this server yet.",
		"home.more":                "See the %d resources: %s",
		"level.all":                "For everyone",
		"subject.none":             "Miscellaneous",
		"list.level":               "Level: %s",
		"list.subject":             "Subject: %s",
		"list.count.one":           "1 resource",
		"list.count.many":          "%d resources",
		"list.empty":               "No resources yet.",
		"kind.article":             "Article",
		"kind.video":               "Video",
		"kind.audio":               "Audio",
		"kind.pdf":                 "PDF",
		"kind.image":               "Image",
		"kind.document":            "Document",
		"item.about":               "About this resource",
		"item.kind":                "Type",
		"item.levels":              "Levels",
		"item.subjects":            "Subjects",
		"item.licence":             "Licence",
		"item.source":              "Source",
		"item.authors":             "Authors",
		"item.updated":             "Updated",
		"item.language":            "Language",
		"item.files":               "Files",
		"item.open.pdf":            "Open the PDF",
		"item.pdf.frame":           "Preview of the PDF document: %s",
		"item.download":            "Download",
		"item.nomedia":             "Your browser cannot play this media.",
		"item.article.error":       "This article cannot be shown here. You can download the file below.",
		"notfound.title":           "Page not found",
		"notfound.text":            "The page you asked for does not exist, or the resource was removed from the server.",
		"notfound.back":            "Back to the home page",
		"error.title":              "Server error",
		"error.text":               "Something went wrong. Try again in a moment; if it goes on, tell the teacher or the technician.",
		"footer.text":              "Préau, the school's server: it works even without the Internet.",
		"size.units":               "B kB MB GB TB",
		"decimal":                  ".",
		"nav.catalogue":            "School catalogue",
		"status.offline.catalogue": "Offline — resources available offline work; those that need a connection cannot open for now",
		"home.catalogue":           "Open the school catalogue",
		"cat.title":                "School catalogue",
		"cat.title.page":           "School catalogue, page %d",
		"cat.intro":                "Resources “available offline” are on the school's server. Those marked “internet connection needed” (GAR) open on the publisher's site: they need the Internet and your ENT sign-in.",
		"cat.refresh":              "Downloads are under way: this page refreshes every %d seconds.",
		"cat.refresh.stop":         "Stop the automatic refresh",
		"cat.refresh.resume":       "Resume the automatic refresh",
		"cat.filters":              "Filter the catalogue",
		"cat.query":                "Words of the title or publisher",
		"cat.level":                "Level",
		"cat.level.all":            "All levels",
		"cat.domain":               "Subject area",
		"cat.domain.all":           "All subject areas",
		"cat.kind":                 "Origin",
		"cat.kind.all":             "All origins",
		"cat.state":                "Status",
		"cat.state.all":            "All statuses",
		"cat.state.offline":        "Available offline",
		"cat.state.online-only":    "Internet connection needed",
		"cat.state.downloading":    "Downloading",
		"cat.state.queued":         "Waiting to download",
		"cat.state.failed":         "Download failed",
		"cat.apply":                "Filter",
		"cat.clear":                "Clear the filters",
		"cat.none":                 "No matching resource",
		"cat.none.help":            "Try other words or remove a filter.",
		"cat.empty":                "The school catalogue is empty for now.",
		"cat.page.empty":           "This page is empty: the catalogue has fewer resources.",
		"cat.range":                "Resources %d to %d",
		"cat.page":                 "Page %d",
		"cat.pages":                "Catalogue pages",
		"cat.prev":                 "Previous page",
		"cat.next":                 "Next page",
		"card.kind.gar":            "GAR",
		"card.kind.tube":           "PeerTube video",
		"card.kind.nuage":          "Nextcloud share",
		"card.kind.pack":           "Resource pack",
		"card.state.offline":       "available offline",
		"card.state.online-only":   "internet connection needed",
		"card.state.queued":        "waiting to download",
		"card.state.failed":        "download failed",
		"card.status.downloading":  "downloading %d%%",
		"card.reason":              "Reason: %s",
		"card.external":            "(internet connection needed, new window)",
		"card.unavailable":         "unavailable while offline",
		"pack.title":               "Resources of the pack “%s”",
	},
}

// levelOrder is the order of the known levels on the home page.
var levelOrder = []string{"cycle1", "cycle2", "cycle3", "cycle4", "lycee"}

// levelLabels and subjectLabels name the known slugs of the content-pack
// contract, in French then English.
var levelLabels = map[string][2]string{
	"cycle1": {"Cycle 1 (maternelle)", "Cycle 1 (nursery)"},
	"cycle2": {"Cycle 2 (CP–CE2)", "Cycle 2 (CP–CE2)"},
	"cycle3": {"Cycle 3 (CM1–6e)", "Cycle 3 (CM1–6e)"},
	"cycle4": {"Cycle 4 (5e–3e)", "Cycle 4 (5e–3e)"},
	"lycee":  {"Lycée", "Upper secondary"},
}

var subjectLabels = map[string][2]string{
	"francais":            {"Français", "French"},
	"mathematiques":       {"Mathématiques", "Mathematics"},
	"sciences":            {"Sciences", "Science"},
	"histoire-geographie": {"Histoire-géographie", "History and geography"},
	"emc":                 {"Enseignement moral et civique", "Moral and civic education"},
	"langues-vivantes":    {"Langues vivantes", "Modern languages"},
	"arts-plastiques":     {"Arts plastiques", "Visual arts"},
	"education-musicale":  {"Éducation musicale", "Music"},
	"eps":                 {"Éducation physique et sportive", "Physical education"},
	"technologie":         {"Technologie", "Technology"},
	"physique-chimie":     {"Physique-chimie", "Physics and chemistry"},
	"svt":                 {"Sciences de la vie et de la Terre", "Life and earth sciences"},
	"philosophie":         {"Philosophie", "Philosophy"},
	"numerique":           {"Numérique", "Digital technology"},
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

func langIndex(lang string) int {
	if lang == "en" {
		return 1
	}
	return 0
}

// levelLabel names a level slug; unknown slugs are shown as they are.
func levelLabel(lang, slug string) string {
	if slug == allLevels {
		return msg(lang, "level.all")
	}
	if l, ok := levelLabels[slug]; ok {
		return l[langIndex(lang)]
	}
	return slug
}

// subjectLabel names a subject slug; unknown slugs are shown as they are.
func subjectLabel(lang, slug string) string {
	if slug == "" {
		return msg(lang, "subject.none")
	}
	if l, ok := subjectLabels[slug]; ok {
		return l[langIndex(lang)]
	}
	return slug
}

func kindLabel(lang, kind string) string {
	if s, ok := catalogues[lang]["kind."+kind]; ok {
		return s
	}
	return msg(lang, "kind.document")
}

// formatSize writes a byte count the way the language does: "1,2 Mo" in
// French, "1.2 MB" in English (powers of 1000, one decimal below 10).
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
	if tenths >= 9995 && i+1 < len(units) { // rounds up to the next unit
		unit *= 1000
		i++
		tenths = (n*10 + unit/2) / unit
	}
	if tenths < 100 {
		return strconv.FormatInt(tenths/10, 10) + msg(lang, "decimal") + strconv.FormatInt(tenths%10, 10) + " " + units[i]
	}
	return strconv.FormatInt((tenths+5)/10, 10) + " " + units[i]
}

// formatDate writes a date as "23 novembre 2026" or "23 November 2026".
func formatDate(lang string, t time.Time) string {
	if t.IsZero() {
		return ""
	}
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

// foldKey is a sort key that ignores case and French accents, so that
// "Éducation" sorts with the E's.
func foldKey(s string) string {
	return accentFolder.Replace(strings.ToLower(s))
}

var accentFolder = strings.NewReplacer(
	"à", "a", "â", "a", "ä", "a", "ç", "c", "é", "e", "è", "e", "ê", "e", "ë", "e",
	"î", "i", "ï", "i", "ô", "o", "ö", "o", "ù", "u", "û", "u", "ü", "u", "ÿ", "y",
	"œ", "oe", "æ", "ae",
)
