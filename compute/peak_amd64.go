//go:build amd64 && !purego

package compute

func fmaLoopYMM(iters int)
func fmaLoopZMM(iters int)

// hasAVX512F reports whether the CPU has AVX-512 Foundation and the OS
// saves the opmask and full ZMM state (XCR0 bits 5–7).
func hasAVX512F() bool {
	if !hasAVX2FMA() {
		return false
	}
	if xcr0, _ := xgetbv0(); xcr0&0xe0 != 0xe0 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const avx512f = 1 << 16
	return ebx7&avx512f != 0
}

// fmaLoop runs iters iterations of 12 FMAs of the width's lanes, or
// reports that this CPU cannot. (For bf16 a "lane" is one of the 32
// multiply-adds of a VDPBF16PS.)
func fmaLoop(width string, iters int) (lanes int, ok bool) {
	switch {
	case width == "ymm" && hasAVX2FMA():
		fmaLoopYMM(iters)
		return 8, true
	case width == "zmm" && hasAVX512F():
		fmaLoopZMM(iters)
		return 16, true
	case width == "bf16" && hasAVX512BF16():
		bf16DotLoop(iters) // 16 lanes × a pair of bf16 products each
		return 32, true
	}
	return 0, false
}
