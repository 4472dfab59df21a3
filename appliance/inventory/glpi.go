package inventory

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// GLPI native inventory documents (https://github.com/glpi-project/
// inventory_format, inventory.schema.json), one per device.
//
// The item type follows the class:
//
//	tablet, laptop, desktop  Computer, hardware.chassis_type Tablet, Laptop, Desktop
//	interactive display      Computer, chassis_type "All in One" (a screen with a computer inside)
//	phone                    Phone
//	printer                  Printer (action netinventory, network_device type Printer)
//	access point             NetworkEquipment (netinventory, network_device type Networking)
//	unknown                  Unmanaged (netdiscovery): GLPI's own place for devices
//	                         found on the network whose kind is not known, rather than
//	                         a made-up Computer
//
// Computers and phones carry what an agentless inventory knows: name,
// maker (bios.smanufacturer) and model (bios.smodel), system
// (operatingsystem.name) and network cards (networks: MAC, addresses);
// network devices carry network_device and one network port. The log date
// is the last sighting. The deviceid, which GLPI keys its agent records
// on, is "preau-" + the device's first MAC in hex + its first sighting in
// UTC: stable for the device's life and unique across boxes.

// GLPI item types.
const (
	GLPIComputer         = "Computer"
	GLPIPhone            = "Phone"
	GLPIPrinter          = "Printer"
	GLPINetworkEquipment = "NetworkEquipment"
	GLPIUnmanaged        = "Unmanaged"
)

// GLPIItemType is the GLPI item type of a class.
func GLPIItemType(c Class) string {
	switch c {
	case ClassTablet, ClassLaptop, ClassDesktop, ClassInteractiveDisplay:
		return GLPIComputer
	case ClassPhone:
		return GLPIPhone
	case ClassPrinter:
		return GLPIPrinter
	case ClassAccessPoint:
		return GLPINetworkEquipment
	}
	return GLPIUnmanaged
}

var chassis = map[Class]string{
	ClassTablet: "Tablet", ClassLaptop: "Laptop", ClassDesktop: "Desktop", ClassInteractiveDisplay: "All in One",
}

// GLPIDeviceID is the device's stable GLPI deviceid.
func (d Device) GLPIDeviceID() string {
	return "preau-" + strings.ReplaceAll(d.ID, ":", "") + "-" + d.FirstSeen.UTC().Format("2006-01-02-15-04-05")
}

type glpiDoc struct {
	Action   string      `json:"action"`
	DeviceID string      `json:"deviceid"`
	ItemType string      `json:"itemtype"`
	Tag      string      `json:"tag,omitempty"`
	Content  glpiContent `json:"content"`
}

type glpiContent struct {
	VersionClient   string             `json:"versionclient"`
	AccessLog       *glpiAccessLog     `json:"accesslog,omitempty"`
	Hardware        *glpiHardware      `json:"hardware,omitempty"`
	Bios            *glpiBios          `json:"bios,omitempty"`
	OperatingSystem *glpiOS            `json:"operatingsystem,omitempty"`
	Networks        []glpiNetwork      `json:"networks,omitempty"`
	NetworkDevice   *glpiNetworkDevice `json:"network_device,omitempty"`
	NetworkPorts    []glpiNetworkPort  `json:"network_ports,omitempty"`
}

type glpiAccessLog struct {
	LogDate string `json:"logdate"`
}

type glpiHardware struct {
	Name        string `json:"name,omitempty"`
	ChassisType string `json:"chassis_type,omitempty"`
	Description string `json:"description,omitempty"`
}

type glpiBios struct {
	SManufacturer string `json:"smanufacturer,omitempty"`
	SModel        string `json:"smodel,omitempty"`
}

type glpiOS struct {
	Name string `json:"name"`
}

type glpiNetwork struct {
	Description string `json:"description"`
	MAC         string `json:"mac"`
	IPAddress   string `json:"ipaddress,omitempty"`
	IPAddress6  string `json:"ipaddress6,omitempty"`
	Status      string `json:"status"`
	VirtualDev  bool   `json:"virtualdev"`
}

type glpiNetworkDevice struct {
	Type         string   `json:"type"`
	Name         string   `json:"name,omitempty"`
	MAC          string   `json:"mac"`
	IPs          []string `json:"ips,omitempty"`
	Manufacturer string   `json:"manufacturer,omitempty"`
	Model        string   `json:"model,omitempty"`
	Description  string   `json:"description,omitempty"`
}

type glpiNetworkPort struct {
	IfNumber int      `json:"ifnumber"`
	IfName   string   `json:"ifname"`
	IfDescr  string   `json:"ifdescr"`
	IfType   int      `json:"iftype"`
	IfStatus int      `json:"ifstatus"`
	MAC      string   `json:"mac"`
	IPs      []string `json:"ips,omitempty"`
}

// glpiLogDate is GLPI's date-time form, in the box's time zone.
const glpiLogDate = "2006-01-02 15:04:05"

