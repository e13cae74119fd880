package accountant

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// DefaultOrders returns dp_accounting's DEFAULT_RDP_ORDERS: 1.25, 1.5, 1.75,
// 2, 2.25, 2.5, 3, 3.5, 4, 4.5, the integers 5 … 63, and 128, 256, 512.
func DefaultOrders() []float64 {
	o := []float64{1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5}
	for a := 5; a < 64; a++ {
		o = append(o, float64(a))
	}
	return append(o, 128, 256, 512)
}

// Sampling says how each round's cohort is drawn: Poisson or
// WithoutReplacement.
type Sampling interface {
	sampling()
	String() string
}

// Poisson sampling: every client of the population joins a round
// independently with probability q (q = expected cohort / population).
// Accounted under add/remove-one adjacency with L2 sensitivity C (the
// clipping norm), so the RDP noise multiplier is z.
type Poisson struct{}

// WithoutReplacement sampling: each round draws exactly Cohort clients
// uniformly without replacement from Population, q = Cohort/Population.
// Accounted under replace-one adjacency (Population is public) with L2
// sensitivity 2C, so the RDP noise multiplier is z/2.
type WithoutReplacement struct {
	Cohort, Population int
}

func (Poisson) sampling()            {}
func (WithoutReplacement) sampling() {}

func (Poisson) String() string { return "Poisson sampling (add/remove-one adjacency)" }
func (w WithoutReplacement) String() string {
	return fmt.Sprintf("sampling %d of %d without replacement (replace-one adjacency)", w.Cohort, w.Population)
}

// Rate returns Cohort/Population, the only sampling rate an accountant with
// this sampling accepts.
func (w WithoutReplacement) Rate() float64 {
	return float64(w.Cohort) / float64(w.Population)
}

// ErrUnreachable is returned (wrapped) by NoiseForEpsilon when no noise
// multiplier reaches the target ε.
var ErrUnreachable = errors.New("accountant: target epsilon unreachable")

// Accountant accumulates the RDP of a sequence of subsampled Gaussian steps
// (one per federated round) at a fixed list of orders, and converts it to
// (ε, δ). Composition is additive in RDP: after steps with noise multipliers
// z_t and rates q_t, rdp(α) = Σ_t RDP_step(α; q_t, z_t). Not safe for
// concurrent use.
type Accountant struct {
	sampling Sampling
	orders   []float64
	rdp      []float64
	steps    int
	comps    []Composition // what was composed, for the order search
	grid     []float64     // SearchOrders and orders, sorted: where the search starts

	// The last per-step RDP computed (for RDP()), for (lastZ, lastQ): a
	// training loop composes the same z and q every round.
	lastZ, lastQ float64
	lastStep     []float64
}

// NewAccountant returns an accountant with nothing spent. orders must be
// non-empty, each in (1, MaxOrder] (use DefaultOrders()).
func NewAccountant(s Sampling, orders []float64) (*Accountant, error) {
	switch v := s.(type) {
	case Poisson:
	case WithoutReplacement:
		if v.Population < 1 || v.Cohort < 0 || v.Cohort > v.Population {
			return nil, fmt.Errorf("accountant: cohort %d of population %d: need 0 ≤ cohort ≤ population, population ≥ 1", v.Cohort, v.Population)
		}
	case nil:
		return nil, fmt.Errorf("accountant: no sampling (use Poisson{} or WithoutReplacement{...})")
	default:
		return nil, fmt.Errorf("accountant: unknown sampling %T", s)
	}
	if len(orders) == 0 {
		return nil, fmt.Errorf("accountant: no Rényi orders (use DefaultOrders())")
	}
	for _, a := range orders {
		if err := checkOrder(a); err != nil {
			return nil, err
		}
	}
	return &Accountant{
		sampling: s,
		orders:   append([]float64(nil), orders...),
		grid:     mergeOrders(SearchOrders(), orders),
		rdp:      make([]float64, len(orders)),
	}, nil
}

// Sampling returns the accountant's sampling.
func (a *Accountant) Sampling() Sampling { return a.sampling }

// Orders returns a copy of the Rényi orders.
func (a *Accountant) Orders() []float64 { return append([]float64(nil), a.orders...) }

// RDP returns a copy of the accumulated RDP, one value per order.
func (a *Accountant) RDP() []float64 { return append([]float64(nil), a.rdp...) }

// Steps returns the number of steps composed so far.
func (a *Accountant) Steps() int { return a.steps }

