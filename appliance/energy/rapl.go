package energy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// RAPL (Running Average Power Limit) exposes cumulative energy counters
// under /sys/class/powercap. We read only the top-level package zones
// ("intel-rapl:N" whose name is "package-N"): their sub-zones (core,
// uncore, dram) are parts of the package or overlap it, and the "psys"
// zone of some laptops covers the whole platform including the packages,
// so adding any of them would count the same joules twice.
//
// What RAPL measures is the processor package (cores, caches, integrated
// graphics and memory controller), not the whole box: RAM, storage, fans
// and the power supply's losses are outside it. It is a measure, and a
// lower bound of the box's draw; the console says "mesuré (RAPL)".
//
// The "intel-rapl-mmio:N" zones some Intel machines also expose are a
// second interface to the same package counters: not read either.
//
// Since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694):
// without root, RAPL is reported unavailable and the next source is used.

// raplZone is one package zone.
type raplZone struct {
	Dir   string // e.g. /sys/class/powercap/intel-rapl:0
	Name  string // e.g. package-0
	MaxUJ uint64 // max_energy_range_uj: the counter wraps past it
}

// findRAPL lists the readable package zones under sysRoot.
func findRAPL(sysRoot string) ([]raplZone, error) {
	base := filepath.Join(sysRoot, "class", "powercap")
	entries, err := os.ReadDir(base)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list powercap zones: %w", err)
	}
	var zones []raplZone
	var firstErr error
	for _, e := range entries {
		n := e.Name()
		// Top-level zones only: "intel-rapl:0", not "intel-rapl:0:1".
		if !strings.HasPrefix(n, "intel-rapl:") || strings.Count(n, ":") != 1 {
			continue
		}
		dir := filepath.Join(base, n)
		name, err := readTrim(filepath.Join(dir, "name"))
		if err != nil || !strings.HasPrefix(name, "package") {
			continue
		}
		maxUJ, err := readUint(filepath.Join(dir, "max_energy_range_uj"))
		if err != nil || maxUJ == 0 {
			if firstErr == nil {
				firstErr = fmt.Errorf("rapl zone %s: max energy range: %v", n, err)
			}
			continue
		}
		if _, err := readUint(filepath.Join(dir, "energy_uj")); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("rapl zone %s: %w", n, err)
			}
			continue
		}
		zones = append(zones, raplZone{Dir: dir, Name: name, MaxUJ: maxUJ})
	}
	sort.Slice(zones, func(i, j int) bool { return zones[i].Dir < zones[j].Dir })
	if len(zones) == 0 {
		return nil, firstErr
	}
	return zones, nil
}

// readRAPL reads the counters of zones, in µJ, by zone directory.
func readRAPL(zones []raplZone) (map[string]uint64, error) {
	out := make(map[string]uint64, len(zones))
	for _, z := range zones {
		v, err := readUint(filepath.Join(z.Dir, "energy_uj"))
		if err != nil {
			return nil, fmt.Errorf("read rapl %s: %w", z.Name, err)
		}
		out[z.Dir] = v
	}
	return out, nil
}

// raplDelta is the energy between two readings of a counter that wraps
// to 0 past maxUJ. A wrap shows as cur < prev; the counter cannot wrap
// twice within MaxGap at any plausible power (the range is hundreds of kJ).
func raplDelta(prev, cur, maxUJ uint64) (uint64, bool) {
	if cur >= prev {
		return cur - prev, true
	}
	if prev > maxUJ || cur > maxUJ {
		return 0, false // not a wrap: the counter was reset or is garbage
	}
	return maxUJ - prev + cur, true
}

// raplJoules sums the energy of every zone between two readings.
func raplJoules(zones []raplZone, prev, cur map[string]uint64) (float64, error) {
	var uj uint64
	for _, z := range zones {
		p, ok1 := prev[z.Dir]
		c, ok2 := cur[z.Dir]
		if !ok1 || !ok2 {
			return 0, fmt.Errorf("rapl %s: missing reading", z.Name)
		}
		d, ok := raplDelta(p, c, z.MaxUJ)
		if !ok {
			return 0, fmt.Errorf("rapl %s: counter went from %d to %d (range %d)", z.Name, p, c, z.MaxUJ)
		}
		uj += d
	}
	return float64(uj) / 1e6, nil
}

func readTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(strings.TrimRight(string(b), "\x00")), nil
}

func readUint(path string) (uint64, error) {
	s, err := readTrim(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

func readInt(path string) (int64, error) {
	s, err := readTrim(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}
