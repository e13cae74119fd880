//go:build !amd64 || purego

package compute

func expShift(x []float32, shift float32) float32 { return expShiftGo(x, shift) }
