package quant

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// allSchemes lists every supported combination of width, symmetry and
// granularity (round-to-nearest; callers set Stochastic where they want it).
func allSchemes() []Scheme {
	var ss []Scheme
	for _, b := range []int{2, 3, 4, 8} {
		for _, sym := range []bool{false, true} {
			for _, row := range []bool{false, true} {
				ss = append(ss, Scheme{Bits: b, Symmetric: sym, PerRow: row})
			}
		}
	}
	return ss
}

// randMatrix returns a rows×cols matrix whose row r has magnitude ~ 10^(r%5−2),
// so per-row and per-tensor scales differ, with a per-row offset so that
// asymmetric ranges are not centred on zero.
func randMatrix(rng *rand.Rand, rows, cols int) []float32 {
	x := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		mag := math.Pow(10, float64(r%5-2))
		off := (rng.Float64() - 0.3) * mag
		for c := 0; c < cols; c++ {
			x[r*cols+c] = float32(off + rng.NormFloat64()*mag)
		}
	}
	return x
}

// refGroup computes, in float64 and independently of the package, the step and
// offset the scheme's definition asks for on one group.
func refGroup(x []float32, s Scheme) (step, zero float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	maxAbs := 0.0
	for _, v := range x {
		f := float64(v)
		lo, hi, maxAbs = math.Min(lo, f), math.Max(hi, f), math.Max(maxAbs, math.Abs(f))
	}
	if s.Symmetric {
		return maxAbs / float64(int(1)<<(s.Bits-1)-1), 0
	}
	return (hi - lo) / float64(int(1)<<s.Bits-1), lo
}

func groupMinMax(x []float32) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range x {
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	return lo, hi
}

// codeAt reads code i of m bit by bit (independently of unpack) and returns
// the signed integer q it stands for.
func codeAt(m *Matrix, i int) int {
	b := m.Scheme.Bits
	v := 0
	for t := 0; t < b; t++ {
		k := i*b + t
		v |= int(m.Codes[k/8]>>(k%8)&1) << t
	}
	if m.Scheme.Symmetric && v >= 1<<(b-1) {
		v -= 1 << b
	}
	return v
}

func mustQuantize(t testing.TB, x []float32, rows, cols int, s Scheme, rng *rand.Rand) *Matrix {
	t.Helper()
	m, err := Quantize(x, rows, cols, s, rng)
	if err != nil {
		t.Fatalf("Quantize(%s, %d×%d): %v", s, rows, cols, err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("Quantize(%s, %d×%d) produced an invalid matrix: %v", s, rows, cols, err)
	}
	return m
}

// TestRoundToNearestErrorBound: every element is within Δ/2 of its input, with
// Δ checked against a float64 evaluation of the scheme's formula.
func TestRoundToNearestErrorBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][2]int{{1, 1}, {1, 9}, {3, 5}, {7, 13}, {17, 3}, {64, 33}}
	for _, s := range allSchemes() {
		for _, sh := range shapes {
			rows, cols := sh[0], sh[1]
			x := randMatrix(rng, rows, cols)
			m := mustQuantize(t, x, rows, cols, s, nil)
			xh := m.Dequantize()
			glen := rows * cols
			if s.PerRow {
				glen = cols
			}
			for g := range m.Scales {
				step, zero := refGroup(x[g*glen:(g+1)*glen], s)
				got := float64(m.Scales[g])
				// Δ is the float64 value rounded to the nearest float32.
				if math.Abs(got-step) > step/(1<<24) {
					t.Fatalf("%s %d×%d group %d: scale %g, want %g rounded to float32", s, rows, cols, g, got, step)
				}
				lo, hi := groupMinMax(x[g*glen : (g+1)*glen])
				if st := s.Step(lo, hi); st != step {
					t.Fatalf("%s: Step(%g, %g) = %g, want %g", s, lo, hi, st, step)
				}
				if !s.Symmetric && float64(m.Zeros[g]) != zero {
					t.Fatalf("%s %d×%d group %d: zero %g, want min %g", s, rows, cols, g, m.Zeros[g], zero)
				}
				for i := g * glen; i < (g+1)*glen; i++ {
					err := math.Abs(float64(x[i]) - float64(xh[i]))
					// Δ/2, plus float32 rounding of the reconstruction.
					tol := got/2*(1+1e-9) + math.Abs(float64(xh[i]))/(1<<24)
					if err > tol {
						t.Fatalf("%s %d×%d elem %d: |%g − %g| = %g > Δ/2 = %g", s, rows, cols, i, x[i], xh[i], err, got/2)
					}
				}
			}
		}
	}
}

