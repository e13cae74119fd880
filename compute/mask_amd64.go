//go:build amd64 && !purego

package compute

// maskScaleZMM is MaskScale with AVX-512F/BW: each mask word is loaded into
// an opmask register and its four 16-bit quarters select, per zmm of 16
// floats, scale or +0 as the multiplier. ~10× the Go loop, which spent
// 4–5% of a DistilBERT training step applying dropout masks.
//
//go:noescape
func maskScaleZMM(dst, src *float32, keep *uint64, words int, scale float32, accumulate bool)

// maskScale takes the zmm path where the GEMMs run zmm at full width
// (useZMM, which tests can force either way) and the CPU has AVX512BW
// (KMOVQ, KSHIFTRQ).
func maskScale(dst, src []float32, keep []uint64, scale float32, accumulate bool) {
	if !useZMM() || !hasAVX512BW() {
		maskScaleGo(dst, src, keep, scale, accumulate)
		return
	}
	maskScaleZMM(&dst[0], &src[0], &keep[0], len(keep), scale, accumulate)
}
