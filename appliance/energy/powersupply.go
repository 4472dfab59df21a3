package energy

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// A battery or UPS in /sys/class/power_supply measures the box's draw only
// while it supplies the box: status "Discharging". On mains, the same
// attributes describe the charge going into the battery (or nothing), not
// what the box uses, so they are ignored and the next source is used. While
// discharging, the reading includes the box's whole draw from the battery
// (not the losses of a UPS's inverter upstream of it, nor other loads a UPS
// may feed: give the box its own UPS, or read its figure as an upper bound).
//
// Power is power_now (µW) when present, else current_now (µA) × voltage_now
// (µV); some drivers report a negative current while discharging, so the
// absolute value is used. Peripheral batteries (scope "Device": mice,
// keyboards) are skipped, except those of type "UPS" (USB HID UPSes are
// registered that way).

// supplyReading is what the discharging supplies give now.
type supplyReading struct {
	Watts float64
	Names []string // supplies that contributed
}

// readSupplies sums the power of every discharging battery/UPS. ok is
// false when none is discharging with a usable power figure.
func readSupplies(sysRoot string) (r supplyReading, ok bool, err error) {
	base := filepath.Join(sysRoot, "class", "power_supply")
	entries, err := os.ReadDir(base)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return r, false, nil
		}
		return r, false, fmt.Errorf("list power supplies: %w", err)
	}
	for _, e := range entries {
		dir := filepath.Join(base, e.Name())
		typ, err := readTrim(filepath.Join(dir, "type"))
		if err != nil || (typ != "Battery" && typ != "UPS") {
			continue
		}
		if scope, _ := readTrim(filepath.Join(dir, "scope")); scope == "Device" && typ != "UPS" {
			continue
		}
		if status, _ := readTrim(filepath.Join(dir, "status")); status != "Discharging" {
			continue
		}
		w, ok := supplyWatts(dir)
		if !ok {
			continue
		}
		r.Watts += w
		r.Names = append(r.Names, e.Name())
	}
	return r, len(r.Names) > 0, nil
}

// supplyWatts reads one supply's power in watts.
func supplyWatts(dir string) (float64, bool) {
	if uw, err := readInt(filepath.Join(dir, "power_now")); err == nil && uw != 0 {
		return math.Abs(float64(uw)) / 1e6, true
	}
	ua, err1 := readInt(filepath.Join(dir, "current_now"))
	uv, err2 := readInt(filepath.Join(dir, "voltage_now"))
	if err1 != nil || err2 != nil || ua == 0 || uv <= 0 {
		return 0, false
	}
	return math.Abs(float64(ua)) / 1e6 * float64(uv) / 1e6, true
}

// supplyNames is for logs.
func supplyNames(r supplyReading) string { return strings.Join(r.Names, ",") }
