//go:build amd64 && !purego

package compute

//go:noescape
func dot8Rows(m, kc int, a *float32, lda int, bt *float32, ldbt int, c *float32, ldc int, alpha, beta float32, mode int, nmask, kmask *int32)

// hasDot8 reports whether dot8RowsC is available.
func hasDot8() bool { return useAsm }

// laneMasks[8-r:][:8] has the first r lanes set (r = 0..8).
var laneMasks = [16]int32{-1, -1, -1, -1, -1, -1, -1, -1}

// dot8RowsC applies C[i][j] (i < m, j < n) ← alpha·Σ_{p<kc} a[i·lda+p]·
// bt[j·ldbt+p] with the kernel modes (0 set, 1 add, 2 add beta·C). bt has 8
// rows of ldbt ≥ roundUp(kc, 8) floats, zero past kc.
func dot8RowsC(m, n, kc int, a []float32, lda int, bt []float32, ldbt int, c []float32, ldc int, alpha, beta float32, mode int) {
	if m == 0 {
		return
	}
	_ = a[(m-1)*lda+kc-1]
	_ = bt[7*ldbt+roundUp(kc, 8)-1]
	_ = c[(m-1)*ldc+n-1]
	dot8Rows(m, kc, &a[0], lda, &bt[0], ldbt, &c[0], ldc, alpha, beta, mode, &laneMasks[8-n], &laneMasks[8-kc%8])
}
