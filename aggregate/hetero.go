package aggregate

import (
	"fmt"
	"math"

	"github.com/kronfed/kronfed/adapter"
)

// HeteroExact aggregates clients' adapters of different shapes — ranks and,
// for Kron-LoRA, dA2 — into one adapter of target's shape: per module the
// exact weighted sum Σ p_i·ΔW_i (scales alpha/r_i included) is formed
// densely (d_out × d_in float64) and re-fitted to target's shape (the
// nearest Kronecker product, then a rank-r SVD; LoRA: the rank-q SVD). A
// Kron-LoRA of one dA2 is not a Kron-LoRA of another — A⊗B under split d is
// a sum of d'/d Kronecker products under split d' — so unlike clients that
// differ only in rank (WithRank lifts those exactly), these can only be
// summed as ΔW. Dense tensors, which must agree in shape, are averaged.
// target's values are not read, only its shape; the result is a new Set.
// It returns each module's relative re-fit error.
//
// This is the coordinator-side arithmetic a federation of clients of
// different dA2 needs; the protocol does not carry such uploads yet.
func HeteroExact(updates []Weighted, target *adapter.Set) (*adapter.Set, []ModuleError, error) {
	if len(updates) == 0 {
		return nil, nil, fmt.Errorf("aggregate: no updates")
	}
	var total float64
	for i, u := range updates {
		switch {
		case u.Set == nil:
			return nil, nil, fmt.Errorf("aggregate: update %d has no adapter", i)
		case !(u.Weight > 0) || math.IsInf(u.Weight, 0):
			return nil, nil, fmt.Errorf("aggregate: update %d has weight %v (want positive and finite)", i, u.Weight)
		case u.Set.Config.Kind != target.Config.Kind:
			return nil, nil, fmt.Errorf("aggregate: update %d is %s, the target %s", i, u.Set.Config.Kind, target.Config.Kind)
		case len(u.Set.Modules) != len(target.Modules) || len(u.Set.Dense) != len(target.Dense):
			return nil, nil, fmt.Errorf("aggregate: update %d has %d modules and %d dense tensors, the target %d and %d",
				i, len(u.Set.Modules), len(u.Set.Dense), len(target.Modules), len(target.Dense))
		}
		for m, mod := range u.Set.Modules {
			do, di := mod.Layer.Dims()
			to, ti := target.Modules[m].Layer.Dims()
			if mod.Name != target.Modules[m].Name || do != to || di != ti {
				return nil, nil, fmt.Errorf("aggregate: update %d module %d is %s %d×%d, the target's %s %d×%d", i, m, mod.Name, do, di, target.Modules[m].Name, to, ti)
			}
		}
		for d, t := range u.Set.Dense {
			if len(t.Data) != len(target.Dense[d].Data) {
				return nil, nil, fmt.Errorf("aggregate: update %d dense tensor %s has %d values, the target's %d", i, t.Name, len(t.Data), len(target.Dense[d].Data))
			}
		}
		if err := u.Set.CheckFinite(); err != nil {
			return nil, nil, fmt.Errorf("aggregate: update %d: %w", i, err)
		}
		total += u.Weight
	}
	out := target.Clone()
	for d := range out.Dense {
		clear(out.Dense[d].Data)
		for _, u := range updates {
			for j, v := range u.Set.Dense[d].Data {
				out.Dense[d].Data[j] += float32(u.Weight / total * float64(v))
			}
		}
	}
	var errs []ModuleError
	for m, mod := range out.Modules {
		dOut, dIn := mod.Layer.Dims()
		sum := make([]float64, dOut*dIn)
		w := make([]float32, dOut*dIn)
		for _, u := range updates {
			clear(w)
			u.Set.Modules[m].Layer.MergeInto(w, 1)
			p := u.Weight / total
			for j, v := range w {
				sum[j] += p * float64(v)
			}
		}
		rel, err := refitDense(mod.Layer, sum, dOut, dIn)
		if err != nil {
			return nil, nil, fmt.Errorf("aggregate: module %s: %w", mod.Name, err)
		}
		errs = append(errs, ModuleError{Module: mod.Name, Rel: rel})
	}
	return out, errs, nil
}
