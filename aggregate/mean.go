package aggregate

import (
	"fmt"
	"math"
	"slices"

	"github.com/kronfed/kronfed/adapter"
)

// Weighted is one client's adapter θ (its factors, not its change) and its
// weight (usually its example count): what the rules defined on the clients'
// factors (FedAvg, KronExact, Median, TrimmedMean) combine.
type Weighted struct {
	Set    *adapter.Set
	Weight float64
}

// check validates the updates and returns their weights normalized to sum 1.
func check(updates []Weighted) ([]float64, error) {
	if len(updates) == 0 {
		return nil, fmt.Errorf("aggregate: no updates")
	}
	var total float64
	for i, u := range updates {
		if u.Set == nil {
			return nil, fmt.Errorf("aggregate: update %d has no adapter", i)
		}
		if !(u.Weight > 0) || math.IsInf(u.Weight, 0) {
			return nil, fmt.Errorf("aggregate: update %d has weight %v (want positive and finite)", i, u.Weight)
		}
		if err := updates[0].Set.SameShape(u.Set); err != nil {
			return nil, fmt.Errorf("aggregate: update %d: %w", i, err)
		}
		if err := u.Set.CheckFinite(); err != nil {
			return nil, fmt.Errorf("aggregate: update %d: %w", i, err)
		}
		total += u.Weight
	}
	p := make([]float64, len(updates))
	for i, u := range updates {
		p[i] = u.Weight / total
	}
	return p, nil
}

// FedAvg returns Σ p_i·θ_i over every tensor (factors and dense), with p the
// normalized weights: FedAvg applied to the factors themselves. For Kron-LoRA
// and LoRA this is not the average of the clients' ΔW (the mean of products is
// not the product of means); see KronExact.
func FedAvg(updates []Weighted) (*adapter.Set, error) {
	p, err := check(updates)
	if err != nil {
		return nil, err
	}
	out := updates[0].Set.Clone()
	dst := out.Params()
	for _, d := range dst {
		clear(d.Data)
		clear(d.Grad)
	}
	for i, u := range updates {
		for j, src := range u.Set.Params() {
			for k, v := range src.Data {
				dst[j].Data[k] += float32(p[i] * float64(v))
			}
		}
	}
	return out, nil
}

// Median returns the coordinate-wise median of the clients' tensors (weights
// ignored; the mean of the two middle values for an even count): robust to a
// minority of arbitrarily bad updates.
func Median(updates []Weighted) (*adapter.Set, error) {
	return coordinatewise(updates, func(vals []float64) float64 {
		slices.Sort(vals)
		n := len(vals)
		if n%2 == 1 {
			return vals[n/2]
		}
		return (vals[n/2-1] + vals[n/2]) / 2
	})
}

// TrimmedMean drops the ⌊beta·n⌋ largest and smallest values of every
// coordinate and averages the rest (weights ignored). beta in [0, 0.5).
func TrimmedMean(updates []Weighted, beta float64) (*adapter.Set, error) {
	if !(beta >= 0 && beta < 0.5) {
		return nil, fmt.Errorf("aggregate: trimmed-mean fraction %v must be in [0, 0.5)", beta)
	}
	return coordinatewise(updates, func(vals []float64) float64 {
		slices.Sort(vals)
		k := int(beta * float64(len(vals)))
		kept := vals[k : len(vals)-k]
		var s float64
		for _, v := range kept {
			s += v
		}
		return s / float64(len(kept))
	})
}

func coordinatewise(updates []Weighted, reduce func([]float64) float64) (*adapter.Set, error) {
	if _, err := check(updates); err != nil {
		return nil, err
	}
	out := updates[0].Set.Clone()
	dst := out.Params()
	srcs := make([][]adapter.Factor, len(updates))
	for i, u := range updates {
		srcs[i] = u.Set.Params()
	}
	vals := make([]float64, len(updates))
	for j := range dst {
		clear(dst[j].Grad)
		for k := range dst[j].Data {
			for i := range srcs {
				vals[i] = float64(srcs[i][j].Data[k])
			}
			dst[j].Data[k] = float32(reduce(vals))
		}
	}
	return out, nil
}
