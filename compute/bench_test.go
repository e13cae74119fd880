package compute

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchShapes are the target shapes (a 768-wide transformer's attention and
// MLP projections over 1024 tokens, as A·B and as x·Wᵀ) and the skinny
// products the adapters produce (rank-8 projections down and up).
var benchShapes = []struct {
	name    string
	tA, tB  Transpose
	m, n, k int
}{
	{"NN_1024x768x768", NoTrans, NoTrans, 1024, 768, 768},
	{"NT_1024x768x768", NoTrans, Trans, 1024, 768, 768},
	{"NN_1024x3072x768", NoTrans, NoTrans, 1024, 3072, 768},
	{"NT_1024x3072x768", NoTrans, Trans, 1024, 3072, 768},
	{"TN_768x768x1024", Trans, NoTrans, 768, 768, 1024},
	{"NN_256x256x256", NoTrans, NoTrans, 256, 256, 256},
	{"NT_2048x8x384", NoTrans, Trans, 2048, 8, 384},
	{"NN_2048x384x8", NoTrans, NoTrans, 2048, 384, 8},
}

func benchGemm(b *testing.B, tA, tB Transpose, m, n, k int, packed bool) {
	r := rand.New(rand.NewPCG(1, 1))
	a, bm, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
	lda, ldb := k, n
	if tA {
		lda = m
	}
	if tB {
		ldb = k
	}
	var pb *PackedB
	if packed {
		pb = PackB(tB, k, n, bm, ldb)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if packed {
			GemmPacked(tA, m, 1, a, lda, pb, 0, c, n)
		} else {
			Gemm(tA, tB, m, n, k, 1, a, lda, bm, ldb, 0, c, n)
		}
	}
	el := time.Since(start)
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/el.Seconds()/1e9, "GFLOP/s")
}

// BenchmarkGemm: go test -bench Gemm -run '^$' ./compute/
func BenchmarkGemm(b *testing.B) {
	for _, s := range benchShapes {
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads%d", s.name, th), func(b *testing.B) {
				withThreads(th, func() { benchGemm(b, s.tA, s.tB, s.m, s.n, s.k, false) })
			})
		}
	}
}

// BenchmarkGemmPacked is BenchmarkGemm with B packed once outside the loop
// (frozen weights).
func BenchmarkGemmPacked(b *testing.B) {
	for _, s := range benchShapes {
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads%d", s.name, th), func(b *testing.B) {
				withThreads(th, func() { benchGemm(b, s.tA, s.tB, s.m, s.n, s.k, true) })
			})
		}
	}
}

// BenchmarkGemmPortable measures the pure-Go path on one target shape.
func BenchmarkGemmPortable(b *testing.B) {
	withPortable(func() {
		withThreads(1, func() { benchGemm(b, NoTrans, NoTrans, 256, 256, 256, false) })
	})
}

// BenchmarkGemmBF16 is BenchmarkGemmPacked with B packed as bf16
// (PackBBF16): the frozen-weight path of --precision bf16.
func BenchmarkGemmBF16(b *testing.B) {
	needBF16(b)
	for _, s := range benchShapes {
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads%d", s.name, th), func(b *testing.B) {
				withThreads(th, func() {
					r := rand.New(rand.NewPCG(1, 1))
					m, n, k := s.m, s.n, s.k
					a, bm, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
					lda, ldb := k, n
					if s.tA {
						lda = m
					}
					if s.tB {
						ldb = k
					}
					pb, err := PackBBF16(s.tB, k, n, bm, ldb)
					if err != nil {
						b.Fatal(err)
					}
					b.ResetTimer()
					start := time.Now()
					for i := 0; i < b.N; i++ {
						GemmPacked(s.tA, m, 1, a, lda, pb, 0, c, n)
					}
					b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/time.Since(start).Seconds()/1e9, "GFLOP/s")
				})
			})
		}
	}
}

// BenchmarkGemmPackedT: a frozen layer's input gradient dy·W (1024 tokens,
// W 768×3072 and 3072×768) from the one bf16 copy (GemmPackedT, which
// rebuilds the backward layout per call) against a kept second copy.
func BenchmarkGemmPackedT(b *testing.B) {
	needBF16(b)
	for _, s := range [][2]int{{3072, 768}, {768, 3072}} {
		dOut, dIn := s[0], s[1]
		for _, one := range []bool{false, true} {
			name := fmt.Sprintf("W%dx%d/two-copies", dOut, dIn)
			if one {
				name = fmt.Sprintf("W%dx%d/one-copy", dOut, dIn)
			}
			b.Run(name, func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 1))
				w, dy, dx := randSlice(r, dOut*dIn), randSlice(r, 1024*dOut), make([]float32, 1024*dIn)
				fwd, _ := PackBBF16(Trans, dIn, dOut, w, dIn)
				bwd, _ := PackBBF16(NoTrans, dOut, dIn, w, dIn)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if one {
						GemmPackedT(NoTrans, 1024, 1, dy, dOut, fwd, 1, dx, dIn)
					} else {
						GemmPacked(NoTrans, 1024, 1, dy, dOut, bwd, 1, dx, dIn)
					}
				}
				b.ReportMetric(2*1024*float64(dOut)*float64(dIn)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
