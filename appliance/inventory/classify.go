package inventory

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Class is a device class. The values match the console's class names.
type Class string

// Classes of devices.
const (
	ClassTablet             Class = "tablet"
	ClassLaptop             Class = "laptop"
	ClassDesktop            Class = "desktop"
	ClassPrinter            Class = "printer"
	ClassInteractiveDisplay Class = "interactive-display"
	ClassAccessPoint        Class = "access-point"
	ClassPhone              Class = "phone"
	ClassUnknown            Class = "unknown"
)

// Classes lists every class, in the order a technician is offered them.
var Classes = []Class{ClassTablet, ClassLaptop, ClassDesktop, ClassPrinter,
	ClassInteractiveDisplay, ClassAccessPoint, ClassPhone, ClassUnknown}

var classLabels = map[Class][2]string{
	ClassTablet:             {"tablette", "tablet"},
	ClassLaptop:             {"portable", "laptop"},
	ClassDesktop:            {"poste fixe", "desktop"},
	ClassPrinter:            {"imprimante", "printer"},
	ClassInteractiveDisplay: {"écran interactif", "interactive display"},
	ClassAccessPoint:        {"point d'accès", "access point"},
	ClassPhone:              {"téléphone", "phone"},
	ClassUnknown:            {"inconnu", "unknown"},
}

// Valid reports whether c is one of Classes.
func (c Class) Valid() bool { _, ok := classLabels[c]; return ok }

// Label is the class's name for people: French unless lang is "en".
func (c Class) Label(lang string) string {
	l, ok := classLabels[c]
	if !ok {
		l = classLabels[ClassUnknown]
	}
	if lang == "en" {
		return l[1]
	}
	return l[0]
}

// guess is one candidate class with its confidence (0–100) and reason.
type guess struct {
	class      Class
	confidence int
	fr, en     string
	kind       string // kind of evidence: service, model, ua, name, vendor
}

// facts are what a class guess rests on.
type facts struct {
	services []string
	hints    map[string]string
	ua       uaInfo
	vendor   string
	names    []string
}

var printerServices = []string{"_ipp._tcp", "_ipps._tcp", "_printer._tcp", "_pdl-datastream._tcp"}

// guessClass weighs the evidence: each rule proposes a class with a
// confidence; the most confident wins (the first rule on a tie, rules
// being ordered from the most to the least specific), and each other kind
// of evidence that agrees adds 5 points, up to 99 (100 is for a
// technician's word).
//
// The confidences are judgement, not statistics: an announced printing
// service or an Apple model identifier says what a device is (90–95); a
// User-Agent says it well for iPad, iPhone and Android (70–85) but not
// laptop versus desktop (30–40); a vendor says little unless it makes only
// one kind of device (printers, interactive displays, access points:
// 35–65); a host name follows conventions that users change (25–75).
func guessClass(f facts) guess {
	var cands []guess
	add := func(c Class, conf int, kind, fr, en string, args ...any) {
		cands = append(cands, guess{c, conf, fmt.Sprintf(fr, args...), fmt.Sprintf(en, args...), kind})
	}
	has := func(list ...string) string {
		for _, s := range list {
			if slices.Contains(f.services, s) {
				return s
			}
		}
		return ""
	}

	if s := has(printerServices...); s != "" {
		add(ClassPrinter, 95, "service", "annonce un service d'impression (%s)", "announces a printing service (%s)", s)
	}
	appleSaid := false
	for _, key := range []string{"model", "am", "md"} {
		v := f.hints[key]
		if c, conf := appleModel(v); c != "" {
			add(c, conf, "model", "modèle Apple %s", "Apple model %s", v)
			appleSaid = true
			break
		}
	}
	if f.hints["ty"] != "" || f.hints["usb_mdl"] != "" {
		add(ClassPrinter, 80, "model", "modèle d'imprimante %s", "printer model %s", printerModel(f.hints))
	}
	vendor := strings.ToLower(f.vendor)
	if s := has("_googlecast._tcp"); s != "" {
		if conf := displayVendor(vendor); conf > 0 {
			add(ClassInteractiveDisplay, 85, "service", "récepteur de diffusion (%s) de %s", "cast receiver (%s) made by %s", s, f.vendor)
		} else {
			add(ClassInteractiveDisplay, 55, "service", "récepteur de diffusion (%s)", "cast receiver (%s)", s)
		}
	}
	if s := has("_airplay._tcp", "_raop._tcp"); s != "" && !appleSaid {
		add(ClassInteractiveDisplay, 45, "service", "récepteur AirPlay (%s)", "AirPlay receiver (%s)", s)
	}
	if f.ua.class != "" {
		add(f.ua.class, f.ua.confidence, "ua", "navigateur : %s", "browser: %s", f.ua.token)
	}
	for _, n := range f.names {
		if n == "" {
			continue
		}
		low := strings.ToLower(n)
		for _, r := range nameRules {
			if r.re.MatchString(low) {
				add(r.class, r.confidence, "name", "nom « %s »", "name %q", n)
				break
			}
		}
	}
	if vendor != "" {
		if conf := displayVendor(vendor); conf > 0 {
			add(ClassInteractiveDisplay, conf, "vendor", "fabricant %s (écrans interactifs)", "vendor %s (interactive displays)", f.vendor)
		}
		for _, v := range vendorRules {
			if strings.HasPrefix(vendor, v.prefix) {
				add(v.class, v.confidence, "vendor", "fabricant %s", "vendor %s", f.vendor)
				break
			}
		}
	}
	if s := has("_workstation._tcp", "_smb._tcp"); s != "" {
		add(ClassDesktop, 30, "service", "annonce un poste de travail (%s)", "announces a workstation (%s)", s)
	}
	if len(cands) == 0 {
		return guess{class: ClassUnknown, fr: "aucun indice", en: "no evidence"}
	}
	best := cands[0]
	for _, c := range cands[1:] {
		if c.confidence > best.confidence {
			best = c
		}
	}
	kinds := map[string]bool{best.kind: true}
	for _, c := range cands {
		if c.class == best.class && !kinds[c.kind] {
			kinds[c.kind] = true
			best.confidence = min(best.confidence+5, 99)
		}
	}
	return best
}

