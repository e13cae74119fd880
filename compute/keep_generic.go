//go:build !amd64 || purego

package compute

func keepWords8(keep []uint64, words, streams int, seed, c0, add uint64) bool { return false }
