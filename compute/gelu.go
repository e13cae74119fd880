package compute

import "math"

// The exact (erf) GELU of BERT, with its derivative, for the model's FFN
// layers:
//
//	out  = x·Φ(x),   Φ(x) = (1 + erf(x/√2))/2
//	grad = GELU'(x) = Φ(x) + x·φ(x),  φ = Φ'
//
// erf is the float32 rational minimax approximation Eigen and XLA use,
// erf(z) ≈ z·P(z²)/Q(z²) on [−4, 4] (±1 beyond), within 5e-7 of the true
// erf; grad is the exact derivative of that approximation, so gradients agree
// with finite differences of the forward. The amd64 path evaluates eight
// lanes at once with AVX2/FMA; geluGo is the portable version and the
// reference it is tested against.

const (
	erfP13, erfP11, erfP9 = -2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06
	erfP7, erfP5, erfP3   = -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03
	erfP1                 = -1.60960333262415e-02
	erfQ8, erfQ6, erfQ4   = -1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03
	erfQ2, erfQ0          = -7.37332916720468e-03, -1.42647390514189e-02
)

// Erf32 is the float32 erf approximation above.
func Erf32(x float32) float32 {
	x = max(-4, min(4, x))
	x2 := x * x
	p := ((((((erfP13*x2+erfP11)*x2+erfP9)*x2+erfP7)*x2+erfP5)*x2+erfP3)*x2 + erfP1) * x
	q := (((erfQ8*x2+erfQ6)*x2+erfQ4)*x2+erfQ2)*x2 + erfQ0
	return p / q
}

// Erf32Grad returns Erf32(x) and its derivative (0 outside (−4, 4), where
// the clamped approximation is flat and the true derivative is below 2e-7).
func Erf32Grad(x float32) (erf, grad float32) {
	inside := x > -4 && x < 4
	x = max(-4, min(4, x))
	x2 := x * x
	// p = x·P(x²), q = Q(x²); p' = P + 2x²·P'(x²), q' = 2x·Q'(x²).
	P := (((((erfP13*x2+erfP11)*x2+erfP9)*x2+erfP7)*x2+erfP5)*x2+erfP3)*x2 + erfP1
	dP := ((((6*erfP13*x2+5*erfP11)*x2+4*erfP9)*x2+3*erfP7)*x2+2*erfP5)*x2 + erfP3
	Q := (((erfQ8*x2+erfQ6)*x2+erfQ4)*x2+erfQ2)*x2 + erfQ0
	dQ := ((4*erfQ8*x2+3*erfQ6)*x2+2*erfQ4)*x2 + erfQ2
	p := x * P
	erf = p / Q
	if !inside {
		return erf, 0
	}
	dp := P + 2*x2*dP
	dq := 2 * x * dQ
	return erf, (dp*Q - p*dq) / (Q * Q)
}

// GELU sets out[i] = GELU(x[i]) and, when grad is non-nil, grad[i] =
// GELU'(x[i]). The slices have equal length; the work is spread over the
// worker pool.
func GELU(out, grad, x []float32) {
	out = out[:len(x)]
	if grad != nil {
		grad = grad[:len(x)]
	}
	ParallelRange(len(x), 1<<14, func(lo, hi int) {
		var g []float32
		if grad != nil {
			g = grad[lo:hi]
		}
		gelu(out[lo:hi], g, x[lo:hi])
	})
}

// geluGo is the portable GELU (grad may be nil).
func geluGo(out, grad, x []float32) {
	for i, v := range x {
		if grad == nil {
			out[i] = 0.5 * v * (1 + Erf32(v*(1/math.Sqrt2)))
			continue
		}
		e, de := Erf32Grad(v * (1 / math.Sqrt2))
		cdf := 0.5 * (1 + e)
		out[i] = v * cdf
		grad[i] = cdf + v*de*(0.5/math.Sqrt2)
	}
}
