package task

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
)

// Streams of the PCG generator (its second seed word), one per use, so that the
// same user seed gives independent draws for splits, partitions and families.
const (
	streamSplit     uint64 = 0x73706c6974 // "split"
	streamIID       uint64 = 0x696964     // "iid"
	streamDirichlet uint64 = 0x6469726963 // "diric"
)

// rng draws integers and floats from a rand.Source using only its Uint64
// stream, so results depend on the PCG algorithm alone (fixed by math/rand/v2)
// and not on how rand.Rand's helpers are implemented in a given Go release.
type rng struct{ src rand.Source }

func newRNG(seed, stream uint64) *rng { return &rng{rand.NewPCG(seed, stream)} }

// intN returns a uniform integer in [0, n) (Lemire's multiply-shift with
// rejection, unbiased).
func (r *rng) intN(n int) int {
	if n <= 0 {
		panic("task: intN of non-positive bound")
	}
	un := uint64(n)
	hi, lo := bits.Mul64(r.src.Uint64(), un)
	if lo < un {
		thresh := -un % un
		for lo < thresh {
			hi, lo = bits.Mul64(r.src.Uint64(), un)
		}
	}
	return int(hi)
}

// float64 returns a uniform float in [0, 1) with 53 random bits.
func (r *rng) float64() float64 { return float64(r.src.Uint64()>>11) * 0x1p-53 }

// openFloat64 returns a uniform float in (0, 1].
func (r *rng) openFloat64() float64 { return float64((r.src.Uint64()>>11)+1) * 0x1p-53 }

// perm returns a uniform permutation of 0..n-1 (Fisher–Yates).
func (r *rng) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r.shuffle(p)
	return p
}

func (r *rng) shuffle(p []int) {
	for i := len(p) - 1; i > 0; i-- {
		j := r.intN(i + 1)
		p[i], p[j] = p[j], p[i]
	}
}

// norm returns a standard normal deviate (Marsaglia's polar method).
func (r *rng) norm() float64 {
	for {
		u := 2*r.float64() - 1
		v := 2*r.float64() - 1
		s := u*u + v*v
		if s > 0 && s < 1 {
			return u * math.Sqrt(-2*math.Log(s)/s)
		}
	}
}

// logGamma returns the logarithm of a Gamma(shape, 1) deviate: Marsaglia and
// Tsang (2000) for shape ≥ 1; for shape < 1 their boost
// Gamma(a) = Gamma(a+1)·U^(1/a), kept in log space so tiny shapes do not
// underflow to 0.
func (r *rng) logGamma(shape float64) float64 {
	if shape < 1 {
		return r.logGamma(shape+1) + math.Log(r.openFloat64())/shape
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.norm()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.openFloat64()
		x2 := x * x
		if u < 1-0.0331*x2*x2 || math.Log(u) < 0.5*x2+d*(1-v+math.Log(v)) {
			return math.Log(d) + math.Log(v)
		}
	}
}

func checkShape(shape float64) {
	if !(shape > 0) || math.IsInf(shape, 1) {
		panic(fmt.Sprintf("task: gamma shape %v must be positive and finite", shape))
	}
}

// Gamma returns a Gamma(shape, scale 1) deviate drawn from src (mean and
// variance both equal shape), by Marsaglia–Tsang with the shape<1 boost. For
// very small shapes the true value can be below the smallest float64 and is
// returned as 0; Dirichlet works in log space and is not affected. It panics
// unless 0 < shape < +Inf.
func Gamma(src rand.Source, shape float64) float64 {
	checkShape(shape)
	return math.Exp((&rng{src}).logGamma(shape))
}

// Dirichlet returns a draw from Dirichlet(alpha) using src: independent
// Gamma(alpha_i) deviates normalized to sum 1 (in log space). It panics unless
// every alpha_i is positive and finite.
func Dirichlet(src rand.Source, alpha []float64) []float64 {
	r := &rng{src}
	logs := make([]float64, len(alpha))
	for i, a := range alpha {
		checkShape(a)
		logs[i] = r.logGamma(a)
	}
	return normalizeLogs(logs)
}

// normalizeLogs returns exp(l_i) / Σ exp(l_j), computed stably.
func normalizeLogs(logs []float64) []float64 {
	m := math.Inf(-1)
	for _, l := range logs {
		m = max(m, l)
	}
	p := make([]float64, len(logs))
	var sum float64
	for i, l := range logs {
		p[i] = math.Exp(l - m)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}
