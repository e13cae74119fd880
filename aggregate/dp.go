package aggregate

// Client-level differential privacy for federated averaging (DP-FedAvg,
// McMahan, Ramage, Talwar, Zhang 2018, "Learning Differentially Private
// Recurrent Language Models"), with the adaptive clipping of Andrew, Thakkar,
// McMahan, Ramaswamy 2021, "Differentially Private Learning with Adaptive
// Clipping" (NeurIPS 2021, arXiv:1905.03871).
//
// What is released and what is private
//
// A round takes the clients' updates Δ_i = local_i − global (Sets of the
// global adapter's shape) and releases
//
//	Δ̄ = (Σ_i clip_C(Δ_i) + N(0, σ² I)) / m,   σ = z·C,   clip_C(Δ) = Δ·min(1, C/‖Δ‖₂)
//
// with ‖·‖₂ taken over the whole update (every factor of every module and
// every dense tensor, as one vector) and m = ExpectedClients a fixed
// denominator (the expected cohort size, not the number of updates that
// arrived: dividing by the actual count would make the denominator depend on
// the data). Under add/remove-one-client adjacency the clipped sum has L2
// sensitivity C, so one round is the Gaussian mechanism with noise
// multiplier z (with adaptive clipping σ = z_Δ·C, and the round is still
// worth exactly z, below); an accountant composes rounds (and amplification
// by sampling, q = m / population) from z. Accounting is not done here.
//
// Updates are not weighted. FedAvg's example-count weights p_i would let one
// client contribute p_i·C with p_i data-dependent and unbounded by C, which
// breaks the sensitivity bound; under DP every client counts once and at
// most C, and Update.Weight is not used.
//
// Adaptive clipping (Andrew et al. 2021, Algorithm 1 with the geometric
// update). Each client's bit b_i = 1 if ‖Δ_i‖ ≤ C (its update was NOT
// clipped), else 0. The server releases a noisy estimate of the unclipped
// fraction and moves C geometrically toward the target quantile γ:
//
//	b̄ = (Σ_i (b_i − ½) + N(0, σ_b²)) / m + ½,   clamped to [0, 1]
//	C ← C·exp(−η_C·(b̄ − γ))
//
// so C grows when too many updates are clipped (b̄ < γ) and shrinks when too
// few are (b̄ > γ); a round changes C by at most a factor exp(η_C). The bits
// are centred (b_i − ½) as in TensorFlow Privacy's QuantileEstimatorQuery, so
// the count has sensitivity ½ under add/remove. Divide the clipped sum by its
// noise std z_Δ·C and the centred count by σ_b: adding or removing one client
// moves the pair by at most √(z_Δ⁻² + (2σ_b)⁻²) in L2 against unit noise, so
// the round as a whole — update and count — is exactly one Gaussian mechanism
// with multiplier z (also under sampling, for the accountant) when
//
//	z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2),   which needs 2σ_b > z (σ_b > z/2)
//
// (the joint privacy analysis of Andrew et al. 2021; implemented the same way
// by TensorFlow Federated's adaptive_clip_noise_params, which raises the same
// error when z ≥ 2σ_b). DP.NoiseMultiplier is that total z, what an
// accountant is given; the noise actually added to the sum is z_Δ·C > z·C.
// The paper suggests γ = 0.5 (the median), η_C = 0.2 and σ_b = m/20.
// With the centred bits, b̄ is biased toward ½ by (m − n)/(2m) when n ≠ m
// updates arrive; with n = m and no noise it is the unclipped fraction.
//
// Floating point (Mironov 2012, "On significance of the least significant
// bits for differential privacy"; Jin, McMurtry, Rubinstein, Ohrimenko 2022,
// "Are we there yet? Timing and floating-point attacks on differential
// privacy systems"). Adding textbook floating-point noise to a value x leaks
// x through which floating-point numbers the result can take: the set of
// reachable outputs near a given value depends on x's low bits (spacing of
// x + n differs with x), and near zero float32 is fine enough for that to
// be visible. What this file does:
//
//   - The noise is generated in float64 with ~53 bits of resolution (Box–
//     Muller on uniforms that reach every float64 in (0, 1], so there are no
//     gaps at the 2⁻³²-level of 32-bit ziggurat samplers and the tail is not
//     cut at 8.6σ as with 53-bit uniforms), and added to the float64 sum.
//   - The noisy value is snapped to a fixed grid gℤ, g a power of two with
//     σ/2¹¹ < g ≤ σ/2¹⁰ (the idea of the snapping mechanism and of the
//     granularity in Google's differential-privacy library, "Secure Noise
//     Generation"). The output's support is then gℤ whatever the input, every
//     grid point is reached with probability ≈ the Gaussian mass of its cell
//     (the noise's own resolution, ~σ·2⁻⁵⁰, and the float64 rounding of
//     x + n, |x + n|·2⁻⁵³, are tiny fractions of g: about 2⁻³⁹ and
//     2⁻⁴²·|x + n|/σ), and snapping is post-processing of x + n, so it
//     costs no privacy. It adds variance g²/12 ≤ σ²·2⁻²⁰/12: nothing.
//   - Only then is the result divided by m and rounded to float32:
//     deterministic functions of the snapped value, hence post-processing.
//   - The noisy clipped count of adaptive clipping is snapped the same way.
//
// What is not claimed: the float64 Gaussian is not an exact sampler (log,
// sqrt and sincos round), so the guarantee is that of the ideal Gaussian
// mechanism up to per-cell probability errors estimated (heuristically, not
// proved) at around 2⁻³⁹ relative; a proof at the bit level needs an exact
// discrete Gaussian sampler (Canonne, Kamath, Steinke 2020) over integers,
// which this does not implement. Timing side channels
// (Jin et al.) are out of scope: Box–Muller's cost does not depend on the
// data, but nothing here is written to constant time.

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	mrand "math/rand/v2"

	"github.com/kronfed/kronfed/adapter"
)

