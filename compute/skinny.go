package compute

// Products with at most 8 columns of C and row-major A (x·Wᵀ with a rank-r
// adapter factor W, r ≤ 8: the LoRA/Kron-LoRA down projections). Packing A
// would cost about as much as the product, since each element of A takes
// part in only 2n flops; instead each row of A is streamed once and dotted
// with the (at most 8) columns of op(B), which sit in L1 as 8 rows of a
// small transposed copy.

// skinnyKC is the k chunk of the transposed B copy: 8 rows × 512 floats =
// 16 KiB, half of L1, leaving room for the A row being streamed.
const skinnyKC = 512

// useSkinny reports whether gemmSkinnyN should handle the product.
func useSkinny(tA Transpose, m, n, k int) bool {
	return hasDot8() && tA == NoTrans && n <= 8 && m >= 16 && k >= 16
}

// gemmSkinnyN computes C = alpha·A·op(B) + beta·C for n ≤ 8, A m×k
// row-major.
func gemmSkinnyN(tB Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, threads int) {
	// bt holds op(B)ᵀ chunk by chunk: chunk q covers k range
	// [q·skinnyKC, …) as an 8×ldq block (ldq = chunk depth rounded up to 8,
	// rows ≥ n and the padding zero) starting at 8·q·skinnyKC.
	btBuf := getFloats(8 * roundUp(k, 8))
	defer putFloats(btBuf)
	bt := *btBuf
	for p0 := 0; p0 < k; p0 += skinnyKC {
		kcb := min(skinnyKC, k-p0)
		ldq := roundUp(kcb, 8)
		blk := bt[8*p0 : 8*p0+8*ldq]
		clear(blk)
		for j := 0; j < n; j++ {
			row := blk[j*ldq : j*ldq+kcb]
			if tB {
				copy(row, b[j*ldb+p0:j*ldb+p0+kcb])
			} else {
				for p := range row {
					row[p] = b[(p0+p)*ldb+j]
				}
			}
		}
	}
	firstMode := 2
	if beta == 0 {
		firstMode = 0
	} else if beta == 1 {
		firstMode = 1
	}
	run := func(r0, r1 int) {
		for p0 := 0; p0 < k; p0 += skinnyKC {
			kcb := min(skinnyKC, k-p0)
			mode := 1
			if p0 == 0 {
				mode = firstMode
			}
			dot8RowsC(r1-r0, n, kcb, a[r0*lda+p0:], lda, bt[8*p0:], roundUp(kcb, 8), c[r0*ldc:], ldc, alpha, beta, mode)
		}
	}
	parts := 1
	if threads > 1 && 2*m*n*k >= parallelMinFlops/2 {
		parts = min(4*threads, m/16)
	}
	if parts <= 1 {
		run(0, m)
		return
	}
	parallelFor(parts, threads, func(p int) { run(p*m/parts, (p+1)*m/parts) })
}
