package task

import (
	"fmt"
	"math"
	"sort"
)

// PartitionIID deals the items to n clients uniformly at random: a seeded
// shuffle dealt round-robin, so client sizes differ by at most one. It returns,
// for each client, the indices of its items in ascending order; every index in
// [0, len(items)) appears exactly once. With n > len(items) the last clients of
// the deal are empty.
func PartitionIID(items []Item, n int, seed uint64) ([][]int, error) {
	if n < 1 {
		return nil, fmt.Errorf("task: partition into %d clients", n)
	}
	perm := newRNG(seed, streamIID).perm(len(items))
	parts := make([][]int, n)
	for k, i := range perm {
		parts[k%n] = append(parts[k%n], i)
	}
	for _, p := range parts {
		sort.Ints(p)
	}
	return parts, nil
}

// PartitionDirichlet splits the items over n clients with label skew, the
// scheme of Hsu et al. (2019) used by most federated benchmarks: items are
// grouped by ClassKey (the gold label index unless the item sets Class); for
// each class, in sorted key order, client shares p ~ Dirichlet(alpha·1ₙ) are
// drawn, the class's items are shuffled and cut at ⌊m·(p₁+…+p_j)⌋. Small alpha
// (0.1) gives clients dominated by one or two classes; alpha → ∞ (+Inf is
// allowed: equal shares) approaches an IID split.
//
// Repair rule: when n ≤ len(items) no client is left empty — while one is, the
// largest client (lowest index on ties) gives it the item it received last.
// The donor keeps at least one item since, with an empty client, n-1 clients
// hold ≥ n items. With n > len(items) some clients stay empty.
//
// Every index appears exactly once; each client's indices are ascending. The
// result is reproducible for a given seed on one platform (it uses floating
// point, so it is not promised bit-identical across architectures).
func PartitionDirichlet(items []Item, n int, alpha float64, seed uint64) ([][]int, error) {
	if n < 1 {
		return nil, fmt.Errorf("task: partition into %d clients", n)
	}
	if !(alpha > 0) {
		return nil, fmt.Errorf("task: Dirichlet alpha %v must be positive", alpha)
	}
	byClass := map[string][]int{}
	var keys []string
	for i := range items {
		k := ClassKey(&items[i])
		if _, ok := byClass[k]; !ok {
			keys = append(keys, k)
		}
		byClass[k] = append(byClass[k], i)
	}
	sort.Strings(keys)

	r := newRNG(seed, streamDirichlet)
	// assigned[c] lists client c's items in the order they were assigned.
	assigned := make([][]int, n)
	logs := make([]float64, n)
	for _, k := range keys {
		idx := append([]int(nil), byClass[k]...)
		r.shuffle(idx)
		var p []float64
		if math.IsInf(alpha, 1) {
			p = make([]float64, n)
			for j := range p {
				p[j] = 1 / float64(n)
			}
		} else {
			for j := range logs {
				logs[j] = r.logGamma(alpha)
			}
			p = normalizeLogs(logs)
		}
		m := len(idx)
		var cum float64
		start := 0
		for j := 0; j < n; j++ {
			cum += p[j]
			end := int(math.Floor(cum * float64(m)))
			if j == n-1 || end > m {
				end = m
			}
			if end < start {
				end = start
			}
			assigned[j] = append(assigned[j], idx[start:end]...)
			start = end
		}
	}

	if n <= len(items) {
		for {
			empty := -1
			for j := range assigned {
				if len(assigned[j]) == 0 {
					empty = j
					break
				}
			}
			if empty < 0 {
				break
			}
			donor := 0
			for j := range assigned {
				if len(assigned[j]) > len(assigned[donor]) {
					donor = j
				}
			}
			last := len(assigned[donor]) - 1
			assigned[empty] = append(assigned[empty], assigned[donor][last])
			assigned[donor] = assigned[donor][:last]
		}
	}
	for _, p := range assigned {
		sort.Ints(p)
	}
	return assigned, nil
}

// Clients returns one task per part (as from PartitionIID or
// PartitionDirichlet), named like t; notes record the client number.
func (t *Task) Clients(parts [][]int) []*Task {
	out := make([]*Task, len(parts))
	for c, idx := range parts {
		s := t.Subset(idx)
		s.Note = joinNote(t.Note, fmt.Sprintf("client %d of %d: %d items", c, len(parts), len(idx)))
		out[c] = s
	}
	return out
}
