package energy

import "fmt"

// SourceKind says how a figure was obtained.
type SourceKind string

// Sources of figures. RAPL, battery and plugs measure; the CPU model and
// the class profiles estimate.
const (
	SourceNone    SourceKind = ""        // no measurement at all
	SourceRAPL    SourceKind = "rapl"    // processor energy counters (powercap)
	SourceBattery SourceKind = "battery" // a discharging battery or UPS
	SourceModel   SourceKind = "model"   // CPU utilisation × hardware profile
	SourceShelly  SourceKind = "shelly"  // Shelly smart plug
	SourceTasmota SourceKind = "tasmota" // Tasmota smart plug
	SourceClass   SourceKind = "class"   // device class profile × presence
	SourceMixed   SourceKind = "mixed"   // several of the above over the period
)

// Source is where a figure comes from. Detail is the profile name (model)
// or the class (class profile); Of is what people read for it.
type Source struct {
	Kind   SourceKind
	Detail string
	Of     Text
}

// Measured tells whether the figure is a measure (not an estimate).
func (s Source) Measured() bool {
	switch s.Kind {
	case SourceRAPL, SourceBattery, SourceShelly, SourceTasmota:
		return true
	case SourceMixed:
		return s.Detail == mixedMeasured
	}
	return false
}

// NoMeasurement is what views show for time the box did not sample.
func NoMeasurement() Text { return Text{"pas de mesure", "no measurement"} }

// Label is the source as shown next to a figure, e.g. "mesuré (RAPL)" or
// "estimé (modèle N100)".
func (s Source) Label(lang string) string {
	of := s.Of.In(lang)
	if of == "" {
		of = s.Detail
	}
	t := func(fr, en string, args ...any) string {
		if lang == "en" {
			return fmt.Sprintf(en, args...)
		}
		return fmt.Sprintf(fr, args...)
	}
	switch s.Kind {
	case SourceRAPL:
		return t("mesuré (RAPL)", "measured (RAPL)")
	case SourceBattery:
		return t("mesuré (batterie/onduleur)", "measured (battery/UPS)")
	case SourceModel:
		return t("estimé (modèle %s)", "estimated (%s model)", of)
	case SourceShelly:
		return t("mesuré (prise Shelly)", "measured (Shelly plug)")
	case SourceTasmota:
		return t("mesuré (prise Tasmota)", "measured (Tasmota plug)")
	case SourceClass:
		return t("estimé (profil %s)", "estimated (%s profile)", of)
	case SourceMixed:
		if s.Detail == mixedMeasured {
			return t("mesuré (plusieurs sources)", "measured (several sources)")
		}
		return t("en partie mesuré, en partie estimé", "partly measured, partly estimated")
	}
	return NoMeasurement().In(lang)
}

// combine returns the source of a figure made of a and b.
func combine(a, b Source) Source {
	switch {
	case a.Kind == SourceNone:
		return b
	case b.Kind == SourceNone || a.Kind == b.Kind && a.Detail == b.Detail:
		return a
	}
	if a.Measured() && b.Measured() {
		return Source{Kind: SourceMixed, Detail: mixedMeasured}
	}
	return Source{Kind: SourceMixed}
}

const mixedMeasured = "measured"
