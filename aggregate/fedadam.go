package aggregate

import (
	"bytes"
	"fmt"
	"math"
	"slices"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/safetensors"
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

// Clone returns an optimizer with the same hyperparameters and its own copy
// of the moments, so a step can be tried without touching o.
func (o *FedAdam) Clone() *FedAdam {
	c := *o
	c.m, c.v = cloneRows(o.m), cloneRows(o.v)
	return &c
}

func cloneRows(x [][]float64) [][]float64 {
	if x == nil {
		return nil
	}
	out := make([][]float64, len(x))
	for i := range x {
		out[i] = slices.Clone(x[i])
	}
	return out
}

// momentsFormat names the file MarshalMoments writes.
const momentsFormat = "kronfed-fedadam-moments"

// MarshalMoments encodes the moments as a safetensors file: F64 tensors
// "m.NAME" and "v.NAME" shaped like each factor NAME of shape (the adapter
// the optimizer steps). A nil optimizer, or one before its first step, has
// no moments: it returns nil.
func (o *FedAdam) MarshalMoments(shape *adapter.Set) ([]byte, error) {
	if o == nil || o.m == nil {
		return nil, nil
	}
	params := shape.Params()
	if len(params) != len(o.m) {
		return nil, fmt.Errorf("fedadam: moments for %d tensors, adapter has %d", len(o.m), len(params))
	}
	var tensors []safetensors.Tensor
	for i, p := range params {
		if len(o.m[i]) != len(p.Data) {
			return nil, fmt.Errorf("fedadam: moments of %s hold %d values, the factor %d", p.Name, len(o.m[i]), len(p.Data))
		}
		tensors = append(tensors, safetensors.F64Tensor("m."+p.Name, []int{p.Rows, p.Cols}, o.m[i]),
			safetensors.F64Tensor("v."+p.Name, []int{p.Rows, p.Cols}, o.v[i]))
	}
	var b bytes.Buffer
	if err := safetensors.Write(&b, map[string]string{"format": momentsFormat}, tensors); err != nil {
		return nil, fmt.Errorf("fedadam: %w", err)
	}
	return b.Bytes(), nil
}

// UnmarshalMoments replaces the moments with those MarshalMoments wrote for
// an adapter of shape's layout. Every factor's m and v must be there, F64,
// with the factor's shape, and v must be non-negative; nothing else may be.
func (o *FedAdam) UnmarshalMoments(b []byte, shape *adapter.Set) error {
	f, err := safetensors.Parse(b)
	if err != nil {
		return fmt.Errorf("fedadam moments: %w", err)
	}
	if got := f.Metadata()["format"]; got != momentsFormat {
		return fmt.Errorf("fedadam moments: format %q, want %q", got, momentsFormat)
	}
	params := shape.Params()
	if n := len(f.Tensors()); n != 2*len(params) {
		return fmt.Errorf("fedadam moments: %d tensors, want %d (m and v of %d factors)", n, 2*len(params), len(params))
	}
	m, v := make([][]float64, len(params)), make([][]float64, len(params))
	for i, p := range params {
		for _, x := range []struct {
			name string
			dst  *[]float64
		}{{"m." + p.Name, &m[i]}, {"v." + p.Name, &v[i]}} {
			info, ok := f.Tensor(x.name)
			if !ok {
				return fmt.Errorf("fedadam moments: no tensor %q", x.name)
			}
			if !slices.Equal(info.Shape, []int{p.Rows, p.Cols}) {
				return fmt.Errorf("fedadam moments: %s has shape %v, the factor is %d×%d", x.name, info.Shape, p.Rows, p.Cols)
			}
			if *x.dst, err = f.Float64(x.name); err != nil {
				return fmt.Errorf("fedadam moments: %w", err)
			}
		}
		for k, val := range v[i] {
			if !(val >= 0) || math.IsInf(val, 0) || math.IsNaN(m[i][k]) || math.IsInf(m[i][k], 0) {
				return fmt.Errorf("fedadam moments: %s[%d]: m %v, v %v (want finite, v ≥ 0)", p.Name, k, m[i][k], val)
			}
		}
	}
	o.m, o.v = m, v
	return nil
}