// NoiseSource draws independent standard normal samples, N(0, 1). A source
// is not safe for concurrent use. For privacy it must be unpredictable to
// everyone who sees the output (CryptoNoise); SeededNoise is for reproducible
// simulations only. Any other implementation should give samples with about
// 53 bits of resolution: the snapping grid (see the file comment) assumes the
// noise is much finer than g ≈ σ/2¹⁰. Go's math/rand NormFloat64 (a 32-bit
// ziggurat, spacing ~σ·2⁻²⁹) is finer than g but leaves per-cell errors near
// 2⁻¹⁸ instead of ~2⁻³⁹; prefer the sources here.
type NoiseSource interface {
	NormFloat64() float64
}

// boxMuller turns a ChaCha8 stream into standard normals, two per pair of
// uniforms (the cosine and the sine of the same angle are independent).
type boxMuller struct {
	rng      *mrand.ChaCha8
	spare    float64
	hasSpare bool
	label    string
}

// NormFloat64 returns r·cos θ and then r·sin θ, with r = √(−2 ln u₁),
// θ = 2π u₂, u₁ uniform on (0, 1] at full float64 resolution and u₂ uniform
// on [0, 1) in steps of 2⁻⁵³.
func (b *boxMuller) NormFloat64() float64 {
	if b.hasSpare {
		b.hasSpare = false
		return b.spare
	}
	u1 := uniformOpenClosed(b.rng)
	u2 := float64(b.rng.Uint64()>>11) * 0x1p-53
	r := math.Sqrt(-2 * math.Log(u1))
	s, c := math.Sincos(2 * math.Pi * u2)
	b.spare, b.hasSpare = r*s, true
	return r * c
}

func (b *boxMuller) String() string { return b.label }

// uniformOpenClosed returns a uniform float64 in (0, 1] in which every
// float64 of the interval can occur with probability proportional to the
// width of the reals that round to it (Downey / Campbell): the exponent
// comes from the position of the first 1 bit in an unbounded stream of
// random bits and the 53-bit significand from the bits after it, with a
// sticky low bit so that the conversion rounds without bias. The smallest
// value is ~2⁻¹⁰⁷⁴ instead of 2⁻⁵³, so Box–Muller's radius is not cut at
// √(2·53·ln 2) ≈ 8.57.
func uniformOpenClosed(rng *mrand.ChaCha8) float64 {
	exp := -64
	x := rng.Uint64()
	for x == 0 {
		exp -= 64
		if exp < -1074-64 {
			return math.SmallestNonzeroFloat64 // probability 2⁻¹⁰⁷⁴
		}
		x = rng.Uint64()
	}
	if shift := bits.LeadingZeros64(x); shift > 0 {
		exp -= shift
		x = x<<shift | rng.Uint64()>>(64-shift)
	}
	x |= 1 // sticky bit: the bits below the 64 drawn are not all zero
	return math.Ldexp(float64(x), exp)
}

