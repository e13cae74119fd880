package model

import (
	"math"
	"testing"
)

func TestErf32(t *testing.T) {
	worstErf, worstGrad := 0.0, 0.0
	for i := -80000; i <= 80000; i++ {
		x := float64(float32(float64(i) / 10000)) // −8 … 8
		e, g := erf32Grad(float32(x))
		if e != erf32(float32(x)) {
			t.Fatalf("erf32Grad and erf32 disagree at %v", x)
		}
		worstErf = math.Max(worstErf, math.Abs(float64(e)-math.Erf(x)))
		want := 2 / math.Sqrt(math.Pi) * math.Exp(-x*x)
		worstGrad = math.Max(worstGrad, math.Abs(float64(g)-want))
	}
	if worstErf > 5e-7 || worstGrad > 5e-6 {
		t.Fatalf("largest |erf32 − erf| = %.3g, |erf32' − erf'| = %.3g", worstErf, worstGrad)
	}
}
