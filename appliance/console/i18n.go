package console

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// catalogues holds every user-facing string of the console, by language
// then key. Templates take their words from here only. Technicians are
// addressed with "vous".
var catalogues = map[string]map[string]string{
	"fr": {
		"site.name":        "console technique",
		"skip":             "Aller au contenu",
		"title.error":      "Erreur :",
		"lang.switch":      "English",
		"lang.switch.code": "en",
		"who":              "Connecté : %s (%s)",
		"signout":          "Se déconnecter",
		"nav.label":        "Menu de la console",
		"footer.text":      "Préau, le serveur de l'école : console réservée aux personnels autorisés. Chaque action est inscrite au journal.",
		"size.units":       "o ko Mo Go To",
		"rate.units":       "bit/s kbit/s Mbit/s Gbit/s",
		"decimal":          ",",
		"thousands":        "\u202f",
		"yes":              "oui",
		"no":               "non",

		"nav.dashboard": "Tableau de bord",
		"nav.devices":   "Appareils",
		"nav.energy":    "Énergie",
		"nav.update":    "Mise à jour",
		"nav.accounts":  "Comptes",
		"nav.tokens":    "Jetons d'API",
		"nav.audit":     "Journal",
		"nav.me":        "Mon compte",

		"msg.signin":            "Aller à la page de connexion",
		"msg.home":              "Retour à la console",
		"refused.network.title": "Console inaccessible depuis ce réseau",
		"refused.network.text":  "Cet appareil n'est pas sur un réseau autorisé à ouvrir la console. Connectez-vous depuis le réseau du personnel, ou demandez au technicien d'ajouter ce réseau.",
		"refused.auth.title":    "Connexion nécessaire",
		"refused.auth.text":     "cette adresse demande une session de la console ou un jeton d'API valide.",
		"refused.session.text":  "Votre session a pris fin (déconnexion ou inactivité). Reconnectez-vous, puis recommencez.",
		"refused.role.title":    "Accès refusé",
		"refused.role.text":     "Votre compte n'a pas accès à cette page. Demandez au technicien si vous en avez besoin.",
		"refused.csrf.title":    "Demande refusée",
		"refused.csrf.text":     "Cette demande ne vient pas d'un formulaire de la console ou le formulaire a expiré (protection contre la falsification de requêtes). Rechargez la page, puis recommencez.",
		"notfound.title":        "Page introuvable",
		"notfound.text":         "Cette page n'existe pas dans la console.",
		"error.title":           "Erreur du serveur",
		"error.text":            "Une erreur s'est produite. Réessayez dans quelques instants ; si elle continue, consultez le journal de la box (journalctl -u preau).",
		"api.unavailable":       "cette fonction n'est pas disponible sur cette box",
		"api.badjson":           "corps JSON attendu, par exemple {\"class\": \"printer\"}",

		"signin.title":      "Connexion à la console",
		"signin.setup":      "Première mise en service : aucun compte technicien n'existe encore. Créez-le avec le code d'installation affiché dans le journal de la box.",
		"signin.setup.link": "Créer le premier compte technicien",
		"signin.login":      "Identifiant",
		"signin.password":   "Mot de passe",
		"signin.submit":     "Se connecter",

		"code.title":   "Code de vérification",
		"code.intro":   "Votre compte demande un second facteur : ouvrez votre application d'authentification (par exemple FreeOTP ou Aegis).",
		"code.label":   "Code à 6 chiffres",
		"code.hint":    "Le code change toutes les 30 secondes.",
		"code.submit":  "Valider",
		"code.expired": "Le délai pour saisir le code est dépassé : saisissez à nouveau votre identifiant et votre mot de passe.",

		"setup.title":           "Installation de la console",
		"setup.intro":           "Saisissez le code d'installation affiché dans le journal de la box (journalctl -u preau), puis créez le premier compte technicien. Le code ne sert qu'une fois.",
		"setup.code":            "Code d'installation",
		"setup.code.hint":       "16 caractères, par exemple 7KQ4-M9TZ-3HXC-P2WA ; les tirets et la casse ne comptent pas.",
		"setup.account":         "Premier compte technicien",
		"setup.submit":          "Créer le compte et ouvrir la console",
		"account.login.hint":    "De 2 à 64 lettres sans accent, chiffres, points, tirets ou soulignés.",
		"account.name":          "Nom affiché",
		"account.password":      "Mot de passe",
		"account.password.hint": "Au moins %d caractères ; une phrase facile à retenir convient.",
		"account.confirm":       "Confirmez le mot de passe",
		"account.mismatch":      "Les deux mots de passe saisis sont différents : saisissez-les à nouveau.",

		"live.on":                "Mise à jour en direct.",
		"live.poll":              "Actualisation toutes les %d secondes.",
		"live.retry":             "Connexion en direct interrompue : nouvelle tentative…",
		"live.busy":              "trop de tableaux de bord sont ouverts en même temps",
		"dash.taken":             "État relevé à %s.",
		"dash.problem":           "L'état de la box n'a pas pu être lu : les valeurs affichées peuvent être anciennes. Consultez le journal de la box.",
		"dash.uplink":            "Connexion Internet",
		"dash.sync":              "File de synchronisation",
		"dash.storage":           "Stockage",
		"dash.cache":             "Cache web",
		"dash.store":             "Ressources",
		"dash.devices":           "Appareils présents",
		"dash.devices.list.none": "Aucun appareil présent.",
		"dash.devices.all":       "Voir tous les appareils",
		"dash.energy":            "Énergie aujourd'hui",
		"dash.energy.more":       "Voir le détail de l'énergie",
		"dash.update":            "Mise à jour du système",
		"dash.update.more":       "Voir l'état de la mise à jour",
		"dash.errors":            "Erreurs récentes",
		"dash.errors.none":       "Aucune erreur récente.",
		"dash.rate":              "Débit : ↓ %s · ↑ %s",
		"dash.since":             "Depuis %s",
		"dash.sync.none":         "File vide",
		"dash.sync.one":          "1 élément en attente",
		"dash.sync.many":         "%d éléments en attente",
		"dash.sync.bytes":        "%s à transférer",
		"dash.usage":             "%s sur %s (%s)",
		"dash.devices.none":      "Aucun appareil présent",
		"dash.devices.one":       "1 appareil présent",
		"dash.devices.many":      "%d appareils présents",
		"dash.devices.known":     "%d appareils connus au total",
		"dash.energy.lastweek":   "%s dernier : %s",
		"dash.energy.trend":      "%s par rapport à la semaine dernière",
		"dash.energy.watts":      "Box en ce moment : %s\u00a0W",
		"dash.update.version":    "Version %s",

		"uplink.online":   "En ligne",
		"uplink.degraded": "Dégradée",
		"uplink.offline":  "Hors ligne",
		"uplink.unknown":  "Inconnue",

		"update.idle":           "À jour",
		"update.checking":       "Recherche d'une mise à jour",
		"update.downloading":    "Téléchargement",
		"update.verified":       "Téléchargée et vérifiée",
		"update.written":        "Installée, redémarrage prévu",
		"update.trying":         "Essai de la nouvelle version",
		"update.committed":      "Nouvelle version validée",
		"update.rolled_back":    "Revenue à la version précédente",
		"update.failed":         "Échec",
		"update.unknown":        "Inconnu",
		"update.not-configured": "Non configurées (pas de partitions A/B)",

		"devices.unavailable":    "L'inventaire du réseau n'est pas disponible sur cette box.",
		"devices.summary":        "%d appareils connus, dont %d présents maintenant.",
		"devices.csv":            "Télécharger l'inventaire (CSV pour tableur)",
		"devices.glpi":           "Télécharger l'inventaire pour GLPI (zip de fichiers JSON)",
		"devices.caption":        "Appareils vus sur le réseau de l'école, les présents d'abord",
		"devices.name":           "Nom",
		"devices.mac":            "Adresse MAC",
		"devices.ip":             "Adresse IP",
		"devices.vendor":         "Fabricant",
		"devices.class":          "Type",
		"devices.present":        "Présent",
		"devices.first":          "Vu la première fois",
		"devices.last":           "Vu la dernière fois",
		"devices.random":         "adresse aléatoire",
		"devices.class.for":      "Type de l'appareil %s",
		"devices.class.save":     "Corriger",
		"devices.class.save.for": "Corriger le type de %s",
		"devices.class.guessed":  "deviné",
		"devices.class.set":      "corrigé par un technicien",
		"devices.present.yes":    "présent",
		"devices.present.no":     "absent",
		"devices.none":           "Aucun appareil n'a encore été vu sur le réseau.",
		"devices.noname":         "(sans nom)",
		"devices.novendor":       "inconnu",

		"class.tablet":              "tablette",
		"class.laptop":              "portable",
		"class.desktop":             "poste fixe",
		"class.printer":             "imprimante",
		"class.interactive-display": "écran interactif",
		"class.access-point":        "point d'accès",
		"class.phone":               "téléphone",
		"class.unknown":             "inconnu",
		"class.box":                 "box Préau",

		"role.technicien": "technicien",
		"role.direction":  "direction",
		"role.enseignant": "enseignant",

		"update.f.state":     "État",
		"update.f.version":   "Version installée",
		"update.f.available": "Version proposée",
		"update.f.last":      "Dernier résultat",
		"update.f.rollback":  "Raison du retour en arrière",
		"update.unavailable": "Le suivi des mises à jour n'est pas disponible sur cette box.",
		"update.readonly":    "Cette page ne fait qu'afficher l'état ; les mises à jour se pilotent avec la commande preau update.",

		"audit.intro":   "Chaque action d'administration est inscrite ici : connexions, échecs, verrouillages, comptes, exports et actions de la box.",
		"audit.caption": "Journal d'audit, le plus récent d'abord",
		"audit.at":      "Date",
		"audit.actor":   "Auteur",
		"audit.action":  "Action",
		"audit.detail":  "Détail",
		"audit.ip":      "Adresse",
		"audit.older":   "Entrées plus anciennes",
		"audit.none":    "Le journal est vide.",

		"action.sign-in":          "connexion",
		"action.sign-in-failed":   "échec de connexion",
		"action.lock-out":         "verrouillage",
		"action.sign-out":         "déconnexion",
		"action.setup":            "installation",
		"action.account-create":   "compte créé",
		"action.account-import":   "compte importé",
		"action.account-password": "mot de passe changé",
		"action.account-disable":  "compte désactivé",
		"action.account-enable":   "compte réactivé",
		"action.account-role":     "rôle changé",
		"action.totp-enable":      "TOTP activé",
		"action.totp-disable":     "TOTP retiré",
		"action.token-create":     "jeton créé",
		"action.token-revoke":     "jeton révoqué",
		"action.device-class":     "type d'appareil corrigé",
		"action.export":           "export",
		"action.refused":          "refus",

		"accounts.intro":          "Les techniciens voient et font tout ; la direction voit le tableau de bord, l'énergie et les appareils ; les enseignants n'ont pas accès à la console (leur compte sert aux pages enseignants du portail).",
		"accounts.caption":        "Comptes de la console",
		"accounts.login":          "Identifiant",
		"accounts.role":           "Rôle",
		"accounts.state":          "État",
		"accounts.totp":           "Code TOTP",
		"accounts.last":           "Dernière connexion",
		"accounts.actions":        "Actions",
		"accounts.active":         "actif",
		"accounts.disabled":       "désactivé",
		"accounts.never":          "jamais",
		"accounts.role.for":       "Rôle de %s",
		"accounts.role.save":      "Changer le rôle",
		"accounts.role.save.for":  "Changer le rôle de %s",
		"accounts.disable":        "Désactiver",
		"accounts.disable.for":    "Désactiver le compte %s",
		"accounts.enable":         "Réactiver",
		"accounts.enable.for":     "Réactiver le compte %s",
		"accounts.new":            "Créer un compte",
		"accounts.create":         "Créer le compte",
		"accounts.reset":          "Changer le mot de passe d'un compte",
		"accounts.reset.password": "Nouveau mot de passe",
		"accounts.reset.hint":     "Les sessions ouvertes de ce compte sont fermées.",
		"accounts.reset.submit":   "Changer le mot de passe",

		"tokens.intro":         "Un jeton d'API permet à un script ou à un outil de supervision de lire /api/v1/ sans session : en-tête « Authorization: Bearer JETON ». Seule son empreinte est gardée.",
		"tokens.caption":       "Jetons d'API, le plus récent d'abord",
		"tokens.id":            "N°",
		"tokens.name":          "Nom",
		"tokens.role":          "Droits",
		"tokens.role.read":     "lecture (comme la direction)",
		"tokens.role.all":      "complets (comme un technicien)",
		"tokens.by":            "Créé par",
		"tokens.used":          "Dernier usage",
		"tokens.revoked":       "révoqué",
		"tokens.revoke":        "Révoquer",
		"tokens.revoke.for":    "Révoquer le jeton %s",
		"tokens.none":          "Aucun jeton pour l'instant.",
		"tokens.new":           "Créer un jeton",
		"tokens.create":        "Créer le jeton",
		"tokens.created":       "Jeton créé",
		"tokens.created.text":  "Copiez-le maintenant : il ne sera plus jamais affiché.",
		"tokens.created.usage": "Exemple : curl -H \"Authorization: Bearer JETON\" https://box/api/v1/status",

		"me.teacher":          "Votre compte sert aux pages enseignants du portail ; la console est réservée aux techniciens et à la direction.",
		"me.totp":             "Code de vérification (TOTP)",
		"me.totp.on":          "Un code de votre application d'authentification est demandé à chaque connexion.",
		"me.totp.off":         "Aucun code n'est demandé à la connexion. Activez-le pour protéger le compte même si le mot de passe fuit.",
		"me.totp.enable":      "Activer le code de vérification",
		"me.totp.remove":      "Ne plus demander de code",
		"me.password":         "Changer mon mot de passe",
		"me.password.current": "Mot de passe actuel",
		"me.password.new":     "Nouveau mot de passe",
		"me.password.hint":    "Vos autres sessions ouvertes seront fermées.",
		"me.password.submit":  "Changer le mot de passe",
		"me.password.wrong":   "Le mot de passe actuel est incorrect.",

		"totp.title":      "Activer le code de vérification",
		"totp.step1":      "Ouvrez une application d'authentification sur votre téléphone (par exemple FreeOTP, Aegis ou celle de votre choix).",
		"totp.step2":      "Ajoutez un compte en saisissant la clé ci-dessous (ou l'URI otpauth si votre application l'accepte) :",
		"totp.secret":     "Clé",
		"totp.issuer":     "Émetteur",
		"totp.account":    "Compte",
		"totp.type":       "Type",
		"totp.type.value": "basé sur l'heure (TOTP), 6 chiffres, 30 secondes",
		"totp.uri":        "URI otpauth",
		"totp.step3":      "Saisissez le code que l'application affiche pour confirmer.",
		"totp.submit":     "Confirmer et activer",

		"energy.unavailable":           "Le suivi de l'énergie n'est pas disponible sur cette box.",
		"energy.box":                   "Box en ce moment",
		"energy.week":                  "Cette semaine (7 jours)",
		"energy.co2":                   "Émissions de la semaine",
		"energy.source.rapl":           "mesure RAPL du processeur",
		"energy.source.battery":        "mesure batterie/onduleur",
		"energy.source.estimate":       "estimation (modèle de consommation)",
		"energy.source.estimate.model": "estimation (modèle %s)",
		"energy.prev.total":            "Semaine précédente : %s",
		"energy.trend":                 "%s par rapport à la semaine précédente",
		"energy.factor":                "Facteur : %s kg CO₂e/kWh (%s, %s).",
		"energy.chart":                 "Énergie par jour et par type d'appareil (kWh)",
		"energy.chart.desc":            "Diagramme en barres des 7 derniers jours : une barre empilée par jour et par type d'appareil, et, à côté, une barre en pointillés pour le même jour de la semaine précédente. Le tableau qui suit donne les mêmes valeurs.",
		"energy.chart.note":            "Les appareils du réseau sont estimés à partir de leur présence et d'une puissance par type ; la box est mesurée ou estimée comme indiqué plus haut.",
		"energy.legend.prev":           "même jour, semaine précédente (total)",
		"energy.table":                 "Énergie par jour et par type d'appareil, en kWh",
		"energy.day":                   "Jour",
		"energy.total":                 "Total",
		"energy.prev":                  "Semaine précédente",
		"energy.nodata":                "pas de mesure",
		"energy.nodata.short":          "n. d.",
		"energy.alerts":                "Appareils restés allumés hors des heures de classe",
		"energy.alerts.none":           "Aucun appareil n'est resté allumé hors des heures de classe.",
		"energy.alert.period":          "de %s à %s",
		"energy.alert.kwh":             "environ %s",

		"ok.setup":            "La console est installée : votre compte technicien est créé. Le code d'installation ne sert plus.",
		"ok.signed-out":       "Vous êtes déconnecté.",
		"ok.class":            "Le type de l'appareil est corrigé.",
		"ok.account-created":  "Le compte est créé.",
		"ok.account-disabled": "Le compte est désactivé ; ses sessions sont fermées.",
		"ok.account-enabled":  "Le compte est réactivé.",
		"ok.account-role":     "Le rôle est changé ; les sessions du compte sont fermées.",
		"ok.account-password": "Le mot de passe est changé ; les sessions du compte sont fermées.",
		"ok.token-revoked":    "Le jeton est révoqué.",
		"ok.password":         "Votre mot de passe est changé.",
		"ok.totp-on":          "Le code de vérification est activé : il sera demandé à chaque connexion.",
		"ok.totp-off":         "Le code de vérification n'est plus demandé.",
	},
	"en": {
		"site.name":        "technician console",
		"skip":             "Skip to content",
		"title.error":      "Error:",
		"lang.switch":      "Français",
		"lang.switch.code": "fr",
		"who":              "Signed in: %s (%s)",
		"signout":          "Sign out",
		"nav.label":        "Console menu",
		"footer.text":      "Préau, the school's server: console for authorised staff only. Every action is written to the audit log.",
		"size.units":       "B kB MB GB TB",
		"rate.units":       "bit/s kbit/s Mbit/s Gbit/s",
		"decimal":          ".",
		"thousands":        ",",
		"yes":              "yes",
		"no":               "no",

		"nav.dashboard": "Dashboard",
		"nav.devices":   "Devices",
		"nav.energy":    "Energy",
		"nav.update":    "Update",
		"nav.accounts":  "Accounts",
		"nav.tokens":    "API tokens",
		"nav.audit":     "Audit log",
		"nav.me":        "My account",

		"msg.signin":            "Go to the sign-in page",
		"msg.home":              "Back to the console",
		"refused.network.title": "Console not reachable from this network",
		"refused.network.text":  "This device is not on a network allowed to open the console. Connect from the staff network, or ask the technician to add this network.",
		"refused.auth.title":    "Sign-in needed",
		"refused.auth.text":     "this address needs a console session or a valid API token.",
		"refused.session.text":  "Your session has ended (signed out or idle). Sign in again, then try again.",
		"refused.role.title":    "Access refused",
		"refused.role.text":     "Your account has no access to this page. Ask the technician if you need it.",
		"refused.csrf.title":    "Request refused",
		"refused.csrf.text":     "This request does not come from a console form, or the form has expired (protection against request forgery). Reload the page, then try again.",
		"notfound.title":        "Page not found",
		"notfound.text":         "This page does not exist in the console.",
		"error.title":           "Server error",
		"error.text":            "Something went wrong. Try again in a moment; if it goes on, read the box's journal (journalctl -u preau).",
		"api.unavailable":       "this feature is not available on this box",
		"api.badjson":           "JSON body expected, e.g. {\"class\": \"printer\"}",

		"signin.title":      "Sign in to the console",
		"signin.setup":      "First start: no technicien account exists yet. Create it with the setup code shown in the box's journal.",
		"signin.setup.link": "Create the first technicien account",
		"signin.login":      "Login",
		"signin.password":   "Password",
		"signin.submit":     "Sign in",

		"code.title":   "Verification code",
		"code.intro":   "Your account asks for a second factor: open your authenticator app (e.g. FreeOTP or Aegis).",
		"code.label":   "6-digit code",
		"code.hint":    "The code changes every 30 seconds.",
		"code.submit":  "Confirm",
		"code.expired": "The time to type the code has run out: type your login and password again.",

		"setup.title":           "Console setup",
		"setup.intro":           "Type the setup code shown in the box's journal (journalctl -u preau), then create the first technicien account. The code works once.",
		"setup.code":            "Setup code",
		"setup.code.hint":       "16 characters, e.g. 7KQ4-M9TZ-3HXC-P2WA; dashes and case do not matter.",
		"setup.account":         "First technicien account",
		"setup.submit":          "Create the account and open the console",
		"account.login.hint":    "2 to 64 unaccented letters, digits, dots, dashes or underscores.",
		"account.name":          "Display name",
		"account.password":      "Password",
		"account.password.hint": "At least %d characters; an easy-to-remember sentence is fine.",
		"account.confirm":       "Confirm the password",
		"account.mismatch":      "The two passwords differ: type them again.",

		"live.on":                "Live updates.",
		"live.poll":              "Refreshed every %d seconds.",
		"live.retry":             "Live connection lost: trying again…",
		"live.busy":              "too many dashboards are open at once",
		"dash.taken":             "State read at %s.",
		"dash.problem":           "The box's state could not be read: the values shown may be old. Read the box's journal.",
		"dash.uplink":            "Internet connection",
		"dash.sync":              "Sync queue",
		"dash.storage":           "Storage",
		"dash.cache":             "Web cache",
		"dash.store":             "Resources",
		"dash.devices":           "Devices present",
		"dash.devices.list.none": "No device present.",
		"dash.devices.all":       "See every device",
		"dash.energy":            "Energy today",
		"dash.energy.more":       "See the energy details",
		"dash.update":            "System update",
		"dash.update.more":       "See the update state",
		"dash.errors":            "Recent errors",
		"dash.errors.none":       "No recent error.",
		"dash.rate":              "Rate: ↓ %s · ↑ %s",
		"dash.since":             "Since %s",
		"dash.sync.none":         "Queue empty",
		"dash.sync.one":          "1 item waiting",
		"dash.sync.many":         "%d items waiting",
		"dash.sync.bytes":        "%s to transfer",
		"dash.usage":             "%s of %s (%s)",
		"dash.devices.none":      "No device present",
		"dash.devices.one":       "1 device present",
		"dash.devices.many":      "%d devices present",
		"dash.devices.known":     "%d devices known in all",
		"dash.energy.lastweek":   "Last %s: %s",
		"dash.energy.trend":      "%s compared with last week",
		"dash.energy.watts":      "Box right now: %s\u00a0W",
		"dash.update.version":    "Version %s",

		"uplink.online":   "Online",
		"uplink.degraded": "Degraded",
		"uplink.offline":  "Offline",
		"uplink.unknown":  "Unknown",

		"update.idle":           "Up to date",
		"update.checking":       "Looking for an update",
		"update.downloading":    "Downloading",
		"update.verified":       "Downloaded and verified",
		"update.written":        "Installed, restart planned",
		"update.trying":         "Trying the new version",
		"update.committed":      "New version confirmed",
		"update.rolled_back":    "Back to the previous version",
		"update.failed":         "Failed",
		"update.unknown":        "Unknown",
		"update.not-configured": "Not configured (no A/B slots)",

		"devices.unavailable":    "The network inventory is not available on this box.",
		"devices.summary":        "%d devices known, %d of them present now.",
		"devices.csv":            "Download the inventory (CSV for spreadsheets)",
		"devices.glpi":           "Download the inventory for GLPI (zip of JSON files)",
		"devices.caption":        "Devices seen on the school network, present ones first",
		"devices.name":           "Name",
		"devices.mac":            "MAC address",
		"devices.ip":             "IP address",
		"devices.vendor":         "Vendor",
		"devices.class":          "Type",
		"devices.present":        "Present",
		"devices.first":          "First seen",
		"devices.last":           "Last seen",
		"devices.random":         "random address",
		"devices.class.for":      "Type of the device %s",
		"devices.class.save":     "Correct",
		"devices.class.save.for": "Correct the type of %s",
		"devices.class.guessed":  "guessed",
		"devices.class.set":      "set by a technician",
		"devices.present.yes":    "present",
		"devices.present.no":     "absent",
		"devices.none":           "No device has been seen on the network yet.",
		"devices.noname":         "(no name)",
		"devices.novendor":       "unknown",

		"class.tablet":              "tablet",
		"class.laptop":              "laptop",
		"class.desktop":             "desktop",
		"class.printer":             "printer",
		"class.interactive-display": "interactive display",
		"class.access-point":        "access point",
		"class.phone":               "phone",
		"class.unknown":             "unknown",
		"class.box":                 "Préau box",

		"role.technicien": "technician",
		"role.direction":  "head of school",
		"role.enseignant": "teacher",

		"update.f.state":     "State",
		"update.f.version":   "Installed version",
		"update.f.available": "Version offered",
		"update.f.last":      "Last result",
		"update.f.rollback":  "Reason for the rollback",
		"update.unavailable": "Update tracking is not available on this box.",
		"update.readonly":    "This page only shows the state; updates are driven with the preau update command.",

		"audit.intro":   "Every administrative action is written here: sign-ins, failures, lock-outs, accounts, exports and the box's actions.",
		"audit.caption": "Audit log, newest first",
		"audit.at":      "Date",
		"audit.actor":   "Who",
		"audit.action":  "Action",
		"audit.detail":  "Detail",
		"audit.ip":      "Address",
		"audit.older":   "Older entries",
		"audit.none":    "The log is empty.",

		"action.sign-in":          "sign-in",
		"action.sign-in-failed":   "failed sign-in",
		"action.lock-out":         "lock-out",
		"action.sign-out":         "sign-out",
		"action.setup":            "setup",
		"action.account-create":   "account created",
		"action.account-import":   "account imported",
		"action.account-password": "password changed",
		"action.account-disable":  "account disabled",
		"action.account-enable":   "account enabled",
		"action.account-role":     "role changed",
		"action.totp-enable":      "TOTP enabled",
		"action.totp-disable":     "TOTP removed",
		"action.token-create":     "token created",
		"action.token-revoke":     "token revoked",
		"action.device-class":     "device type corrected",
		"action.export":           "export",
		"action.refused":          "refusal",

		"accounts.intro":          "Technicians see and do everything; the head of school sees the dashboard, energy and devices; teachers have no access to the console (their account is for the portal's teacher pages).",
		"accounts.caption":        "Console accounts",
		"accounts.login":          "Login",
		"accounts.role":           "Role",
		"accounts.state":          "State",
		"accounts.totp":           "TOTP code",
		"accounts.last":           "Last sign-in",
		"accounts.actions":        "Actions",
		"accounts.active":         "active",
		"accounts.disabled":       "disabled",
		"accounts.never":          "never",
		"accounts.role.for":       "Role of %s",
		"accounts.role.save":      "Change the role",
		"accounts.role.save.for":  "Change the role of %s",
		"accounts.disable":        "Disable",
		"accounts.disable.for":    "Disable the account %s",
		"accounts.enable":         "Enable",
		"accounts.enable.for":     "Enable the account %s",
		"accounts.new":            "Create an account",
		"accounts.create":         "Create the account",
		"accounts.reset":          "Change an account's password",
		"accounts.reset.password": "New password",
		"accounts.reset.hint":     "The account's open sessions are closed.",
		"accounts.reset.submit":   "Change the password",

		"tokens.intro":         "An API token lets a script or a monitoring tool read /api/v1/ without a session: header “Authorization: Bearer TOKEN”. Only its hash is kept.",
		"tokens.caption":       "API tokens, newest first",
		"tokens.id":            "No.",
		"tokens.name":          "Name",
		"tokens.role":          "Rights",
		"tokens.role.read":     "read (like the head of school)",
		"tokens.role.all":      "full (like a technician)",
		"tokens.by":            "Created by",
		"tokens.used":          "Last used",
		"tokens.revoked":       "revoked",
		"tokens.revoke":        "Revoke",
		"tokens.revoke.for":    "Revoke the token %s",
		"tokens.none":          "No token yet.",
		"tokens.new":           "Create a token",
		"tokens.create":        "Create the token",
		"tokens.created":       "Token created",
		"tokens.created.text":  "Copy it now: it will never be shown again.",
		"tokens.created.usage": "Example: curl -H \"Authorization: Bearer TOKEN\" https://box/api/v1/status",

		"me.teacher":          "Your account is for the portal's teacher pages; the console is for technicians and the head of school.",
		"me.totp":             "Verification code (TOTP)",
		"me.totp.on":          "A code from your authenticator app is asked at every sign-in.",
		"me.totp.off":         "No code is asked at sign-in. Turn it on to protect the account even if the password leaks.",
		"me.totp.enable":      "Turn on the verification code",
		"me.totp.remove":      "Stop asking for a code",
		"me.password":         "Change my password",
		"me.password.current": "Current password",
		"me.password.new":     "New password",
		"me.password.hint":    "Your other open sessions will be closed.",
		"me.password.submit":  "Change the password",
		"me.password.wrong":   "The current password is wrong.",

		"totp.title":      "Turn on the verification code",
		"totp.step1":      "Open an authenticator app on your phone (e.g. FreeOTP, Aegis or one of your choice).",
		"totp.step2":      "Add an account by typing the key below (or the otpauth URI if your app takes one):",
		"totp.secret":     "Key",
		"totp.issuer":     "Issuer",
		"totp.account":    "Account",
		"totp.type":       "Type",
		"totp.type.value": "time-based (TOTP), 6 digits, 30 seconds",
		"totp.uri":        "otpauth URI",
		"totp.step3":      "Type the code the app shows to confirm.",
		"totp.submit":     "Confirm and turn on",

		"energy.unavailable":           "Energy tracking is not available on this box.",
		"energy.box":                   "Box right now",
		"energy.week":                  "This week (7 days)",
		"energy.co2":                   "The week's emissions",
		"energy.source.rapl":           "measured by the processor's RAPL",
		"energy.source.battery":        "measured by the battery/UPS",
		"energy.source.estimate":       "estimate (consumption model)",
		"energy.source.estimate.model": "estimate (%s model)",
		"energy.prev.total":            "Previous week: %s",
		"energy.trend":                 "%s compared with the previous week",
		"energy.factor":                "Factor: %s kg CO₂e/kWh (%s, %s).",
		"energy.chart":                 "Energy per day and device type (kWh)",
		"energy.chart.desc":            "Bar chart of the last 7 days: one stacked bar per day and device type, and beside it a dashed bar for the same day of the previous week. The table below gives the same values.",
		"energy.chart.note":            "Network devices are estimated from their presence and a power per type; the box is measured or estimated as said above.",
		"energy.legend.prev":           "same day, previous week (total)",
		"energy.table":                 "Energy per day and device type, in kWh",
		"energy.day":                   "Day",
		"energy.total":                 "Total",
		"energy.prev":                  "Previous week",
		"energy.nodata":                "no measure",
		"energy.nodata.short":          "n/a",
		"energy.alerts":                "Devices left on outside school hours",
		"energy.alerts.none":           "No device was left on outside school hours.",
		"energy.alert.period":          "from %s to %s",
		"energy.alert.kwh":             "about %s",

		"ok.setup":            "The console is set up: your technicien account is created. The setup code no longer works.",
		"ok.signed-out":       "You are signed out.",
		"ok.class":            "The device's type is corrected.",
		"ok.account-created":  "The account is created.",
		"ok.account-disabled": "The account is disabled; its sessions are closed.",
		"ok.account-enabled":  "The account is enabled again.",
		"ok.account-role":     "The role is changed; the account's sessions are closed.",
		"ok.account-password": "The password is changed; the account's sessions are closed.",
		"ok.token-revoked":    "The token is revoked.",
		"ok.password":         "Your password is changed.",
		"ok.totp-on":          "The verification code is on: it will be asked at every sign-in.",
		"ok.totp-off":         "The verification code is no longer asked.",
	},
}

