package aggregate

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/lapack"
	lapackgonum "gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/mat"
)

// forceQL makes topEigen take its fallback path (tests check both on the
// same inputs).
var forceQL bool

// topEigen returns the k = min(r, m) largest eigenvalues of the symmetric
// m×m matrix h (row-major with stride m; its upper triangle is read, and h
// is overwritten), largest first, and orthonormal eigenvectors for them as
// the columns of an m×k matrix.
//
// The re-fits need r = 8 eigenpairs of matrices up to a few hundred square.
// A full eigendecomposition (gonum's Dsyev) rotates all m eigenvectors
// through every QL sweep, which made it a third of kron-exact's time. This
// is LAPACK's dsyevx route instead: Householder tridiagonalization T =
// Qᵀ·h·Q (Dsytrd, 4/3·m³ flops), all of T's eigenvalues without vectors
// (Dsterf, O(m²)), inverse iteration on T for the k wanted (O(m) per solve),
// and the k vectors carried back through Dsytrd's reflectors (2·m²·k). If
// inverse iteration does not converge (LAPACK's dstein reports the same),
// the k vectors come from the implicit QL method on T instead (Dsteqr).
func topEigen(h []float64, m, r int) (vals []float64, vecs *mat.Dense, ok bool) {
	k := min(r, m)
	if k <= 0 {
		return nil, mat.NewDense(max(m, 1), max(k, 1), nil), k == 0
	}
	var impl lapackgonum.Implementation
	d, e, tau := make([]float64, m), make([]float64, m-1), make([]float64, m-1)
	work := []float64{0}
	impl.Dsytrd(blas.Upper, m, h, m, d, e, tau, work, -1)
	work = make([]float64, int(work[0]))
	impl.Dsytrd(blas.Upper, m, h, m, d, e, tau, work, len(work))

	all := append([]float64(nil), d...)
	if !impl.Dsterf(m, all, append([]float64(nil), e...)) {
		return nil, nil, false
	}
	vals = make([]float64, k) // Dsterf sorts ascending
	for q := range vals {
		vals[q] = all[m-1-q]
	}
	y, converged := tridiagVectors(d, e, vals)
	if !converged || forceQL {
		if y, ok = tridiagVectorsQL(d, e, k); !ok {
			return nil, nil, false
		}
	}
	applyTridiagQ(h, m, tau, y, k)
	return vals, mat.NewDense(m, k, y), true
}

// tridiagVectors returns eigenvectors of the symmetric tridiagonal T
// (diagonal d, m; off-diagonal e, m−1) for its eigenvalues w (descending),
// as the columns of y (m × len(w), row-major), by inverse iteration as
// LAPACK's dstein does it: each shift is an eigenvalue (nudged apart from a
// neighbor closer than 10·ε·|λ|), the right side is scaled so that a
// converged solution has norm about 1, convergence is two more solves after
// the solution first reaches sqrt(0.1/m), and vectors whose eigenvalues lie
// within 1e-3·‖T‖₁ of each other (a cluster) are orthogonalized against the
// cluster's earlier vectors after every solve. Start vectors come from a
// fixed seed, so the result is deterministic. converged is false if some
// vector took more than five solves (or overflowed).
func tridiagVectors(d, e, w []float64) (y []float64, converged bool) {
	const maxSolves, extra = 5, 2
	eps := 0x1p-52
	m, k := len(d), len(w)
	var onenrm float64 // ‖T‖₁
	for i := range d {
		s := math.Abs(d[i])
		if i > 0 {
			s += math.Abs(e[i-1])
		}
		if i < m-1 {
			s += math.Abs(e[i])
		}
		onenrm = max(onenrm, s)
	}
	ortol, stpcrt := 1e-3*onenrm, math.Sqrt(0.1/float64(m))
	y = make([]float64, m*k)
	x := make([]float64, m)
	var lu triLU
	rng := rand.New(rand.NewPCG(1, 3))
	converged = true
	cluster := 0 // the current cluster's first vector
	prev := 0.0  // the previous shift
	for j, xj := range w {
		if j > 0 {
			if pertol := 10 * math.Abs(eps*xj); prev-xj < pertol {
				xj = prev - pertol
			}
			if prev-xj > ortol {
				cluster = j
			}
		}
		for i := range x {
			x[i] = 2*rng.Float64() - 1
		}
		lu.factor(d, e, xj)
		ok, checks := false, 0
		for solve := 0; solve < maxSolves && !ok; solve++ {
			var asum float64
			for _, v := range x {
				asum += math.Abs(v)
			}
			scl := float64(m) * onenrm * max(eps, math.Abs(lu.u0[m-1])) / asum
			for i := range x {
				x[i] *= scl
			}
			lu.solve(x)
			for c := cluster; c < j; c++ { // modified Gram–Schmidt within the cluster
				var dot float64
				for i, v := range x {
					dot += v * y[i*k+c]
				}
				for i := range x {
					x[i] -= dot * y[i*k+c]
				}
			}
			var big float64
			for _, v := range x {
				big = max(big, math.Abs(v))
			}
			if math.IsInf(big, 0) || math.IsNaN(big) {
				return y, false
			}
			if big >= stpcrt {
				checks++
				ok = checks > extra
			}
		}
		converged = converged && ok
		// Unit norm, largest component positive (dstein's sign convention).
		var nrm2, big float64
		at := 0
		for i, v := range x {
			nrm2 += v * v
			if math.Abs(v) > big {
				big, at = math.Abs(v), i
			}
		}
		s := 1 / math.Sqrt(nrm2)
		if x[at] < 0 {
			s = -s
		}
		for i, v := range x {
			y[i*k+j] = v * s
		}
		prev = xj
	}
	return y, converged
}