// Compose records steps rounds, each sampling at rate q and adding Gaussian
// noise of standard deviation z·C to the sum of the sampled clients' updates
// clipped to L2 norm C (z is the noise multiplier: noise std / clipping norm).
// With WithoutReplacement sampling q must equal Cohort/Population. Errors: z
// not > 0 (z = 0 is no privacy at all), q outside [0, 1], steps < 0.
func (a *Accountant) Compose(z, q float64, steps int) error {
	per, err := a.stepRDP(z, q)
	if err != nil {
		return err
	}
	if steps < 0 {
		return fmt.Errorf("accountant: steps %d < 0", steps)
	}
	for i, r := range per {
		a.rdp[i] += float64(steps) * r
	}
	a.steps += steps
	if n := len(a.comps); n > 0 && a.comps[n-1].Z == z && a.comps[n-1].Q == q {
		a.comps[n-1].Steps += steps
	} else if steps > 0 {
		a.comps = append(a.comps, Composition{Z: z, Q: q, Steps: steps})
	}
	return nil
}

// Compositions returns a copy of what was composed, runs of identical
// steps merged.
func (a *Accountant) Compositions() []Composition { return slices.Clone(a.comps) }

// stepRDP returns the RDP of one step at every order. The result is shared
// with the cache: callers must not modify it.
func (a *Accountant) stepRDP(z, q float64) ([]float64, error) {
	if a.lastStep != nil && z == a.lastZ && q == a.lastQ {
		return a.lastStep, nil
	}
	out, err := a.computeStepRDP(z, q)
	if err != nil {
		return nil, err
	}
	a.lastZ, a.lastQ, a.lastStep = z, q, out
	return out, nil
}

// checkStep refuses a step the accountant cannot compose: z not finite
// and > 0, q outside [0, 1], or a rate other than its fixed sampling's.
func (a *Accountant) checkStep(z, q float64) error {
	if !(z > 0) || math.IsInf(z, 1) {
		return fmt.Errorf("accountant: noise multiplier z = %v must be finite and > 0", z)
	}
	if !(q >= 0 && q <= 1) {
		return fmt.Errorf("accountant: sampling rate q = %v is outside [0, 1]", q)
	}
	if s, ok := a.sampling.(WithoutReplacement); ok {
		if r := s.Rate(); math.Abs(q-r) > 1e-12*r {
			return fmt.Errorf("accountant: q = %v but %v fixes q = %v", q, s, r)
		}
	}
	return nil
}

func (a *Accountant) computeStepRDP(z, q float64) ([]float64, error) {
	if err := a.checkStep(z, q); err != nil {
		return nil, err
	}
	out := make([]float64, len(a.orders))
	switch a.sampling.(type) {
	case Poisson:
		for i, o := range a.orders {
			out[i] = poissonRDP(q, z, o)
		}
	case WithoutReplacement:
		sigma := z / 2 // replace-one sensitivity of a sum of C-clipped updates is 2C
		var diffs []float64
		if q > 0 && q < 1 {
			diffs = worForwardDiffs(sigma, worDiffOrder(a.orders))
		}
		for i, o := range a.orders {
			out[i] = worRDP(q, sigma, o, diffs)
		}
	}
	return out, nil
}

// Epsilon returns the smallest ε such that everything composed so far is
// (ε, delta)-DP, and the order attaining it: minimized over the
// accountant's orders and SearchOrders together, then refined between
// grid points (see OptimalEpsilon). delta must be in (0, 1).
func (a *Accountant) Epsilon(delta float64) (eps, order float64, err error) {
	return a.epsilonWith(nil, delta)
}

// epsilonWith is Epsilon with an extra run of steps on top of what is spent.
func (a *Accountant) epsilonWith(extra *Composition, delta float64) (eps, order float64, err error) {
	if err := checkDelta(delta); err != nil {
		return 0, 0, err
	}
	comps := a.comps
	if extra != nil {
		if err := a.checkStep(extra.Z, extra.Q); err != nil {
			return 0, 0, err
		}
		comps = append(slices.Clone(comps), *extra)
	}
	c, err := newCurve(a.sampling, comps)
	if err != nil {
		return 0, 0, err
	}
	eps, order = minimizeOverOrders(func(al float64) float64 { return epsilonAtOrder(c.at(al), al, delta) }, a.grid)
	return math.Max(0, eps), order, nil
}

