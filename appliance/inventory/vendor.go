package inventory

import (
	"errors"
	"io/fs"

	"preau/appliance/inventory/internal/oui"
)

// VendorStatus says what is known of a device's vendor.
type VendorStatus string

// Vendor statuses.
const (
	VendorKnown      VendorStatus = "known"      // found in the IEEE registries
	VendorUnknown    VendorStatus = "unknown"    // the prefix is in no registry read
	VendorRandomised VendorStatus = "randomised" // locally administered MAC: no vendor
	VendorNoList     VendorStatus = "no-list"    // the registries are not installed
)

// VendorLabel is the vendor to show: its name, or why there is none.
func (d Device) VendorLabel(lang string) string {
	en := lang == "en"
	switch d.VendorStatus {
	case VendorKnown:
		return d.Vendor
	case VendorRandomised:
		if en {
			return "randomised address"
		}
		return "adresse aléatoire"
	case VendorNoList:
		if en {
			return "unknown vendor (IEEE list missing: install ieee-data)"
		}
		return "fabricant inconnu (liste IEEE absente : installez ieee-data)"
	}
	if en {
		return "unknown vendor"
	}
	return "fabricant inconnu"
}

// vendorTable is the loaded registry, or the fact that it is missing.
type vendorTable struct {
	tab     *oui.Table
	missing bool
}

// vendors loads the IEEE registries once, at the first need; when they
// are absent or unreadable it logs once, in French and English, and the
// devices say so (VendorNoList). Installing ieee-data takes effect at the
// next start.
func (inv *Inventory) vendors() *vendorTable {
	inv.vendorsOnce.Do(func() {
		tab, files, err := oui.Load(inv.cfg.OUIDir)
		if err != nil {
			vt := &vendorTable{missing: true}
			inv.vendorTab.Store(vt)
			if errors.Is(err, fs.ErrNotExist) {
				inv.log.Warn("inventaire : liste IEEE des fabricants absente, installez le paquet ieee-data / IEEE vendor list missing: install the ieee-data package",
					"dir", inv.cfg.OUIDir)
			} else {
				inv.log.Warn("inventaire : liste IEEE des fabricants illisible / IEEE vendor list unreadable", "dir", inv.cfg.OUIDir, "err", err)
			}
			return
		}
		inv.vendorTab.Store(&vendorTable{tab: tab})
		inv.log.Info("inventory: IEEE vendor list loaded", "dir", inv.cfg.OUIDir, "files", files, "blocks", tab.Len(), "vendors", tab.Vendors())
	})
	return inv.vendorTab.Load()
}

// vendorOf looks up the vendor of a device's first MAC. A randomised MAC
// is never looked up: its prefix says nothing of the maker.
func (inv *Inventory) vendorOf(id string, randomised bool) (string, VendorStatus) {
	if randomised {
		return "", VendorRandomised
	}
	vt := inv.vendors()
	if vt.missing {
		return "", VendorNoList
	}
	if name, ok := vt.tab.Lookup(macOf(id)); ok {
		return name, VendorKnown
	}
	return "", VendorUnknown
}
