package energy

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/shirou/gopsutil/v3/cpu"
)

// The CPU-utilisation model: with no meter, the box's power is estimated
// as IdleWatts + (MaxWatts − IdleWatts) × utilisation, utilisation being
// the busy share of all CPUs' time over the sampled interval. It is an
// estimate (the console says "estimé (modèle …)"): it ignores disks, USB
// devices and the power supply's efficiency, and the profile's figures
// are typical values, not this box's.

// psutilCPU reads /proc/stat through gopsutil.
type psutilCPU struct{}

func (psutilCPU) CPUTimes(ctx context.Context) (CPUTimes, error) {
	ts, err := cpu.TimesWithContext(ctx, false)
	if err != nil {
		return CPUTimes{}, err
	}
	if len(ts) == 0 {
		return CPUTimes{}, errors.New("no cpu times")
	}
	t := ts[0]
	// Guest time is already counted in user time on Linux.
	busy := t.User + t.Nice + t.System + t.Irq + t.Softirq + t.Steal
	return CPUTimes{Busy: busy, Total: busy + t.Idle + t.Iowait}, nil
}

// utilisation over the interval between two readings, in [0, 1]; ok is
// false when the readings cannot be compared (counter reset, no time).
func utilisation(prev, cur CPUTimes) (float64, bool) {
	dt := cur.Total - prev.Total
	db := cur.Busy - prev.Busy
	if dt <= 0 || db < 0 {
		return 0, false
	}
	return min(max(db/dt, 0), 1), true
}

// modelWatts is the profile's power at utilisation u.
func modelWatts(p Profile, u float64) float64 {
	return p.IdleWatts + (p.MaxWatts-p.IdleWatts)*min(max(u, 0), 1)
}

// guessProfile picks a profile name from the device-tree model (Raspberry
// Pi boards) then the CPU model name; "x86" is the fallback.
func guessProfile(procRoot string) (name, why string) {
	if b, err := os.ReadFile(filepath.Join(procRoot, "device-tree", "model")); err == nil {
		model := strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
		if n := profileFromBoard(model); n != "" {
			return n, "device-tree: " + model
		}
	}
	if cpuName := cpuModelName(procRoot); cpuName != "" {
		if n := profileFromCPU(cpuName); n != "" {
			return n, "cpu: " + cpuName
		}
		return "x86", "cpu: " + cpuName + " (no matching profile)"
	}
	return "x86", "no board or cpu model found (" + runtime.GOARCH + ")"
}

// profileFromBoard maps a device-tree model string to a profile.
func profileFromBoard(model string) string {
	switch {
	case strings.Contains(model, "Raspberry Pi 5"), strings.Contains(model, "Compute Module 5"):
		return "rpi5"
	case strings.Contains(model, "Raspberry Pi 4"), strings.Contains(model, "Compute Module 4"),
		strings.Contains(model, "Raspberry Pi 400"):
		return "rpi4"
	}
	return ""
}

// profileFromCPU maps a CPU model name to a profile. The Alder Lake-N
// family (N95, N97, N100, N200, N305, i3-N300/N305) shares the N100's
// envelope closely enough for an estimate.
func profileFromCPU(name string) string {
	for _, f := range strings.Fields(name) {
		f = strings.TrimPrefix(f, "i3-")
		switch f {
		case "N95", "N97", "N100", "N150", "N200", "N300", "N305", "N355":
			return "n100"
		}
	}
	return ""
}

// cpuModelName reads the first "model name" of cpuinfo.
func cpuModelName(procRoot string) string {
	f, err := os.Open(filepath.Join(procRoot, "cpuinfo"))
	if err != nil {
		return ""
	}
	defer f.Close()
	return parseCPUModel(bufio.NewScanner(f))
}

func parseCPUModel(sc *bufio.Scanner) string {
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
