package simulate

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WriteResults writes the run folder's result files: rounds.jsonl (one
// record per published round), summary.csv, table.md and the plots
// accuracy.svg, forgetting.svg and bytes.svg. It returns the Markdown
// table.
func WriteResults(dir string, outcomes []Outcome, records []RoundRecord) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var jl strings.Builder
	for _, r := range records {
		b, err := json.Marshal(r)
		if err != nil {
			return "", err
		}
		jl.Write(b)
		jl.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, "rounds.jsonl"), []byte(jl.String()), 0o644); err != nil {
		return "", err
	}
	var cs strings.Builder
	w := csv.NewWriter(&cs)
	w.Write([]string{"adapter", "trainable_params", "pair", "task_a", "task_b", "acc_a_after_a", "acc_b_after_a",
		"acc_a_after_b", "acc_b_after_b", "forgetting", "uploaded_bytes", "raw_bytes", "epsilon", "seconds"})
	f4 := func(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }
	for _, o := range outcomes {
		w.Write([]string{o.Adapter, strconv.Itoa(o.TrainableParams), o.Pair, o.TaskA, o.TaskB, f4(o.AccAAfterA), f4(o.AccBAfterA),
			f4(o.AccAAfterB), f4(o.AccBAfterB), f4(o.Forgetting), strconv.FormatUint(o.UploadedBytes, 10),
			strconv.FormatUint(o.RawBytes, 10), f4(o.Epsilon), strconv.FormatFloat(o.Seconds, 'f', 1, 64)})
	}
	w.Flush()
	if err := os.WriteFile(filepath.Join(dir, "summary.csv"), []byte(cs.String()), 0o644); err != nil {
		return "", err
	}
	table := MarkdownTable(outcomes)
	if err := os.WriteFile(filepath.Join(dir, "table.md"), []byte(table), 0o644); err != nil {
		return "", err
	}
	plots := map[string]func(io.Writer) error{
		"accuracy.svg":   func(w io.Writer) error { return accuracyPlot(w, records) },
		"forgetting.svg": func(w io.Writer) error { return forgettingPlot(w, outcomes) },
		"bytes.svg":      func(w io.Writer) error { return bytesPlot(w, records) },
	}
	for name, plot := range plots {
		var b strings.Builder
		if err := plot(&b); err != nil {
			return "", fmt.Errorf("plot %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			return "", err
		}
	}
	return table, nil
}

