//go:build amd64 && !purego

package compute

import "sync"

// cpuid executes the CPUID instruction with EAX=eaxArg, ECX=ecxArg.
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// xgetbv0 reads extended control register 0 (which register states the OS
// saves on context switch).
func xgetbv0() (eax, edx uint32)

// hasAVX2FMA reports whether the CPU has AVX2 and FMA3 and the OS saves the
// YMM registers. We read CPUID ourselves instead of importing
// golang.org/x/sys/cpu so the package stays dependency-free.
func hasAVX2FMA() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
	)
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	// XCR0 bits 1 (SSE state) and 2 (AVX state) must both be enabled.
	if xcr0, _ := xgetbv0(); xcr0&6 != 6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const avx2 = 1 << 5
	return ebx7&avx2 != 0
}

// The AVX-512 features the kernels use, read once: each needs the OS to
// save the opmask and full ZMM state (XCR0 bits 5–7) besides its CPUID bit.
var avx512 = sync.OnceValue(func() (f struct{ f, bw, dq, bf16 bool }) {
	if !hasAVX2FMA() {
		return f
	}
	if xcr0, _ := xgetbv0(); xcr0&0xe0 != 0xe0 {
		return f
	}
	_, ebx7, _, _ := cpuid(7, 0)
	eax71, _, _, _ := cpuid(7, 1)
	const (
		avx512f    = 1 << 16 // CPUID.7.0:EBX
		avx512bw   = 1 << 30 // CPUID.7.0:EBX: byte/word ops, 64-bit opmask moves and shifts
		avx512dq   = 1 << 17 // CPUID.7.0:EBX: VPMULLQ
		avx512bf16 = 1 << 5  // CPUID.7.1:EAX: VDPBF16PS
	)
	f.f = ebx7&avx512f != 0
	f.bw = f.f && ebx7&avx512bw != 0
	f.dq = f.f && ebx7&avx512dq != 0
	f.bf16 = f.f && eax71&avx512bf16 != 0
	return f
})

// hasAVX512F: AVX-512 Foundation (the zmm GEMM, GELU, exp kernels).
func hasAVX512F() bool { return avx512().f }

// hasAVX512BW: AVX-512 byte/word (the opmask dropout kernel).
func hasAVX512BW() bool { return avx512().bw }

// hasAVX512DQ: AVX-512 doubleword/quadword (the dropout masks' generator).
func hasAVX512DQ() bool { return avx512().dq }

// hasAVX512BF16: AVX512_BF16 (the bf16 frozen-weight kernel).
func hasAVX512BF16() bool { return avx512().bf16 }