// TestExactGrid: values already on the grid come back bit-for-bit. Steps and
// offsets are powers of two so that the grid is exact in float32.
func TestExactGrid(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const rows, cols = 5, 11
	for _, s := range allSchemes() {
		lo, hi := s.codeRange()
		step, zero := 0.125, 0.0
		if !s.Symmetric {
			zero = -1.5
		}
		x := make([]float32, rows*cols)
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				q := lo + rng.IntN(hi-lo+1)
				x[r*cols+c] = float32(zero + step*float64(q))
			}
			// Pin both ends of the range in every row so every group's Δ is step.
			x[r*cols] = float32(zero + step*float64(lo))
			x[r*cols+1] = float32(zero + step*float64(hi))
		}
		m := mustQuantize(t, x, rows, cols, s, nil)
		for g, sc := range m.Scales {
			if sc != float32(step) {
				t.Fatalf("%s: group %d scale %g, want %g", s, g, sc, step)
			}
		}
		xh := m.Dequantize()
		for i := range x {
			if xh[i] != x[i] {
				t.Fatalf("%s: elem %d: grid value %g came back as %g", s, i, x[i], xh[i])
			}
		}
		// Stochastic rounding has nothing to round on the grid either.
		ss := s
		ss.Stochastic = true
		xs := mustQuantize(t, x, rows, cols, ss, rand.New(rand.NewPCG(5, 6))).Dequantize()
		for i := range x {
			if xs[i] != x[i] {
				t.Fatalf("%s: elem %d: grid value %g came back as %g", ss, i, x[i], xs[i])
			}
		}
	}
}

// TestSymmetricVsAsymmetricRange: on all-positive data, asymmetric uses all 2^b
// levels over [min, max] while symmetric spends half its levels on negatives
// it never uses, with levels ±(2^(b−1)−1) at ±maxabs.
func TestSymmetricVsAsymmetricRange(t *testing.T) {
	const n = 64
	x := make([]float32, n)
	for i := range x {
		x[i] = 0.5 + 0.5*float32(i)/(n-1) // [0.5, 1]
	}
	for _, b := range []int{2, 3, 4, 8} {
		asym := mustQuantize(t, x, 1, n, Scheme{Bits: b}, nil)
		sym := mustQuantize(t, x, 1, n, Scheme{Bits: b, Symmetric: true}, nil)
		if want := float32(0.5 / float64(int(1)<<b-1)); asym.Scales[0] != want {
			t.Errorf("%d bits asym: scale %g, want %g", b, asym.Scales[0], want)
		}
		if want := float32(1 / float64(int(1)<<(b-1)-1)); sym.Scales[0] != want {
			t.Errorf("%d bits sym: scale %g, want %g", b, sym.Scales[0], want)
		}
		if q := codeAt(asym, 0); q != 0 {
			t.Errorf("%d bits asym: min → code %d, want 0", b, q)
		}
		if q, want := codeAt(asym, n-1), 1<<b-1; q != want {
			t.Errorf("%d bits asym: max → code %d, want %d", b, q, want)
		}
		if q, want := codeAt(sym, n-1), 1<<(b-1)-1; q != want {
			t.Errorf("%d bits sym: maxabs → code %d, want %d", b, q, want)
		}
		for i := 0; i < n; i++ {
			if q := codeAt(sym, i); q < 0 {
				t.Errorf("%d bits sym: positive value %g → negative code %d", b, x[i], q)
			}
		}
		// Mirror image: −maxabs → −(2^(b−1)−1); 0 is on the symmetric grid.
		neg := []float32{-1, 0, 1}
		ms := mustQuantize(t, neg, 1, 3, Scheme{Bits: b, Symmetric: true}, nil)
		if q, want := codeAt(ms, 0), -(1<<(b-1) - 1); q != want {
			t.Errorf("%d bits sym: −maxabs → code %d, want %d", b, q, want)
		}
		if got := ms.Dequantize(); got[0] != -1 || got[1] != 0 || got[2] != 1 {
			t.Errorf("%d bits sym: [-1 0 1] → %v", b, got)
		}
		// Finer grid ⇒ smaller worst-case error for asymmetric on this data.
		if asym.Scales[0] >= sym.Scales[0] {
			t.Errorf("%d bits: asym step %g not finer than sym step %g on one-signed data", b, asym.Scales[0], sym.Scales[0])
		}
	}
}