// CryptoNoise returns a new NoiseSource for real (private) use: Box–Muller
// over math/rand/v2's ChaCha8 keyed with 32 bytes from crypto/rand.
//
// Why a keyed stream instead of reading crypto/rand for every sample:
// ChaCha8 is documented by Go as a cryptographically strong generator (it is
// the C2SP chacha8rand construction the Go runtime uses; it rekeys itself
// from its own output about every kilobyte, so a later compromise of its
// state does not reveal earlier noise), and with a 256-bit key from the
// operating system its output cannot be told apart from uniform bits by an
// efficient adversary — which is all the DP argument needs from the
// uniforms. It is a "keyed cryptographic stream" in the sense of the design
// handbook, and much cheaper than reading crypto/rand for every sample of an
// adapter with millions of parameters. Each call makes an independent
// source; a source must not be shared between goroutines.
func CryptoNoise() NoiseSource {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		// crypto/rand.Read does not fail since Go 1.24 (it aborts the
		// program instead); keep the check for clarity.
		panic(fmt.Sprintf("aggregate: crypto/rand: %v", err))
	}
	return &boxMuller{rng: mrand.NewChaCha8(key), label: "crypto noise: Box–Muller over ChaCha8 keyed from crypto/rand"}
}

// SeededNoise returns a deterministic NoiseSource for reproducible
// simulations. It is NOT private: anyone who knows or guesses the seed can
// subtract the noise. Never use it for a real deployment; its String says so
// in logs and reports.
func SeededNoise(seed uint64) NoiseSource {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:8], seed)
	copy(key[8:], "kronfed/aggregate/seeded") // domain separation, 24 bytes
	return &boxMuller{rng: mrand.NewChaCha8(key), label: fmt.Sprintf("seeded noise: for reproducible simulation only, NOT private (seed %d)", seed)}
}

// granularityBits sets the snapping grid: g is the power of two with
// σ/2^(granularityBits+1) < g ≤ σ/2^granularityBits.
const granularityBits = 10

// Granularity returns the grid that noise of standard deviation sigma is
// snapped to (see the file comment): the power of two g with
// σ/2¹¹ < g ≤ σ/2¹⁰.
func Granularity(sigma float64) float64 {
	_, e := math.Frexp(sigma) // σ = f·2^e, f ∈ [½, 1)
	return math.Ldexp(1, e-1-granularityBits)
}

// snap rounds y to the nearest multiple of g (ties to even). g is a power
// of two, so y/g and the product are exact.
func snap(y, g float64) float64 {
	return math.RoundToEven(y/g) * g
}

// noisy returns snap(x + sigma·n, g) for a fresh n ~ N(0, 1), in float64.
func noisy(x, sigma, g float64, src NoiseSource) float64 {
	return snap(x+sigma*src.NormFloat64(), g)
}

// CheckClip reports why c cannot be a clipping norm: it must be positive
// and finite.
func CheckClip(c float64) error {
	if !(c > 0) || math.IsInf(c, 1) {
		return fmt.Errorf("dp: clipping norm %v must be positive and finite", c)
	}
	return nil
}

