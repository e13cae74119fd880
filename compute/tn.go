package compute

// Weight-gradient products of the adapters: C = alpha·Aᵀ·B + beta·C with A
// k×m and B k×n row-major, k the batch's tokens, and m or n at most 8 (the
// rank): LoRA's ∂A = dHᵀ·X (8×d_in) and ∂B = s·dYᵀ·H (d_out×8), Kron-LoRA's
// ∂B2 and ∂B1 alike. The blocked path packs the whole wide operand (an
// activation of 1024×768, 3 MB) for a product of 2·8·768·1024 flops, so
// packing cost as much as the product: 5–7% of a DistilBERT training step.
// Here the narrow operand is copied (k×8, padded, scaled by alpha when it is
// A) and the wide one streamed once per 32-column strip, each token's 8
// narrow values broadcast against 32 wide ones into 16 zmm accumulators.
//
// The arithmetic is gemmBlocked's, element for element: the same k passes
// (chooseKC), each an FMA chain from zero over the pass in k order on
// alpha-scaled A values, merged into C by mergeTile's rules (the first pass
// by beta, later ones added) — so the result is bit-identical, and nothing
// downstream (golden runs, pinned hashes) can tell which path ran.

// useTN reports whether gemmTN should take the product: AVX-512 (the
// kernel is zmm), Aᵀ·B, and a narrow side of at most 8.
func useTN(tA, tB Transpose, m, n, k int) bool {
	return useZMM() && tA == Trans && tB == NoTrans && (m <= tnNarrow || n <= tnNarrow) && k >= 16
}

const (
	tnNarrow = 8  // the narrow side's width (padded)
	tnStrip  = 32 // wide columns per kernel call
)

// gemmTN computes C = alpha·Aᵀ·B + beta·C (A k×m, B k×n, row-major) with m
// or n ≤ 8; see useTN.
func gemmTN(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, threads int) {
	// The narrow operand s (k×8, zero-padded) and the wide one w with its
	// width; narrowIsA says s came from A (C = s-rows × w-columns) rather
	// than from B (C = w-rows × s-columns, stored transposed).
	narrowIsA := m <= tnNarrow
	nn, wide := m, n
	src, lds, w, ldw := a, lda, b, ldb
	if !narrowIsA {
		nn, wide = n, m
		src, lds, w, ldw = b, ldb, a, lda
	}
	sBuf := getFloats(k * tnNarrow)
	defer putFloats(sBuf)
	s := (*sBuf)[:k*tnNarrow]
	for p := 0; p < k; p++ {
		row, dst := src[p*lds:p*lds+nn], s[p*tnNarrow:(p+1)*tnNarrow]
		for i := range dst {
			switch {
			case i >= nn:
				dst[i] = 0
			case narrowIsA:
				dst[i] = alpha * row[i] // as packA scales A
			default:
				dst[i] = row[i]
			}
		}
	}
	// alpha scales the wide operand when it is A.
	scaleW, alphaW := !narrowIsA && alpha != 1, alpha
	kc := chooseKC(k)
	firstMode := firstPassMode(beta)
	strips := (wide + tnStrip - 1) / tnStrip
	run := func(lo, hi int) {
		var t [tnNarrow * tnStrip]float32
		for st := lo; st < hi; st++ {
			j0 := st * tnStrip
			cols := min(tnStrip, wide-j0)
			for p0 := 0; p0 < k; p0 += kc {
				kcb := min(kc, k-p0)
				tnKernel(kcb, s[p0*tnNarrow:], w[p0*ldw+j0:], ldw, cols, alphaW, scaleW, t[:])
				mode := 1
				if p0 == 0 {
					mode = firstMode
				}
				if narrowIsA {
					mergeTile(t[:], tnStrip, nn, cols, c[j0:], ldc, beta, mode)
				} else {
					mergeTileT(t[:], tnStrip, nn, cols, c[j0*ldc:], ldc, beta, mode)
				}
			}
		}
	}
	if threads < 2 || 2*m*n*k < parallelMinFlops || strips < 2 {
		run(0, strips)
		return
	}
	ParallelRange(strips, 1, run)
}

// mergeTileT is mergeTile for a tile stored transposed: t's row i, column j
// goes to C's row j, column i.
func mergeTileT(t []float32, ts, rows, cols int, c []float32, ldc int, beta float32, mode int) {
	for j := 0; j < cols; j++ {
		cj := c[j*ldc : j*ldc+rows]
		for i := range cj {
			v := t[i*ts+j]
			switch mode {
			case 0:
				cj[i] = v
			case 1:
				cj[i] += v
			default:
				cj[i] = beta*cj[i] + v
			}
		}
	}
}
