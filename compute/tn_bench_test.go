package compute

import (
	"fmt"
	"testing"
)

// BenchmarkGemmTN: the adapters' weight-gradient shapes (LoRA-8 on a
// DistilBERT step's 1024 tokens) on the TN kernel and on the blocked path
// it replaces, one thread.
func BenchmarkGemmTN(b *testing.B) {
	for _, sh := range [][3]int{{8, 768, 1024}, {768, 8, 1024}, {8, 3072, 1024}, {3072, 8, 1024}} {
		m, n, k := sh[0], sh[1], sh[2]
		a, bb, c := make([]float32, k*m), make([]float32, k*n), make([]float32, m*n)
		for i := range a {
			a[i] = float32(i%7) - 3
		}
		for i := range bb {
			bb[i] = float32(i%5) - 2
		}
		for _, path := range []string{"tn", "blocked"} {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", m, n, k, path), func(b *testing.B) {
				withKernel(1, func() {
					if !useZMM() {
						b.Skip("no AVX-512")
					}
					for i := 0; i < b.N; i++ {
						if path == "tn" {
							gemmTN(m, n, k, 1, a, m, bb, n, 1, c, n, 1)
						} else {
							gemmBlocked(Trans, NoTrans, m, n, k, 1, a, m, bb, n, 1, c, n, 1)
						}
					}
				})
				b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
