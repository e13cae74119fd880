// Package audit estimates, from a single federated training run, how much
// privacy the released model actually leaks: the one-shot empirical privacy
// estimation of Andrew, Kairouz, Oh, Oprea, McMahan and Suriyakumar ("One-shot
// Empirical Privacy Estimation for Federated Learning", ICLR 2024).
//
// k canary clients join the population. Each has a random unit direction u_j
// in the space of the adapter's parameters (dimension d, all factors
// flattened) and, every round it is sampled, uploads exactly c·u_j, c the
// clipping norm (a canary never trains). Another k' directions are drawn the
// same way and never inserted. After the run, Δ = θ_T − θ_0 (the released
// adapter's change) is compared with every direction: cos(Δ, u). For the
// held-out directions the cosines follow the null distribution (about
// N(0, 1/d) in high dimension); for inserted ones they are shifted by the
// canary's contribution. Fitting a Gaussian to each set and computing the ε
// at δ at which the two Gaussians are (ε, δ)-indistinguishable gives the
// estimate ε̂: what an attacker who knows the canary directions and sees the
// final model could tell apart. It is an estimate, not a bound: the
// accountant's ε is a proof that no attacker can do better than it, ε̂ says
// how close this run's model comes. A bootstrap over the canaries gives its
// confidence interval.
package audit

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/kronfed/kronfed/adapter"
)

// Canaries are the audit's random unit directions: Inserted ones, each
// uploaded by a canary client, and Held ones, never inserted (the null).
type Canaries struct {
	Dim            int
	Inserted, Held [][]float64
}

// NewCanaries draws inserted + held random unit directions in dim
// dimensions (normalized Gaussian vectors: uniform on the sphere), from
// seed.
func NewCanaries(dim, inserted, held int, seed uint64) (*Canaries, error) {
	switch {
	case dim < 2:
		return nil, fmt.Errorf("audit: %d dimensions: a canary direction needs at least 2", dim)
	case inserted < 2 || held < 2:
		return nil, fmt.Errorf("audit: %d inserted and %d held-out canaries: each set needs at least 2 to fit a Gaussian", inserted, held)
	}
	rng := rand.New(rand.NewPCG(seed, 0xca7a))
	draw := func() []float64 {
		u := make([]float64, dim)
		var n float64
		for i := range u {
			u[i] = rng.NormFloat64()
			n += u[i] * u[i]
		}
		n = math.Sqrt(n)
		for i := range u {
			u[i] /= n
		}
		return u
	}
	c := &Canaries{Dim: dim}
	for range inserted {
		c.Inserted = append(c.Inserted, draw())
	}
	for range held {
		c.Held = append(c.Held, draw())
	}
	return c, nil
}

// Flatten is a set's parameters in Params order as one vector (what the
// canary directions live in).
func Flatten(s *adapter.Set) []float64 {
	var out []float64
	for _, p := range s.Params() {
		for _, x := range p.Data {
			out = append(out, float64(x))
		}
	}
	return out
}

// AddTo adds scale·Inserted[j] to the parameters of s (of dimension Dim):
// canary j's local "training" is local += c·u_j.
func (c *Canaries) AddTo(s *adapter.Set, j int, scale float64) error {
	u := c.Inserted[j]
	k := 0
	for _, p := range s.Params() {
		if k+len(p.Data) > len(u) {
			return fmt.Errorf("audit: the adapter has more than the canaries' %d parameters", c.Dim)
		}
		for i := range p.Data {
			p.Data[i] += float32(scale * u[k])
			k++
		}
	}
	if k != len(u) {
		return fmt.Errorf("audit: the adapter has %d parameters, the canaries %d", k, c.Dim)
	}
	return nil
}

// Cosines are cos(delta, u) for every inserted and every held direction.
func (c *Canaries) Cosines(delta []float64) (inserted, held []float64, err error) {
	if len(delta) != c.Dim {
		return nil, nil, fmt.Errorf("audit: a change of %d parameters against canaries of %d", len(delta), c.Dim)
	}
	var n float64
	for _, x := range delta {
		n += x * x
	}
	n = math.Sqrt(n)
	cos := func(u []float64) float64 {
		if n == 0 {
			return 0
		}
		var d float64
		for i, x := range delta {
			d += x * u[i]
		}
		return d / n
	}
	for _, u := range c.Inserted {
		inserted = append(inserted, cos(u))
	}
	for _, u := range c.Held {
		held = append(held, cos(u))
	}
	return inserted, held, nil
}

// Estimate is one empirical privacy estimate.
type Estimate struct {
	// Epsilon is ε̂ at Delta: the inserted canaries' mean cosine against
	// the held-out ones', in units of the held-out spread — the Gaussian
	// pair N(MeanOut, StdOut²), N(MeanIn, StdOut²) — and [Low, High] its
	// bootstrap confidence interval at Level. The null's spread comes from
	// the many held-out directions, so it is steady with few canaries.
	Epsilon, Low, High float64
	// EpsilonFit is ε̂ from both Gaussians as fitted, each with its own
	// spread, and [FitLow, FitHigh] its interval. A spread ratio away from
	// 1 dominates ε at small δ, so with few canaries (whose spread is
	// poorly known) it runs high; with many, and where sampling makes a
	// canary's participation vary, it is the fuller picture.
	EpsilonFit, FitLow, FitHigh float64
	Delta, Level                float64
	// The fits: inserted canaries' cosines N(MeanIn, StdIn²), held-out
	// ones' N(MeanOut, StdOut²).
	MeanIn, StdIn, MeanOut, StdOut float64
}

