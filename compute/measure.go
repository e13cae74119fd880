package compute

import (
	"math/rand/v2"
	"time"
)

// MeasureGemm times C = op(A)·op(B) (m×n×k, beta 0) on random data with the
// given number of threads and returns the best rate in GFLOP/s (2·m·n·k
// flops per product) over at least three timed runs, repeating runs until
// minTime has passed. A run is one product, or a batch of products lasting
// about a millisecond when one is shorter. threads < 1 means
// runtime.GOMAXPROCS(0). It is what `client bench kernels`
// reports; it temporarily changes the package-wide thread setting, so do not
// run it alongside other GEMM work.
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
	call := func() { Gemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, c, n) }
	return measureRate(call, 2*float64(m)*float64(n)*float64(k), threads, minTime)
}

// MeasureFrozenGemm is MeasureGemm for a frozen layer's product x·Wᵀ
// (A m×k, W n×k) with W packed once beforehand, as fp32 (PackB) or, with
// bf16, as bf16 (PackBBF16; an error where the CPU cannot).
func MeasureFrozenGemm(m, n, k, threads int, minTime time.Duration, bf16 bool) (gflops float64, err error) {
	if m <= 0 || n <= 0 || k <= 0 {
		return 0, nil
	}
	r := rand.New(rand.NewPCG(1, 3))
	a, w, c := make([]float32, m*k), make([]float32, n*k), make([]float32, m*n)
	for _, s := range [][]float32{a, w} {
		for i := range s {
			s[i] = float32(r.Float64()*2 - 1)
		}
	}
	pb := PackB(Trans, k, n, w, k)
	if bf16 {
		if pb, err = PackBBF16(Trans, k, n, w, k); err != nil {
			return 0, err
		}
	}
	call := func() { GemmPacked(NoTrans, m, 1, a, k, pb, 0, c, n) }
	return measureRate(call, 2*float64(m)*float64(n)*float64(k), threads, minTime), nil
}

// measureRate times call (flops each) with threads GEMM threads: best of at
// least three runs and of minTime.
func measureRate(call func(), flops float64, threads int, minTime time.Duration) float64 {
	prev := SetThreads(threads)
	defer SetThreads(prev)
	call() // warm caches and scratch pools
	// Batch small products so one timed batch lasts about a millisecond;
	// a 1024×768×768 product is timed call by call. Taking the best batch
	// discards time slices lost to other processes on a busy machine.
	t0 := time.Now()
	call()
	batch := 1
	if d := time.Since(t0); d < time.Millisecond {
		batch = int(time.Millisecond/max(d, time.Microsecond)) + 1
	}
	best := 0.0
	deadline := time.Now().Add(minTime)
	for run := 0; run < 3 || time.Now().Before(deadline); run++ {
		start := time.Now()
		for i := 0; i < batch; i++ {
			call()
		}
		if g := flops * float64(batch) / time.Since(start).Seconds() / 1e9; g > best {
			best = g
		}
	}
	return best
}
