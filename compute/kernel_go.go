package compute

// Portable micro-kernel: the same contract as the assembly one (see
// sgemmKernel6x16 in kernel_amd64.s). a is a packed A micro-panel (kc×6),
// b a packed B micro-panel (kc×16), c the top-left of a 6×16 tile of C.
//
// The tile is computed in four 6×4 column slices so the 24 accumulators are
// plain locals the compiler can keep in registers (all of them on arm64's 32
// FP registers).
func kernelGo(kc int, a, b, c []float32, ldc int, beta float32, mode int) {
	a = a[:kc*mr]
	b = b[:kc*nr]
	for j := 0; j < nr; j += 4 {
		var c00, c01, c02, c03 float32
		var c10, c11, c12, c13 float32
		var c20, c21, c22, c23 float32
		var c30, c31, c32, c33 float32
		var c40, c41, c42, c43 float32
		var c50, c51, c52, c53 float32
		for p := 0; p < kc; p++ {
			ap := a[p*mr : p*mr+mr : p*mr+mr]
			bp := b[p*nr+j : p*nr+j+4 : p*nr+j+4]
			b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
			a0 := ap[0]
			c00 += a0 * b0
			c01 += a0 * b1
			c02 += a0 * b2
			c03 += a0 * b3
			a1 := ap[1]
			c10 += a1 * b0
			c11 += a1 * b1
			c12 += a1 * b2
			c13 += a1 * b3
			a2 := ap[2]
			c20 += a2 * b0
			c21 += a2 * b1
			c22 += a2 * b2
			c23 += a2 * b3
			a3 := ap[3]
			c30 += a3 * b0
			c31 += a3 * b1
			c32 += a3 * b2
			c33 += a3 * b3
			a4 := ap[4]
			c40 += a4 * b0
			c41 += a4 * b1
			c42 += a4 * b2
			c43 += a4 * b3
			a5 := ap[5]
			c50 += a5 * b0
			c51 += a5 * b1
			c52 += a5 * b2
			c53 += a5 * b3
		}
		storeRow4(c[0*ldc+j:], c00, c01, c02, c03, beta, mode)
		storeRow4(c[1*ldc+j:], c10, c11, c12, c13, beta, mode)
		storeRow4(c[2*ldc+j:], c20, c21, c22, c23, beta, mode)
		storeRow4(c[3*ldc+j:], c30, c31, c32, c33, beta, mode)
		storeRow4(c[4*ldc+j:], c40, c41, c42, c43, beta, mode)
		storeRow4(c[5*ldc+j:], c50, c51, c52, c53, beta, mode)
	}
}

// storeRow4 applies four accumulated values to c[0:4] with the kernel's mode:
// 0 overwrite, 1 add, 2 beta·c + v.
func storeRow4(c []float32, v0, v1, v2, v3, beta float32, mode int) {
	c = c[:4:4]
	switch mode {
	case 0:
		c[0], c[1], c[2], c[3] = v0, v1, v2, v3
	case 1:
		c[0] += v0
		c[1] += v1
		c[2] += v2
		c[3] += v3
	default:
		c[0] = beta*c[0] + v0
		c[1] = beta*c[1] + v1
		c[2] = beta*c[2] + v2
		c[3] = beta*c[3] + v3
	}
}
