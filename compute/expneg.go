package compute

import "math"

// ExpNeg sets dst[i] = float32(math.Exp(float64(-x[i]))) over len(x)
// (len(dst) ≥ len(x)), bit for bit: the built-in decoder's SwiGLU needs
// σ(g) = 1/(1 + e^−g) for every feed-forward unit, forward and backward,
// and its scalar math.Exp calls were half of the README's simulation. On
// AVX2+FMA machines, where Go's math.Exp takes its FMA branch (Shibata's
// method: a Taylor polynomial of x/16 squared back four times), the vector
// path runs that branch's operations, in its order, on four lanes at once;
// lanes whose argument is beyond ±708 (math.Exp's overflow, denormal and
// non-finite branches) or NaN are recomputed by math.Exp itself.
func ExpNeg(dst, x []float32) {
	expNeg(dst[:len(x)], x)
}

// expNegLimit bounds the arguments the vector path takes: |x|·log2(e)
// rounds to at most 1022, so 2^k is a normal float64 and math.Exp's main
// branch applies.
const expNegLimit = 708

func expNegGo(dst, x []float32) {
	for i, v := range x {
		dst[i] = float32(math.Exp(float64(-v)))
	}
}

// expNegFix recomputes by math.Exp the elements the vector path may not
// have taken exactly.
func expNegFix(dst, x []float32) {
	for i, v := range x {
		if !(v >= -expNegLimit && v <= expNegLimit) {
			dst[i] = float32(math.Exp(float64(-v)))
		}
	}
}
