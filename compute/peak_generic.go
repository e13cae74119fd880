//go:build !amd64 || purego

package compute

func fmaLoop(width string, iters int) (lanes int, ok bool) { return 0, false }
