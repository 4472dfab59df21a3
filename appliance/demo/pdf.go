package demo

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/go-pdf/fpdf"
)

// fractionsPDF writes the worksheet "Fiche d'exercices : les fractions",
// two A4 pages (exercises, then answers).
func fractionsPDF() ([]byte, error) { return renderFractions(true) }

// renderFractions renders the worksheet; tests turn compression off to read
// the text.
func renderFractions(compress bool) ([]byte, error) {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCreationDate(packDate)
	pdf.SetModificationDate(packDate)
	pdf.SetCatalogSort(true)
	pdf.SetCompression(compress)
	pdf.SetLang("fr-FR")
	pdf.SetTitle("Fiche d'exercices : les fractions", true)
	pdf.SetAuthor(packPublisher, true)
	pdf.SetCreator(packPublisher, true)
	pdf.SetProducer(packPublisher, true)
	pdf.SetMargins(20, 20, 20)
	pdf.SetAutoPageBreak(true, 20)
	tr := pdf.UnicodeTranslatorFromDescriptor("") // cp1252: accents, « », œ
	pdf.SetFooterFunc(func() {
		pdf.SetY(-15)
		pdf.SetFont("Helvetica", "I", 9)
		pdf.SetTextColor(90, 90, 90)
		pdf.CellFormat(0, 8, tr("Projet Préau — licence CC BY 4.0 — page "+strconv.Itoa(pdf.PageNo())+" sur 2"), "", 0, "C", false, 0, "")
	})

	heading := func(s string) {
		pdf.Ln(4)
		pdf.SetFont("Helvetica", "B", 13)
		pdf.SetTextColor(20, 60, 120)
		pdf.CellFormat(0, 8, tr(s), "", 1, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 11)
		pdf.SetTextColor(0, 0, 0)
	}
	para := func(s string) {
		pdf.MultiCell(0, 6, tr(s), "", "L", false)
	}

	// Page 1: exercises.
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 18)
	pdf.CellFormat(0, 10, tr("Fiche d'exercices : les fractions"), "", 1, "C", false, 0, "")
	pdf.SetFont("Helvetica", "", 11)
	pdf.CellFormat(0, 8, tr("Cycle 3 — Prénom : ............................  Date : ..................."), "", 1, "C", false, 0, "")

	heading("1. Quelle fraction de chaque bande est coloriée ?")
	bands := [][2]int{{1, 4}, {3, 8}, {2, 3}}
	y := pdf.GetY() + 2
	for i, b := range bands {
		drawBand(pdf, 25, y+float64(i)*14, 120, 9, b[0], b[1])
		pdf.Text(155, y+float64(i)*14+7, tr("= ........"))
	}
	pdf.SetY(y + float64(len(bands))*14)

	heading("2. Complète avec <, > ou =")
	para("a) 3/8 ...... 5/8        b) 1/3 ...... 1/5        c) 1/2 ...... 4/8        d) 7/6 ...... 1")

	heading("3. Place les fractions sur la droite graduée")
	para("Place 1/4, 1/2, 3/4 et 5/4 sur la droite ci-dessous (l'unité est partagée en 4).")
	y = pdf.GetY() + 8
	drawNumberLine(pdf, tr, 25, y, 150)
	pdf.SetY(y + 12)

	heading("4. Problèmes")
	para("a) Une tarte est coupée en 8 parts égales. Léa en mange 2 et Tom en mange 3. Quelle fraction de la tarte reste-t-il ?")
	pdf.Ln(2)
	para("b) Le trajet de Chloé dure trois quarts d'heure. Combien de minutes cela fait-il ?")
	pdf.Ln(2)
	para("c) Un jeu coûte 40 euros. Pendant les soldes, son prix baisse d'un quart. Quel est son nouveau prix ?")
	pdf.Ln(2)
	para("d) Écris deux fractions égales à 1/2.")

	// Page 2: answers.
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 16)
	pdf.CellFormat(0, 10, tr("Corrigé"), "", 1, "C", false, 0, "")
	heading("1. Bandes")
	para("1/4 ; 3/8 ; 2/3.")
	heading("2. Comparaisons")
	para("a) 3/8 < 5/8 (même dénominateur, on compare les numérateurs).\nb) 1/3 > 1/5 (partagée en 3, chaque part est plus grande qu'en 5).\nc) 1/2 = 4/8.\nd) 7/6 > 1 (le numérateur est plus grand que le dénominateur).")
	heading("3. Droite graduée")
	para("1/4 est sur la 1re graduation, 1/2 sur la 2e, 3/4 sur la 3e, 1 sur la 4e et 5/4 juste après 1, sur la 5e graduation.")
	heading("4. Problèmes")
	para("a) 2/8 + 3/8 = 5/8 ont été mangés : il reste 3/8 de la tarte.\nb) Un quart d'heure dure 15 minutes, donc trois quarts d'heure font 45 minutes.\nc) Un quart de 40 euros, c'est 10 euros : le jeu coûte 30 euros.\nd) Par exemple 2/4, 3/6 ou 5/10 : il y en a une infinité !")

	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("render fractions worksheet: %w", err)
	}
	return buf.Bytes(), nil
}

// drawBand draws a strip cut into den equal parts, num of them shaded.
func drawBand(pdf *fpdf.Fpdf, x, y, w, h float64, num, den int) {
	pdf.SetDrawColor(0, 0, 0)
	pdf.SetFillColor(250, 180, 80)
	part := w / float64(den)
	for i := 0; i < den; i++ {
		style := "D"
		if i < num {
			style = "FD"
		}
		pdf.Rect(x+float64(i)*part, y, part, h, style)
	}
}

// drawNumberLine draws a line from 0 to 2 graduated in quarters.
func drawNumberLine(pdf *fpdf.Fpdf, tr func(string) string, x, y, w float64) {
	pdf.SetDrawColor(0, 0, 0)
	pdf.SetLineWidth(0.4)
	pdf.Line(x, y, x+w, y)
	step := w / 8
	for i := 0; i <= 8; i++ {
		tick := 2.0
		if i%4 == 0 {
			tick = 4
		}
		pdf.Line(x+float64(i)*step, y-tick, x+float64(i)*step, y+tick)
	}
	pdf.SetFont("Helvetica", "", 10)
	for i, label := range []string{"0", "1", "2"} {
		pdf.Text(x+float64(i)*4*step-1, y+9, tr(label))
	}
	pdf.SetFont("Helvetica", "", 11)
	pdf.SetLineWidth(0.2)
}
