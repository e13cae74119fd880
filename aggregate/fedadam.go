package aggregate

import (
	"fmt"
	"math"

	"github.com/kronfed/kronfed/adapter"
)

// FedAdam is the server optimizer of Reddi et al. (2021), "Adaptive
// Federated Optimization": the round's aggregate minus the current global
// adapter is treated as a pseudo-gradient step Δ, and the global moves by an
// Adam-like update
//
//	m ← β1·m + (1−β1)·Δ,   v ← β2·v + (1−β2)·Δ²,   θ ← θ + η·m/(√v + τ)
//
// (no bias correction, as in the paper). The state lives between rounds.
type FedAdam struct {
	LR, Beta1, Beta2, Tau float64
	m, v                  [][]float64
}

// NewFedAdam uses the paper's defaults for the moments (β1 0.9, β2 0.99) with
// server learning rate lr and adaptivity tau (the paper sweeps 1e-3…1e-1).
func NewFedAdam(lr, tau float64) *FedAdam {
	return &FedAdam{LR: lr, Beta1: 0.9, Beta2: 0.99, Tau: tau}
}

// Step moves global (in place) toward aggregate, a Set of the same shape
// produced by FedAvg or KronExact from this round's updates.
func (o *FedAdam) Step(global, aggregate *adapter.Set) error {
	if err := global.SameShape(aggregate); err != nil {
		return fmt.Errorf("fedadam: %w", err)
	}
	if !(o.LR > 0) || !(o.Tau > 0) || o.Beta1 < 0 || o.Beta1 >= 1 || o.Beta2 < 0 || o.Beta2 >= 1 {
		return fmt.Errorf("fedadam: invalid hyperparameters lr %v, tau %v, betas %v/%v", o.LR, o.Tau, o.Beta1, o.Beta2)
	}
	g, a := global.Params(), aggregate.Params()
	if o.m == nil {
		for _, p := range g {
			o.m = append(o.m, make([]float64, len(p.Data)))
			o.v = append(o.v, make([]float64, len(p.Data)))
		}
	}
	if len(o.m) != len(g) {
		return fmt.Errorf("fedadam: state for %d tensors, adapter has %d", len(o.m), len(g))
	}
	for i := range g {
		m, v := o.m[i], o.v[i]
		for k := range g[i].Data {
			d := float64(a[i].Data[k]) - float64(g[i].Data[k])
			m[k] = o.Beta1*m[k] + (1-o.Beta1)*d
			v[k] = o.Beta2*v[k] + (1-o.Beta2)*d*d
			g[i].Data[k] += float32(o.LR * m[k] / (math.Sqrt(v[k]) + o.Tau))
		}
	}
	return nil
}
