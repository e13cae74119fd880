package compute

import "fmt"

// MaskScale applies a dropout keep mask over len(keep) whole 64-element
// words: dst[i] = src[i]·m[i], or with accumulate dst[i] += src[i]·m[i],
// where m[i] is scale when bit i&63 of keep[i>>6] is set and 0 when not.
// dst and src hold exactly 64·len(keep) elements; dst may be src.
//
// A dropped element is multiplied by +0, not skipped, as the scalar loop
// does: NaN and ±Inf inputs still give NaN, and zeros keep the sign of
// src·0, so every path (AVX-512 where the GEMM kernels use it, else Go)
// gives the same bits.
func MaskScale(dst, src []float32, keep []uint64, scale float32, accumulate bool) {
	if len(dst) != 64*len(keep) || len(src) != len(dst) {
		panic(fmt.Sprintf("compute: MaskScale of %d and %d elements with %d mask words", len(dst), len(src), len(keep)))
	}
	if len(keep) == 0 {
		return
	}
	maskScale(dst, src, keep, scale, accumulate)
}

// maskScaleGo is MaskScale in Go.
func maskScaleGo(dst, src []float32, keep []uint64, scale float32, accumulate bool) {
	s := [2]float32{0, scale} // indexed by the keep bit: no branch to mispredict
	for j, w := range keep {
		d, x := dst[64*j:64*j+64], src[64*j:64*j+64]
		if accumulate {
			for k := range d {
				d[k] += float32(x[k] * s[w&1]) // rounded, never fused: the assembly's VMULPS, VADDPS
				w >>= 1
			}
			continue
		}
		for k := range d {
			d[k] = x[k] * s[w&1]
			w >>= 1
		}
	}
}