// ClipUpdate scales the whole update delta in place so that its L2 norm (all
// tensors together, see Norm) is at most c, and returns the norm before
// clipping and whether it was clipped (norm > c). The direction is kept: every
// element is multiplied by the same factor (c/norm)·(1 − 2⁻²³), in float64,
// then rounded to float32. The 2⁻²³ margin absorbs the rounding, so the bound
// holds for the float32 values actually uploaded (checked; should it not, the
// factor is shrunk further), and the clipped norm is c to within 2⁻²².
//
// An update holding NaN or ±Inf has no meaningful norm: it is set to zero
// (the only value that certainly respects the bound) and reported as clipped
// with its NaN or +Inf norm, which the caller should treat as a failed client.
//
// c must be positive and finite (CheckClip); ClipUpdate panics otherwise,
// since there is no safe way to proceed with it. Check a clip that comes from
// a file or the network with CheckClip first, or use AddLocalNoise or
// DP.Aggregate, which return errors.
func ClipUpdate(delta *adapter.Set, c float64) (norm float64, clipped bool) {
	if err := CheckClip(c); err != nil {
		panic("aggregate: ClipUpdate: " + err.Error())
	}
	ps := delta.Params()
	norm = adapter.ParamsNorm(ps)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		for _, p := range ps {
			clear(p.Data)
		}
		return norm, true
	}
	if norm <= c {
		return norm, false
	}
	// (1 − 2⁻²³) absorbs the float32 rounding (≤ 2⁻²⁴ relative per element),
	// so for normal floats one pass suffices.
	scale := c / norm * (1 - 0x1p-23)
	for try := 0; ; try++ {
		for _, p := range ps {
			for k, v := range p.Data {
				p.Data[k] = float32(float64(v) * scale)
			}
		}
		if adapter.ParamsNorm(ps) <= c {
			return norm, true
		}
		if try == 8 {
			// Each further pass lowers every normal float32 by at least one
			// ulp; only updates of subnormal numbers could get here. Zero
			// respects the bound.
			for _, p := range ps {
				clear(p.Data)
			}
			return norm, true
		}
		scale = 1 - 0x1p-22
	}
}

// AdaptiveClip configures the adaptive clipping of Andrew et al. 2021 (see
// the file comment): the clipping norm follows the γ-quantile of the update
// norms, estimated privately.
type AdaptiveClip struct {
	// TargetQuantile γ in (0, 1): the fraction of updates to leave unclipped;
	// 0.5 clips at the median norm (the paper's recommendation).
	TargetQuantile float64
	// LearningRate η_C > 0 of the geometric update C ← C·exp(−η_C(b̄ − γ));
	// C moves by at most a factor exp(η_C) a round. The paper uses 0.2.
	LearningRate float64
	// CountNoiseStd σ_b: the standard deviation of the Gaussian noise added to
	// the count of unclipped updates. It must exceed z/2 for the total
	// privacy cost to equal that of z (see AdaptiveNoiseMultiplier); the paper
	// suggests expected clients / 20.
	CountNoiseStd float64
}

// DefaultAdaptiveClip returns the paper's suggested settings for a cohort of
// expectedClients: γ = 0.5, η_C = 0.2, σ_b = expectedClients/20.
func DefaultAdaptiveClip(expectedClients float64) *AdaptiveClip {
	return &AdaptiveClip{TargetQuantile: 0.5, LearningRate: 0.2, CountNoiseStd: expectedClients / 20}
}

// AdaptiveNoiseMultiplier returns z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2), the noise
// multiplier to apply to the clipped sum so that the update and the noisy
// unclipped count (noise σ_b, sensitivity ½) together cost exactly as much
// privacy as one Gaussian mechanism with multiplier z (Andrew et al. 2021;
// TensorFlow Federated's adaptive_clip_noise_params). It is defined only for
// 2σ_b > z.
func AdaptiveNoiseMultiplier(z, sigmaB float64) (float64, error) {
	if !(z > 0) || math.IsInf(z, 1) {
		return 0, fmt.Errorf("dp: noise multiplier z = %v must be positive and finite", z)
	}
	if !(sigmaB > 0) || math.IsInf(sigmaB, 1) {
		return 0, fmt.Errorf("dp: adaptive clipping: count noise std σ_b = %v must be positive and finite (without noise the clipped count is not private)", sigmaB)
	}
	if !(2*sigmaB > z) {
		return 0, fmt.Errorf("dp: adaptive clipping: count noise std σ_b = %v must exceed z/2 = %v: z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2) is undefined otherwise (the count alone would spend the whole budget of z); raise σ_b (the paper suggests expected clients/20) or lower z", sigmaB, z/2)
	}
	inv := 1/(z*z) - 1/(4*sigmaB*sigmaB)
	zd := 1 / math.Sqrt(inv)
	if math.IsInf(zd, 0) || math.IsNaN(zd) {
		return 0, fmt.Errorf("dp: adaptive clipping: σ_b = %v is too close to z/2 = %v: z_Δ overflows", sigmaB, z/2)
	}
	return zd, nil
}

