package quant

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// refPack is an independent bit-at-a-time writer of the documented layout:
// code i's bit t goes to stream bit i·b+t, stream bit k is bit k%8 of byte k/8.
func refPack(codes []uint8, bits int) []byte {
	out := make([]byte, (len(codes)*bits+7)/8)
	for i, c := range codes {
		for t := 0; t < bits; t++ {
			if c>>t&1 != 0 {
				k := i*bits + t
				out[k/8] |= 1 << (k % 8)
			}
		}
	}
	return out
}

func TestPackLayout(t *testing.T) {
	cases := []struct {
		bits  int
		codes []uint8
		want  []byte
	}{
		{8, []uint8{0x01, 0xFF, 0x80}, []byte{0x01, 0xFF, 0x80}},
		// 4 bits: low nibble first.
		{4, []uint8{0x1, 0x2, 0x3}, []byte{0x21, 0x03}},
		// 2 bits: element 4j+t in bits 2t..2t+1.
		{2, []uint8{1, 2, 3, 0, 3}, []byte{0b00_11_10_01, 0b11}},
		// 3 bits: 001 | 010<<3 | (011 low two bits)<<6, then its high bit 0.
		{3, []uint8{1, 2, 3}, []byte{0xD1, 0x00}},
		{3, []uint8{7, 7, 7}, []byte{0xFF, 0x01}},
		{3, []uint8{4, 0, 4}, []byte{0x04, 0x01}},
		{3, []uint8{0, 0, 0, 0, 0, 0, 0, 7}, []byte{0, 0, 0xE0}},
	}
	for _, c := range cases {
		got := make([]byte, packedLen(len(c.codes), c.bits))
		pack(got, c.codes, c.bits)
		if !bytes.Equal(got, c.want) {
			t.Errorf("pack(%v, %d) = %#x, want %#x", c.codes, c.bits, got, c.want)
		}
		back := make([]uint8, len(c.codes))
		unpack(back, got, c.bits)
		if !bytes.Equal(back, c.codes) {
			t.Errorf("unpack(pack(%v, %d)) = %v", c.codes, c.bits, back)
		}
	}
}

// TestPackRoundTrip covers every width on odd and awkward lengths, against the
// bit-at-a-time reference, with the padding bits left zero.
func TestPackRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, bits := range []int{2, 3, 4, 8} {
		for n := 1; n <= 67; n++ {
			codes := make([]uint8, n)
			for i := range codes {
				codes[i] = uint8(rng.IntN(1 << bits))
			}
			if got, want := packedLen(n, bits), (n*bits+7)/8; got != want {
				t.Fatalf("packedLen(%d, %d) = %d, want %d", n, bits, got, want)
			}
			dst := make([]byte, packedLen(n, bits))
			for i := range dst {
				dst[i] = 0xA5 // pack must overwrite, not OR into, dst
			}
			pack(dst, codes, bits)
			if want := refPack(codes, bits); !bytes.Equal(dst, want) {
				t.Fatalf("bits %d n %d: pack = %x, reference %x", bits, n, dst, want)
			}
			if r := n * bits % 8; r != 0 && dst[len(dst)-1]>>r != 0 {
				t.Fatalf("bits %d n %d: nonzero padding %#x", bits, n, dst[len(dst)-1])
			}
			back := make([]uint8, n)
			unpack(back, dst, bits)
			if !bytes.Equal(back, codes) {
				t.Fatalf("bits %d n %d: unpack = %v, want %v", bits, n, back, codes)
			}
		}
	}
}

// TestQuantizeOddLengthsAcrossChunks pushes matrices whose rows straddle the
// 512-code staging chunks (and bytes, for 3 bits) through Quantize/Dequantize
// and compares each code with an independent bit reader.
func TestQuantizeOddLengthsAcrossChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	shapes := [][2]int{{1, 1}, {1, 7}, {3, 7}, {5, 171}, {171, 5}, {1, 1023}, {3, 513}}
	for _, s := range allSchemes() {
		for _, sh := range shapes {
			rows, cols := sh[0], sh[1]
			x := randMatrix(rng, rows, cols)
			m := mustQuantize(t, x, rows, cols, s, nil)
			if len(m.Codes) != (rows*cols*s.Bits+7)/8 {
				t.Fatalf("%s %d×%d: %d code bytes", s, rows, cols, len(m.Codes))
			}
			xh := m.Dequantize()
			for i := range x {
				g := 0
				if s.PerRow {
					g = i / cols
				}
				var z float32
				if !s.Symmetric {
					z = m.Zeros[g]
				}
				if want := decode(m.Scales[g], z, codeAt(m, i)); xh[i] != want {
					t.Fatalf("%s %d×%d elem %d: dequantized %g, code says %g", s, rows, cols, i, xh[i], want)
				}
			}
		}
	}
}