var monthNames = map[string][12]string{
	"fr": {"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"},
	"en": {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
}

var dayNames = map[string][7]string{
	"fr": {"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"},
	"en": {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"},
}

var shortDayNames = map[string][7]string{
	"fr": {"dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."},
	"en": {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"},
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

// labelOr returns the text of key, or fallback when the catalogue has
// none (a state or class appliance reports that the console does not know).
func labelOr(lang, key, fallback string) string {
	if s, ok := catalogues[lang][key]; ok {
		return s
	}
	return fallback
}

func classLabel(lang, class string) string {
	if class == "" {
		class = ClassUnknown
	}
	return labelOr(lang, "class."+class, class)
}

func energyClassLabel(lang, class string) string {
	s := classLabel(lang, class)
	if class == ClassBox {
		return s
	}
	// Capitalised as a column heading.
	r := []rune(s)
	return strings.ToUpper(string(r[:1])) + string(r[1:])
}

func roleLabel(lang string, r Role) string { return labelOr(lang, "role."+string(r), string(r)) }

func tokenRoleLabel(lang string, r Role) string {
	if r == RoleTechnicien {
		return msg(lang, "tokens.role.all")
	}
	return msg(lang, "tokens.role.read")
}

// plural picks the none/one/many form for n.
func plural(lang string, n int, none, one, many string) string {
	switch n {
	case 0:
		return msg(lang, none)
	case 1:
		return msg(lang, one)
	}
	return msgf(lang, many, n)
}

// formatNumber writes v with the language's decimal mark and thousands
// separator: "1 234,5" or "1,234.5".
func formatNumber(lang string, v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	s := strconv.FormatFloat(math.Abs(v), 'f', decimals, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if v < 0 && strings.Trim(s, "0.") != "" {
		b.WriteString("−")
	}
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteString(msg(lang, "thousands"))
		}
		b.WriteRune(r)
	}
	if frac != "" {
		b.WriteString(msg(lang, "decimal"))
		b.WriteString(frac)
	}
	return b.String()
}

// formatKWh writes an energy with as many decimals as it deserves.
func formatKWh(lang string, v float64) string {
	d := 0
	switch {
	case math.Abs(v) < 10:
		d = 2
	case math.Abs(v) < 100:
		d = 1
	}
	return formatNumber(lang, v, d) + "\u00a0kWh"
}

// formatScaled writes n with the language's units (powers of 1000, one
// decimal below 10, a no-break space before the unit): sizes and rates.
func formatScaled(lang string, n float64, unitsKey string) string {
	units := strings.Fields(msg(lang, unitsKey))
	if n < 0 || math.IsNaN(n) {
		n = 0
	}
	i := 0
	for i+1 < len(units) && n >= 999.5 {
		n /= 1000
		i++
	}
	if i > 0 && n < 9.95 {
		return formatNumber(lang, n, 1) + "\u00a0" + units[i]
	}
	return formatNumber(lang, math.Round(n), 0) + "\u00a0" + units[i]
}

// formatSize writes a byte count: "1,2 Go" or "1.2 GB".
func formatSize(lang string, n int64) string { return formatScaled(lang, float64(n), "size.units") }

// formatRate writes bits per second: "12,3 Mbit/s".
func formatRate(lang string, bps float64) string { return formatScaled(lang, bps, "rate.units") }

// clock writes a time of day: "9 h 05" in French, "9:05 am" in English.
func clock(lang string, t time.Time) string {
	if lang == "en" {
		h := t.Hour() % 12
		if h == 0 {
			h = 12
		}
		ampm := "am"
		if t.Hour() >= 12 {
			ampm = "pm"
		}
		return fmt.Sprintf("%d:%02d %s", h, t.Minute(), ampm)
	}
	return fmt.Sprintf("%d h %02d", t.Hour(), t.Minute())
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// formatDate writes "3 mars 2026" or "3 March 2026".
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

// dayMonth writes "3 mars" or "3 March", with the year when it is not
// now's.
func dayMonth(lang string, t, now time.Time) string {
	if t.Year() != now.Year() {
		return formatDate(lang, t)
	}
	s := formatDate(lang, t)
	return strings.TrimSuffix(s, " "+strconv.Itoa(t.Year()))
}

// formatClock writes a time: the clock time when it is today, else with
// its day: "14 h 32", "3 mars à 14 h 32".
func formatClock(lang string, t, now time.Time) string {
	if sameDay(t, now) {
		return clock(lang, t)
	}
	if lang == "en" {
		return dayMonth(lang, t, now) + " at " + clock(lang, t)
	}
	return dayMonth(lang, t, now) + " à " + clock(lang, t)
}

// formatClockSeconds writes a time of day to the second.
func formatClockSeconds(_ string, t time.Time) string { return t.Format("15:04:05") }

// formatDateTime writes a moment for tables: "aujourd'hui à 14 h 32",
// "3 mars à 14 h 32"; "—" for the zero time.
func formatDateTime(lang string, t, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	if sameDay(t, now) {
		if lang == "en" {
			return "today at " + clock(lang, t)
		}
		return "aujourd'hui à " + clock(lang, t)
	}
	return formatClock(lang, t, now)
}

// untilPhrase writes the end of a lock: "jusqu'à 14 h 32", "jusqu'au
// 3 mars à 14 h 32", "until 2:32 pm".
func untilPhrase(lang string, t, now time.Time) string {
	if lang == "en" {
		return "until " + formatClock(lang, t, now)
	}
	if sameDay(t, now) {
		return "jusqu'à " + clock(lang, t)
	}
	return "jusqu'au " + formatClock(lang, t, now)
}

func weekdayName(lang string, d time.Weekday) string {
	names, ok := dayNames[lang]
	if !ok {
		names = dayNames["fr"]
	}
	return names[d]
}

// shortDay labels a chart bar: "lun. 3", "Mon 3".
func shortDay(lang string, t time.Time) string {
	names, ok := shortDayNames[lang]
	if !ok {
		names = shortDayNames["fr"]
	}
	return names[t.Weekday()] + " " + strconv.Itoa(t.Day())
}

// longDay labels a table row: "lundi 3 mars", "Monday 3 March".
func longDay(lang string, t time.Time) string {
	return weekdayName(lang, t.Weekday()) + " " + dayMonth(lang, t, t)
}
