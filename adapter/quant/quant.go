// Package quant implements uniform b-bit quantization of float32 matrices, the
// form in which clients upload adapter factors. Everything here is a pure
// function of its arguments: no I/O, no global state.
//
// A rows×cols matrix is a row-major []float32 of length rows·cols (row r is
// x[r·cols:(r+1)·cols]). It is split into groups that share one scale (and, for
// the asymmetric scheme, one offset): the whole tensor, each row ("per-row",
// one scale per output row, which keeps a single large row from coarsening the
// grid of all the others), or each column ("per-column", the same thing along
// the other axis; for a tall, thin matrix such as a low-rank factor B (d×r,
// r ≪ d) it costs r scales instead of d, while still isolating each rank
// component's magnitude). Only the grouping of the scales differs: the codes
// are stored row-major in every case.
//
// Within a group with scale Δ, code q decodes to
//
//	symmetric:  x̂ = Δ·q,        q ∈ {−(2^(b−1)−1), …, 2^(b−1)−1},  Δ = maxabs/(2^(b−1)−1)
//	asymmetric: x̂ = z + Δ·q,    q ∈ {0, …, 2^b−1},                 Δ = (max−min)/(2^b−1), z = min
//
// The asymmetric zero point is stored as a float32 offset z (the value of code
// 0), not as an integer zero point. That makes min exactly representable and max
// representable up to float32 rounding, so every in-range value is within Δ/2 of
// a grid point, and stochastic rounding is unbiased all the way to the ends of the
// range. The price is that 0.0 is not in general on the grid of a group that
// spans zero (it is reconstructed within Δ/2 like any other value); an all-zero
// or constant group is reconstructed exactly because then Δ = 0 and x̂ = z.
//
// Δ is computed in float64 and rounded to the nearest float32, and codes are
// chosen in float64. Round-to-nearest then has error ≤ Δ/2 per element (plus
// float32 rounding of x̂), and stochastic rounding (floor + Bernoulli(frac)) has
// E[x̂] = x for every x in range, up to float32 rounding of Δ and x̂ (relative
// 2^−17 of Δ at worst, at the very ends of the range).
//
// # Code storage
//
// Codes are b-bit fields packed back to back in row-major element order, with
// no padding between elements or rows, as a little-endian (LSB-first) bitstream:
// element i occupies stream bits [i·b, (i+1)·b), stream bit k is bit k%8 (value
// 1<<(k%8)) of byte k/8, and an element's least significant bit comes first. For
// the byte-aligned widths this is the familiar layout:
//
//	8 bits: one code per byte.
//	4 bits: two codes per byte, element 2j in the low nibble, 2j+1 in the high nibble.
//	2 bits: four codes per byte, element 4j+t in bits 2t..2t+1.
//	3 bits: a code may straddle two bytes; e.g. element 2 takes bits 6,7 of byte 0
//	        (its two low bits) and bit 0 of byte 1 (its high bit).
//
// Rows·Cols codes take ⌈Rows·Cols·b/8⌉ bytes; the unused high bits of the last
// byte must be zero, so every matrix has exactly one encoding.
//
// Asymmetric codes are the unsigned q. Symmetric codes are q in b-bit two's
// complement, so the pattern for −2^(b−1) (e.g. 0x80 at 8 bits, 0x8 at 4 bits)
// is never produced and is rejected by Validate.
//
// Scales and offsets are float32; see MarshalBinary for the wire format.
package quant

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Scheme says how a matrix is quantized.
type Scheme struct {
	// Bits is the code width b: 2, 3, 4 or 8.
	Bits int
	// Symmetric selects the zero-centred grid Δ·q, q ∈ [−(2^(b−1)−1), 2^(b−1)−1];
	// otherwise the grid is z + Δ·q, q ∈ [0, 2^b−1].
	Symmetric bool
	// PerRow gives every row its own scale (and offset), PerColumn every
	// column; at most one of them may be set. With neither, one scale (and
	// offset) covers the whole tensor.
	PerRow    bool
	PerColumn bool
	// Stochastic selects stochastic rounding (unbiased) instead of
	// round-to-nearest. It only affects Quantize; it is kept in the Matrix and
	// its encoding so a receiver knows how the codes were produced.
	Stochastic bool
}

