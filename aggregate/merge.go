package aggregate

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

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
// Σ_i p_i·B_i·A_i (rank ≤ n·q) is re-fitted to rank q by a truncated SVD —
// of the stacked factors (thin QR of [p_i·B_i] and [A_iᵀ], then the top
// triplets of the (n·q)-square core) while n·q is below min(d_out, d_in),
// of the sum formed explicitly beyond — the singular values split evenly
// between B and A.
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
		ls := make([]*adapter.LoRA, len(updates))
		for i, u := range updates {
			ls[i] = u.Set.Modules[mi].Layer.(*adapter.LoRA)
		}
		lefts, rights := pairs(ls, func(l *adapter.LoRA) ([]float32, []float32) { return l.B, l.A })
		if sh := dst.Shape; len(ls)*sh.Rank >= min(sh.DOut, sh.DIn) && !preferFactored {
			return loraExplicit(dst, lefts, rights, p)
		}
		return loraFactored(dst, lefts, rights, p)
	})
	if err != nil {
		return nil, nil, err
	}
	return out, errs, nil
}

// loraFactored re-fits dst to Σ p_i·B_i·A_i through QR of the stacked
// factors (truncate); the error comes from inner products of the factors.
func loraFactored(dst *adapter.LoRA, lefts, rights [][]float32, p []float64) (float64, error) {
	q, dOut, dIn := dst.Shape.Rank, dst.Shape.DOut, dst.Shape.DIn
	L, Rt := stackPairs(lefts, rights, p, dOut, q, dIn)
	b, a, exact2, err := truncate(L, Rt, q)
	if err != nil {
		return 0, err
	}
	if exact2 <= 0 { // every ΔW is 0 (B = 0 at the start): keep the mean
		return 0, nil
	}
	storeLoRA(dst, b, a)
	var cross float64
	for i := range lefts {
		cross += p[i] * adapter.LowRankInner(lefts[i], rights[i], dst.B, dst.A, dOut, q, dIn)
	}
	new2 := adapter.LowRankInner(dst.B, dst.A, dst.B, dst.A, dOut, q, dIn)
	return math.Sqrt(math.Max(exact2+new2-2*cross, 0) / exact2), nil
}

// loraExplicit re-fits dst to the sum formed explicitly (d_out × d_in, by
// float32 GEMMs whose cost grows linearly in the number of clients, as
// kron-exact's refitExplicit), once the clients' stacked rank reaches the
// sum's smaller side and the factored form is no smaller: its top q
// singular triplets, and the error as the residual itself.
func loraExplicit(dst *adapter.LoRA, lefts, rights [][]float32, p []float64) (float64, error) {
	q, dOut, dIn := dst.Shape.Rank, dst.Shape.DOut, dst.Shape.DIn
	sum, scale := pairSums(lefts, rights, mat.NewDense(1, len(lefts), p), q, dOut, dIn) // the true sum is scale·sum
	exact2 := longDot(sum, sum)
	if exact2 <= 0 {
		return 0, nil // every ΔW is 0: keep the mean
	}
	left, right, s, err := topSingular32(sum, dOut, dIn, q)
	if err != nil {
		return 0, fmt.Errorf("%w (the %d×%d sum of the clients' B·A)", err, dOut, dIn)
	}
	b, a := splitTriplets(left, right, s, q)
	unscale(b, a, scale)
	storeLoRA(dst, b, a)
	res := residual2(sum, []float64{1 / scale}, lowRankProduct(dst.B, dst.A, dOut, q, dIn)) // scaled units, as exact2
	return math.Sqrt(res / exact2), nil
}

// storeLoRA writes the re-fit's B (d_out×q) and A (q×d_in) into dst and
// clears its gradients.
func storeLoRA(dst *adapter.LoRA, b, a []float64) {
	for i := range dst.B {
		dst.B[i] = float32(b[i])
	}
	for i := range dst.A {
		dst.A[i] = float32(a[i])
	}
	clear(dst.GradA)
	clear(dst.GradB)
}