// appleModel reads an Apple model identifier (DNS-SD _device-info model=,
// AirPlay model=, RAOP am=).
func appleModel(v string) (Class, int) {
	switch {
	case strings.HasPrefix(v, "MacBook"):
		return ClassLaptop, 90
	case strings.HasPrefix(v, "iMac"), strings.HasPrefix(v, "Macmini"), strings.HasPrefix(v, "MacPro"):
		return ClassDesktop, 90
	case strings.HasPrefix(v, "iPad"):
		return ClassTablet, 90
	case strings.HasPrefix(v, "iPhone"), strings.HasPrefix(v, "iPod"):
		return ClassPhone, 90
	case strings.HasPrefix(v, "AppleTV"):
		// A box behind a classroom screen or projector.
		return ClassInteractiveDisplay, 60
	case macModel.MatchString(v):
		// Recent Macs are "MacNN,M" whatever their form; most are laptops.
		return ClassLaptop, 50
	}
	return "", 0
}

var macModel = regexp.MustCompile(`^Mac[0-9]+,[0-9]+$`)

// displayVendor gives the confidence that a vendor's device on a school
// LAN is an interactive display: some make nothing else, others also make
// monitors, projectors or TV boards.
func displayVendor(vendor string) int {
	for _, p := range []string{"promethean", "smart technologies", "boxlight", "newline", "speechi", "clevertouch"} {
		if strings.HasPrefix(vendor, p) {
			return 65
		}
	}
	for _, p := range []string{"viewsonic", "benq", "guangzhou shiyuan", "maxhub"} {
		if strings.HasPrefix(vendor, p) {
			return 40
		}
	}
	return 0
}

