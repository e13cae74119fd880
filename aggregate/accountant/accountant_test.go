package accountant

import (
	"errors"
	"math"
	"testing"
)

func TestDefaultOrders(t *testing.T) {
	o := DefaultOrders()
	if len(o) != 72 || o[0] != 1.25 || o[9] != 4.5 || o[10] != 5 || o[68] != 63 || o[71] != 512 {
		t.Errorf("DefaultOrders = %v", o)
	}
	for i := 1; i < len(o); i++ {
		if !(o[i] > o[i-1]) {
			t.Errorf("DefaultOrders not increasing at %d: %v", i, o)
		}
	}
}

func mustAccountant(t *testing.T, s Sampling) *Accountant {
	t.Helper()
	a, err := NewAccountant(s, DefaultOrders())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tensorflow_privacy compute_dp_sgd_privacy_test.py, test_compute_dp_sgd_privacy:
// compute_dp_sgd_privacy(n, batch, noise, epochs, δ) runs dp_accounting's
// RdpAccountant over DEFAULT_RDP_ORDERS with q = batch/n, Poisson sampling,
// ceil(epochs·n/batch) steps. assertAlmostEqual (7 places) there; on the same
// orders we match to 1e-9 relative, and the same optimal order. Over all
// orders (Epsilon) ε is at most that, and no more than 1% below it where the
// grid's best order is interior (the third case's best order, 1.25, is the
// grid's first: below it ε drops by orders of magnitude).
func TestAccountantPublishedDPSGD(t *testing.T) {
	cases := []struct{ n, batch, z, epochs, delta, eps, order float64 }{
		{60000, 150, 1.3, 15, 1e-5, 0.7242234026109595, 19},
		{100000, 100, 1.0, 30, 1e-7, 1.4154988495444842, 13},
		{100000000, 1024, 0.1, 10, 1e-7, 5907982.3113978775, 1.25},
	}
	for _, c := range cases {
		a := mustAccountant(t, Poisson{})
		steps := int(math.Ceil(c.epochs * c.n / c.batch))
		if err := a.Compose(c.z, c.batch/c.n, steps); err != nil {
			t.Fatal(err)
		}
		eps, order, err := EpsilonFromRDP(a.Orders(), a.RDP(), c.delta)
		if err != nil {
			t.Fatal(err)
		}
		if relErr(eps, c.eps) > 1e-9 || order != c.order {
			t.Errorf("n=%v batch=%v z=%v: ε = %.16g at order %v, published %.16g at %v", c.n, c.batch, c.z, eps, order, c.eps, c.order)
		}
		best, bestOrder, err := a.Epsilon(c.delta)
		if err != nil {
			t.Fatal(err)
		}
		if best > c.eps || (c.order > 1.25 && best < 0.99*c.eps) {
			t.Errorf("n=%v batch=%v z=%v: ε over all orders %.16g (order %v), grid %.16g", c.n, c.batch, c.z, best, bestOrder, c.eps)
		}
	}
	// And the inverse: the noise for the first case's ε is at most its
	// z = 1.3 (the order search makes ε at z = 1.3 a little lower than the
	// grid's), and composing it reaches that ε.
	a := mustAccountant(t, Poisson{})
	z, err := a.NoiseForEpsilon(0.7242234026109595, 1e-5, 150.0/60000, 6000)
	if err != nil {
		t.Fatal(err)
	}
	a.Compose(z, 150.0/60000, 6000)
	if eps, _, _ := a.Epsilon(1e-5); z > 1.3 || z < 1.29 || eps > 0.7242234026109595 || relErr(eps, 0.7242234026109595) > 1e-5 {
		t.Errorf("NoiseForEpsilon = %.9f (ε %.9g), want just under 1.3", z, eps)
	}
}

func TestComposeAddsRDP(t *testing.T) {
	a := mustAccountant(t, Poisson{})
	if err := a.Compose(1.1, 0.01, 0); err != nil {
		t.Fatal(err)
	}
	for _, r := range a.RDP() {
		if r != 0 {
			t.Fatalf("zero steps spent RDP %v", r)
		}
	}
	if eps, _, _ := a.Epsilon(1e-5); eps != 0 {
		t.Errorf("fresh accountant ε = %v", eps)
	}
	if err := a.Compose(1.1, 0.01, 30); err != nil {
		t.Fatal(err)
	}
	if err := a.Compose(2, 0.05, 7); err != nil {
		t.Fatal(err)
	}
	if a.Steps() != 37 {
		t.Errorf("Steps = %d, want 37", a.Steps())
	}
	for i, o := range a.Orders() {
		r1, _ := PoissonRDP(0.01, 1.1, o)
		r2, _ := PoissonRDP(0.05, 2, o)
		if want := 30*r1 + 7*r2; relErr(a.RDP()[i], want) > 1e-14 {
			t.Errorf("order %v: RDP %v, want 30·%v + 7·%v", o, a.RDP()[i], r1, r2)
		}
	}
}

// Fixed-size sampling: z is noise std / C, and the replace-one sensitivity of
// the sum is 2C, so the accountant evaluates the bound at σ = z/2.
func TestWithoutReplacementAccountantHalvesZ(t *testing.T) {
	s := WithoutReplacement{Cohort: 50, Population: 2000}
	a := mustAccountant(t, s)
	if err := a.Compose(1.6, s.Rate(), 100); err != nil {
		t.Fatal(err)
	}
	for i, o := range a.Orders() {
		r, _ := WithoutReplacementRDP(0.025, 0.8, o)
		if relErr(a.RDP()[i], 100*r) > 1e-14 {
			t.Errorf("order %v: RDP %v, want 100·WithoutReplacementRDP(0.025, 0.8) = %v", o, a.RDP()[i], 100*r)
		}
	}
	if err := a.Compose(1.6, 0.03, 1); err == nil {
		t.Error("q = 0.03 accepted for a 50-of-2000 sampling")
	}
}

// ε decreases in z, increases in the number of steps, for both samplings.
func TestEpsilonMonotone(t *testing.T) {
	samplings := []Sampling{Poisson{}, WithoutReplacement{Cohort: 100, Population: 10000}}
	for _, s := range samplings {
		prev := math.Inf(1)
		for _, z := range []float64{0.5, 0.7, 1, 1.5, 2, 4, 8} {
			a := mustAccountant(t, s)
			if err := a.Compose(z, 0.01, 500); err != nil {
				t.Fatal(err)
			}
			eps, _, err := a.Epsilon(1e-6)
			if err != nil {
				t.Fatal(err)
			}
			if !(eps < prev) {
				t.Errorf("%v: ε(z=%v) = %v not below %v", s, z, eps, prev)
			}
			prev = eps
		}
		a := mustAccountant(t, s)
		prev = 0
		for round := 0; round < 20; round++ {
			if err := a.Compose(1, 0.01, 50); err != nil {
				t.Fatal(err)
			}
			eps, _, _ := a.Epsilon(1e-6)
			if !(eps > prev) {
				t.Errorf("%v: ε after %d steps = %v not above %v", s, a.Steps(), eps, prev)
			}
			prev = eps
		}
	}
}

// NoiseForEpsilon inverts Epsilon: the returned z meets the target and a z
// smaller by 2e-6 relative does not.
func TestNoiseForEpsilonInverts(t *testing.T) {
	samplings := []Sampling{Poisson{}, WithoutReplacement{Cohort: 100, Population: 10000}}
	for _, s := range samplings {
		for _, target := range []float64{0.3, 1, 3, 8} {
			for _, steps := range []int{10, 1000} {
				a := mustAccountant(t, s)
				z, err := a.NoiseForEpsilon(target, 1e-6, 0.01, steps)
				if err != nil {
					t.Fatalf("%v ε=%v T=%d: %v", s, target, steps, err)
				}
				epsAt := func(z float64) float64 {
					b := mustAccountant(t, s)
					if err := b.Compose(z, 0.01, steps); err != nil {
						t.Fatal(err)
					}
					e, _, _ := b.Epsilon(1e-6)
					return e
				}
				if e := epsAt(z); e > target {
					t.Errorf("%v ε=%v T=%d: z = %v gives ε = %v above target", s, target, steps, z, e)
				}
				if e := epsAt(z * (1 - 2e-6)); e <= target {
					t.Errorf("%v ε=%v T=%d: z = %v not minimal: z(1−2e-6) gives ε = %v", s, target, steps, z, e)
				}
			}
		}
	}
	// With something already spent, the calibration covers the remainder.
	a := mustAccountant(t, Poisson{})
	if err := a.Compose(1, 0.01, 1000); err != nil {
		t.Fatal(err)
	}
	spent, _, _ := a.Epsilon(1e-6)
	z, err := a.NoiseForEpsilon(spent+1, 1e-6, 0.01, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Compose(z, 0.01, 1000); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := a.Epsilon(1e-6); e > spent+1 || e < spent+1-1e-4 {
		t.Errorf("after calibrated remainder ε = %v, target %v", e, spent+1)
	}
}

func TestNoiseForEpsilonErrors(t *testing.T) {
	a := mustAccountant(t, Poisson{})
	bad := []struct {
		eps, delta, q float64
		steps         int
	}{
		{0, 1e-5, 0.01, 10}, {-1, 1e-5, 0.01, 10}, {math.NaN(), 1e-5, 0.01, 10}, {math.Inf(1), 1e-5, 0.01, 10},
		{1, 0, 0.01, 10}, {1, 1, 0.01, 10},
		{1, 1e-5, 0, 10}, {1, 1e-5, 1.5, 10}, {1, 1e-5, math.NaN(), 10},
		{1, 1e-5, 0.01, 0}, {1, 1e-5, 0.01, -3},
	}
	for _, b := range bad {
		if _, err := a.NoiseForEpsilon(b.eps, b.delta, b.q, b.steps); err == nil {
			t.Errorf("NoiseForEpsilon(%v, %v, %v, %d): no error", b.eps, b.delta, b.q, b.steps)
		}
	}
	if err := a.Compose(0.8, 0.1, 1000); err != nil {
		t.Fatal(err)
	}
	spent, _, _ := a.Epsilon(1e-5)
	if _, err := a.NoiseForEpsilon(spent*0.9, 1e-5, 0.01, 10); !errors.Is(err, ErrUnreachable) {
		t.Errorf("target below what is spent: %v, want ErrUnreachable", err)
	}
}

// A training loop that checks WouldExceed before each round stops with ε
// within budget, and one more round would have exceeded it.
func TestBudgetStopsBeforeExceeding(t *testing.T) {
	for _, c := range []struct {
		s Sampling
		z float64
	}{{Poisson{}, 1}, {WithoutReplacement{Cohort: 20, Population: 1000}, 3}} {
		s, z, q := c.s, c.z, 0.02
		b := Budget{Epsilon: 2, Delta: 1e-5}
		a := mustAccountant(t, s)
		for {
			exceed, err := b.WouldExceed(a, z, q)
			if err != nil {
				t.Fatal(err)
			}
			if exceed {
				break
			}
			if err := a.Compose(z, q, 1); err != nil {
				t.Fatal(err)
			}
			if a.Steps() > 1e6 {
				t.Fatal("budget never exhausted")
			}
		}
		eps, _, _ := a.Epsilon(b.Delta)
		if eps > b.Epsilon {
			t.Errorf("%v: stopped at ε = %v above budget %v", s, eps, b.Epsilon)
		}
		if err := a.Compose(z, q, 1); err != nil {
			t.Fatal(err)
		}
		if next, _, _ := a.Epsilon(b.Delta); next <= b.Epsilon {
			t.Errorf("%v: one more round gives ε = %v, within budget %v, yet WouldExceed said stop", s, next, b.Epsilon)
		}
		if a.Steps() < 10 {
			t.Errorf("%v: only %d rounds fit; the test wants a longer run", s, a.Steps()-1)
		}
		t.Logf("%v, z = %v: %d rounds within ε = %v", s, z, a.Steps()-1, b.Epsilon)
	}
	a := mustAccountant(t, Poisson{})
	for _, b := range []Budget{{-1, 1e-5}, {math.NaN(), 1e-5}, {1, 0}, {1, 1}} {
		if _, err := b.WouldExceed(a, 1, 0.01); err == nil {
			t.Errorf("budget %+v: no error", b)
		}
	}
	if _, err := (Budget{1, 1e-5}).WouldExceed(a, 0, 0.01); err == nil {
		t.Error("z = 0: no error")
	}
}

func TestAccountantErrors(t *testing.T) {
	if _, err := NewAccountant(Poisson{}, nil); err == nil {
		t.Error("no orders: no error")
	}
	if _, err := NewAccountant(Poisson{}, []float64{2, 1}); err == nil {
		t.Error("order 1: no error")
	}
	if _, err := NewAccountant(nil, DefaultOrders()); err == nil {
		t.Error("nil sampling: no error")
	}
	for _, w := range []WithoutReplacement{{Cohort: 5, Population: 0}, {Cohort: -1, Population: 10}, {Cohort: 11, Population: 10}} {
		if _, err := NewAccountant(w, DefaultOrders()); err == nil {
			t.Errorf("%+v: no error", w)
		}
	}
	a := mustAccountant(t, Poisson{})
	for _, c := range []struct {
		z, q  float64
		steps int
	}{
		{0, 0.1, 1}, {-1, 0.1, 1}, {math.NaN(), 0.1, 1}, {math.Inf(1), 0.1, 1},
		{1, -0.1, 1}, {1, 1.1, 1}, {1, math.NaN(), 1},
		{1, 0.1, -1},
	} {
		if err := a.Compose(c.z, c.q, c.steps); err == nil {
			t.Errorf("Compose(%v, %v, %d): no error", c.z, c.q, c.steps)
		}
	}
	if a.Steps() != 0 {
		t.Errorf("failed Compose calls recorded %d steps", a.Steps())
	}
	if _, _, err := a.Epsilon(0); err == nil {
		t.Error("Epsilon(δ = 0): no error")
	}
	if _, _, err := a.Delta(-1); err == nil {
		t.Error("Delta(ε = −1): no error")
	}
}

// Extreme parameters give finite or +Inf RDP, never NaN, negative or a panic,
// and RDP stays non-increasing in σ.
func TestExtremeParameters(t *testing.T) {
	orders := DefaultOrders()
	for _, q := range []float64{1e-12, 1e-6, 0.5, 1 - 1e-9} {
		for _, fn := range []func(q, sigma, alpha float64) (float64, error){PoissonRDP, WithoutReplacementRDP} {
			prev := make([]float64, len(orders))
			for i := range prev {
				prev[i] = math.Inf(1)
			}
			for _, sigma := range []float64{1e-3, 0.1, 1, 1e3, 1e6} {
				for i, a := range orders {
					r, err := fn(q, sigma, a)
					if err != nil || math.IsNaN(r) || r < 0 {
						t.Fatalf("q=%v σ=%v α=%v: %v, %v", q, sigma, a, r, err)
					}
					if r > prev[i]*(1+1e-9) {
						t.Errorf("q=%v σ=%v α=%v: RDP %v above %v at smaller σ", q, sigma, a, r, prev[i])
					}
					prev[i] = r
				}
			}
		}
	}
	for _, s := range []Sampling{Poisson{}, WithoutReplacement{Cohort: 1, Population: 1000}} {
		for _, target := range []float64{0.01, 50} {
			a := mustAccountant(t, s)
			z, err := a.NoiseForEpsilon(target, 1e-8, 0.001, 100)
			if err != nil || !(z > 0) {
				t.Errorf("%v ε=%v: z = %v, %v", s, target, z, err)
			}
		}
	}
}
