package model

// The erf coefficients of a rational minimax approximation on [−4, 4]
// (beyond, erf is ±1 in float32), as Eigen and XLA evaluate float32 erf:
// erf(x) ≈ x·P(x²)/Q(x²).
const (
	erfP13, erfP11, erfP9 = -2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06
	erfP7, erfP5, erfP3   = -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03
	erfP1                 = -1.60960333262415e-02
	erfQ8, erfQ6, erfQ4   = -1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03
	erfQ2, erfQ0          = -7.37332916720468e-03, -1.42647390514189e-02
)

// erf32 is a float32 erf within 5e-7 of math.Erf (a few ulps near ±1). It
// costs a dozen multiply-adds and one division; math.Erf's float64
// evaluation dominated the GELU layers' profile.
func erf32(x float32) float32 {
	x = max(-4, min(4, x))
	x2 := x * x
	p := ((((((erfP13*x2+erfP11)*x2+erfP9)*x2+erfP7)*x2+erfP5)*x2+erfP3)*x2 + erfP1) * x
	q := (((erfQ8*x2+erfQ6)*x2+erfQ4)*x2+erfQ2)*x2 + erfQ0
	return p / q
}

// erf32Grad returns erf32(x) and its derivative, the derivative of the very
// approximation the forward pass uses (so gradients match finite differences
// of the forward), without the exp of the textbook 2/√π·e^(−x²) (they agree
// to 4e-6). Outside [−4, 4] the clamped approximation is flat: derivative 0,
// where the true one is below 2e-7.
func erf32Grad(x float32) (erf, grad float32) {
	inside := x > -4 && x < 4
	x = max(-4, min(4, x))
	x2 := x * x
	// p = x·P(x²), q = Q(x²); p' = P + 2x²·P'(x²), q' = 2x·Q'(x²).
	P := (((((erfP13*x2+erfP11)*x2+erfP9)*x2+erfP7)*x2+erfP5)*x2+erfP3)*x2 + erfP1
	dP := ((((6*erfP13*x2+5*erfP11)*x2+4*erfP9)*x2+3*erfP7)*x2+2*erfP5)*x2 + erfP3
	Q := (((erfQ8*x2+erfQ6)*x2+erfQ4)*x2+erfQ2)*x2 + erfQ0
	dQ := ((4*erfQ8*x2+3*erfQ6)*x2+2*erfQ4)*x2 + erfQ2
	p, q := x*P, Q
	erf = p / q
	if !inside {
		return erf, 0
	}
	dp := P + 2*x2*dP
	dq := 2 * x * dQ
	return erf, (dp*q - p*dq) / (q * q)
}
