package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Unbiasedness of stochastic rounding, tested sharply.
//
// For an element with step Δ and fractional grid position p = frac((x−z)/Δ),
// one unbiased stochastic reconstruction is x + Δ·(B − p), B ~ Bernoulli(p): mean
// x, variance Δ²·p(1−p). The mean of N independent reconstructions therefore has
// standard error σ = Δ·sqrt(p(1−p)/N). checkUnbiased requires
//
//   - every element within zMax·σ of x (elements with p = 0 must be exact), and
//   - the pooled statistic Σ((mean−x)/σ)², which is ≈ χ²(k) for k off-grid
//     elements, within k + zMax·sqrt(2k),
//
// so a per-element bias as small as a few σ, repeated across elements, fails.
// TestUnbiasedCheckIsSharp shows floor, round-to-nearest and a probability off
// by 0.01 all fail it.

const (
	sroTrials = 4000
	zMax      = 5.0
)

// sroCase is a fixed input whose grid is exact in float32: Δ and z are powers
// of two (or small multiples), every group contains both ends of its range,
// so the quantizer's Δ is known exactly and sums of reconstructions are exact
// in float64.
type sroCase struct {
	s          Scheme
	rows, cols int
	x          []float32
	step, zero float64 // the same for every group
}

func newSROCase(rng *rand.Rand, s Scheme) sroCase {
	const rows, cols = 4, 16
	lo, hi := s.codeRange()
	c := sroCase{s: s, rows: rows, cols: cols, step: 1.0 / 16}
	if !s.Symmetric {
		c.zero = -0.5
	}
	c.x = make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		row := c.x[r*cols : (r+1)*cols]
		row[0] = float32(c.zero + c.step*float64(lo))
		row[1] = float32(c.zero + c.step*float64(hi))
		row[2] = float32(c.zero + c.step*float64((lo+hi)/2)) // on the grid: p = 0
		for i := 3; i < cols; i++ {
			// Off-grid, with p spread over [0.05, 0.95] and the cell anywhere in range.
			q := lo + rng.IntN(hi-lo)
			p := 0.05 + 0.9*float64(i-3)/float64(cols-4)
			row[i] = float32(c.zero + c.step*(float64(q)+p))
		}
	}
	return c
}

// checkUnbiased draws trials reconstructions with sample and applies the test
// described above. It returns nil if the samples look unbiased.
func checkUnbiased(c sroCase, trials int, sample func() ([]float32, error)) error {
	n := len(c.x)
	sum := make([]float64, n)
	for t := 0; t < trials; t++ {
		xh, err := sample()
		if err != nil {
			return err
		}
		for i, v := range xh {
			sum[i] += float64(v)
		}
	}
	chi2, k := 0.0, 0
	var worst error
	worstZ := 0.0
	for i, xi := range c.x {
		x := float64(xi)
		mean := sum[i] / float64(trials)
		y := (x - c.zero) / c.step
		p := y - math.Floor(y)
		if p == 0 {
			if mean != x {
				return fmt.Errorf("elem %d: on-grid value %g has mean reconstruction %g", i, x, mean)
			}
			continue
		}
		sigma := c.step * math.Sqrt(p*(1-p)/float64(trials))
		z := (mean - x) / sigma
		chi2 += z * z
		k++
		if math.Abs(z) > zMax && math.Abs(z) > worstZ {
			worstZ = math.Abs(z)
			worst = fmt.Errorf("elem %d: x=%g p=%.3f mean=%g: bias %.3gΔ is %.1fσ (limit %gσ)", i, x, p, mean, (mean-x)/c.step, z, zMax)
		}
	}
	if worst != nil {
		return worst
	}
	if lim := float64(k) + zMax*math.Sqrt(2*float64(k)); chi2 > lim {
		return fmt.Errorf("pooled Σz² = %.1f over %d elements exceeds %.1f", chi2, k, lim)
	}
	return nil
}

func sroSchemes() []Scheme {
	var ss []Scheme
	for _, s := range allSchemes() {
		// Keep runtime small: every width, both symmetries, granularity alternating.
		if s.PerRow == (s.Bits%2 == 0) {
			s.Stochastic = true
			ss = append(ss, s)
		}
	}
	return ss
}

