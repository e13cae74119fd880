package aggregate

import (
	"fmt"
	"math"
	"slices"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/compute"
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
// minority of arbitrarily bad updates. Each coordinate's median is found by
// selection, not sorting, and coordinates are split across the CPUs.
func Median(updates []Weighted) (*adapter.Set, error) {
	return coordinatewise(updates, func(vals []float32) float64 {
		n := len(vals)
		hi := float64(selectKth(vals, n/2))
		if n%2 == 1 {
			return hi
		}
		return (float64(slices.Max(vals[:n/2])) + hi) / 2 // the lower middle: the largest below
	})
}

// TrimmedMean drops the ⌊beta·n⌋ largest and smallest values of every
// coordinate and averages the rest (weights ignored). beta in [0, 0.5).
// The kept values are found by two selections, not a sort, and summed in
// ascending order (as a sort would have them), so the result does not
// depend on how the selection left them.
func TrimmedMean(updates []Weighted, beta float64) (*adapter.Set, error) {
	if !(beta >= 0 && beta < 0.5) {
		return nil, fmt.Errorf("aggregate: trimmed-mean fraction %v must be in [0, 0.5)", beta)
	}
	return coordinatewise(updates, func(vals []float32) float64 {
		n := len(vals)
		k := int(beta * float64(n))
		if k > 0 {
			selectKth(vals, k)         // vals[:k]: the k smallest
			selectKth(vals[k:], n-2*k) // vals[k:n-k]: the middle, vals[n-k:] the k largest
		}
		kept := vals[k : n-k]
		slices.Sort(kept)
		var s float64
		for _, v := range kept {
			s += float64(v)
		}
		return s / float64(len(kept))
	})
}

// selectKth reorders vals so that vals[k] is the value a sort would put
// there, with every value before it ≤ it and every value after ≥ it
// (quickselect, median-of-three pivots; deterministic), and returns it. For
// k = len(vals) it only partitions nothing and returns 0.
func selectKth[T float32 | float64](vals []T, k int) T {
	if k >= len(vals) {
		return 0
	}
	lo, hi := 0, len(vals)-1
	for hi > lo {
		mid := lo + (hi-lo)/2
		// Median of three to the middle, as the pivot.
		if vals[mid] < vals[lo] {
			vals[mid], vals[lo] = vals[lo], vals[mid]
		}
		if vals[hi] < vals[lo] {
			vals[hi], vals[lo] = vals[lo], vals[hi]
		}
		if vals[hi] < vals[mid] {
			vals[hi], vals[mid] = vals[mid], vals[hi]
		}
		pivot := vals[mid]
		i, j := lo, hi
		for i <= j {
			for vals[i] < pivot {
				i++
			}
			for vals[j] > pivot {
				j--
			}
			if i <= j {
				vals[i], vals[j] = vals[j], vals[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return vals[k]
		}
	}
	return vals[k]
}

// coordinatewise applies reduce to every coordinate's values across the
// clients: blocks of coordinates are gathered client by client (each
// client's run read in order) into a worker's own buffer, and the blocks
// split across the CPUs.
func coordinatewise(updates []Weighted, reduce func([]float32) float64) (*adapter.Set, error) {
	if _, err := check(updates); err != nil {
		return nil, err
	}
	out := updates[0].Set.Clone()
	dst := out.Params()
	srcs := make([][]adapter.Factor, len(updates))
	for i, u := range updates {
		srcs[i] = u.Set.Params()
	}
	n := len(updates)
	const block = 256 // coordinates gathered at once: each client's run read in order
	for j := range dst {
		clear(dst[j].Grad)
		d := dst[j].Data
		compute.ParallelRange((len(d)+block-1)/block, 1, func(b0, b1 int) {
			buf := make([]float32, block*n) // float32: the values as sent, selection is exact
			for b := b0; b < b1; b++ {
				lo, hi := b*block, min((b+1)*block, len(d))
				for i := range srcs {
					for k, v := range srcs[i][j].Data[lo:hi] {
						buf[k*n+i] = v
					}
				}
				for k := lo; k < hi; k++ {
					d[k] = float32(reduce(buf[(k-lo)*n : (k-lo+1)*n]))
				}
			}
		})
	}
	return out, nil
}
