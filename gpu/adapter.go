package gpu

import (
	"fmt"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/gpu/kernels"
)

// DropoutSource says where a device step's dropout masks come from.
type DropoutSource int

const (
	// DeviceDropout draws each mask on the device from one 64-bit seed taken
	// from the run's dropout generator (as the CPU engine takes one per
	// mask): reproducible from the seed, fast at any size, but not the CPU
	// engine's pattern.
	DeviceDropout DropoutSource = iota
	// HostDropout samples each mask on the host with adapter.Dropout,
	// exactly as the CPU engine does, and uploads its bits: a device step
	// then drops the same elements as a CPU step from the same seed (parity
	// tests), at the price of host time proportional to the activations.
	HostDropout
)

// dropoutMask draws the keep bits of a dropout over size elements into mask
// (⌈size/64⌉ words on the device) and returns the kept elements' scale; a
// nil drop or P ≤ 0 draws nothing and returns 0. An active one takes one
// 64-bit draw from drop's generator from either source, as
// adapter.Dropout.Sample does, so both engines consume a seed stream alike.
func (e *Engine) dropoutMask(mask *buf, host *adapter.Mask, drop *adapter.Dropout, size int, src DropoutSource) (float32, error) {
	if drop == nil || drop.P <= 0 {
		return 0, nil
	}
	if src == HostDropout {
		drop.Sample(host, size)
		return host.Scale, upload(e, mask, host.Words())
	}
	if err := e.grow(mask, (size+63)/64, 8); err != nil {
		return 0, err
	}
	return 1 / (1 - drop.P), kernels.DropoutMask(e, mask.p(), size, drop.Rng.Uint64(), drop.P)
}

// deviceAdapter is one adapter.Layer on the device: copies of its factors,
// their gradients, and the activations its backward needs. The host Layer
// stays the master copy: the optimizer, quantization and uploads all work on
// it; a run uploads the factors before each forward (pull) and adds the
// device gradients into the host gradients after each backward (push).
type deviceAdapter struct {
	host    adapter.Layer
	factors []buf // host.Factors() order
	grads   []buf
	hostTmp [][]float32 // download space for push

	n      int
	x      buf  // the adapter input after dropout (n×d_in), when dropout is on
	xIn    buf  // the input the forward saw: x, or the caller's buffer without dropout
	mask   buf  // keep bits of the input dropout
	masked bool // mask holds an active mask
	scale  float32
	// h, u: Kron-LoRA T ((n·2)×r) and M ((n·dA2)×r); LoRA H (n×q).
	h, u, dh, du, dx buf
	hostMask         adapter.Mask
}

func newDeviceAdapter(e *Engine, l adapter.Layer) (*deviceAdapter, error) {
	switch l.(type) {
	case *adapter.Kron, *adapter.LoRA:
	default:
		return nil, fmt.Errorf("gpu: adapter kind %s has no device implementation", l.Kind())
	}
	a := &deviceAdapter{host: l}
	for _, f := range l.Factors() {
		var d, g buf
		err := e.grow(&d, len(f.Data), 4)
		if err == nil {
			err = e.grow(&g, len(f.Data), 4)
		}
		if err == nil {
			err = e.zero(g, 4)
		}
		a.factors, a.grads = append(a.factors, d), append(a.grads, g)
		if err != nil {
			a.free(e)
			return nil, err
		}
		a.hostTmp = append(a.hostTmp, make([]float32, len(f.Data)))
	}
	return a, nil
}

// pull copies the host factors to the device.
func (a *deviceAdapter) pull(e *Engine) error {
	for i, f := range a.host.Factors() {
		if err := upload(e, &a.factors[i], f.Data); err != nil {
			return err
		}
	}
	return nil
}

// push adds the device gradients into the host gradients and clears the
// device ones.
func (a *deviceAdapter) push(e *Engine) error {
	for i, f := range a.host.Factors() {
		if err := download(e, a.hostTmp[i], a.grads[i]); err != nil {
			return err
		}
		for j, g := range a.hostTmp[i] {
			f.Grad[j] += g
		}
		if err := e.zero(a.grads[i], 4); err != nil {
			return err
		}
	}
	return nil
}

