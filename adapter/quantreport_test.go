package adapter

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kronfed/kronfed/adapter/quant"
)

// TestMeasureQuantErrorMatchesDense checks the factored Frobenius error
// against ΔW and ΔW_q materialized in float64, and that the error shrinks with
// more bits.
func TestMeasureQuantErrorMatchesDense(t *testing.T) {
	for ci, c := range []layerCase{kronCase(48, 40, 4, 8), kronCase(64, 128, 16, 8), loraCase(48, 40, 8)} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 11))
			l := c.make(rng)
			randomize(l, rng)
			prevRel := math.Inf(1)
			for _, bits := range []int{2, 4, 8} {
				q, err := QuantizeLayer(l, quant.Scheme{Bits: bits, Symmetric: true, PerRow: true}, nil)
				if err != nil {
					t.Fatal(err)
				}
				e, err := MeasureQuantError(l, q, bits)
				if err != nil {
					t.Fatal(err)
				}
				s := float64(l.Scale())
				w, wq := deltaW64(t, l), deltaW64(t, q)
				var num, den, maxErr float64
				for i := range w {
					d := (w[i] - wq[i]) / s
					num += d * d
					den += w[i] / s * w[i] / s
					maxErr = math.Max(maxErr, math.Abs(d))
				}
				if math.Abs(e.Norm-math.Sqrt(den)) > 1e-9*math.Sqrt(den) {
					t.Errorf("%d bits: ‖ΔW‖ %.10g, dense %.10g", bits, e.Norm, math.Sqrt(den))
				}
				if math.Abs(e.Err-math.Sqrt(num)) > 1e-6*math.Sqrt(den) {
					t.Errorf("%d bits: ‖ΔW−ΔWq‖ %.10g, dense %.10g", bits, e.Err, math.Sqrt(num))
				}
				t.Logf("%d bits: rel err %.3g, max entry err %.3g, paper bound %.3g", bits, e.Rel(), maxErr, e.Bound)
				if e.Rel() >= prevRel {
					t.Errorf("%d bits: relative error %.4g not below %.4g at fewer bits", bits, e.Rel(), prevRel)
				}
				prevRel = e.Rel()
			}
		})
	}
}
