package quant

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// Per-column scales, checked against independent references: per-row
// quantization of the transpose, the scheme's float64 formulas per column, a
// plain two-loop stochastic quantizer, and the statistical unbiasedness test of
// stochastic_test.go.

// colSchemes lists every width and symmetry with per-column scales
// (round-to-nearest; callers set Stochastic where they want it).
func colSchemes() []Scheme {
	var ss []Scheme
	for _, b := range []int{2, 3, 4, 8} {
		for _, sym := range []bool{false, true} {
			ss = append(ss, Scheme{Bits: b, Symmetric: sym, PerColumn: true})
		}
	}
	return ss
}

// colShapes include a single row and column, tall and wide shapes, rows longer
// than a chunk (512 codes), and column counts that do not divide a chunk, so
// that runs cross chunk boundaries mid-row.
var colShapes = [][2]int{{1, 1}, {1, 9}, {9, 1}, {3, 5}, {17, 3}, {64, 33}, {96, 8}, {700, 3}, {5, 700}, {3, 1030}}

func transpose(x []float32, rows, cols int) []float32 {
	t := make([]float32, len(x))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			t[c*rows+r] = x[r*cols+c]
		}
	}
	return t
}

// randColMatrix is a rows×cols matrix whose columns have different magnitudes
// and offsets (the transpose of randMatrix), with, when there are at least three
// columns, column 1 all zero and column 2 constant.
func randColMatrix(rng *rand.Rand, rows, cols int) []float32 {
	x := transpose(randMatrix(rng, cols, rows), cols, rows)
	if cols >= 3 {
		for r := 0; r < rows; r++ {
			x[r*cols+1] = 0
			x[r*cols+2] = -1.75
		}
	}
	return x
}

// TestPerColumnIsTransposedPerRow: with round-to-nearest, quantizing x per
// column gives, element for element, the same scales, offsets, codes and
// (bit for bit) reconstruction as quantizing xᵀ per row and transposing back.
func TestPerColumnIsTransposedPerRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	for _, s := range colSchemes() {
		row := s
		row.PerColumn, row.PerRow = false, true
		for _, sh := range colShapes {
			rows, cols := sh[0], sh[1]
			x := randColMatrix(rng, rows, cols)
			mc := mustQuantize(t, x, rows, cols, s, nil)
			mr := mustQuantize(t, transpose(x, rows, cols), cols, rows, row, nil)
			if len(mc.Scales) != cols || !equalBits(mc.Scales, mr.Scales) || !equalBits(mc.Zeros, mr.Zeros) {
				t.Fatalf("%s %d×%d: scales/zeros differ from per-row of the transpose:\n%v %v\n%v %v",
					s, rows, cols, mc.Scales, mc.Zeros, mr.Scales, mr.Zeros)
			}
			if mc.SizeBytes() != mr.SizeBytes() {
				t.Fatalf("%s %d×%d: SizeBytes %d, transpose per-row %d", s, rows, cols, mc.SizeBytes(), mr.SizeBytes())
			}
			dc := mc.Dequantize()
			dr := transpose(mr.Dequantize(), cols, rows)
			for r := 0; r < rows; r++ {
				for c := 0; c < cols; c++ {
					i := r*cols + c
					if qc, qr := codeAt(mc, i), codeAt(mr, c*rows+r); qc != qr {
						t.Fatalf("%s %d×%d (%d,%d): code %d, transpose per-row %d", s, rows, cols, r, c, qc, qr)
					}
					if math.Float32bits(dc[i]) != math.Float32bits(dr[i]) {
						t.Fatalf("%s %d×%d (%d,%d): %g, transpose per-row %g", s, rows, cols, r, c, dc[i], dr[i])
					}
				}
			}
			// The zero column and, asymmetric, the constant column come back exactly.
			if cols >= 3 {
				for r := 0; r < rows; r++ {
					if dc[r*cols+1] != 0 || (!s.Symmetric && dc[r*cols+2] != -1.75) {
						t.Fatalf("%s %d×%d row %d: zero/constant columns → %g, %g", s, rows, cols, r, dc[r*cols+1], dc[r*cols+2])
					}
				}
			}
		}
	}
}

