package accountant

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/dsp/fourier"
)

// Privacy loss distributions (PLD) of the Poisson-subsampled Gaussian,
// composed numerically: the accounting of Koskela, Jälkö and Honkela 2019
// ("Computing tight differential privacy guarantees using FFT"), of Google's
// dp_accounting PLDAccountant and of Microsoft's prv_accountant (Opacus's
// default). It is typically much tighter than RDP over many rounds, because
// it composes the whole distribution of the privacy loss, not a bound on
// its moments.
//
// One step, at rate q with noise multiplier σ (sensitivity 1, add/remove-one
// adjacency), has two neighbouring directions:
//
//	remove: x ~ P = (1−q)·N(0, σ²) + q·N(1, σ²), loss L(x) = log(1 − q + q·e^{(2x−1)/(2σ²)})
//	add:    x ~ N(0, σ²),                        loss L(x) = −log(1 − q + q·e^{(2x−1)/(2σ²)})
//
// δ(ε) = E[(1 − e^{ε−L})₊] + P(L = +∞) for each direction composed over the
// rounds; the guarantee is the worse of the two. Each loss is monotone in x,
// so the mass of the loss interval ((k−1)Δ, kΔ] is a difference of normal
// CDFs at x(kΔ) and x((k−1)Δ), exact. The pessimistic PLD puts it at kΔ
// (every loss rounded up: δ only grows), the optimistic one at (k−1)Δ. The
// truncated tails go the same ways: pessimistic, the upper tail to +∞ and
// the lower to the lowest kept loss; optimistic, both dropped. Both are
// composed by FFT (gonum) and queried alike, and the true δ(ε) and ε(δ) lie
// between them: that bracket is the stated error (ignoring float64 rounding
// in the FFT, far below it).

// PLDOptions tune the discretization.
type PLDOptions struct {
	// Interval is Δ, the spacing of the loss grid (default 1e-4, as
	// dp_accounting's value_discretization_interval). The bracket's width
	// grows with it: about T·Δ in ε after T rounds at worst.
	Interval float64
	// MaxMiB bounds the memory one composition may take (default 512 MiB):
	// a setting that would need more is refused before any work, saying
	// how much it needs.
	MaxMiB int
}

// tailMass is the probability mass cut from each tail of a PLD, once per
// step's discretization and once per composition (to +∞ and the lowest loss
// when pessimistic; dropped when optimistic).
const tailMass = 1e-15

// pld is a discretized privacy loss distribution: Mass[i] at loss
// (Offset+i)·Interval, and Inf at +∞.
type pld struct {
	interval float64
	offset   int
	mass     []float64
	inf      float64
}

// normCDF and normSF are Φ(x) and 1 − Φ(x), each accurate in its own tail.
func normCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
func normSF(x float64) float64  { return 0.5 * math.Erfc(x/math.Sqrt2) }

