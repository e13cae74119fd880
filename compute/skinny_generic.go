//go:build !amd64 || purego

package compute

func hasDot8() bool { return false }

func dot8RowsC(m, n, kc int, a []float32, lda int, bt []float32, ldbt int, c []float32, ldc int, alpha, beta float32, mode int) {
	panic("compute: dot8RowsC without assembly")
}
