package compute

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpNeg: ExpNeg is float32(math.Exp(float64(−x))) bit for bit, at
// every tail length of the four-lane loop, for arguments over many
// magnitudes, at the edges of the vector path's range (±708, where
// math.Exp's denormal and overflow branches start beyond) and for ±0,
// ±Inf, NaN and subnormal inputs scattered among ordinary ones.
func TestExpNeg(t *testing.T) {
	special := []float32{0, float32(math.Copysign(0, -1)), 708, -708, 708.25, -708.5, 709, -709.8, 745, 800, -800,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-45, -1e-40, 87.3, -88.7, 0.5, -0.5}
	forBothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(2, 7))
		for _, n := range vecLens() {
			for _, mag := range []float64{0.01, 1, 30, 300} {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(r.NormFloat64() * mag)
					if r.IntN(16) == 0 {
						x[i] = special[r.IntN(len(special))]
					}
				}
				got := make([]float32, n+1)
				got[n] = 42
				ExpNeg(got, x)
				for i, v := range x {
					want := float32(math.Exp(float64(-v)))
					if math.Float32bits(got[i]) != math.Float32bits(want) && !(math.IsNaN(float64(want)) && math.IsNaN(float64(got[i]))) {
						t.Fatalf("n=%d: ExpNeg(%g) = %g (%#x), want %g (%#x)", n, v, got[i], math.Float32bits(got[i]), want, math.Float32bits(want))
					}
				}
				if got[n] != 42 {
					t.Fatalf("n=%d: wrote past the end", n)
				}
			}
		}
		for _, v := range special { // each alone in a full group of four
			x := []float32{v, v, v, v}
			got := make([]float32, 4)
			ExpNeg(got, x)
			want := float32(math.Exp(float64(-v)))
			if math.Float32bits(got[0]) != math.Float32bits(want) && !math.IsNaN(float64(v)) {
				t.Fatalf("ExpNeg(%g) = %g, want %g", v, got[0], want)
			}
		}
	})
}
