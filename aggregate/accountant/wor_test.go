package accountant

import (
	"math"
	"math/big"
	"testing"
)

// tensorflow_privacy/privacy/analysis/rdp_accountant_test.py,
// test_compute_rdp_sequence_without_replacement:
// compute_rdp_sample_without_replacement(0.01, 2.5, 50, orders), absolute 1e-5.
// The same algorithm is dp_accounting's _compute_rdp_sample_wor_gaussian.
func TestWithoutReplacementPublished(t *testing.T) {
	const q, sigma, steps = 0.01, 2.5, 50
	cases := []struct{ alpha, want float64 }{
		{1.001, 0.003470},
		{1.5, 0.003470},
		{2.5, 0.004638},
		{5, 0.0087633},
		{50, 0.098474},
		{100, 167.766388},
		{512, 1817.35871},
		{1024, 3865.55029},
	}
	for _, c := range cases {
		r, err := WithoutReplacementRDP(q, sigma, c.alpha)
		if err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(steps*r - c.want); d > 1e-5 {
			t.Errorf("order %v: %.8f, published %v (abs err %.2g)", c.alpha, steps*r, c.want, d)
		}
	}
	// The same test publishes 792.838516 at order 256. Both dp_accounting's and
	// that file's code give log(2)·50/255 more: the published figure lacks the
	// factor 2 of the min{…, 2·e^{(j−1)ε(j)}} term (Theorem 9/27 of Wang, Balle,
	// Kasiviswanathan 2019 has it), which binds at the top terms of order 256.
	r, err := WithoutReplacementRDP(q, sigma, 256)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(steps*r - (792.838516 + steps*math.Log(2)/255)); d > 1e-5 {
		t.Errorf("order 256: %.8f, want published 792.838516 + 50·log(2)/255 (abs err %.2g)", steps*r, d)
	}
}

func TestWithoutReplacementSpecialCases(t *testing.T) {
	for _, a := range []float64{1.5, 2, 3.25, 32, 300} {
		r, err := WithoutReplacementRDP(1, 2, a)
		if err != nil || r != a/8 {
			t.Errorf("q=1 α=%v: %v, %v; want α/(2σ²) = %v", a, r, err, a/8)
		}
		if r, err := WithoutReplacementRDP(0, 0, a); err != nil || r != 0 {
			t.Errorf("q=0 α=%v: %v, %v; want 0", a, r, err)
		}
		if r, err := WithoutReplacementRDP(0.2, 0, a); err != nil || !math.IsInf(r, 1) {
			t.Errorf("σ=0 α=%v: %v, %v; want +Inf", a, r, err)
		}
	}
}

// The bound grows with q and α, shrinks with σ, and fractional orders lie on
// the chord of the cumulant between the neighbouring integers.
func TestWithoutReplacementShape(t *testing.T) {
	for _, sigma := range []float64{0.8, 1.5, 4} {
		prev := 0.0
		for _, a := range DefaultOrders() {
			r, _ := WithoutReplacementRDP(0.05, sigma, a)
			r2, _ := WithoutReplacementRDP(0.05, sigma*1.1, a)
			r3, _ := WithoutReplacementRDP(0.06, sigma, a)
			if !(r >= prev*(1-1e-12)) || !(r2 < r) || !(r3 > r) { // RDP(α) = RDP(2) on (1, 2]
				t.Errorf("σ=%v α=%v: RDP %v (previous order %v), at 1.1σ %v, at q=0.06 %v", sigma, a, r, prev, r2, r3)
			}
			prev = r
		}
		lo, _ := WithoutReplacementRDP(0.05, sigma, 3)
		hi, _ := WithoutReplacementRDP(0.05, sigma, 4)
		mid, _ := WithoutReplacementRDP(0.05, sigma, 3.25)
		want := (0.75*2*lo + 0.25*3*hi) / 2.25
		if relErr(mid, want) > 1e-14 {
			t.Errorf("σ=%v: RDP(3.25) = %v, interpolated cumulant gives %v", sigma, mid, want)
		}
	}
}

// exactForwardDiff returns log|Δ_k| of v_m = r^{m(m−1)} (r = e^{1/(2σ²)}
// rounded to float64, which changes σ by ~1e-16) summed exactly enough in
// big.Float: Δ_k = Σ_m (−1)^{k−m} C(k,m) v_m.
func exactForwardDiff(sigma float64, k int) float64 {
	const prec = 4096
	r := new(big.Float).SetPrec(prec).SetFloat64(math.Exp(1 / (2 * sigma * sigma)))
	r2 := new(big.Float).SetPrec(prec).Mul(r, r)
	v := new(big.Float).SetPrec(prec).SetInt64(1)    // v_0 = r^0
	step := new(big.Float).SetPrec(prec).SetInt64(1) // r^{2m}: v_{m+1} = v_m·r^{2m}
	sum := new(big.Float).SetPrec(prec)
	binom := big.NewInt(1)
	for m := 0; m <= k; m++ {
		term := new(big.Float).SetPrec(prec).SetInt(binom)
		term.Mul(term, v)
		if (k-m)%2 == 1 {
			term.Neg(term)
		}
		sum.Add(sum, term)
		v.Mul(v, step)
		step.Mul(step, r2)
		binom.Mul(binom, big.NewInt(int64(k-m)))
		binom.Quo(binom, big.NewInt(int64(m+1)))
	}
	mant := new(big.Float)
	e := sum.MantExp(mant)
	f, _ := mant.Float64()
	return math.Log(math.Abs(f)) + float64(e)*math.Ln2
}

// The log-space forward differences (dp_accounting's algorithm) agree with
// exact sums where the sequence is well conditioned (σ = 2.5, as in the
// published tests).
func TestForwardDiffsExact(t *testing.T) {
	const sigma = 2.5
	d := worForwardDiffs(sigma, 60)
	for k := 2; k <= 60; k += 2 {
		want := exactForwardDiff(sigma, k)
		if diff := math.Abs(d[k-1] - want); diff > 1e-10*math.Max(1, math.Abs(want)) {
			t.Errorf("σ=%v k=%d: log|Δ| = %.15g, exact %.15g", sigma, k, d[k-1], want)
		}
	}
}
