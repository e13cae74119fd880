package compute

// ParallelRange splits [0, n) into contiguous chunks of at least grain
// elements and runs fn(lo, hi) on each, spread over the worker pool
// (Threads() goroutines at most, the caller's included). It returns when every
// chunk is done. Chunks are independent of the thread count, so fn may write
// disjoint parts of shared outputs and results stay deterministic. It is for
// the model's elementwise and per-row layers, which would otherwise run on
// one core while the other waits for the next GEMM.
func ParallelRange(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	threads := Threads()
	if threads <= 1 || n <= grain {
		fn(0, n)
		return
	}
	// A few chunks per thread balance uneven rows without much overhead.
	parts := min((n+grain-1)/grain, 4*threads)
	size := (n + parts - 1) / parts
	parts = (n + size - 1) / size
	parallelFor(parts, threads, func(p int) {
		fn(p*size, min((p+1)*size, n))
	})
}