// Delta returns the smallest δ such that everything composed so far is
// (eps, δ)-DP, and the order attaining it, minimized like Epsilon.
func (a *Accountant) Delta(eps float64) (delta, order float64, err error) {
	if !(eps >= 0) {
		return 0, 0, fmt.Errorf("accountant: epsilon %v must be ≥ 0", eps)
	}
	c, err := newCurve(a.sampling, a.comps)
	if err != nil {
		return 0, 0, err
	}
	ld, order := minimizeOverOrders(func(al float64) float64 { return logDeltaAtOrder(c.at(al), al, eps) }, a.grid)
	return math.Min(math.Exp(ld), 1), order, nil
}

// NoiseForEpsilon returns the smallest noise multiplier z (to 1e-6 relative,
// rounded up, so the target is never exceeded) such that composing steps
// further steps at rate q on top of what the accountant has already spent
// gives ε ≤ targetEps at delta. On a fresh accountant this is the usual
// calibration of z for a whole training run. ε decreases monotonically in z,
// so z is found by bisection. The accountant is not changed. The target is
// unreachable (ErrUnreachable) when what is already spent reaches it on its
// own; steps must be ≥ 1 and q > 0 (otherwise z does not matter). Should even
// z ≈ 1e-9 meet the target, that z is returned rather than searched further.
func (a *Accountant) NoiseForEpsilon(targetEps, delta, q float64, steps int) (float64, error) {
	if !(targetEps > 0) || math.IsInf(targetEps, 1) {
		return 0, fmt.Errorf("accountant: target epsilon %v must be finite and > 0", targetEps)
	}
	if err := checkDelta(delta); err != nil {
		return 0, err
	}
	if steps < 1 {
		return 0, fmt.Errorf("accountant: steps %d < 1: no noise to calibrate", steps)
	}
	if !(q > 0 && q <= 1) {
		return 0, fmt.Errorf("accountant: sampling rate q = %v must be in (0, 1] to calibrate noise", q)
	}
	epsAt := func(z float64) (float64, error) {
		e, _, err := a.epsilonWith(&Composition{Z: z, Q: q, Steps: steps}, delta)
		return e, err
	}
	spent, _, err := a.Epsilon(delta)
	if err != nil {
		return 0, err
	}
	if spent >= targetEps {
		return 0, fmt.Errorf("%w: already spent ε = %.6g ≥ target %.6g at δ = %g", ErrUnreachable, spent, targetEps, delta)
	}
	// Bracket: eps(lo) > target ≥ eps(hi).
	lo, hi := 1.0, 1.0
	e, err := epsAt(hi)
	if err != nil {
		return 0, err
	}
	if e > targetEps {
		for e > targetEps {
			lo, hi = hi, hi*2
			if hi > 1e12 {
				return 0, fmt.Errorf("%w: ε stays above %.6g at δ = %g even with z = %g (already spent ε = %.6g)", ErrUnreachable, targetEps, delta, hi, spent)
			}
			if e, err = epsAt(hi); err != nil {
				return 0, err
			}
		}
	} else {
		for e <= targetEps {
			hi, lo = lo, lo/2
			if lo < 1e-9 {
				return hi, nil // any z ≥ hi works; smaller z is useless noise anyway
			}
			if e, err = epsAt(lo); err != nil {
				return 0, err
			}
		}
	}
	for hi-lo > 1e-7*hi {
		mid := 0.5 * (lo + hi)
		e, err := epsAt(mid)
		if err != nil {
			return 0, err
		}
		if e > targetEps {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil
}

// Budget is a client-level (ε, δ) privacy budget for a whole training run.
type Budget struct {
	Epsilon, Delta float64
}

// WouldExceed reports whether composing one more step (noise multiplier z,
// rate q) on acct would take its ε at b.Delta above b.Epsilon. Check it before
// every round and stop training when it is true, so that the budget is never
// exceeded. The accountant is not changed.
func (b Budget) WouldExceed(acct *Accountant, z, q float64) (bool, error) {
	if !(b.Epsilon >= 0) || math.IsInf(b.Epsilon, 1) {
		return false, fmt.Errorf("accountant: budget epsilon %v must be finite and ≥ 0", b.Epsilon)
	}
	if err := checkDelta(b.Delta); err != nil {
		return false, fmt.Errorf("budget: %w", err)
	}
	e, _, err := acct.epsilonWith(&Composition{Z: z, Q: q, Steps: 1}, b.Delta)
	if err != nil {
		return false, err
	}
	return e > b.Epsilon, nil
}
