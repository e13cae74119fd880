package gpu

import (
	"fmt"

	"github.com/kronfed/kronfed/gpu/cuda"
	"github.com/kronfed/kronfed/gpu/kernels"
	"github.com/kronfed/kronfed/model"
)

// frozenLinear is model.FrozenLinear on the device: y = x·Wᵀ + b with W
// (d_out×d_in, row-major) in the engine's precision and the bias in fp32.
type frozenLinear struct {
	dOut, dIn int
	w, bias   buf
	dtype     cuda.DataType // R32F or R16BF
}

// uploadLinear copies a CPU layer's weight (converted to bf16 on the host
// when the engine stores bf16) and bias to the device.
func (e *Engine) uploadLinear(l *model.FrozenLinear) (*frozenLinear, error) {
	d := &frozenLinear{dOut: l.DOut, dIn: l.DIn, dtype: cuda.R32F}
	if l.W == nil {
		return nil, fmt.Errorf("gpu: upload %d×%d linear: its float32 weights were released on the host (model.Model.ReleaseFP32); load the base again", l.DOut, l.DIn)
	}
	var err error
	if e.Precision == BF16 {
		d.dtype = cuda.R16BF
		err = upload(e, &d.w, toBF16(l.W))
	} else {
		err = upload(e, &d.w, l.W)
	}
	if err == nil && l.Bias != nil {
		err = upload(e, &d.bias, l.Bias)
	}
	if err != nil {
		return nil, fmt.Errorf("gpu: upload %d×%d linear: %w", l.DOut, l.DIn, err)
	}
	return d, nil
}

// weightUploader copies a model's frozen tensors to the device one after
// another, keeping the first error (like model's weightLoader), so an
// upload reads as the list of its tensors. A counting uploader (count set)
// copies nothing and adds up the bytes the upload would take: run first,
// it lets an upload that cannot fit fail before it starts (uploadBase).
type weightUploader struct {
	e     *Engine
	count bool
	bytes int64
	errs
}

// vec uploads a vector or table of fp32 values into b.
func (u *weightUploader) vec(b *buf, data []float32) {
	if u.count {
		u.bytes += 4 * int64(len(data))
		return
	}
	if u.err == nil {
		u.do(upload(u.e, b, data))
	}
}

// linear uploads a frozen linear layer (nil once anything failed).
func (u *weightUploader) linear(l *model.FrozenLinear) *frozenLinear {
	if u.count {
		per := int64(4)
		if u.e.Precision == BF16 {
			per = 2
		}
		u.bytes += per*int64(len(l.W)) + 4*int64(len(l.Bias))
		return &frozenLinear{}
	}
	if u.err != nil {
		return nil
	}
	d, err := u.e.uploadLinear(l)
	u.do(err)
	return d
}

// uploadBase uploads a base's frozen weights with put (UploadLlama's or
// UploadBERT's list of tensors), after checking with a counting pass that
// they fit in the device's free memory. what names the base in errors.
func uploadBase[M interface{ Free() }](e *Engine, what string, put func(u *weightUploader) M) (M, error) {
	var zero M
	dry := &weightUploader{e: e, count: true}
	put(dry)
	if err := e.fits(what+"'s frozen weights ("+e.Precision.String()+")", dry.bytes); err != nil {
		return zero, err
	}
	u := &weightUploader{e: e}
	m := put(u)
	if u.err == nil {
		u.do(e.Sync())
	}
	if u.err != nil {
		m.Free()
		return zero, fmt.Errorf("gpu: upload %s to %s: %w", what, e.Device(), u.err)
	}
	return m, nil
}

// fits reports an error naming what, its size and the device's free and
// total memory when need bytes would not fit in what is free (the driver's
// free memory plus the blocks the engine's pool holds for reuse).
func (e *Engine) fits(what string, need int64) error {
	free, total, err := e.b.memInfo()
	if err != nil {
		return err
	}
	free += e.b.memStats().Cached
	if need <= free {
		return nil
	}
	hint := "a smaller base needs less"
	if e.Precision == FP32 {
		hint = "--precision bf16 needs half as much for the weights"
	}
	return fmt.Errorf("gpu: %s need %s of device memory but %s has %s free of %s (other processes' use: nvidia-smi; %s)",
		what, cuda.FormatBytes(need), e.Device(), cuda.FormatBytes(free), cuda.FormatBytes(total), hint)
}

// scratch is the bf16 copy of a GEMM's activation operand, shared by all the
// layers of a run (each uses it only within one call).
type scratch struct{ act buf }

// operand returns x (n×width fp32) as the GEMM operand for weights of type
// dt: x itself for fp32, a bf16 copy for bf16.
func (e *Engine) operand(s *scratch, x buf, n, width int, dt cuda.DataType) (uintptr, error) {
	if dt == cuda.R32F {
		return x.p(), nil
	}
	if err := e.grow(&s.act, n*width, 2); err != nil {
		return 0, err
	}
	return s.act.p(), kernels.F32ToBF16(e, s.act.p(), x.p(), n*width)
}

// forward sets y = x·Wᵀ + b. x: n×d_in, y: n×d_out (fp32).
func (l *frozenLinear) forward(e *Engine, s *scratch, x buf, n int, y buf) error {
	a, err := e.operand(s, x, n, l.dIn, l.dtype)
	if err != nil {
		return err
	}
	err = e.b.gemm(false, true, n, l.dOut, l.dIn, 1, cuda.DevicePtr(a), l.dtype, l.dIn, l.w.ptr, l.dtype, l.dIn, 0, y.ptr, cuda.R32F, l.dOut)
	if err != nil {
		return err
	}
	if l.bias.n > 0 {
		return kernels.BiasAdd(e, y.p(), l.bias.p(), n, l.dOut)
	}
	return nil
}

// backwardInput adds dy·W to dx. dy: n×d_out, dx: n×d_in. The weight is
// frozen: no weight gradient.
func (l *frozenLinear) backwardInput(e *Engine, s *scratch, dy buf, n int, dx buf) error {
	a, err := e.operand(s, dy, n, l.dOut, l.dtype)
	if err != nil {
		return err
	}
	return e.b.gemm(false, false, n, l.dIn, l.dOut, 1, cuda.DevicePtr(a), l.dtype, l.dOut, l.w.ptr, l.dtype, l.dIn, 1, dx.ptr, cuda.R32F, l.dIn)
}

func (l *frozenLinear) free(e *Engine) {
	e.release(&l.w)
	e.release(&l.bias)
}

// gemm32 is a row-major fp32 GEMM on device buffers with compute.Gemm's
// argument order: C (m×n) = alpha·op(A)·op(B) + beta·C.
func (e *Engine) gemm32(tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, b uintptr, ldb int, beta float32, c uintptr, ldc int) error {
	return e.b.gemm(tA, tB, m, n, k, alpha, cuda.DevicePtr(a), cuda.R32F, lda, cuda.DevicePtr(b), cuda.R32F, ldb, beta, cuda.DevicePtr(c), cuda.R32F, ldc)
}
