package cuda

import (
	"fmt"
	"math"
)

// rowGemm is a row-major GEMM as Gemm receives it (compute.Gemm's conventions):
//
//	C (m×n, ldc) = alpha·op(A)·op(B) + beta·C
//	op(A) m×k: A is m×k (lda ≥ k), or k×m (lda ≥ m) when transA
//	op(B) k×n: B is k×n (ldb ≥ n), or n×k (ldb ≥ k) when transB
//
// Strides (elements between consecutive problems) matter only when batched.
type rowGemm struct {
	transA, transB            bool
	m, n, k                   int
	lda, ldb, ldc             int
	strideA, strideB, strideC int64
	batch                     int
}

// colGemm is the column-major cuBLAS call computing the same thing. A
// row-major r×c matrix with leading dimension ld is, byte for byte, the
// column-major c×r matrix (its transpose) with the same ld, so the row-major
// C = op(A)·op(B) is the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: cuBLAS's first
// operand is our B and its second our A, and m and n swap.
type colGemm struct {
	opA, opB         int   // cublasOperation_t: 0 = CUBLAS_OP_N, 1 = CUBLAS_OP_T
	m, n, k          int   // cuBLAS's m, n, k
	lda, ldb, ldc    int   // cuBLAS's leading dimensions
	strideA, strideB int64 // cuBLAS's operand strides (ours swapped)
	strideC          int64
	swapped          bool // always true: cuBLAS's A is our B and its B our A
}

const (
	cublasOpN = 0 // CUBLAS_OP_N
	cublasOpT = 1 // CUBLAS_OP_T
)

func op(t bool) int {
	if t {
		return cublasOpT
	}
	return cublasOpN
}

// toColMajor validates a row-major GEMM and maps it to the column-major call.
func toColMajor(g rowGemm) (colGemm, error) {
	if g.m < 0 || g.n < 0 || g.k < 0 {
		return colGemm{}, fmt.Errorf("gpu: gemm sizes m=%d n=%d k=%d: negative", g.m, g.n, g.k)
	}
	for _, v := range []int{g.m, g.n, g.k, g.lda, g.ldb, g.ldc, g.batch} {
		if v > math.MaxInt32 {
			return colGemm{}, fmt.Errorf("gpu: gemm m=%d n=%d k=%d lda=%d ldb=%d ldc=%d batch=%d: cuBLAS takes 32-bit sizes",
				g.m, g.n, g.k, g.lda, g.ldb, g.ldc, g.batch)
		}
	}
	// Stored shapes (rows×cols) of A and B, row-major.
	aRows, aCols := g.m, g.k
	if g.transA {
		aRows, aCols = g.k, g.m
	}
	bRows, bCols := g.k, g.n
	if g.transB {
		bRows, bCols = g.n, g.k
	}
	if g.lda < max(1, aCols) {
		return colGemm{}, fmt.Errorf("gpu: gemm lda=%d < %d (A is %d×%d, row-major)", g.lda, max(1, aCols), aRows, aCols)
	}
	if g.ldb < max(1, bCols) {
		return colGemm{}, fmt.Errorf("gpu: gemm ldb=%d < %d (B is %d×%d, row-major)", g.ldb, max(1, bCols), bRows, bCols)
	}
	if g.ldc < max(1, g.n) {
		return colGemm{}, fmt.Errorf("gpu: gemm ldc=%d < %d (C is %d×%d, row-major)", g.ldc, max(1, g.n), g.m, g.n)
	}
	if g.batch < 0 || g.strideA < 0 || g.strideB < 0 || g.strideC < 0 {
		return colGemm{}, fmt.Errorf("gpu: gemm batch=%d strides %d %d %d: negative", g.batch, g.strideA, g.strideB, g.strideC)
	}
	// Batched outputs must not overlap, or the problems race. Inputs may
	// (stride 0 broadcasts one matrix to every problem).
	if g.batch > 1 && g.m > 0 && g.n > 0 {
		if span := int64(g.m-1)*int64(g.ldc) + int64(g.n); g.strideC < span {
			return colGemm{}, fmt.Errorf("gpu: gemm strideC=%d < %d: the %d outputs (C is %d×%d, ldc %d) would overlap",
				g.strideC, span, g.batch, g.m, g.n, g.ldc)
		}
	}
	return colGemm{
		opA: op(g.transB), opB: op(g.transA),
		m: g.n, n: g.m, k: g.k,
		lda: g.ldb, ldb: g.lda, ldc: g.ldc,
		strideA: g.strideB, strideB: g.strideA, strideC: g.strideC,
		swapped: true,
	}, nil
}
