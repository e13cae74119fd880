//go:build amd64 && !purego

package compute

//go:noescape
func dot64AVX(x, y *float64, n int) float64

//go:noescape
func symRank2DotAVX(row, v, w, u *float64, n int, vi, wi float64) float64

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
