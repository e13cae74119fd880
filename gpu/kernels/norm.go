package kernels

import (
	"fmt"
	"math"
)

// Wrappers for norm.cu: one block per row (grid n), rowBlock(d) threads.

func normSizes(entry string, n, d int) error {
	if err := checkSizes(entry, size{"n", n}, size{"d", d}); err != nil {
		return err
	}
	_, err := product(entry, size{"n", n}, size{"d", d})
	return err
}

func checkEps(entry string, eps float32) error {
	if !(eps >= 0) || math.IsInf(float64(eps), 0) {
		return fmt.Errorf("kernels: %s: eps = %v, want a finite value ≥ 0", entry, eps)
	}
	return nil
}

// RMSNormForward sets out[t] = x[t]/rms(x[t]) ⊙ w, rms = √(mean(x²)+eps), and
// rstd[t] = 1/rms. out, x: n×d; w: d; rstd: n.
func RMSNormForward(l Launcher, out, rstd, x, w uintptr, n, d int, eps float32) error {
	const entry = "rmsnorm_forward"
	if err := normSizes(entry, n, d); err != nil {
		return err
	}
	if err := checkEps(entry, eps); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"out", out}, ptr{"rstd", rstd}, ptr{"x", x}, ptr{"w", w}); err != nil {
		return err
	}
	return l.Launch(entry, [3]uint32{uint32(n), 1, 1}, [3]uint32{rowBlock(d), 1, 1}, 0,
		out, rstd, x, w, int32(n), int32(d), eps)
}

// RMSNormBackward accumulates dx += ∂L/∂x given dout, for the frozen weight
// w: dx = r·(dout⊙w − x̂·mean(dout⊙w⊙x̂)), x̂ = x·r. dx, dout, x: n×d; w: d;
// rstd: n from RMSNormForward.
func RMSNormBackward(l Launcher, dx, dout, x, w, rstd uintptr, n, d int) error {
	const entry = "rmsnorm_backward"
	if err := normSizes(entry, n, d); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"dx", dx}, ptr{"dout", dout}, ptr{"x", x}, ptr{"w", w}, ptr{"rstd", rstd}); err != nil {
		return err
	}
	return l.Launch(entry, [3]uint32{uint32(n), 1, 1}, [3]uint32{rowBlock(d), 1, 1}, 0,
		dx, dout, x, w, rstd, int32(n), int32(d))
}

// LayerNormForward sets out[t] = (x[t]−μ)/σ ⊙ w + b, σ = √(var+eps), keeping
// mean[t] = μ and rstd[t] = 1/σ. out, x: n×d; w, b: d; mean, rstd: n.
func LayerNormForward(l Launcher, out, mean, rstd, x, w, b uintptr, n, d int, eps float32) error {
	const entry = "layernorm_forward"
	if err := normSizes(entry, n, d); err != nil {
		return err
	}
	if err := checkEps(entry, eps); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"out", out}, ptr{"mean", mean}, ptr{"rstd", rstd}, ptr{"x", x}, ptr{"w", w}, ptr{"b", b}); err != nil {
		return err
	}
	return l.Launch(entry, [3]uint32{uint32(n), 1, 1}, [3]uint32{rowBlock(d), 1, 1}, 0,
		out, mean, rstd, x, w, b, int32(n), int32(d), eps)
}

// LayerNormBackward accumulates dx += ∂L/∂x for frozen w and b:
// dx = r·(g − mean(g) − x̂·mean(g⊙x̂)), g = dout⊙w, x̂ = (x−μ)·r.
// dx, dout, x: n×d; w: d; mean, rstd: n from LayerNormForward.
func LayerNormBackward(l Launcher, dx, dout, x, w, mean, rstd uintptr, n, d int) error {
	const entry = "layernorm_backward"
	if err := normSizes(entry, n, d); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"dx", dx}, ptr{"dout", dout}, ptr{"x", x}, ptr{"w", w}, ptr{"mean", mean}, ptr{"rstd", rstd}); err != nil {
		return err
	}
	return l.Launch(entry, [3]uint32{uint32(n), 1, 1}, [3]uint32{rowBlock(d), 1, 1}, 0,
		dx, dout, x, w, mean, rstd, int32(n), int32(d))
}
