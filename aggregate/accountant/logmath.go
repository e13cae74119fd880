package accountant

import "math"

// logAdd returns log(e^a + e^b) without overflow.
func logAdd(a, b float64) float64 {
	if a < b {
		a, b = b, a
	}
	if math.IsInf(b, -1) {
		return a
	}
	return a + math.Log1p(math.Exp(b-a))
}

// logSubSign returns the sign (true for ≥ 0) and log|e^a − e^b|.
func logSubSign(a, b float64) (bool, float64) {
	switch {
	case a > b:
		return true, a + math.Log1p(-math.Exp(b-a))
	case a < b:
		return false, b + math.Log1p(-math.Exp(a-b))
	default:
		return true, math.Inf(-1)
	}
}

// logExpm1 returns log(e^x − 1) for x > 0, accurately for small and large x.
func logExpm1(x float64) float64 {
	if x > 1 {
		return x + math.Log1p(-math.Exp(-x))
	}
	return math.Log(math.Expm1(x))
}

// logComb returns log|C(n, k)| and the sign of C(n, k) for real n ≥ 0 and
// integer k ≥ 0, via log-gamma. For integer n and k > n it returns −Inf (the
// coefficient is zero).
func logComb(n float64, k int) (float64, float64) {
	kf := float64(k)
	ln1, _ := math.Lgamma(n + 1)
	lk1, _ := math.Lgamma(kf + 1)
	r := n - kf + 1
	if r <= 0 && r == math.Trunc(r) {
		return math.Inf(-1), 1 // pole of Γ(n−k+1): the coefficient is zero
	}
	lr, sr := math.Lgamma(r)
	return ln1 - lk1 - lr, float64(sr)
}

// logErfc returns log(erfc(x)), accurate also where erfc(x) underflows.
// It plays the role of dp_accounting's _log_erfc (log 2 + log_ndtr(−x√2)).
func logErfc(x float64) float64 {
	if x < 25 {
		return math.Log(math.Erfc(x))
	}
	// Asymptotic expansion, erfc(x) = e^{−x²}/(x√π) Σ (−1)^n (2n−1)!!/(2x²)^n;
	// at x ≥ 25 the terms fall below 1e-20 within a dozen steps.
	inv := 1 / (2 * x * x)
	sum, term := 1.0, 1.0
	for n := 1; n < 30; n++ {
		term *= -float64(2*n-1) * inv
		sum += term
		if math.Abs(term) < 1e-20 {
			break
		}
	}
	return -x*x - math.Log(x) - 0.5*math.Log(math.Pi) + math.Log(sum)
}
