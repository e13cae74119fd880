package simulate

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// WriteResults writes the run folder's result files: rounds.jsonl (one
// record per published round), summary.csv, table.md and the plots
// accuracy, forgetting and bytes (and epsilon with DP on), each as .svg and
// .png. It returns the Markdown table.
func WriteResults(dir string, outcomes []Outcome, records []RoundRecord) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	jl, err := jsonLines(records)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "rounds.jsonl"), []byte(jl), 0o644); err != nil {
		return "", err
	}
	var cs strings.Builder
	w := csv.NewWriter(&cs)
	w.Write([]string{"adapter", "mitigation", "seed", "lr", "trainable_params", "pair", "task_a", "task_b", "acc_a_after_a", "acc_b_after_a",
		"acc_a_after_b", "acc_b_after_b", "forgetting", "uploaded_bytes", "raw_bytes", "epsilon", "seconds", "not_run"})
	f4 := func(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }
	for _, o := range outcomes {
		aa, ba, ab, bb, fg := f4(o.AccAAfterA), f4(o.AccBAfterA), f4(o.AccAAfterB), f4(o.AccBAfterB), f4(o.Forgetting)
		if o.NotRun != "" { // empty cells, never zeros that read as results
			ab, bb, fg = "", "", ""
			if o.NotRun != "B" {
				aa, ba = "", ""
			}
		}
		w.Write([]string{o.Adapter, o.Mitigation, strconv.FormatUint(o.Seed, 10), strconv.FormatFloat(o.LR, 'g', -1, 64), strconv.Itoa(o.TrainableParams), o.Pair, o.TaskA, o.TaskB, aa, ba, ab, bb, fg,
			strconv.FormatUint(o.UploadedBytes, 10), strconv.FormatUint(o.RawBytes, 10), f4(o.Epsilon),
			strconv.FormatFloat(o.Seconds, 'f', 1, 64), o.NotRun})
	}
	w.Flush()
	if err := os.WriteFile(filepath.Join(dir, "summary.csv"), []byte(cs.String()), 0o644); err != nil {
		return "", err
	}
	table := MarkdownTable(outcomes)
	if err := os.WriteFile(filepath.Join(dir, "table.md"), []byte(table), 0o644); err != nil {
		return "", err
	}
	plots := resultFigures(outcomes, records)
	if err := writeFigures(dir, plots); err != nil {
		return "", err
	}
	return table, nil
}

// resultFigures are a forgetting run's plots: accuracy per round (one
// figure per pair when there are several, so runs do not pile up),
// forgetting bars (per pair by mitigation when mitigations ran, with the
// A-kept vs B-learned figure), bytes, and ε with DP on.
func resultFigures(outcomes []Outcome, records []RoundRecord) []figureMaker {
	mean := meanOverSeeds(records)
	pairs := pairsOf(outcomes)
	var plots []figureMaker
	if len(pairs) > 1 {
		for _, pair := range pairs {
			plots = append(plots, figureMaker{"accuracy-" + fileSafe(pair), func() (*plot.Plot, error) { return accuracyPlot(mean, pair) }})
		}
	} else {
		plots = append(plots, figureMaker{"accuracy", func() (*plot.Plot, error) { return accuracyPlot(mean, "") }})
	}
	if hasMitigation(outcomes) {
		for _, pair := range pairs {
			plots = append(plots,
				figureMaker{"forgetting-" + fileSafe(pair), func() (*plot.Plot, error) { return forgettingPlot(outcomes, pair) }},
				figureMaker{"mitigation-" + fileSafe(pair), func() (*plot.Plot, error) { return mitigationPlot(outcomes, pair) }})
		}
	} else {
		plots = append(plots, figureMaker{"forgetting", func() (*plot.Plot, error) { return forgettingPlot(outcomes, "") }})
	}
	plots = append(plots, figureMaker{"bytes", func() (*plot.Plot, error) { return bytesPlot(mean) }})
	if hasEpsilon(records) {
		plots = append(plots, figureMaker{"epsilon", func() (*plot.Plot, error) { return epsilonPlot(mean) }})
	}
	return plots
}

