package quant

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestMarshalRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, s := range allSchemes() {
		for _, sr := range []bool{false, true} {
			s.Stochastic = sr
			x := randMatrix(rng, 5, 7)
			m := mustQuantize(t, x, 5, 7, s, rng)
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatalf("%s: %v", s, err)
			}
			if len(b) != HeaderSize+m.SizeBytes() {
				t.Fatalf("%s: %d bytes, want %d", s, len(b), HeaderSize+m.SizeBytes())
			}
			var got Matrix
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
			if got.Rows != 5 || got.Cols != 7 || got.Scheme != s ||
				!equalBits(got.Scales, m.Scales) || !equalBits(got.Zeros, m.Zeros) || !bytes.Equal(got.Codes, m.Codes) {
				t.Fatalf("%s: round trip changed the matrix", s)
			}
			// No aliasing of the input buffer.
			for i := range b {
				b[i] = 0
			}
			if !bytes.Equal(got.Codes, m.Codes) {
				t.Fatalf("%s: decoded codes alias the input", s)
			}
			// AppendBinary appends.
			pre := []byte("xyz")
			a, err := m.AppendBinary(pre)
			if err != nil || string(a[:3]) != "xyz" || len(a) != 3+HeaderSize+m.SizeBytes() {
				t.Fatalf("%s: AppendBinary: %v", s, err)
			}
		}
	}
}

