package simulate

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
)

// SweepPoint is one run of a privacy sweep: one combination of adapter,
// noise multiplier, clipping norm and upload bits trained on the sweep's
// task, and what it reached.
type SweepPoint struct {
	// Name is the point's folder inside the sweep's run folder.
	Name    string `json:"name"`
	Adapter string `json:"adapter"` // the spec as given: kron:8, lora:8, kron:8:4
	// LR is the clients' local learning rate.
	LR float64 `json:"lr"`
	// Noise is the noise multiplier z (0: DP off, ε = ∞); Clip the
	// clipping norm C (0 with DP off, where it does nothing).
	Noise float64 `json:"noise"`
	Clip  float64 `json:"clip"`
	Bits  int     `json:"bits"`
	// Rounds is how many rounds were published (fewer than asked when the
	// privacy budget stopped the run).
	Rounds int `json:"rounds"`
	// FinalAcc is the test accuracy after the last round, BestAcc the best
	// after any round.
	FinalAcc float64 `json:"final_accuracy"`
	BestAcc  float64 `json:"best_accuracy"`
	// Epsilon is the privacy spent at Delta after the last round (0 with
	// DP off).
	Epsilon float64 `json:"epsilon,omitempty"`
	Delta   float64 `json:"delta,omitempty"`
	// Accountant names how Epsilon was computed ("RDP" or "PLD").
	Accountant string  `json:"accountant,omitempty"`
	WireBytes  uint64  `json:"wire_bytes"`
	Seconds    float64 `json:"seconds"`
	// Audit is the empirical ε̂ after the last round and its 95% interval
	// (with --audit; see RoundRecord).
	Audit     float64 `json:"audit_epsilon,omitempty"`
	AuditLow  float64 `json:"audit_low,omitempty"`
	AuditHigh float64 `json:"audit_high,omitempty"`
}

// sweepAccountant names the points' ε accountant ("RDP" when none ran
// with DP).
func sweepAccountant(points []SweepPoint) string {
	for _, p := range points {
		if p.Accountant != "" {
			return p.Accountant
		}
	}
	return "RDP"
}

// audited reports whether the point ran with the empirical audit.
func (p SweepPoint) audited() bool { return p.AuditHigh > 0 }

// DP reports whether the point ran with differential privacy.
func (p SweepPoint) DP() bool { return p.Noise > 0 }

// Summarize fills the point's results from its round records.
func (p *SweepPoint) Summarize(records []RoundRecord) {
	p.Rounds, p.FinalAcc, p.BestAcc, p.Epsilon, p.WireBytes = len(records), 0, 0, 0, 0
	for _, r := range records {
		p.FinalAcc = r.AccA
		p.BestAcc = max(p.BestAcc, r.AccA)
		p.Epsilon = r.Epsilon
		p.WireBytes += r.WireBytes
		p.Audit, p.AuditLow, p.AuditHigh = r.Audit, r.AuditLow, r.AuditHigh
		p.Accountant = r.Accountant
	}
}

// setting names the point's adapter, learning rate and bits: the axes a run
// without DP shares with its DP curves.
func (p SweepPoint) setting() string {
	if p.LR > 0 {
		return fmt.Sprintf("%s lr=%s %d-bit", p.Adapter, strconv.FormatFloat(p.LR, 'g', -1, 64), p.Bits)
	}
	return fmt.Sprintf("%s %d-bit", p.Adapter, p.Bits)
}

// series is the legend name of the point's curve: every sweep axis but
// the noise (the curve runs along it).
func (p SweepPoint) series() string {
	if p.DP() {
		return p.setting() + " C=" + strconv.FormatFloat(p.Clip, 'g', -1, 64)
	}
	return p.setting()
}

// epsilonText is ε for tables: "∞ (no DP)" without DP.
func (p SweepPoint) epsilonText() string {
	if !p.DP() {
		return "∞ (no DP)"
	}
	return strconv.FormatFloat(p.Epsilon, 'g', 4, 64)
}

// sortedSweep orders points for the table: by adapter, learning rate and
// bits, DP points by ε ascending (the most private first), then the no-DP
// baseline.
func sortedSweep(points []SweepPoint) []SweepPoint {
	out := slices.Clone(points)
	slices.SortStableFunc(out, func(a, b SweepPoint) int {
		if c := cmp.Or(strings.Compare(a.Adapter, b.Adapter), cmp.Compare(a.LR, b.LR), cmp.Compare(b.Bits, a.Bits)); c != 0 {
			return c
		}
		switch {
		case a.DP() != b.DP():
			if a.DP() {
				return -1
			}
			return 1
		case !a.DP():
			return 0
		}
		return cmp.Or(cmp.Compare(a.Epsilon, b.Epsilon), cmp.Compare(a.Clip, b.Clip))
	})
	return out
}

