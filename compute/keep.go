package compute

import "fmt"

// KeepWords8 draws dropout keep words for up to eight mask chunks at once,
// on AVX-512 lanes: chunk i < streams is keep[i·words : (i+1)·words], drawn
// from math/rand/v2's PCG stream rand.NewPCG(seed, c0+i) exactly as
// package adapter's one-stream loop draws it — each 64-bit draw gives four
// 16-bit uniforms, element j of a word (bit j) is kept when uniform j is ≥
// threshold. One stream's draws are a chain of 128-bit multiplies that Go
// compiles to ~60 instructions per draw; eight streams side by side in zmm
// lanes take ~45 instructions per eight draws.
//
// It returns false, drawing nothing, where the CPU lacks AVX-512F/DQ or the
// GEMMs do not run zmm at full width (useZMM); the caller then draws the
// chunks one by one. It panics on arguments no caller should pass.
func KeepWords8(keep []uint64, words, streams int, seed, c0, threshold uint64) bool {
	if streams < 1 || streams > 8 || words < 1 || len(keep) < streams*words || threshold > 1<<16 {
		panic(fmt.Sprintf("compute: KeepWords8 with %d streams of %d words in %d, threshold %d", streams, words, len(keep), threshold))
	}
	add := (1<<16 - threshold) * 0x0000000100000001
	return keepWords8(keep, words, streams, seed, c0, add)
}
