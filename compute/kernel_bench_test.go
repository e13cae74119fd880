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

// BenchmarkMicroKernel24x16 runs the AVX-512 24×16 kernel on panels that sit
// in L1 (kc=256), where the CPU has it.
func BenchmarkMicroKernel24x16(b *testing.B) {
	var zmm bool
	withKernel(1, func() { zmm = useZMM() })
	if !zmm {
		b.Skip("no AVX-512 kernel on this CPU")
	}
	r := rand.New(rand.NewPCG(1, 1))
	const kc = 256
	ts := aTileStride(kc)
	a, bp := randSlice(r, 4*ts), randSlice(r, kc*nr)
	c := make([]float32, zr*nr)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		microKernel24x16(kc, a, ts, bp, c, nr, 0, 1, bp)
	}
	b.ReportMetric(2*zr*nr*kc*float64(b.N)/time.Since(start).Seconds()/1e9, "GFLOP/s")
}

// BenchmarkMicroKernelBF16 runs the VDPBF16PS 24×16 kernel on panels that
// sit in L1 (256 k values: 128 pairs).
func BenchmarkMicroKernelBF16(b *testing.B) {
	needBF16(b)
	const pairs = 128
	ts := aTileStrideBF16(pairs)
	a, bp := make([]uint16, 4*ts), make([]uint16, 2*nr*pairs)
	for i := range a {
		a[i] = BF16(float32(i%7) - 3)
	}
	for i := range bp {
		bp[i] = BF16(float32(i%5) - 2)
	}
	c := make([]float32, zr*nr)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		microKernelBF16(pairs, a, ts, bp, c, nr, 0, 1)
	}
	b.ReportMetric(2*zr*nr*2*pairs*float64(b.N)/time.Since(start).Seconds()/1e9, "GFLOP/s")
}