// EstimateEpsilon is the one-shot estimate from the cosines of the inserted
// and the held-out canaries, at delta, with bootstrap intervals (boots
// resamples of both sets, percentiles at level, e.g. 0.95) drawn from seed.
func EstimateEpsilon(inserted, held []float64, delta float64, boots int, level float64, seed uint64) (Estimate, error) {
	switch {
	case len(inserted) < 2 || len(held) < 2:
		return Estimate{}, errors.New("audit: need at least 2 inserted and 2 held-out cosines")
	case !(delta > 0 && delta < 1):
		return Estimate{}, fmt.Errorf("audit: delta %v is outside (0, 1)", delta)
	case !(level > 0 && level < 1):
		return Estimate{}, fmt.Errorf("audit: confidence level %v is outside (0, 1)", level)
	case boots < 10:
		return Estimate{}, fmt.Errorf("audit: %d bootstrap resamples: want at least 10", boots)
	}
	est := Estimate{Delta: delta, Level: level}
	est.MeanIn, est.StdIn = meanStd(inserted)
	est.MeanOut, est.StdOut = meanStd(held)
	both := func(mi, si, mo, so float64) (equal, fit float64) {
		return GaussianEpsilon(mo, so, mi, so, delta), GaussianEpsilon(mo, so, mi, si, delta)
	}
	est.Epsilon, est.EpsilonFit = both(est.MeanIn, est.StdIn, est.MeanOut, est.StdOut)
	rng := rand.New(rand.NewPCG(seed, 0xb007))
	resample := func(xs []float64) []float64 {
		out := make([]float64, len(xs))
		for i := range out {
			out[i] = xs[rng.IntN(len(xs))]
		}
		return out
	}
	eq, fit := make([]float64, boots), make([]float64, boots)
	for b := range eq {
		mi, si := meanStd(resample(inserted))
		mo, so := meanStd(resample(held))
		eq[b], fit[b] = both(mi, si, mo, so)
	}
	interval := func(eps []float64) (lo, hi float64) {
		slices.Sort(eps)
		at := func(p float64) float64 { return eps[min(len(eps)-1, int(p*float64(len(eps))))] }
		return at((1 - level) / 2), at((1 + level) / 2)
	}
	est.Low, est.High = interval(eq)
	est.FitLow, est.FitHigh = interval(fit)
	return est, nil
}

func meanStd(xs []float64) (mean, std float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)-1))
}

// GaussianEpsilon is the smallest ε ≥ 0 at which N(m0, s0²) and N(m1, s1²)
// are (ε, delta)-indistinguishable, both ways round (+Inf when no finite ε
// is: a zero spread, or delta too small for float64). For each direction
// δ(ε) = P1(R) − e^ε·P0(R) over the region R where the density ratio
// exceeds e^ε, a quadratic inequality in x solved in closed form; ε is
// found by bisection (δ(ε) decreases in ε).
func GaussianEpsilon(m0, s0, m1, s1, delta float64) float64 {
	if !(s0 > 0) || !(s1 > 0) {
		if m0 == m1 && s0 == s1 {
			return 0
		}
		return math.Inf(1)
	}
	worst := func(eps float64) float64 {
		return math.Max(gaussianDelta(m0, s0, m1, s1, eps), gaussianDelta(m1, s1, m0, s0, eps))
	}
	if worst(0) <= delta {
		return 0
	}
	lo, hi := 0.0, 1.0
	for worst(hi) > delta {
		lo, hi = hi, 2*hi
		if hi > 1e4 {
			return math.Inf(1)
		}
	}
	for hi-lo > 1e-9*hi {
		if mid := (lo + hi) / 2; worst(mid) > delta {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// gaussianDelta is δ(ε) of P1 = N(m1, s1²) against P0 = N(m0, s0²):
// P1(R) − e^ε·P0(R), R = {x : log p1(x) − log p0(x) > ε}.
func gaussianDelta(m0, s0, m1, s1, eps float64) float64 {
	// log p1 − log p0 − ε = A·x² + B·x + C.
	a := 1/(2*s0*s0) - 1/(2*s1*s1)
	b := m1/(s1*s1) - m0/(s0*s0)
	c := m0*m0/(2*s0*s0) - m1*m1/(2*s1*s1) + math.Log(s0/s1) - eps
	// P(x > t) and P(x < t) under N(m, s²).
	above := func(t, m, s float64) float64 { return 0.5 * math.Erfc((t-m)/(s*math.Sqrt2)) }
	below := func(t, m, s float64) float64 { return 0.5 * math.Erfc(-(t-m)/(s*math.Sqrt2)) }
	var p1, p0 float64
	switch {
	case math.Abs(a) < 1e-12*math.Max(1/(s0*s0), 1/(s1*s1)):
		switch {
		case b > 0:
			t := -c / b
			p1, p0 = above(t, m1, s1), above(t, m0, s0)
		case b < 0:
			t := -c / b
			p1, p0 = below(t, m1, s1), below(t, m0, s0)
		case c > 0:
			p1, p0 = 1, 1
		}
	default:
		disc := b*b - 4*a*c
		if disc <= 0 {
			if a > 0 {
				p1, p0 = 1, 1
			}
			break
		}
		r1, r2 := (-b-math.Sqrt(disc))/(2*a), (-b+math.Sqrt(disc))/(2*a)
		if r1 > r2 {
			r1, r2 = r2, r1
		}
		if a > 0 { // outside the roots
			p1, p0 = below(r1, m1, s1)+above(r2, m1, s1), below(r1, m0, s0)+above(r2, m0, s0)
		} else { // between them
			p1, p0 = below(r2, m1, s1)-below(r1, m1, s1), below(r2, m0, s0)-below(r1, m0, s0)
		}
	}
	if p0 == 0 { // e^ε·0, even where e^ε overflows
		return math.Max(p1, 0)
	}
	return math.Max(p1-math.Exp(eps)*p0, 0)
}
