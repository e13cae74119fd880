package compute

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMaskScale: on every kernel path, MaskScale gives the bits of the
// scalar definition — src·scale where the keep bit is set, src·(+0) where
// not, stored or added — including NaN, ±Inf, signed zeros and denormals,
// with dst aliasing src and with all-kept, all-dropped and mixed words.
func TestMaskScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const words = 5
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
		math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, math.MaxFloat32}
	src := make([]float32, 64*words)
	for i := range src {
		src[i] = float32(rng.NormFloat64())
		if rng.IntN(8) == 0 {
			src[i] = special[rng.IntN(len(special))]
		}
	}
	keep := []uint64{rng.Uint64(), 0, ^uint64(0), rng.Uint64(), 0x8000000000000001}
	const scale = float32(1 / 0.9)
	want := func(base []float32, accumulate bool) []float32 {
		out := append([]float32(nil), base...)
		for i, x := range src {
			m := float32(0)
			if keep[i>>6]>>(i&63)&1 == 1 {
				m = scale
			}
			if accumulate {
				out[i] += x * m
			} else {
				out[i] = x * m
			}
		}
		return out
	}
	same := func(got, want []float32) bool {
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Errorf("element %d (src %v, kept %v): %v (%#x), want %v (%#x)", i, src[i], keep[i>>6]>>(i&63)&1 == 1,
					got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				return false
			}
		}
		return true
	}
	for _, kw := range kernelWidths() {
		withKernel(kw.force, func() {
			base := make([]float32, len(src))
			for i := range base {
				base[i] = float32(rng.NormFloat64())
			}
			base[3] = float32(math.Copysign(0, -1))
			for _, acc := range []bool{false, true} {
				dst := append([]float32(nil), base...)
				MaskScale(dst, src, keep, scale, acc)
				if !same(dst, want(base, acc)) {
					t.Fatalf("%s, accumulate %v", kw.name, acc)
				}
			}
			// In place: dst is src.
			inPlace := append([]float32(nil), src...)
			MaskScale(inPlace, inPlace, keep, scale, false)
			if !same(inPlace, want(make([]float32, len(src)), false)) {
				t.Fatalf("%s, in place", kw.name)
			}
		})
	}
}
