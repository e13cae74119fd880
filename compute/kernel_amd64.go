//go:build amd64 && !purego

package compute

// useAsm selects the AVX2+FMA kernels. It is decided once from CPUID; tests
// clear it to exercise the portable path on machines that have AVX2.
var useAsm = hasAVX2FMA()

//go:noescape
func sgemmKernel6x16(kc int, a, b, c *float32, ldc int, beta float32, mode int, pf *float32)

// microKernel computes a 6×16 tile (see sgemmKernel6x16); pf is a prefetch
// hint (memory the driver will need soon; kc/8 lines of it are touched). The
// slice expressions below are the bounds checks the assembly cannot do.
func microKernel(kc int, a, b, c []float32, ldc int, beta float32, mode int, pf []float32) {
	if !useAsm {
		kernelGo(kc, a, b, c, ldc, beta, mode)
		return
	}
	_ = a[kc*mr-1]
	_ = b[kc*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	_ = pf[0] // prefetches may run past pf's end: they are hints and never fault
	sgemmKernel6x16(kc, &a[0], &b[0], &c[0], ldc, beta, mode, &pf[0])
}

//go:noescape
func packA6N(n8 int, a *float32, lda int, d *float32, alpha float32)

//go:noescape
func sgemmKernel12x8(kc int, a0, a1, b, c *float32, ldc int, beta float32, mode int)

// hasNarrowKernel reports whether microKernel12x8 is available.
func hasNarrowKernel() bool { return useAsm }

// microKernel12x8 computes a 12×8 tile from two packed A tiles and the first
// 8 columns of a packed B micro-panel (see sgemmKernel12x8).
func microKernel12x8(kc int, a0, a1, b, c []float32, ldc int, beta float32, mode int) {
	_ = a0[kc*mr-1]
	_ = a1[kc*mr-1]
	_ = b[kc*nr-1]
	_ = c[(2*mr-1)*ldc+8-1]
	sgemmKernel12x8(kc, &a0[0], &a1[0], &b[0], &c[0], ldc, beta, mode)
}

//go:noescape
func packAT(ntiles, kc int, a *float32, lda int, d *float32, ts int, alpha float32)

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

// packATilesT packs ntiles full 6-row tiles of transposed A, tile stride ts
// floats (see packATilesTGo).
func packATilesT(ntiles, kc int, a []float32, lda int, d []float32, ts int, alpha float32) {
	if !useAsm || kc == 0 || ntiles == 0 {
		packATilesTGo(ntiles, kc, a, lda, d, ts, alpha)
		return
	}
	_ = a[(kc-1)*lda+ntiles*mr-1]
	_ = d[(ntiles-1)*ts+kc*mr-1]
	packAT(ntiles, kc, &a[0], lda, &d[0], ts, alpha)
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

// SIMD reports whether the AVX2+FMA kernels run. Results agree across
// machines only within a path: the kernels round differently from the
// portable Go ones.
func SIMD() bool { return useAsm }
