//go:build amd64 && !purego

package compute

// expShiftAVX2 does ExpShift on n ≥ 1 elements at x: n/8 full steps, then
// one masked step for the last n mod 8 (see exp.go for the arithmetic).
//
//go:noescape
func expShiftAVX2(x *float32, n int, shift float32) float32

func expShift(x []float32, shift float32) float32 {
	if !useAsm || len(x) == 0 {
		return expShiftGo(x, shift)
	}
	return expShiftAVX2(&x[0], len(x), shift)
}
