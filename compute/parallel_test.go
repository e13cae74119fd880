package compute

import (
	"sync/atomic"
	"testing"
)

func TestParallelRangeCoversOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 4} {
		prev := SetThreads(threads)
		for _, c := range []struct{ n, grain int }{{0, 1}, {1, 1}, {7, 100}, {1000, 1}, {1000, 64}, {12345, 1000}} {
			hits := make([]atomic.Int32, c.n)
			ParallelRange(c.n, c.grain, func(lo, hi int) {
				if lo >= hi {
					t.Errorf("empty chunk [%d,%d)", lo, hi)
				}
				for i := lo; i < hi; i++ {
					hits[i].Add(1)
				}
			})
			for i := range hits {
				if hits[i].Load() != 1 {
					t.Fatalf("threads %d, n %d, grain %d: element %d visited %d times", threads, c.n, c.grain, i, hits[i].Load())
				}
			}
		}
		SetThreads(prev)
	}
}
