package train

import (
	"fmt"

	"github.com/kronfed/kronfed/adapter"
)

// A Penalty is a regularizer added to the training loss: AddGrad adds its
// gradient to every parameter's Grad (after the loss's own, before
// clipping) and returns its value. It must be safe for concurrent use by
// clients training different Sets of the same shape.
type Penalty interface {
	AddGrad(params []adapter.Factor) float64
}

// L2SP is L2-SP regularization toward a starting point (Li et al. 2018):
// λ/2·Σ‖θ − θ₀‖² over every tensor of the Set, so the factors stay near
// the values that solved an earlier task.
type L2SP struct {
	Lambda float64
	Anchor [][]float32 // θ₀, in Set.Params order
}

// NewL2SP anchors at anchor's tensors (copied).
func NewL2SP(anchor *adapter.Set, lambda float64) (*L2SP, error) {
	if !(lambda > 0) {
		return nil, fmt.Errorf("l2sp: λ %v, want > 0", lambda)
	}
	p := &L2SP{Lambda: lambda}
	for _, f := range anchor.Params() {
		p.Anchor = append(p.Anchor, append([]float32(nil), f.Data...))
	}
	return p, nil
}

// AddGrad adds λ·(θ − θ₀) and returns λ/2·‖θ − θ₀‖².
func (p *L2SP) AddGrad(params []adapter.Factor) float64 {
	var v float64
	lam := float32(p.Lambda)
	for i, f := range params {
		a := p.Anchor[i]
		for j, x := range f.Data {
			d := x - a[j]
			f.Grad[j] += lam * d
			v += float64(d) * float64(d)
		}
	}
	return p.Lambda / 2 * v
}

// Orthogonal is orthogonal-subspace regularization between tasks (O-LoRA,
// Wang et al. 2023): a new adapter's input-side factor is pushed to be
// orthogonal to an earlier task's, λ·Σ_modules ‖P_old·P_newᵀ‖²_F, where P is
// LoRA's A (q × d_in) and Kron-LoRA's B2 (r × dB1). For Kron-LoRA,
// B2_old·B2_newᵀ = 0 makes the two ΔW's row spaces orthogonal:
// ΔW_old·ΔW_newᵀ = (A_old·A_newᵀ) ⊗ (B1_old·(B2_old·B2_newᵀ)·B1_newᵀ) = 0.
type Orthogonal struct {
	Lambda float64
	// Old[m] is module m's earlier input-side factor, rows × cols, and
	// factor its index in the module's Factors().
	Old    [][]float32
	rows   []int
	cols   []int
	factor []int
	nf     []int // factors per module: where the next module's start in Params
}

// NewOrthogonal takes the earlier task's adapter; the new adapters must
// have the same kind and shapes.
func NewOrthogonal(old *adapter.Set, lambda float64) (*Orthogonal, error) {
	if !(lambda > 0) {
		return nil, fmt.Errorf("ortho: λ %v, want > 0", lambda)
	}
	p := &Orthogonal{Lambda: lambda}
	for _, m := range old.Modules {
		fs := m.Layer.Factors()
		k := inputFactor(m.Layer.Kind())
		if k < 0 || k >= len(fs) {
			return nil, fmt.Errorf("ortho: module %s: adapter kind %s has no input-side factor", m.Name, m.Layer.Kind())
		}
		f := fs[k]
		p.Old = append(p.Old, append([]float32(nil), f.Data...))
		p.rows, p.cols, p.factor, p.nf = append(p.rows, f.Rows), append(p.cols, f.Cols), append(p.factor, k), append(p.nf, len(fs))
	}
	return p, nil
}

// inputFactor is the index of a kind's input-side factor in Factors():
// LoRA's A (its first) and Kron-LoRA's B2 (A, B1, B2).
func inputFactor(k adapter.Kind) int {
	switch k {
	case adapter.KindLoRA:
		return 0
	case adapter.KindKron:
		return 2
	}
	return -1
}

// AddGrad adds 2λ·(P_new·P_oldᵀ)·P_old to each module's input-side factor
// and returns λ·Σ‖P_old·P_newᵀ‖². params is Set.Params order: the modules'
// factors in order, then any dense tensors.
func (p *Orthogonal) AddGrad(params []adapter.Factor) float64 {
	var v float64
	i := 0
	for m := range p.Old {
		f := params[i+p.factor[m]]
		rows, cols := p.rows[m], p.cols[m]
		old := p.Old[m]
		// o = P_new·P_oldᵀ (rows × rows), then Grad += 2λ·o·P_old.
		o := make([]float64, rows*rows)
		for a := 0; a < rows; a++ {
			na := f.Data[a*cols : (a+1)*cols]
			for b := 0; b < rows; b++ {
				ob := old[b*cols : (b+1)*cols]
				var s float64
				for c := range na {
					s += float64(na[c]) * float64(ob[c])
				}
				o[a*rows+b] = s
				v += s * s
			}
		}
		for a := 0; a < rows; a++ {
			g := f.Grad[a*cols : (a+1)*cols]
			for b := 0; b < rows; b++ {
				w := float32(2 * p.Lambda * o[a*rows+b])
				ob := old[b*cols : (b+1)*cols]
				for c := range g {
					g[c] += w * ob[c]
				}
			}
		}
		i += p.nf[m]
	}
	return p.Lambda * v
}
