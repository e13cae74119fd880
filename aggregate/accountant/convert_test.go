package accountant

import (
	"math"
	"testing"
)

// dp_accounting rdp_privacy_accountant_test.py, test_compute_epsilon_delta_pure_dp
// (also tensorflow_privacy rdp_accountant_test.py,
// test_get_privacy_spent_check_target_delta/eps): constant RDP 1.1 at orders
// 2 … 32, δ = 1e-5 → ε = 1.32783806176 at order 32, and back.
func TestConversionPureDPPublished(t *testing.T) {
	var orders, rdp []float64
	for a := 2; a <= 32; a++ {
		orders = append(orders, float64(a))
		rdp = append(rdp, 1.1)
	}
	eps, order, err := EpsilonFromRDP(orders, rdp, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(eps-1.32783806176) > 1e-9 || order != 32 {
		t.Errorf("ε = %.12f at order %v, published 1.32783806176 at 32", eps, order)
	}
	delta, order, err := DeltaFromRDP(orders, rdp, 1.32783806176)
	if err != nil {
		t.Fatal(err)
	}
	if relErr(delta, 1e-5) > 1e-8 || order != 32 {
		t.Errorf("δ = %.12g at order %v, published 1e-5 at 32", delta, order)
	}
}

// dp_accounting test_compute_epsilon_delta_gaussian: the Gaussian mechanism
// with σ = 4.530877117 is exactly (1, 1e-6)-DP (Balle & Wang 2018); RDP at
// orders 1.000, 1.001, … 99.999 converts to ε = 1 (7 places, as there) and
// δ(1) = 1e-6 (there 7 places, i.e. absolute 5e-8; here 1e-6 relative).
func TestConversionGaussianPublished(t *testing.T) {
	const sigma = 4.530877117
	var orders, rdp []float64
	for i := 1000; i < 100000; i++ {
		a := 0.001 * float64(i)
		orders = append(orders, a)
		rdp = append(rdp, a/(2*sigma*sigma))
	}
	eps, _, err := EpsilonFromRDP(orders, rdp, 1e-6)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(eps-1) > 5e-8 {
		t.Errorf("ε = %.12f, published 1 (7 places)", eps)
	}
	delta, _, err := DeltaFromRDP(orders, rdp, 1)
	if err != nil {
		t.Fatal(err)
	}
	if relErr(delta, 1e-6) > 1e-6 {
		t.Errorf("δ(1) = %.12g, published 1e-6", delta)
	}
}

// dp_accounting test_delta_bounds_gaussian: for the Gaussian (σ = 1) the RDP
// δ is never below the optimal δ of Balle & Wang 2018, Theorem 8, and never
// above the "standard" bound exp(−(ε − ½)²/2).
func TestConversionGaussianBounds(t *testing.T) {
	var orders, rdp []float64
	for x := 10; x < 505; x++ {
		a := 0.1 * float64(x)
		orders = append(orders, a)
		rdp = append(rdp, a/2)
	}
	for x := 0; x < 500; x++ {
		eps := 0.1 * float64(x)
		delta, _, err := DeltaFromRDP(orders, rdp, eps)
		if err != nil {
			t.Fatal(err)
		}
		delta0 := math.Erfc((eps-0.5)/math.Sqrt2)/2 - math.Exp(eps)*math.Erfc((eps+0.5)/math.Sqrt2)/2
		if delta0 > delta+1e-300 {
			t.Errorf("ε=%v: RDP δ %g below the optimal Gaussian δ %g", eps, delta, delta0)
		}
		delta1 := 1.0
		if eps >= 0.5 {
			delta1 = math.Exp(-0.5 * (eps - 0.5) * (eps - 0.5))
		}
		if delta > delta1+1e-300 {
			t.Errorf("ε=%v: RDP δ %g above the standard bound %g", eps, delta, delta1)
		}
	}
}

// dp_accounting test_epsilon_delta_consistency: Delta(Epsilon(δ)) = δ.
func TestConversionRoundTrip(t *testing.T) {
	var orders []float64
	for a := 2; a < 50; a++ {
		orders = append(orders, float64(a))
	}
	for _, q := range []float64{0, 0.01, 0.1, 0.8, 1} {
		for _, sigma := range []float64{0, 0.1, 1, 10, 100} {
			rdp := make([]float64, len(orders))
			for i, a := range orders {
				rdp[i], _ = PoissonRDP(q, sigma, a)
			}
			for _, delta := range []float64{0.99, 0.9, 0.1, 0.01, 1e-3, 1e-5, 1e-9, 1e-12} {
				eps, _, err := EpsilonFromRDP(orders, rdp, delta)
				if err != nil {
					t.Fatal(err)
				}
				d2, _, err := DeltaFromRDP(orders, rdp, eps)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case math.IsInf(eps, 1):
					if d2 != 1 {
						t.Errorf("q=%v σ=%v δ=%v: ε = +Inf but δ(ε) = %v", q, sigma, delta, d2)
					}
				case eps == 0:
					if d2 > delta {
						t.Errorf("q=%v σ=%v δ=%v: ε = 0 but δ(0) = %v", q, sigma, delta, d2)
					}
				default:
					if relErr(d2, delta) > 1e-9 {
						t.Errorf("q=%v σ=%v δ=%v: ε = %v, δ(ε) = %v", q, sigma, delta, eps, d2)
					}
				}
			}
		}
	}
}

