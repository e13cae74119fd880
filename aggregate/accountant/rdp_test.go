package accountant

import (
	"math"
	"testing"
)

func relErr(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Abs(want)
}

// Google dp_accounting's test_compute_rdp_poisson_sampled_gaussian setting
// (python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant_test.py):
// σ = 2.5, q = 0.01, 50 steps.
var pubOrders = []float64{1.5, 2.5, 5, 50, 100}

func TestPoissonRDPPublished(t *testing.T) {
	const q, sigma, steps = 0.01, 2.5, 50
	got := make([]float64, len(pubOrders))
	for i, a := range pubOrders {
		r, err := PoissonRDP(q, sigma, a)
		if err != nil {
			t.Fatal(err)
		}
		got[i] = steps * r
	}
	// The values of the brief (those of tensorflow_privacy's
	// rdp_accountant_test.py test_compute_rdp_sequence and of dp_accounting
	// before it summed |binomial coefficients|), relative 1e-3.
	brief := []float64{6.5007e-04, 1.0854e-03, 2.1808e-03, 2.3846e-02, 1.6742e+02}
	for i := range brief {
		if e := relErr(got[i], brief[i]); e > 1e-3 {
			t.Errorf("order %v: RDP %.8g, published %.5g (rel err %.2g)", pubOrders[i], got[i], brief[i], e)
		}
	}
	// tensorflow_privacy/privacy/analysis/rdp_accountant_test.py,
	// test_compute_rdp_sequence: absolute 1e-5.
	tfp := []float64{0.00065, 0.001085, 0.00218075, 0.023846, 167.416307}
	for i := range tfp {
		if d := math.Abs(got[i] - tfp[i]); d > 1e-5 {
			t.Errorf("order %v: RDP %.10g, tensorflow_privacy %v (abs err %.2g)", pubOrders[i], got[i], tfp[i], d)
		}
	}
	// Current dp_accounting values (rtol 1e-4 there). At integer orders and at
	// 2.5 they agree with ours; at 1.5 dp_accounting now sums the series with
	// |C(α,i)| — an upper bound, 3% above the exact value (checked against
	// numerical integration in TestRDPBruteForceIntegration) — see below.
	dpa := []float64{6.70579741e-04, 1.08548710e-03, 2.18075656e-03, 2.38460375e-02, 1.67416308e02}
	for i := 1; i < len(dpa); i++ {
		if e := relErr(got[i], dpa[i]); e > 1e-4 {
			t.Errorf("order %v: RDP %.10g, dp_accounting %.9g (rel err %.2g)", pubOrders[i], got[i], dpa[i], e)
		}
	}
	abs := steps * logAFracSeries(q, sigma, 1.5, false) / 0.5
	if e := relErr(abs, dpa[0]); e > 1e-6 {
		t.Errorf("order 1.5 with |C(α,i)|: %.10g, dp_accounting %.9g (rel err %.2g)", abs, dpa[0], e)
	}
	if !(got[0] < abs) {
		t.Errorf("signed series %.10g not below the |C(α,i)| bound %.10g", got[0], abs)
	}
}

