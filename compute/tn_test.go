package compute

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemmTNBitIdentical: the adapters' weight-gradient products (Aᵀ·B with
// a side of at most 8) give the blocked path's bits exactly — ragged
// strips, a narrow side below 8, several k passes, alpha on either
// operand, every beta mode, one and two threads — and agree with float64.
func TestGemmTNBitIdentical(t *testing.T) {
	var zmm bool
	withKernel(1, func() { zmm = useZMM() })
	if !zmm {
		t.Skip("the TN kernel needs AVX-512")
	}
	rng := rand.New(rand.NewPCG(5, 8))
	shapes := []struct {
		m, n, k     int
		alpha, beta float32
	}{
		{8, 768, 1024, 1, 1},   // LoRA ∂A = dHᵀ·X
		{768, 8, 1024, 4, 1},   // LoRA ∂B = s·dYᵀ·H
		{8, 100, 1000, 1, 0},   // a ragged strip, beta 0
		{5, 77, 300, 0.5, 0.3}, // narrow side < 8, alpha on A, beta 0.3
		{3072, 6, 513, 0.25, 0.5},
		{8, 8, 64, 1, 1},
		{2, 40, 2000, 1, 1}, // many k passes
	}
	for _, sh := range shapes {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%dx%dx%d/a%g/b%g/t%d", sh.m, sh.n, sh.k, sh.alpha, sh.beta, threads), func(t *testing.T) {
				lda, ldb, ldc := sh.m+3, sh.n+1, sh.n+2
				a, b := make([]float32, sh.k*lda), make([]float32, sh.k*ldb)
				for i := range a {
					a[i] = float32(rng.NormFloat64())
				}
				for i := range b {
					b[i] = float32(rng.NormFloat64())
				}
				c0 := make([]float32, sh.m*ldc)
				for i := range c0 {
					c0[i] = float32(rng.NormFloat64())
				}
				want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
				withKernel(1, func() {
					gemmBlocked(Trans, NoTrans, sh.m, sh.n, sh.k, sh.alpha, a, lda, b, ldb, sh.beta, want, ldc, threads)
					gemmTN(sh.m, sh.n, sh.k, sh.alpha, a, lda, b, ldb, sh.beta, got, ldc, threads)
				})
				for i := 0; i < sh.m; i++ {
					for j := 0; j < sh.n; j++ {
						g, w := got[i*ldc+j], want[i*ldc+j]
						if math.Float32bits(g) != math.Float32bits(w) {
							t.Fatalf("C[%d][%d] = %v, blocked path %v", i, j, g, w)
						}
						var ref float64
						for p := 0; p < sh.k; p++ {
							ref += float64(a[p*lda+i]) * float64(b[p*ldb+j])
						}
						ref = float64(sh.alpha)*ref + float64(sh.beta)*float64(c0[i*ldc+j])
						if math.Abs(float64(g)-ref) > 1e-4*math.Sqrt(float64(sh.k))*(1+math.Abs(ref)) {
							t.Fatalf("C[%d][%d] = %v, float64 %v", i, j, g, ref)
						}
					}
					// Padding columns of C are untouched.
					for j := sh.n; j < ldc; j++ {
						if got[i*ldc+j] != c0[i*ldc+j] {
							t.Fatalf("padding C[%d][%d] written", i, j)
						}
					}
				}
			})
		}
	}
}