// stepPLD discretizes one step of the Poisson-subsampled Gaussian in one
// direction (remove: true) on grid interval.
func stepPLD(sigma, q float64, remove, pessimistic bool, interval float64) *pld {
	s2 := sigma * sigma
	// x(l): the x where the loss equals l (+∞ / −∞ outside the range).
	xOf := func(l float64) float64 {
		if !remove {
			l = -l
		}
		v := (math.Exp(l) - (1 - q)) / q
		if v <= 0 {
			return math.Inf(-1)
		}
		return s2*math.Log(v) + 0.5
	}
	// The probability that the loss is at most l.
	cdf := func(l float64) float64 {
		x := xOf(l)
		if remove { // loss increasing in x, x ~ (1−q)N(0,σ²) + qN(1,σ²)
			return (1-q)*normCDF(x/sigma) + q*normCDF((x-1)/sigma)
		}
		return normSF(x / sigma) // loss decreasing in x, x ~ N(0, σ²)
	}
	sf := func(l float64) float64 {
		x := xOf(l)
		if remove {
			return (1-q)*normSF(x/sigma) + q*normSF((x-1)/sigma)
		}
		return normCDF(x / sigma)
	}
	lo, hi := lossRange(sigma, q, remove)
	kLo, kHi := int(math.Floor(lo/interval)), int(math.Ceil(hi/interval))
	p := &pld{interval: interval, offset: kLo, mass: make([]float64, kHi-kLo+1)}
	// Mass of ((k−1)Δ, kΔ], from whichever of the CDF and the survival
	// function is small there (no cancellation in either tail).
	prevC, prevS := cdf(float64(kLo-1)*interval), sf(float64(kLo-1)*interval)
	for k := kLo; k <= kHi; k++ {
		c, s := cdf(float64(k)*interval), sf(float64(k)*interval)
		m := c - prevC
		if c > 0.5 {
			m = prevS - s
		}
		m = math.Max(m, 0)
		if pessimistic {
			p.mass[k-kLo] += m
		} else if k > kLo {
			p.mass[k-kLo-1] += m
		}
		prevC, prevS = c, s
	}
	if pessimistic {
		p.mass[0] += cdf(float64(kLo-1) * interval) // the lower tail, rounded up to the lowest loss
		p.inf = sf(float64(kHi) * interval)         // the upper tail
	}
	p.truncate(pessimistic) // the x range is generous: most of a long loss tail holds < 1e-15
	return p
}

// compose is the PLD of p and o composed (independent losses add):
// the convolution of the masses, by FFT.
func (p *pld) compose(o *pld, pessimistic bool) *pld {
	n := len(p.mass) + len(o.mass) - 1
	size := 1
	for size < n {
		size <<= 1
	}
	fft := fourier.NewFFT(size)
	a := make([]float64, size)
	b := make([]float64, size)
	copy(a, p.mass)
	copy(b, o.mass)
	ca := fft.Coefficients(nil, a)
	cb := fft.Coefficients(nil, b)
	for i := range ca {
		ca[i] *= cb[i]
	}
	out := fft.Sequence(a, ca)
	inv := 1 / float64(size)
	for i := range out[:n] {
		out[i] = math.Max(out[i]*inv, 0) // rounding leaves tiny negatives
	}
	r := &pld{interval: p.interval, offset: p.offset + o.offset, mass: out[:n:n],
		inf: 1 - (1-p.inf)*(1-o.inf)}
	r.truncate(pessimistic)
	return r
}

// truncate cuts up to tailMass from each end: pessimistic, the upper tail
// goes to +∞ and the lower onto the lowest kept loss; optimistic, both are
// dropped.
func (p *pld) truncate(pessimistic bool) {
	lo, cut := 0, 0.0
	for lo < len(p.mass)-1 && cut+p.mass[lo] < tailMass {
		cut += p.mass[lo]
		lo++
	}
	lower := cut
	hi, cut := len(p.mass)-1, 0.0
	for hi > lo && cut+p.mass[hi] < tailMass {
		cut += p.mass[hi]
		hi--
	}
	p.mass = p.mass[lo : hi+1]
	p.offset += lo
	if pessimistic {
		p.mass[0] += lower
		p.inf += cut
	}
}

// selfCompose is p composed with itself n ≥ 1 times, by repeated squaring.
func (p *pld) selfCompose(n int, pessimistic bool) *pld {
	var acc *pld
	base := p
	for n > 0 {
		if n&1 == 1 {
			if acc == nil {
				acc = base
			} else {
				acc = acc.compose(base, pessimistic)
			}
		}
		n >>= 1
		if n > 0 {
			base = base.compose(base, pessimistic)
		}
	}
	return acc
}

// delta is δ(ε) = P(L = +∞) + Σ_{l > ε} p(l)·(1 − e^{ε−l}).
func (p *pld) delta(eps float64) float64 {
	d := p.inf
	for i := len(p.mass) - 1; i >= 0; i-- {
		l := float64(p.offset+i) * p.interval
		if l <= eps {
			break
		}
		d += p.mass[i] * -math.Expm1(eps-l)
	}
	return math.Min(d, 1)
}

