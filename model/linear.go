package model

import (
	"fmt"
	"math"
	"sync"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/compute"
)

// FrozenLinear is a linear layer whose weight never changes: y = x·Wᵀ + b.
// W is packed once for each product the layer needs, so the forward pass
// (x·Wᵀ) and the input gradient (dy·W) skip per-call packing. The packed
// copies cost 2·d_out·d_in floats on top of W, so they are made on first
// use: a model that only travels to the GPU engine never pays for them (a
// Mistral-7B base would need 56 GB more host memory). They are read-only, so
// one FrozenLinear can serve many goroutines (all clients of a simulation).
type FrozenLinear struct {
	DOut, DIn int
	W         []float32 // d_out×d_in
	Bias      []float32 // d_out, or nil

	fwdOnce, bwdOnce sync.Once
	fwd              *compute.PackedB // Wᵀ as the right operand: d_in×d_out
	bwd              *compute.PackedB // W as the right operand: d_out×d_in
	bf16             bool             // fwd and bwd are bf16 (Model.UseBF16)
}

// NewFrozenLinear packs w (d_out×d_in, row-major) and keeps bias (length
// d_out, or nil).
func NewFrozenLinear(dOut, dIn int, w, bias []float32) (*FrozenLinear, error) {
	if dOut <= 0 || dIn <= 0 {
		return nil, fmt.Errorf("linear %d×%d: sizes must be positive", dOut, dIn)
	}
	if len(w) != dOut*dIn {
		return nil, fmt.Errorf("linear %d×%d: weight has %d elements, want %d", dOut, dIn, len(w), dOut*dIn)
	}
	if bias != nil && len(bias) != dOut {
		return nil, fmt.Errorf("linear %d×%d: bias has %d elements, want %d", dOut, dIn, len(bias), dOut)
	}
	return &FrozenLinear{DOut: dOut, DIn: dIn, W: w, Bias: bias}, nil
}

// packedFwd is Wᵀ packed as a right operand (d_in×d_out), made once.
func (l *FrozenLinear) packedFwd() *compute.PackedB {
	l.fwdOnce.Do(func() { l.fwd = compute.PackB(compute.Trans, l.DIn, l.DOut, l.W, l.DIn) })
	return l.fwd
}

// packedBwd is W packed as a right operand (d_out×d_in), made once.
func (l *FrozenLinear) packedBwd() *compute.PackedB {
	l.bwdOnce.Do(func() { l.bwd = compute.PackB(compute.NoTrans, l.DOut, l.DIn, l.W, l.DIn) })
	return l.bwd
}

// Forward sets y = x·Wᵀ + b. x: n×d_in, y: n×d_out.
func (l *FrozenLinear) Forward(x []float32, n int, y []float32) {
	compute.GemmPacked(compute.NoTrans, n, 1, x, l.DIn, l.packedFwd(), 0, y, l.DOut)
	if l.Bias != nil {
		for t := 0; t < n; t++ {
			compute.Axpy(1, l.Bias, y[t*l.DOut:(t+1)*l.DOut])
		}
	}
}

// BackwardInput adds dy·W to dx. dy: n×d_out, dx: n×d_in. The weight is
// frozen, so there is no weight gradient.
func (l *FrozenLinear) BackwardInput(dy []float32, n int, dx []float32) {
	l.backwardInput(dy, n, dx, 1)
}

// backwardInput sets dx = dy·W + beta·dx; beta 0 ignores dx's old contents.
func (l *FrozenLinear) backwardInput(dy []float32, n int, dx []float32, beta float32) {
	if l.bf16 && l.bwd == nil { // one bf16 copy (Model.LeanBF16): dy·W from Wᵀ's
		compute.GemmPackedT(compute.NoTrans, n, 1, dy, l.DOut, l.fwd, beta, dx, l.DIn)
		return
	}
	compute.GemmPacked(compute.NoTrans, n, 1, dy, l.DOut, l.packedBwd(), beta, dx, l.DIn)
}

// AdaptedLinear is a frozen linear layer with an adapter on it:
//
//	y = x·Wᵀ + b + scale·ΔW·dropout(x)
//
// It keeps the adapter's activations between Forward and Backward, so use one
// AdaptedLinear per layer per concurrent batch.
type AdaptedLinear struct {
	Frozen  *FrozenLinear
	Adapter adapter.Layer // nil: the frozen layer alone
	acts    adapter.Acts
}

// Forward computes y (n×d_out) from x (n×d_in). drop is nil at inference.
func (l *AdaptedLinear) Forward(x []float32, n int, y []float32, drop *adapter.Dropout) {
	l.Frozen.Forward(x, n, y)
	if l.Adapter != nil {
		l.Adapter.Forward(x, n, y, &l.acts, drop)
	}
}

// Backward accumulates the adapter's gradients and, when dx is non-nil, adds
// ∂L/∂x (frozen and adapter parts) to dx (n×d_in).
func (l *AdaptedLinear) Backward(dy []float32, n int, dx []float32) {
	l.backward(dy, n, dx, 1)
}

// BackwardInto is Backward with dx (non-nil) overwritten by ∂L/∂x instead
// of added to: its old contents, even NaN, are ignored. It saves the pass
// that clearing dx first would take (and the GEMM's first read of it), and
// gives the same values as clear-then-Backward except that an element that
// sums to exactly −0 stays −0 (0 + (−0) is +0).
func (l *AdaptedLinear) BackwardInto(dy []float32, n int, dx []float32) {
	l.backward(dy, n, dx, 0)
}

func (l *AdaptedLinear) backward(dy []float32, n int, dx []float32, beta float32) {
	if dx != nil {
		l.Frozen.backwardInput(dy, n, dx, beta)
	}
	if l.Adapter != nil {
		l.Adapter.Backward(dy, &l.acts, dx)
	}
}

// weightLoader reads a model's tensors from a TensorSource, keeping the first
// error so constructors can ask for every tensor in a row and check once.
type weightLoader struct {
	src TensorSource
	err error
}

// get returns the named tensor, or nil once any read has failed.
func (w *weightLoader) get(name string, shape ...int) []float32 {
	if w.err != nil {
		return nil
	}
	t, err := w.src(name, shape...)
	if err == nil {
		err = checkFinite(name, t)
	}
	w.err = err
	return t
}

// linear reads name.weight (d_out×d_in), and name.bias when withBias, as a
// FrozenLinear.
func (w *weightLoader) linear(name string, dOut, dIn int, withBias bool) *FrozenLinear {
	wt := w.get(name+".weight", dOut, dIn)
	var b []float32
	if withBias {
		b = w.get(name+".bias", dOut)
	}
	if w.err != nil {
		return nil
	}
	l, err := NewFrozenLinear(dOut, dIn, wt, b)
	if err != nil {
		w.err = fmt.Errorf("%s: %w", name, err)
	}
	return l
}

// checkFinite refuses a weight holding NaN or ±Inf (a damaged file, or a
// training run that diverged), naming the tensor and the first bad element:
// loading it silently would only show later as NaN losses.
func checkFinite(name string, t []float32) error {
	for i, v := range t {
		if v != v || v > math.MaxFloat32 || v < -math.MaxFloat32 {
			return fmt.Errorf("tensor %s: element %d is %v (the weights are damaged)", name, i, v)
		}
	}
	return nil
}
