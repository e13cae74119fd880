package gpu

import (
	"math"
	"testing"
)

// bf16Reference rounds x to the nearest bfloat16 by searching the two
// neighbours in float64, ties to the even bit pattern: an independent
// definition of what bf16Bits computes with integer tricks.
func bf16Reference(x float32) float32 {
	b := math.Float32bits(x)
	lo := math.Float32frombits(b &^ 0xFFFF)
	hi := math.Float32frombits((b &^ 0xFFFF) + 0x10000)
	dl := math.Abs(float64(x) - float64(lo))
	dh := math.Abs(float64(hi) - float64(x))
	switch {
	case dl < dh:
		return lo
	case dh < dl:
		return hi
	case (math.Float32bits(lo)>>16)&1 == 0:
		return lo
	}
	return hi
}

func TestBF16Rounding(t *testing.T) {
	cases := []struct {
		in   float32
		bits uint16
	}{
		{1, 0x3F80}, {-2, 0xC000}, {0, 0}, {float32(math.Inf(1)), 0x7F80},
		{float32(math.Inf(-1)), 0xFF80}, {3.140625, 0x4049}, // exact in bf16
		{math.Float32frombits(0x3F808000), 0x3F80}, // tie, even below
		{math.Float32frombits(0x3F818000), 0x3F82}, // tie, even above
		{math.Float32frombits(0x3F808001), 0x3F81}, // just above the tie
		{math.MaxFloat32, 0x7F80},                  // rounds up to +Inf, as PyTorch does
	}
	for _, c := range cases {
		if got := bf16Bits(c.in); got != c.bits {
			t.Errorf("bf16(%v = %#08x) = %#04x, want %#04x", c.in, math.Float32bits(c.in), got, c.bits)
		}
	}
	if h := bf16Bits(float32(math.NaN())); !math.IsNaN(float64(fromBF16(h))) {
		t.Errorf("NaN became %#04x", h)
	}
	// A sweep of patterns against the float64 reference.
	for b := uint32(0x0080_0000); b < 0x7F00_0000; b += 0x0001_3579 {
		for _, sign := range []uint32{0, 1 << 31} {
			x := math.Float32frombits(b | sign)
			if got, want := fromBF16(bf16Bits(x)), bf16Reference(x); got != want {
				t.Fatalf("bf16(%v) = %v, want %v", x, got, want)
			}
		}
	}
}
