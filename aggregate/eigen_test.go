package aggregate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// symWithSpectrum returns Q·diag(lambda)·Qᵀ (m×m, row-major) for a random
// orthogonal Q (from the QR of a Gaussian matrix).
func symWithSpectrum(rng *rand.Rand, lambda []float64) []float64 {
	m := len(lambda)
	g := mat.NewDense(m, m, nil)
	for i := 0; i < m; i++ {
		for j := 0; j < m; j++ {
			g.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(g)
	var q mat.Dense
	qr.QTo(&q)
	var h mat.Dense
	h.Mul(&q, mat.NewDiagDense(m, lambda))
	h.Mul(&h, q.T())
	out := make([]float64, m*m)
	for i := 0; i < m; i++ {
		for j := 0; j < m; j++ {
			out[i*m+j] = (h.At(i, j) + h.At(j, i)) / 2
		}
	}
	return out
}

// TestTopEigen checks topEigen against gonum's full eigendecomposition:
// the k largest eigenvalues agree within 1e-12·‖h‖, every returned vector
// has a residual ‖h·z − λ·z‖ ≤ 1e-12·‖h‖, and the vectors are orthonormal to
// 1e-12 — for random, clustered, exactly repeated (a diagonal h, whose
// tridiagonal form splits everywhere), rank-deficient and graded spectra,
// and for m ≤ r. The QL fallback is checked on the same inputs.
func TestTopEigen(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	spectrum := func(m int, f func(i int) float64) []float64 {
		l := make([]float64, m)
		for i := range l {
			l[i] = f(i)
		}
		return l
	}
	cases := []struct {
		name string
		h    []float64
		m, r int
	}{
		{"random 60", symWithSpectrum(rng, spectrum(60, func(int) float64 { return rng.NormFloat64() })), 60, 8},
		{"cluster of 5 at 3", symWithSpectrum(rng, spectrum(40, func(i int) float64 {
			if i < 5 {
				return 3 + float64(i)*1e-11
			}
			return float64(i) / 40
		})), 40, 8},
		{"rank 3, zeros after", symWithSpectrum(rng, spectrum(30, func(i int) float64 { return map[bool]float64{true: float64(3 - i), false: 0}[i < 3] })), 30, 8},
		{"graded over 12 decades", symWithSpectrum(rng, spectrum(50, func(i int) float64 { return math.Pow(10, -float64(i)/4) })), 50, 8},
		{"negative largest in magnitude", symWithSpectrum(rng, spectrum(20, func(i int) float64 { return -10 + float64(i) })), 20, 8},
		{"m < r", symWithSpectrum(rng, spectrum(5, func(i int) float64 { return float64(i) })), 5, 8},
		{"1×1", []float64{-2.5}, 1, 8},
		{"zero", make([]float64, 36), 6, 8}, // inverse iteration cannot start: the QL fallback
	}
	diag := make([]float64, 24*24) // eigenvalue 2 eight times, 1 sixteen times
	for i := 0; i < 24; i++ {
		diag[i*24+i] = map[bool]float64{true: 2, false: 1}[i%3 == 0]
	}
	cases = append(cases, struct {
		name string
		h    []float64
		m, r int
	}{"diagonal, repeated", diag, 24, 8})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.m
			h0 := mat.NewSymDense(m, append([]float64(nil), c.h...))
			var eig mat.EigenSym
			if !eig.Factorize(h0, false) {
				t.Fatal("reference eigendecomposition failed")
			}
			want := eig.Values(nil)
			norm := math.Max(math.Abs(want[0]), math.Abs(want[m-1])) // 0 for the zero matrix: exact
			check := func(name string, vals []float64, z *mat.Dense) {
				t.Helper()
				k := min(c.r, m)
				if len(vals) != k {
					t.Fatalf("%s: %d values, want %d", name, len(vals), k)
				}
				for q := 0; q < k; q++ {
					if math.Abs(vals[q]-want[m-1-q]) > 1e-12*norm {
						t.Errorf("%s: λ_%d = %.17g, want %.17g", name, q, vals[q], want[m-1-q])
					}
					var hz mat.VecDense
					hz.MulVec(h0, z.ColView(q))
					hz.AddScaledVec(&hz, -vals[q], z.ColView(q))
					if res := mat.Norm(&hz, 2); res > 1e-12*norm {
						t.Errorf("%s: ‖h·z − λ·z‖ = %.3g for λ_%d", name, res, q)
					}
				}
				var ztz mat.Dense
				ztz.Mul(z.T(), z)
				for i := 0; i < k; i++ {
					for j := 0; j < k; j++ {
						if want := map[bool]float64{true: 1, false: 0}[i == j]; math.Abs(ztz.At(i, j)-want) > 1e-12 {
							t.Errorf("%s: (zᵀz)[%d,%d] = %.3g", name, i, j, ztz.At(i, j))
						}
					}
				}
			}
			vals, z, ok := topEigen(append([]float64(nil), c.h...), m, c.r)
			if !ok {
				t.Fatal("topEigen failed")
			}
			check("inverse iteration", vals, z)

			// The fallback on the same input: swap in the QL vectors.
			h := append([]float64(nil), c.h...)
			v2, z2, ok := topEigenQL(h, m, c.r)
			if !ok {
				t.Fatal("QL fallback failed")
			}
			check("QL fallback", v2, z2)
		})
	}
}

