package accountant

import (
	"errors"
	"math"
	"testing"
)

// gaussianDelta is the exact δ(ε) of a Gaussian privacy loss with
// parameter μ: T Gaussian mechanisms of noise multiplier z compose to
// μ = √T/z, δ(ε) = Φ(−ε/μ + μ/2) − e^ε·Φ(−ε/μ − μ/2) (Dong, Roth, Su 2019;
// prv_accountant's test_analytic_solution).
func gaussianDelta(eps, mu float64) float64 {
	return normCDF(-eps/mu+mu/2) - math.Exp(eps)*normCDF(-eps/mu-mu/2)
}

// TestPLDBracketsComposedGaussian: with q = 1 the composition is exactly a
// Gaussian mechanism; the accountant's bracket contains the exact δ(ε) and
// ε(δ), and is narrow.
func TestPLDBracketsComposedGaussian(t *testing.T) {
	for _, c := range []struct {
		z     float64
		steps int
	}{{2, 1}, {5, 10}, {20, 100}} {
		a, err := NewPLDAccountant(PLDOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Compose(c.z, 1, c.steps); err != nil {
			t.Fatal(err)
		}
		mu := math.Sqrt(float64(c.steps)) / c.z
		for _, eps := range []float64{0.1, 0.5, 1, 2} {
			want := gaussianDelta(eps, mu)
			got, err := a.Delta(eps)
			if err != nil {
				t.Fatal(err)
			}
			if !(got.Lower <= want && want <= got.Upper) {
				t.Errorf("z=%v T=%d ε=%v: δ bracket [%.6g, %.6g], exact %.6g", c.z, c.steps, eps, got.Lower, got.Upper, want)
			}
		}
		// ε at δ = 1e-5, exact by bisection on the closed form.
		lo, hi := 0.0, 100.0
		for range 200 {
			if mid := (lo + hi) / 2; gaussianDelta(mid, mu) > 1e-5 {
				lo = mid
			} else {
				hi = mid
			}
		}
		got, err := a.Epsilon(1e-5)
		if err != nil {
			t.Fatal(err)
		}
		// The stated error: one interval per round at most.
		if !(got.Lower <= hi+1e-9 && hi <= got.Upper+1e-9) || got.Upper-got.Lower > float64(c.steps)*1e-4*(1+1e-6) {
			t.Errorf("z=%v T=%d: ε bracket [%.6g, %.6g], exact %.6g", c.z, c.steps, got.Lower, got.Upper, hi)
		}
		t.Logf("z=%v T=%d (μ=%.3g): ε(1e-5) exact %.6f, PLD [%.6f, %.6f]", c.z, c.steps, mu, hi, got.Lower, got.Upper)
	}
}

// hockeyStick is the exact δ(ε) of T ∈ {1, 2} steps of the subsampled
// Gaussian in one direction, ∫ (P − e^ε·Q)₊ over x (T = 1) or (x, y)
// (T = 2), by the midpoint rule on a fine grid over ±12σ: an independent
// reference for the discretization (T = 1) and the FFT composition (T = 2).
func hockeyStick(sigma, q, eps float64, remove bool, steps int) float64 {
	pdf := func(x, mu float64) float64 {
		return math.Exp(-(x-mu)*(x-mu)/(2*sigma*sigma)) / (sigma * math.Sqrt(2*math.Pi))
	}
	mix := func(x float64) float64 { return (1-q)*pdf(x, 0) + q*pdf(x, 1) }
	p, qq := mix, func(x float64) float64 { return pdf(x, 0) }
	if !remove {
		p, qq = qq, mix
	}
	lo, hi := -12*sigma, 1+12*sigma
	n := 200000
	if steps == 2 {
		n = 3000
	}
	h := (hi - lo) / float64(n)
	px, qx := make([]float64, n), make([]float64, n)
	for i := range n {
		x := lo + (float64(i)+0.5)*h
		px[i], qx[i] = p(x)*h, qq(x)*h
	}
	var d float64
	e := math.Exp(eps)
	if steps == 1 {
		for i := range n {
			d += math.Max(px[i]-e*qx[i], 0)
		}
		return d
	}
	for i := range n {
		for j := range n {
			d += math.Max(px[i]*px[j]-e*qx[i]*qx[j], 0)
		}
	}
	return d
}

// TestPLDSubsampledExact: one and two steps of the subsampled Gaussian,
// both directions: the pessimistic and optimistic PLDs bracket the exact
// hockey-stick divergence, and the accountant reports the worse direction.
func TestPLDSubsampledExact(t *testing.T) {
	for _, c := range []struct {
		sigma, q, eps float64
		steps         int
	}{{1, 0.1, 0.5, 1}, {0.7, 0.3, 1, 1}, {1, 0.1, 0.3, 2}, {2, 0.5, 0.2, 2}} {
		var worst float64
		for _, remove := range []bool{true, false} {
			want := hockeyStick(c.sigma, c.q, c.eps, remove, c.steps)
			up := stepPLD(c.sigma, c.q, remove, true, 1e-4).selfCompose(c.steps, true).delta(c.eps)
			lo := stepPLD(c.sigma, c.q, remove, false, 1e-4).selfCompose(c.steps, false).delta(c.eps)
			// The reference's own quadrature error is ~1e-6 relative.
			if !(lo <= want*(1+1e-5) && want*(1-1e-5) <= up) {
				t.Errorf("σ=%v q=%v T=%d ε=%v remove=%v: PLD δ in [%.10g, %.10g], exact %.10g", c.sigma, c.q, c.steps, c.eps, remove, lo, up, want)
			}
			worst = math.Max(worst, up)
		}
		a, _ := NewPLDAccountant(PLDOptions{})
		a.Compose(c.sigma, c.q, c.steps)
		if d, err := a.Delta(c.eps); err != nil || d.Upper != worst {
			t.Errorf("σ=%v q=%v T=%d: accountant δ %v (%v), worse direction %v", c.sigma, c.q, c.steps, d.Upper, err, worst)
		}
	}
}

// TestPLDTighterThanRDP: on ordinary DP-FedAvg settings the PLD's
// pessimistic ε is below the RDP bound at its best order (and well below
// over many rounds), and the bracket is narrow.
func TestPLDTighterThanRDP(t *testing.T) {
	for _, c := range []struct {
		z, q  float64
		steps int
		delta float64
	}{
		{1.0, 0.1, 100, 1e-5},
		{1.1, 0.01, 500, 1e-3},
		{1.5, 0.04, 2250, 1e-5},
		{0.8, 0.05, 50, 1e-5},
	} {
		rdp, _, err := OptimalEpsilon(Poisson{}, []Composition{{Z: c.z, Q: c.q, Steps: c.steps}}, c.delta)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := NewPLDAccountant(PLDOptions{})
		if err := a.Compose(c.z, c.q, c.steps); err != nil {
			t.Fatal(err)
		}
		p, err := a.Epsilon(c.delta)
		if err != nil {
			t.Fatal(err)
		}
		if !(p.Upper < rdp) || p.Lower > p.Upper || p.Upper-p.Lower > float64(c.steps)*1e-4*(1+1e-6) {
			t.Errorf("z=%v q=%v T=%d: PLD ε [%.6g, %.6g], RDP %.6g", c.z, c.q, c.steps, p.Lower, p.Upper, rdp)
		}
		t.Logf("z=%v q=%v T=%d δ=%g: PLD ε in [%.5f, %.5f], RDP %.5f", c.z, c.q, c.steps, c.delta, p.Lower, p.Upper, rdp)
	}
}

func TestPLDBadInput(t *testing.T) {
	if _, err := NewPLDAccountant(PLDOptions{Interval: -1}); err == nil {
		t.Error("negative interval accepted")
	}
	a, _ := NewPLDAccountant(PLDOptions{MaxMiB: 1})
	if err := a.Compose(0.1, 0.5, 10000); !errors.Is(err, ErrPLDTooLarge) {
		t.Errorf("a PLD over its memory limit: %v", err)
	}
	a, _ = NewPLDAccountant(PLDOptions{})
	for _, bad := range []struct{ z, q float64 }{{0, 0.1}, {1, 1.5}, {1, -0.1}, {math.Inf(1), 0.1}} {
		if err := a.Compose(bad.z, bad.q, 1); err == nil {
			t.Errorf("z=%v q=%v accepted", bad.z, bad.q)
		}
	}
	if _, err := a.Epsilon(1); err == nil {
		t.Error("δ = 1 accepted")
	}
	if _, err := a.Epsilon(0); err == nil {
		t.Error("δ = 0 accepted")
	}
}
