package compute

import (
	"fmt"
)

// Transpose says whether a GEMM operand is used as stored or transposed.
type Transpose bool

const (
	NoTrans Transpose = false
	Trans   Transpose = true
)

// Blocking (Goto/BLIS scheme). The product is built from mr×nr tiles of C,
// each computed by a micro-kernel that keeps the tile in 12 ymm registers and
// streams one packed A micro-panel (mr rows × kc, stored k-major: 6 floats per
// k step) and one packed B micro-panel (kc × nr, 16 floats per k step).
//
//	mr×nr = 6×16: 12 accumulators + 2 B registers + 2 broadcast registers use
//	    all 16 ymm registers; per k step 2 loads and 6 broadcasts feed 12
//	    FMAs, which keeps both FMA pipes of a Zen 3 core busy (the kernel
//	    alone runs at ~95% of the FMA peak with its panels in L1).
//	kcMax = 384: depth of one pass. K is split into equal passes of at most
//	    kcMax (k=768 → 2×384). A B micro-panel is kc·16·4 = 24 KiB and stays
//	    in the 32 KiB L1d while the kernel sweeps down a block of A; the next
//	    one is prefetched into L2 during the sweep. Each pass reads and
//	    writes all of C once, so fewer, deeper passes save C traffic: on this
//	    machine 384 measured 2–4% faster than BLIS's Zen 3 choice of 256
//	    (3 passes at k=768), and 768 (B panel in L2) was no better on
//	    average.
//	mcMax = 96: rows of A per packed block; 96×384·4 = 144 KiB stays in the
//	    512 KiB L2 next to the B panels streaming through it. 72–192 measured
//	    within noise of each other; 96 also splits M=1024 into 12 even parts
//	    for two threads.
//	ncMax = 4096: columns of packed B swept per A block (kc×nc·4 = 6 MiB, an
//	    L3-sized block); the target layers (n ≤ 3072) take one sweep.
//
// Measured on a shared 2-core Zen 3 EPYC VM (32 KiB L1d, 512 KiB L2, 32 MiB
// L3) with the BenchmarkGemm shapes, best of repeated runs; differences under
// ~3% were within the noise of the shared machine.
//
// Where 512-bit FMAs run at full width (kernel512_amd64.go decides), a
// 12×32 AVX-512 kernel takes two A tiles and two adjacent B panels at once
// (24 zmm accumulators; 2 loads and 12 broadcasts per 24 FMAs), and a
// 24×16 one four A tiles and one panel (A broadcast from memory: 25 loads
// per 24 FMAs) where a panel has no whole partner, on the same packed
// layouts and with the same bits.
const (
	mr    = 6
	zr    = 24 // rows of the AVX-512 kernel's tile: four A tiles
	nr    = 16
	kcMax = 384
	mcMax = 96
	ncMax = 4096
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
//
// Large products are split over Threads() goroutines; Gemm may be called from
// several goroutines at once.
func Gemm(tA, tB Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(tA, tB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleMatrix(m, n, beta, c, ldc)
		return
	}
	if m*n*k <= smallGemm {
		// Packing costs more than it saves on tiny products (a few
		// thousand multiply-adds), e.g. the 8×8 adapter factors.
		gemmSmall(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	switch {
	case m == 1:
		gemvRow(tA, tB, n, k, alpha, a, lda, b, ldb, beta, c)
	case n == 1:
		gemvCol(tA, tB, m, k, alpha, a, lda, b, ldb, beta, c, ldc)
	case useSkinny(tA, m, n, k):
		gemmSkinnyN(tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, Threads())
	case useTN(tA, tB, m, n, k):
		gemmTN(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, Threads())
	default:
		gemmBlocked(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, Threads())
	}
}

// smallGemm is the largest m·n·k that goes to the plain loops.
const smallGemm = 4096

// maxPackedB bounds the scratch copy of a B block that Gemm packs (floats,
// 32 MiB); a wider B is processed in column chunks of at most this size.
const maxPackedB = 8 << 20

// gemmBlocked runs the product one k pass at a time (Goto's order): it packs
// the kc×n block of op(B) for the pass (in column chunks when very wide) and
// runs the packed product on it, adding to C after the first pass. Packing
// a pass just before it is used keeps the packed block (4.5 MiB for
// 384×3072) hot in L3 while every row block of A sweeps it, and needs half
// the scratch of packing all of B first (which, for 1024×3072×768, timed
// 2–10% slower: the early passes had left the cache by the time they were
// used). Each element of C is summed in the same order as by GemmPacked, so
// the two agree bit for bit.
func gemmBlocked(tA, tB Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, threads int) {
	kc := chooseKC(k)
	npad := roundUp(n, nr)
	chunk := npad
	if kc*chunk > maxPackedB {
		chunk = max(nr, maxPackedB/kc/nr*nr)
	}
	buf := getFloats(kc * chunk)
	defer putFloats(buf)
	for j0 := 0; j0 < n; j0 += chunk {
		nc := min(chunk, n-j0)
		for p0 := 0; p0 < k; p0 += kc {
			kcb := min(kc, k-p0)
			// op(B)[p0:p0+kcb, j0:j0+nc] and op(A)[:, p0:p0+kcb].
			var bj, aj []float32
			if tB {
				bj = b[j0*ldb+p0:]
			} else {
				bj = b[p0*ldb+j0:]
			}
			if tA {
				aj = a[p0*lda:]
			} else {
				aj = a[p0:]
			}
			pb := PackedB{k: kcb, n: nc, kc: kcb, data: (*buf)[:kcb*roundUp(nc, nr)]}
			packBAll(&pb, tB, bj, ldb, threads)
			betaPass := beta
			if p0 > 0 {
				betaPass = 1
			}
			gemmPacked(tA, m, alpha, aj, lda, &pb, betaPass, c[j0:], ldc, threads)
		}
	}
}

// chooseKC splits k into equal passes of at most kcMax (so k=768 gives two
// passes of 384 and k=400 two of 200 rather than 384+16).
func chooseKC(k int) int {
	if k <= kcMax {
		return max(k, 1)
	}
	nb := (k + kcMax - 1) / kcMax
	return (k + nb - 1) / nb
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// scaleMatrix sets C = beta·C (C m×n), clearing instead when beta is 0 so
// that NaN in the old C is not propagated.
func scaleMatrix(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		scaleRow(beta, ci)
	}
}

// gemmSmall is the plain triple loop's arithmetic for tiny products,
// element for element in the same order — C's beta scaling, then + (alpha·a_ip)·b_pj for p = 0
// … k−1, a zero alpha·a_ip skipped, every product and sum rounded to
// float32 — with each row update on vector lanes (MulAdd) and a transposed
// B turned around once (k·n ≤ smallGemm floats, on the stack), so that its
// rows are contiguous too. The short-sequence attention of the built-in
// decoder makes thousands of these per step (a fifth of the README's
// simulation ran the scalar loops); TestGemmSmall holds it to the loops'
// bits (gemmRef there).
func gemmSmall(tA, tB Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	var turned [smallGemm]float32
	if tB {
		for j := 0; j < n; j++ {
			for p := 0; p < k; p++ {
				turned[p*n+j] = b[j*ldb+p]
			}
		}
		b, ldb = turned[:k*n], n
	}
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
			mulAdd(aip, b[p*ldb:p*ldb+n], ci)
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
