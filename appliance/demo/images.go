package demo

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
)

// The drawings use integer arithmetic only, so that the PNG bytes are the
// same on every architecture (floating-point contraction differs between
// amd64 and arm64).

// canvas is a small RGBA image with the few primitives the demo drawings need.
type canvas struct{ img *image.RGBA }

func newCanvas(w, h int, bg color.RGBA) canvas {
	c := canvas{img: image.NewRGBA(image.Rect(0, 0, w, h))}
	c.rect(0, 0, w, h, bg)
	return c
}

func (c canvas) rect(x0, y0, x1, y1 int, col color.RGBA) {
	r := image.Rect(x0, y0, x1, y1).Intersect(c.img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c.img.SetRGBA(x, y, col)
		}
	}
}

// disc fills the circle of centre (cx, cy) and radius r.
func (c canvas) disc(cx, cy, r int, col color.RGBA) {
	c.ellipse(cx, cy, r, r, col, 0, 0)
}

// ellipse fills the ellipse of radii (rx, ry) minus, when inner radii are
// given, the ellipse of radii (ix, iy): a ring.
func (c canvas) ellipse(cx, cy, rx, ry int, col color.RGBA, ix, iy int) {
	for y := cy - ry; y <= cy+ry; y++ {
		for x := cx - rx; x <= cx+rx; x++ {
			dx, dy := int64(x-cx), int64(y-cy)
			if dx*dx*int64(ry*ry)+dy*dy*int64(rx*rx) > int64(rx*rx)*int64(ry*ry) {
				continue
			}
			if ix > 0 && iy > 0 && dx*dx*int64(iy*iy)+dy*dy*int64(ix*ix) <= int64(ix*ix)*int64(iy*iy) {
				continue
			}
			if image.Pt(x, y).In(c.img.Rect) {
				c.img.SetRGBA(x, y, col)
			}
		}
	}
}

// triangle fills the triangle with a horizontal base from (x0, base) to
// (x1, base) and its apex at (ax, ay), with ay < base.
func (c canvas) triangle(x0, x1, base, ax, ay int, col color.RGBA) {
	for y := ay; y <= base; y++ {
		// Linear interpolation of both sides at height y, in integers.
		left := ax + (x0-ax)*(y-ay)/(base-ay)
		right := ax + (x1-ax)*(y-ay)/(base-ay)
		c.rect(left, y, right+1, y+1, col)
	}
}

// quarterDisc fills the quarter of the disc above and right of the centre.
func (c canvas) quarterDisc(cx, cy, r int, col color.RGBA) {
	for y := cy - r; y <= cy; y++ {
		for x := cx; x <= cx+r; x++ {
			dx, dy := x-cx, y-cy
			if dx*dx+dy*dy <= r*r && image.Pt(x, y).In(c.img.Rect) {
				c.img.SetRGBA(x, y, col)
			}
		}
	}
}

func (c canvas) png() ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, c.img); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return buf.Bytes(), nil
}

func rgb(r, g, b uint8) color.RGBA { return color.RGBA{r, g, b, 255} }

var (
	// Colours are values, not state; they never change.
	colNight  = rgb(16, 24, 48)
	colSun    = rgb(250, 200, 40)
	colWhite  = rgb(255, 255, 255)
	colSky    = rgb(150, 200, 240)
	colSea    = rgb(30, 100, 170)
	colCloud  = rgb(235, 240, 245)
	colPaper  = rgb(250, 246, 235)
	colOrange = rgb(230, 120, 40)
	colGreen  = rgb(90, 150, 70)
	colBrown  = rgb(110, 75, 50)
	colGrey   = rgb(150, 150, 155)
	colRed    = rgb(206, 17, 38)
	colBlue   = rgb(0, 35, 149)
)

// planet is one planet of the solar-system drawing; radius is relative
// (Jupiter 62), not to scale, for readability.
type planet struct {
	radius int
	col    color.RGBA
	ring   bool
}

var planets = [8]planet{
	{14, rgb(170, 160, 150), false}, // Mercure
	{22, rgb(230, 200, 140), false}, // Vénus
	{24, rgb(60, 120, 210), false},  // Terre
	{18, rgb(200, 90, 50), false},   // Mars
	{62, rgb(210, 170, 130), false}, // Jupiter
	{52, rgb(225, 200, 140), true},  // Saturne
	{36, rgb(150, 215, 225), false}, // Uranus
	{35, rgb(70, 100, 220), false},  // Neptune
}