// TestPerColumnErrorBound: each column's Δ (and z) is the scheme's float64
// formula on that column rounded to float32, and round-to-nearest moves every
// element by at most Δ_col/2.
func TestPerColumnErrorBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(63, 64))
	for _, s := range colSchemes() {
		for _, sh := range colShapes {
			rows, cols := sh[0], sh[1]
			x := randColMatrix(rng, rows, cols)
			m := mustQuantize(t, x, rows, cols, s, nil)
			xh := make([]float32, len(x))
			if err := m.DequantizeInto(xh); err != nil {
				t.Fatal(err)
			}
			col := make([]float32, rows)
			for c := 0; c < cols; c++ {
				for r := range col {
					col[r] = x[r*cols+c]
				}
				step, zero := refGroup(col, s)
				got := float64(m.Scales[c])
				if math.Abs(got-step) > step/(1<<24) {
					t.Fatalf("%s %d×%d col %d: scale %g, want %g rounded to float32", s, rows, cols, c, got, step)
				}
				if lo, hi := groupMinMax(col); s.Step(lo, hi) != step {
					t.Fatalf("%s: Step(%g, %g) = %g, want %g", s, lo, hi, s.Step(lo, hi), step)
				}
				if !s.Symmetric && float64(m.Zeros[c]) != zero {
					t.Fatalf("%s %d×%d col %d: zero %g, want min %g", s, rows, cols, c, m.Zeros[c], zero)
				}
				for r := 0; r < rows; r++ {
					i := r*cols + c
					err := math.Abs(float64(x[i]) - float64(xh[i]))
					tol := got/2*(1+1e-9) + math.Abs(float64(xh[i]))/(1<<24)
					if err > tol {
						t.Fatalf("%s %d×%d (%d,%d): |%g − %g| = %g > Δ_col/2 = %g", s, rows, cols, r, c, x[i], xh[i], err, got/2)
					}
				}
			}
		}
	}
}

// TestPerColumnStochasticOrder: stochastic rounding draws exactly one Float64
// per element in row-major order. The reference is a plain loop over rows and
// columns using the matrix's own Δ and z; afterwards both sources must be in
// the same state.
func TestPerColumnStochasticOrder(t *testing.T) {
	data := rand.New(rand.NewPCG(65, 66))
	for _, s := range colSchemes() {
		s.Stochastic = true
		for _, sh := range colShapes {
			rows, cols := sh[0], sh[1]
			x := randColMatrix(data, rows, cols)
			rng := rand.New(rand.NewPCG(67, uint64(rows*cols)))
			ref := rand.New(rand.NewPCG(67, uint64(rows*cols)))
			m := mustQuantize(t, x, rows, cols, s, rng)
			lo, hi := s.codeRange()
			for r := 0; r < rows; r++ {
				for c := 0; c < cols; c++ {
					var z, inv float64
					if !s.Symmetric {
						z = float64(m.Zeros[c])
					}
					if m.Scales[c] > 0 {
						inv = 1 / float64(m.Scales[c])
					}
					y := (float64(x[r*cols+c]) - z) * inv
					q := math.Floor(y)
					if ref.Float64() < y-q {
						q++
					}
					q = math.Max(float64(lo), math.Min(float64(hi), q))
					if got := codeAt(m, r*cols+c); got != int(q) {
						t.Fatalf("%s %d×%d (%d,%d): code %d, reference %d", s, rows, cols, r, c, got, int(q))
					}
				}
			}
			if a, b := rng.Uint64(), ref.Uint64(); a != b {
				t.Fatalf("%s %d×%d: rng consumed a different number of values than one per element", s, rows, cols)
			}
			// Stochastic error is below one step of the element's column.
			xh := m.Dequantize()
			for i := range x {
				if e := math.Abs(float64(x[i] - xh[i])); e >= float64(m.Scales[i%cols])*(1+1e-6) && e > 0 {
					t.Fatalf("%s: elem %d: stochastic error %g ≥ Δ %g", s, i, e, m.Scales[i%cols])
				}
			}
		}
	}
}

// TestPerColumnStochasticUnbiased applies checkUnbiased (stochastic_test.go) to
// the transpose of its per-row cases: every column then contains both ends of
// its range, so every column's Δ is the case's exact step.
func TestPerColumnStochasticUnbiased(t *testing.T) {
	for _, s := range colSchemes() {
		if s.Bits == 3 && s.Symmetric || s.Bits == 2 && !s.Symmetric {
			continue // keep runtime small; every width and both symmetries remain
		}
		s.Stochastic = true
		row := s
		row.PerColumn, row.PerRow = false, true
		c := newSROCase(rand.New(rand.NewPCG(24, uint64(s.Bits))), row)
		ct := sroCase{s: s, rows: c.cols, cols: c.rows, x: transpose(c.x, c.rows, c.cols), step: c.step, zero: c.zero}
		rng := rand.New(rand.NewPCG(25, 26))
		var m *Matrix
		sample := func() ([]float32, error) {
			var err error
			m, err = Quantize(ct.x, ct.rows, ct.cols, s, rng)
			if err != nil {
				return nil, err
			}
			return m.Dequantize(), nil
		}
		if err := checkUnbiased(ct, sroTrials, sample); err != nil {
			t.Errorf("%s: %v", s, err)
		}
		if len(m.Scales) != ct.cols {
			t.Fatalf("%s: %d scales for %d columns", s, len(m.Scales), ct.cols)
		}
		for g, sc := range m.Scales {
			if float64(sc) != ct.step {
				t.Fatalf("%s: column %d step %g, the test assumes %g", s, g, sc, ct.step)
			}
		}
	}
}