// glpiDocument builds the document of d; withLog false leaves out what
// changes without the device changing, the log date and the port status
// (for comparing documents between pushes).
func (inv *Inventory) glpiDocument(d Device, withLog bool) glpiDoc {
	if !withLog {
		d.Present = true
	}
	itemtype := GLPIItemType(d.Class)
	doc := glpiDoc{
		Action:   "inventory",
		DeviceID: d.GLPIDeviceID(),
		ItemType: itemtype,
		Tag:      inv.cfg.GLPITag,
		Content:  glpiContent{VersionClient: "Preau-Inventory_v" + inv.cfg.Version},
	}
	if withLog {
		doc.Content.AccessLog = &glpiAccessLog{LogDate: d.LastSeen.Local().Format(glpiLogDate)}
	}
	ips := validIPs(d.IP, d.IPv6)
	description := glpiDescription(d)
	switch itemtype {
	case GLPIComputer, GLPIPhone:
		doc.Content.Hardware = &glpiHardware{Name: d.DisplayName(), ChassisType: chassis[d.Class], Description: description}
		if d.Vendor != "" || d.Model != "" {
			doc.Content.Bios = &glpiBios{SManufacturer: d.Vendor, SModel: d.Model}
		}
		if d.OS != "" {
			doc.Content.OperatingSystem = &glpiOS{Name: d.OS}
		}
		status := "down"
		if d.Present {
			status = "up"
		}
		for _, mac := range d.MACs {
			n := glpiNetwork{Description: "LAN", MAC: mac, Status: status}
			if mac == d.MAC {
				for _, ip := range ips {
					if ip.Is4() {
						n.IPAddress = ip.String()
					} else {
						n.IPAddress6 = ip.String()
					}
				}
			} else {
				n.Status = "down"
			}
			doc.Content.Networks = append(doc.Content.Networks, n)
		}
	default:
		doc.Action = "netinventory"
		ndType := map[string]string{GLPIPrinter: "Printer", GLPINetworkEquipment: "Networking"}[itemtype]
		if itemtype == GLPIUnmanaged {
			doc.Action, ndType = "netdiscovery", "Unmanaged"
		}
		var ipStrings []string
		for _, ip := range ips {
			ipStrings = append(ipStrings, ip.String())
		}
		doc.Content.NetworkDevice = &glpiNetworkDevice{
			Type: ndType, Name: d.DisplayName(), MAC: d.MAC, IPs: ipStrings,
			Manufacturer: d.Vendor, Model: d.Model, Description: description,
		}
		port := glpiNetworkPort{IfNumber: 1, IfName: "LAN", IfDescr: "LAN", IfType: 6, IfStatus: 2, MAC: d.MAC, IPs: ipStrings}
		if d.Present {
			port.IfStatus = 1
		}
		doc.Content.NetworkPorts = []glpiNetworkPort{port}
	}
	return doc
}

// glpiDescription says, in French, that the device was inventoried
// without an agent and on what the class rests.
func glpiDescription(d Device) string {
	s := fmt.Sprintf("Inventorié sans agent par Préau : %s (%s, confiance %d %%)", d.Class.Label("fr"), d.ClassReason, d.ClassConfidence)
	if d.Randomised {
		s += " ; adresse MAC aléatoire"
	}
	return s
}

func validIPs(list ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range list {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip.WithZone(""))
		}
	}
	return out
}

// GLPIDocument returns the GLPI native inventory JSON document of d,
// indented.
func (inv *Inventory) GLPIDocument(d Device) ([]byte, error) {
	b, err := json.MarshalIndent(inv.glpiDocument(d, true), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("inventory: glpi document of %s: %w", d.ID, err)
	}
	return append(b, '\n'), nil
}

// glpiHash identifies a document's content for the pusher: the log date
// and the port status, which change with every arrival and departure, are
// left out (a Refresh push carries them).
func (inv *Inventory) glpiHash(d Device) string {
	b, _ := json.Marshal(inv.glpiDocument(d, false))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// GLPIFileName is the name of d's document in a folder or an archive.
func (d Device) GLPIFileName() string { return d.GLPIDeviceID() + ".json" }

// WriteGLPIDir writes one document per device into dir (created if
// needed), each file replaced atomically, and returns how many it wrote.
// Files of devices no longer known are left alone.
func (inv *Inventory) WriteGLPIDir(ctx context.Context, dir string) (int, error) {
	devs, err := inv.Devices(ctx)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("inventory: glpi folder: %w", err)
	}
	for i, d := range devs {
		if err := ctx.Err(); err != nil {
			return i, err
		}
		doc, err := inv.GLPIDocument(d)
		if err != nil {
			return i, err
		}
		if err := writeFileAtomic(filepath.Join(dir, d.GLPIFileName()), doc); err != nil {
			return i, fmt.Errorf("inventory: glpi folder: %w", err)
		}
	}
	if err := syncDir(dir); err != nil {
		return len(devs), fmt.Errorf("inventory: glpi folder: %w", err)
	}
	return len(devs), nil
}

// WriteGLPIZip writes a zip archive of one document per device and
// returns how many it holds.
func (inv *Inventory) WriteGLPIZip(ctx context.Context, w io.Writer) (int, error) {
	devs, err := inv.Devices(ctx)
	if err != nil {
		return 0, err
	}
	zw := zip.NewWriter(w)
	for i, d := range devs {
		doc, err := inv.GLPIDocument(d)
		if err != nil {
			return i, err
		}
		f, err := zw.CreateHeader(&zip.FileHeader{Name: d.GLPIFileName(), Method: zip.Deflate, Modified: d.LastSeen})
		if err != nil {
			return i, fmt.Errorf("inventory: glpi zip: %w", err)
		}
		if _, err := f.Write(doc); err != nil {
			return i, fmt.Errorf("inventory: glpi zip: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return len(devs), fmt.Errorf("inventory: glpi zip: %w", err)
	}
	return len(devs), nil
}

// writeFileAtomic writes data to a temporary file of the same folder,
// syncs it and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