// Validate reports whether s is a supported scheme: a supported bit width, and
// not both PerRow and PerColumn.
func (s Scheme) Validate() error {
	switch s.Bits {
	case 2, 3, 4, 8:
	default:
		return fmt.Errorf("quant: unsupported bit width %d (want 2, 3, 4 or 8)", s.Bits)
	}
	if s.PerRow && s.PerColumn {
		return errors.New("quant: scheme is both per-row and per-column (at most one granularity may be set)")
	}
	return nil
}

// String is a short label for logs and reports, e.g. "int4-asym-row-sr" or
// "int8-sym-col-sr". The granularity is "tensor", "row" or "col" ("row+col" for
// the invalid scheme with both set).
func (s Scheme) String() string {
	sym, gran, rnd := "asym", "tensor", "rtn"
	if s.Symmetric {
		sym = "sym"
	}
	switch {
	case s.PerRow && s.PerColumn:
		gran = "row+col"
	case s.PerRow:
		gran = "row"
	case s.PerColumn:
		gran = "col"
	}
	if s.Stochastic {
		rnd = "sr"
	}
	return fmt.Sprintf("int%d-%s-%s-%s", s.Bits, sym, gran, rnd)
}

// Step is the step Δ the scheme's definition gives a group whose smallest value
// is lo and largest hi (lo ≤ hi), in float64 before Quantize rounds it to the
// nearest float32:
//
//	symmetric:  max(|lo|, |hi|) / (2^(b−1)−1)   (note: 2·maxabs/(2^b−2), not /(2^b−1))
//	asymmetric: (hi − lo) / (2^b−1)
//
// It is meant for a-priori error bounds: round-to-nearest moves each element by
// at most Step/2, stochastic rounding by less than Step. It returns NaN for an
// unsupported scheme.
func (s Scheme) Step(lo, hi float64) float64 {
	if s.Validate() != nil {
		return math.NaN()
	}
	_, qhi := s.codeRange()
	if s.Symmetric {
		return math.Max(math.Abs(lo), math.Abs(hi)) / float64(qhi)
	}
	return (hi - lo) / float64(qhi)
}

// codeRange is the inclusive range of the integer q (before two's-complement
// encoding) for s: [−(2^(b−1)−1), 2^(b−1)−1] or [0, 2^b−1].
func (s Scheme) codeRange() (lo, hi int) {
	if s.Symmetric {
		h := 1<<(s.Bits-1) - 1
		return -h, h
	}
	return 0, 1<<s.Bits - 1
}

// Matrix is a quantized rows×cols matrix.
type Matrix struct {
	Rows, Cols int
	Scheme     Scheme
	// Scales holds Δ per group: Rows values when Scheme.PerRow, Cols values
	// when Scheme.PerColumn, else 1.
	Scales []float32
	// Zeros holds the float offset z (the value of code 0) per group, same
	// length as Scales, for the asymmetric scheme; it is empty when symmetric.
	Zeros []float32
	// Codes holds the Rows·Cols codes, row-major, packed as described in the
	// package comment: ⌈Rows·Cols·Bits/8⌉ bytes.
	Codes []byte
}

// maxElems bounds Rows·Cols so that n·Bits and the loops' index arithmetic
// cannot overflow int, even on 32-bit platforms.
const maxElems = math.MaxInt / 8

func (m *Matrix) groups() int {
	switch {
	case m.Scheme.PerRow:
		return m.Rows
	case m.Scheme.PerColumn:
		return m.Cols
	}
	return 1
}