// TestPerRowIndependent: with per-row scales, a row's scale, codes and
// reconstruction do not depend on the other rows; per-tensor, a large row
// coarsens the small one.
func TestPerRowIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const rows, cols = 4, 9
	for _, s := range allSchemes() {
		if !s.PerRow {
			continue
		}
		x := randMatrix(rng, rows, cols)
		m1 := mustQuantize(t, x, rows, cols, s, nil)
		y := append([]float32(nil), x...)
		for c := 0; c < cols; c++ { // blow up row 0 only
			y[c] = x[c]*1000 + 7
		}
		m2 := mustQuantize(t, y, rows, cols, s, nil)
		d1, d2 := m1.Dequantize(), m2.Dequantize()
		for r := 1; r < rows; r++ {
			if m1.Scales[r] != m2.Scales[r] || (!s.Symmetric && m1.Zeros[r] != m2.Zeros[r]) {
				t.Fatalf("%s: row %d params changed when only row 0 changed", s, r)
			}
			for c := 0; c < cols; c++ {
				i := r*cols + c
				if codeAt(m1, i) != codeAt(m2, i) || d1[i] != d2[i] {
					t.Fatalf("%s: row %d col %d changed when only row 0 changed", s, r, c)
				}
			}
		}
		if m2.Scales[0] == m1.Scales[0] {
			t.Fatalf("%s: row 0 scale did not change", s)
		}
	}
	// Per-tensor: a row of 1e3 next to a row of 1e-3 leaves the small row with
	// nothing but the code nearest zero.
	x := []float32{1000, -1000, 500, 0.001, 0.002, -0.003}
	tens := mustQuantize(t, x, 2, 3, Scheme{Bits: 4, Symmetric: true}, nil).Dequantize()
	row := mustQuantize(t, x, 2, 3, Scheme{Bits: 4, Symmetric: true, PerRow: true}, nil).Dequantize()
	for c := 3; c < 6; c++ {
		if tens[c] != 0 {
			t.Errorf("per-tensor: small value %g → %g, want 0", x[c], tens[c])
		}
		if math.Abs(float64(row[c]-x[c])) > 0.003/7/2*1.0001 {
			t.Errorf("per-row: small value %g → %g, beyond Δ/2", x[c], row[c])
		}
	}
}

// TestAllZero: an all-zero tensor or row (Kron-LoRA initializes A to 0) has Δ = 0
// and reconstructs exactly, without dividing by zero; constant rows are exact
// for asymmetric schemes.
func TestAllZero(t *testing.T) {
	rows, cols := 3, 5
	zero := make([]float32, rows*cols)
	zero[4] = float32(math.Copysign(0, -1)) // −0 is also zero
	mixed := make([]float32, rows*cols)     // rows: 0, 2.5 constant, varying
	for c := 0; c < cols; c++ {
		mixed[cols+c] = 2.5
		mixed[2*cols+c] = float32(c) - 1
	}
	for _, s := range allSchemes() {
		for _, sr := range []bool{false, true} {
			s.Stochastic = sr
			rng := rand.New(rand.NewPCG(9, 10))
			m := mustQuantize(t, zero, rows, cols, s, rng)
			for g, sc := range m.Scales {
				if sc != 0 {
					t.Fatalf("%s: all-zero group %d has scale %g", s, g, sc)
				}
			}
			for i, v := range m.Dequantize() {
				if v != 0 || math.IsNaN(float64(v)) {
					t.Fatalf("%s: all-zero elem %d → %g", s, i, v)
				}
			}
			if !s.PerRow {
				continue
			}
			d := mustQuantize(t, mixed, rows, cols, s, rng).Dequantize()
			for c := 0; c < cols; c++ {
				if d[c] != 0 {
					t.Fatalf("%s: zero row elem %d → %g", s, c, d[c])
				}
				if !s.Symmetric && d[cols+c] != 2.5 {
					t.Fatalf("%s: constant row elem %d → %g, want 2.5", s, c, d[cols+c])
				}
			}
		}
	}
}

