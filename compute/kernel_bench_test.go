package compute

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkMicroKernel runs the 6×16 micro-kernel on panels that sit in L1
// (kc=256): the ceiling for the whole GEMM.
func BenchmarkMicroKernel(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	const kc = 256
	a, bp := randSlice(r, kc*mr), randSlice(r, kc*nr)
	c := make([]float32, mr*nr)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		microKernel(kc, a, bp, c, nr, 0, 1, bp)
	}
	b.ReportMetric(2*mr*nr*kc*float64(b.N)/time.Since(start).Seconds()/1e9, "GFLOP/s")
}
