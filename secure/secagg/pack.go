package secagg

import (
	"encoding/binary"
	"fmt"
)

// PackedLen returns ⌈n·m/8⌉, the size of n values packed at m bits each.
func PackedLen(n, m int) int { return int((uint64(n)*uint64(m) + 7) / 8) }

// Pack packs values of m bits each (1 <= m <= 64) into ⌈len(vals)·m/8⌉
// bytes. The bit stream is little-endian: value i occupies bits i·m ..
// (i+1)·m − 1, bit j of the stream being bit j%8 of byte j/8; unused bits of
// the last byte are zero. A value of m bits or more is an error.
func Pack(vals []uint64, m int) ([]byte, error) {
	if m < 1 || m > 64 {
		return nil, fmt.Errorf("secagg: pack: %d bits per value, want 1..64", m)
	}
	if m < 64 {
		lim := uint64(1) << m
		for i, v := range vals {
			if v >= lim {
				return nil, fmt.Errorf("secagg: pack: value %d at index %d does not fit in %d bits", v, i, m)
			}
		}
	}
	n := PackedLen(len(vals), m)
	// Whole 64-bit words are written, so round the buffer up to one.
	out := make([]byte, (n+7)/8*8+8)
	um := uint(m)
	var acc uint64 // pending bits, low-aligned
	var have uint  // number of pending bits, < 64
	o := 0
	for _, v := range vals {
		acc |= v << have
		if have+um >= 64 {
			binary.LittleEndian.PutUint64(out[o:], acc)
			o += 8
			// Bits of v that did not fit; a shift by 64 yields 0.
			acc = v >> (64 - have)
			have = have + um - 64
		} else {
			have += um
		}
	}
	if have > 0 {
		binary.LittleEndian.PutUint64(out[o:], acc)
	}
	return out[:n:n], nil
}

// Unpack reverses Pack: it reads n values of m bits from data, which must
// be exactly PackedLen(n, m) bytes with zero padding bits.
func Unpack(data []byte, n, m int) ([]uint64, error) {
	out := make([]uint64, n)
	if err := unpackAdd(out, data, m); err != nil {
		return nil, err
	}
	return out, nil
}

// unpackAdd adds the n = len(acc) values packed in data to acc (mod 2^64).
func unpackAdd(acc []uint64, data []byte, m int) error {
	if m < 1 || m > 64 {
		return fmt.Errorf("secagg: unpack: %d bits per value, want 1..64", m)
	}
	n := len(acc)
	if want := PackedLen(n, m); len(data) != want {
		return fmt.Errorf("secagg: unpack: %d bytes for %d values of %d bits, want %d", len(data), n, m, want)
	}
	if pad := uint(n*m) % 8; pad != 0 && data[len(data)-1]>>pad != 0 {
		return fmt.Errorf("secagg: unpack: padding bits of the last byte are not zero")
	}
	um := uint(m)
	mask := ^uint64(0) >> (64 - um)
	full := len(data) / 8 // whole words readable without bounds trouble
	word := func(k int) uint64 {
		if k < full {
			return binary.LittleEndian.Uint64(data[8*k:])
		}
		var b [8]byte
		copy(b[:], data[8*k:])
		return binary.LittleEndian.Uint64(b[:])
	}
	var cur uint64 // unread bits, low-aligned
	var have uint  // number of unread bits in cur
	k := 0         // next word
	for i := range acc {
		if have >= um {
			acc[i] += cur & mask
			cur >>= um // um may be 64 only when have == 64; shifting by 64 gives 0
			have -= um
			continue
		}
		next := word(k)
		k++
		v := (cur | next<<have) & mask
		// have < um <= 64, so the shift is below 64.
		cur = next >> (um - have)
		if um-have == 64 {
			cur = 0
		}
		have = have + 64 - um
		acc[i] += v
	}
	return nil
}
