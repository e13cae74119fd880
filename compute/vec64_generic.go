//go:build !amd64 || purego

package compute

func dot64(x, y []float64) float64 { return dot64Go(x, y) }

func symRank2Dot(row, v, w, u []float64, vi, wi float64) float64 {
	return symRank2DotGo(row, v, w, u, vi, wi)
}
