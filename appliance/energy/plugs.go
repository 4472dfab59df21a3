package energy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Smart plugs are read through their local HTTP APIs, without a cloud and
// without authentication (keep them on a network pupils cannot reach):
//
//   - Shelly Gen1 (Plug S, 1PM, EM…): GET /status. "meters[ch].power" (W)
//     and "meters[ch].total" in watt-minutes (PM devices); the EM's
//     "emeters[ch]" give "power" (W) and "total" in Wh.
//   - Shelly Gen2 and later (Plus/Pro/Gen3): GET /rpc/Switch.GetStatus?id=ch:
//     "apower" (W) and "aenergy.total" (Wh).
//   - Tasmota: GET /cm?cmnd=Status%208: "StatusSNS.ENERGY.Power" (W; an
//     array on multi-channel devices) and "StatusSNS.ENERGY.Total" (kWh).
//
// The energy of an interval is the difference of the plug's counter; when
// the counter went down (the plug restarted) it is power × time instead.

// PlugKind names a plug API.
type PlugKind string

// Plug kinds.
const (
	PlugShellyGen1 PlugKind = "shelly-gen1"
	PlugShellyGen2 PlugKind = "shelly-gen2"
	PlugTasmota    PlugKind = "tasmota"
)

// Plug is a smart plug measuring one device.
type Plug struct {
	// Device is the ID (MAC) of the device plugged in. It need not be on
	// the LAN (a display without network): Name and Class then describe it.
	Device  string
	Name    string
	Class   Class // default ClassUnknown
	Kind    PlugKind
	URL     string // base URL of the plug, e.g. http://192.168.10.50
	Channel int    // relay/meter index, 0 for single plugs
}

func (p Plug) source() Source {
	if p.Kind == PlugTasmota {
		return Source{Kind: SourceTasmota}
	}
	return Source{Kind: SourceShelly}
}

// PlugReading is one reading of a plug.
type PlugReading struct {
	Watts    float64
	TotalWh  float64 // cumulated energy counter
	HasTotal bool
}

const maxPlugBody = 256 << 10

