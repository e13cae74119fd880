package accountant

import (
	"math"
	"testing"
)

// opacusOrders is Opacus's DEFAULT_ALPHAS (opacus/accountants/rdp.py):
// [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)).
func opacusOrders() []float64 {
	var o []float64
	for x := 1; x < 100; x++ {
		o = append(o, 1+float64(x)/10)
	}
	for a := 12; a < 64; a++ {
		o = append(o, float64(a))
	}
	return o
}

// gridEpsilon is the RDP bound's ε on a fixed grid, from PoissonRDP at each
// order: what Opacus or dp_accounting report for the same bound.
func gridEpsilon(t *testing.T, orders []float64, z, q float64, steps int, delta float64) float64 {
	t.Helper()
	rdp := make([]float64, len(orders))
	for i, a := range orders {
		r, err := PoissonRDP(q, z, a)
		if err != nil {
			t.Fatal(err)
		}
		rdp[i] = float64(steps) * r
	}
	eps, _, err := EpsilonFromRDP(orders, rdp, delta)
	if err != nil {
		t.Fatal(err)
	}
	return eps
}

// TestOptimalEpsilonNeverLooserThanGrids: over all orders, ε is at most the
// figure on Opacus's grid and on dp_accounting's, for the settings of the
// issue that asked for it (7.899 and 0.8033 on Opacus's grid) and Opacus's
// own test value, 7.32911 for z = 1.5, q = 0.04, 2250 steps, δ = 1e-5
// (opacus/tests/accountants_test.py, test_get_noise_multiplier's inverse).
func TestOptimalEpsilonNeverLooserThanGrids(t *testing.T) {
	for _, c := range []struct {
		z, q   float64
		steps  int
		delta  float64
		opacus float64 // published or quoted figure on Opacus's grid (0: none) ...
		digits float64 // ... to this precision
	}{
		{1.0, 0.1, 100, 1e-5, 7.899, 1e-3},
		{1.1, 0.01, 500, 1e-3, 0.8033, 1e-4},
		{1.5, 0.04, 2250, 1e-5, 7.32911, 1e-5},
		{0.8, 0.001, 10000, 1e-6, 0, 0},
		{4, 0.5, 50, 1e-5, 0, 0},
	} {
		eps, order, err := OptimalEpsilon(Poisson{}, []Composition{{Z: c.z, Q: c.q, Steps: c.steps}}, c.delta)
		if err != nil {
			t.Fatal(err)
		}
		op := gridEpsilon(t, opacusOrders(), c.z, c.q, c.steps, c.delta)
		dp := gridEpsilon(t, DefaultOrders(), c.z, c.q, c.steps, c.delta)
		if c.opacus > 0 && math.Abs(op-c.opacus) > c.digits/2 {
			t.Errorf("z=%v q=%v T=%d: Opacus's grid gives %.6g here, quoted %.6g", c.z, c.q, c.steps, op, c.opacus)
		}
		if eps > op*(1+1e-12) || eps > dp*(1+1e-12) {
			t.Errorf("z=%v q=%v T=%d: ε = %.6g at order %.4g, looser than Opacus's grid %.6g or dp_accounting's %.6g", c.z, c.q, c.steps, eps, order, op, dp)
		}
		t.Logf("z=%v q=%v T=%d δ=%g: ε = %.6f at order %.4f; Opacus grid %.6f, dp_accounting grid %.6f", c.z, c.q, c.steps, c.delta, eps, order, op, dp)
	}
}

// TestOptimalOrderIsTheMinimum: the search lands on the minimum of ε(α)
// that a brute-force scan of the order in steps of 0.002 (up to 64) finds,
// for both samplings: no higher than the scan (beyond rounding), and not
// lower than its step could explain; and OptimalDelta at that ε gives δ back.
func TestOptimalOrderIsTheMinimum(t *testing.T) {
	for _, c := range []struct {
		s     Sampling
		comps []Composition
		delta float64
	}{
		{Poisson{}, []Composition{{Z: 1.0, Q: 0.1, Steps: 100}}, 1e-5},
		{Poisson{}, []Composition{{Z: 1.1, Q: 0.01, Steps: 500}, {Z: 2, Q: 0.05, Steps: 30}}, 1e-3},
		{WithoutReplacement{Cohort: 20, Population: 1000}, []Composition{{Z: 1.5, Q: 0.02, Steps: 300}}, 1e-5},
		{WithoutReplacement{Cohort: 50, Population: 100}, []Composition{{Z: 3, Q: 0.5, Steps: 20}}, 1e-6},
	} {
		eps, order, err := OptimalEpsilon(c.s, c.comps, c.delta)
		if err != nil {
			t.Fatal(err)
		}
		brute, at := math.Inf(1), 0.0
		for a := 1.002; a <= 64; a += 0.002 {
			var r float64
			for _, m := range c.comps {
				var x float64
				if _, ok := c.s.(Poisson); ok {
					x, err = PoissonRDP(m.Q, m.Z, a)
				} else {
					x, err = WithoutReplacementRDP(m.Q, m.Z/2, a)
				}
				if err != nil {
					t.Fatal(err)
				}
				r += float64(m.Steps) * x
			}
			if e := epsilonAtOrder(r, a, c.delta); e < brute {
				brute, at = e, a
			}
		}
		if eps > brute*(1+1e-9) || eps < brute*(1-1e-4) {
			t.Errorf("%v %v: ε = %.9g at order %.6g; a scan finds %.9g at %.4g", c.s, c.comps, eps, order, brute, at)
		}
		d, _, err := OptimalDelta(c.s, c.comps, eps)
		if err != nil || relErr(d, c.delta) > 1e-3 {
			t.Errorf("%v %v: δ at ε = %.9g is %.6g (%v), want %g", c.s, c.comps, eps, d, err, c.delta)
		}
	}
	if _, _, err := OptimalEpsilon(Poisson{}, []Composition{{Z: 1, Q: 1.5, Steps: 1}}, 1e-5); err == nil {
		t.Error("q = 1.5 accepted")
	}
	if _, _, err := OptimalEpsilon(Poisson{}, []Composition{{Z: 1, Q: 0.1, Steps: 1}}, 1); err == nil {
		t.Error("δ = 1 accepted")
	}
}