// triLU is T − λI (T symmetric tridiagonal, m×m) factored by Gaussian
// elimination with partial pivoting, LAPACK's dlagtf: P·(T − λI) = L·U,
// U upper triangular with diagonal u0, superdiagonals u1 and u2 (fill-in
// from row swaps), L unit lower bidiagonal with multipliers l, swap[i] set
// where rows i and i+1 were exchanged. tol is ε·max|U|: solve treats
// pivots smaller than it as ±tol (dlagts with job −1), which is what lets
// inverse iteration solve with an exactly singular T − λI.
type triLU struct {
	u0, u1, u2, l []float64
	swap          []bool
	tol           float64
}

func (f *triLU) factor(d, e []float64, lambda float64) {
	m := len(d)
	f.u0 = append(f.u0[:0], d...)
	for i := range f.u0 {
		f.u0[i] -= lambda
	}
	f.u1 = append(append(f.u1[:0], e...), 0) // row i's entry in column i+1
	f.u2, f.l, f.swap = make([]float64, m), make([]float64, m), make([]bool, m)
	for i := 0; i < m-1; i++ {
		// Rows i: (u0[i], u1[i], u2[i]) in columns i, i+1, i+2 and
		// i+1: (e[i], u0[i+1], u1[i+1]).
		sub := e[i]
		if math.Abs(f.u0[i]) >= math.Abs(sub) {
			if f.u0[i] != 0 {
				f.l[i] = sub / f.u0[i]
				f.u0[i+1] -= f.l[i] * f.u1[i]
				f.u1[i+1] -= f.l[i] * f.u2[i]
			}
			continue
		}
		f.swap[i] = true
		mult := f.u0[i] / sub
		r1, r2 := f.u1[i], f.u2[i] // row i, which moves down (its column-i entry is eliminated)
		f.u0[i], f.u1[i], f.u2[i] = sub, f.u0[i+1], f.u1[i+1]
		f.u0[i+1], f.u1[i+1] = r1-mult*f.u1[i], r2-mult*f.u2[i]
		f.l[i] = mult
	}
	var big float64
	for i := range f.u0 {
		big = max(big, math.Abs(f.u0[i]), math.Abs(f.u1[i]), math.Abs(f.u2[i]))
	}
	f.tol = 0x1p-52 * big
	if f.tol == 0 {
		f.tol = 0x1p-52
	}
}

// solve overwrites b with (T − λI)⁻¹·b (tiny pivots replaced by ±tol).
func (f *triLU) solve(b []float64) {
	m := len(b)
	for i := 0; i < m-1; i++ {
		if f.swap[i] {
			b[i], b[i+1] = b[i+1], b[i]
		}
		b[i+1] -= f.l[i] * b[i]
	}
	for i := m - 1; i >= 0; i-- {
		v := b[i]
		if i+1 < m {
			v -= f.u1[i] * b[i+1]
		}
		if i+2 < m {
			v -= f.u2[i] * b[i+2]
		}
		p := f.u0[i]
		if math.Abs(p) < f.tol {
			p = math.Copysign(f.tol, p)
		}
		b[i] = v / p
	}
}

// tridiagVectorsQL is tridiagVectors' fallback: all of T's eigenvectors by
// the implicit QL method (Dsteqr), the k of the largest eigenvalues kept.
func tridiagVectorsQL(d, e []float64, k int) (y []float64, ok bool) {
	m := len(d)
	dd, ee := append([]float64(nil), d...), append([]float64(nil), e...)
	z := make([]float64, m*m)
	var impl lapackgonum.Implementation
	if !impl.Dsteqr(lapack.EVTridiag, m, dd, ee, z, m, make([]float64, max(1, 2*m-2))) {
		return nil, false
	}
	y = make([]float64, m*k)
	for i := 0; i < m; i++ {
		for q := 0; q < k; q++ {
			y[i*k+q] = z[i*m+m-1-q]
		}
	}
	return y, true
}

// applyTridiagQ overwrites y (m×k, row-major) with Q·y, Q = H_{m−2}⋯H_1·H_0
// from Dsytrd(blas.Upper) on a (stride m): H_i = I − tau_i·v·vᵀ with v_i = 1,
// v[0:i] in column i+1 of a above the diagonal, and 0 below i. LAPACK's
// dormtr, written out because gonum has no Dormtr.
func applyTridiagQ(a []float64, m int, tau, y []float64, k int) {
	s := make([]float64, k)
	for i := 0; i < m-1; i++ { // H_0 first
		if tau[i] == 0 {
			continue
		}
		copy(s, y[i*k:(i+1)*k])
		for t := 0; t < i; t++ {
			v := a[t*m+i+1]
			for c, yv := range y[t*k : (t+1)*k] {
				s[c] += v * yv
			}
		}
		for c := range s {
			s[c] *= tau[i]
		}
		for c := range s {
			y[i*k+c] -= s[c]
		}
		for t := 0; t < i; t++ {
			v := a[t*m+i+1]
			row := y[t*k : (t+1)*k]
			for c := range row {
				row[c] -= s[c] * v
			}
		}
	}
}