// pushGrads ends a backward pass: launchErr (the pass's first launch
// error) if there was one, else every adapter's gradients pushed to the
// host.
func pushGrads(e *Engine, ads []*deviceAdapter, launchErr error) error {
	if launchErr != nil {
		return launchErr
	}
	for _, a := range ads {
		if err := a.push(e); err != nil {
			return err
		}
	}
	return nil
}

// input applies dropout to x (n×d_in) and returns the adapter's input, as
// adapter.Acts.input does.
func (a *deviceAdapter) input(e *Engine, x buf, n, dIn int, drop *adapter.Dropout, src DropoutSource) (buf, error) {
	a.n = n
	a.masked = drop != nil && drop.P > 0
	if !a.masked {
		a.xIn = x
		return x, nil
	}
	size := n * dIn
	var err error
	if a.scale, err = e.dropoutMask(&a.mask, &a.hostMask, drop, size, src); err != nil {
		return buf{}, err
	}
	if err := e.grow(&a.x, size, 4); err != nil {
		return buf{}, err
	}
	if err := kernels.DropoutApply(e, a.x.p(), x.p(), a.mask.p(), a.scale, size, 0); err != nil {
		return buf{}, err
	}
	a.xIn = a.x
	return a.x, nil
}

// forward adds scale·ΔW·dropout(x) to y (n×d_out), as adapter.Kron.Forward
// and adapter.LoRA.Forward do, never forming ΔW.
func (a *deviceAdapter) forward(e *Engine, x buf, n int, y buf, drop *adapter.Dropout, src DropoutSource) error {
	dOut, dIn := a.host.Dims()
	xs, err := a.input(e, x, n, dIn, drop, src)
	if err != nil {
		return err
	}
	var s errs
	switch l := a.host.(type) {
	case *adapter.Kron:
		r, dA2, dB2, dB1 := l.Shape.Rank, l.Shape.DA2, l.Shape.DB2(), l.Shape.DB1()
		A, B1, B2 := a.factors[0].p(), a.factors[1].p(), a.factors[2].p()
		s.do(e.grow(&a.h, n*adapter.KronDA1*r, 4))
		s.do(e.grow(&a.u, n*dA2*r, 4))
		if s.err != nil {
			return s.err
		}
		// T = Xs·B2ᵀ, M_t = A·T_t, y += scale·M·B1ᵀ
		s.do(e.gemm32(false, true, n*adapter.KronDA1, r, dB1, 1, xs.p(), dB1, B2, dB1, 0, a.h.p(), r))
		s.do(kernels.KronMix(e, a.u.p(), a.h.p(), A, n, dA2, r))
		s.do(e.gemm32(false, true, n*dA2, dB2, r, l.Scale(), a.u.p(), r, B1, r, 1, y.p(), dB2))
	case *adapter.LoRA:
		q := l.Shape.Rank
		A, B := a.factors[0].p(), a.factors[1].p()
		if err := e.grow(&a.h, n*q, 4); err != nil {
			return err
		}
		// H = X·Aᵀ, y += scale·H·Bᵀ
		s.do(e.gemm32(false, true, n, q, dIn, 1, xs.p(), dIn, A, dIn, 0, a.h.p(), q))
		s.do(e.gemm32(false, true, n, dOut, q, l.Scale(), a.h.p(), q, B, q, 1, y.p(), dOut))
	}
	return s.err
}

