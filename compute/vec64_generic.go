//go:build !amd64 || purego

package compute

func dot64(x, y []float64) float64 { return dot64Go(x, y) }

func symRank2Dot(row, v, w, u []float64, vi, wi float64) float64 {
	return symRank2DotGo(row, v, w, u, vi, wi)
}

func gram4x3(a []float64, lda int, b []float64, ldb int, n int, out *[12]float64) {
	gram4x3Go(a, lda, b, ldb, n, out)
}

func axpyWiden(alpha float64, x, y []float32) { axpyWidenGo(alpha, x, y) }