func (a *AdaptiveClip) validate(z float64) (float64, error) {
	if !(a.TargetQuantile > 0 && a.TargetQuantile < 1) {
		return 0, fmt.Errorf("dp: adaptive clipping: target quantile γ = %v must be in (0, 1)", a.TargetQuantile)
	}
	if !(a.LearningRate > 0) || math.IsInf(a.LearningRate, 1) {
		return 0, fmt.Errorf("dp: adaptive clipping: learning rate η = %v must be positive and finite", a.LearningRate)
	}
	return AdaptiveNoiseMultiplier(z, a.CountNoiseStd)
}

// DP is central DP-FedAvg with the fixed-denominator estimator: the server
// (trusted with the individual updates, or given only their sum by secure
// aggregation) clips each update, sums, adds Gaussian noise once and divides
// by the expected cohort size. See the file comment for the formulas and what
// is private. DP is enabled by using it: there is no "DP with zero noise";
// to run without DP, aggregate with FedAvg instead.
type DP struct {
	// Clip is C, the L2 bound on each client's whole update. With Adaptive
	// set, Aggregate replaces it with the next round's clip.
	Clip float64
	// NoiseMultiplier is z > 0, the total noise multiplier the accountant
	// uses. Without adaptive clipping the noise on the sum has std z·C; with
	// it, z_Δ·C (see AdaptiveNoiseMultiplier).
	NoiseMultiplier float64
	// ExpectedClients is m > 0, the fixed denominator: the expected number of
	// clients per round (cohort size, or sampling rate × population).
	ExpectedClients float64
	// Adaptive, when set, adapts Clip every round (Andrew et al. 2021).
	Adaptive *AdaptiveClip
	// Noise is where the Gaussian samples come from; nil means CryptoNoise,
	// made on first use and kept.
	Noise NoiseSource
}

// Validate checks the configuration and returns the noise multiplier to
// apply to the clipped sum (z, or z_Δ with adaptive clipping).
func (d *DP) Validate() (float64, error) {
	if err := CheckClip(d.Clip); err != nil {
		return 0, err
	}
	z := d.NoiseMultiplier
	if !(z > 0) || math.IsInf(z, 1) {
		return 0, fmt.Errorf("dp: noise multiplier z = %v must be positive and finite (z = 0 adds no noise and gives no privacy; aggregate with FedAvg to run without DP)", z)
	}
	if m := d.ExpectedClients; !(m > 0) || math.IsInf(m, 1) {
		return 0, fmt.Errorf("dp: expected clients per round %v must be positive and finite", m)
	}
	if d.Adaptive != nil {
		return d.Adaptive.validate(z)
	}
	return z, nil
}

// DPReport describes one DP round. Norms, Clipped and Unclipped are computed
// from the individual updates and are NOT private: they are for the trusted
// server's own diagnostics, never to be published or sent to clients. The
// other fields are functions of the configuration and of the noisy outputs
// and may be released.
type DPReport struct {
	Clients   int       // updates aggregated (n; the denominator is still m)
	Norms     []float64 // each update's L2 norm before clipping (NOT private)
	Clipped   int       // updates with norm > Clip that the server clipped (NOT private)
	Unclipped int       // Σ b_i, reported or measured (NOT private)

	Clip            float64 // C used this round
	NoiseMultiplier float64 // multiplier applied to the sum: z, or z_Δ with adaptive clipping
	NoiseStd        float64 // std of the noise added to the clipped sum: NoiseMultiplier·C
	MeanNoiseStd    float64 // std of the noise in each coordinate of the result: NoiseStd/m
	Granularity     float64 // grid the noisy sum was snapped to
	Noise           string  // the noise source, e.g. "seeded noise: … NOT private"

	// Adaptive clipping only.
	CountNoiseStd     float64 // σ_b
	UnclippedFraction float64 // b̄, the noisy estimate of the unclipped fraction (private)
	NextClip          float64 // C for the next round (also stored in DP.Clip)
}

