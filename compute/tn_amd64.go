//go:build amd64 && !purego

package compute

// tnKernel8x32 sets t (8×32, dense) to Σ_{p<kc} s[p·8+i]·w'[p·ldw+j] for
// i < 8, j < cols (columns past cols are 0), an FMA chain from zero in p
// order, where w' is w or, with scaleW, alpha·w rounded to float32.
//
//go:noescape
func tnKernel8x32(kc int, s *float32, w *float32, ldw int, cols int, alpha float32, scaleW bool, t *float32)

func tnKernel(kc int, s, w []float32, ldw, cols int, alpha float32, scaleW bool, t []float32) {
	if kc < 1 || cols < 1 || cols > tnStrip || len(s) < kc*tnNarrow || len(w) < (kc-1)*ldw+cols || len(t) < tnNarrow*tnStrip {
		panic("compute: tnKernel operands too short")
	}
	tnKernel8x32(kc, &s[0], &w[0], ldw, cols, alpha, scaleW, &t[0])
}