// TestExtremeRanges: values near ±MaxFloat32 and subnormal ranges quantize to
// finite, valid matrices with the error bound intact (up to the few-ulp clamp
// at ±MaxFloat32).
func TestExtremeRanges(t *testing.T) {
	big := []float32{math.MaxFloat32, -math.MaxFloat32, 1, 0, math.MaxFloat32 / 3}
	tiny := []float32{math.SmallestNonzeroFloat32, 0, 3 * math.SmallestNonzeroFloat32, 2 * math.SmallestNonzeroFloat32}
	for _, s := range allSchemes() {
		for _, x := range [][]float32{big, tiny} {
			m := mustQuantize(t, x, 1, len(x), s, nil)
			xh := m.Dequantize()
			sc := float64(m.Scales[0])
			if sc == 0 {
				t.Fatalf("%s: scale underflowed to 0 on %v", s, x)
			}
			for i := range x {
				if math.IsInf(float64(xh[i]), 0) || math.IsNaN(float64(xh[i])) {
					t.Fatalf("%s: %g → %g", s, x[i], xh[i])
				}
				if e := math.Abs(float64(x[i]) - float64(xh[i])); e > sc/2*(1+1e-6)+math.Abs(float64(x[i]))*1e-6 {
					t.Fatalf("%s: |%g − %g| = %g > Δ/2 = %g", s, x[i], xh[i], e, sc/2)
				}
			}
		}
	}
}

func TestQuantizeRejects(t *testing.T) {
	ok := make([]float32, 6)
	rng := rand.New(rand.NewPCG(1, 1))
	cases := []struct {
		name       string
		x          []float32
		rows, cols int
		s          Scheme
		rng        *rand.Rand
		want       string
	}{
		{"bits0", ok, 2, 3, Scheme{Bits: 0}, nil, "unsupported bit width 0"},
		{"bits1", ok, 2, 3, Scheme{Bits: 1}, nil, "unsupported bit width 1"},
		{"bits5", ok, 2, 3, Scheme{Bits: 5}, nil, "unsupported bit width 5"},
		{"bits16", ok, 2, 3, Scheme{Bits: 16}, nil, "unsupported bit width 16"},
		{"bitsNeg", ok, 2, 3, Scheme{Bits: -4}, nil, "unsupported bit width -4"},
		{"short", ok[:5], 2, 3, Scheme{Bits: 8}, nil, "shape mismatch: 2×3 needs 6 values, got 5"},
		{"long", ok, 2, 2, Scheme{Bits: 8}, nil, "shape mismatch: 2×2 needs 4 values, got 6"},
		{"zeroRows", nil, 0, 3, Scheme{Bits: 8}, nil, "rows and cols must be positive"},
		{"negCols", ok, -2, -3, Scheme{Bits: 8}, nil, "rows and cols must be positive"},
		{"huge", ok, math.MaxInt / 2, 3, Scheme{Bits: 8}, nil, "too large"},
		{"nan", []float32{0, 1, 2, 3, 4, float32(math.NaN())}, 2, 3, Scheme{Bits: 4}, nil, "non-finite value NaN at row 1, col 2"},
		{"inf", []float32{0, float32(math.Inf(-1)), 2, 3, 4, 5}, 2, 3, Scheme{Bits: 4}, nil, "non-finite value -Inf at row 0, col 1"},
		{"noRNG", ok, 2, 3, Scheme{Bits: 4, Stochastic: true}, nil, "needs a random source"},
	}
	for _, c := range cases {
		m, err := Quantize(c.x, c.rows, c.cols, c.s, c.rng)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
		if m != nil {
			t.Errorf("%s: non-nil matrix with error", c.name)
		}
	}
	if _, err := Quantize(ok, 2, 3, Scheme{Bits: 4}, nil); err != nil {
		t.Errorf("round-to-nearest must not need rng: %v", err)
	}
	if _, err := Quantize(ok, 2, 3, Scheme{Bits: 4, Stochastic: true}, rng); err != nil {
		t.Errorf("stochastic with rng: %v", err)
	}
}

