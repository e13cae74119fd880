//go:build !amd64 || purego

package compute

// tnKernel is never called without AVX-512 (useTN is false).
func tnKernel(kc int, s, w []float32, ldw, cols int, alpha float32, scaleW bool, t []float32) {
	panic("compute: tnKernel without AVX-512")
}
