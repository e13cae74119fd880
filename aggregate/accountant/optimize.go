package accountant

import (
	"fmt"
	"math"
	"slices"
	"sync"
)

// The Rényi order at its best. An RDP accountant's ε is a minimum over
// orders α of a conversion of RDP(α); evaluating it on a fixed list leaves
// ε where the list happens to have points (dp_accounting's list and
// Opacus's differ, and each is looser than the other somewhere). Here the
// minimum is taken on a grid that contains both lists, then refined by a
// golden-section search between the best grid point's neighbours, where
// the conversion is evaluated at fractional orders directly from the
// composition (the per-step RDP at any α, not interpolated). The result is
// therefore never above either library's figure for the same bound.

// Composition is a run of identical rounds: Steps of them, each sampling
// at rate Q and adding Gaussian noise of multiplier Z (noise std / clipping
// norm). Under WithoutReplacement sampling Q is the run's Cohort/Population.
type Composition struct {
	Z     float64 `json:"z"`
	Q     float64 `json:"q"`
	Steps int     `json:"steps"`
}

// SearchOrders is the grid ε is minimized on before refinement: the union
// of dp_accounting's DEFAULT_RDP_ORDERS (DefaultOrders) and Opacus's
// DEFAULT_ALPHAS (1.1, 1.2, …, 10.9 and 12, …, 63), sorted.
func SearchOrders() []float64 { return slices.Clone(searchOrders()) }

var searchOrders = sync.OnceValue(func() []float64 {
	o := DefaultOrders()
	for x := 1; x < 100; x++ {
		o = append(o, 1+float64(x)/10)
	}
	for a := 12; a < 64; a++ {
		o = append(o, float64(a))
	}
	for i := range o { // 1 + x/10 is not exactly the decimal: round so duplicates meet
		o[i] = math.Round(o[i]*1e9) / 1e9
	}
	slices.Sort(o)
	return slices.Compact(o)
})

// mergeOrders is the sorted union of two order lists.
func mergeOrders(a, b []float64) []float64 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// curve is the RDP of a sequence of compositions as a function of the
// order, evaluated at any α in (1, MaxOrder].
type curve struct {
	s     Sampling
	comps []Composition
	diffs [][]float64 // without replacement: each composition's forward differences
}

func newCurve(s Sampling, comps []Composition) (*curve, error) {
	c := &curve{s: s, comps: comps}
	for _, m := range comps {
		if !(m.Z > 0) || math.IsInf(m.Z, 1) {
			return nil, fmt.Errorf("accountant: noise multiplier z = %v must be finite and > 0", m.Z)
		}
		if !(m.Q >= 0 && m.Q <= 1) {
			return nil, fmt.Errorf("accountant: sampling rate q = %v is outside [0, 1]", m.Q)
		}
		if m.Steps < 0 {
			return nil, fmt.Errorf("accountant: steps %d < 0", m.Steps)
		}
	}
	switch s.(type) {
	case Poisson:
	case WithoutReplacement:
		c.diffs = make([][]float64, len(comps))
		for i, m := range comps {
			if m.Q > 0 && m.Q < 1 {
				c.diffs[i] = cachedForwardDiffs(m.Z / 2)
			}
		}
	default:
		return nil, fmt.Errorf("accountant: unknown sampling %T", s)
	}
	return c, nil
}

// forwardDiffs caches worForwardDiffs(σ, worExactMaxOrder) by σ: a budget
// check every round, or a noise calibration's bisection, asks for the same σ
// again and again, and each costs O(256²) log-space operations.
var forwardDiffs struct {
	sync.Mutex
	bySigma map[float64][]float64
}

func cachedForwardDiffs(sigma float64) []float64 {
	forwardDiffs.Lock()
	defer forwardDiffs.Unlock()
	if d, ok := forwardDiffs.bySigma[sigma]; ok {
		return d
	}
	if len(forwardDiffs.bySigma) >= 256 || forwardDiffs.bySigma == nil {
		forwardDiffs.bySigma = map[float64][]float64{} // a bisection's worth; start over beyond
	}
	d := worForwardDiffs(sigma, worExactMaxOrder)
	forwardDiffs.bySigma[sigma] = d
	return d
}

// at is Σ steps·RDP_step(α) over the compositions.
func (c *curve) at(alpha float64) float64 {
	var total float64
	for i, m := range c.comps {
		if m.Steps == 0 {
			continue
		}
		var r float64
		if c.diffs == nil {
			r = poissonRDP(m.Q, m.Z, alpha)
		} else {
			r = worRDP(m.Q, m.Z/2, alpha, c.diffs[i])
		}
		total += float64(m.Steps) * r
	}
	return total
}

// OptimalEpsilon returns the smallest ε such that the compositions under
// sampling s are (ε, delta)-DP by the RDP bound, minimized over the order
// (see the file comment), and the order attaining it.
func OptimalEpsilon(s Sampling, comps []Composition, delta float64) (eps, order float64, err error) {
	if err := checkDelta(delta); err != nil {
		return 0, 0, err
	}
	c, err := newCurve(s, comps)
	if err != nil {
		return 0, 0, err
	}
	eps, order = minimizeOverOrders(func(a float64) float64 { return epsilonAtOrder(c.at(a), a, delta) }, searchOrders())
	return math.Max(0, eps), order, nil
}

// OptimalDelta returns the smallest δ such that the compositions are
// (eps, δ)-DP by the RDP bound, minimized over the order likewise.
func OptimalDelta(s Sampling, comps []Composition, eps float64) (delta, order float64, err error) {
	if !(eps >= 0) {
		return 0, 0, fmt.Errorf("accountant: epsilon %v must be ≥ 0", eps)
	}
	c, err := newCurve(s, comps)
	if err != nil {
		return 0, 0, err
	}
	ld, order := minimizeOverOrders(func(a float64) float64 { return logDeltaAtOrder(c.at(a), a, eps) }, searchOrders())
	return math.Min(math.Exp(ld), 1), order, nil
}

// minimizeOverOrders minimizes f on grid (sorted, in (1, MaxOrder]), then
// by golden-section search between the best point's neighbours (from just
// above 1 below the first point; up to twice the last point, within
// MaxOrder, beyond it). f is a conversion of an RDP curve, unimodal around
// its minimum in practice; the grid minimum is kept should the search find
// nothing lower, so the result never exceeds it.
func minimizeOverOrders(f func(alpha float64) float64, grid []float64) (best, at float64) {
	best, at = math.Inf(1), grid[0]
	bi := 0
	for i, a := range grid {
		if v := f(a); v < best {
			best, at, bi = v, a, i
		}
	}
	if math.IsInf(best, 1) {
		return best, at
	}
	lo, hi := 1+1e-6, math.Min(2*grid[bi], MaxOrder)
	if bi > 0 {
		lo = grid[bi-1]
	}
	if bi+1 < len(grid) {
		hi = grid[bi+1]
	}
	const g = 0.6180339887498949 // (√5 − 1)/2
	x1, x2 := hi-g*(hi-lo), lo+g*(hi-lo)
	f1, f2 := f(x1), f(x2)
	for range 80 {
		if f1 < best {
			best, at = f1, x1
		}
		if f2 < best {
			best, at = f2, x2
		}
		if hi-lo <= 1e-10*hi {
			break
		}
		if f1 <= f2 {
			hi, x2, f2 = x2, x1, f1
			x1 = hi - g*(hi-lo)
			f1 = f(x1)
		} else {
			lo, x1, f1 = x1, x2, f2
			x2 = lo + g*(hi-lo)
			f2 = f(x2)
		}
	}
	return best, at
}