var vendorRules = []struct {
	prefix     string
	class      Class
	confidence int
}{
	{"brother", ClassPrinter, 60}, {"seiko epson", ClassPrinter, 60}, {"canon", ClassPrinter, 50},
	{"lexmark", ClassPrinter, 65}, {"kyocera", ClassPrinter, 60}, {"ricoh", ClassPrinter, 60},
	{"xerox", ClassPrinter, 65}, {"konica minolta", ClassPrinter, 60}, {"oki data", ClassPrinter, 60},
	{"zebra technologies", ClassPrinter, 50}, {"toshiba tec", ClassPrinter, 55},
	{"ubiquiti", ClassAccessPoint, 60}, {"ruckus", ClassAccessPoint, 65}, {"aruba", ClassAccessPoint, 60},
	{"cisco meraki", ClassAccessPoint, 60}, {"meraki", ClassAccessPoint, 60}, {"aerohive", ClassAccessPoint, 60},
	{"extreme networks", ClassAccessPoint, 50}, {"routerboard", ClassAccessPoint, 50}, {"mikrotik", ClassAccessPoint, 50},
	{"cambium", ClassAccessPoint, 50}, {"engenius", ClassAccessPoint, 50}, {"zyxel", ClassAccessPoint, 40},
	{"tp-link", ClassAccessPoint, 35}, {"netgear", ClassAccessPoint, 35}, {"d-link", ClassAccessPoint, 35},
}

// nameRules read host names and announced names (lower case); the first
// rule that matches a name counts.
var nameRules = []struct {
	re         *regexp.Regexp
	class      Class
	confidence int
}{
	{regexp.MustCompile(`(^|[^a-z])ipad`), ClassTablet, 70},
	{regexp.MustCompile(`iphone`), ClassPhone, 70},
	{regexp.MustCompile(`macbook`), ClassLaptop, 75},
	{regexp.MustCompile(`(^|[^a-z])imac([^a-z]|$)`), ClassDesktop, 70},
	{regexp.MustCompile(`chromebook`), ClassLaptop, 70},
	// Windows names a new installation LAPTOP-XXXXXXX or DESKTOP-XXXXXXX
	// from the chassis type.
	{regexp.MustCompile(`^laptop-[0-9a-z]{7}$`), ClassLaptop, 65},
	{regexp.MustCompile(`^desktop-[0-9a-z]{7}$`), ClassDesktop, 55},
	{regexp.MustCompile(`galaxy[- ]?tab|tablette|lenovo[- ]?tab|mediapad|matepad|fire[- ]?hd|kindle`), ClassTablet, 60},
	// HP JetDirect (NPIxxxxxx), Brother (BRW/BRN + MAC) defaults, and
	// printer words.
	{regexp.MustCompile(`^npi[0-9a-f]{6}$|^br[wn][0-9a-f]{12}$|^epson|^canon|imprimante|printer|laserjet|officejet|deskjet|pixma|ecotank|copieur`), ClassPrinter, 75},
	{regexp.MustCompile(`activpanel|promethean|smartboard|ecran[- ]interactif|écran interactif|(^|[^a-z])(tni|eni|vpi)([^a-z]|$)`), ClassInteractiveDisplay, 60},
	{regexp.MustCompile(`^(ap|uap|u6|u7|wap|borne)[-_ ]|access[- ]?point|point[- ]d[- ']acc[eè]s`), ClassAccessPoint, 50},
	{regexp.MustCompile(`portable|^(nb|lt)[-_]?[0-9]`), ClassLaptop, 45},
	{regexp.MustCompile(`^(pc|poste|wks|ws)[-_]?[0-9]`), ClassDesktop, 40},
	// Android before version 8 named devices android-<16 hex digits>;
	// phones outnumber tablets.
	{regexp.MustCompile(`^android-[0-9a-f]{16}$`), ClassPhone, 25},
}

// modelOf picks the most telling model hint.
func modelOf(h map[string]string, services []string) string {
	switch {
	case h["ty"] != "" || h["usb_mdl"] != "":
		return printerModel(h)
	case h["model"] != "":
		return h["model"]
	case h["am"] != "":
		return h["am"]
	case h["md"] != "":
		return h["md"]
	case h["mdl"] != "":
		return strings.TrimSpace(h["mfg"] + " " + h["mdl"])
	case h["product"] != "":
		return strings.Trim(h["product"], "() ")
	case slices.Contains(services, "_preau._tcp"):
		return strings.TrimSpace("Préau " + h["version"])
	}
	return ""
}

func printerModel(h map[string]string) string {
	if h["ty"] != "" {
		return h["ty"]
	}
	mfg, mdl := h["usb_mfg"], h["usb_mdl"]
	if mfg != "" && !strings.HasPrefix(strings.ToLower(mdl), strings.ToLower(mfg)) {
		return mfg + " " + mdl
	}
	return mdl
}