// topEigenQL is topEigen with the QL fallback forced.
func topEigenQL(h []float64, m, r int) ([]float64, *mat.Dense, bool) {
	saved := forceQL
	forceQL = true
	defer func() { forceQL = saved }()
	return topEigen(h, m, r)
}

// TestTriLUSolve checks the pivoted tridiagonal factorization against a
// dense solve for shifts that force row swaps at every step and none.
func TestTriLUSolve(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 1))
	for _, m := range []int{1, 2, 3, 9} {
		for _, lambda := range []float64{0, 0.5, 100} {
			t.Run(fmt.Sprintf("m=%d/λ=%g", m, lambda), func(t *testing.T) {
				d, e := make([]float64, m), make([]float64, max(m-1, 0))
				dense := mat.NewDense(m, m, nil)
				for i := range d {
					d[i] = rng.NormFloat64()
					dense.Set(i, i, d[i]-lambda)
				}
				for i := range e {
					e[i] = 10 * rng.NormFloat64() // large: pivoting swaps rows
					dense.Set(i+1, i, e[i])
					dense.Set(i, i+1, e[i])
				}
				b := make([]float64, m)
				for i := range b {
					b[i] = rng.NormFloat64()
				}
				var want mat.VecDense
				if err := want.SolveVec(dense, mat.NewVecDense(m, append([]float64(nil), b...))); err != nil {
					t.Fatal(err)
				}
				var lu triLU
				lu.factor(d, e, lambda)
				lu.solve(b)
				for i := range b {
					if math.Abs(b[i]-want.AtVec(i)) > 1e-10*(1+math.Abs(want.AtVec(i))) {
						t.Fatalf("x[%d] = %.15g, want %.15g", i, b[i], want.AtVec(i))
					}
				}
			})
		}
	}
}

// TestTridiagonalize checks Qᵀ·h·Q = T and QᵀQ = I to 1e-13 (relative to
// ‖h‖ and m) for tridiagonalize's T and Q, Q formed by applyTridiagQ on
// the identity: random matrices of every size around the loop's edge
// cases, a matrix that is already tridiagonal (every reflector the
// identity), and one whose columns run out of subdiagonal entries midway
// (some reflectors the identity, others not).
func TestTridiagonalize(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	type tc struct {
		name string
		m    int
		h    []float64
	}
	var cases []tc
	for _, m := range []int{1, 2, 3, 4, 5, 17, 64} {
		h := make([]float64, m*m)
		for i := 0; i < m; i++ {
			for j := 0; j <= i; j++ {
				h[i*m+j] = rng.NormFloat64()
				h[j*m+i] = h[i*m+j]
			}
		}
		cases = append(cases, tc{fmt.Sprintf("random %d", m), m, h})
	}
	tri := make([]float64, 6*6)
	for i := 0; i < 6; i++ {
		tri[i*6+i] = float64(i)
		if i+1 < 6 {
			tri[i*6+i+1], tri[(i+1)*6+i] = 1, 1
		}
	}
	cases = append(cases, tc{"already tridiagonal", 6, tri})
	block := make([]float64, 8*8) // a 3×3 diagonal block, then a dense 5×5 one
	for i := 0; i < 8; i++ {
		for j := 0; j <= i; j++ {
			if (i < 3) == (j < 3) && (i >= 3 || i == j) {
				block[i*8+j] = rng.NormFloat64()
				block[j*8+i] = block[i*8+j]
			}
		}
	}
	cases = append(cases, tc{"split midway", 8, block})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.m
			work := append([]float64(nil), c.h...)
			d, e, tau := tridiagonalize(work, m)
			q := make([]float64, m*m)
			for i := 0; i < m; i++ {
				q[i*m+i] = 1
			}
			applyTridiagQ(work, m, tau, q, m)
			Q, H := mat.NewDense(m, m, q), mat.NewDense(m, m, c.h)
			var qtq, qthq mat.Dense
			qtq.Mul(Q.T(), Q)
			qthq.Mul(Q.T(), H)
			qthq.Mul(&qthq, Q)
			norm := math.Max(mat.Norm(H, 2), 1e-300)
			tol := 1e-13 * float64(m)
			for i := 0; i < m; i++ {
				for j := 0; j < m; j++ {
					want := 0.0
					switch {
					case i == j:
						want = d[i]
					case i == j+1:
						want = e[j]
					case j == i+1:
						want = e[i]
					}
					if got := qthq.At(i, j); math.Abs(got-want) > tol*norm {
						t.Errorf("(QᵀhQ)[%d,%d] = %.3g, T has %.3g", i, j, got, want)
					}
					id := map[bool]float64{true: 1, false: 0}[i == j]
					if math.Abs(qtq.At(i, j)-id) > tol {
						t.Errorf("(QᵀQ)[%d,%d] = %.3g", i, j, qtq.At(i, j))
					}
				}
			}
		})
	}
}
