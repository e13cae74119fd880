package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// BF16ToFloat32 widens a bfloat16 bit pattern to float32. It is exact:
// bfloat16 is the top half of a float32.
func BF16ToFloat32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}

// Float32ToBF16 rounds f to the nearest bfloat16, ties to even, as PyTorch
// does. Values beyond the largest finite bfloat16 round to ±Inf; a NaN stays
// a NaN of the same sign (quietened, since truncating its payload could
// otherwise leave an Inf pattern).
func Float32ToBF16(f float32) uint16 {
	bits := math.Float32bits(f)
	if bits&0x7fffffff > 0x7f800000 { // NaN
		return uint16(bits>>16) | 0x0040
	}
	// Adding 0x7fff plus the lowest kept bit rounds to nearest even; a carry
	// out of the mantissa correctly bumps the exponent (up to Inf).
	bits += 0x7fff + (bits>>16)&1
	return uint16(bits >> 16)
}

// F16ToFloat32 widens an IEEE 754 half-precision bit pattern to float32.
// It is exact, subnormals included; NaN payloads are kept.
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0:
		// Zero or subnormal: mant·2^-24, exact in float32.
		v := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(math.Float32bits(v) | sign)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
}

// Float32ToF16 rounds f to the nearest IEEE 754 half-precision value, ties
// to even, producing subnormals where needed. Values of magnitude 65520 and
// above round to ±Inf; a NaN stays a quiet NaN of the same sign.
func Float32ToF16(f float32) uint16 {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int(bits>>23) & 0xff
	mant := bits & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // the half-precision biased exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// The result is subnormal (or zero): the significand, implicit bit
		// included, shifted so that one unit is 2^-24.
		if e < -10 {
			// Below 2^-25, half the smallest subnormal: rounds to zero. This
			// also covers float32 subnormals (exp 0, so e = -112), which is
			// why the implicit bit can be set unconditionally below.
			return sign
		}
		full := mant | 0x800000
		shift := uint(14 - e)
		m := full >> shift
		rem := full & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && m&1 == 1) {
			m++ // may carry into the smallest normal, which is the right answer
		}
		return sign | uint16(m)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is correct, up to Inf (0x7c00)
	}
	return sign | uint16(h)
}

// F8E5M2ToFloat32 widens an 8-bit E5M2 float to float32. E5M2 is exactly the
// top byte of an IEEE half, so this is exact.
func F8E5M2ToFloat32(b uint8) float32 {
	return F16ToFloat32(uint16(b) << 8)
}

// F8E4M3ToFloat32 widens an 8-bit E4M3 float (the "fn" variant used by
// PyTorch's float8_e4m3fn: bias 7, no infinities, S.1111.111 is NaN) to
// float32. It is exact.
func F8E4M3ToFloat32(b uint8) float32 {
	sign := uint32(b&0x80) << 24
	exp := uint32(b>>3) & 0xf
	mant := uint32(b & 7)
	switch {
	case exp == 0xf && mant == 7:
		return math.Float32frombits(sign | 0x7fc00000)
	case exp == 0:
		v := float32(mant) * (1.0 / (1 << 9))
		return math.Float32frombits(math.Float32bits(v) | sign)
	default:
		return math.Float32frombits(sign | (exp+127-7)<<23 | mant<<20)
	}
}

// DecodeFloat32 converts little-endian elements of float dtype dt in src to
// float32 in dst. len(src) must be len(dst)·dt.Size(). Integer and bool
// dtypes are refused: converting them to float32 is a model loader's
// decision, not a storage one. F64 values are rounded to nearest float32.
func DecodeFloat32(dst []float32, dt DType, src []byte) error {
	size := dt.Size()
	if size == 0 {
		return fmt.Errorf("unknown dtype %q", string(dt))
	}
	if !dt.IsFloat() {
		return fmt.Errorf("dtype %s is not a floating-point type and is not converted to float32", dt)
	}
	if len(src) != len(dst)*size {
		return fmt.Errorf("%d bytes of %s do not make %d elements", len(src), dt, len(dst))
	}
	switch dt {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	case F8E5M2:
		for i := range dst {
			dst[i] = F8E5M2ToFloat32(src[i])
		}
	case F8E4M3:
		for i := range dst {
			dst[i] = F8E4M3ToFloat32(src[i])
		}
	}
	return nil
}
