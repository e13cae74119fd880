package kernels

import (
	"fmt"
	"math"
)

// AdamWStep holds one step's float32 constants of torch.optim.AdamW as
// train.AdamW.Step computes them (in float64, rounded once).
type AdamWStep struct {
	StepSize     float32 // lr/(1−β1ᵗ)
	SqrtBC2      float32 // √(1−β2ᵗ)
	Decay        float32 // 1 − lr·weight decay
	Beta1, Beta2 float32
	Eps          float32
}

// NewAdamWStep computes the constants of update number step (1 for the
// first) exactly as train.AdamW.Step does.
func NewAdamWStep(lr, beta1, beta2, eps, weightDecay float64, step int) AdamWStep {
	bc1 := 1 - math.Pow(beta1, float64(step))
	bc2 := 1 - math.Pow(beta2, float64(step))
	return AdamWStep{
		StepSize: float32(lr / bc1),
		SqrtBC2:  float32(math.Sqrt(bc2)),
		Decay:    float32(1 - lr*weightDecay),
		Beta1:    float32(beta1),
		Beta2:    float32(beta2),
		Eps:      float32(eps),
	}
}

// AdamW applies one update to n parameters, exactly AdamW.Step:
//
//	m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²
//	p ← p·Decay − StepSize·m/(√v/SqrtBC2 + Eps)
//
// p, g, m, v: n floats (m and v are the moment buffers, zero at the start).
func AdamW(l Launcher, p, g, m, v uintptr, n int, s AdamWStep) error {
	const entry = "adamw"
	if err := checkFinite(entry, namedFloat{"StepSize", s.StepSize}, namedFloat{"SqrtBC2", s.SqrtBC2},
		namedFloat{"Decay", s.Decay}, namedFloat{"Beta1", s.Beta1}, namedFloat{"Beta2", s.Beta2}, namedFloat{"Eps", s.Eps}); err != nil {
		return err
	}
	if !(s.SqrtBC2 > 0) {
		return fmt.Errorf("kernels: %s: SqrtBC2 = %v, want > 0 (the step number starts at 1)", entry, s.SqrtBC2)
	}
	if err := checkSizes(entry, size{"n", n}); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"p", p}, ptr{"g", g}, ptr{"m", m}, ptr{"v", v}); err != nil {
		return err
	}
	grid, block := elemGrid(int64(n))
	return l.Launch(entry, grid, block, 0, p, g, m, v, int64(n),
		s.StepSize, s.SqrtBC2, s.Decay, s.Beta1, s.Beta2, s.Eps)
}

// SumSq accumulates the squared L2 norm of x into acc in float64:
// acc[0] += Σ x[i]² (ClipGradNorm's sum; call once per gradient tensor,
// then take √ on the host). acc: 1 float64, x: n floats. The blocks' partial
// sums are added atomically, so the result may differ between runs in
// float64's last bits.
func SumSq(l Launcher, acc, x uintptr, n int) error {
	const entry = "sumsq"
	if err := checkSizes(entry, size{"n", n}); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"acc", acc}, ptr{"x", x}); err != nil {
		return err
	}
	g := min((int64(n)+1023)/1024, 1024)
	return l.Launch(entry, [3]uint32{uint32(g), 1, 1}, [3]uint32{256, 1, 1}, 0, acc, x, int64(n))
}
