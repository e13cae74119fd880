//go:build amd64 && !purego

package compute

//go:noescape
func sbgemmKernel24x16(kp int, a *uint16, ts int, b *uint16, c *float32, ldc int, beta float32, mode int)

//go:noescape
func bf16DotTest(dst, src1, src2 *[16]float32, form int)

// microKernelBF16 computes a 24×16 tile from four packed bf16 A tiles (at
// a[0:], a[ts:], a[2ts:], a[3ts:]) and a packed bf16 B micro-panel over
// pairs k pairs (see sbgemmKernel24x16).
func microKernelBF16(pairs int, a []uint16, ts int, b []uint16, c []float32, ldc int, beta float32, mode int) {
	_ = a[3*ts+2*mr*pairs-1]
	_ = b[2*nr*pairs-1]
	_ = c[(zr-1)*ldc+nr-1]
	sbgemmKernel24x16(pairs, &a[0], ts, &b[0], &c[0], ldc, beta, mode)
}

//go:noescape
func cvtBF16Pairs(n16 int, src *float32, dst *uint32, alpha float32)

// bf16Pairs stores alpha·src rounded to bf16 as pair words: dst[q] =
// bf16(alpha·src[2q]) | bf16(alpha·src[2q+1])<<16, an odd last value
// paired with zero. len(dst) must be (len(src)+1)/2.
func bf16Pairs(dst []uint32, src []float32, alpha float32) {
	n16 := len(src) / 16
	if n16 > 0 {
		_ = dst[8*n16-1]
		cvtBF16Pairs(n16, &src[0], &dst[0], alpha)
	}
	bf16PairsGo(dst[8*n16:], src[16*n16:], alpha)
}
