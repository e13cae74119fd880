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

func packATile6N(kc int, a []float32, lda int, d []float32, alpha float32) {
	packATile6NGo(kc, a, lda, d, alpha)
}

func packATile6T(kc int, a []float32, lda int, d []float32, alpha float32) {
	packATile6TGo(kc, a, lda, d, alpha)
}

func packBPanel16N(kc int, b []float32, ldb int, d []float32) { packBPanel16NGo(kc, b, ldb, d) }

func packBPanel16T(kc int, b []float32, ldb int, d []float32) { packBPanel16TGo(kc, b, ldb, d) }

func axpy(alpha float32, x, y []float32)                          { axpyGo(alpha, x, y) }
func axpy2(a0 float32, x0 []float32, a1 float32, x1, y []float32) { axpy2Go(a0, x0, a1, x1, y) }
func dot(x, y []float32) float32                                  { return dotGo(x, y) }
func scale(alpha float32, x []float32)                            { scaleGo(alpha, x) }