// TestPerColumnBinary: round trip, the pinned layout of a small per-column
// matrix, and rejection of both granularity flags and of truncated data.
func TestPerColumnBinary(t *testing.T) {
	rng := rand.New(rand.NewPCG(68, 69))
	for _, s := range colSchemes() {
		for _, sr := range []bool{false, true} {
			s.Stochastic = sr
			for _, sh := range [][2]int{{1, 1}, {7, 3}, {96, 8}} {
				rows, cols := sh[0], sh[1]
				m := mustQuantize(t, randColMatrix(rng, rows, cols), rows, cols, s, rng)
				b, err := m.MarshalBinary()
				if err != nil {
					t.Fatalf("%s: %v", s, err)
				}
				if len(b) != HeaderSize+m.SizeBytes() || b[4]&flagPerColumn == 0 || b[4]&flagPerRow != 0 {
					t.Fatalf("%s: %d bytes, flags %#x", s, len(b), b[4])
				}
				got, err := Unmarshal(b)
				if err != nil {
					t.Fatalf("%s %d×%d: %v", s, rows, cols, err)
				}
				if got.Rows != rows || got.Cols != cols || got.Scheme != s || !equalBits(got.Scales, m.Scales) ||
					!equalBits(got.Zeros, m.Zeros) || !bytes.Equal(got.Codes, m.Codes) {
					t.Fatalf("%s %d×%d: round trip changed the matrix", s, rows, cols)
				}
				for n := range b {
					if _, err := Unmarshal(b[:n]); err == nil {
						t.Fatalf("%s %d×%d: accepted %d of %d bytes", s, rows, cols, n, len(b))
					}
				}
			}
		}
	}

	// Layout: 2×3, 8-bit symmetric per-column, round-to-nearest: flags 0b1001,
	// then one scale per column, then the codes row-major.
	m := &Matrix{
		Rows: 2, Cols: 3,
		Scheme: Scheme{Bits: 8, Symmetric: true, PerColumn: true},
		Scales: []float32{0.5, 1, 2},
		Codes:  []byte{1, 2, 3, 0xff, 0xfe, 0xfd}, // row 0: 1 2 3; row 1: −1 −2 −3
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		'k', 'q', 1, 8, 0b1001,
		2, 0, 0, 0, 3, 0, 0, 0,
		0, 0, 0, 0x3f, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, // scales 0.5, 1, 2
		1, 2, 3, 0xff, 0xfe, 0xfd,
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding\n got %x\nwant %x", b, want)
	}
	if got, want := m.Dequantize(), []float32{0.5, 2, 6, -0.5, -2, -6}; !equalBits(got, want) {
		t.Fatalf("Dequantize = %v, want %v", got, want)
	}

	asym := mustQuantize(t, randColMatrix(rng, 2, 3), 2, 3, Scheme{Bits: 4, PerColumn: true}, nil)
	good, err := asym.MarshalBinary() // 13 + 4·3 + 4·3 + 3 = 40 bytes
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte)) []byte {
		c := append([]byte(nil), good...)
		f(c)
		return c
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"bothGranularities", edit(func(b []byte) { b[4] |= flagPerRow }), "both per-row and per-column"},
		{"perRowInstead", edit(func(b []byte) { b[4] = b[4]&^flagPerColumn | flagPerRow }), "implies 32 bytes, got 40"},
		{"perTensorInstead", edit(func(b []byte) { b[4] &^= flagPerColumn }), "implies 24 bytes, got 40"},
		{"truncated", good[:len(good)-1], "implies 40 bytes, got 39"},
		{"truncatedScales", good[:HeaderSize+5], "implies 40 bytes, got 18"},
		{"trailing", append(append([]byte(nil), good...), 0), "implies 40 bytes, got 41"},
		{"nanScale", edit(func(b []byte) { binary.LittleEndian.PutUint32(b[HeaderSize+8:], 0x7fc00000) }), "scale 2 is NaN"},
		{"infZero", edit(func(b []byte) { binary.LittleEndian.PutUint32(b[HeaderSize+16:], 0xff800000) }), "zero point 1 is -Inf"},
	}
	for _, c := range cases {
		var m Matrix
		m.Rows = -7
		err := m.UnmarshalBinary(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
		if m.Rows != -7 {
			t.Errorf("%s: failed decode modified the receiver", c.name)
		}
	}
}

