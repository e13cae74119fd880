//go:build amd64 && !purego

package compute

// useAsm selects the AVX2+FMA kernels. It is decided once from CPUID; tests
// clear it to exercise the portable path on machines that have AVX2.
var useAsm = hasAVX2FMA()

//go:noescape
func sgemmKernel6x16(kc int, a, b, c *float32, ldc int, beta float32, mode int)

// microKernel computes a 6×16 tile (see sgemmKernel6x16). The slice
// expressions below are the bounds checks the assembly cannot do.
func microKernel(kc int, a, b, c []float32, ldc int, beta float32, mode int) {
	if !useAsm {
		kernelGo(kc, a, b, c, ldc, beta, mode)
		return
	}
	_ = a[kc*mr-1]
	_ = b[kc*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	sgemmKernel6x16(kc, &a[0], &b[0], &c[0], ldc, beta, mode)
}

//go:noescape
func packA6N(n8 int, a *float32, lda int, d *float32, alpha float32)

//go:noescape
func packA6T(kc int, a *float32, lda int, d *float32, alpha float32)

//go:noescape
func packB16N(kc int, b *float32, ldb int, d *float32)

//go:noescape
func packB16T(n8 int, b *float32, ldb int, d *float32)

// packATile6N packs a full 6-row tile of row-major A (see packATile6NGo):
// the assembly does groups of 8 k steps, Go the rest.
func packATile6N(kc int, a []float32, lda int, d []float32, alpha float32) {
	if !useAsm || kc < 8 {
		packATile6NGo(kc, a, lda, d, alpha)
		return
	}
	n8 := kc / 8
	_ = a[(mr-1)*lda+kc-1]
	_ = d[kc*mr-1]
	packA6N(n8, &a[0], lda, &d[0], alpha)
	if r := n8 * 8; r < kc {
		packATile6NGo(kc-r, a[r:], lda, d[r*mr:], alpha)
	}
}

// packATile6T packs a full 6-row tile of transposed A (see packATile6TGo).
func packATile6T(kc int, a []float32, lda int, d []float32, alpha float32) {
	if !useAsm || kc == 0 {
		packATile6TGo(kc, a, lda, d, alpha)
		return
	}
	_ = a[(kc-1)*lda+mr-1]
	_ = d[kc*mr-1]
	packA6T(kc, &a[0], lda, &d[0], alpha)
}

// packBPanel16N copies a full 16-column panel of row-major B (see
// packBPanel16NGo).
func packBPanel16N(kc int, b []float32, ldb int, d []float32) {
	if !useAsm || kc == 0 {
		packBPanel16NGo(kc, b, ldb, d)
		return
	}
	_ = b[(kc-1)*ldb+nr-1]
	_ = d[kc*nr-1]
	packB16N(kc, &b[0], ldb, &d[0])
}

// packBPanel16T transposes a full 16-column panel of transposed B (see
// packBPanel16TGo): the assembly does groups of 8 k steps, Go the rest.
func packBPanel16T(kc int, b []float32, ldb int, d []float32) {
	if !useAsm || kc < 8 {
		packBPanel16TGo(kc, b, ldb, d)
		return
	}
	n8 := kc / 8
	_ = b[(nr-1)*ldb+kc-1]
	_ = d[kc*nr-1]
	packB16T(n8, &b[0], ldb, &d[0])
	if r := n8 * 8; r < kc {
		packBPanel16TGo(kc-r, b[r:], ldb, d[r*nr:])
	}
}
