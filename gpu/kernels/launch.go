package kernels

import (
	"fmt"
	"math"
)

// Launch geometry shared by the wrappers.
const (
	elemBlock   = 256     // threads per block of the grid-stride kernels
	maxElemGrid = 1 << 15 // grid-stride kernels never launch more blocks than this
	maxGridY    = 65535   // CUDA's limit on gridDim.y (and z)
	maxRowBlock = 1024    // threads per block of one-block-per-row kernels
)

// size is one size argument of a wrapper, named for error messages.
type size struct {
	name string
	v    int
}

// checkSizes reports the first size that is not in [1, MaxInt32].
func checkSizes(entry string, sizes ...size) error {
	for _, s := range sizes {
		if s.v <= 0 || s.v > math.MaxInt32 {
			return fmt.Errorf("kernels: %s: %s = %d, want 1 … %d", entry, s.name, s.v, math.MaxInt32)
		}
	}
	return nil
}

// ptr is one device pointer argument, named for error messages.
type ptr struct {
	name string
	p    uintptr
}

// checkPtrs reports the first null pointer among required ones.
func checkPtrs(entry string, ptrs ...ptr) error {
	for _, p := range ptrs {
		if p.p == 0 {
			return fmt.Errorf("kernels: %s: %s is a null pointer", entry, p.name)
		}
	}
	return nil
}

// checkFinite reports the first NaN or ±Inf among float arguments.
func checkFinite(entry string, vals ...namedFloat) error {
	for _, v := range vals {
		if math.IsNaN(float64(v.v)) || math.IsInf(float64(v.v), 0) {
			return fmt.Errorf("kernels: %s: %s = %v is not finite", entry, v.name, v.v)
		}
	}
	return nil
}

type namedFloat struct {
	name string
	v    float32
}

// product multiplies sizes already checked positive, failing when the
// element count would overflow what long long indexing (and sane memory)
// allows.
func product(entry string, sizes ...size) (int64, error) {
	p := int64(1)
	for _, s := range sizes {
		if p > math.MaxInt64/4/int64(s.v) {
			return 0, fmt.Errorf("kernels: %s: %v elements overflow", entry, sizes)
		}
		p *= int64(s.v)
	}
	return p, nil
}

// elemGrid is the geometry of a grid-stride kernel over n elements.
func elemGrid(n int64) (grid, block [3]uint32) {
	g := min((n+elemBlock-1)/elemBlock, maxElemGrid)
	return [3]uint32{uint32(g), 1, 1}, [3]uint32{elemBlock, 1, 1}
}

// rowGrid is the geometry of a column-block × row kernel: tx threads over
// the width, blocks over the width in x and over the rows in y (the kernel
// strides when rows exceed 65535).
func rowGrid(rows, width int) (grid, block [3]uint32) {
	tx := min(256, roundUp(width, 32))
	return [3]uint32{uint32((width + tx - 1) / tx), uint32(min(rows, maxGridY)), 1}, [3]uint32{uint32(tx), 1, 1}
}

// rowBlock is the block size of a one-block-per-row reduction over rows of
// width elements: about four elements a thread, whole warps, at most 1024.
func rowBlock(width int) uint32 {
	return uint32(min(maxRowBlock, max(32, roundUp((width+3)/4, 32))))
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }
