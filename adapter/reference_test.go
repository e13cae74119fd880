package adapter

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The float64 dense references: ΔW materialized with an explicit Kronecker
// product (torch.kron's index rule), plain triple loops, nothing shared with the
// code under test.

// kron64 returns the Kronecker product of a (ar×ac) and b (br×bc).
func kron64(a []float64, ar, ac int, b []float64, br, bc int) []float64 {
	out := make([]float64, ar*br*ac*bc)
	cols := ac * bc
	for i := 0; i < ar; i++ {
		for j := 0; j < ac; j++ {
			for k := 0; k < br; k++ {
				for l := 0; l < bc; l++ {
					out[(i*br+k)*cols+j*bc+l] = a[i*ac+j] * b[k*bc+l]
				}
			}
		}
	}
	return out
}

// matmul64 returns a (m×k) · b (k×n).
func matmul64(a, b []float64, m, k, n int) []float64 {
	c := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			for j := 0; j < n; j++ {
				c[i*n+j] += a[i*k+p] * b[p*n+j]
			}
		}
	}
	return c
}

func transpose64(a []float64, rows, cols int) []float64 {
	t := make([]float64, len(a))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			t[j*rows+i] = a[i*cols+j]
		}
	}
	return t
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// deltaW64 materializes scale·ΔW of any layer from its factors.
func deltaW64(t *testing.T, l Layer) []float64 {
	t.Helper()
	var dw []float64
	switch l := l.(type) {
	case *Kron:
		r, dA2, dB2, dB1 := l.dims()
		b := matmul64(to64(l.B1), to64(l.B2), dB2, r, dB1)
		dw = kron64(to64(l.A), dA2, KronDA1, b, dB2, dB1)
	case *LoRA:
		dw = matmul64(to64(l.B), to64(l.A), l.Shape.DOut, l.Shape.Rank, l.Shape.DIn)
	default:
		t.Fatalf("unknown layer %T", l)
	}
	s := float64(l.Scale())
	for i := range dw {
		dw[i] *= s
	}
	return dw
}

// relErr is ‖got − want‖₂ / ‖want‖₂ over the whole tensor.
func relErr(got []float32, want []float64) float64 {
	var num, den float64
	for i, w := range want {
		d := float64(got[i]) - w
		num += d * d
		den += w * w
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

func randSlice(rng *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * scale)
	}
	return x
}

// randomize fills every factor with noise so no product is trivially zero
// (the real initialization has A = 0 or B = 0).
func randomize(l Layer, rng *rand.Rand) {
	for _, f := range l.Factors() {
		copy(f.Data, randSlice(rng, len(f.Data), 0.5))
	}
}