// Aggregate returns the noised average of this round's deltas,
//
//	Δ̄ = (Σ_i clip_C(Δ_i) + N(0, (z_Δ·C)² I)) / m,
//
// as a new Set of the deltas' shape, and a report. The deltas are not
// modified: the server clips every one of them (ClipUpdate's rule, in
// float64) whether or not the client already did, so the sensitivity bound
// never rests on the clients. Every delta counts once; there are no weights.
//
// unclipped, if not nil, holds each client's own bit b_i (true: its update
// norm was ≤ C before any clipping) for adaptive clipping. Clients that clip
// before upload must report it, since the server then sees norms ≤ C for
// every update; with unclipped nil the server measures b_i = ‖Δ_i‖ ≤ C
// itself. Without adaptive clipping it is ignored.
//
// With Adaptive set, Aggregate also stores the next round's clip in d.Clip.
// An error (bad configuration, no deltas, mismatched shapes, NaN or ±Inf in
// a delta) leaves d unchanged, except that a nil Noise is set to CryptoNoise.
func (d *DP) Aggregate(deltas []*adapter.Set, unclipped []bool) (*adapter.Set, DPReport, error) {
	zd, err := d.Validate()
	if err != nil {
		return nil, DPReport{}, err
	}
	if len(deltas) == 0 {
		return nil, DPReport{}, errors.New("dp: no deltas (an empty round still needs a delta of the adapter's shape to noise; pass a zero Set)")
	}
	if unclipped != nil && len(unclipped) != len(deltas) {
		return nil, DPReport{}, fmt.Errorf("dp: %d unclipped bits for %d deltas", len(unclipped), len(deltas))
	}
	for i, s := range deltas {
		if s == nil {
			return nil, DPReport{}, fmt.Errorf("dp: delta %d is nil", i)
		}
		if err := deltas[0].SameShape(s); err != nil {
			return nil, DPReport{}, fmt.Errorf("dp: delta %d: %w", i, err)
		}
		if err := s.CheckFinite(); err != nil {
			return nil, DPReport{}, fmt.Errorf("dp: delta %d: %w", i, err)
		}
	}
	if d.Noise == nil {
		d.Noise = CryptoNoise()
	}
	c := d.Clip
	rep := DPReport{Clients: len(deltas), Norms: make([]float64, len(deltas)), Clip: c, NoiseMultiplier: zd}

	out := deltas[0].Clone()
	dst := out.Params()
	sums := make([][]float64, len(dst))
	for j, p := range dst {
		sums[j] = make([]float64, len(p.Data))
	}
	for i, s := range deltas {
		ps := s.Params()
		norm := adapter.ParamsNorm(ps)
		rep.Norms[i] = norm
		scale := 1.0
		if norm > c {
			scale = c / norm
			rep.Clipped++
		}
		b := norm <= c
		if unclipped != nil {
			b = unclipped[i]
		}
		if b {
			rep.Unclipped++
		}
		for j, p := range ps {
			sj := sums[j]
			for k, v := range p.Data {
				sj[k] += scale * float64(v)
			}
		}
	}

	d.finish(out, sums, &rep)
	return out, rep, nil
}

// finish noises the clipped sums into out (divided by the expected cohort
// size m) and, with adaptive clipping, moves d.Clip; rep holds Clip,
// NoiseMultiplier, Clients and Unclipped.
func (d *DP) finish(out *adapter.Set, sums [][]float64, rep *DPReport) {
	c, m := rep.Clip, d.ExpectedClients
	sigma := rep.NoiseMultiplier * c
	g := Granularity(sigma)
	for j, p := range out.Params() {
		clear(p.Grad)
		for k, x := range sums[j] {
			p.Data[k] = float32(noisy(x, sigma, g, d.Noise) / m)
		}
	}
	rep.NoiseStd, rep.MeanNoiseStd, rep.Granularity = sigma, sigma/m, g
	if s, ok := d.Noise.(fmt.Stringer); ok {
		rep.Noise = s.String()
	} else {
		rep.Noise = fmt.Sprintf("%T", d.Noise)
	}

	if a := d.Adaptive; a != nil {
		sb := a.CountNoiseStd
		centred := float64(rep.Unclipped) - float64(rep.Clients)/2
		bbar := noisy(centred, sb, Granularity(sb), d.Noise)/m + 0.5
		bbar = math.Min(1, math.Max(0, bbar))
		next := c * math.Exp(-a.LearningRate*(bbar-a.TargetQuantile))
		rep.CountNoiseStd, rep.UnclippedFraction, rep.NextClip = sb, bbar, next
		d.Clip = next
	}
}

