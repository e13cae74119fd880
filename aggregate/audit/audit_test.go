package audit

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kronfed/kronfed/aggregate/accountant"
)

func phi(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// TestGaussianEpsilonEqualVariances: N(0, s²) against N(μs, s²) is the
// μ-GDP Gaussian, δ(ε) = Φ(−ε/μ + μ/2) − e^ε·Φ(−ε/μ − μ/2) (Dong, Roth, Su).
func TestGaussianEpsilonEqualVariances(t *testing.T) {
	for _, mu := range []float64{0.3, 1, 2.5, 6} {
		for _, delta := range []float64{1e-3, 1e-5} {
			lo, hi := 0.0, 200.0
			for range 200 {
				mid := (lo + hi) / 2
				if phi(-mid/mu+mu/2)-math.Exp(mid)*phi(-mid/mu-mu/2) > delta {
					lo = mid
				} else {
					hi = mid
				}
			}
			got := GaussianEpsilon(0.1, 0.02, 0.1+mu*0.02, 0.02, delta)
			if math.Abs(got-hi) > 1e-6*math.Max(hi, 1) {
				t.Errorf("μ = %v, δ = %v: ε %.9g, closed form %.9g", mu, delta, got, hi)
			}
		}
	}
}

// TestGaussianEpsilonUnequalVariances: δ(ε) from the closed-form regions
// equals a direct integral of (p1 − e^ε·p0)₊ on a fine grid.
func TestGaussianEpsilonUnequalVariances(t *testing.T) {
	pdf := func(x, m, s float64) float64 { return math.Exp(-(x-m)*(x-m)/(2*s*s)) / (s * math.Sqrt(2*math.Pi)) }
	for _, c := range []struct{ m0, s0, m1, s1, eps float64 }{
		{0, 1, 1, 1.5, 0.5}, {0, 1, 2, 0.7, 1}, {0.3, 0.2, 0.1, 0.1, 2}, {0, 1, 0, 2, 0.3},
	} {
		var want float64
		n := 400000
		lo, hi := math.Min(c.m0, c.m1)-15*math.Max(c.s0, c.s1), math.Max(c.m0, c.m1)+15*math.Max(c.s0, c.s1)
		h := (hi - lo) / float64(n)
		for i := range n {
			x := lo + (float64(i)+0.5)*h
			want += math.Max(pdf(x, c.m1, c.s1)-math.Exp(c.eps)*pdf(x, c.m0, c.s0), 0) * h
		}
		if got := gaussianDelta(c.m0, c.s0, c.m1, c.s1, c.eps); math.Abs(got-want) > 1e-7 {
			t.Errorf("%+v: δ %.9g, integral %.9g", c, got, want)
		}
	}
	if e := GaussianEpsilon(0, 1, 0, 1, 1e-5); e != 0 {
		t.Errorf("identical Gaussians: ε %v", e)
	}
}

// dpFedAvg runs the DP-FedAvg mechanism itself on flat updates: n clients
// with fresh random updates of norm c, k canaries uploading c·u_j, each
// round a cohort of m drawn without replacement from all n + k, the sum of
// the cohort's clipped updates plus N(0, (z·c)²) per coordinate, divided
// by m; it returns the final change Δ.
func dpFedAvg(can *Canaries, n, m, rounds int, z, c float64, rng *rand.Rand) []float64 {
	d, k := can.Dim, len(can.Inserted)
	delta := make([]float64, d)
	upd := make([]float64, d)
	for range rounds {
		sum := make([]float64, d)
		for _, who := range rng.Perm(n + k)[:m] {
			if who >= n {
				for i, x := range can.Inserted[who-n] {
					sum[i] += c * x
				}
				continue
			}
			var norm float64
			for i := range upd {
				upd[i] = rng.NormFloat64()
				norm += upd[i] * upd[i]
			}
			for i := range upd {
				sum[i] += c * upd[i] / math.Sqrt(norm)
			}
		}
		for i := range sum {
			delta[i] += (sum[i] + z*c*rng.NormFloat64()) / float64(m)
		}
	}
	return delta
}

// TestAuditAgainstAccountant: on the DP-FedAvg mechanism (d = 2000, 40
// clients and 40 canaries, cohorts of 16, 30 rounds), without noise the
// canaries stand out (ε̂ large); with noise ε̂ falls, and over seeds its
// lower confidence bound never exceeds the accountant's ε (fixed-size
// sampling without replacement, replace-one: a proof no attacker beats).
func TestAuditAgainstAccountant(t *testing.T) {
	const d, n, k, m, rounds, delta = 2000, 40, 40, 16, 30, 1e-5
	var prev float64 = math.Inf(1)
	for _, z := range []float64{0, 0.5, 1, 3} {
		acct, err := accountant.NewAccountant(accountant.WithoutReplacement{Cohort: m, Population: n + k}, accountant.DefaultOrders())
		if err != nil {
			t.Fatal(err)
		}
		bound := math.Inf(1)
		if z > 0 {
			acct.Compose(z, float64(m)/float64(n+k), rounds)
			bound, _, _ = acct.Epsilon(delta)
		}
		var sum float64
		for seed := uint64(1); seed <= 4; seed++ {
			can, err := NewCanaries(d, k, 200, seed)
			if err != nil {
				t.Fatal(err)
			}
			final := dpFedAvg(can, n, m, rounds, z, 1, rand.New(rand.NewPCG(seed, 1)))
			in, out, err := can.Cosines(final)
			if err != nil {
				t.Fatal(err)
			}
			est, err := EstimateEpsilon(in, out, delta, 300, 0.95, seed)
			if err != nil {
				t.Fatal(err)
			}
			if !(est.Low <= est.Epsilon && est.Epsilon <= est.High) {
				t.Errorf("z=%v seed %d: ε̂ %v outside its interval [%v, %v]", z, seed, est.Epsilon, est.Low, est.High)
			}
			if est.Low > bound {
				t.Errorf("z=%v seed %d: ε̂ ≥ %v (95%%) above the accountant's proven %v", z, seed, est.Low, bound)
			}
			if z == 0 && !(est.Epsilon > 20) {
				t.Errorf("no noise, seed %d: ε̂ = %v; the canaries should stand out", seed, est.Epsilon)
			}
			sum += est.Epsilon
			t.Logf("z=%v seed %d: ε̂ = %.3f [%.3f, %.3f] (cos in %.4f±%.4f, out %.4f±%.4f), accountant ε = %.3f",
				z, seed, est.Epsilon, est.Low, est.High, est.MeanIn, est.StdIn, est.MeanOut, est.StdOut, bound)
		}
		if mean := sum / 4; !(mean < prev) {
			t.Errorf("z=%v: mean ε̂ %v did not fall below the previous noise level's %v", z, mean, prev)
		} else {
			prev = mean
		}
	}
	if _, err := NewCanaries(100, 1, 5, 1); err == nil {
		t.Error("one inserted canary accepted")
	}
	if _, err := EstimateEpsilon([]float64{1, 2}, []float64{0, 1}, 1, 100, 0.95, 1); err == nil {
		t.Error("δ = 1 accepted")
	}
}
