//go:build !amd64 || purego

package compute

func expNeg(dst, x []float32) { expNegGo(dst, x) }
