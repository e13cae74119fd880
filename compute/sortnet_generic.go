//go:build !amd64 || purego

package compute

func sortColumns16(buf []float32, net [][2]int32) { sortColumns16Go(buf, net) }