// validMatrix is a small asymmetric or symmetric per-row matrix to corrupt.
func validMatrix(t *testing.T, s Scheme) *Matrix {
	t.Helper()
	x := []float32{-1, 0.25, 0.5, 1, 2, -3, 0.125}
	return mustQuantize(t, x[:6], 2, 3, s, nil)
}

func TestValidateRejects(t *testing.T) {
	asym := Scheme{Bits: 4, PerRow: true}
	sym := Scheme{Bits: 4, Symmetric: true, PerRow: true}
	cases := []struct {
		name    string
		s       Scheme
		corrupt func(m *Matrix)
		want    string
		layout  bool // caught by the O(1) layout check (Dequantize returns nil)
	}{
		{"nil", asym, nil, "nil matrix", true},
		{"bits", asym, func(m *Matrix) { m.Scheme.Bits = 6 }, "unsupported bit width 6", true},
		{"rows0", asym, func(m *Matrix) { m.Rows = 0 }, "must be positive", true},
		{"overflow", asym, func(m *Matrix) { m.Rows, m.Cols = math.MaxInt/4, 4 }, "too large", true},
		{"shortCodes", asym, func(m *Matrix) { m.Codes = m.Codes[:2] }, "2 code bytes, 2×3 at 4 bits needs 3", true},
		{"longCodes", asym, func(m *Matrix) { m.Codes = append(m.Codes, 0) }, "4 code bytes", true},
		{"scaleCount", asym, func(m *Matrix) { m.Scales = m.Scales[:1] }, "1 scales", true},
		{"perTensorScales", asym, func(m *Matrix) { m.Scheme.PerRow = false }, "2 scales", true},
		{"zeroCount", asym, func(m *Matrix) { m.Zeros = nil }, "0 zero points", true},
		{"symZeros", sym, func(m *Matrix) { m.Zeros = []float32{0, 0} }, "symmetric scheme has 2 zero points", true},
		{"nanScale", asym, func(m *Matrix) { m.Scales[1] = float32(math.NaN()) }, "scale 1 is NaN", false},
		{"infScale", asym, func(m *Matrix) { m.Scales[0] = float32(math.Inf(1)) }, "scale 0 is +Inf", false},
		{"negScale", asym, func(m *Matrix) { m.Scales[0] = -0.5 }, "scale 0 is -0.5", false},
		{"infZero", asym, func(m *Matrix) { m.Zeros[1] = float32(math.Inf(-1)) }, "zero point 1 is -Inf", false},
		{"overflowGrid", asym, func(m *Matrix) { m.Scales[0] = math.MaxFloat32 / 4 }, "decodes outside the float32 range", false},
		{"overflowGridSym", sym, func(m *Matrix) { m.Scales[1] = math.MaxFloat32 / 2 }, "decodes outside the float32 range", false},
		{"padding", asym, func(m *Matrix) {
			m.Cols, m.Rows = 5, 1
			m.Scales, m.Zeros = m.Scales[:1], m.Zeros[:1]
			m.Codes[2] |= 0x10
		}, "nonzero padding bits", false},
		{"symCode4", sym, func(m *Matrix) { m.Codes[1] = m.Codes[1]&0x0F | 0x80 }, "code -8 at row 1, col 0 is out of range [-7, 7]", false},
	}
	for _, c := range cases {
		var m *Matrix
		if c.corrupt != nil {
			m = validMatrix(t, c.s)
			c.corrupt(m)
		}
		err := m.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate = %v, want it to contain %q", c.name, err, c.want)
		}
		if _, err := m.MarshalBinary(); err == nil {
			t.Errorf("%s: MarshalBinary accepted an invalid matrix", c.name)
		}
		if c.layout {
			if d := m.Dequantize(); d != nil {
				t.Errorf("%s: Dequantize returned %v for an inconsistent matrix", c.name, d)
			}
			if err := m.DequantizeInto(make([]float32, 6)); err == nil {
				t.Errorf("%s: DequantizeInto accepted an inconsistent matrix", c.name)
			}
		}
	}

	// The forbidden symmetric code −2^(b−1) at every width.
	for _, b := range []int{2, 3, 4, 8} {
		m := mustQuantize(t, []float32{0, 0, 0}, 1, 3, Scheme{Bits: b, Symmetric: true}, nil)
		// Element 1 ← pattern 1<<(b−1): set only its top bit, stream bit 2b−1.
		k := 2*b - 1
		m.Codes[k/8] |= 1 << (k % 8)
		err := m.Validate()
		want := "code " + strconv.Itoa(-(1 << (b - 1))) + " at row 0, col 1"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%d bits: Validate = %v, want it to contain %q", b, err, want)
		}
		// The same pattern is a fine asymmetric code.
		m.Scheme.Symmetric = false
		m.Zeros = []float32{0}
		if err := m.Validate(); err != nil {
			t.Errorf("%d bits asym: %v", b, err)
		}
	}

	m := validMatrix(t, asym)
	if err := m.DequantizeInto(make([]float32, 5)); err == nil || !strings.Contains(err.Error(), "dst has 5 values, 2×3 needs 6") {
		t.Errorf("DequantizeInto short dst: %v", err)
	}
}

