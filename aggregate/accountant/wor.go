package accountant

import "math"

// worExactMaxOrder is dp_accounting's max_alpha: up to this integer order the
// bound of Theorem 27 is evaluated with forward differences (O(α²) work);
// above it each term's minimum is replaced by its second argument, an upper
// bound that needs O(α).
const worExactMaxOrder = 256

// WithoutReplacementRDP returns the Rényi DP bound at order alpha of one step
// of the Gaussian mechanism applied to a subset of fixed size m drawn uniformly
// without replacement from n records, q = m/n, under replace-one adjacency (n
// is public). sigma is the noise standard deviation divided by the
// replace-one L2 sensitivity (for a sum of updates clipped to norm C that
// sensitivity is 2C; see the package documentation). It is Theorem 27 of Wang,
// Balle and Kasiviswanathan 2019 ("Subsampled Rényi Differential Privacy and
// Analytical Moments Accountant") for the Gaussian, whose RDP is
// ε(α) = α/(2σ²), the bound dp_accounting evaluates
// (_compute_rdp_sample_wor_gaussian_scalar, same formula and same branches):
// for integer α ≥ 2,
//
//	RDP(α) = 1/(α−1) · log(1 + q² C(α,2) min{4(e^{ε(2)} − 1), 2e^{ε(2)}}
//	                         + Σ_{j=3..α} q^j C(α,j) min{4·sqrt(Δ_{2⌊j/2⌋} Δ_{2⌈j/2⌉}), 2e^{(j−1)ε(j)}}),
//
// where Δ_k is the k-th forward difference at 0 of the sequence
// v_m = e^{(m−1)ε(m)} = e^{m(m−1)/(2σ²)}, m = 0, 1, 2, … (for α > 256 the
// minimum is replaced by its second argument, as in dp_accounting). A
// fractional α interpolates the cumulant (α−1)·RDP(α) linearly between ⌊α⌋
// and ⌈α⌉ (Corollary 10 of the same paper), with RDP(1) = 0.
//
// The forward differences Δ_k are dp_accounting's wherever those are
// numerically sound; for large σ, where its log-space differencing returns
// rounding noise (too large, so its bound is looser, e.g. 60× at σ = 100,
// q = 0.3, α = 256), they come from an exact integral (see worForwardDiffs),
// so the bound here is the theorem's, evaluated accurately.
//
// Special cases: q = 0 → 0; sigma = 0 → +Inf; q = 1 → α/(2σ²). Errors as
// for PoissonRDP.
func WithoutReplacementRDP(q, sigma, alpha float64) (float64, error) {
	if err := checkMechanism(q, sigma); err != nil {
		return 0, err
	}
	if err := checkOrder(alpha); err != nil {
		return 0, err
	}
	var diffs []float64
	if q > 0 && q < 1 && sigma > 0 {
		diffs = worForwardDiffs(sigma, worDiffOrder([]float64{alpha}))
	}
	return worRDP(q, sigma, alpha, diffs), nil
}

// worDiffOrder returns the n for which worForwardDiffs must be computed so
// that every order in orders can be evaluated (0 when none needs them).
func worDiffOrder(orders []float64) int {
	n := 0
	for _, a := range orders {
		c := int(math.Ceil(a))
		if c <= worExactMaxOrder && c > n {
			n = c
		}
	}
	return n
}

func worRDP(q, sigma, alpha float64, diffs []float64) float64 {
	switch {
	case q == 0:
		return 0
	case sigma == 0:
		return math.Inf(1)
	case q == 1:
		return alpha / (2 * sigma * sigma)
	}
	if alpha == math.Trunc(alpha) {
		return math.Max(0, worLogA(q, sigma, int(alpha), diffs)/(alpha-1))
	}
	lo, hi := math.Floor(alpha), math.Ceil(alpha)
	x := worLogA(q, sigma, int(lo), diffs)
	y := worLogA(q, sigma, int(hi), diffs)
	t := alpha - lo
	return math.Max(0, ((1-t)*x+t*y)/(alpha-1))
}

// worLogA returns (α−1)·RDP(α) of Theorem 27 for integer α ≥ 1 (0 for α = 1).
// diffs must come from worForwardDiffs(sigma, n) with n ≥ min(α, 256).
func worLogA(q, sigma float64, alpha int, diffs []float64) float64 {
	if alpha <= 1 {
		return 0
	}
	inv := 1 / (2 * sigma * sigma)
	cgf := func(x float64) float64 { return x * (x + 1) * inv } // (x)·ε(x+1)
	eps2 := 2 * inv                                             // ε(2)
	log2, log4 := math.Log(2), math.Log(4)
	lq := math.Log(q)
	logA := 0.0 // log 1
	for i := 2; i <= alpha; i++ {
		lc, _ := logComb(float64(alpha), i)
		var s float64
		switch {
		case i == 2:
			s = 2*lq + lc + math.Min(log4+logExpm1(eps2), eps2+log2)
		case alpha <= worExactMaxOrder:
			lo := diffs[2*(i/2)-1]
			hi := diffs[2*((i+1)/2)-1]
			s = math.Min(log4+0.5*(lo+hi), log2+cgf(float64(i-1)))
			s += float64(i)*lq + lc
		default:
			s = log2 + cgf(float64(i-1)) + float64(i)*lq + lc
		}
		logA = logAdd(logA, s)
	}
	return logA
}

