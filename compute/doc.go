// Package compute holds kronfed's CPU math: a packed float32 GEMM with an amd64
// AVX2/FMA fast path and a portable fallback, small vector kernels, and the worker
// pool that spreads them over the cores.
//
// All matrices are row-major. A matrix argument is a slice plus a leading
// dimension (the distance in elements between the starts of consecutive rows), as
// in BLAS with the storage order flipped.
//
// # API
//
//   - Gemm: C = alpha·op(A)·op(B) + beta·C for any transpose combination.
//   - PackB / GemmPacked: pack a right operand once (a frozen weight W for
//     y = x·Wᵀ is PackB(Trans, dIn, dOut, W, dIn)) and reuse it; a PackedB is
//     read-only and may be shared by any number of goroutines.
//   - Axpy, Axpy2, Dot, Scale: vector kernels for the per-token adapter math.
//   - ExpShift: exp(x − shift) of a softmax row in place, with its sum (≤ 1
//     ulp; the assembly and the portable path agree bit for bit).
//   - GELU: BERT's exact GELU and its derivative.
//   - SetThreads / Threads: how many goroutines a large product uses.
//   - MeasureGemm: GFLOP/s of a shape on this machine (for `client bench`).
//
// # How the GEMM works
//
// Goto/BLIS blocking (see gemm.go for the block sizes and why): op(B) is
// packed into 16-column micro-panels, op(A) into 6-row micro-panels (alpha
// folded in), and a micro-kernel keeps a 6×16 tile of C in twelve ymm
// registers, doing one broadcast-and-FMA rank-1 update per k step. Edge tiles
// are computed into a scratch tile and only their valid part is merged into
// C, so packing pads with zeros and the kernel never branches on shape.
// Products with m == 1 or n == 1 use Dot/Axpy instead, those with n ≤ 8 and
// row-major A (rank-r adapter projections) stream A rows through an 8-way
// dot-product kernel, and tiny ones (m·n·k ≤ 4096) a plain loop.
//
// Threads split C into row blocks (or column ranges when m is small) that
// share one packed B; each part packs its own A block. Parts are claimed
// dynamically by the caller and by long-lived pool workers, so Gemm may be
// called from many goroutines at once without oversubscribing the cores.
//
// # Architectures
//
// On amd64 with AVX2 and FMA (checked with CPUID at start-up) the
// micro-kernel, packing routines and vector kernels are Go assembly
// (*_amd64.s). Elsewhere, on amd64 CPUs without AVX2/FMA, or when built with
// the purego tag, the same blocked algorithm runs with pure-Go kernels
// (kernel_go.go, vec.go), which are also the references in the tests.
//
// Results agree with a float64 evaluation to within float32 rounding bounds.
// For a given shape they are bit-identical whatever the thread count (each
// element of C is summed in the same order), which keeps federated clients
// reproducible, and Gemm agrees bit for bit with PackB+GemmPacked except on
// its m == 1, n == 1 and n ≤ 8 paths. The assembly and portable paths differ
// in the last bits (fused vs separate multiply-add).
package compute
