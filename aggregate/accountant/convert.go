package accountant

import (
	"fmt"
	"math"
)

// EpsilonFromRDP converts an RDP curve (rdp[i] at orders[i]) into the smallest
// ε for which it implies (ε, δ)-DP, and the order that attains it. For each
// order α > 1 it takes the smaller of
//
//	ε_α = rdp − (log δ + log α)/(α − 1) + log((α − 1)/α)    (Balle et al. 2020,
//	      "Hypothesis testing interpretations and Rényi DP", Prop. 12 — dp_accounting's compute_epsilon)
//	ε_α = rdp + log(1/δ)/(α − 1)                              (Mironov 2017, Prop. 3, the classic bound)
//
// (the first is always the smaller for α > 1; dp_accounting uses only it and
// only for α > 1.01, where it is numerically stable, and so do we, falling back
// to the classic bound on (1, 1.01]). An order whose RDP satisfies
// δ² ≥ 1 − e^{−rdp} gives ε = 0 (total variation bound via the KL divergence,
// as dp_accounting does). The result is min over orders, clamped at 0.
//
// orders must be ≥ 1 (order 1 contributes only through the KL bound) and rdp
// ≥ 0 (+Inf allowed: that order is unusable); delta must be in (0, 1). If every
// order is +Inf the result is +Inf with orders[0].
func EpsilonFromRDP(orders, rdp []float64, delta float64) (eps, order float64, err error) {
	if err := checkCurve(orders, rdp); err != nil {
		return 0, 0, err
	}
	if err := checkDelta(delta); err != nil {
		return 0, 0, err
	}
	best, bestOrder := math.Inf(1), orders[0]
	for i, a := range orders {
		if e := epsilonAtOrder(rdp[i], a, delta); e < best {
			best, bestOrder = e, a
		}
	}
	return math.Max(0, best), bestOrder, nil
}

// epsilonAtOrder is the ε that RDP r at order a implies at delta (see
// EpsilonFromRDP; not clamped at 0).
func epsilonAtOrder(r, a, delta float64) float64 {
	logDelta := math.Log(delta)
	switch {
	case math.IsInf(r, 1) || math.IsNaN(r):
		return math.Inf(1)
	case delta*delta+math.Expm1(-r) > 0:
		return 0
	case a > 1.01:
		improved := r - (logDelta+math.Log(a))/(a-1) + math.Log1p(-1/a)
		classic := r - logDelta/(a-1)
		return math.Min(improved, classic)
	case a > 1:
		return r - logDelta/(a-1)
	}
	return math.Inf(1)
}

// DeltaFromRDP converts an RDP curve into the smallest δ for which it implies
// (eps, δ)-DP, and the order that attains it (dp_accounting's compute_delta):
// per order,
//
//	log δ_α = min{ ½·log(1 − e^{−rdp}),  (α − 1)(rdp − ε + log(1 − 1/α)) − log α }
//
// (the second term for α > 1.01; the classic (α − 1)(rdp − ε) on (1, 1.01]),
// minimized over orders and capped at 1. eps must be ≥ 0 (+Inf gives 0).
func DeltaFromRDP(orders, rdp []float64, eps float64) (delta, order float64, err error) {
	if err := checkCurve(orders, rdp); err != nil {
		return 0, 0, err
	}
	if !(eps >= 0) {
		return 0, 0, fmt.Errorf("accountant: epsilon %v must be ≥ 0", eps)
	}
	best, bestOrder := math.Inf(1), orders[0]
	for i, a := range orders {
		if ld := logDeltaAtOrder(rdp[i], a, eps); ld < best {
			best, bestOrder = ld, a
		}
	}
	return math.Min(math.Exp(best), 1), bestOrder, nil
}

// logDeltaAtOrder is log δ that RDP r at order a implies at eps (see
// DeltaFromRDP; not capped at 0).
func logDeltaAtOrder(r, a, eps float64) float64 {
	var ld float64
	if r == 0 {
		ld = math.Inf(-1)
	} else {
		ld = 0.5 * math.Log1p(-math.Exp(-r))
	}
	switch {
	case a > 1.01:
		ld = math.Min(ld, (a-1)*(r-eps+math.Log1p(-1/a))-math.Log(a))
	case a > 1:
		ld = math.Min(ld, (a-1)*(r-eps))
	}
	if math.IsNaN(ld) { // +Inf RDP with +Inf eps: no information
		ld = 0
	}
	return ld
}

func checkCurve(orders, rdp []float64) error {
	if len(orders) == 0 {
		return fmt.Errorf("accountant: no Rényi orders")
	}
	if len(orders) != len(rdp) {
		return fmt.Errorf("accountant: %d orders but %d RDP values", len(orders), len(rdp))
	}
	for i, a := range orders {
		if !(a >= 1) || math.IsInf(a, 1) {
			return fmt.Errorf("accountant: order %d is %v, must be finite and ≥ 1", i, a)
		}
		if !(rdp[i] >= 0) {
			return fmt.Errorf("accountant: RDP at order %v is %v, must be ≥ 0", a, rdp[i])
		}
	}
	return nil
}

func checkDelta(delta float64) error {
	if !(delta > 0 && delta < 1) {
		return fmt.Errorf("accountant: delta %v is outside (0, 1)", delta)
	}
	return nil
}
