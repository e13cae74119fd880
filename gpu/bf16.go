package gpu

import "math"

// toBF16 converts fp32 weights to bfloat16 bits (the top 16 bits of the
// fp32 pattern) with round-to-nearest-even, as PyTorch's .to(torch.bfloat16)
// does; NaN stays a (quiet) NaN. The frozen weights are converted once, on
// the host, at upload.
func toBF16(x []float32) []uint16 {
	out := make([]uint16, len(x))
	for i, v := range x {
		out[i] = bf16Bits(v)
	}
	return out
}

func bf16Bits(v float32) uint16 {
	b := math.Float32bits(v)
	if v != v { // NaN: keep the sign, force a quiet NaN payload
		return uint16(b>>16) | 0x40
	}
	// Add 0x7FFF plus the lowest kept bit: ties go to the even neighbour.
	b += 0x7FFF + (b>>16)&1
	return uint16(b >> 16)
}

// fromBF16 widens bfloat16 bits to fp32 (exact).
func fromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