// WriteSweepResults writes a sweep's summary into dir: sweep.jsonl (one
// point a line), sweep.csv, table.md and the accuracy-vs-ε plot
// (accuracy_vs_epsilon.svg and .png). It returns the Markdown table.
func WriteSweepResults(dir string, points []SweepPoint) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	jl, err := jsonLines(points)
	if err != nil {
		return "", err
	}
	var cs strings.Builder
	w := csv.NewWriter(&cs)
	w.Write([]string{"name", "adapter", "lr", "noise", "clip", "bits", "rounds", "final_accuracy", "best_accuracy", "epsilon", "delta", "wire_bytes", "seconds",
		"audit_epsilon", "audit_low", "audit_high"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	sorted := sortedSweep(points)
	audited := slices.ContainsFunc(points, SweepPoint.audited)
	var md strings.Builder
	cols := []string{"adapter", "lr:", "bits:", "noise z:", "clip C:", "rounds:", "ε (" + sweepAccountant(points) + "):"}
	if audited {
		cols = append(cols, "audit ε̂ [95%]:")
	}
	writeHeader(&md, append(cols, "final test accuracy:", "best:", "uploaded:")...)
	for _, p := range sorted {
		eps := ""
		if p.DP() {
			eps = f(p.Epsilon)
		}
		w.Write([]string{p.Name, p.Adapter, f(p.LR), f(p.Noise), f(p.Clip), strconv.Itoa(p.Bits), strconv.Itoa(p.Rounds),
			f(p.FinalAcc), f(p.BestAcc), eps, f(p.Delta), strconv.FormatUint(p.WireBytes, 10), f(p.Seconds), f(p.Audit), f(p.AuditLow), f(p.AuditHigh)})
		clip := "–"
		if p.DP() {
			clip = f(p.Clip)
		}
		fmt.Fprintf(&md, "| %s | %s | %d | %s | %s | %d | %s |", p.Adapter, f(p.LR), p.Bits, f(p.Noise), clip, p.Rounds, p.epsilonText())
		if audited {
			fmt.Fprintf(&md, " %.3g [%.3g, %.3g] |", p.Audit, p.AuditLow, p.AuditHigh)
		}
		fmt.Fprintf(&md, " %.3f | %.3f | %s |\n", p.FinalAcc, p.BestAcc, humanBytes(p.WireBytes))
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return "", err
	}
	for name, data := range map[string]string{"sweep.jsonl": jl, "sweep.csv": cs.String(), "table.md": md.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return "", err
		}
	}
	err = writeFigures(dir, []figureMaker{{"accuracy_vs_epsilon", func() (*plot.Plot, error) { return accuracyVsEpsilonPlot(sorted) }}})
	return md.String(), err
}

// plottable: a positive, finite ε for the log axis.
func plottable(eps float64) bool { return eps > 0 && !math.IsInf(eps, 0) && !math.IsNaN(eps) }

// accuracyVsEpsilonPlot: final test accuracy against ε (log scale), one
// curve per adapter × bits × clip; a series' run without DP is its dashed
// horizontal line (ε = ∞).
func accuracyVsEpsilonPlot(points []SweepPoint) (*plot.Plot, error) {
	delta := 0.0
	for _, pt := range points {
		delta = max(delta, pt.Delta)
	}
	deltaText := "δ as in the table"
	if delta > 0 {
		deltaText = fmt.Sprintf("δ = %g", delta)
	}
	p := newFigure("Test accuracy vs privacy at "+deltaText+" (dashed: the same setting without DP)", "ε (log scale)", "final test accuracy")
	p.Y.Min, p.Y.Max = 0, 1
	var keys []string
	curves := map[string][]SweepPoint{}
	baselines := map[string]SweepPoint{} // the grid's one no-DP point per setting
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pt := range points {
		if !pt.DP() {
			baselines[pt.setting()] = pt
			continue
		}
		if pt.Epsilon <= 0 || math.IsInf(pt.Epsilon, 0) || math.IsNaN(pt.Epsilon) {
			continue // no round published: nothing to place on a log axis
		}
		k := pt.series()
		if _, ok := curves[k]; !ok {
			keys = append(keys, k)
		}
		curves[k] = append(curves[k], pt)
		lo, hi = min(lo, pt.Epsilon), max(hi, pt.Epsilon)
		if plottable(pt.Audit) {
			lo, hi = min(lo, pt.Audit), max(hi, pt.Audit)
		}
	}
	if len(keys) == 0 { // no DP point: a plain axis for the baselines alone
		lo, hi = 0.1, 10
	}
	// Half a decade either side, so end points and baselines show.
	lo, hi = lo/math.Sqrt(10), hi*math.Sqrt(10)
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.X.Min, p.X.Max = lo, hi
	colour, extra := 0, 0
	baseColour := map[string]int{}
	for _, k := range keys {
		var xs, ys []float64
		for _, pt := range curves[k] { // already sorted by ε
			xs = append(xs, pt.Epsilon)
			ys = append(ys, pt.FinalAcc)
		}
		if err := addMarkedLine(p, k, colour, xs, ys); err != nil {
			return nil, err
		}
		// The audit's ε̂ of the same runs, dashed in the same colour: how
		// much of the proven ε an attacker with the canaries could use.
		xs, ys = nil, nil
		for _, pt := range curves[k] {
			if plottable(pt.Audit) {
				xs = append(xs, pt.Audit)
				ys = append(ys, pt.FinalAcc)
			}
		}
		if len(xs) > 0 {
			if err := addLine(p, k+", audit ε̂", colour, true, xs, ys); err != nil {
				return nil, err
			}
			extra++
		}
		// The baseline of the same setting takes its first curve's colour.
		if _, ok := baseColour[curves[k][0].setting()]; !ok {
			baseColour[curves[k][0].setting()] = colour
		}
		colour++
	}
	baseKeys := slices.Sorted(maps.Keys(baselines))
	for _, k := range baseKeys {
		c, ok := baseColour[k]
		if !ok {
			c = colour
			colour++
		}
		acc := baselines[k].FinalAcc
		if err := addLine(p, k+", no DP", c, true, []float64{lo, hi}, []float64{acc, acc}); err != nil {
			return nil, err
		}
	}
	// The legend sits beside the data (drawLegendOutside): accuracy keeps
	// its [0, 1] axis.
	p.Y.Max = 1
	if extra > 0 {
		p.Title.Text = "Test accuracy vs privacy at " + deltaText + " (flat dashed: without DP; sloped dashed: the audit's ε̂)"
	}
	return p, nil
}
