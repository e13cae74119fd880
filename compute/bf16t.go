package compute

import (
	"unsafe"
)

// A bf16 base can keep one packed copy per frozen weight instead of two:
// the forward copy of Wᵀ (k pairs along d_in) and, for the backward dy·W,
// the layout PackBBF16 gives W itself (k pairs along d_out) rebuilt from it
// into scratch for the duration of the product. In both layouts a 16×16
// block of the matrix is 512 contiguous bytes — 8 pair rows of 16 columns
// — and, reading each 2×2 group (column pair × row pair) as one 64-bit
// word, rebuilding a block is an 8×8 transpose of those words with the
// middle two bf16 values of each swapped. Blocks that straddle a pass or an
// edge are copied value by value.

// GemmPackedT computes C = alpha·op(A)·op(B)ᵀ + beta·C where pb is a bf16
// PackedB of op(B) (k×n, from PackBBF16): op(A) is m×n (A m×n with lda ≥ n,
// or n×m with lda ≥ m when tA is Trans) and C is m×k (ldc ≥ k). It is
// GemmPacked over PackBBF16 of op(B)ᵀ, bit for bit, without keeping that
// second copy: it is rebuilt from pb into pooled scratch for the call (the
// size of pb, a small fraction of the product's time).
func GemmPackedT(tA Transpose, m int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int) {
	if !pb.BF16() {
		panic("compute: GemmPackedT needs a bf16 PackedB")
	}
	k, n := pb.n, pb.k // of the product: op(A) is m×k, op(B)ᵀ is k×n
	if trivialPackedGemm(tA, m, k, n, alpha, a, lda, beta, c, ldc) {
		return
	}
	kc := chooseKCBF16(k)
	buf := getUint16s(bf16Size(k, n, kc)) // 64-byte aligned, as the kernel wants
	defer putUint16s(buf)
	t := &PackedB{k: k, n: n, kc: kc, bf: *buf}
	transposeBF16(pb, t)
	gemmPacked(tA, m, alpha, a, lda, t, beta, c, ldc, Threads())
}

// transposeBF16 fills t (k×n, its kc and storage set) with the bf16 packing
// of sᵀ (s: n×k), its panels split over the GEMM threads.
func transposeBF16(s, t *PackedB) {
	k, n := t.k, t.n
	fast := s.kc%nr == 0 && t.kc%nr == 0 // 16-blocks never straddle a pass
	if !fast || k%nr != 0 || n%nr != 0 {
		clear(t.bf) // padding and ragged blocks are not all written below
	}
	nblk, npan := (k+t.kc-1)/t.kc, (n+nr-1)/nr
	one := func(i int) {
		blk, jp := i/npan, i%npan
		p0 := blk * t.kc
		kcb := min(t.kc, k-p0)
		dst, _ := t.panelBF16(blk, jp)
		j0 := jp * nr
		for r0 := p0; r0 < p0+kcb; r0 += nr {
			if fast && r0+nr <= p0+kcb && j0+nr <= n {
				// t rows r0..r0+15 are s columns: s panel r0/16;
				// t columns j0..j0+15 are s rows: s pass j0/s.kc.
				sblk := j0 / s.kc
				src, _ := s.panelBF16(sblk, r0/nr)
				q := (j0 - sblk*s.kc) / 2
				transposeBlockBF16(dst[(r0-p0)/2*2*nr:][:8*2*nr], src[q*2*nr:][:8*2*nr])
				continue
			}
			for r := r0; r < min(r0+nr, p0+kcb); r++ {
				for j := j0; j < min(j0+nr, n); j++ {
					dst[((r-p0)/2*nr+j-j0)*2+(r-p0)%2] = s.bf16At(j, r)
				}
			}
		}
	}
	forChunks(nblk*npan, Threads(), k*n < 1<<16, one)
}

// bf16At is element (r, c) of the bf16 packed op(B) (r < k, c < n).
func (p *PackedB) bf16At(r, c int) uint16 {
	blk := r / p.kc
	d, _ := p.panelBF16(blk, c/nr)
	rr := r - blk*p.kc
	return d[(rr/2*nr+c%nr)*2+rr%2]
}

// transposeBlockBF16 rebuilds one 16×16 block: dst and src are 8 pair rows
// of 16 columns × 2 (128 uint16 each, 64-bit words (row i, word j) at
// i·8+j); dst word (a, b) is src word (b, a) with its two middle values
// swapped.
func transposeBlockBF16(dst, src []uint16) {
	s := (*[64]uint64)(unsafe.Pointer(&src[0]))
	d := (*[64]uint64)(unsafe.Pointer(&dst[0]))
	for a := 0; a < 8; a++ {
		for b := 0; b < 8; b++ {
			w := s[b*8+a]
			d[a*8+b] = w&0xffff_0000_0000_ffff | w>>16&0x0000_0000_ffff_0000 | w<<16&0x0000_ffff_0000_0000
		}
	}
}