// solarSystem draws the Sun at the left edge and the eight planets in order.
func solarSystem(w, h int) canvas {
	c := newCanvas(w, h, colNight)
	// A few fixed stars.
	for i := 0; i < 60; i++ {
		x := (i*7919 + 13) % w
		y := (i*104729 + 7) % h
		c.rect(x, y, x+1+i%2, y+1+i%2, rgb(200, 200, 220))
	}
	cy := h / 2
	c.disc(-h*3/10, cy, h*6/10, colSun)
	x := h * 35 / 100
	step := (w - x) / 8
	for _, p := range planets {
		cx := x + step/2
		r := max(2, p.radius*step/140)
		if p.ring {
			c.ellipse(cx, cy, r*7/5, r/2, rgb(200, 180, 120), r*7/5-r/4, r/2-r/8)
		}
		c.disc(cx, cy, r, p.col)
		if p.ring { // the front half of the ring passes over the planet
			for yy := cy; yy <= cy+r/2; yy++ {
				for xx := cx - r*7/5; xx <= cx+r*7/5; xx++ {
					dx, dy := int64(xx-cx), int64(yy-cy)
					rx, ry := int64(r*7/5), int64(r/2)
					ix, iy := int64(r*7/5-r/4), int64(r/2-r/8)
					if dx*dx*ry*ry+dy*dy*rx*rx <= rx*rx*ry*ry && dx*dx*iy*iy+dy*dy*ix*ix > ix*ix*iy*iy {
						c.img.SetRGBA(xx, yy, rgb(200, 180, 120))
					}
				}
			}
		}
		x += step
	}
	return c
}

// thumbnail draws the 320×180 picture of one item, by theme.
func thumbnail(theme string) (canvas, error) {
	const w, h = 320, 180
	switch theme {
	case "eau":
		c := newCanvas(w, h, colSky)
		c.rect(0, 130, w, h, colSea)
		c.disc(270, 40, 24, colSun)
		for _, p := range [][3]int{{80, 50, 22}, {110, 40, 28}, {140, 52, 22}} {
			c.disc(p[0], p[1], p[2], colCloud)
		}
		for i := 0; i < 6; i++ {
			x := 80 + i*12
			c.rect(x, 80+i%2*8, x+2, 96+i%2*8, colSea)
		}
		return c, nil
	case "fractions":
		c := newCanvas(w, h, colPaper)
		c.disc(160, 90, 70, rgb(240, 190, 90))
		c.quarterDisc(160, 90, 70, colOrange)
		c.rect(88, 89, 232, 91, colBrown)
		c.rect(159, 18, 161, 162, colBrown)
		return c, nil
	case "jules-verne":
		c := newCanvas(w, h, colSky)
		c.rect(0, 140, w, h, colSea)
		c.disc(160, 60, 40, rgb(200, 60, 50))
		c.rect(150, 112, 170, 126, colBrown)
		c.rect(140, 95, 142, 114, colBrown)
		c.rect(178, 95, 180, 114, colBrown)
		return c, nil
	case "revolution":
		c := newCanvas(w, h, colWhite)
		c.rect(0, 0, w/3, h, colBlue)
		c.rect(w*2/3, 0, w, h, colRed)
		return c, nil
	case "volcans":
		c := newCanvas(w, h, colSky)
		c.rect(0, 140, w, h, colGreen)
		c.triangle(60, 260, 150, 160, 50, colBrown)
		c.triangle(148, 172, 62, 160, 50, colOrange)
		for _, p := range [][3]int{{150, 32, 12}, {168, 22, 14}, {186, 10, 12}} {
			c.disc(p[0], p[1], p[2], colGrey)
		}
		return c, nil
	case "systeme-solaire":
		return solarSystem(w, h), nil
	case "lune":
		c := newCanvas(w, h, colNight)
		c.disc(200, 80, 50, rgb(245, 240, 200))
		c.disc(222, 68, 46, colNight)
		for i := 0; i < 25; i++ {
			x, y := (i*7919+31)%w, (i*6151+17)%h
			c.rect(x, y, x+2, y+2, colWhite)
		}
		return c, nil
	}
	return canvas{}, fmt.Errorf("draw thumbnail: unknown theme %q", theme)
}
