package safetensors

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestF16KnownPatterns(t *testing.T) {
	cases := []struct {
		bits uint16
		val  float64
	}{
		{0x3C00, 1},
		{0xC000, -2},
		{0x7BFF, 65504},
		{0x0001, 5.960464477539063e-08}, // smallest subnormal, 2^-24
		{0x03FF, 6.097555160522461e-05}, // largest subnormal
		{0x0400, 6.103515625e-05},       // smallest normal, 2^-14
		{0x3555, 0.333251953125},
		{0x0000, 0},
		{0x7C00, math.Inf(1)},
		{0xFC00, math.Inf(-1)},
	}
	for _, c := range cases {
		if got := F16ToFloat32(c.bits); float64(got) != c.val {
			t.Errorf("F16ToFloat32(%#04x) = %g, want %g", c.bits, got, c.val)
		}
		if got := Float32ToF16(float32(c.val)); got != c.bits {
			t.Errorf("Float32ToF16(%g) = %#04x, want %#04x", c.val, got, c.bits)
		}
	}
	if got := F16ToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("F16ToFloat32(0x8000) = %g, want -0", got)
	}
	if got := Float32ToF16(float32(math.Copysign(0, -1))); got != 0x8000 {
		t.Errorf("Float32ToF16(-0) = %#04x, want 0x8000", got)
	}
	if got := F16ToFloat32(0x7E00); !math.IsNaN(float64(got)) {
		t.Errorf("F16ToFloat32(0x7E00) = %g, want NaN", got)
	}
	for _, nan := range []float32{float32(math.NaN()), math.Float32frombits(0x7f800001), math.Float32frombits(0xff800001)} {
		h := Float32ToF16(nan)
		if h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
			t.Errorf("Float32ToF16(NaN %#08x) = %#04x, not a NaN", math.Float32bits(nan), h)
		}
		if h>>15 != uint16(math.Float32bits(nan)>>31) {
			t.Errorf("Float32ToF16(NaN %#08x) = %#04x lost the sign", math.Float32bits(nan), h)
		}
	}
}

