//go:build amd64 && !purego

package compute

// expShiftAVX2 does ExpShift on n ≥ 0 elements at x: n/8 full steps, then
// one masked step for the last n mod 8 (see exp.go for the arithmetic),
// the eight lane sums starting from acc.
//
//go:noescape
func expShiftAVX2(x *float32, n int, shift float32, acc *[8]float32) float32

// expShiftZMM does 16·blocks elements, adding to the lane sums in acc
// exactly as the ymm loop would.
//
//go:noescape
func expShiftZMM(x *float32, blocks int, shift float32, acc *[8]float32)

func expShift(x []float32, shift float32) float32 {
	if !useAsm || len(x) == 0 {
		return expShiftGo(x, shift)
	}
	var acc [8]float32
	done := 0
	if useZMM() && len(x) >= 16 {
		expShiftZMM(&x[0], len(x)/16, shift, &acc)
		done = len(x) / 16 * 16
	}
	if done == len(x) {
		return expReduce8(&acc)
	}
	return expShiftAVX2(&x[done], len(x)-done, shift, &acc)
}
