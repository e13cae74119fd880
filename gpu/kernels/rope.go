package kernels

import "fmt"

// RopeApply rotates every head of x in place, exactly model's ropeApply: x
// is n×(heads·hd), token t at position pos[t] (n int32, each a row of the
// tables: the caller validates them); cos and sin are maxPos×(hd/2) tables
// (ropeTable). half 0 rotates the pairs (2i, 2i+1) (model.RopeInterleaved),
// half 1 the pairs (i, i+hd/2) (model.RopeHalf). sign +1 rotates forward,
// −1 back (the backward). hd must be even.
func RopeApply(l Launcher, x, pos, cos, sin uintptr, n, heads, hd, half int, sign float32) error {
	const entry = "rope_apply"
	if err := checkSizes(entry, size{"n", n}, size{"heads", heads}, size{"hd", hd}); err != nil {
		return err
	}
	if hd%2 != 0 {
		return fmt.Errorf("kernels: %s: head dim %d is odd", entry, hd)
	}
	if half != 0 && half != 1 {
		return fmt.Errorf("kernels: %s: half = %d, want 0 (interleaved pairs) or 1 (pairs i, i+hd/2)", entry, half)
	}
	if _, err := product(entry, size{"n", n}, size{"heads", heads}, size{"hd", hd}); err != nil {
		return err
	}
	if err := checkSizes(entry, size{"heads·hd", heads * hd}); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"x", x}, ptr{"pos", pos}, ptr{"cos", cos}, ptr{"sin", sin}); err != nil {
		return err
	}
	if err := checkFinite(entry, namedFloat{"sign", sign}); err != nil {
		return err
	}
	grid, block := rowGrid(n, heads*hd/2)
	return l.Launch(entry, grid, block, 0, x, pos, cos, sin, int32(n), int32(heads), int32(hd), int32(half), sign)
}