func TestF16Rounding(t *testing.T) {
	p := func(e int) float32 { return float32(math.Ldexp(1, e)) }
	cases := []struct {
		in   float32
		want uint16
	}{
		{1 + p(-11), 0x3C00},          // tie between 1 and 1+2^-10: even (1)
		{1 + 3*p(-11), 0x3C02},        // tie between 1+2^-10 and 1+2^-9: even
		{1 + p(-11) + p(-20), 0x3C01}, // just above the tie
		{2049, 0x6800},                // tie at spacing 2: even (2048)
		{2051, 0x6802},                // tie: even (2052)
		{65519, 0x7BFF},               // below the tie with 65536: max finite
		{65520, 0x7C00},               // the tie itself: even is Inf
		{1e6, 0x7C00},
		{-1e6, 0xFC00},
		{p(-25), 0x0000},             // tie between 0 and the smallest subnormal: even (0)
		{p(-25) * 1.0000001, 0x0001}, // just above
		{3 * p(-25), 0x0002},         // tie between subnormals 1 and 2: even
		{5 * p(-25), 0x0002},         // tie between 2 and 3: even
		{p(-26), 0x0000},             // below half: zero
		{p(-14) - p(-25), 0x0400},    // tie between the largest subnormal and the smallest normal: even
		{math.Float32frombits(1), 0}, // float32 subnormal
		{-math.Float32frombits(1), 0x8000},
	}
	for _, c := range cases {
		if got := Float32ToF16(c.in); got != c.want {
			t.Errorf("Float32ToF16(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
}

// TestF16Exhaustive checks every half-precision pattern: widening matches
// the definition of the format, and narrowing the result gives the pattern
// back.
func TestF16Exhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToFloat32(h)
		sign := 1.0
		if h&0x8000 != 0 {
			sign = -1
		}
		e, m := int(h>>10)&0x1f, float64(h&0x3ff)
		var want float64
		switch {
		case e == 0:
			want = sign * m * math.Ldexp(1, -24)
		case e == 31 && m == 0:
			want = math.Inf(int(sign))
		case e == 31:
			want = math.NaN()
		default:
			want = sign * (1 + m/1024) * math.Ldexp(1, e-15)
		}
		if math.IsNaN(want) {
			if !math.IsNaN(float64(f)) {
				t.Fatalf("F16ToFloat32(%#04x) = %g, want NaN", h, f)
			}
			if back := Float32ToF16(f); back != h {
				// The payload survives the round trip when the quiet bit
				// is set; a signalling NaN comes back quietened.
				if back != h|0x0200 {
					t.Fatalf("Float32ToF16(F16ToFloat32(%#04x)) = %#04x", h, back)
				}
			}
			continue
		}
		if float64(f) != want || math.Signbit(float64(f)) != math.Signbit(want) {
			t.Fatalf("F16ToFloat32(%#04x) = %g, want %g", h, f, want)
		}
		if back := Float32ToF16(f); back != h {
			t.Fatalf("Float32ToF16(F16ToFloat32(%#04x)) = %#04x", h, back)
		}
	}
}

// refF16 rounds x to half precision by brute force over the sorted table of
// finite non-negative halves, with 65536 standing for Inf as IEEE rounding
// does, ties to the even pattern.
func refF16(table []float64, x float32) uint16 {
	ax := math.Abs(float64(x))
	var sign uint16
	if math.Signbit(float64(x)) {
		sign = 0x8000
	}
	i, found := slices.BinarySearch(table, ax)
	if found {
		return sign | uint16(i)
	}
	if i == len(table) {
		return sign | 0x7c00
	}
	lo, hi := uint16(i-1), uint16(i)
	dlo, dhi := ax-table[lo], table[hi]-ax
	switch {
	case dlo < dhi:
		return sign | lo
	case dhi < dlo:
		return sign | hi
	case lo&1 == 0:
		return sign | lo
	}
	return sign | hi
}

func TestF16AgainstReference(t *testing.T) {
	table := make([]float64, 0x7c01)
	for i := range 0x7c00 {
		table[i] = float64(F16ToFloat32(uint16(i)))
	}
	table[0x7c00] = 65536
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300000; n++ {
		var x float32
		if n%2 == 0 {
			x = math.Float32frombits(rng.Uint32())
		} else {
			// Concentrate on the half-precision range, subnormals included.
			x = float32(math.Ldexp(rng.Float64()+0.5, rng.IntN(44)-28))
			if rng.IntN(2) == 0 {
				x = -x
			}
		}
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			continue
		}
		if got, want := Float32ToF16(x), refF16(table, x); got != want {
			t.Fatalf("Float32ToF16(%g = %#08x) = %#04x, want %#04x", x, math.Float32bits(x), got, want)
		}
	}
}

