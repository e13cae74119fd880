//go:build amd64 && !purego

package compute

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpNegFloat64: the vector path's float64 results, before the
// rounding to float32 that would hide a changed last bit, are math.Exp's
// bits for every argument in its range: each operation of math.Exp's FMA
// branch is there, in its order.
func TestExpNegFloat64(t *testing.T) {
	if !useAsm {
		t.Skip("no vector path on this CPU")
	}
	r := rand.New(rand.NewPCG(4, 2))
	const n = 1 << 16
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * []float64{0.01, 1, 30, 300}[i%4])
		x[i] = float32(math.Max(-expNegLimit, math.Min(expNegLimit, float64(x[i]))))
	}
	got := make([]float64, n)
	expNeg64AVX(&got[0], &x[0], n)
	for i, v := range x {
		if want := math.Exp(float64(-v)); math.Float64bits(got[i]) != math.Float64bits(want) {
			t.Fatalf("exp(%g) = %.17g, math.Exp %.17g", -v, got[i], want)
		}
	}
}
