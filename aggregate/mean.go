package aggregate

import (
	"fmt"
	"math"

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
		total += u.Weight
	}
	// Every value of every update is read once: on the cores side by side
	// (the first bad update by index is the one reported).
	bad := make([]error, len(updates))
	compute.ParallelRange(len(updates), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			bad[i] = updates[i].Set.CheckFinite()
		}
	})
	for i, err := range bad {
		if err != nil {
			return nil, fmt.Errorf("aggregate: update %d: %w", i, err)
		}
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
	srcs := make([][]adapter.Factor, len(updates))
	for i, u := range updates {
		srcs[i] = u.Set.Params()
	}
	// Runs of fedAvgRun values of one tensor, spread over the cores; each
	// run adds the clients in order, so every value is the same sum (the
	// same bits) whatever the split.
	type run struct{ j, lo, hi int }
	var runs []run
	for j, d := range dst {
		for lo := 0; lo < len(d.Data); lo += fedAvgRun {
			runs = append(runs, run{j, lo, min(len(d.Data), lo+fedAvgRun)})
		}
	}
	compute.ParallelRange(len(runs), 1, func(r0, r1 int) {
		for _, r := range runs[r0:r1] {
			acc := dst[r.j].Data[r.lo:r.hi]
			for i, src := range srcs {
				compute.AxpyWiden(p[i], src[r.j].Data[r.lo:r.hi], acc)
			}
		}
	})
	return out, nil
}

// fedAvgRun is how many values of a tensor FedAvg sums over all clients at
// once: 16 KiB of float32 stays in L1 while a thousand clients' runs
// stream past it.
const fedAvgRun = 4096

// Median returns the coordinate-wise median of the clients' tensors (weights
// ignored; the mean of the two middle values for an even count): robust to a
// minority of arbitrarily bad updates.
func Median(updates []Weighted) (*adapter.Set, error) {
	return coordinatewise(updates, func(sorted []float32, n int, out *[sortLanes]float64) {
		hi := sorted[n/2*sortLanes:][:sortLanes]
		if n%2 == 1 {
			for l, v := range hi {
				out[l] = float64(v)
			}
			return
		}
		lo := sorted[(n/2-1)*sortLanes:][:sortLanes]
		for l := range out {
			out[l] = (float64(lo[l]) + float64(hi[l])) / 2
		}
	})
}

// TrimmedMean drops the ⌊beta·n⌋ largest and smallest values of every
// coordinate and averages the rest (weights ignored), summed in ascending
// order so that the result does not depend on the clients' order.
// beta in [0, 0.5).
func TrimmedMean(updates []Weighted, beta float64) (*adapter.Set, error) {
	if !(beta >= 0 && beta < 0.5) {
		return nil, fmt.Errorf("aggregate: trimmed-mean fraction %v must be in [0, 0.5)", beta)
	}
	return coordinatewise(updates, func(sorted []float32, n int, out *[sortLanes]float64) {
		k := int(beta * float64(n))
		*out = [sortLanes]float64{}
		for i := k; i < n-k; i++ {
			for l, v := range sorted[i*sortLanes:][:sortLanes] {
				out[l] += float64(v)
			}
		}
		for l := range out {
			out[l] /= float64(n - 2*k)
		}
	})
}

// sortLanes is the number of coordinates sorted side by side; gatherRun
// the number gathered from each client at a time (1 KiB runs).
const (
	sortLanes = 16
	gatherRun = 256
)

// coordinatewise applies reduce to every coordinate's values across the
// clients, sorted ascending: sixteen coordinates at a time go through one
// sorting network side by side (compute.SortNet: branch-free, where
// quickselect on one coordinate at a time spent its time in mispredicted
// branches), each client's 16 values one 64-byte row of the block, read in
// order. reduce gets the sorted block — row i holds the i-th smallest value
// of each of the 16 coordinates — and writes the 16 results. The blocks
// are split across the CPUs.
func coordinatewise(updates []Weighted, reduce func(sorted []float32, n int, out *[sortLanes]float64)) (*adapter.Set, error) {
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
	net := compute.SortNetwork(n)
	for j := range dst {
		clear(dst[j].Grad)
		d := dst[j].Data
		compute.ParallelRange((len(d)+gatherRun-1)/gatherRun, 1, func(r0, r1 int) {
			// check found every value finite: no NaN for the network to misplace.
			buf := make([]float32, gatherRun*n) // gatherRun/sortLanes blocks of n×sortLanes
			var res [sortLanes]float64
			for r := r0; r < r1; r++ {
				lo, hi := r*gatherRun, min((r+1)*gatherRun, len(d))
				// Each client's run of coordinates read in one go (a 64-byte
				// read per client and block would be a cache miss each: a
				// hundred streams are more than the prefetchers follow),
				// its rows scattered to the blocks. A short last block
				// leaves lanes unwritten, and they are not read.
				for i := range srcs {
					src := srcs[i][j].Data[lo:hi]
					for b := 0; b*sortLanes < len(src); b++ {
						copy(buf[(b*n+i)*sortLanes:][:sortLanes], src[b*sortLanes:])
					}
				}
				for b := 0; lo+b*sortLanes < hi; b++ {
					block := buf[b*n*sortLanes : (b+1)*n*sortLanes]
					net.SortColumns16(block)
					reduce(block, n, &res)
					for l := range min(sortLanes, hi-lo-b*sortLanes) {
						d[lo+b*sortLanes+l] = float32(res[l])
					}
				}
			}
		})
	}
	return out, nil
}
