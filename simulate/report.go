package simulate

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
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
	w.Write([]string{"adapter", "seed", "lr", "trainable_params", "pair", "task_a", "task_b", "acc_a_after_a", "acc_b_after_a",
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
		w.Write([]string{o.Adapter, strconv.FormatUint(o.Seed, 10), strconv.FormatFloat(o.LR, 'g', -1, 64), strconv.Itoa(o.TrainableParams), o.Pair, o.TaskA, o.TaskB, aa, ba, ab, bb, fg,
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
	plots := []figureMaker{
		{"accuracy", func() (*plot.Plot, error) { return accuracyPlot(meanOverSeeds(records)) }},
		{"forgetting", func() (*plot.Plot, error) { return forgettingPlot(outcomes) }},
		{"bytes", func() (*plot.Plot, error) { return bytesPlot(meanOverSeeds(records)) }},
	}
	if hasEpsilon(records) {
		plots = append(plots, figureMaker{"epsilon", func() (*plot.Plot, error) { return epsilonPlot(meanOverSeeds(records)) }})
	}
	if hasMitigation(outcomes) {
		plots = append(plots, figureMaker{"mitigation", func() (*plot.Plot, error) { return mitigationPlot(outcomes) }})
	}
	if err := writeFigures(dir, plots); err != nil {
		return "", err
	}
	return table, nil
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
// run, with the phase boundary.
func accuracyPlot(records []RoundRecord) (*plot.Plot, error) {
	keys, by := series(records)
	maxRound, boundary := 1, 0
	for _, r := range records {
		maxRound = max(maxRound, r.Round)
		if r.Phase == "A" {
			boundary = max(boundary, r.Round)
		}
	}
	p := newFigure("Accuracy per round (solid: task A, dashed: task B)", "round", "test accuracy")
	roundAxis(p, maxRound)
	p.Y.Min, p.Y.Max = 0, 1
	if boundary > 0 {
		if err := addVLine(p, float64(boundary)+0.5, 0, 1, "A → B"); err != nil {
			return nil, err
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

// forgettingPlot: one forgetting bar per (adapter, pair) whose phase B ran:
// the mean over seeds, with a ±1 standard deviation error bar when several
// seeds ran.
func forgettingPlot(outcomes []Outcome) (*plot.Plot, error) {
	var sums []Summary
	for _, s := range Summarize(outcomes) {
		if s.Forgetting.N > 0 {
			sums = append(sums, s)
		}
	}
	p := newFigure("Forgetting: acc A after A − acc A after B", "", "forgetting")
	names := make([]string, len(sums))
	lo, hi := 0.0, 0.05
	for i, s := range sums {
		f := s.Forgetting
		bar, err := plotter.NewBarChart(plotter.Values{f.Mean}, vg.Points(40))
		if err != nil {
			return nil, fmt.Errorf("forgetting bar %s %s: %w", s.Adapter, s.Pair, err)
		}
		bar.XMin = float64(i)
		bar.Color = palette[i%len(palette)]
		bar.LineStyle.Width = 0
		p.Add(bar)
		if f.N > 1 {
			eb, err := plotter.NewYErrorBars(errorPoints{{float64(i), f.Mean, f.SD}})
			if err != nil {
				return nil, err
			}
			p.Add(eb)
		}
		names[i] = s.Adapter + " " + s.Pair
		if s.Mitigation != "" && s.Mitigation != "none" {
			names[i] = s.Adapter + " " + s.Mitigation + " " + s.Pair
		}
		lo, hi = min(lo, f.Mean-f.SD), max(hi, f.Mean+f.SD)
	}
	if len(names) > 0 {
		p.NominalX(names...)
		p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4 // half a slot beside the outer bars
	}
	pad := 0.08 * (hi - lo) // headroom so the tallest bar does not touch the frame
	p.Y.Min, p.Y.Max = lo, hi+pad
	if lo < 0 {
		p.Y.Min = lo - pad
	}
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

// mitigationPlot: for every (adapter, mitigation, pair), accuracy on task
// A after B (what forgetting leaves) against accuracy on task B after B
// (what was learned), means over seeds with ±1 standard deviation bars: up
// is remembering, right is learning, the top-right corner is both.
func mitigationPlot(outcomes []Outcome) (*plot.Plot, error) {
	p := newFigure("Forgetting mitigations: task A kept vs task B learned", "accuracy on task B after B", "accuracy on task A after B")
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	for i, s := range Summarize(outcomes) {
		if s.AccAAfterB.N == 0 {
			continue
		}
		x, y := s.AccBAfterB, s.AccAAfterB
		pts := plotter.XYs{{X: x.Mean, Y: y.Mean}}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle.Color = palette[i%len(palette)]
		sc.GlyphStyle.Radius = vg.Points(4)
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		p.Add(sc)
		p.Legend.Add(fmt.Sprintf("%s %s %s", s.Adapter, cmp.Or(s.Mitigation, "none"), s.Pair), sc)
		if x.N > 1 {
			xe, err := plotter.NewXErrorBars(xErrorPoints{{x.Mean, y.Mean, x.SD}})
			if err != nil {
				return nil, err
			}
			ye, err := plotter.NewYErrorBars(errorPoints{{x.Mean, y.Mean, y.SD}})
			if err != nil {
				return nil, err
			}
			xe.LineStyle.Color, ye.LineStyle.Color = palette[i%len(palette)], palette[i%len(palette)]
			p.Add(xe, ye)
		}
	}
	return p, nil
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