func TestSizeBytes(t *testing.T) {
	x := make([]float32, 2048*8)
	cases := []struct {
		rows, cols int
		s          Scheme
		want       int
	}{
		{2048, 8, Scheme{Bits: 4, PerRow: true}, 2048*8/2 + 2048*8},
		{2048, 8, Scheme{Bits: 4, Symmetric: true, PerRow: true}, 2048*8/2 + 2048*4},
		{8, 2048, Scheme{Bits: 8, Symmetric: true}, 2048*8*1 + 4},
		{8, 2048, Scheme{Bits: 3, PerRow: true}, 2048*8*3/8 + 8*8},
		{1, 5, Scheme{Bits: 3, Symmetric: true}, 2 + 4},
		{1, 5, Scheme{Bits: 2}, 2 + 8},
	}
	for _, c := range cases {
		m := mustQuantize(t, x[:c.rows*c.cols], c.rows, c.cols, c.s, nil)
		if got := m.SizeBytes(); got != c.want {
			t.Errorf("%s %d×%d: SizeBytes %d, want %d", c.s, c.rows, c.cols, got, c.want)
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != HeaderSize+c.want {
			t.Errorf("%s %d×%d: encoding %d bytes, want %d", c.s, c.rows, c.cols, len(b), HeaderSize+c.want)
		}
	}
}

func TestStep(t *testing.T) {
	cases := []struct {
		s      Scheme
		lo, hi float64
		want   float64
	}{
		{Scheme{Bits: 2, Symmetric: true}, -3, 1, 3},
		{Scheme{Bits: 4, Symmetric: true}, -0.5, 0.7, 0.1},
		{Scheme{Bits: 8, Symmetric: true}, 0, 0, 0},
		{Scheme{Bits: 2}, -3, 3, 2},
		{Scheme{Bits: 3}, 1, 8, 1},
		{Scheme{Bits: 8, PerRow: true}, -1, 254, 1},
	}
	for _, c := range cases {
		if got := c.s.Step(c.lo, c.hi); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("%s.Step(%g, %g) = %g, want %g", c.s, c.lo, c.hi, got, c.want)
		}
	}
	if got := (Scheme{Bits: 5}).Step(0, 1); !math.IsNaN(got) {
		t.Errorf("Step for 5 bits = %g, want NaN", got)
	}
}

func TestSchemeString(t *testing.T) {
	if got := (Scheme{Bits: 4, PerRow: true, Stochastic: true}).String(); got != "int4-asym-row-sr" {
		t.Errorf("String = %q", got)
	}
	if got := (Scheme{Bits: 8, Symmetric: true}).String(); got != "int8-sym-tensor-rtn" {
		t.Errorf("String = %q", got)
	}
}