// Quantize quantizes the row-major rows×cols matrix x (len(x) = rows·cols)
// with scheme s.
//
// rng is used only when s.Stochastic, and is then required: exactly one Float64
// is drawn per element, in row-major element order, whatever the granularity
// (per-column included), so a seeded source makes experiments reproducible. It
// is deliberately an ordinary PRNG (math/rand/v2), not a cryptographic source:
// stochastic rounding needs unbiasedness, not unpredictability.
//
// Errors: unsupported scheme (including PerRow and PerColumn both set),
// non-positive or mismatched shape, NaN or ±Inf in x (naming the row and
// column), stochastic rounding without rng.
func Quantize(x []float32, rows, cols int, s Scheme, rng *rand.Rand) (*Matrix, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("quant: shape %d×%d: rows and cols must be positive", rows, cols)
	}
	if cols > maxElems/rows {
		return nil, fmt.Errorf("quant: shape %d×%d is too large", rows, cols)
	}
	n := rows * cols
	if len(x) != n {
		return nil, fmt.Errorf("quant: shape mismatch: %d×%d needs %d values, got %d", rows, cols, n, len(x))
	}
	if s.Stochastic && rng == nil {
		return nil, errors.New("quant: stochastic rounding needs a random source (rng is nil)")
	}
	for i, v := range x {
		if f := float64(v); f-f != 0 { // NaN or ±Inf
			return nil, fmt.Errorf("quant: non-finite value %v at row %d, col %d", v, i/cols, i%cols)
		}
	}

	m := &Matrix{Rows: rows, Cols: cols, Scheme: s}
	g := m.groups()
	m.Scales = make([]float32, g)
	if !s.Symmetric {
		m.Zeros = make([]float32, g)
	}
	qlo, qhi := s.codeRange()
	m.Codes = make([]byte, packedLen(n, s.Bits))
	mask := 1<<s.Bits - 1
	fqlo, fqhi := float64(qlo), float64(qhi)
	if s.PerColumn {
		columnParams(m.Scales, m.Zeros, x, cols, s.Symmetric, qhi)
		m.quantizeColumns(x, fqlo, fqhi, mask, rng)
		return m, nil
	}

	glen := n / g // elements per group: cols (per-row) or n (per-tensor)
	for k := 0; k < g; k++ {
		scale, zero := groupParams(x[k*glen:(k+1)*glen], s.Symmetric, qhi)
		m.Scales[k] = scale
		if !s.Symmetric {
			m.Zeros[k] = zero
		}
	}
	var buf [chunk]uint8
	// Walk x in chunks of `chunk` elements (byte-aligned in Codes for every
	// width), tracking the current group so per-row parameters are reloaded at
	// each row boundary.
	k, left := 0, glen
	zero, inv := m.quantParams(0)
	for start := 0; start < n; start += chunk {
		end := min(start+chunk, n)
		codes := buf[:end-start]
		// Split the chunk into runs that lie within one group.
		for j := 0; j < len(codes); {
			if left == 0 {
				k++
				left = glen
				zero, inv = m.quantParams(k)
			}
			run := min(left, len(codes)-j)
			xs := x[start+j : start+j+run]
			if s.Stochastic {
				roundStochastic(codes[j:j+run], xs, zero, inv, fqlo, fqhi, mask, rng)
			} else {
				roundNearest(codes[j:j+run], xs, zero, inv, fqlo, fqhi, mask)
			}
			j += run
			left -= run
		}
		pack(m.Codes[start/8*s.Bits:], codes, s.Bits)
	}
	return m, nil
}

// quantizeColumns is the coding loop of Quantize for per-column schemes, whose
// Scales (and Zeros) are already set. It walks x in the same chunks as the
// per-row loop, split into runs that lie within one row; element j of a run
// starting at column c uses column c+j's z and 1/Δ, precomputed once so the
// inner loop does no division. Elements are visited in row-major order, so
// stochastic rounding draws one rng.Float64 per element in that order, as for
// the other granularities.
func (m *Matrix) quantizeColumns(x []float32, lo, hi float64, mask int, rng *rand.Rand) {
	cols, bits := m.Cols, m.Scheme.Bits
	zs, invs := make([]float64, cols), make([]float64, cols)
	for c := range cols {
		zs[c], invs[c] = m.quantParams(c)
	}
	n := len(x)
	var buf [chunk]uint8
	c := 0 // column of the next element
	for start := 0; start < n; start += chunk {
		end := min(start+chunk, n)
		codes := buf[:end-start]
		for j := 0; j < len(codes); {
			if c == cols {
				c = 0
			}
			run := min(cols-c, len(codes)-j)
			xs := x[start+j : start+j+run]
			if m.Scheme.Stochastic {
				roundStochasticCols(codes[j:j+run], xs, zs[c:c+run], invs[c:c+run], lo, hi, mask, rng)
			} else {
				roundNearestCols(codes[j:j+run], xs, zs[c:c+run], invs[c:c+run], lo, hi, mask)
			}
			j += run
			c += run
		}
		pack(m.Codes[start/8*bits:], codes, bits)
	}
}

