package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// HeaderSize is the fixed header length of the binary encoding.
const HeaderSize = 13

const (
	magic0, magic1 = 'k', 'q'
	formatVersion  = 1

	flagSymmetric  = 1 << 0
	flagPerRow     = 1 << 1
	flagStochastic = 1 << 2
	flagPerColumn  = 1 << 3
	flagsKnown     = flagSymmetric | flagPerRow | flagStochastic | flagPerColumn
)

// MarshalBinary encodes m as follows (all integers little-endian):
//
//	off  size  field
//	0    2     magic "kq"
//	2    1     format version (1)
//	3    1     bits (2, 3, 4 or 8)
//	4    1     flags: bit0 symmetric, bit1 per-row, bit2 stochastic,
//	           bit3 per-column (never together with bit1); others 0
//	5    4     rows (uint32, 1 … 2^31−1)
//	9    4     cols (uint32, 1 … 2^31−1)
//	13   4·g   scales, float32 bits, g = rows (per-row), cols (per-column) or 1
//	…    4·g   zero offsets, float32 bits (asymmetric only)
//	…    ⌈rows·cols·bits/8⌉  codes, packed as in the package comment
//
// The per-column flag was added after the first files were written, without a
// version change: every encoding without bit3 means exactly what it did
// before, and a decoder that predates it refuses a per-column matrix as an
// unknown flag rather than misreading it.
//
// The length is HeaderSize + m.SizeBytes(). UnmarshalBinary requires the total
// length to match exactly and the matrix to pass Validate, so the encoding is
// canonical: decoding then encoding returns the same bytes. MarshalBinary fails
// if m does not pass Validate.
func (m *Matrix) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(nil)
}

// AppendBinary appends the encoding of m to b (see MarshalBinary).
func (m *Matrix) AppendBinary(b []byte) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return b, err
	}
	if m.Rows > math.MaxInt32 || m.Cols > math.MaxInt32 {
		return b, fmt.Errorf("quant: shape %d×%d does not fit the encoding (max 2^31−1 per dimension)", m.Rows, m.Cols)
	}
	var flags byte
	if m.Scheme.Symmetric {
		flags |= flagSymmetric
	}
	if m.Scheme.PerRow {
		flags |= flagPerRow
	}
	if m.Scheme.PerColumn {
		flags |= flagPerColumn
	}
	if m.Scheme.Stochastic {
		flags |= flagStochastic
	}
	b = append(b, magic0, magic1, formatVersion, byte(m.Scheme.Bits), flags)
	b = binary.LittleEndian.AppendUint32(b, uint32(m.Rows))
	b = binary.LittleEndian.AppendUint32(b, uint32(m.Cols))
	for _, s := range m.Scales {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(s))
	}
	for _, z := range m.Zeros {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(z))
	}
	return append(b, m.Codes...), nil
}

// UnmarshalBinary decodes data into m, validating it strictly: magic, version,
// bit width, unknown flags, per-row and per-column flags both set, shape, exact
// total length, and everything Validate checks. The sizes implied by the header
// are checked against len(data) before anything is allocated, so a hostile
// header cannot force a large allocation.
// m is left unchanged on error, and does not alias data.
func (m *Matrix) UnmarshalBinary(data []byte) error {
	if len(data) < HeaderSize {
		return fmt.Errorf("quant: truncated header: %d bytes, need %d", len(data), HeaderSize)
	}
	if data[0] != magic0 || data[1] != magic1 {
		return fmt.Errorf("quant: bad magic %q, want %q", data[:2], "kq")
	}
	if data[2] != formatVersion {
		return fmt.Errorf("quant: unsupported format version %d, want %d", data[2], formatVersion)
	}
	flags := data[4]
	if flags&^flagsKnown != 0 {
		return fmt.Errorf("quant: unknown flag bits %#02x", flags&^flagsKnown)
	}
	s := Scheme{
		Bits:       int(data[3]),
		Symmetric:  flags&flagSymmetric != 0,
		PerRow:     flags&flagPerRow != 0,
		PerColumn:  flags&flagPerColumn != 0,
		Stochastic: flags&flagStochastic != 0,
	}
	if err := s.Validate(); err != nil { // bit width; per-row and per-column both set
		return err
	}
	rows := binary.LittleEndian.Uint32(data[5:])
	cols := binary.LittleEndian.Uint32(data[9:])
	if rows == 0 || cols == 0 || rows > math.MaxInt32 || cols > math.MaxInt32 {
		return fmt.Errorf("quant: bad shape %d×%d in header (each must be 1 … 2^31−1)", rows, cols)
	}
	// Everything in uint64: rows·cols < 2^62, and the code length is computed
	// as in packedLen so it cannot overflow either.
	n := uint64(rows) * uint64(cols)
	g := uint64(1)
	switch {
	case s.PerRow:
		g = uint64(rows)
	case s.PerColumn:
		g = uint64(cols)
	}
	params := g
	if !s.Symmetric {
		params *= 2
	}
	codeLen := n/8*uint64(s.Bits) + (n%8*uint64(s.Bits)+7)/8
	want := HeaderSize + 4*params + codeLen
	if uint64(len(data)) != want {
		return fmt.Errorf("quant: length mismatch: header (%s, %d×%d) implies %d bytes, got %d", s, rows, cols, want, len(data))
	}
	// From here every size is bounded by len(data), so int conversions are safe.
	out := Matrix{Rows: int(rows), Cols: int(cols), Scheme: s}
	p := data[HeaderSize:]
	out.Scales = make([]float32, g)
	for k := range out.Scales {
		out.Scales[k] = math.Float32frombits(binary.LittleEndian.Uint32(p))
		p = p[4:]
	}
	if !s.Symmetric {
		out.Zeros = make([]float32, g)
		for k := range out.Zeros {
			out.Zeros[k] = math.Float32frombits(binary.LittleEndian.Uint32(p))
			p = p[4:]
		}
	}
	out.Codes = append([]byte(nil), p...)
	if err := out.Validate(); err != nil {
		return err
	}
	*m = out
	return nil
}

// Unmarshal is UnmarshalBinary into a new Matrix.
func Unmarshal(data []byte) (*Matrix, error) {
	m := new(Matrix)
	if err := m.UnmarshalBinary(data); err != nil {
		return nil, err
	}
	return m, nil
}
