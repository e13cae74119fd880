// Package compute holds kronfed's CPU math: a packed float32 GEMM with an amd64
// AVX2/FMA fast path and a portable fallback, small vector kernels, and the worker
// pool that spreads them over the cores.
//
// All matrices are row-major. A matrix argument is a slice plus a leading
// dimension (the distance in elements between the starts of consecutive rows), as
// in BLAS with the storage order flipped.
package compute