// roundNearestCols is roundNearest with element i's own zero[i] and inv[i].
func roundNearestCols(dst []uint8, x []float32, zero, inv []float64, lo, hi float64, mask int) {
	dst, zero, inv = dst[:len(x)], zero[:len(x)], inv[:len(x)]
	for i, v := range x {
		q := math.Floor((float64(v)-zero[i])*inv[i] + 0.5)
		if q < lo {
			q = lo
		}
		if q > hi {
			q = hi
		}
		dst[i] = uint8(int(q) & mask)
	}
}

// roundStochasticCols is roundStochastic with element i's own zero[i] and
// inv[i]: one rng.Float64 per element, in order.
func roundStochasticCols(dst []uint8, x []float32, zero, inv []float64, lo, hi float64, mask int, rng *rand.Rand) {
	dst, zero, inv = dst[:len(x)], zero[:len(x)], inv[:len(x)]
	for i, v := range x {
		y := (float64(v) - zero[i]) * inv[i]
		q := math.Floor(y)
		if rng.Float64() < y-q {
			q++
		}
		if q < lo {
			q = lo
		}
		if q > hi {
			q = hi
		}
		dst[i] = uint8(int(q) & mask)
	}
}

// roundNearest sets dst[i] to the b-bit code (two's complement for negative q,
// masked by mask) of round((x[i]−zero)·inv) clamped to [lo, hi]. Clamping only
// matters for float rounding at the ends of the range. Ties round up; which way
// they go does not matter for the Δ/2 bound.
func roundNearest(dst []uint8, x []float32, zero, inv, lo, hi float64, mask int) {
	dst = dst[:len(x)]
	for i, v := range x {
		q := math.Floor((float64(v)-zero)*inv + 0.5)
		if q < lo {
			q = lo
		}
		if q > hi {
			q = hi
		}
		dst[i] = uint8(int(q) & mask)
	}
}

// roundStochastic is roundNearest with q = floor(y) + Bernoulli(y − floor(y)),
// one rng.Float64 per element, so E[q] = y.
func roundStochastic(dst []uint8, x []float32, zero, inv, lo, hi float64, mask int, rng *rand.Rand) {
	dst = dst[:len(x)]
	for i, v := range x {
		y := (float64(v) - zero) * inv
		q := math.Floor(y)
		if rng.Float64() < y-q {
			q++
		}
		if q < lo {
			q = lo
		}
		if q > hi {
			q = hi
		}
		dst[i] = uint8(int(q) & mask)
	}
}

// groupParams picks Δ (and z) for one group of finite values. qhi is the largest
// code (2^(b−1)−1 symmetric, 2^b−1 asymmetric).
func groupParams(x []float32, symmetric bool, qhi int) (scale, zero float32) {
	// Plain comparisons rather than the min/max builtins: the values are known
	// finite, so their NaN/±0 handling is not needed, and it is several times
	// slower. Extremes are exact in float32.
	var lo32, hi32 float32
	if symmetric {
		for _, v := range x {
			if v < 0 {
				v = -v
			}
			if v > hi32 {
				hi32 = v
			}
		}
	} else {
		lo32, hi32 = x[0], x[0]
		for _, v := range x[1:] {
			if v < lo32 {
				lo32 = v
			}
			if v > hi32 {
				hi32 = v
			}
		}
	}
	return rangeParams(lo32, hi32, symmetric, qhi)
}

