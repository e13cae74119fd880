package aggregate

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/lapack"
	lapackgonum "gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/mat"

	"github.com/kronfed/kronfed/compute"
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
// Qᵀ·h·Q (tridiagonalize), all of T's eigenvalues without vectors
// (Dsterf, O(m²)), inverse iteration on T for the k wanted (O(m) per solve),
// and the k vectors carried back through its reflectors (2·m²·k). If
// inverse iteration does not converge (LAPACK's dstein reports the same),
// the k vectors come from the implicit QL method on T instead (Dsteqr).
func topEigen(h []float64, m, r int) (vals []float64, vecs *mat.Dense, ok bool) {
	k := min(r, m)
	if k <= 0 {
		return nil, nil, false // nothing to return (r or m below 1)
	}
	for i := 0; i < m; i++ { // the lower triangle from the upper
		for j := 0; j < i; j++ {
			h[i*m+j] = h[j*m+i]
		}
	}
	var impl lapackgonum.Implementation
	d, e, tau := tridiagonalize(h, m)
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

// tridiagonalize reduces the symmetric m×m matrix h (row-major, stride m,
// both triangles) to tridiagonal form T = Qᵀ·h·Q by Householder
// reflections, as LAPACK's dsytd2 does, and returns T's diagonal d (m) and
// off-diagonal e (m−1) and the reflectors' scales tau. Q = H_0·H_1⋯H_{m−3},
// H_k = I − tau_k·v_k·v_kᵀ with v_k zero before index k+1 and v_k[k+1] = 1;
// v_k is left in row k of h from column k+1 (the 1 included).
//
// gonum's Dsytrd spends most of its time in a Level-2 symmetric
// matrix–vector product that reads one triangle with strided access (a
// third of lora-exact's time at 100 clients). Here both triangles are kept,
// so every access is along a row, and step k's rank-2 update A −= v·wᵀ +
// w·vᵀ of the trailing matrix and step k+1's product p = tau·A·v take one
// pass over it (compute.SymRank2Dot): row k+1 is updated first, which gives
// the next reflector, and every later row is updated and multiplied by it
// while in cache. That is 3·m³ flops for dsytd2's 4/3·m³, at the speed of
// one read and one write of each trailing row per step.
func tridiagonalize(h []float64, m int) (d, e, tau []float64) {
	d, e, tau = make([]float64, m), make([]float64, max(m-1, 0)), make([]float64, max(m-1, 0))
	row := func(i, from int) []float64 { return h[i*m+from : (i+1)*m] }
	p, w := make([]float64, m), make([]float64, m) // indexed by row of h
	// reflect turns row k's x = h[k, k+1:] into v_k (in place) and sets
	// e[k] and tau[k] (dlarfg: H·x = beta·e_1, beta = −sign(x_0)·‖x‖).
	reflect := func(k int) {
		x := row(k, k+1)
		alpha := x[0]
		xnorm := math.Sqrt(compute.Dot64(x[1:], x[1:]))
		e[k] = alpha
		if xnorm != 0 {
			beta := -math.Copysign(math.Hypot(alpha, xnorm), alpha)
			tau[k] = (beta - alpha) / beta
			sc := 1 / (alpha - beta)
			for j := 1; j < len(x); j++ {
				x[j] *= sc
			}
			e[k] = beta
		}
		x[0] = 1
	}
	if m >= 3 {
		reflect(0)
		if tau[0] != 0 {
			for i := 1; i < m; i++ {
				p[i] = tau[0] * compute.Dot64(row(i, 1), row(0, 1))
			}
		}
	}
	for k := 0; k+2 < m; k++ {
		d[k] = h[k*m+k]
		v := row(k, k+1) // v_k over rows/columns k+1 … m−1
		if tau[k] != 0 {
			// w = p − (tau/2)·(pᵀv)·v, then row k+1 of A −= v·wᵀ + w·vᵀ.
			half := tau[k] / 2 * compute.Dot64(p[k+1:], v)
			for i := k + 1; i < m; i++ {
				w[i] = p[i] - half*v[i-k-1]
			}
			compute.SymRank2Dot(row(k+1, k+1), v, w[k+1:], v, v[0], w[k+1])
		}
		next := k+3 < m // a reflector for step k+1
		if next {
			reflect(k + 1)
		}
		u := row(k+1, k+2) // v_{k+1}
		for i := k + 2; i < m; i++ {
			// Column k+1 of the rows below k+1 is never read again (row
			// k+1 carries it), so the update starts at column k+2.
			switch {
			case tau[k] != 0 && next && tau[k+1] != 0:
				p[i] = tau[k+1] * compute.SymRank2Dot(row(i, k+2), v[1:], w[k+2:], u, v[i-k-1], w[i])
			case tau[k] != 0:
				compute.SymRank2Dot(row(i, k+2), v[1:], w[k+2:], v[1:], v[i-k-1], w[i])
			case next && tau[k+1] != 0:
				p[i] = tau[k+1] * compute.Dot64(row(i, k+2), u)
			}
		}
	}
	if m >= 2 {
		d[m-2], e[m-2] = h[(m-2)*m+m-2], h[(m-2)*m+m-1]
	}
	if m >= 1 {
		d[m-1] = h[m*m-1]
	}
	return d, e, tau
}

// applyTridiagQ overwrites y (m×k, row-major) with Q·y for tridiagonalize's
// Q = H_0⋯H_{m−3}: the reflectors applied last first, each as y −=
// tau·v·(vᵀ·y) along rows of y (LAPACK's dormtr).
func applyTridiagQ(h []float64, m int, tau, y []float64, k int) {
	s := make([]float64, k)
	for r := m - 3; r >= 0; r-- {
		if tau[r] == 0 {
			continue
		}
		v := h[r*m+r+1 : (r+1)*m] // over rows r+1 … m−1 of y
		clear(s)
		for t, vt := range v {
			for c, yv := range y[(r+1+t)*k : (r+2+t)*k] {
				s[c] += vt * yv
			}
		}
		for c := range s {
			s[c] *= tau[r]
		}
		for t, vt := range v {
			yr := y[(r+1+t)*k : (r+2+t)*k]
			for c := range yr {
				yr[c] -= s[c] * vt
			}
		}
	}
}