// epsilon is the smallest ε ≥ 0 with δ(ε) ≤ delta (+Inf when the mass at
// +∞ alone exceeds delta). Between consecutive losses l_{j−1} ≤ ε < l_j,
// δ(ε) = inf + S_j − e^ε·E_j with S_j = Σ_{i≥j} p_i and E_j = Σ_{i≥j} p_i·e^{−l_i},
// solved for ε on each interval from the top down.
func (p *pld) epsilon(delta float64) float64 {
	if p.inf > delta {
		return math.Inf(1)
	}
	var s, e float64
	for j := len(p.mass) - 1; j >= 0; j-- {
		lj := float64(p.offset+j) * p.interval
		if lj <= 0 {
			break
		}
		s += p.mass[j]
		e += p.mass[j] * math.Exp(-lj)
		if e == 0 {
			continue
		}
		eps := math.Log((p.inf + s - delta) / e)
		lower := float64(p.offset+j-1) * p.interval
		if eps >= lower || j == 0 {
			return math.Max(eps, 0)
		}
	}
	return 0
}

// PLDBracket is a PLD result with its stated error: the true value lies in
// [Lower, Upper], and Upper (the pessimistic estimate) is the one to use.
type PLDBracket struct {
	Upper, Lower float64
}

// PLDAccountant composes Poisson-subsampled Gaussian rounds (add/remove-one
// adjacency, as the Poisson Accountant) as privacy loss distributions.
type PLDAccountant struct {
	opts  PLDOptions
	comps []Composition
}

// NewPLDAccountant returns a PLD accountant with nothing spent.
func NewPLDAccountant(opts PLDOptions) (*PLDAccountant, error) {
	if opts.Interval == 0 {
		opts.Interval = 1e-4
	}
	if opts.MaxMiB == 0 {
		opts.MaxMiB = 512
	}
	if !(opts.Interval > 0 && opts.Interval <= 1) {
		return nil, fmt.Errorf("accountant: PLD interval %v must be in (0, 1]", opts.Interval)
	}
	if opts.MaxMiB < 0 {
		return nil, fmt.Errorf("accountant: PLD memory limit %d MiB must be positive", opts.MaxMiB)
	}
	return &PLDAccountant{opts: opts}, nil
}

// Compose records steps rounds at rate q with noise multiplier z; like
// Accountant.Compose, z must be > 0 and q in [0, 1]. The memory the
// composition will need is checked here, so an impossible setting fails
// before any work.
func (a *PLDAccountant) Compose(z, q float64, steps int) error {
	if !(z > 0) || math.IsInf(z, 1) {
		return fmt.Errorf("accountant: noise multiplier z = %v must be finite and > 0", z)
	}
	if !(q >= 0 && q <= 1) {
		return fmt.Errorf("accountant: sampling rate q = %v is outside [0, 1]", q)
	}
	if steps < 0 {
		return fmt.Errorf("accountant: steps %d < 0", steps)
	}
	comps := append(append([]Composition(nil), a.comps...), Composition{Z: z, Q: q, Steps: steps})
	if need := a.memoryMiB(comps); need > float64(a.opts.MaxMiB) {
		return fmt.Errorf("%w: the PLD of these rounds needs about %.0f MiB at interval %g, over the limit of %d MiB (coarsen the interval or raise the limit)",
			ErrPLDTooLarge, need, a.opts.Interval, a.opts.MaxMiB)
	}
	a.comps = comps
	return nil
}

// ErrPLDTooLarge is returned (wrapped) by Compose when the discretization
// would need more memory than PLDOptions.MaxMiB.
var ErrPLDTooLarge = errors.New("accountant: PLD discretization too large")

