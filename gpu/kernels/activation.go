package kernels

// Wrappers for activation.cu: the mirrors of swigluForward/swigluBackward,
// geluForward/geluBackward (model/layers.go) and ReLU. All tensors have n
// elements (any shape, flattened).

// SwiGLUForward sets h = silu(g)⊙u. h, g, u: n.
func SwiGLUForward(l Launcher, h, g, u uintptr, n int) error {
	return elementwise(l, "swiglu_forward", n, []ptr{{"h", h}, {"g", g}, {"u", u}}, h, g, u)
}

// SwiGLUBackward sets (overwrites) dg and du from dh: du = dh⊙silu(g),
// dg = dh⊙u⊙σ(g)·(1 + g·(1−σ(g))). dg, du, dh, g, u: n.
func SwiGLUBackward(l Launcher, dg, du, dh, g, u uintptr, n int) error {
	return elementwise(l, "swiglu_backward", n,
		[]ptr{{"dg", dg}, {"du", du}, {"dh", dh}, {"g", g}, {"u", u}}, dg, du, dh, g, u)
}

// GELUForward sets out = GELU(x) = x·Φ(x) (exact erf form, with
// compute.Erf32's approximation) and, when grad is not 0, grad = GELU'(x)
// for the backward. out, grad, x: n; grad is optional (0 at inference).
func GELUForward(l Launcher, out, grad, x uintptr, n int) error {
	return elementwise(l, "gelu_forward", n, []ptr{{"out", out}, {"x", x}}, out, grad, x)
}

// GELUBackward accumulates dx += dout⊙grad, grad = GELU'(x) stored by
// GELUForward. dx, dout, grad: n.
func GELUBackward(l Launcher, dx, dout, grad uintptr, n int) error {
	return elementwise(l, "gelu_backward", n, []ptr{{"dx", dx}, {"dout", dout}, {"grad", grad}}, dx, dout, grad)
}

// ReLUForward sets out = max(x, 0). out, x: n.
func ReLUForward(l Launcher, out, x uintptr, n int) error {
	return elementwise(l, "relu_forward", n, []ptr{{"out", out}, {"x", x}}, out, x)
}

// ReLUBackward accumulates dx += dout where x > 0. dx, dout, x: n.
func ReLUBackward(l Launcher, dx, dout, x uintptr, n int) error {
	return elementwise(l, "relu_backward", n, []ptr{{"dx", dx}, {"dout", dout}, {"x", x}}, dx, dout, x)
}