// MarkdownTable is the forgetting table: one row per (adapter, pair).
func MarkdownTable(outcomes []Outcome) string {
	dp := false
	for _, o := range outcomes {
		dp = dp || o.Epsilon > 0
	}
	var b strings.Builder
	b.WriteString("| adapter | params | pair | A after A | B after A | A after B | B after B | forgetting | uploaded | vs float32 |")
	if dp {
		b.WriteString(" ε |")
	}
	b.WriteString("\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	if dp {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, o := range outcomes {
		ratio := 0.0
		if o.UploadedBytes > 0 {
			ratio = float64(o.RawBytes) / float64(o.UploadedBytes)
		}
		fmt.Fprintf(&b, "| %s | %d | %s (%s→%s) | %.3f | %.3f | %.3f | %.3f | %+.3f | %s | %.1f× smaller |",
			o.Adapter, o.TrainableParams, o.Pair, o.TaskA, o.TaskB, o.AccAAfterA, o.AccBAfterA, o.AccAAfterB, o.AccBAfterB,
			o.Forgetting, humanBytes(o.UploadedBytes), ratio)
		if dp {
			fmt.Fprintf(&b, " %.3g |", o.Epsilon)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// svgPlot is a minimal line/bar chart writer: fixed frame, linear axes.
type svgPlot struct {
	w, h, left, right, top, bottom float64
	xmin, xmax, ymin, ymax         float64
	b                              strings.Builder
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

func newPlot(title, xlabel, ylabel string, xmin, xmax, ymin, ymax float64) *svgPlot {
	if xmax <= xmin {
		xmax = xmin + 1
	}
	if ymax <= ymin {
		ymax = ymin + 1
	}
	p := &svgPlot{w: 720, h: 420, left: 70, right: 190, top: 40, bottom: 50, xmin: xmin, xmax: xmax, ymin: ymin, ymax: ymax}
	fmt.Fprintf(&p.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" font-family="sans-serif" font-size="12">`+"\n", p.w, p.h)
	fmt.Fprintf(&p.b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&p.b, `<text x="%g" y="22" font-size="15">%s</text>`+"\n", p.left, esc(title))
	x0, y0, x1, y1 := p.left, p.h-p.bottom, p.w-p.right, p.top
	fmt.Fprintf(&p.b, `<path d="M%g %g H%g M%g %g V%g" stroke="black" fill="none"/>`+"\n", x0, y0, x1, x0, y0, y1)
	for i := 0; i <= 4; i++ {
		v := ymin + (ymax-ymin)*float64(i)/4
		y := p.y(v)
		fmt.Fprintf(&p.b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#ddd"/><text x="%g" y="%g" text-anchor="end">%s</text>`+"\n",
			x0, y, x1, y, x0-6, y+4, strconv.FormatFloat(v, 'g', 3, 64))
	}
	fmt.Fprintf(&p.b, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", (x0+x1)/2, p.h-12, esc(xlabel))
	fmt.Fprintf(&p.b, `<text x="16" y="%g" transform="rotate(-90 16 %g)" text-anchor="middle">%s</text>`+"\n", (y0+y1)/2, (y0+y1)/2, esc(ylabel))
	return p
}

func (p *svgPlot) x(v float64) float64 {
	return p.left + (v-p.xmin)/(p.xmax-p.xmin)*(p.w-p.left-p.right)
}
func (p *svgPlot) y(v float64) float64 {
	return p.h - p.bottom - (v-p.ymin)/(p.ymax-p.ymin)*(p.h-p.top-p.bottom)
}

func (p *svgPlot) line(xs, ys []float64, color, dash string) {
	var d strings.Builder
	for i := range xs {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, p.x(xs[i]), p.y(ys[i]))
	}
	fmt.Fprintf(&p.b, `<path d="%s" stroke="%s" stroke-width="2" fill="none" stroke-dasharray="%s"/>`+"\n", d.String(), color, dash)
}

func (p *svgPlot) legend(i int, label, color, dash string) {
	x, y := p.w-p.right+12, p.top+float64(i)*18
	fmt.Fprintf(&p.b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2" stroke-dasharray="%s"/><text x="%g" y="%g">%s</text>`+"\n",
		x, y, x+22, y, color, dash, x+28, y+4, esc(label))
}

func (p *svgPlot) vline(v float64, label string) {
	x := p.x(v)
	fmt.Fprintf(&p.b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#888" stroke-dasharray="4 3"/><text x="%g" y="%g" fill="#555">%s</text>`+"\n",
		x, p.top, x, p.h-p.bottom, x+4, p.top+12, esc(label))
}

func (p *svgPlot) finish(w io.Writer) error {
	p.b.WriteString("</svg>\n")
	_, err := io.WriteString(w, p.b.String())
	return err
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// series groups round records by (adapter, pair), in first-seen order.
func series(records []RoundRecord) (keys []string, by map[string][]RoundRecord) {
	by = map[string][]RoundRecord{}
	for _, r := range records {
		k := r.Adapter + " " + r.Pair
		if _, ok := by[k]; !ok {
			keys = append(keys, k)
		}
		by[k] = append(by[k], r)
	}
	return keys, by
}

// accuracyPlot: accuracy on task A (solid) and B (dashed) per round, per
// run, with the phase boundary.
func accuracyPlot(w io.Writer, records []RoundRecord) error {
	keys, by := series(records)
	maxRound, boundary := 1, 0
	for _, r := range records {
		maxRound = max(maxRound, r.Round)
		if r.Phase == "A" {
			boundary = max(boundary, r.Round)
		}
	}
	p := newPlot("Accuracy per round (solid: task A, dashed: task B)", "round", "test accuracy", 1, float64(maxRound), 0, 1)
	if boundary > 0 {
		p.vline(float64(boundary)+0.5, "A → B")
	}
	for i, k := range keys {
		rs := by[k]
		var xs, a, b []float64
		for _, r := range rs {
			xs = append(xs, float64(r.Round))
			a = append(a, r.AccA)
			b = append(b, r.AccB)
		}
		c := palette[i%len(palette)]
		p.line(xs, a, c, "")
		p.line(xs, b, c, "6 4")
		p.legend(i, k, c, "")
	}
	return p.finish(w)
}

// forgettingPlot: forgetting bars per (adapter, pair).
func forgettingPlot(w io.Writer, outcomes []Outcome) error {
	lo, hi := 0.0, 0.05
	for _, o := range outcomes {
		lo, hi = min(lo, o.Forgetting), max(hi, o.Forgetting)
	}
	p := newPlot("Forgetting: acc A after A − acc A after B", "run", "forgetting", 0, float64(max(len(outcomes), 1)), lo, hi)
	bw := (p.w - p.left - p.right) / float64(max(len(outcomes), 1)) * 0.6
	for i, o := range outcomes {
		x := p.x(float64(i)+0.5) - bw/2
		y0, y1 := p.y(0), p.y(o.Forgetting)
		c := palette[i%len(palette)]
		fmt.Fprintf(&p.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, min(y0, y1), bw, abs(y1-y0), c)
		p.legend(i, o.Adapter+" "+o.Pair, c, "")
	}
	return p.finish(w)
}

// bytesPlot: cumulative uploaded bytes per run.
func bytesPlot(w io.Writer, records []RoundRecord) error {
	keys, by := series(records)
	maxRound, total := 1, 1.0
	cum := map[string][]float64{}
	for _, k := range keys {
		s := 0.0
		for _, r := range by[k] {
			s += float64(r.WireBytes)
			cum[k] = append(cum[k], s)
			maxRound = max(maxRound, r.Round)
		}
		total = max(total, s)
	}
	p := newPlot("Bytes uploaded (all clients, cumulative)", "round", "MiB", 1, float64(maxRound), 0, total/(1<<20))
	for i, k := range keys {
		var xs, ys []float64
		for j, r := range by[k] {
			xs = append(xs, float64(r.Round))
			ys = append(ys, cum[k][j]/(1<<20))
		}
		c := palette[i%len(palette)]
		p.line(xs, ys, c, "")
		p.legend(i, k, c, "")
	}
	return p.finish(w)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