func TestStochasticUnbiased(t *testing.T) {
	for _, s := range sroSchemes() {
		c := newSROCase(rand.New(rand.NewPCG(21, uint64(s.Bits))), s)
		rng := rand.New(rand.NewPCG(22, 23))
		var m *Matrix
		sample := func() ([]float32, error) {
			var err error
			m, err = Quantize(c.x, c.rows, c.cols, s, rng)
			if err != nil {
				return nil, err
			}
			return m.Dequantize(), nil
		}
		if err := checkUnbiased(c, sroTrials, sample); err != nil {
			t.Errorf("%s: %v", s, err)
		}
		for g, sc := range m.Scales {
			if float64(sc) != c.step {
				t.Fatalf("%s: group %d step %g, the test assumes %g", s, g, sc, c.step)
			}
		}
	}
}

// TestUnbiasedCheckIsSharp: the same check, with the same number of trials,
// rejects biased roundings — so passing it above means something.
func TestUnbiasedCheckIsSharp(t *testing.T) {
	s := Scheme{Bits: 4, PerRow: true, Stochastic: true}
	c := newSROCase(rand.New(rand.NewPCG(21, 4)), s)
	lo, hi := s.codeRange()
	// A reconstruction using the exact grid and a rounding rule on (x−z)/Δ.
	with := func(round func(y float64) float64) func() ([]float32, error) {
		return func() ([]float32, error) {
			out := make([]float32, len(c.x))
			for i, v := range c.x {
				q := round((float64(v) - c.zero) / c.step)
				q = math.Max(float64(lo), math.Min(float64(hi), q))
				out[i] = float32(c.zero + c.step*q)
			}
			return out, nil
		}
	}
	rng := rand.New(rand.NewPCG(31, 32))
	biased := map[string]func(y float64) float64{
		"floor":   math.Floor,
		"nearest": math.Round,
		// Right on the grid, probability off by 0.01 elsewhere: a 0.01Δ bias is
		// under 5σ for every single element here, so only the pooled statistic
		// catches it (Σz² ≈ 220 against a limit of 103 with this seed).
		"p+0.01": func(y float64) float64 {
			f := math.Floor(y)
			if p := y - f; p > 0 && rng.Float64() < p+0.01 {
				f++
			}
			return f
		},
	}
	for name, r := range biased {
		err := checkUnbiased(c, sroTrials, with(r))
		if err == nil {
			t.Errorf("%s rounding passed the unbiasedness check", name)
		} else {
			t.Logf("%s rejected: %v", name, err)
		}
	}
	// And the correct rule, implemented the same way, passes.
	fair := func(y float64) float64 {
		f := math.Floor(y)
		if rng.Float64() < y-f {
			f++
		}
		return f
	}
	if err := checkUnbiased(c, sroTrials, with(fair)); err != nil {
		t.Errorf("reference stochastic rounding failed: %v", err)
	}
}

// TestStochasticReproducible: the same seed gives the same codes.
func TestStochasticReproducible(t *testing.T) {
	x := randMatrix(rand.New(rand.NewPCG(1, 1)), 9, 13)
	s := Scheme{Bits: 3, Stochastic: true, PerRow: true}
	a := mustQuantize(t, x, 9, 13, s, rand.New(rand.NewPCG(5, 5)))
	b := mustQuantize(t, x, 9, 13, s, rand.New(rand.NewPCG(5, 5)))
	d := mustQuantize(t, x, 9, 13, s, rand.New(rand.NewPCG(5, 6)))
	if string(a.Codes) != string(b.Codes) {
		t.Fatal("same seed, different codes")
	}
	if string(a.Codes) == string(d.Codes) {
		t.Fatal("different seeds, identical codes (rng ignored?)")
	}
	// Stochastic error is < Δ (one step), never more.
	xh := a.Dequantize()
	for i := range x {
		if e := math.Abs(float64(x[i] - xh[i])); e >= float64(a.Scales[i/13])*(1+1e-6) {
			t.Fatalf("elem %d: stochastic error %g ≥ Δ %g", i, e, a.Scales[i/13])
		}
	}
}