func TestBF16(t *testing.T) {
	cases := []struct {
		bits uint16
		val  float32
	}{
		{0x3F80, 1},
		{0xC000, -2},
		{0x7F7F, 3.3895314e38},
		{0x0001, math.Float32frombits(0x00010000)}, // smallest subnormal
		{0x7F80, float32(math.Inf(1))},
		{0xFF80, float32(math.Inf(-1))},
		{0x0000, 0},
	}
	for _, c := range cases {
		if got := BF16ToFloat32(c.bits); got != c.val {
			t.Errorf("BF16ToFloat32(%#04x) = %g, want %g", c.bits, got, c.val)
		}
		if got := Float32ToBF16(c.val); got != c.bits {
			t.Errorf("Float32ToBF16(%g) = %#04x, want %#04x", c.val, got, c.bits)
		}
	}
	p := func(e int) float32 { return float32(math.Ldexp(1, e)) }
	rounding := []struct {
		in   float32
		want uint16
	}{
		{1 + p(-8), 0x3F80},          // tie: even
		{1 + 3*p(-8), 0x3F82},        // tie: even
		{1 + p(-8) + p(-20), 0x3F81}, // above the tie
		{math.MaxFloat32, 0x7F80},    // rounds up past the largest bf16
		{-math.MaxFloat32, 0xFF80},
	}
	for _, c := range rounding {
		if got := Float32ToBF16(c.in); got != c.want {
			t.Errorf("Float32ToBF16(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	// A NaN whose payload is only in the dropped half must stay a NaN.
	for _, b := range []uint32{0x7f800001, 0xff800001, 0x7fc00000} {
		h := Float32ToBF16(math.Float32frombits(b))
		if !math.IsNaN(float64(BF16ToFloat32(h))) || h>>15 != uint16(b>>31) {
			t.Errorf("Float32ToBF16(NaN %#08x) = %#04x", b, h)
		}
	}
	// Every non-NaN pattern round-trips.
	for i := 0; i < 1<<16; i++ {
		f := BF16ToFloat32(uint16(i))
		if math.IsNaN(float64(f)) {
			continue
		}
		if back := Float32ToBF16(f); back != uint16(i) {
			t.Fatalf("Float32ToBF16(BF16ToFloat32(%#04x)) = %#04x", i, back)
		}
	}
	// Random values against nearest-of-two-neighbours in float64.
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 300000; n++ {
		b := rng.Uint32()
		x := math.Float32frombits(b)
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			continue
		}
		lo := uint16(b >> 16)
		hi := lo + 1 // the next pattern away from zero; may be Inf
		ax := math.Abs(float64(x))
		dlo := ax - math.Abs(float64(BF16ToFloat32(lo)))
		hv := math.Abs(float64(BF16ToFloat32(hi)))
		if math.IsInf(hv, 0) {
			hv = math.Ldexp(1, 128) // IEEE rounds as if the exponent range went on
		}
		dhi := hv - ax
		want := hi
		if dlo < dhi || (dlo == dhi && lo&1 == 0) {
			want = lo
		}
		if got := Float32ToBF16(x); got != want {
			t.Fatalf("Float32ToBF16(%g = %#08x) = %#04x, want %#04x", x, b, got, want)
		}
	}
}

func TestF8(t *testing.T) {
	e4m3 := []struct {
		b uint8
		v float64
	}{
		{0x38, 1}, {0xB8, -1}, {0x7E, 448}, {0x01, math.Ldexp(1, -9)}, {0x08, math.Ldexp(1, -6)}, {0x00, 0},
	}
	for _, c := range e4m3 {
		if got := F8E4M3ToFloat32(c.b); float64(got) != c.v {
			t.Errorf("F8E4M3ToFloat32(%#02x) = %g, want %g", c.b, got, c.v)
		}
	}
	if !math.IsNaN(float64(F8E4M3ToFloat32(0x7F))) || !math.IsNaN(float64(F8E4M3ToFloat32(0xFF))) {
		t.Error("F8E4M3 0x7F/0xFF should be NaN")
	}
	e5m2 := []struct {
		b uint8
		v float64
	}{
		{0x3C, 1}, {0xC0, -2}, {0x7B, 57344}, {0x01, math.Ldexp(1, -16)}, {0x7C, math.Inf(1)},
	}
	for _, c := range e5m2 {
		if got := F8E5M2ToFloat32(c.b); float64(got) != c.v {
			t.Errorf("F8E5M2ToFloat32(%#02x) = %g, want %g", c.b, got, c.v)
		}
	}
}

func TestDecodeFloat32Errors(t *testing.T) {
	dst := make([]float32, 2)
	if err := DecodeFloat32(dst, I32, make([]byte, 8)); err == nil || err.Error() != "dtype I32 is not a floating-point type and is not converted to float32" {
		t.Errorf("I32: %v", err)
	}
	if err := DecodeFloat32(dst, F32, make([]byte, 7)); err == nil || err.Error() != "7 bytes of F32 do not make 2 elements" {
		t.Errorf("short: %v", err)
	}
	if err := DecodeFloat32(dst, "X", nil); err == nil || err.Error() != `unknown dtype "X"` {
		t.Errorf("unknown: %v", err)
	}
}
