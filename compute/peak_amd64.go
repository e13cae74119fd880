//go:build amd64 && !purego

package compute

func fmaLoopYMM(iters int)
func fmaLoopZMM(iters int)
func bf16DotLoop(iters int)

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