// columnParams sets scales[c] (and zeros[c], unless symmetric) for every column
// c of the row-major matrix x with cols columns, exactly as groupParams would
// for that column on its own: the extremes are gathered in one row-major pass,
// visiting each column's values in row order with the same comparisons. They
// are kept in place (the largest value or magnitude in scales, the smallest in
// zeros) until rangeParams turns them into Δ and z.
func columnParams(scales, zeros, x []float32, cols int, symmetric bool, qhi int) {
	hi := scales[:cols]
	if symmetric {
		clear(hi)
		for r := 0; r < len(x); r += cols {
			row := x[r : r+cols]
			hi := hi[:len(row)]
			for c, v := range row {
				if v < 0 {
					v = -v
				}
				if v > hi[c] {
					hi[c] = v
				}
			}
		}
		for c, h := range hi {
			scales[c], _ = rangeParams(0, h, true, qhi)
		}
		return
	}
	lo := zeros[:cols]
	copy(lo, x[:cols])
	copy(hi, x[:cols])
	for r := cols; r < len(x); r += cols {
		row := x[r : r+cols]
		lo, hi := lo[:len(row)], hi[:len(row)]
		for c, v := range row {
			if v < lo[c] {
				lo[c] = v
			}
			if v > hi[c] {
				hi[c] = v
			}
		}
	}
	for c := range hi {
		scales[c], zeros[c] = rangeParams(lo[c], hi[c], false, qhi)
	}
}

// rangeParams picks Δ (and z) for a group whose extremes are lo32 ≤ hi32
// (symmetric: lo32 = 0 and hi32 the largest magnitude).
func rangeParams(lo32, hi32 float32, symmetric bool, qhi int) (scale, zero float32) {
	if !symmetric {
		zero = lo32
	}
	lo, hi := float64(lo32), float64(hi32)
	// hi−lo cannot overflow in float64, and (hi−lo)/qhi ≤ MaxFloat32 since
	// qhi ≥ 1 for symmetric (hi−lo = maxabs) and ≥ 3 for asymmetric.
	s64 := (hi - lo) / float64(qhi)
	// Nearest float32, so that a grid point that is exact in float32 (±maxabs, or
	// max) usually decodes exactly. If Δ rounded down, the top grid point falls
	// short of max by at most qhi·ulp(Δ)/2 ≤ 2^−17·Δ, which the clamp in Quantize
	// absorbs well within Δ/2.
	scale = float32(s64)
	if scale == 0 && s64 > 0 {
		// A positive range must not underflow to Δ = 0 (that would map the whole
		// group to z).
		scale = math.SmallestNonzeroFloat32
	}
	// For ranges near ±MaxFloat32 the top grid point can round to ±Inf; shrink Δ
	// until it does not (the extreme values are then clamped by a few ulps).
	for !endpointsFinite(scale, zero, symmetric, qhi) {
		scale = math.Nextafter32(scale, 0)
	}
	return scale, zero
}

// endpointsFinite reports whether the extreme grid points of a group decode to
// finite float32s. Decoding is monotone in q, so the ends suffice.
func endpointsFinite(scale, zero float32, symmetric bool, qhi int) bool {
	top := decode(scale, zero, qhi)
	if symmetric {
		return !math.IsInf(float64(top), 0)
	}
	return !math.IsInf(float64(top), 0) && !math.IsInf(float64(decode(scale, zero, 0)), 0)
}

// decode is the one place a code becomes a value: x̂ = z + Δ·q, evaluated in
// float64 and rounded once to float32.
func decode(scale, zero float32, q int) float32 {
	return float32(float64(zero) + float64(scale)*float64(q))
}

// quantParams returns z and 1/Δ for group k as float64 (1/Δ = 0 for Δ = 0:
// every value in such a group equals z, so y = 0 and the code is 0).
func (m *Matrix) quantParams(k int) (zero, inv float64) {
	if m.Zeros != nil {
		zero = float64(m.Zeros[k])
	}
	if s := m.Scales[k]; s > 0 {
		inv = 1 / float64(s)
	}
	return zero, inv
}

