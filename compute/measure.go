package compute

import (
	"math/rand/v2"
	"time"
)

// MeasureGemm times C = op(A)·op(B) (m×n×k, beta 0) on random data with the
// given number of threads and returns the best of at least three runs in
// GFLOP/s (2·m·n·k flops per product). Each run repeats the product until it
// has taken minTime/3 (at least once). It is what `client bench kernels`
// reports; it temporarily changes the package-wide thread setting, so do
// not run it alongside other GEMM work.
func MeasureGemm(tA, tB Transpose, m, n, k, threads int, minTime time.Duration) (gflops float64) {
	if m <= 0 || n <= 0 || k <= 0 {
		return 0
	}
	r := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.Float64()*2 - 1)
		}
		return s
	}
	a, b, c := fill(m*k), fill(k*n), make([]float32, m*n)
	lda, ldb := k, n
	if tA {
		lda = m
	}
	if tB {
		ldb = k
	}
	prev := SetThreads(threads)
	defer SetThreads(prev)
	flops := 2 * float64(m) * float64(n) * float64(k)
	Gemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, c, n) // warm caches and pools
	per := minTime / 3
	best := 0.0
	for run := 0; run < 3; run++ {
		reps := 0
		start := time.Now()
		var el time.Duration
		for {
			Gemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, c, n)
			reps++
			if el = time.Since(start); el >= per {
				break
			}
		}
		if g := flops * float64(reps) / el.Seconds() / 1e9; g > best {
			best = g
		}
	}
	return best
}
