//go:build amd64 && !purego

package compute

//go:noescape
func dot64AVX(x, y *float64, n int) float64

//go:noescape
func symRank2DotAVX(row, v, w, u *float64, n int, vi, wi float64) float64

//go:noescape
func gram4x3AVX(a *float64, lda int, b *float64, ldb int, n int, out *[12]float64)

func gram4x3(a []float64, lda int, b []float64, ldb int, n int, out *[12]float64) {
	if !useAsm || n == 0 {
		gram4x3Go(a, lda, b, ldb, n, out)
		return
	}
	_ = a[3*lda+n-1]
	_ = b[2*ldb+n-1]
	gram4x3AVX(&a[0], lda, &b[0], ldb, n, out)
}

//go:noescape
func axpyWidenAVX(alpha float64, x, y *float32, n int)

func axpyWiden(alpha float64, x, y []float32) {
	if !useAsm || len(x) == 0 {
		axpyWidenGo(alpha, x, y)
		return
	}
	axpyWidenAVX(alpha, &x[0], &y[0], len(x))
}

func dot64(x, y []float64) float64 {
	if !useAsm || len(x) == 0 {
		return dot64Go(x, y)
	}
	return dot64AVX(&x[0], &y[0], len(x))
}

func symRank2Dot(row, v, w, u []float64, vi, wi float64) float64 {
	if !useAsm || len(row) == 0 {
		return symRank2DotGo(row, v, w, u, vi, wi)
	}
	return symRank2DotAVX(&row[0], &v[0], &w[0], &u[0], len(row), vi, wi)
}
