package energy

// This file holds every default figure of the package and says where each
// comes from. A figure we could not trace to a publication is marked as an
// estimate, in the code and in what the console shows.

// Text is a user-facing string in French (first) and English.
type Text struct{ FR, EN string }

// In returns the text in lang ("en" gives English, anything else French).
func (t Text) In(lang string) string {
	if lang == "en" && t.EN != "" {
		return t.EN
	}
	return t.FR
}

// Class is a device class. The values are the inventory's class codes;
// appliance maps them if they ever differ. A class missing from the table
// is accounted as ClassUnknown.
type Class string

// Device classes.
const (
	ClassTablet      Class = "tablet"
	ClassLaptop      Class = "laptop"
	ClassDesktop     Class = "desktop"
	ClassPrinter     Class = "printer"
	ClassDisplay     Class = "interactive-display"
	ClassAccessPoint Class = "access-point"
	ClassPhone       Class = "phone"
	ClassUnknown     Class = "unknown"
	// ClassBox is the Préau box itself in the views; it is measured or
	// modelled (never a class profile) and is not a LAN device.
	ClassBox Class = "box"
)

var classLabels = map[Class]Text{
	ClassTablet:      {"tablette", "tablet"},
	ClassLaptop:      {"portable", "laptop"},
	ClassDesktop:     {"poste fixe", "desktop"},
	ClassPrinter:     {"imprimante", "printer"},
	ClassDisplay:     {"écran interactif", "interactive display"},
	ClassAccessPoint: {"point d'accès", "access point"},
	ClassPhone:       {"téléphone", "phone"},
	ClassUnknown:     {"inconnu", "unknown"},
	ClassBox:         {"boîtier Préau", "Préau box"},
}

// Label is the class's name for people; an unlisted class shows its code.
func (c Class) Label(lang string) string {
	if t, ok := classLabels[c]; ok {
		return t.In(lang)
	}
	return string(c)
}

// ClassOrder is the order in which views list classes.
func ClassOrder() []Class {
	return []Class{ClassBox, ClassDesktop, ClassLaptop, ClassTablet, ClassDisplay,
		ClassPrinter, ClassAccessPoint, ClassPhone, ClassUnknown}
}

// ClassProfile is what the accounting knows of a device class.
type ClassProfile struct {
	Class Class
	// Watts is the average draw while the device is present on the LAN.
	Watts float64
	// WattsSource says where Watts comes from ("estimation …" when it is
	// ours).
	WattsSource string
	// ManufacturingKgCO2e is the footprint of making and delivering one
	// device, kgCO₂e; 0 means unknown (the footprint view says so).
	ManufacturingKgCO2e float64
	// LifeYears over which the manufacturing footprint is amortised.
	LifeYears float64
	// ManufacturingSource says where the two figures above come from.
	ManufacturingSource string
}

// Where the manufacturing figures come from: the ADEME–Arcep study of the
// environmental footprint of digital technology in France (volume 2,
// January 2022), "Évaluation de l'impact environnemental du numérique en
// France et analyse prospective", ADEME librairie ref. 5226, as published
// in ADEME's own Impact CO2 data set (impactco2.fr, numerique.json). We
// take "construction" (manufacturing) plus "assemblage et distribution"
// (kgCO₂e per device); the life is Impact CO2's default years of use.
// These are averages over the French installed base of each kind of
// device, not the figure of a given model.
const ademeArcep = "ADEME–Arcep 2022 (moyenne, via Impact CO2)"

