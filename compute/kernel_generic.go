//go:build !amd64 || purego

package compute

// useAsm is always false without the amd64 assembly; it exists so tests can
// set it on every architecture.
var useAsm = false

func microKernel(kc int, a, b, c []float32, ldc int, beta float32, mode int, pf []float32) {
	kernelGo(kc, a, b, c, ldc, beta, mode)
}

// hasNarrowKernel: the portable path has only the 6×16 kernel.
func hasNarrowKernel() bool { return false }

func microKernel12x8(kc int, a0, a1, b, c []float32, ldc int, beta float32, mode int) {
	panic("compute: microKernel12x8 without assembly")
}

func packATile6N(kc int, a []float32, lda int, d []float32, alpha float32) {
	packATile6NGo(kc, a, lda, d, alpha)
}

func packATilesT(ntiles, kc int, a []float32, lda int, d []float32, ts int, alpha float32) {
	packATilesTGo(ntiles, kc, a, lda, d, ts, alpha)
}

func packBPanel16N(kc int, b []float32, ldb int, d []float32) { packBPanel16NGo(kc, b, ldb, d) }

func packBPanel16T(kc int, b []float32, ldb int, d []float32) { packBPanel16TGo(kc, b, ldb, d) }

func axpy(alpha float32, x, y []float32)                          { axpyGo(alpha, x, y) }
func axpy2(a0 float32, x0 []float32, a1 float32, x1, y []float32) { axpy2Go(a0, x0, a1, x1, y) }
func dot(x, y []float32) float32                                  { return dotGo(x, y) }
func scale(alpha float32, x []float32)                            { scaleGo(alpha, x) }
func maxOf(x []float32) float32                                   { return maxGo(x) }

// SIMD reports whether the AVX2+FMA kernels run: never on this platform.
func SIMD() bool { return false }

func useZMM() bool { return false }

// kernelOverride exists so tests can set it on every architecture.
var kernelOverride int

func microKernel24x16(kc int, a []float32, ts int, b, c []float32, ldc int, beta float32, mode int, pf []float32) {
	panic("compute: microKernel24x16 without assembly")
}

func microKernel12x32(kc int, a []float32, ts int, b []float32, bs int, c []float32, ldc int, beta float32, mode int, pf []float32) {
	panic("compute: microKernel12x32 without assembly")
}

// KernelChoice says which GEMM kernels this process uses.
func KernelChoice() string { return "portable Go kernels" }

func hasAVX512BF16() bool { return false }

func hasAVX512DQ() bool { return false }

func microKernelBF16(pairs int, a []uint16, ts int, b []uint16, c []float32, ldc int, beta float32, mode int) {
	panic("compute: bf16 kernel without assembly")
}

// KernelWidth is the vector width the fp32 GEMM kernels run at.
func KernelWidth() string { return "portable" }

func bf16DotTest(dst, src1, src2 *[16]float32, form int) {
	panic("compute: bf16DotTest without assembly")
}

func bf16Pairs(dst []uint32, src []float32, alpha float32) { bf16PairsGo(dst, src, alpha) }

// bf16Choice: the portable build has no bf16 kernels.
func bf16Choice() kernelDecision {
	return kernelDecision{false, "no AVX512_BF16 kernels in this build"}
}

type kernelDecision struct {
	use    bool
	reason string
}

func mulAdd(alpha float32, x, y []float32) { mulAddGo(alpha, x, y) }
