package compute

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func randMag64(r *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		v := 0.5 + r.Float64()/2
		if r.IntN(2) == 0 {
			v = -v
		}
		s[i] = v
	}
	return s
}

// exactDot is Σ x[i]·y[i] rounded once, from big.Float products and sums.
func exactDot(x, y []float64) float64 {
	acc := new(big.Float).SetPrec(2048)
	for i := range x {
		p := new(big.Float).SetPrec(2048).Mul(big.NewFloat(x[i]), big.NewFloat(y[i]))
		acc.Add(acc, p)
	}
	f, _ := acc.Float64()
	return f
}

// wantDot64 fails t unless got is within roundings·2⁻⁵³·Σ|x_i·y_i| of
// the exactly rounded ⟨x, y⟩.
func wantDot64(t *testing.T, what string, got float64, x, y []float64, roundings int) {
	t.Helper()
	want := exactDot(x, y)
	var mag float64
	for i := range x {
		mag += math.Abs(x[i] * y[i])
	}
	if d := math.Abs(got - want); d > float64(roundings)*0x1p-53*mag {
		t.Fatalf("%s = %.17g, want %.17g (diff %g)", what, got, want, d)
	}
}

// TestDot64 checks Dot64 against the exactly rounded sum at every tail
// length of the 16- and 4-wide loops: within (n/4 + 8) roundings of the
// terms' magnitudes, which dropping or repeating a term (|x·y| ≥ 0.25)
// exceeds.
func TestDot64(t *testing.T) {
	forBothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 1))
		for _, n := range vecLens() {
			off := r.IntN(4)
			x := randMag64(r, n+off)[off:]
			y := randMag64(r, n+off+3)[off:]
			wantDot64(t, fmt.Sprintf("n=%d: Dot64", n), Dot64(x, y), x, y, n/4+8)
		}
	})
}

// TestSymRank2Dot checks the row update element by element (two roundings
// of each term at most) and the returned product with the updated row
// against the exactly rounded one, at every tail length of the 8- and
// 4-wide loops; the elements past the row must stay untouched.
func TestSymRank2Dot(t *testing.T) {
	forBothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(8, 2))
		for _, n := range vecLens() {
			row := randMag64(r, n+1)
			v, w, u := randMag64(r, n), randMag64(r, n+2), randMag64(r, n)
			vi, wi := 0.5+r.Float64(), -0.5-r.Float64()
			orig := append([]float64(nil), row...)
			got := SymRank2Dot(row[:n], v, w, u, vi, wi)
			for j := 0; j < n; j++ {
				want := orig[j] - vi*w[j] - wi*v[j]
				mag := math.Abs(orig[j]) + math.Abs(vi*w[j]) + math.Abs(wi*v[j])
				if d := math.Abs(row[j] - want); d > 3*0x1p-53*mag {
					t.Fatalf("n=%d: row[%d] = %.17g, want %.17g", n, j, row[j], want)
				}
			}
			if row[n] != orig[n] {
				t.Fatalf("n=%d: wrote past the row", n)
			}
			wantDot64(t, fmt.Sprintf("n=%d: SymRank2Dot", n), got, row[:n], u, n/2+8)
		}
	})
}

// TestSymGram64 checks every entry of SymGram64 against the exactly
// rounded inner product, for row counts around the 4×3 blocking (and its
// leftover rows and columns), lengths around the 4-wide loop and the
// 256-column chunks, and a stride past the row's end; both triangles.
func TestSymGram64(t *testing.T) {
	forBothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(6, 6))
		for _, m := range []int{1, 2, 3, 4, 5, 7, 8, 13} {
			for _, n := range []int{0, 1, 3, 4, 5, 255, 256, 257, 600} {
				ld := n + 3
				x := randMag64(r, m*ld)
				g := SymGram64(x, m, n, ld)
				for i := 0; i < m; i++ {
					for j := 0; j < m; j++ {
						wantDot64(t, fmt.Sprintf("m=%d n=%d: G[%d,%d]", m, n, i, j), g[i*m+j], x[i*ld:][:n], x[j*ld:][:n], n/4+8)
					}
				}
			}
		}
	})
}

// TestAxpyWiden: the vector path gives exactly the Go expression's bits
// at every tail length, for weights and values over many magnitudes
// (subnormal products, overflow to ±Inf, halfway roundings included).
func TestAxpyWiden(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, n := range vecLens() {
		for _, alpha := range []float64{0.37, 1.0 / 3, 1e-42, 3e38, -0.5} {
			x := make([]float32, n+1)
			y := make([]float32, n+1)
			for i := range x {
				x[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(12)-6)))
				y[i] = float32(r.NormFloat64())
			}
			want := append([]float32(nil), y...)
			axpyWidenGo(alpha, x[:n], want[:n])
			got := append([]float32(nil), y...)
			AxpyWiden(alpha, x[:n], got)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n=%d alpha=%g: y[%d] = %v, want %v", n, alpha, i, got[i], want[i])
				}
			}
		}
	}
}
