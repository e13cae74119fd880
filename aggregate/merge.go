package aggregate

import (
	"fmt"
	"math"

	"github.com/kronfed/kronfed/adapter"
)

// ExactMerge combines adapters by their exact weighted ΔW, re-fitted to one
// adapter of the same shape: KronExact for Kron-LoRA, LoRAExact for LoRA.
// Adapter merging against forgetting uses it to average a task-A and a
// task-B adapter (weights ½, ½).
func ExactMerge(updates []Weighted) (*adapter.Set, []ModuleError, error) {
	if len(updates) == 0 {
		return nil, nil, fmt.Errorf("aggregate: nothing to merge")
	}
	switch k := updates[0].Set.Config.Kind; k {
	case adapter.KindKron:
		return KronExact(updates)
	case adapter.KindLoRA:
		return LoRAExact(updates)
	default:
		return nil, nil, fmt.Errorf("aggregate: no exact merge for %s adapters", k)
	}
}

// LoRAExact is KronExact's counterpart for LoRA: per module the exact
// Σ_i p_i·B_i·A_i (rank ≤ n·q) is re-fitted to rank q by a truncated SVD
// of the stacked factors (thin QR of [p_i·B_i] and [A_iᵀ], then the SVD of
// the (n·q)-square core), the singular values split evenly between B and A.
// Dense tensors are averaged. It returns each module's relative error.
func LoRAExact(updates []Weighted) (*adapter.Set, []ModuleError, error) {
	p, err := check(updates)
	if err != nil {
		return nil, nil, err
	}
	if k := updates[0].Set.Config.Kind; k != adapter.KindLoRA {
		return nil, nil, fmt.Errorf("aggregate: LoRAExact needs lora adapters, got %s", k)
	}
	out, err := FedAvg(updates)
	if err != nil {
		return nil, nil, err
	}
	errs, err := refitModules(out, func(mi int) (float64, error) {
		dst := out.Modules[mi].Layer.(*adapter.LoRA)
		q, dOut, dIn := dst.Shape.Rank, dst.Shape.DOut, dst.Shape.DIn
		n := len(updates)
		ls := make([]*adapter.LoRA, n)
		lefts, rights := make([][]float32, n), make([][]float32, n)
		for i, u := range updates {
			ls[i] = u.Set.Modules[mi].Layer.(*adapter.LoRA)
			lefts[i], rights[i] = ls[i].B, ls[i].A
		}
		L, Rt := stackPairs(lefts, rights, p, dOut, q, dIn)
		b, a, exact2, err := truncate(L, Rt, q)
		if err != nil {
			return 0, err
		}
		if exact2 <= 0 { // every ΔW is 0 (B = 0 at the start): keep the mean
			return 0, nil
		}
		for i := range dst.B {
			dst.B[i] = float32(b[i])
		}
		for i := range dst.A {
			dst.A[i] = float32(a[i])
		}
		clear(dst.GradA)
		clear(dst.GradB)
		var cross float64
		for i, l := range ls {
			cross += p[i] * adapter.LowRankInner(l.B, l.A, dst.B, dst.A, dOut, q, dIn)
		}
		new2 := adapter.LowRankInner(dst.B, dst.A, dst.B, dst.A, dOut, q, dIn)
		return math.Sqrt(math.Max(exact2+new2-2*cross, 0) / exact2), nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, errs, nil
}
