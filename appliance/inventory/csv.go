package inventory

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// csvHeader names the columns, in French: the file is for the school's
// and the town's staff.
var csvHeader = []string{
	"Adresse MAC", "Autres adresses MAC", "Adresse IPv4", "Adresse IPv6", "Nom", "Fabricant", "Type",
	"Confiance (%)", "Type corrigé par", "Modèle", "Système", "Services", "Première apparition",
	"Dernière apparition", "Présent",
}

// csvTime is the date form spreadsheets read as a date, in the box's
// time zone.
const csvTime = "2006-01-02 15:04"

// WriteCSV writes devices as CSV for spreadsheets, in the form French
// spreadsheet users open with a double click:
//
//   - fields separated by semicolons, since a French locale uses the
//     comma as decimal separator and its spreadsheets expect ";" lists;
//   - UTF-8 with a byte order mark: without it Excel reads UTF-8 as
//     Windows-1252 and mangles every accent (LibreOffice and the usual
//     CSV libraries skip the mark);
//   - CRLF line ends, dates as "2006-01-02 15:04" in local time, "oui" or
//     "non" for presence.
//
// A field that starts with =, +, -, @ or a tab is prefixed with an
// apostrophe: host names and models come from the devices themselves and
// must not become spreadsheet formulas.
func WriteCSV(w io.Writer, devices []Device) error {
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return fmt.Errorf("inventory: csv: %w", err)
	}
	cw := csv.NewWriter(w)
	cw.Comma = ';'
	cw.UseCRLF = true
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("inventory: csv: %w", err)
	}
	for _, d := range devices {
		var others []string
		for _, m := range d.MACs {
			if m != d.MAC {
				others = append(others, m)
			}
		}
		by := ""
		if d.ClassSet {
			by = d.ClassBy
		}
		present := "non"
		if d.Present {
			present = "oui"
		}
		rec := []string{
			d.MAC, strings.Join(others, " "), d.IP, d.IPv6, d.Name, d.VendorLabel("fr"), d.Class.Label("fr"),
			strconv.Itoa(d.ClassConfidence), by, d.Model, d.OS, strings.Join(d.Services, " "),
			csvDate(d.FirstSeen), csvDate(d.LastSeen), present,
		}
		for i, f := range rec {
			rec[i] = defuseFormula(f)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("inventory: csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("inventory: csv: %w", err)
	}
	return nil
}

func csvDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format(csvTime)
}

func defuseFormula(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
