package secagg

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestPackRoundTrip: every width 1..64 and a range of lengths survive
// Pack/Unpack, take exactly ⌈L·m/8⌉ bytes, and agree with a bit-by-bit
// reference packing.
func TestPackRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for m := 1; m <= 64; m++ {
		for _, n := range []int{0, 1, 2, 7, 8, 9, 63, 64, 65, 200} {
			vals := make([]uint64, n)
			for i := range vals {
				v := rng.Uint64()
				if m < 64 {
					v &= 1<<m - 1
				}
				vals[i] = v
			}
			if n > 2 { // extremes
				vals[0] = 0
				vals[1] = ^uint64(0) >> (64 - m)
			}
			data, err := Pack(vals, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) != (n*m+7)/8 || len(data) != PackedLen(n, m) {
				t.Fatalf("m=%d n=%d: %d bytes, want %d", m, n, len(data), (n*m+7)/8)
			}
			if ref := packReference(vals, m); !bytes.Equal(data, ref) {
				t.Fatalf("m=%d n=%d: packing differs from the bitwise reference", m, n)
			}
			got, err := Unpack(data, n, m)
			if err != nil {
				t.Fatalf("m=%d n=%d: %v", m, n, err)
			}
			for i := range vals {
				if got[i] != vals[i] {
					t.Fatalf("m=%d n=%d: value %d is %d, want %d", m, n, i, got[i], vals[i])
				}
			}
		}
	}
}

// packReference packs bit by bit: bit j of value i is stream bit i·m + j.
func packReference(vals []uint64, m int) []byte {
	out := make([]byte, (len(vals)*m+7)/8)
	for i, v := range vals {
		for j := 0; j < m; j++ {
			if v>>j&1 == 1 {
				p := i*m + j
				out[p/8] |= 1 << (p % 8)
			}
		}
	}
	return out
}

// TestPackErrors: values too wide, bad widths, wrong sizes and non-zero
// padding are errors.
func TestPackErrors(t *testing.T) {
	if _, err := Pack([]uint64{8}, 3); err == nil {
		t.Fatal("8 packed in 3 bits")
	}
	for _, m := range []int{0, 65} {
		if _, err := Pack(nil, m); err == nil {
			t.Fatalf("width %d accepted", m)
		}
		if _, err := Unpack(nil, 0, m); err == nil {
			t.Fatalf("width %d accepted by Unpack", m)
		}
	}
	data, _ := Pack([]uint64{1, 2, 3}, 5) // 15 bits in 2 bytes
	if _, err := Unpack(data[:1], 3, 5); err == nil {
		t.Fatal("short data accepted")
	}
	if _, err := Unpack(append(data, 0), 3, 5); err == nil {
		t.Fatal("long data accepted")
	}
	data[1] |= 0x80
	if _, err := Unpack(data, 3, 5); err == nil {
		t.Fatal("non-zero padding accepted")
	}
}