// worForwardDiffs returns d with d[k−1] = log|Δ_k| for k = 1 … n+2, Δ_k the
// k-th forward difference at 0 of v_m = exp(m(m−1)/(2σ²)), m = 0, 1, …
//
// It first runs dp_accounting's algorithm (_get_forward_diffs /
// _stable_inplace_diff_in_log: repeated differencing in log space with signs),
// alongside the same recursion with additions, which yields
// U_k = Σ_m C(k,m) v_m, the scale of the rounding error (≈ k·2^-52·U_k). Where
// that error estimate exceeds 1e-10 of |Δ_k| — large σ, where the v_m are all
// close to 1 and the differences cancel to nothing, so that dp_accounting's
// values are rounding noise — the even-order differences (the only ones the
// bound uses) are recomputed by evenForwardDiffQuad from an integral with a
// positive integrand. The k-th value depends only on v_0 … v_k, so one call
// with the largest n serves every smaller order.
func worForwardDiffs(sigma float64, n int) []float64 {
	if n < 2 {
		n = 2
	}
	inv := 1 / (2 * sigma * sigma)
	vec := make([]float64, n+3) // log|value|; vec[0] = log v_0 = 0
	pos := make([]bool, n+3)    // sign (true: ≥ 0)
	sum := make([]float64, n+3) // log of the same recursion with + (U)
	for i := range pos {
		pos[i] = true
	}
	for i := 1; i < n+3; i++ {
		x := float64(i - 1)
		vec[i] = x * (x + 1) * inv
		sum[i] = vec[i]
	}
	diffs := make([]float64, n+2)
	for i := 0; i < n+2; i++ {
		for j := 0; j < n+2-i; j++ {
			if pos[j] == pos[j+1] {
				s, v := logSubSign(vec[j+1], vec[j])
				if !pos[j+1] {
					s = !s
				}
				vec[j], pos[j] = v, s
			} else {
				vec[j] = logAdd(vec[j], vec[j+1])
				pos[j] = pos[j+1]
			}
			sum[j] = logAdd(sum[j], sum[j+1])
		}
		diffs[i] = vec[0]
		k := i + 1
		if k%2 == 0 && k >= 4 {
			errScale := sum[0] + math.Log(float64(k+1)*0x1p-52) // log of the rounding error scale
			if errScale > diffs[i]+math.Log(1e-10) {
				diffs[i] = evenForwardDiffQuad(sigma, k)
			}
		}
	}
	return diffs
}

// evenForwardDiffQuad returns log Δ_k for even k ≥ 2 (v_m = e^{c·m(m−1)},
// c = 1/(2σ²)) from
//
//	Δ_k = e^{−c/4} · E_Z[ e^{−sZ/2} (e^{sZ} − 1)^k ],  Z ∼ N(0,1), s = 1/σ,
//
// which holds because v_m = e^{c(m−½)² − c/4} = e^{−c/4} E[e^{s(m−½)Z}] and the
// k-th difference of m ↦ e^{smZ} is (e^{sZ} − 1)^k. For even k the integrand
// is positive, so nothing cancels. The log-integrand
// g(z) = −z²/2 − sz/2 + k·log|e^{sz} − 1| is concave on each half-line, its second
// derivative ≤ −1, so it has one peak on each side and falls by at least d²/2 at a
// distance d from it; the trapezoid rule (step 0.1, analytic integrand) over
// [peak₋ − 12, peak₊ + 12] is accurate to rounding.
func evenForwardDiffQuad(sigma float64, k int) float64 {
	s := 1 / sigma
	c := 0.5 * s * s
	fk := float64(k)
	g := func(z float64) float64 {
		return -z*z/2 - s*z/2 + fk*math.Log(math.Abs(math.Expm1(s*z)))
	}
	// g'(z) on z > 0, and d/dy g(−y) on y > 0: both decrease from +∞ to −∞.
	zp := rootOfDecreasing(func(z float64) float64 { return -z - s/2 + fk*s/(-math.Expm1(-s*z)) })
	zn := -rootOfDecreasing(func(y float64) float64 { return -y + s/2 + fk*s/math.Expm1(s*y) })
	lo, hi := zn-12, zp+12
	n := int(math.Ceil((hi - lo) / 0.1))
	h := (hi - lo) / float64(n)
	peak := math.Max(g(zp), g(zn))
	total := 0.0
	for i := 0; i <= n; i++ {
		z := lo + float64(i)*h
		if z == 0 {
			continue // the integrand vanishes there
		}
		w := 1.0
		if i == 0 || i == n {
			w = 0.5
		}
		total += w * math.Exp(g(z)-peak)
	}
	return peak + math.Log(total*h) - 0.5*math.Log(2*math.Pi) - c/4
}

// rootOfDecreasing returns the root in (0, ∞) of f, decreasing from +∞ at 0+
// to −∞, to 1e-9 relative.
func rootOfDecreasing(f func(float64) float64) float64 {
	lo, hi := 0.0, 1.0
	for f(hi) > 0 {
		lo, hi = hi, 2*hi
	}
	for hi-lo > 1e-9*hi {
		mid := 0.5 * (lo + hi)
		if f(mid) > 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return 0.5 * (lo + hi)
}
