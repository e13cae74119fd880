package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/kronfed/kronfed/safetensors"
)

// q8Block is the number of values in one Q8_0 block; q8BlockSize its bytes:
// an F16 scale d, then 32 int8 quants q, with value = d·q.
const (
	q8Block     = 32
	q8BlockSize = 2 + q8Block
)

// decodeFloat32 converts n values of type t from b, whose length the
// parser has already matched to n and t.
func decodeFloat32(t GGMLType, b []byte, n int64) ([]float32, error) {
	switch t {
	case F32, F16, BF16, Q8_0:
	default:
		return nil, fmt.Errorf("unsupported tensor type %s", t)
	}
	out := make([]float32, n)
	switch t {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = safetensors.F16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = safetensors.BF16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case Q8_0:
		// Blocks run along Dims[0], which holds whole blocks, so the flat
		// sequence of blocks is already in row-major order.
		for blk := range len(out) / q8Block {
			p := b[blk*q8BlockSize:]
			d := safetensors.F16ToFloat32(binary.LittleEndian.Uint16(p))
			dst := out[blk*q8Block : (blk+1)*q8Block]
			for j := range dst {
				// ggml's dequantize_row_q8_0 multiplies in float32.
				dst[j] = float32(int8(p[2+j])) * d
			}
		}
	}
	return out, nil
}

// encode converts values to type t's encoding, for Write.
func encode(t GGMLType, x []float32) ([]byte, error) {
	switch t {
	case F32:
		b := make([]byte, 4*len(x))
		for i, v := range x {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b, nil
	case F16:
		b := make([]byte, 2*len(x))
		for i, v := range x {
			binary.LittleEndian.PutUint16(b[2*i:], safetensors.Float32ToF16(v))
		}
		return b, nil
	case BF16:
		b := make([]byte, 2*len(x))
		for i, v := range x {
			binary.LittleEndian.PutUint16(b[2*i:], safetensors.Float32ToBF16(v))
		}
		return b, nil
	case Q8_0:
		return quantizeQ8_0(x)
	}
	return nil, fmt.Errorf("cannot encode type %s (the writer encodes F32, F16, BF16 and Q8_0; pass other types as Raw bytes)", t)
}

// quantizeQ8_0 follows ggml's quantize_row_q8_0_ref exactly: per block of
// 32, d = max|x|/127 in float32, stored as F16, and q = round(x·(1/d)),
// rounding halves away from zero, with the unrounded d (so the stored
// scale's F16 rounding is an error the format accepts). ggml would quietly
// produce garbage for non-finite input or a scale beyond F16's range; we
// refuse instead.
func quantizeQ8_0(x []float32) ([]byte, error) {
	if len(x)%q8Block != 0 {
		return nil, fmt.Errorf("Q8_0 needs a multiple of %d values, got %d", q8Block, len(x))
	}
	b := make([]byte, len(x)/q8Block*q8BlockSize)
	for blk := range len(x) / q8Block {
		src := x[blk*q8Block : (blk+1)*q8Block]
		var amax float32
		for j, v := range src {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("Q8_0 cannot encode the non-finite value %v at index %d", v, blk*q8Block+j)
			}
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		h := safetensors.Float32ToF16(d)
		if h&0x7fff == 0x7c00 {
			return nil, fmt.Errorf("Q8_0 scale %g of the block at index %d overflows F16", d, blk*q8Block)
		}
		var id float32
		if d != 0 {
			id = 1 / d
		}
		p := b[blk*q8BlockSize:]
		binary.LittleEndian.PutUint16(p, h)
		for j, v := range src {
			r := float64(v * id)
			if math.IsInf(float64(id), 0) {
				// d is so small that 1/d overflows float32 (ggml's
				// behaviour is undefined there); divide in float64. The
				// F16 scale is 0 anyway, so the block decodes to zeros.
				r = float64(v) / float64(d)
			}
			// |v| ≤ amax keeps r within ±127 up to rounding; the clamp
			// only guards the int8 conversion.
			p[2+j] = byte(int8(max(-127, min(127, math.Round(r)))))
		}
	}
	return b, nil
}
