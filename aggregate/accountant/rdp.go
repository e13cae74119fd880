package accountant

import (
	"fmt"
	"math"
)

// MaxOrder is the largest Rényi order accepted. The integer-order sums cost
// O(α) terms (O(α²) for fixed-size sampling up to order 256), so orders are
// kept to a range where that stays cheap; useful orders for DP-FedAvg lie far
// below it.
const MaxOrder = 100000

// maxFracSteps bounds the two series of the fractional-order formula, as
// dp_accounting's _MAX_STEPS_LOG_A_FRAC does. A series not converged by then
// is bounded from above through its alternating tail; if even that is not
// possible the order gets RDP +Inf (left out of the conversion, never
// underestimated).
const maxFracSteps = 1000

// PoissonRDP returns the Rényi differential privacy, at order alpha, of one
// step of the Poisson-subsampled Gaussian mechanism: every record (here: every
// client) is included independently with probability q, and Gaussian noise of
// standard deviation sigma·Δ is added to the sum of the included
// contributions, Δ being the L2 sensitivity under add/remove-one adjacency
// (the clipping norm C). Following Mironov, Talwar and Zhang 2019 ("Rényi
// Differential Privacy of the Sampled Gaussian Mechanism"),
//
//	RDP(α) = log(A_α) / (α − 1),
//	A_α    = E_{z∼μ0} [ ((1 − q) + q·μ1(z)/μ0(z))^α ],  μ0 = N(0, σ²), μ1 = N(1, σ²).
//
// Integer α uses the exact binomial expansion (all terms positive, in log space)
//
//	A_α − 1 = Σ_{i=2..α} C(α,i) q^i (1−q)^(α−i) (exp((i² − i)/(2σ²)) − 1);
//
// fractional α uses the two series of Section 3.3 of that paper, split at
// z0 = σ² log(1/q − 1) + 1/2 (dp_accounting's _compute_log_a_frac), with the
// signs of the generalized binomial coefficients kept: the value is the exact
// A_α up to truncation (as in the paper and tensorflow_privacy's
// rdp_accountant), not the upper bound dp_accounting ≥ 0.4 obtains by summing
// |C(α,i)| (3% higher at α = 1.5, q = 0.01, σ = 2.5). Where that series
// converges too slowly (α near 1), an alternating-series bound keeps the
// result an upper bound; see logAFrac.
//
// Special cases: q = 0 → 0; sigma = 0 → +Inf; q = 1 → α/(2σ²) (the plain
// Gaussian mechanism). Errors: q outside [0, 1], sigma negative or NaN, alpha
// not in (1, MaxOrder]. T independent steps compose to T·RDP(α).
func PoissonRDP(q, sigma, alpha float64) (float64, error) {
	if err := checkMechanism(q, sigma); err != nil {
		return 0, err
	}
	if err := checkOrder(alpha); err != nil {
		return 0, err
	}
	return poissonRDP(q, sigma, alpha), nil
}

func checkMechanism(q, sigma float64) error {
	if !(q >= 0 && q <= 1) {
		return fmt.Errorf("accountant: sampling rate q = %v is outside [0, 1]", q)
	}
	if !(sigma >= 0) || math.IsInf(sigma, 1) {
		return fmt.Errorf("accountant: noise multiplier %v must be finite and ≥ 0", sigma)
	}
	return nil
}

func checkOrder(alpha float64) error {
	if !(alpha > 1 && alpha <= MaxOrder) {
		return fmt.Errorf("accountant: Rényi order %v is outside (1, %d]", alpha, MaxOrder)
	}
	return nil
}

func poissonRDP(q, sigma, alpha float64) float64 {
	switch {
	case q == 0:
		return 0
	case sigma == 0:
		return math.Inf(1)
	case q == 1:
		return alpha / (2 * sigma * sigma)
	}
	var logA float64
	if alpha == math.Trunc(alpha) {
		logA = logAInt(q, sigma, int(alpha))
	} else {
		logA = logAFrac(q, sigma, alpha)
	}
	return math.Max(0, logA/(alpha-1))
}

// logAInt returns log(A_α) for integer α ≥ 2 and 0 < q < 1 from the exact
// binomial expansion of A_α − 1 (every term is non-negative, so nothing
// cancels and small values keep their relative precision).
func logAInt(q, sigma float64, alpha int) float64 {
	lq, l1q := math.Log(q), math.Log1p(-q)
	inv := 1 / (2 * sigma * sigma)
	logAm1 := math.Inf(-1)
	for i := 2; i <= alpha; i++ {
		lc, _ := logComb(float64(alpha), i)
		fi := float64(i)
		s := lc + fi*lq + float64(alpha-i)*l1q + logExpm1((fi*fi-fi)*inv)
		logAm1 = logAdd(logAm1, s)
	}
	return logAdd(0, logAm1)
}