// NoiseSum is Aggregate for a sum the server cannot take apart: the sum of
// clients updates that the clients clipped to d.Clip themselves, as secure
// aggregation delivers it. It returns (sum + N(0, (z_Δ·C)² I)) / m and, with
// adaptive clipping, moves d.Clip using unclipped, the number of the
// clients whose update needed no clipping (itself a secure sum of
// their bits). The sensitivity bound rests on the clients' clipping here:
// the server never sees an update to clip.
func (d *DP) NoiseSum(sum *adapter.Set, clients, unclipped int) (*adapter.Set, DPReport, error) {
	zd, err := d.Validate()
	if err != nil {
		return nil, DPReport{}, err
	}
	switch {
	case sum == nil:
		return nil, DPReport{}, errors.New("dp: no sum")
	case clients < 1 || unclipped < 0 || unclipped > clients:
		return nil, DPReport{}, fmt.Errorf("dp: %d unclipped of %d clients", unclipped, clients)
	}
	if err := sum.CheckFinite(); err != nil {
		return nil, DPReport{}, fmt.Errorf("dp: sum: %w", err)
	}
	if d.Noise == nil {
		d.Noise = CryptoNoise()
	}
	out := sum.Clone()
	ps := out.Params()
	sums := make([][]float64, len(ps))
	for j, p := range ps {
		sums[j] = make([]float64, len(p.Data))
		for k, v := range p.Data {
			sums[j][k] = float64(v)
		}
	}
	rep := DPReport{Clients: clients, Unclipped: unclipped, Clip: d.Clip, NoiseMultiplier: zd}
	d.finish(out, sums, &rep)
	return out, rep, nil
}

// AddLocalNoise is local DP: the client clips its own update to c (in place,
// ClipUpdate) and adds N(0, (z·c)²) to every coordinate (in float64, snapped
// to Granularity(z·c), then rounded to float32) before upload, so the server
// never sees an unnoised update. src nil means CryptoNoise. It returns the
// norm before clipping and whether the update was clipped.
//
// Sensitivity: between any two clients' clipped updates the L2 distance is up
// to 2c (not c, as in the central add/remove setting), so this is the
// Gaussian mechanism with effective multiplier z/2 for replacing a client's
// data; pass 2z for multiplier z. The server then averages the noisy updates
// (each carries its own noise: the average's noise std is z·c/√n, far more
// than central DP's z·c/m for the same z).
func AddLocalNoise(delta *adapter.Set, c, z float64, src NoiseSource) (norm float64, clipped bool, err error) {
	if delta == nil {
		return 0, false, errors.New("dp: local noise: nil delta")
	}
	if err := CheckClip(c); err != nil {
		return 0, false, fmt.Errorf("dp: local noise: %w", err)
	}
	if !(z > 0) || math.IsInf(z, 1) {
		return 0, false, fmt.Errorf("dp: local noise: noise multiplier z = %v must be positive and finite", z)
	}
	if err := delta.CheckFinite(); err != nil {
		return 0, false, fmt.Errorf("dp: local noise: %w", err)
	}
	if src == nil {
		src = CryptoNoise()
	}
	norm, clipped = ClipUpdate(delta, c)
	sigma := z * c
	g := Granularity(sigma)
	for _, p := range delta.Params() {
		for k, v := range p.Data {
			p.Data[k] = float32(noisy(float64(v), sigma, g, src))
		}
	}
	return norm, clipped, nil
}
