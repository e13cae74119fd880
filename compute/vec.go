package compute

import "math"

// Axpy computes y += alpha·x. len(y) must be ≥ len(x).
func Axpy(alpha float32, x, y []float32) {
	axpy(alpha, x, y[:len(x)])
}

// Axpy2 computes y += a0·x0 + a1·x1 over len(y) elements (x0 and x1 must be
// at least that long). It is the per-token update of the Kron-LoRA layer:
// one pass over y instead of two Axpy calls.
func Axpy2(a0 float32, x0 []float32, a1 float32, x1 []float32, y []float32) {
	n := len(y)
	axpy2(a0, x0[:n], a1, x1[:n], y)
}

// Dot returns Σ x[i]·y[i] over len(x). len(y) must be ≥ len(x).
func Dot(x, y []float32) float32 {
	return dot(x, y[:len(x)])
}

// Scale computes x *= alpha.
func Scale(alpha float32, x []float32) {
	scale(alpha, x)
}

// Max returns the largest element of x: −Inf for an empty x, NaN when x
// holds a NaN. Which zero it returns when the largest value is ±0 is
// unspecified (the vector path compares lane by lane); every other result
// is the exact maximum, whatever the order of the comparisons.
func Max(x []float32) float32 {
	return maxOf(x)
}

// Portable versions: the fallback off amd64 and the references for tests.

func axpyGo(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

func axpy2Go(a0 float32, x0 []float32, a1 float32, x1, y []float32) {
	x0 = x0[:len(y)]
	x1 = x1[:len(y)]
	for i := range y {
		y[i] += a0*x0[i] + a1*x1[i]
	}
}

func dotGo(x, y []float32) float32 { return dotN(x, y[:len(x)]) }

// dotN is the portable dot product of both widths. Four partial sums:
// shorter dependency chain, and rounding closer to the vector versions.
func dotN[F float32 | float64](x, y []F) F {
	var s0, s1, s2, s3 F
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func scaleGo(alpha float32, x []float32) {
	for i := range x {
		x[i] *= alpha
	}
}

func maxGo(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

// MulAdd computes y[i] += alpha·x[i] over len(x) (len(y) ≥ len(x)) with the
// product rounded to float32 before the add, as the Go expression does —
// Axpy fuses the two (one rounding), which is faster and not the same bits.
func MulAdd(alpha float32, x, y []float32) {
	mulAdd(alpha, x, y[:len(x)])
}

func mulAddGo(alpha float32, x, y []float32) {
	for i, v := range x {
		y[i] += alpha * v
	}
}