// ReadPlug reads a plug once.
func ReadPlug(ctx context.Context, d Doer, p Plug) (PlugReading, error) {
	base := strings.TrimRight(p.URL, "/")
	var u string
	switch p.Kind {
	case PlugShellyGen1:
		u = base + "/status"
	case PlugShellyGen2:
		u = base + "/rpc/Switch.GetStatus?id=" + strconv.Itoa(p.Channel)
	case PlugTasmota:
		u = base + "/cm?cmnd=Status%208"
	default:
		return PlugReading{}, fmt.Errorf("read plug %s: unknown kind %q", p.Device, p.Kind)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return PlugReading{}, fmt.Errorf("read plug %s: %w", p.Device, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.Do(req)
	if err != nil {
		return PlugReading{}, fmt.Errorf("read plug %s: %w", p.Device, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPlugBody+1))
	if err != nil {
		return PlugReading{}, fmt.Errorf("read plug %s: %w", p.Device, err)
	}
	if resp.StatusCode != http.StatusOK {
		return PlugReading{}, fmt.Errorf("read plug %s: http status %d", p.Device, resp.StatusCode)
	}
	if len(body) > maxPlugBody {
		return PlugReading{}, fmt.Errorf("read plug %s: answer larger than %d bytes", p.Device, maxPlugBody)
	}
	var r PlugReading
	switch p.Kind {
	case PlugShellyGen1:
		r, err = ParseShellyGen1(body, p.Channel)
	case PlugShellyGen2:
		r, err = ParseShellyGen2(body)
	case PlugTasmota:
		r, err = ParseTasmota(body, p.Channel)
	}
	if err != nil {
		return PlugReading{}, fmt.Errorf("read plug %s: %w", p.Device, err)
	}
	return r, nil
}

// ParseShellyGen1 parses a Gen1 /status answer for channel ch.
func ParseShellyGen1(body []byte, ch int) (PlugReading, error) {
	var st struct {
		Meters []struct {
			Power   *float64 `json:"power"`
			Total   *float64 `json:"total"` // watt-minutes
			IsValid *bool    `json:"is_valid"`
		} `json:"meters"`
		EMeters []struct {
			Power   *float64 `json:"power"`
			Total   *float64 `json:"total"` // Wh
			IsValid *bool    `json:"is_valid"`
		} `json:"emeters"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return PlugReading{}, fmt.Errorf("shelly gen1 status: %w", err)
	}
	var power, total *float64
	var valid *bool
	perWh := 1.0
	switch {
	case ch < len(st.EMeters):
		power, total, valid = st.EMeters[ch].Power, st.EMeters[ch].Total, st.EMeters[ch].IsValid
	case ch < len(st.Meters):
		power, total, valid = st.Meters[ch].Power, st.Meters[ch].Total, st.Meters[ch].IsValid
		perWh = 60 // watt-minutes
	default:
		return PlugReading{}, fmt.Errorf("shelly gen1 status: no meter %d", ch)
	}
	if valid != nil && !*valid {
		return PlugReading{}, errors.New("shelly gen1 status: meter reading not valid")
	}
	if power == nil {
		return PlugReading{}, errors.New("shelly gen1 status: no power")
	}
	r := PlugReading{Watts: *power}
	if total != nil && *total >= 0 {
		r.TotalWh, r.HasTotal = *total/perWh, true
	}
	return r, checkReading(r)
}

// ParseShellyGen2 parses a Gen2+ Switch.GetStatus answer.
func ParseShellyGen2(body []byte) (PlugReading, error) {
	var st struct {
		APower  *float64 `json:"apower"`
		AEnergy *struct {
			Total *float64 `json:"total"` // Wh
		} `json:"aenergy"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return PlugReading{}, fmt.Errorf("shelly gen2 switch status: %w", err)
	}
	if st.APower == nil {
		return PlugReading{}, errors.New("shelly gen2 switch status: no apower (switch without a meter?)")
	}
	r := PlugReading{Watts: *st.APower}
	if st.AEnergy != nil && st.AEnergy.Total != nil && *st.AEnergy.Total >= 0 {
		r.TotalWh, r.HasTotal = *st.AEnergy.Total, true
	}
	return r, checkReading(r)
}

// ParseTasmota parses a Tasmota "Status 8" answer for channel ch.
func ParseTasmota(body []byte, ch int) (PlugReading, error) {
	var st struct {
		StatusSNS struct {
			Energy *struct {
				Power json.RawMessage `json:"Power"`
				Total json.RawMessage `json:"Total"` // kWh
			} `json:"ENERGY"`
		} `json:"StatusSNS"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return PlugReading{}, fmt.Errorf("tasmota status 8: %w", err)
	}
	if st.StatusSNS.Energy == nil {
		return PlugReading{}, errors.New("tasmota status 8: no StatusSNS.ENERGY (device without a meter?)")
	}
	w, ok := numberAt(st.StatusSNS.Energy.Power, ch)
	if !ok {
		return PlugReading{}, fmt.Errorf("tasmota status 8: no power for channel %d", ch)
	}
	r := PlugReading{Watts: w}
	// Total is one counter for the device, or one per channel.
	if kwh, ok := numberAt(st.StatusSNS.Energy.Total, ch); ok && kwh >= 0 {
		r.TotalWh, r.HasTotal = kwh*1000, true
	}
	return r, checkReading(r)
}

// numberAt reads a JSON number, or element i of an array of numbers.
func numberAt(raw json.RawMessage, i int) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, false
	}
	if raw[0] == '[' {
		var a []float64
		if json.Unmarshal(raw, &a) != nil || i >= len(a) {
			return 0, false
		}
		return a[i], true
	}
	var f float64
	if json.Unmarshal(raw, &f) != nil {
		return 0, false
	}
	return f, true
}

// checkReading refuses figures no plug can give.
func checkReading(r PlugReading) error {
	if r.Watts < 0 || r.Watts > 4000 {
		return fmt.Errorf("implausible power %v W", r.Watts)
	}
	return nil
}
