//go:build !amd64 || purego

package compute

func maskScale(dst, src []float32, keep []uint64, scale float32, accumulate bool) {
	maskScaleGo(dst, src, keep, scale, accumulate)
}
