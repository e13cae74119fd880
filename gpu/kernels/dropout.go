package kernels

import (
	"fmt"
	"math"
)

// Wrappers for dropout.cu. A mask of n elements is MaskWords(n) uint64
// words, element i at bit i&63 of word i>>6 (adapter.Mask's layout), 1 =
// kept.

// MaskWords is the number of uint64 words a mask of n elements occupies.
func MaskWords(n int) int { return (n + 63) / 64 }

// DropoutMask draws a fresh mask of n elements into keep (MaskWords(n)
// words): each element is dropped with probability p (to within 2⁻¹⁷, as
// adapter.Dropout), from a counter-based generator on (seed, element), so
// the same seed and n give the same mask. Bits past n are 0. 0 ≤ p < 1.
func DropoutMask(l Launcher, keep uintptr, n int, seed uint64, p float32) error {
	const entry = "dropout_mask"
	if err := checkSizes(entry, size{"n", n}); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"keep", keep}); err != nil {
		return err
	}
	if !(p >= 0 && p < 1) {
		return fmt.Errorf("kernels: %s: probability %v, want 0 ≤ p < 1", entry, p)
	}
	grid, block := elemGrid(int64(MaskWords(n)))
	return l.Launch(entry, grid, block, 0, keep, int64(n), seed, p)
}

// DropoutApply sets dst[i] = x[i]·(kept(off+i) ? scale : 0) for i < n, the
// window of the mask that starts at element off (Mask.ApplyAt). dst and x
// (n floats) may be the same buffer; keep must cover off+n elements.
func DropoutApply(l Launcher, dst, x, keep uintptr, scale float32, n, off int) error {
	const entry = "dropout_apply"
	if err := checkSizes(entry, size{"n", n}); err != nil {
		return err
	}
	if off < 0 || off > math.MaxInt64-n {
		return fmt.Errorf("kernels: %s: offset %d out of range", entry, off)
	}
	if err := checkPtrs(entry, ptr{"dst", dst}, ptr{"x", x}, ptr{"keep", keep}); err != nil {
		return err
	}
	if err := checkFinite(entry, namedFloat{"scale", scale}); err != nil {
		return err
	}
	grid, block := elemGrid(int64(n))
	return l.Launch(entry, grid, block, 0, dst, x, keep, scale, int64(n), int64(off))
}

// DropoutAddBackward accumulates dx[i] += g[i]·(kept(i) ? scale : 0), the
// backward of DropoutApply with offset 0 (Mask.AddBackward). dx, g: n.
func DropoutAddBackward(l Launcher, dx, g, keep uintptr, scale float32, n int) error {
	const entry = "dropout_add_backward"
	if err := checkFinite(entry, namedFloat{"scale", scale}); err != nil {
		return err
	}
	return elementwise(l, entry, n, []ptr{{"dx", dx}, {"g", g}, {"keep", keep}}, dx, g, keep, scale)
}