func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestMarshalLayout pins the header and section order byte for byte.
func TestMarshalLayout(t *testing.T) {
	m := &Matrix{
		Rows: 1, Cols: 3,
		Scheme: Scheme{Bits: 4, PerRow: true, Stochastic: true},
		Scales: []float32{0.5},
		Zeros:  []float32{-1},
		Codes:  []byte{0x21, 0x03},
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		'k', 'q', 1, 4, 0b110, // magic, version, bits, flags (per-row, stochastic)
		1, 0, 0, 0, 3, 0, 0, 0, // rows, cols
		0, 0, 0, 0x3f, // scale 0.5
		0, 0, 0x80, 0xbf, // zero −1
		0x21, 0x03, // codes 1, 2, 3
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding\n got %x\nwant %x", b, want)
	}
	if got := m.Dequantize(); got[0] != -0.5 || got[1] != 0 || got[2] != 0.5 {
		t.Fatalf("Dequantize = %v", got)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	good := func(s Scheme, rows, cols int) []byte {
		m := mustQuantize(t, randMatrix(rng, rows, cols), rows, cols, s, nil)
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	asym := good(Scheme{Bits: 4, PerRow: true}, 2, 3) // 13 + 16 + 3 = 32 bytes
	sym8 := good(Scheme{Bits: 8, Symmetric: true}, 2, 3)
	odd3 := good(Scheme{Bits: 3, Symmetric: true}, 1, 5) // 15 bits: 1 padding bit
	edit := func(b []byte, f func(b []byte)) []byte {
		c := append([]byte(nil), b...)
		f(c)
		return c
	}
	putU32 := func(off int, v uint32) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint32(b[off:], v) }
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated header: 0 bytes, need 13"},
		{"shortHeader", asym[:12], "truncated header: 12 bytes"},
		{"magic", edit(asym, func(b []byte) { b[0] = 'K' }), "bad magic"},
		{"version", edit(asym, func(b []byte) { b[2] = 2 }), "unsupported format version 2"},
		{"bits5", edit(asym, func(b []byte) { b[3] = 5 }), "unsupported bit width 5"},
		{"bits0", edit(asym, func(b []byte) { b[3] = 0 }), "unsupported bit width 0"},
		{"flags", edit(asym, func(b []byte) { b[4] |= 0x40 }), "unknown flag bits 0x40"},
		{"rows0", edit(asym, putU32(5, 0)), "bad shape 0×3"},
		{"cols0", edit(asym, putU32(9, 0)), "bad shape 2×0"},
		{"rowsHuge", edit(asym, putU32(5, 1<<31)), "bad shape 2147483648×3"},
		// Claims far more data than present: rejected by length before allocating.
		{"claimsHuge", edit(asym, func(b []byte) { putU32(5, 1<<31-1)(b); putU32(9, 1<<31-1)(b) }), "length mismatch"},
		{"truncatedBody", asym[:len(asym)-1], "implies 32 bytes, got 31"},
		{"trailing", append(append([]byte(nil), asym...), 0), "implies 32 bytes, got 33"},
		// Flipping symmetric changes the section sizes.
		{"flagMismatch", edit(asym, func(b []byte) { b[4] |= flagSymmetric }), "length mismatch"},
		{"perRowMismatch", edit(asym, func(b []byte) { b[4] &^= flagPerRow }), "length mismatch"},
		{"nanScale", edit(asym, putU32(13, 0x7fc00000)), "scale 0 is NaN"},
		{"negScale", edit(asym, putU32(17, math.Float32bits(-1))), "scale 1 is -1"},
		{"infZero", edit(asym, putU32(21, 0x7f800000)), "zero point 0 is +Inf"},
		{"gridOverflow", edit(sym8, putU32(13, math.Float32bits(math.MaxFloat32/100))), "outside the float32 range"},
		{"symCode", edit(sym8, func(b []byte) { b[len(b)-2] = 0x80 }), "symmetric 8-bit code -128 at row 1, col 1"},
		{"padding", edit(odd3, func(b []byte) { b[len(b)-1] |= 0x80 }), "nonzero padding bits"},
	}
	for _, c := range cases {
		var m Matrix
		m.Rows = -7 // sentinel: must survive a failed decode
		err := m.UnmarshalBinary(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
		if m.Rows != -7 {
			t.Errorf("%s: failed decode modified the receiver", c.name)
		}
		if mm, err := Unmarshal(c.data); err == nil || mm != nil {
			t.Errorf("%s: Unmarshal = %v, %v", c.name, mm, err)
		}
	}
}

// FuzzUnmarshal: decoding arbitrary bytes never panics or over-allocates, and
// anything accepted is valid, dequantizes to finite values, and re-encodes to
// exactly the input (the encoding is canonical).
func FuzzUnmarshal(f *testing.F) {
	rng := rand.New(rand.NewPCG(51, 52))
	for _, s := range append(allSchemes(), colSchemes()...) {
		for _, sh := range [][2]int{{1, 1}, {2, 3}, {3, 5}, {12, 4}} {
			s.Stochastic = sh[0] == 2
			m, err := Quantize(randMatrix(rng, sh[0], sh[1]), sh[0], sh[1], s, rng)
			if err != nil {
				f.Fatal(err)
			}
			b, err := m.MarshalBinary()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte("kq"))
	f.Add([]byte{'k', 'q', 1, 8, 1, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{'k', 'q', 1, 3, 1, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0x80, 0x3f, 0x24, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Matrix
		if err := m.UnmarshalBinary(data); err != nil {
			if m.Rows != 0 || m.Codes != nil {
				t.Fatal("receiver modified on error")
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted matrix fails Validate: %v", err)
		}
		if HeaderSize+m.SizeBytes() != len(data) {
			t.Fatalf("SizeBytes %d + header ≠ %d", m.SizeBytes(), len(data))
		}
		xh := m.Dequantize()
		if len(xh) != m.Rows*m.Cols {
			t.Fatalf("Dequantize gave %d values for %d×%d", len(xh), m.Rows, m.Cols)
		}
		for i, v := range xh {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("elem %d decodes to %v", i, v)
			}
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("not canonical:\n in %x\nout %x", data, b)
		}
		// Requantizing the reconstruction with the same scheme must work too.
		s := m.Scheme
		s.Stochastic = false
		if _, err := Quantize(xh, m.Rows, m.Cols, s, nil); err != nil {
			t.Fatalf("requantize: %v", err)
		}
	})
}