// Dequantize returns the rows·cols reconstruction x̂, row-major.
//
// It returns nil if m's shape, scale count or code length is inconsistent (the
// reason is given by Validate or DequantizeInto). Matrices from Quantize or
// UnmarshalBinary are always consistent.
func (m *Matrix) Dequantize() []float32 {
	if m.checkLayout() != nil {
		return nil
	}
	dst := make([]float32, m.Rows*m.Cols)
	m.dequantize(dst)
	return dst
}

// DequantizeInto writes the reconstruction into dst, which must have length
// Rows·Cols. It allocates nothing.
func (m *Matrix) DequantizeInto(dst []float32) error {
	if err := m.checkLayout(); err != nil {
		return err
	}
	if len(dst) != m.Rows*m.Cols {
		return fmt.Errorf("quant: DequantizeInto: dst has %d values, %d×%d needs %d", len(dst), m.Rows, m.Cols, m.Rows*m.Cols)
	}
	m.dequantize(dst)
	return nil
}

// dequantize assumes checkLayout passed and len(dst) = Rows·Cols.
func (m *Matrix) dequantize(dst []float32) {
	bits := m.Scheme.Bits
	n := len(dst)
	glen := n / m.groups()
	// Sign extension of symmetric codes without a branch: q = code − 2^b·signbit.
	var signBit int
	if m.Scheme.Symmetric {
		signBit = 1 << (bits - 1)
	}
	if m.Scheme.PerColumn {
		m.dequantizeColumns(dst, signBit)
		return
	}
	var buf [chunk]uint8
	k, left := 0, glen
	scale, zero := m.dequantParams(0)
	for start := 0; start < n; start += chunk {
		end := min(start+chunk, n)
		codes := buf[:end-start]
		unpack(codes, m.Codes[start/8*bits:], bits)
		for j := 0; j < len(codes); {
			if left == 0 {
				k++
				left = glen
				scale, zero = m.dequantParams(k)
			}
			run := min(left, len(codes)-j)
			out := dst[start+j : start+j+run]
			for i, c := range codes[j : j+run] {
				q := int(c) - (int(c)&signBit)<<1
				out[i] = float32(zero + scale*float64(q)) // same arithmetic as decode
			}
			j += run
			left -= run
		}
	}
}

// dequantizeColumns is dequantize for per-column schemes: the same chunks, split
// into runs within one row, element j of a run starting at column c decoded
// with column c+j's scale and offset.
func (m *Matrix) dequantizeColumns(dst []float32, signBit int) {
	bits, cols, n := m.Scheme.Bits, m.Cols, len(dst)
	var buf [chunk]uint8
	c := 0 // column of the next element
	for start := 0; start < n; start += chunk {
		end := min(start+chunk, n)
		codes := buf[:end-start]
		unpack(codes, m.Codes[start/8*bits:], bits)
		for j := 0; j < len(codes); {
			if c == cols {
				c = 0
			}
			run := min(cols-c, len(codes)-j)
			out, cs, scales := dst[start+j:start+j+run], codes[j:j+run], m.Scales[c:c+run]
			if m.Zeros != nil {
				zeros := m.Zeros[c : c+run]
				for i, code := range cs {
					q := int(code) - (int(code)&signBit)<<1
					out[i] = float32(float64(zeros[i]) + float64(scales[i])*float64(q)) // as decode
				}
			} else {
				for i, code := range cs {
					q := int(code) - (int(code)&signBit)<<1
					out[i] = float32(0 + float64(scales[i])*float64(q)) // as decode with z = 0 (−0 becomes +0)
				}
			}
			j += run
			c += run
		}
	}
}

func (m *Matrix) dequantParams(k int) (scale, zero float64) {
	if m.Zeros != nil {
		zero = float64(m.Zeros[k])
	}
	return float64(m.Scales[k]), zero
}

