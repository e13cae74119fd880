//go:build amd64 && !purego

package compute

// expNegAVX does ExpNeg's main branch on n/4 groups of four elements and
// returns how many elements lay outside ±expNegLimit (or were NaN): those
// need expNegFix.
//
//go:noescape
func expNegAVX(dst, x *float32, n int) int

// expNeg64AVX is expNegAVX with the float64 results unrounded (tests).
//
//go:noescape
func expNeg64AVX(dst *float64, x *float32, n int)

func expNeg(dst, x []float32) {
	if !useAsm || len(x) < 4 {
		expNegGo(dst, x)
		return
	}
	n := len(x) &^ 3
	if expNegAVX(&dst[0], &x[0], n) > 0 {
		expNegFix(dst[:n], x[:n])
	}
	expNegGo(dst[n:], x[n:])
}