// backward accumulates the factor gradients (on the device) for dy
// (n×d_out) and, when dx is non-empty, adds the adapter's ∂L/∂x to dx
// (n×d_in) through the dropout mask, as the CPU adapters' Backward does.
func (a *deviceAdapter) backward(e *Engine, dy, dx buf) error {
	dOut, dIn := a.host.Dims()
	n := a.n
	var s errs
	// inputGrad is dX (n×d_in, before the dropout mask): the GEMM that
	// forms it accumulates straight into dx when no mask is on.
	inputGrad := func(gemm func(out uintptr, beta float32) error) {
		if dx.n == 0 {
			return
		}
		if !a.masked {
			s.do(gemm(dx.p(), 1))
			return
		}
		s.do(e.grow(&a.dx, n*dIn, 4))
		s.do(gemm(a.dx.p(), 0))
		s.do(kernels.DropoutAddBackward(e, dx.p(), a.dx.p(), a.mask.p(), a.scale, n*dIn))
	}
	switch l := a.host.(type) {
	case *adapter.Kron:
		r, dA2, dB2, dB1 := l.Shape.Rank, l.Shape.DA2, l.Shape.DB2(), l.Shape.DB1()
		A, B1, B2 := a.factors[0].p(), a.factors[1].p(), a.factors[2].p()
		gA, gB1, gB2 := a.grads[0].p(), a.grads[1].p(), a.grads[2].p()
		sc := l.Scale()
		s.do(e.grow(&a.du, n*dA2*r, 4))
		s.do(e.grow(&a.dh, n*adapter.KronDA1*r, 4))
		if s.err != nil {
			return s.err
		}
		// dM = s·dy·B1, dB1 += s·dyᵀ·M, dA += Σ dM_t·T_tᵀ, dT_t = Aᵀ·dM_t,
		// dB2 += dTᵀ·Xs, dXs = dT·B2
		s.do(e.gemm32(false, false, n*dA2, r, dB2, sc, dy.p(), dB2, B1, r, 0, a.du.p(), r))
		s.do(e.gemm32(true, false, dB2, r, n*dA2, sc, dy.p(), dB2, a.u.p(), r, 1, gB1, r))
		s.do(kernels.KronGradA(e, gA, a.du.p(), a.h.p(), n, dA2, r))
		s.do(kernels.KronUnmix(e, a.dh.p(), a.du.p(), A, n, dA2, r))
		s.do(e.gemm32(true, false, r, dB1, n*adapter.KronDA1, 1, a.dh.p(), r, a.xIn.p(), dB1, 1, gB2, dB1))
		inputGrad(func(out uintptr, beta float32) error {
			return e.gemm32(false, false, n*adapter.KronDA1, dB1, r, 1, a.dh.p(), r, B2, dB1, beta, out, dB1)
		})
	case *adapter.LoRA:
		q := l.Shape.Rank
		A, B := a.factors[0].p(), a.factors[1].p()
		gA, gB := a.grads[0].p(), a.grads[1].p()
		sc := l.Scale()
		if err := e.grow(&a.dh, n*q, 4); err != nil {
			return err
		}
		// dB += s·dyᵀ·H, dH = s·dy·B, dA += dHᵀ·X, dX = dH·A
		s.do(e.gemm32(true, false, dOut, q, n, sc, dy.p(), dOut, a.h.p(), q, 1, gB, q))
		s.do(e.gemm32(false, false, n, q, dOut, sc, dy.p(), dOut, B, q, 0, a.dh.p(), q))
		s.do(e.gemm32(true, false, q, dIn, n, 1, a.dh.p(), q, a.xIn.p(), dIn, 1, gA, dIn))
		inputGrad(func(out uintptr, beta float32) error {
			return e.gemm32(false, false, n, dIn, q, 1, a.dh.p(), q, A, dIn, beta, out, dIn)
		})
	}
	return s.err
}

func (a *deviceAdapter) free(e *Engine) {
	for i := range a.factors {
		e.release(&a.factors[i])
		e.release(&a.grads[i])
	}
	for _, b := range []*buf{&a.x, &a.mask, &a.h, &a.u, &a.dh, &a.du, &a.dx} {
		e.release(b)
	}
}

// adaptedLinear is model.AdaptedLinear on the device.
type adaptedLinear struct {
	frozen  *frozenLinear
	adapter *deviceAdapter // nil: the frozen layer alone
}

// forward computes y (n×d_out) from x (n×d_in); drop is nil at inference.
func (l *adaptedLinear) forward(e *Engine, s *scratch, x buf, n int, y buf, drop *adapter.Dropout, src DropoutSource) error {
	if err := l.frozen.forward(e, s, x, n, y); err != nil {
		return err
	}
	if l.adapter != nil {
		return l.adapter.forward(e, x, n, y, drop, src)
	}
	return nil
}

// backward accumulates the adapter's gradients and, when dx is non-empty,
// adds ∂L/∂x (frozen and adapter parts) to dx (n×d_in).
func (l *adaptedLinear) backward(e *Engine, s *scratch, dy buf, n int, dx buf) error {
	if dx.n > 0 {
		if err := l.frozen.backwardInput(e, s, dy, n, dx); err != nil {
			return err
		}
	}
	if l.adapter != nil {
		return l.adapter.backward(e, dy, dx)
	}
	return nil
}
