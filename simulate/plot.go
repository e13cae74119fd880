package simulate

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Every figure is drawn once by gonum/plot and written in both formats: SVG
// for papers and browsers, PNG for places that cannot show SVG (chat,
// issue trackers, terminals with image support).
const (
	figWidth  = 8 * vg.Inch
	figHeight = 4.5 * vg.Inch
	// pngDPI is the resolution vgimg renders PNG at by default; the PNG is
	// figWidth×figHeight inches at this many dots per inch.
	pngDPI = 96
)

// PNGSize is the pixel size of every PNG plot.
func PNGSize() (width, height int) {
	return int(math.Round(float64(figWidth/vg.Inch) * pngDPI)), int(math.Round(float64(figHeight/vg.Inch) * pngDPI))
}

var palette = []color.Color{
	rgb(0x1f77b4), rgb(0xd62728), rgb(0x2ca02c), rgb(0xff7f0e),
	rgb(0x9467bd), rgb(0x8c564b), rgb(0xe377c2), rgb(0x17becf),
}

func rgb(c uint32) color.Color {
	return color.RGBA{R: uint8(c >> 16), G: uint8(c >> 8), B: uint8(c), A: 0xff}
}

var dashed = []vg.Length{vg.Points(6), vg.Points(4)}

func newFigure(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	// Top left: cumulative curves (bytes, ε) rise to the right, and
	// accuracies start low, so that corner is the emptiest.
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(8), -vg.Points(4)
	return p
}

// writeFigure writes NAME.svg and NAME.png into dir, the legend (if any)
// outside the data area, to the right.
func writeFigure(dir, name string, p *plot.Plot) error {
	for _, ext := range []string{"svg", "png"} {
		var c vg.CanvasWriterTo
		switch ext {
		case "svg":
			c = vgsvg.New(figWidth, figHeight)
		case "png":
			c = vgimg.PngCanvas{Canvas: vgimg.New(figWidth, figHeight)}
		}
		drawLegendOutside(p, draw.New(c))
		var b bytes.Buffer
		if _, err := c.WriteTo(&b); err != nil {
			return fmt.Errorf("plot %s.%s: %w", name, ext, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"."+ext), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// drawLegendOutside draws p on c with its legend in a column of its own on
// the right, so no entry covers a curve or a bar; a plot without legend
// entries takes the whole canvas.
func drawLegendOutside(p *plot.Plot, c draw.Canvas) {
	leg := p.Legend
	r := leg.Rectangle(c)
	width := r.Max.X - r.Min.X
	if width <= 0 {
		p.Draw(c)
		return
	}
	const gap = vg.Length(10)
	p.Legend = plot.NewLegend()
	defer func() { p.Legend = leg }()
	p.Draw(draw.Crop(c, 0, -(width + 2*gap), 0, 0))
	side := leg
	side.Top, side.Left = true, true
	side.XOffs, side.YOffs = 0, -vg.Points(24) // level with the top of the data area, below the title
	side.Draw(draw.Crop(c, c.Max.X-c.Min.X-width-gap, 0, 0, 0))
}

// figureMaker is one figure of a run folder: its file name without the
// extension and how to draw it.
type figureMaker struct {
	name string
	make func() (*plot.Plot, error)
}

func writeFigures(dir string, figs []figureMaker) error {
	for _, f := range figs {
		p, err := f.make()
		if err != nil {
			return fmt.Errorf("plot %s: %w", f.name, err)
		}
		if err := writeFigure(dir, f.name, p); err != nil {
			return err
		}
	}
	return nil
}

// addLine draws one series in the i-th palette colour; an empty label
// keeps it out of the legend (the dashed twin of a legend entry).
func addLine(p *plot.Plot, label string, i int, dash bool, xs, ys []float64) error {
	pts := make(plotter.XYs, len(xs))
	for j := range xs {
		pts[j] = plotter.XY{X: xs[j], Y: ys[j]}
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return fmt.Errorf("series %q: %w", label, err)
	}
	l.Color = palette[i%len(palette)]
	l.Width = vg.Points(2)
	if dash {
		l.Dashes = dashed
	}
	p.Add(l)
	if label != "" {
		p.Legend.Add(label, l)
	}
	return nil
}

// addMarkedLine draws a solid series like addLine and marks each point
// with a filled circle (a single point draws no line, so a one-round run
// would otherwise be invisible).
func addMarkedLine(p *plot.Plot, label string, i int, xs, ys []float64) error {
	if err := addLine(p, label, i, false, xs, ys); err != nil {
		return err
	}
	pts := make(plotter.XYs, len(xs))
	for j := range xs {
		pts[j] = plotter.XY{X: xs[j], Y: ys[j]}
	}
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	s.Color = palette[i%len(palette)]
	s.Shape = draw.CircleGlyph{}
	s.Radius = vg.Points(3)
	p.Add(s)
	return nil
}

// addVLine marks x with a grey dashed line from y0 to y1 and a label.
func addVLine(p *plot.Plot, x, y0, y1 float64, label string) error {
	l, err := plotter.NewLine(plotter.XYs{{X: x, Y: y0}, {X: x, Y: y1}})
	if err != nil {
		return err
	}
	l.Color = color.Gray{Y: 0x88}
	l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(l)
	if label != "" {
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: x, Y: y1}}, Labels: []string{" " + label}})
		if err != nil {
			return err
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i].YAlign = text.YTop // hang below the top of the line
			lb.TextStyle[i].Color = color.Gray{Y: 0x55}
		}
		p.Add(lb)
	}
	return nil
}

// addHLine draws a dotted grey horizontal line at y from x0 to x1, labelled
// at its left end (chance levels).
func addHLine(p *plot.Plot, y, x0, x1 float64, label string) error {
	l, err := plotter.NewLine(plotter.XYs{{X: x0, Y: y}, {X: x1, Y: y}})
	if err != nil {
		return err
	}
	l.Color = color.Gray{Y: 0x99}
	l.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
	p.Add(l)
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: x0, Y: y}}, Labels: []string{label}})
	if err != nil {
		return err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].YAlign = text.YBottom
		lb.TextStyle[i].Color = color.Gray{Y: 0x66}
	}
	p.Add(lb)
	return nil
}

// roundTicks labels whole rounds only: a fractional round means nothing.
func roundTicks(maxRound int) plot.Ticker {
	step := max(1, (maxRound+9)/10)
	var ticks plot.ConstantTicks
	for r := 1; r <= maxRound; r += step {
		ticks = append(ticks, plot.Tick{Value: float64(r), Label: strconv.Itoa(r)})
	}
	return ticks
}

// roundAxis sets the x axis to rounds 1..maxRound (at least two, so a
// one-round run still has a visible axis).
func roundAxis(p *plot.Plot, maxRound int) {
	maxRound = max(maxRound, 2)
	p.X.Min, p.X.Max = 0.8, float64(maxRound)+0.2
	p.X.Tick.Marker = roundTicks(maxRound)
}