// SizeBytes is the payload size: packed codes plus float32 scales and offsets,
// i.e. what a quantized upload costs before framing (MarshalBinary adds a
// HeaderSize-byte header).
func (m *Matrix) SizeBytes() int {
	return len(m.Codes) + 4*len(m.Scales) + 4*len(m.Zeros)
}

// checkLayout checks the O(1) structure that indexing depends on: scheme, shape,
// and the lengths of Scales, Zeros and Codes.
func (m *Matrix) checkLayout() error {
	if m == nil {
		return errors.New("quant: nil matrix")
	}
	if err := m.Scheme.Validate(); err != nil {
		return err
	}
	if m.Rows <= 0 || m.Cols <= 0 {
		return fmt.Errorf("quant: shape %d×%d: rows and cols must be positive", m.Rows, m.Cols)
	}
	if m.Cols > maxElems/m.Rows {
		return fmt.Errorf("quant: shape %d×%d is too large", m.Rows, m.Cols)
	}
	g := m.groups()
	if len(m.Scales) != g {
		return fmt.Errorf("quant: %d scales, %s %d×%d needs %d", len(m.Scales), m.Scheme, m.Rows, m.Cols, g)
	}
	if m.Scheme.Symmetric {
		if len(m.Zeros) != 0 {
			return fmt.Errorf("quant: symmetric scheme has %d zero points, want none", len(m.Zeros))
		}
	} else if len(m.Zeros) != g {
		return fmt.Errorf("quant: %d zero points, %s %d×%d needs %d", len(m.Zeros), m.Scheme, m.Rows, m.Cols, g)
	}
	if want := packedLen(m.Rows*m.Cols, m.Scheme.Bits); len(m.Codes) != want {
		return fmt.Errorf("quant: %d code bytes, %d×%d at %d bits needs %d", len(m.Codes), m.Rows, m.Cols, m.Scheme.Bits, want)
	}
	return nil
}

// Validate checks a matrix of unknown provenance (e.g. decoded from the
// network): the layout (scheme, positive shape, scale/zero counts matching the
// granularity, code length = ⌈Rows·Cols·Bits/8⌉), scales finite and ≥ 0, zero
// offsets finite, every grid point decoding to a finite float32, zero padding
// bits, and, for symmetric schemes, no code equal to −2^(b−1).
func (m *Matrix) Validate() error {
	if err := m.checkLayout(); err != nil {
		return err
	}
	_, qhi := m.Scheme.codeRange()
	for k, s := range m.Scales {
		if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) || s < 0 {
			return fmt.Errorf("quant: scale %d is %v, want finite and ≥ 0", k, s)
		}
		var z float32
		if m.Zeros != nil {
			z = m.Zeros[k]
			if math.IsNaN(float64(z)) || math.IsInf(float64(z), 0) {
				return fmt.Errorf("quant: zero point %d is %v, want finite", k, z)
			}
		}
		if !endpointsFinite(s, z, m.Scheme.Symmetric, qhi) {
			return fmt.Errorf("quant: group %d (scale %v, zero %v) decodes outside the float32 range", k, s, z)
		}
	}
	bits := m.Scheme.Bits
	n := m.Rows * m.Cols
	if r := n * bits % 8; r != 0 {
		if last := m.Codes[len(m.Codes)-1]; last>>r != 0 {
			return fmt.Errorf("quant: nonzero padding bits in last code byte %#02x", last)
		}
	}
	if m.Scheme.Symmetric {
		bad := uint8(1) << (bits - 1) // two's complement −2^(b−1)
		var buf [chunk]uint8
		for start := 0; start < n; start += chunk {
			end := min(start+chunk, n)
			codes := buf[:end-start]
			unpack(codes, m.Codes[start/8*bits:], bits)
			for j, c := range codes {
				if c == bad {
					i := start + j
					return fmt.Errorf("quant: symmetric %d-bit code %d at row %d, col %d is out of range [%d, %d]",
						bits, -int(bad), i/m.Cols, i%m.Cols, -qhi, qhi)
				}
			}
		}
	}
	return nil
}