// The improved conversion is never worse than the classic one, and the
// reported order attains the reported ε.
func TestConversionNeverAboveClassic(t *testing.T) {
	orders := DefaultOrders()
	for _, sigma := range []float64{0.6, 1, 3, 10} {
		for _, steps := range []float64{1, 100, 10000} {
			rdp := make([]float64, len(orders))
			for i, a := range orders {
				r, _ := PoissonRDP(0.02, sigma, a)
				rdp[i] = steps * r
			}
			for _, delta := range []float64{1e-3, 1e-6, 1e-10} {
				eps, order, err := EpsilonFromRDP(orders, rdp, delta)
				if err != nil {
					t.Fatal(err)
				}
				classic := math.Inf(1)
				for i, a := range orders {
					classic = math.Min(classic, rdp[i]+math.Log(1/delta)/(a-1))
					if a == order {
						at := rdp[i] - (math.Log(delta)+math.Log(a))/(a-1) + math.Log((a-1)/a)
						if eps > 0 && relErr(eps, at) > 1e-12 {
							t.Errorf("σ=%v T=%v δ=%v: ε %v but order %v gives %v", sigma, steps, delta, eps, a, at)
						}
					}
				}
				if eps > classic {
					t.Errorf("σ=%v T=%v δ=%v: ε %v above the classic %v", sigma, steps, delta, eps, classic)
				}
			}
		}
	}
}

func TestConversionErrors(t *testing.T) {
	o, r := []float64{2, 3}, []float64{0.1, 0.2}
	checks := []struct {
		name   string
		orders []float64
		rdp    []float64
		delta  float64
		eps    float64
	}{
		{"no orders", nil, nil, 1e-5, 1},
		{"length mismatch", o, []float64{0.1}, 1e-5, 1},
		{"order below 1", []float64{0.5, 3}, r, 1e-5, 1},
		{"NaN order", []float64{math.NaN(), 3}, r, 1e-5, 1},
		{"negative RDP", o, []float64{-0.1, 0.2}, 1e-5, 1},
		{"NaN RDP", o, []float64{math.NaN(), 0.2}, 1e-5, 1},
	}
	for _, c := range checks {
		if _, _, err := EpsilonFromRDP(c.orders, c.rdp, c.delta); err == nil {
			t.Errorf("EpsilonFromRDP %s: no error", c.name)
		}
		if _, _, err := DeltaFromRDP(c.orders, c.rdp, c.eps); err == nil {
			t.Errorf("DeltaFromRDP %s: no error", c.name)
		}
	}
	for _, d := range []float64{0, 1, -1e-5, 2, math.NaN()} {
		if _, _, err := EpsilonFromRDP(o, r, d); err == nil {
			t.Errorf("EpsilonFromRDP δ=%v: no error", d)
		}
	}
	for _, e := range []float64{-1, math.NaN()} {
		if _, _, err := DeltaFromRDP(o, r, e); err == nil {
			t.Errorf("DeltaFromRDP ε=%v: no error", e)
		}
	}
	if d, _, err := DeltaFromRDP(o, r, math.Inf(1)); err != nil || d != 0 {
		t.Errorf("DeltaFromRDP ε=+Inf: %v, %v; want 0", d, err)
	}
	if e, order, err := EpsilonFromRDP(o, []float64{math.Inf(1), math.Inf(1)}, 1e-5); err != nil || !math.IsInf(e, 1) || order != 2 {
		t.Errorf("all-Inf RDP: ε %v at %v, %v; want +Inf at 2", e, order, err)
	}
}
