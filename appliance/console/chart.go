package console

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// The energy chart is drawn here as SVG, on the server: no chart library,
// no script, and a table on the page says the same in text.

// classColours are the bars' colours (the Okabe–Ito palette, told apart
// by people with colour-vision deficiencies); the last week's bar is an
// outline, told apart by its shape.
var classColours = map[string]string{
	ClassBox:                "#0072B2",
	ClassTablet:             "#E69F00",
	ClassLaptop:             "#56B4E9",
	ClassDesktop:            "#009E73",
	ClassPrinter:            "#F0E442",
	ClassInteractiveDisplay: "#D55E00",
	ClassAccessPoint:        "#CC79A7",
	ClassPhone:              "#8C564B",
	ClassUnknown:            "#999999",
}

const otherColour = "#5F5F5F"

func colourOf(class string) string {
	if c, ok := classColours[class]; ok {
		return c
	}
	return otherColour
}

// chartBar is one day of the chart: this week's kWh by class (in the
// order of classes) and the same weekday of the week before.
type chartBar struct {
	Label    string
	Segments []float64 // per class, aligned with the chart's classes
	Previous float64
	NoData   bool
	PrevNone bool
}

type barChart struct {
	Title, Desc string
	Classes     []string // class keys, bottom to top
	Bars        []chartBar
	Unit        string // "kWh"
	Lang        string
}

// niceStep returns a round step (1, 2 or 5 × 10^n) giving about n ticks
// up to max.
func niceStep(max float64, n int) float64 {
	if max <= 0 || math.IsNaN(max) || math.IsInf(max, 0) {
		return 1
	}
	raw := max / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

// svg draws the chart. Every text in it is escaped.
func (ch barChart) svg() template.HTML {
	const (
		w, h                     = 720.0, 320.0
		left, right, top, bottom = 64.0, 16.0, 16.0, 48.0
	)
	plotW, plotH := w-left-right, h-top-bottom
	max := 0.0
	for _, b := range ch.Bars {
		sum := 0.0
		for _, v := range b.Segments {
			sum += math.Max(v, 0)
		}
		max = math.Max(max, math.Max(sum, b.Previous))
	}
	step := niceStep(max, 4)
	top1 := step * math.Max(1, math.Ceil(max/step))
	y := func(v float64) float64 { return top + plotH - plotH*v/top1 }

	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">`, w, h)
	fmt.Fprintf(&b, `<title id="chart-title">%s</title><desc id="chart-desc">%s</desc>`, esc(ch.Title), esc(ch.Desc))
	// Grid and y labels.
	for v := 0.0; v <= top1+step/2; v += step {
		yy := y(v)
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#c4c9d0" stroke-width="1"/>`, left, yy, w-right, yy)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end" font-size="13" fill="#1b1b1b">%s</text>`, left-6, yy+4, esc(formatNumber(ch.Lang, v, decimalsFor(step))))
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="13" fill="#1b1b1b">%s</text>`, 4.0, top-4+8, esc(ch.Unit))
	n := len(ch.Bars)
	if n == 0 {
		b.WriteString(`</svg>`)
		return template.HTML(b.String())
	}
	slot := plotW / float64(n)
	barW := slot * 0.42
	prevW := slot * 0.22
	for i, bar := range ch.Bars {
		x0 := left + slot*float64(i) + slot*0.1
		if !bar.NoData {
			acc := 0.0
			for j, v := range bar.Segments {
				if v <= 0 {
					continue
				}
				y1, y2 := y(acc+v), y(acc)
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x0, y1, barW, math.Max(y2-y1, 0.5), colourOf(ch.Classes[j]))
				acc += v
			}
		} else {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="12" fill="#4a4a4a">%s</text>`, x0+barW/2, y(0)-6, esc(msg(ch.Lang, "energy.nodata.short")))
		}
		if !bar.PrevNone {
			px := x0 + barW + slot*0.06
			py := y(bar.Previous)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#ffffff" stroke="#1b1b1b" stroke-width="1.5" stroke-dasharray="4 2"/>`,
				px, py, prevW, math.Max(y(0)-py, 0.5))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle" font-size="13" fill="#1b1b1b">%s</text>`, left+slot*float64(i)+slot/2, h-bottom+20, esc(bar.Label))
	}
	fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#1b1b1b" stroke-width="1.5"/>`, left, y(0), w-right, y(0))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func decimalsFor(step float64) int {
	switch {
	case step >= 1:
		return 0
	case step >= 0.1:
		return 1
	case step >= 0.01:
		return 2
	}
	return 3
}

// swatch is a legend's colour sample, as SVG (the page's policy forbids
// inline styles).
func swatch(colour string, outline bool) template.HTML {
	if outline {
		return template.HTML(`<svg class="swatch" viewBox="0 0 16 16" aria-hidden="true" focusable="false"><rect x="1" y="1" width="14" height="14" fill="#ffffff" stroke="#1b1b1b" stroke-width="1.5" stroke-dasharray="4 2"/></svg>`)
	}
	return template.HTML(fmt.Sprintf(`<svg class="swatch" viewBox="0 0 16 16" aria-hidden="true" focusable="false"><rect width="16" height="16" fill="%s"/></svg>`, template.HTMLEscapeString(colour)))
}