// DefaultClasses returns the built-in class table.
//
// Watts: we found no published average draw "while present on the school
// network" per class; the figures are our estimates of a typical idle or
// standby draw for the kind of device, and are labelled so. The
// technician replaces them (or measures with a smart plug).
func DefaultClasses() []ClassProfile {
	return []ClassProfile{
		{Class: ClassTablet, Watts: 5,
			WattsSource:         "estimation : tablette allumée ou en charge, 2 à 10 W",
			ManufacturingKgCO2e: 56.3 + 3.4, LifeYears: 3,
			ManufacturingSource: ademeArcep + " : tablette 10,5 pouces"},
		{Class: ClassLaptop, Watts: 15,
			WattsSource:         "estimation : portable allumé au repos, 8 à 20 W",
			ManufacturingKgCO2e: 170.3 + 12.3, LifeYears: 5,
			ManufacturingSource: ademeArcep + " : ordinateur portable 14,6 pouces"},
		{Class: ClassDesktop, Watts: 50,
			WattsSource:         "estimation : unité centrale au repos (~35 W) et écran 24 pouces (~15 W)",
			ManufacturingKgCO2e: 202.6 + 1.8 + 64.6 + 1.3, LifeYears: 6,
			ManufacturingSource: ademeArcep + " : ordinateur fixe professionnel sans écran + écran 24 pouces"},
		{Class: ClassPrinter, Watts: 10,
			WattsSource:         "estimation : imprimante prête (hors impression), 5 à 20 W",
			ManufacturingSource: "non renseigné : pas de chiffre ADEME–Arcep repris ici"},
		{Class: ClassDisplay, Watts: 150,
			WattsSource:         "estimation : écran interactif 65 à 75 pouces allumé, 100 à 250 W",
			ManufacturingKgCO2e: 372.6 + 3.2, LifeYears: 8,
			ManufacturingSource: ademeArcep + " : téléviseur moyen (45 pouces), faute de chiffre pour un écran interactif : sous-estimé"},
		{Class: ClassAccessPoint, Watts: 8,
			WattsSource:         "estimation : point d'accès Wi-Fi PoE, 6 à 13 W",
			ManufacturingKgCO2e: 60.8 + 0.6, LifeYears: 5,
			ManufacturingSource: ademeArcep + " : box internet, faute de chiffre pour un point d'accès"},
		{Class: ClassPhone, Watts: 2,
			WattsSource:         "estimation : téléphone en veille ou en charge",
			ManufacturingKgCO2e: 83 + 2.1, LifeYears: 2.5,
			ManufacturingSource: ademeArcep + " : smartphone"},
		{Class: ClassUnknown, Watts: 5,
			WattsSource:         "estimation : appareil inconnu",
			ManufacturingSource: "non renseigné : classe inconnue"},
	}
}

// ElectricityFactor is the CO₂e of one kWh of the electricity used, with
// the year it describes and its source: a factor is always dated.
type ElectricityFactor struct {
	KgCO2ePerKWh float64
	Year         int
	Source       string
}

// DefaultElectricity is France mainland's average consumption mix (life
// cycle, "Électricité - 2022 - mix moyen - consommation", France
// continentale) of ADEME's Base Empreinte: 0.052 kgCO₂e/kWh. We could not
// re-read the database entry itself while writing this; secondary sources
// give 0.055 for 2021 and between 0.052 and 0.073 for 2022 depending on
// the method (consumption vs production mix). The technician should check
// the current Base Empreinte value and set it with its year.
func DefaultElectricity() ElectricityFactor {
	return ElectricityFactor{
		KgCO2ePerKWh: 0.052,
		Year:         2022,
		Source:       "ADEME Base Empreinte, électricité, mix moyen de consommation, France continentale",
	}
}

// Profile is a hardware profile of the CPU-utilisation model: the box's
// power is IdleWatts at 0 % and MaxWatts at 100 % CPU, linear in between.
type Profile struct {
	Name      string // config name
	Label     Text   // shown in "estimé (modèle Label)"
	IdleWatts float64
	MaxWatts  float64
	Source    string // where the two figures come from
}

// DefaultProfiles returns the built-in hardware profiles.
func DefaultProfiles() []Profile {
	return []Profile{
		// Raspberry Pi Dramble power benchmarks of the Pi 4 B: 540 mA
		// idle and 1280 mA at 400 % CPU, at 5 V (board only, no USB
		// device), i.e. 2.7 W and 6.4 W.
		{Name: "rpi4", Label: Text{"Raspberry Pi 4", "Raspberry Pi 4"}, IdleWatts: 2.7, MaxWatts: 6.4,
			Source: "mesures publiées (Raspberry Pi Dramble) : 540 mA au repos, 1280 mA CPU à 400 %, sous 5 V"},
		{Name: "rpi5", Label: Text{"Raspberry Pi 5", "Raspberry Pi 5"}, IdleWatts: 3.0, MaxWatts: 8.0,
			Source: "estimation arrondie d'après des mesures publiées (carte seule)"},
		{Name: "n100", Label: Text{"N100", "N100"}, IdleWatts: 6, MaxWatts: 20,
			Source: "estimation d'après des tests de mini-PC Intel N100 mesurés à la prise"},
		{Name: "x86", Label: Text{"x86 générique", "generic x86"}, IdleWatts: 10, MaxWatts: 35,
			Source: "estimation pour un petit PC x86"},
	}
}