// memoryMiB estimates the peak memory of composing comps: the widest
// composed PLD (one step's loss range plus the spread of the sum, ±10
// standard deviations of the composed loss) in the FFT's buffers
// (float64 and complex128 arrays of twice its size, rounded up to a power
// of two).
func (a *PLDAccountant) memoryMiB(comps []Composition) float64 {
	var width, variance float64
	for _, c := range comps {
		if c.Steps == 0 || c.Q == 0 {
			continue
		}
		v := 0.0
		for _, remove := range []bool{true, false} {
			lo, hi := lossRange(c.Z, c.Q, remove)
			width = math.Max(width, hi-lo)
			v = math.Max(v, lossVariance(c.Z, c.Q, remove))
		}
		variance += float64(c.Steps) * v
	}
	bins := (width + 20*math.Sqrt(variance)) / a.opts.Interval
	size := math.Exp2(math.Ceil(math.Log2(2*bins + 1)))
	return size * (8 + 8 + 16 + 16) / (1 << 20)
}

// lossRange is the range of one step's loss in a direction over the x
// that hold all but ~1e-16 of the mass (Φ(−8.3) ≈ 5e-17).
func lossRange(sigma, q float64, remove bool) (lo, hi float64) {
	const t = 8.3
	loss := func(x float64) float64 { return math.Log1p(q * math.Expm1((2*x-1)/(2*sigma*sigma))) }
	if remove {
		return loss(-t * sigma), loss(1 + t*sigma)
	}
	return -loss(t * sigma), -loss(-t * sigma)
}

// lossVariance is the variance of one step's loss in a direction, by the
// midpoint rule over x (an estimate for memoryMiB, not for accounting).
func lossVariance(sigma, q float64, remove bool) float64 {
	const n, t = 4000, 8.3
	lo, hi := -t*sigma, 1+t*sigma
	h := (hi - lo) / n
	var m, m2 float64
	for i := range n {
		x := lo + (float64(i)+0.5)*h
		l := math.Log1p(q * math.Expm1((2*x-1)/(2*sigma*sigma)))
		w := normPDF(x / sigma)
		if remove {
			w = (1-q)*w + q*normPDF((x-1)/sigma)
		} else {
			l = -l
		}
		w *= h / sigma
		m += w * l
		m2 += w * l * l
	}
	return math.Max(m2-m*m, 0)
}

func normPDF(x float64) float64 { return math.Exp(-x*x/2) / math.Sqrt(2*math.Pi) }

// Epsilon is ε at delta for everything composed: the worse of the two
// directions, with its bracket. Errors: delta outside (0, 1).
func (a *PLDAccountant) Epsilon(delta float64) (PLDBracket, error) {
	if err := checkDelta(delta); err != nil {
		return PLDBracket{}, err
	}
	return a.bracket(func(p *pld) float64 { return p.epsilon(delta) }), nil
}

// Delta is δ at eps for everything composed, the worse direction, with its
// bracket. Errors: eps negative.
func (a *PLDAccountant) Delta(eps float64) (PLDBracket, error) {
	if !(eps >= 0) {
		return PLDBracket{}, fmt.Errorf("accountant: epsilon %v must be ≥ 0", eps)
	}
	return a.bracket(func(p *pld) float64 { return p.delta(eps) }), nil
}

// bracket asks query of the composed PLD in both directions, pessimistic
// and optimistic, and keeps the worse direction of each.
func (a *PLDAccountant) bracket(query func(*pld) float64) PLDBracket {
	var out PLDBracket
	for _, remove := range []bool{true, false} {
		for _, pessimistic := range []bool{true, false} {
			p := a.composed(remove, pessimistic)
			if p == nil {
				continue
			}
			if v := query(p); pessimistic {
				out.Upper = math.Max(out.Upper, v)
			} else {
				out.Lower = math.Max(out.Lower, v)
			}
		}
	}
	return out
}

// composed is the PLD of every composed round in one direction (nil when
// nothing is spent).
func (a *PLDAccountant) composed(remove, pessimistic bool) *pld {
	var acc *pld
	for _, c := range a.comps {
		if c.Steps == 0 || c.Q == 0 {
			continue
		}
		p := stepPLD(c.Z, c.Q, remove, pessimistic, a.opts.Interval).selfCompose(c.Steps, pessimistic)
		if acc == nil {
			acc = p
		} else {
			acc = acc.compose(p, pessimistic)
		}
	}
	return acc
}
