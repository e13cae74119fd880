package kernels

// Wrappers for elementwise.cu. Sizes: n is an element count (int64 on the
// device); n×d is a row-major matrix of n rows.

// elementwise launches a grid-stride kernel whose trailing argument is n.
func elementwise(l Launcher, entry string, n int, ptrs []ptr, args ...any) error {
	if err := checkSizes(entry, size{"n", n}); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptrs...); err != nil {
		return err
	}
	grid, block := elemGrid(int64(n))
	return l.Launch(entry, grid, block, 0, append(args, int64(n))...)
}

// AddF32 adds x to y: y[i] += x[i]. y, x: n floats.
func AddF32(l Launcher, y, x uintptr, n int) error {
	return elementwise(l, "add_f32", n, []ptr{{"y", y}, {"x", x}}, y, x)
}

// ScaleF32 multiplies x by s in place: x[i] *= s. x: n floats.
func ScaleF32(l Launcher, x uintptr, s float32, n int) error {
	return elementwise(l, "scale_f32", n, []ptr{{"x", x}}, x, s)
}

// FillF32 sets every element of x to v. x: n floats.
func FillF32(l Launcher, x uintptr, v float32, n int) error {
	return elementwise(l, "fill_f32", n, []ptr{{"x", x}}, x, v)
}

// F32ToBF16 rounds in to bfloat16 (nearest, ties to even; NaN stays NaN):
// out: n uint16, in: n float32.
func F32ToBF16(l Launcher, out, in uintptr, n int) error {
	return elementwise(l, "f32_to_bf16", n, []ptr{{"out", out}, {"in", in}}, out, in)
}

// BF16ToF32 widens bfloat16 to float32 (exact): out: n float32, in: n uint16.
func BF16ToF32(l Launcher, out, in uintptr, n int) error {
	return elementwise(l, "bf16_to_f32", n, []ptr{{"out", out}, {"in", in}}, out, in)
}

// BiasAdd adds the bias b (d) to every row of y (n×d).
func BiasAdd(l Launcher, y, b uintptr, n, d int) error {
	const entry = "bias_add"
	if err := checkSizes(entry, size{"n", n}, size{"d", d}); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"y", y}, ptr{"b", b}); err != nil {
		return err
	}
	grid, block := rowGrid(n, d)
	return l.Launch(entry, grid, block, 0, y, b, int32(n), int32(d))
}

// BiasGrad accumulates the bias gradient: db[c] += Σ_t dy[t][c].
// db: d, dy: n×d. Deterministic (fixed summation order).
func BiasGrad(l Launcher, db, dy uintptr, n, d int) error {
	const entry = "bias_grad"
	if err := checkSizes(entry, size{"n", n}, size{"d", d}); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"db", db}, ptr{"dy", dy}); err != nil {
		return err
	}
	grid := [3]uint32{uint32((d + 31) / 32), 1, 1}
	return l.Launch(entry, grid, [3]uint32{32, 8, 1}, 0, db, dy, int32(n), int32(d))
}