// MarkdownTable is the forgetting table: one row per (adapter, pair), each
// accuracy the mean ± sample standard deviation over the seeds that ran.
func MarkdownTable(outcomes []Outcome) string {
	sums := Summarize(outcomes)
	dp, seeds, mitigated := false, 0, false
	for _, s := range sums {
		dp = dp || s.Epsilon > 0
		seeds = max(seeds, s.Seeds)
		mitigated = mitigated || (s.Mitigation != "" && s.Mitigation != "none")
	}
	var b strings.Builder
	cols := []string{"adapter", "params:", "lr:"}
	if mitigated {
		cols = append(cols, "mitigation")
	}
	cols = append(cols, "pair", "A after A:", "B after A:", "A after B:", "B after B:", "forgetting:", "uploaded:", "vs float32:")
	if dp {
		cols = append(cols, "ε ("+cmp.Or(sums[0].Accountant, "RDP")+"):")
	}
	writeHeader(&b, cols...)
	var stops []string
	for _, s := range sums {
		ratio := 0.0
		if s.UploadedBytes > 0 {
			ratio = float64(s.RawBytes) / float64(s.UploadedBytes)
		}
		for _, st := range s.Stops {
			stops = append(stops, fmt.Sprintf("%s %s %s", s.Adapter, s.Pair, st))
		}
		params, lr, up, vs, eps := strconv.Itoa(s.TrainableParams), strconv.FormatFloat(s.LR, 'g', 3, 64),
			humanBytes(s.UploadedBytes), fmt.Sprintf("%.1f× smaller", ratio), fmt.Sprintf("%.3g", s.Epsilon)
		if s.AccAAfterA.N == 0 { // nothing of this experiment ran
			params, lr, up, vs, eps = "–", "–", "–", "–", "–"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |", s.Adapter, params, lr)
		if mitigated {
			fmt.Fprintf(&b, " %s |", s.Mitigation)
		}
		fmt.Fprintf(&b, " %s (%s→%s) | %s | %s | %s | %s | %s | %s | %s |",
			s.Pair, s.TaskA, s.TaskB, s.AccAAfterA.Cell(false), s.AccBAfterA.Cell(false),
			s.AccAAfterB.Cell(false), s.AccBAfterB.Cell(false), s.Forgetting.Cell(true), up, vs)
		if dp {
			fmt.Fprintf(&b, " %s |", eps)
		}
		b.WriteString("\n")
	}
	if seeds > 1 {
		fmt.Fprintf(&b, "\nEach cell: mean ± sample standard deviation over %d seeds (adapter initialization, partition, cohorts, shuffling and dropout change with the seed; the tasks' splits do not). Uploaded: one seed's.\n", seeds)
	}
	if mitigated {
		b.WriteString("\nWith merge and ties, \"after B\" scores the merge of the two tasks' adapters; with reinit and ortho, task B's adapter on the base with task A's folded in; uploaded counts both phases.\n")
	}
	for _, s := range stops {
		b.WriteString("\n" + s + "\n")
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

// seriesKey names one run in legends: adapter and pair, or adapter and
// task for a single-task run (which has no pair).
func seriesKey(r RoundRecord) string {
	name := r.Adapter
	if r.Mitigation != "" && r.Mitigation != "none" {
		name += " " + r.Mitigation
	}
	if r.Pair == "" {
		return name + " " + r.TaskA
	}
	return name + " " + r.Pair
}

// series groups round records by run, in first-seen order.
func series(records []RoundRecord) (keys []string, by map[string][]RoundRecord) {
	by = map[string][]RoundRecord{}
	for _, r := range records {
		k := seriesKey(r)
		if _, ok := by[k]; !ok {
			keys = append(keys, k)
		}
		by[k] = append(by[k], r)
	}
	return keys, by
}

func hasEpsilon(records []RoundRecord) bool {
	for _, r := range records {
		if r.Epsilon > 0 {
			return true
		}
	}
	return false
}

// accuracyPlot: accuracy on task A (solid) and B (dashed) per round, per
// run of one pair (all runs with pair ""), with the phase boundary and the
// tasks' chance levels.
func accuracyPlot(all []RoundRecord, pair string) (*plot.Plot, error) {
	var records []RoundRecord
	for _, r := range all {
		if pair == "" || r.Pair == pair {
			records = append(records, r)
		}
	}
	keys, by := series(records)
	maxRound, boundary := 1, 0
	for _, r := range records {
		maxRound = max(maxRound, r.Round)
		if r.Phase == "A" {
			boundary = max(boundary, r.Round)
		}
	}
	title := "Accuracy per round (solid: task A, dashed: task B)"
	if pair != "" {
		title = "Accuracy per round, " + pair + " (solid: task A, dashed: task B)"
	}
	p := newFigure(title, "round", "test accuracy")
	roundAxis(p, maxRound)
	p.Y.Min, p.Y.Max = 0, 1
	if boundary > 0 {
		if err := addVLine(p, float64(boundary)+0.5, 0, 1, "A → B"); err != nil {
			return nil, err
		}
	}
	if len(records) > 0 { // chance levels: one line when both tasks share it
		r := records[0]
		lines := map[float64]string{r.ChanceA: "chance " + r.TaskA}
		if r.TaskB != "" {
			if r.ChanceB == r.ChanceA {
				lines[r.ChanceA] = "chance"
			} else {
				lines[r.ChanceB] = "chance " + r.TaskB
			}
		}
		for v, label := range lines {
			if v > 0 {
				if err := addHLine(p, v, 0.6, float64(maxRound)+0.4, label); err != nil {
					return nil, err
				}
			}
		}
	}
	for i, k := range keys {
		var xs, a, b []float64
		for _, r := range by[k] {
			xs = append(xs, float64(r.Round))
			a = append(a, r.AccA)
			b = append(b, r.AccB)
		}
		if err := addLine(p, k, i, false, xs, a); err != nil {
			return nil, err
		}
		if err := addLine(p, "", i, true, xs, b); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// forgettingPlot: forgetting bars grouped along x — by pair, or with pair
// set by that pair's mitigations — one bar per adapter in each group, in
// the adapter's colour (the same in every figure), the mean over seeds with
// a ±1 standard deviation error bar when several seeds ran. Groups whose
// phase B did not run are left out.
func forgettingPlot(outcomes []Outcome, pair string) (*plot.Plot, error) {
	var sums []Summary
	for _, s := range Summarize(outcomes) {
		if s.Forgetting.N > 0 && (pair == "" || s.Pair == pair) {
			sums = append(sums, s)
		}
	}
	title := "Forgetting: acc A after A − acc A after B"
	if pair != "" {
		title += ", " + pair + ", by mitigation"
	}
	p := newFigure(title, "", "forgetting")
	group := func(s Summary) string {
		if pair != "" {
			return cmp.Or(s.Mitigation, "none")
		}
		return s.Pair
	}
	var groups, adapters []string
	for _, s := range sums {
		if g := group(s); !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
		if !slices.Contains(adapters, s.Adapter) {
			adapters = append(adapters, s.Adapter)
		}
	}
	// Bars share each group's slot (the plot's width less its axes, about
	// an inch): at most 40 points, less with many.
	slot := float64(figWidth-vg.Inch) / float64(max(len(groups), 1))
	width := vg.Length(min(40, 0.8*slot/float64(max(len(adapters), 1))))
	lo, hi := 0.0, 0.05
	for j, a := range adapters {
		vals := make(plotter.Values, len(groups))
		var errs errorPoints
		// The adapter's place in each group, in data units (a group is one).
		offset := (float64(j) - float64(len(adapters)-1)/2) * 0.8 / float64(max(len(adapters), 1))
		for _, s := range sums {
			if s.Adapter != a {
				continue
			}
			g, f := slices.Index(groups, group(s)), s.Forgetting
			vals[g] = f.Mean
			if f.N > 1 {
				errs = append(errs, [3]float64{float64(g) + offset, f.Mean, f.SD})
			}
			lo, hi = min(lo, f.Mean-f.SD), max(hi, f.Mean+f.SD)
		}
		bar, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return nil, fmt.Errorf("forgetting bars %s: %w", a, err)
		}
		bar.Color = palette[j%len(palette)]
		bar.LineStyle.Width = 0
		bar.XMin = offset
		p.Add(bar)
		p.Legend.Add(a, bar)
		// The value on each bar, above its error bar (below, for a
		// negative one), clear of both.
		var at plotter.XYs
		var labels []string
		var neg []bool
		for g, v := range vals {
			for _, s := range sums {
				if s.Adapter == a && group(s) == groups[g] {
					y := v + s.Forgetting.SD
					if v < 0 {
						y = v - s.Forgetting.SD
					}
					at = append(at, plotter.XY{X: float64(g) + offset, Y: y})
					labels = append(labels, fmt.Sprintf("%+.2f", v))
					neg = append(neg, v < 0)
				}
			}
		}
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: at, Labels: labels})
		if err != nil {
			return nil, err
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i].XAlign = text.XCenter
			lb.TextStyle[i].YAlign = text.YBottom
			if neg[i] {
				lb.TextStyle[i].YAlign = text.YTop
			}
			lb.TextStyle[i].Font.Size = vg.Points(9)
			lb.TextStyle[i].Color = color.Gray{Y: 0x33}
		}
		lb.Offset = vg.Point{Y: vg.Points(3)} // clear of the error bar's cap
		p.Add(lb)
		if len(errs) > 0 {
			eb, err := plotter.NewYErrorBars(errs)
			if err != nil {
				return nil, err
			}
			p.Add(eb)
		}
	}
	if len(groups) > 0 {
		p.NominalX(groups...)
		p.X.Min, p.X.Max = -0.6, float64(len(groups))-0.4 // half a slot beside the outer groups
	}
	pad := 0.14 * (hi - lo) // headroom for the tallest bar's value label
	p.Y.Min, p.Y.Max = lo, hi+pad
	if lo < 0 {
		p.Y.Min = lo - pad
	}
	p.Legend.Top, p.Legend.Left = true, false
	return p, nil
}

func hasMitigation(outcomes []Outcome) bool {
	for _, o := range outcomes {
		if o.Mitigation != "" && o.Mitigation != "none" {
			return true
		}
	}
	return false
}

// mitigationPlot: for every (adapter, mitigation) of one pair, accuracy on
// task A after B (what forgetting leaves) against accuracy on task B after
// B (what was learned), means over seeds with ±1 standard deviation bars:
// up is remembering, right is learning, the top-right corner is both. The
// colour is the mitigation (the same in every pair's figure), the glyph the
// adapter.
func mitigationPlot(outcomes []Outcome, pair string) (*plot.Plot, error) {
	p := newFigure("Mitigations, "+pair+": task A kept vs task B learned", "accuracy on task B after B", "accuracy on task A after B")
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1.02, 0, 1.02
	glyphs := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{}, draw.CrossGlyph{}}
	var adapters []string
	legend := map[string]bool{}
	for _, s := range Summarize(outcomes) {
		if s.Pair != pair || s.AccAAfterB.N == 0 {
			continue
		}
		if !slices.Contains(adapters, s.Adapter) {
			adapters = append(adapters, s.Adapter)
		}
		mi := slices.Index(MitigationNames, strings.SplitN(cmp.Or(s.Mitigation, "none"), ":", 2)[0])
		col := palette[max(mi, 0)%len(palette)]
		x, y := s.AccBAfterB, s.AccAAfterB
		sc, err := plotter.NewScatter(plotter.XYs{{X: x.Mean, Y: y.Mean}})
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle.Color = col
		sc.GlyphStyle.Radius = vg.Points(4)
		sc.GlyphStyle.Shape = glyphs[slices.Index(adapters, s.Adapter)%len(glyphs)]
		p.Add(sc)
		if x.N > 1 {
			xe, err := plotter.NewXErrorBars(xErrorPoints{{x.Mean, y.Mean, x.SD}})
			if err != nil {
				return nil, err
			}
			ye, err := plotter.NewYErrorBars(errorPoints{{x.Mean, y.Mean, y.SD}})
			if err != nil {
				return nil, err
			}
			xe.LineStyle.Color, ye.LineStyle.Color = col, col
			p.Add(xe, ye)
		}
		if m := cmp.Or(s.Mitigation, "none"); !legend[m] {
			legend[m] = true
			swatch, _ := plotter.NewScatter(plotter.XYs{{}})
			swatch.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(4), Shape: draw.CircleGlyph{}}
			p.Legend.Add(m, swatch)
		}
	}
	for i, a := range adapters {
		swatch, _ := plotter.NewScatter(plotter.XYs{{}})
		swatch.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: vg.Points(4), Shape: glyphs[i%len(glyphs)]}
		p.Legend.Add(a, swatch)
	}
	p.Legend.Top, p.Legend.Left = false, true // bottom left: mitigated runs sit up and to the right
	p.Legend.YOffs = vg.Points(4)
	return p, nil
}

