//go:build amd64 && !purego

package compute

import (
	"fmt"
	"os"
	"sync"
	"time"
)

//go:noescape
func sgemmKernel24x16(kc int, a *float32, ts int, b, c *float32, ldc int, beta float32, mode int, pf *float32)

// microKernel24x16 computes a 24×16 tile from the four packed 6-row A tiles
// at a[0:], a[ts:], a[2ts:], a[3ts:] and a packed B micro-panel (see
// sgemmKernel24x16). The slice expressions are the bounds checks the
// assembly cannot do.
func microKernel24x16(kc int, a []float32, ts int, b, c []float32, ldc int, beta float32, mode int, pf []float32) {
	_ = a[3*ts+kc*mr-1]
	_ = b[kc*nr-1]
	_ = c[(zr-1)*ldc+nr-1]
	_ = pf[0] // prefetches may run past pf's end: hints never fault
	sgemmKernel24x16(kc, &a[0], ts, &b[0], &c[0], ldc, beta, mode, &pf[0])
}

//go:noescape
func sgemmKernel12x32(kc int, a *float32, ts int, b *float32, bs int, c *float32, ldc int, beta float32, mode int, pf *float32)

// microKernel12x32 computes a 12×32 tile from the two packed 6-row A tiles
// at a[0:], a[ts:] and the two packed B micro-panels at b[0:], b[bs:] (see
// sgemmKernel12x32): the same bits as two 24×16 calls' halves.
func microKernel12x32(kc int, a []float32, ts int, b []float32, bs int, c []float32, ldc int, beta float32, mode int, pf []float32) {
	_ = a[ts+kc*mr-1]
	_ = b[bs+kc*nr-1]
	_ = c[(2*mr-1)*ldc+2*nr-1]
	_ = pf[0] // prefetches may run past pf's end: hints never fault
	sgemmKernel12x32(kc, &a[0], ts, &b[0], bs, &c[0], ldc, beta, mode, &pf[0])
}

// kernelOverride forces the kernel width in tests: 0 decides as below,
// +1 forces the AVX-512 kernel (where the CPU has it), -1 the AVX2 one.
var kernelOverride int

// useZMM reports whether the 24×16 AVX-512 kernel runs.
func useZMM() bool {
	if !useAsm {
		return false
	}
	switch kernelOverride {
	case 1:
		return hasAVX512F()
	case -1:
		return false
	}
	return zmmChoice().use
}

type kernelDecision struct {
	use    bool
	reason string
}

// zmmChoice decides once per process whether the AVX-512 kernel pays:
// only where the CPU has AVX-512F and runs 512-bit FMAs at (nearly) twice
// the 256-bit rate. Zen 4 and some Intel parts execute a zmm FMA as two
// 256-bit halves, where the AVX2 kernel is as fast and keeps the clock up,
// so the rates are measured (about a millisecond) rather than assumed from
// CPUID. KRONFED_SIMD=avx2 or avx512 overrides the measurement.
var zmmChoice = sync.OnceValue(func() kernelDecision {
	switch env := os.Getenv("KRONFED_SIMD"); env {
	case "avx2":
		return kernelDecision{false, "AVX2 kernels (KRONFED_SIMD=avx2)"}
	case "avx512":
		if hasAVX512F() {
			return kernelDecision{true, "AVX-512 kernels (KRONFED_SIMD=avx512)"}
		}
		return kernelDecision{false, "AVX2 kernels (KRONFED_SIMD=avx512 asked, but this CPU or OS has no AVX-512F)"}
	case "", "auto":
	default:
		fmt.Fprintf(os.Stderr, "kronfed: KRONFED_SIMD=%q not understood (want auto, avx2 or avx512); deciding by measurement\n", env)
	}
	if !hasAVX512F() {
		return kernelDecision{false, "AVX2 kernels (no AVX-512F)"}
	}
	ymm, zmm := quickFMARate(fmaLoopYMM, 8), quickFMARate(fmaLoopZMM, 16)
	ratio := zmm / ymm
	if ratio >= zmmMinSpeedup {
		return kernelDecision{true, fmt.Sprintf("AVX-512 kernels (512-bit FMAs measured at %.2f× the 256-bit rate)", ratio)}
	}
	return kernelDecision{false, fmt.Sprintf("AVX2 kernels (512-bit FMAs measured at only %.2f× the 256-bit rate)", ratio)}
})

// zmmMinSpeedup is the measured zmm/ymm FMA rate above which 512-bit FMAs
// count as full width (full width measures ~1.95–2.0, split ~1.0).
const zmmMinSpeedup = 1.5

// bf16Choice decides once per process whether bf16 frozen weights pay on
// this CPU: AVX512_BF16 is there and one VDPBF16PS's multiply-adds run at
// least bf16MinSpeedup times the rate of the fp32 FMAs the GEMM kernels
// use. Zen 5 measures ~1.8× (two bf16 products per fp32 lane at full
// width); an Emerald Rapids VM measured 0.49×, where bf16 would make the
// frozen GEMMs twice as slow. Measured like zmmChoice (about a millisecond).
var bf16Choice = sync.OnceValue(func() kernelDecision {
	if !useAsm || !hasAVX512BF16() {
		return kernelDecision{false, "no AVX512_BF16"}
	}
	fp32, lanes := fmaLoopYMM, 8
	if useZMM() {
		fp32, lanes = fmaLoopZMM, 16
	}
	ratio := quickFMARate(bf16DotLoop, 32) / quickFMARate(fp32, lanes)
	if ratio >= bf16MinSpeedup {
		return kernelDecision{true, fmt.Sprintf("bf16 products measured at %.2f× the fp32 FMA rate", ratio)}
	}
	return kernelDecision{false, fmt.Sprintf("bf16 products measured at only %.2f× the fp32 FMA rate", ratio)}
})

// quickFMARate is the best of a few short runs of a peak loop, in lane-FMAs
// per nanosecond (only the ratio of two of these is used).
func quickFMARate(loop func(int), lanes int) float64 {
	const iters = 1 << 14
	loop(iters) // warm-up
	var best float64
	for range 5 {
		start := time.Now()
		loop(iters)
		best = max(best, float64(iters*12*lanes)/float64(time.Since(start).Nanoseconds()))
	}
	return best
}

// KernelChoice says which GEMM kernels this process uses and why, for
// benchmark headers and `client bench kernels`.
func KernelChoice() string {
	if !useAsm {
		return "portable Go kernels"
	}
	switch kernelOverride {
	case 1:
		return "AVX-512 kernels (forced)"
	case -1:
		return "AVX2 kernels (forced)"
	}
	return zmmChoice().reason
}

// KernelWidth is the vector width the fp32 GEMM kernels run at: "zmm",
// "ymm", or "portable".
func KernelWidth() string {
	switch {
	case useZMM():
		return "zmm"
	case useAsm:
		return "ymm"
	}
	return "portable"
}
