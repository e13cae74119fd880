package train

import (
	"fmt"
	"math"

	"github.com/kronfed/kronfed/adapter"
)

// AdamWConfig holds the optimizer's hyperparameters. The defaults are the
// Hugging Face Trainer's (torch.optim.AdamW): betas 0.9/0.999, eps 1e-8,
// weight decay 0.
type AdamWConfig struct {
	LR           float64
	Beta1, Beta2 float64
	Eps          float64
	WeightDecay  float64
}

// DefaultAdamW is the paper's optimizer: lr 3e-4 with the Trainer's defaults.
func DefaultAdamW() AdamWConfig {
	return AdamWConfig{LR: 3e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// AdamW is torch.optim.AdamW over a fixed list of tensors. Its moment
// estimates are float32 slices beside each tensor (2× the adapter's memory).
type AdamW struct {
	Cfg    AdamWConfig
	params []adapter.Factor
	m, v   [][]float32
	step   int
}

// NewAdamW prepares the optimizer state for params (which alias the model's
// tensors: Step updates them in place).
func NewAdamW(params []adapter.Factor, cfg AdamWConfig) (*AdamW, error) {
	if !(cfg.LR >= 0) || !(cfg.Beta1 >= 0 && cfg.Beta1 < 1) || !(cfg.Beta2 >= 0 && cfg.Beta2 < 1) || !(cfg.Eps > 0) || cfg.WeightDecay < 0 {
		return nil, fmt.Errorf("adamw: invalid hyperparameters %+v", cfg)
	}
	o := &AdamW{Cfg: cfg, params: params}
	for _, p := range params {
		o.m = append(o.m, make([]float32, len(p.Data)))
		o.v = append(o.v, make([]float32, len(p.Data)))
	}
	return o, nil
}

// Steps is the number of updates taken.
func (o *AdamW) Steps() int { return o.step }

// Step applies one update with learning rate lr, as torch.optim.AdamW does:
//
//	p ← p·(1 − lr·wd)
//	m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²
//	p ← p − (lr/(1−β1ᵗ)) · m / (√v/√(1−β2ᵗ) + eps)
func (o *AdamW) Step(lr float64) {
	o.step++
	c := o.Cfg
	bc1 := 1 - math.Pow(c.Beta1, float64(o.step))
	bc2 := 1 - math.Pow(c.Beta2, float64(o.step))
	stepSize := float32(lr / bc1)
	sqrtBC2 := float32(math.Sqrt(bc2))
	decay := float32(1 - lr*c.WeightDecay)
	b1, b2 := float32(c.Beta1), float32(c.Beta2)
	eps := float32(c.Eps)
	for i, p := range o.params {
		m, v := o.m[i], o.v[i]
		for j, g := range p.Grad {
			m[j] = b1*m[j] + (1-b1)*g
			v[j] = b2*v[j] + (1-b2)*g*g
			denom := float32(math.Sqrt(float64(v[j])))/sqrtBC2 + eps
			p.Data[j] = p.Data[j]*decay - stepSize*m[j]/denom
		}
	}
}

// ClipGradNorm scales all gradients so their global L2 norm is at most
// maxNorm (torch.nn.utils.clip_grad_norm_, as the Trainer's max_grad_norm
// 1.0) and returns the norm before clipping. A non-finite norm is returned as
// an error and nothing is changed: the step should be skipped.
func ClipGradNorm(params []adapter.Factor, maxNorm float64) (float64, error) {
	var ss float64
	for _, p := range params {
		for _, g := range p.Grad {
			ss += float64(g) * float64(g)
		}
	}
	norm := math.Sqrt(ss)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm, fmt.Errorf("gradient norm is %v", norm)
	}
	if maxNorm > 0 && norm > maxNorm {
		s := float32(maxNorm / (norm + 1e-6))
		for _, p := range params {
			for j := range p.Grad {
				p.Grad[j] *= s
			}
		}
	}
	return norm, nil
}

// LinearLR is the Trainer's default schedule without warmup: the learning
// rate falls linearly from base at step 0 to 0 at step total.
func LinearLR(base float64, step, total int) float64 {
	if total <= 0 || step >= total {
		return 0
	}
	return base * float64(total-step) / float64(total)
}