// pairsOf lists the outcomes' pairs in first-seen order.
func pairsOf(outcomes []Outcome) []string {
	var out []string
	for _, o := range outcomes {
		if !slices.Contains(out, o.Pair) {
			out = append(out, o.Pair)
		}
	}
	return out
}

// fileSafe makes a pair label a file-name part: letters, digits, '-' and
// '_' kept, everything else '_' ("a→b" → "a_b").
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

// xErrorPoints are (x, y, ±err) triples for plotter.NewXErrorBars.
type xErrorPoints [][3]float64

func (e xErrorPoints) Len() int                        { return len(e) }
func (e xErrorPoints) XY(i int) (float64, float64)     { return e[i][0], e[i][1] }
func (e xErrorPoints) XError(i int) (float64, float64) { return e[i][2], e[i][2] }

// errorPoints are (x, y, ±err) triples for plotter.NewYErrorBars.
type errorPoints [][3]float64

func (e errorPoints) Len() int                        { return len(e) }
func (e errorPoints) XY(i int) (float64, float64)     { return e[i][0], e[i][1] }
func (e errorPoints) YError(i int) (float64, float64) { return e[i][2], e[i][2] }

// bytesPlot: cumulative uploaded bytes per run.
func bytesPlot(records []RoundRecord) (*plot.Plot, error) {
	return roundSeriesPlot("Bytes uploaded (all clients, cumulative)", "MiB", records, func(run []RoundRecord) (xs, ys []float64) {
		sum := 0.0
		for _, r := range run {
			sum += float64(r.WireBytes)
			xs, ys = append(xs, float64(r.Round)), append(ys, sum/(1<<20))
		}
		return xs, ys
	})
}