// logAFrac returns log(A_α) for any real α > 1 and 0 < q < 1 by the two-series
// formula of Mironov, Talwar and Zhang 2019 (Sec. 3.3):
//
//	A_α = Σ_{i≥0} C(α,i) [ q^i (1−q)^(α−i) e^{(i²−i)/(2σ²)} · ½erfc((i − z0)/(√2σ))
//	                     + q^(α−i) (1−q)^i e^{(j²−j)/(2σ²)} · ½erfc((z0 − j)/(√2σ)) ],  j = α − i,
//
// summed in log space with the signs of C(α,i) kept. It stops when both term
// magnitudes decrease and fall below e^-30 of A_α and of log A_α (the second
// condition keeps the relative precision of small RDP values). As A_α is the
// sum of two parts near 1, log A_α is resolved only to ~1e-16 absolutely
// (integer orders, summing A_α − 1 directly, keep full relative precision).
//
// Near α = 1 the terms can decay only polynomially in i (like i^-(α+2) when
// q·μ1 and (1−q)·μ0 balance at z0), too slowly for maxFracSteps terms;
// dp_accounting then gives up and returns +Inf. For i > α the coefficients
// C(α,i) alternate in sign, so once the terms decrease the sum lies between
// consecutive partial sums: we return the larger of the last two, an upper
// bound whose excess is at most the last term (≈ e^-28 for α = 1.25, q = 0.1,
// σ = 1). Only if the terms still grow after maxFracSteps is the result +Inf.
func logAFrac(q, sigma, alpha float64) float64 {
	return logAFracSeries(q, sigma, alpha, true)
}

// logAFracSeries is logAFrac; with signed false it sums |C(α,i)| instead and
// stops as dp_accounting ≥ 0.4 does (terms decreasing and below e^-30 of the
// total): an upper bound on A_α. Only tests use signed = false, to show where
// dp_accounting's published values come from.
func logAFracSeries(q, sigma, alpha float64, signed bool) float64 {
	lq, l1q := math.Log(q), math.Log1p(-q)
	z0 := sigma*sigma*(l1q-lq) + 0.5
	s2 := math.Sqrt2 * sigma
	inv := 1 / (2 * sigma * sigma)
	lhalf := math.Log(0.5)
	pos, neg := math.Inf(-1), math.Inf(-1) // log of the sums of positive and negative terms
	last0, last1 := math.Inf(-1), math.Inf(-1)
	lastTerm, lastNegative := math.Inf(-1), false
	decreasing := false
	lc, sign := 0.0, 1.0 // log|C(α,i)| and its sign, by C(α,i+1) = C(α,i)·(α−i)/(i+1)
	for i := 0; i < maxFracSteps; i++ {
		fi := float64(i)
		if i > 0 {
			f := alpha - fi + 1
			if f < 0 {
				sign = -sign
			}
			lc += math.Log(math.Abs(f)) - math.Log(fi)
		}
		j := alpha - fi
		ls0 := lc + fi*lq + j*l1q + (fi*fi-fi)*inv + lhalf + logErfc((fi-z0)/s2)
		ls1 := lc + j*lq + fi*l1q + (j*j-j)*inv + lhalf + logErfc((z0-j)/s2)
		term := logAdd(ls0, ls1)
		lastNegative = signed && sign < 0
		if lastNegative {
			neg = logAdd(neg, term)
		} else {
			pos = logAdd(pos, term)
		}
		lastTerm = term
		total := math.Inf(-1) // log(pos − neg), −Inf while not positive
		if ok, t := logSubSign(pos, neg); ok {
			total = t
		}
		big := math.Max(ls0, ls1)
		if signed {
			// A term far below e^-1000 of A_α counts as decreasing: at large σ
			// one series sits near −1e14 in log, where rounding hides its
			// slow decrease.
			decreasing = (ls0 < last0 || ls0 < total-1000) && (ls1 < last1 || ls1 < total-1000)
			// Relative to log A_α as well, down to the ~2^-40 below which
			// A0 + A1 ≈ 1 cannot resolve log A_α anyway.
			if decreasing && big < total-30 && big < math.Log(math.Max(total, 0x1p-40))-30 {
				return total
			}
		} else if ls0 < last0 && ls1 < last1 && big < total-30 {
			return total // dp_accounting's criterion
		}
		last0, last1 = ls0, ls1
	}
	if !signed || !decreasing || float64(maxFracSteps-1) <= alpha+1 {
		return math.Inf(1)
	}
	// Alternating tail: A_α ≤ max(S_n, S_{n−1}); S_{n−1} = S_n + |t_n| when t_n < 0.
	if lastNegative {
		pos = logAdd(pos, lastTerm)
	}
	ok, t := logSubSign(pos, neg)
	if !ok {
		return math.Inf(1)
	}
	return t
}
