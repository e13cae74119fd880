package compute

import "fmt"

// Transpose says whether a GEMM operand is used as stored or transposed.
type Transpose bool

const (
	NoTrans Transpose = false
	Trans   Transpose = true
)

// Gemm computes C = alpha·op(A)·op(B) + beta·C.
//
//	op(A): m×k — A is m×k (lda ≥ k), or k×m (lda ≥ m) when tA is Trans
//	op(B): k×n — B is k×n (ldb ≥ n), or n×k (ldb ≥ k) when tB is Trans
//	C:     m×n (ldc ≥ n)
//
// When beta is 0, C is overwritten and its old contents (even NaN) are ignored.
// Gemm panics only on programmer errors (slices too short for the shapes given);
// callers validate shapes that come from files or the network.
func Gemm(tA, tB Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(tA, tB, m, n, k, a, lda, b, ldb, c, ldc)
	gemmRef(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmRef is the plain triple loop. It is the portable fallback and the
// reference the fast paths are tested against.
func gemmRef(tA, tB Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(ci)
		} else if beta != 1 {
			for j := range ci {
				ci[j] *= beta
			}
		}
		for p := 0; p < k; p++ {
			var aip float32
			if tA {
				aip = a[p*lda+i]
			} else {
				aip = a[i*lda+p]
			}
			aip *= alpha
			if aip == 0 {
				continue
			}
			if tB {
				for j := range ci {
					ci[j] += aip * b[j*ldb+p]
				}
			} else {
				bp := b[p*ldb : p*ldb+n]
				for j, v := range bp {
					ci[j] += aip * v
				}
			}
		}
	}
}

func checkGemm(tA, tB Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("compute: negative GEMM size m=%d n=%d k=%d", m, n, k))
	}
	rowsA, colsA := m, k
	if tA {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if tB {
		rowsB, colsB = n, k
	}
	checkMatrix("A", a, rowsA, colsA, lda)
	checkMatrix("B", b, rowsB, colsB, ldb)
	checkMatrix("C", c, m, n, ldc)
}

func checkMatrix(name string, x []float32, rows, cols, ld int) {
	if rows == 0 || cols == 0 {
		return
	}
	if ld < cols {
		panic(fmt.Sprintf("compute: %s leading dimension %d < %d columns", name, ld, cols))
	}
	if need := (rows-1)*ld + cols; len(x) < need {
		panic(fmt.Sprintf("compute: %s has %d elements, %d×%d with ld %d needs %d", name, len(x), rows, cols, ld, need))
	}
}