// epsilonPlot: the privacy spent so far (ε at the run's δ) after each
// round, per run; only meaningful with DP on.
func epsilonPlot(records []RoundRecord) (*plot.Plot, error) {
	return roundSeriesPlot("Privacy spent: ε after each round (client-level DP)", "ε", records, func(run []RoundRecord) (xs, ys []float64) {
		for _, r := range run {
			if r.Epsilon > 0 {
				xs, ys = append(xs, float64(r.Round)), append(ys, r.Epsilon)
			}
		}
		return xs, ys
	})
}

// roundSeriesPlot draws, per run of records, a line with a marker at every
// point that points picks from the run's records; the y axis starts at 0.
func roundSeriesPlot(title, ylabel string, records []RoundRecord, points func(run []RoundRecord) (xs, ys []float64)) (*plot.Plot, error) {
	keys, by := series(records)
	maxRound := 1
	p := newFigure(title, "round", ylabel)
	p.Y.Min = 0
	for i, k := range keys {
		for _, r := range by[k] {
			maxRound = max(maxRound, r.Round)
		}
		xs, ys := points(by[k])
		if len(xs) == 0 {
			continue
		}
		if err := addMarkedLine(p, k, i, xs, ys); err != nil {
			return nil, err
		}
	}
	roundAxis(p, maxRound)
	return p, nil
}

// jsonLines encodes one JSON object a line: the .jsonl result files.
func jsonLines[T any](items []T) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// writeHeader writes a Markdown table's header and alignment rows; a column
// named with a trailing ":" holds numbers and is right-aligned.
func writeHeader(b *strings.Builder, cols ...string) {
	var align strings.Builder
	for _, c := range cols {
		name, numeric := strings.CutSuffix(c, ":")
		fmt.Fprintf(b, "| %s ", name)
		if numeric {
			align.WriteString("|---:")
		} else {
			align.WriteString("|---")
		}
	}
	b.WriteString("|\n")
	b.WriteString(align.String() + "|\n")
}

// epsilonColumn is the ε column's header, naming its accountant.
func epsilonColumn(records []RoundRecord) string {
	for _, r := range records {
		if r.Accountant != "" {
			return "ε (" + r.Accountant + "):"
		}
	}
	return "ε:"
}
