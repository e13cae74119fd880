package secagg

import (
	"crypto/rand"
	"fmt"
	"math"
	"math/bits"
	mrand "math/rand/v2"
)

// Fixed-point encoding shared by the whole cohort (DESIGN §3: with secure
// aggregation the server only sees sums, so every client must use the same
// scale, derived from the round's clipping bound C).
//
// A value x ∈ [−C, C] maps to the level v = (x + C)/(2C)·(2^b − 1) ∈
// [0, 2^b − 1], rounded stochastically to q = ⌊v⌋ + [u < v − ⌊v⌋] with u
// uniform in [0, 1), so E[q] = v exactly. A client with weight w sends w·q.
// Over the clients that survive, S = Σ w_i q_i has
//
//	E[S] = (2^b − 1)/(2C) · (Σ w_i x_i + C·Σ w_i),
//
// so Σ w_i x_i = S·2C/(2^b − 1) − C·Σ w_i is an unbiased estimate
// ([DecodeSum]). The integers sum exactly; only the final scaling is
// floating point.

// checkScale validates the parameters shared by Encode and DecodeSum.
func checkScale(clip float64, b int) error {
	if !(clip > 0) || math.IsInf(clip, 0) {
		return fmt.Errorf("secagg: clipping bound %v, want a finite positive number", clip)
	}
	if b < 1 || b > MaxValueBits {
		return fmt.Errorf("secagg: %d value bits, want 1..%d", b, MaxValueBits)
	}
	return nil
}

// Encode quantizes x to b bits on the fixed grid of [−clip, clip] with
// stochastic rounding and multiplies by the client's integer weight. The
// results lie in [0, weight·(2^b − 1)]. A value outside [−clip, clip] (or
// NaN) is an error: clip first. rng drives the rounding; nil uses a ChaCha8
// stream seeded from crypto/rand.
func Encode(x []float32, clip float64, b int, weight uint64, rng *mrand.Rand) ([]uint64, error) {
	if err := checkScale(clip, b); err != nil {
		return nil, err
	}
	if weight < 1 {
		return nil, fmt.Errorf("secagg: weight must be at least 1")
	}
	levels := uint64(1)<<b - 1
	if hi, _ := bits.Mul64(levels, weight); hi != 0 {
		return nil, fmt.Errorf("secagg: weight %d times %d levels overflows 64 bits", weight, levels)
	}
	if rng == nil {
		var seed [32]byte
		if _, err := rand.Read(seed[:]); err != nil {
			return nil, fmt.Errorf("secagg: seed stochastic rounding: %w", err)
		}
		rng = mrand.New(mrand.NewChaCha8(seed))
	}
	fl := float64(levels)
	out := make([]uint64, len(x))
	for i, xf := range x {
		v := float64(xf)
		if !(v >= -clip && v <= clip) {
			return nil, fmt.Errorf("secagg: value %v at index %d is outside [−%v, %v]", xf, i, clip, clip)
		}
		v = (v + clip) * fl / (2 * clip)
		f := math.Floor(v)
		q := uint64(f)
		if rng.Float64() < v-f {
			q++
		}
		if q > levels { // only reachable through floating-point rounding at +clip
			q = levels
		}
		out[i] = q * weight
	}
	return out, nil
}

// DecodeSum turns an unmasked sum of Encode outputs back into Σ w_i x_i,
// where totalWeight is Σ w_i over the clients whose inputs are in the sum
// (the survivors, not the whole cohort). The estimate is unbiased; its
// error is the rounding noise, at most C/(2^b − 1) per unit of weight.
func DecodeSum(sum []uint64, clip float64, b int, totalWeight uint64) ([]float64, error) {
	if err := checkScale(clip, b); err != nil {
		return nil, err
	}
	if totalWeight < 1 {
		return nil, fmt.Errorf("secagg: total weight must be at least 1")
	}
	levels := uint64(1)<<b - 1
	limit := levels * totalWeight
	if hi, _ := bits.Mul64(levels, totalWeight); hi != 0 {
		limit = math.MaxUint64
	}
	scale := 2 * clip / float64(levels)
	offset := clip * float64(totalWeight)
	out := make([]float64, len(sum))
	for i, s := range sum {
		if s > limit {
			return nil, fmt.Errorf("secagg: sum %d at index %d exceeds total weight %d times %d levels", s, i, totalWeight, levels)
		}
		out[i] = float64(s)*scale - offset
	}
	return out, nil
}