// tensorflow_privacy rdp_accountant_test.py, test_compute_rdp_scalar:
// compute_rdp(0.1, 2, 10, 5) = 0.07737 to 5 places.
func TestPoissonRDPScalarPublished(t *testing.T) {
	r, err := PoissonRDP(0.1, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(10*r - 0.07737); d > 5e-6 {
		t.Errorf("10·RDP(5) = %.8f, published 0.07737", 10*r)
	}
}

// log A_α against a multi-precision reference. The (q, σ, α) of the first ten
// come from dp_accounting's test_compute_log_a_equals_mp (which checks rtol
// 1e-4); the references were computed here with mpmath (60 digits) as
// log(quad(npdf(x, 0, σ)·((1−q) + q·exp((2x−1)/(2σ²)))^α, [−∞, …, ∞])), with
// breakpoints at 0 ± kσ and α ± kσ, k = −8 … 8 — the integral dp_accounting's
// _compute_a_mp evaluates.
func TestLogAMultiPrecision(t *testing.T) {
	cases := []struct{ q, sigma, alpha, want float64 }{
		{1e-7, .1, 1.01, 4.0034123225263986e-8},
		{1e-6, .1, 256, 3260463.2292971608},
		{1e-5, .1, 256.1, 3263607.0397884213},
		{1e-6, 1, 27, 8.7695113048484979e-10},
		{1e-4, 1, 1.5, 6.4426869538366497e-9},
		{1e-3, 1, 2, 1.7182803522145154e-6},
		{.01, 10, 20, 0.00019129699912842963},
		{.1, 100, 20.5, 0.00019991818458068296},
		{.99, .1, 256, 3263997.4271140211},
		{.999, 100, 256.1, 3.2601080379731127},
		{.01, 2.5, 1.5, 6.5007089718803974e-6},
		{.01, 2.5, 2.5, 3.2562541707543729e-5},
		{.01, 2.5, 5, 0.00017446052498463047},
		{.01, 2.5, 50, 0.023369116787932046},
		{.01, 2.5, 100, 331.48428894586815},
		{0.1, 2.0, 5, 0.030947873959183461},
	}
	for _, c := range cases {
		r, err := PoissonRDP(c.q, c.sigma, c.alpha)
		if err != nil {
			t.Fatal(err)
		}
		got := r * (c.alpha - 1)
		// Integer orders: the all-positive expansion of A−1 is accurate to
		// rounding. Fractional orders: A0 + A1 ≈ 1 loses ~1e-16 absolutely, so
		// a log A of 1e-9 keeps ~1e-7 relative.
		tol := 1e-7
		if c.alpha == math.Trunc(c.alpha) {
			tol = 1e-12
		}
		if e := relErr(got, c.want); e > tol {
			t.Errorf("q=%v σ=%v α=%v: log A = %.17g, mpmath %.17g (rel err %.2g > %.0g)", c.q, c.sigma, c.alpha, got, c.want, e, tol)
		}
	}
}

// The fractional-order formula evaluated at integer orders (where C(α,i) = 0
// for i > α) must agree with the binomial expansion: an independent check of
// both, since they share no code beyond logComb.
func TestIntegerOrdersMatchFractionalFormula(t *testing.T) {
	worst := 0.0
	for _, q := range []float64{0.01, 0.1, 0.5, 0.9} {
		for _, sigma := range []float64{0.5, 1, 2.5, 5} {
			for alpha := 2; alpha <= 64; alpha++ {
				a := logAInt(q, sigma, alpha)
				b := logAFrac(q, sigma, float64(alpha))
				e := relErr(b, a)
				worst = math.Max(worst, e)
				if e > 1e-9 {
					t.Errorf("q=%v σ=%v α=%d: binomial %.17g, fractional formula %.17g (rel err %.2g)", q, sigma, alpha, a, b, e)
				}
			}
		}
	}
	t.Logf("worst relative difference %.2g", worst)
}

// bruteRDP integrates the Rényi divergence of order α between the mixture
// (1−q)N(0,σ²) + qN(1,σ²) and N(0,σ²) with the trapezoid rule on
// [−40σ, 40σ] (step σ/200), in float64, as
// A_α − 1 = ∫ μ0(x) [(1 − q + q·e^{(2x−1)/(2σ²)})^α − 1] dx,  RDP = log(A_α)/(α−1).
func bruteRDP(q, sigma, alpha float64) float64 {
	const n = 16000
	lo, hi := -40*sigma, 40*sigma
	h := (hi - lo) / n
	norm := -math.Log(sigma * math.Sqrt(2*math.Pi))
	sum := 0.0
	for i := 0; i <= n; i++ {
		x := lo + float64(i)*h
		l := alpha * math.Log1p(q*math.Expm1((2*x-1)/(2*sigma*sigma)))
		var v float64
		switch {
		case l > 0:
			v = math.Exp(norm - x*x/(2*sigma*sigma) + logExpm1(l))
		case l < 0:
			v = -math.Exp(norm - x*x/(2*sigma*sigma) + math.Log(-math.Expm1(l)))
		}
		if i == 0 || i == n {
			v /= 2
		}
		sum += v
	}
	return math.Log1p(sum*h) / (alpha - 1)
}

func TestRDPBruteForceIntegration(t *testing.T) {
	cases := []struct {
		q, sigma float64
		orders   []float64
	}{
		{0.01, 2.5, []float64{1.5, 2, 2.5, 3, 3.7, 4, 5, 8}},
		{0.1, 1, []float64{1.25, 2, 2.75, 3, 4, 6}},
		{0.5, 2, []float64{1.75, 2, 3, 4.5}},
		{0.001, 1.5, []float64{1.5, 2, 7}},
	}
	for _, c := range cases {
		for _, a := range c.orders {
			got, err := PoissonRDP(c.q, c.sigma, a)
			if err != nil {
				t.Fatal(err)
			}
			want := bruteRDP(c.q, c.sigma, a)
			if e := relErr(got, want); e > 1e-6 {
				t.Errorf("q=%v σ=%v α=%v: closed form %.12g, integration %.12g (rel err %.2g)", c.q, c.sigma, a, got, want, e)
			}
		}
	}
}

func TestPoissonRDPSpecialCases(t *testing.T) {
	for _, a := range []float64{1.5, 2, 3.25, 32, 512} {
		for _, sigma := range []float64{0.3, 1, 2.5, 40} {
			r, err := PoissonRDP(1, sigma, a)
			if err != nil {
				t.Fatal(err)
			}
			if want := a / (2 * sigma * sigma); r != want {
				t.Errorf("q=1 σ=%v α=%v: %v, Gaussian α/(2σ²) = %v", sigma, a, r, want)
			}
		}
		for _, sigma := range []float64{0, 1} {
			if r, err := PoissonRDP(0, sigma, a); err != nil || r != 0 {
				t.Errorf("q=0 σ=%v α=%v: %v, %v; want 0", sigma, a, r, err)
			}
		}
		if r, err := PoissonRDP(0.1, 0, a); err != nil || !math.IsInf(r, 1) {
			t.Errorf("σ=0 α=%v: %v, %v; want +Inf", a, r, err)
		}
	}
	bad := []struct{ q, sigma, alpha float64 }{
		{-0.1, 1, 2}, {1.1, 1, 2}, {math.NaN(), 1, 2},
		{0.1, -1, 2}, {0.1, math.NaN(), 2}, {0.1, math.Inf(1), 2},
		{0.1, 1, 1}, {0.1, 1, 0.5}, {0.1, 1, math.NaN()}, {0.1, 1, math.Inf(1)}, {0.1, 1, MaxOrder + 1},
	}
	for _, b := range bad {
		if _, err := PoissonRDP(b.q, b.sigma, b.alpha); err == nil {
			t.Errorf("PoissonRDP(%v, %v, %v): no error", b.q, b.sigma, b.alpha)
		}
		if _, err := WithoutReplacementRDP(b.q, b.sigma, b.alpha); err == nil {
			t.Errorf("WithoutReplacementRDP(%v, %v, %v): no error", b.q, b.sigma, b.alpha)
		}
	}
}

// RDP grows with q and α and shrinks with σ.
func TestPoissonRDPMonotone(t *testing.T) {
	orders := DefaultOrders()
	for _, sigma := range []float64{0.7, 1, 2, 5} {
		prev := -1.0
		for _, a := range orders {
			r, _ := PoissonRDP(0.05, sigma, a)
			if !(r >= prev) {
				t.Errorf("σ=%v: RDP(%v) = %v below RDP at the previous order %v", sigma, a, r, prev)
			}
			prev = r
			r2, _ := PoissonRDP(0.05, sigma*1.1, a)
			r3, _ := PoissonRDP(0.06, sigma, a)
			if !(r2 < r) || !(r3 > r) {
				t.Errorf("σ=%v α=%v: RDP %v, at 1.1σ %v (want less), at larger q %v (want more)", sigma, a, r, r2, r3)
			}
		}
	}
}

func TestLogErfc(t *testing.T) {
	// Continuity across the switch to the asymptotic series, and a few values
	// of log(erfc(x)) (mpmath, 30 digits).
	for _, c := range []struct{ x, want float64 }{
		{-3, 0.693136135250447},
		{0, 0},
		{1, -1.84960550993325},
		{10, -102.879889024845},
		{25, -628.792039174072},
		{30, -903.974117110644},
		{100, -10005.1775851227},
	} {
		if d := math.Abs(logErfc(c.x) - c.want); d > 1e-10*math.Max(1, math.Abs(c.want)) {
			t.Errorf("logErfc(%v) = %.14g, want %.14g", c.x, logErfc(c.x), c.want)
		}
	}
	below, above := logErfc(math.Nextafter(25, 0)), logErfc(25)
	if math.Abs(below-above) > 1e-9 {
		t.Errorf("logErfc jumps at 25: %.15g vs %.15g", below, above)
	}
}