// TestPerColumnRejects: a scheme may not be both per-row and per-column, and a
// per-column matrix needs exactly Cols scales (and zeros).
func TestPerColumnRejects(t *testing.T) {
	both := Scheme{Bits: 8, Symmetric: true, PerRow: true, PerColumn: true}
	const msg = "both per-row and per-column"
	if err := both.Validate(); err == nil || !strings.Contains(err.Error(), msg) {
		t.Errorf("Scheme.Validate = %v", err)
	}
	if !math.IsNaN(both.Step(-1, 1)) {
		t.Error("Step accepted a scheme with both granularities")
	}
	if m, err := Quantize(make([]float32, 6), 2, 3, both, nil); err == nil || m != nil || !strings.Contains(err.Error(), msg) {
		t.Errorf("Quantize = %v, %v", m, err)
	}
	m := mustQuantize(t, []float32{1, 2, 3, 4, 5, 6}, 2, 3, Scheme{Bits: 4, PerColumn: true}, nil)
	m.Scheme.PerRow = true
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), msg) {
		t.Errorf("Matrix.Validate = %v", err)
	}
	if _, err := m.MarshalBinary(); err == nil {
		t.Error("MarshalBinary accepted both granularities")
	}
	if m.Dequantize() != nil {
		t.Error("Dequantize accepted both granularities")
	}
	m.Scheme.PerRow = false
	m.Scales = m.Scales[:2]
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "2 scales, int4-asym-col-rtn 2×3 needs 3") {
		t.Errorf("short scales: %v", err)
	}
	m.Scales = append(m.Scales, 1)
	m.Zeros = m.Zeros[:2]
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "2 zero points") {
		t.Errorf("short zeros: %v", err)
	}
}

func TestPerColumnSchemeString(t *testing.T) {
	for s, want := range map[Scheme]string{
		{Bits: 8, Symmetric: true, PerColumn: true, Stochastic: true}: "int8-sym-col-sr",
		{Bits: 4, PerColumn: true}:                                    "int4-asym-col-rtn",
		{Bits: 4, PerRow: true, PerColumn: true}:                      "int4-asym-row+col-rtn",
	} {
		if got := s.String(); got != want {
			t.Errorf("String = %q, want %q", got, want)
		}
	}
}

// TestPerColumnSize: a tall factor pays one scale per column.
func TestPerColumnSize(t *testing.T) {
	x := make([]float32, 2048*8)
	cases := []struct {
		rows, cols int
		s          Scheme
		want       int
	}{
		{2048, 8, Scheme{Bits: 4, Symmetric: true, PerColumn: true}, 2048*8/2 + 8*4},
		{2048, 8, Scheme{Bits: 8, PerColumn: true}, 2048*8 + 8*8},
		{8, 2048, Scheme{Bits: 3, PerColumn: true}, 2048*8*3/8 + 2048*8},
		{1, 5, Scheme{Bits: 3, Symmetric: true, PerColumn: true}, 2 + 5*4},
	}
	for _, c := range cases {
		m := mustQuantize(t, x[:c.rows*c.cols], c.rows, c.cols, c.s, nil)
		if got := m.SizeBytes(); got != c.want {
			t.Errorf("%s %d×%d: SizeBytes %d, want %d", c.s, c.rows, c.cols, got, c.want)
		}
	}
}

// TestPerColumnDequantizeIntoNoAlloc: the per-column decoder allocates nothing,
// like the per-row one.
func TestPerColumnDequantizeIntoNoAlloc(t *testing.T) {
	x := randColMatrix(rand.New(rand.NewPCG(70, 71)), 192, 8)
	for _, s := range []Scheme{{Bits: 8, Symmetric: true, PerColumn: true}, {Bits: 3, PerColumn: true}} {
		m := mustQuantize(t, x, 192, 8, s, nil)
		dst := make([]float32, len(x))
		if n := testing.AllocsPerRun(10, func() { _ = m.DequantizeInto(dst) }); n != 0 {
			t.Errorf("%s: DequantizeInto allocates %v times", s, n)
		}
	}
}
