package cuda

import (
	"errors"
	"fmt"
	"unsafe"
)

// blasFuncs are the cuBLAS entry points (cublas_api.h: the _v2 names are the
// handle-based API the unversioned macros map to).
type blasFuncs struct {
	cublasCreate, cublasDestroy, cublasSetStream, cublasSetMathMode uintptr
	cublasGetStatusString, cublasGetProperty                        uintptr
	cublasGemmEx, cublasGemmStridedBatchedEx                        uintptr
}

func (f *blasFuncs) symbols() []symbol {
	return []symbol{
		sym(&f.cublasCreate, "cublasCreate_v2"),
		sym(&f.cublasDestroy, "cublasDestroy_v2"),
		sym(&f.cublasSetStream, "cublasSetStream_v2"),
		sym(&f.cublasSetMathMode, "cublasSetMathMode"),
		sym(&f.cublasGetStatusString, "cublasGetStatusString"),
		// The version is read at load time, before any handle exists;
		// cublasGetVersion_v2 wants a handle, cublasGetProperty does not.
		sym(&f.cublasGetProperty, "cublasGetProperty"),
		sym(&f.cublasGemmEx, "cublasGemmEx"),
		sym(&f.cublasGemmStridedBatchedEx, "cublasGemmStridedBatchedEx"),
	}
}

// DataType is a cudaDataType (library_types.h) for GEMM operands.
type DataType int

const (
	R32F  DataType = 0  // CUDA_R_32F: float32
	R16F  DataType = 2  // CUDA_R_16F: IEEE half
	R16BF DataType = 14 // CUDA_R_16BF: bfloat16
)

func (t DataType) String() string {
	switch t {
	case R32F:
		return "f32"
	case R16F:
		return "f16"
	case R16BF:
		return "bf16"
	}
	return fmt.Sprintf("DataType(%d)", int(t))
}

// Size is the element size in bytes (0 for an unknown type).
func (t DataType) Size() int {
	switch t {
	case R32F:
		return 4
	case R16F, R16BF:
		return 2
	}
	return 0
}

const (
	cublasCompute32F   = 68 // CUBLAS_COMPUTE_32F
	cublasGemmDefault  = -1 // CUBLAS_GEMM_DEFAULT
	cublasDefaultMath  = 0  // CUBLAS_DEFAULT_MATH
	cublasTF32TensorOp = 3  // CUBLAS_TF32_TENSOR_OP_MATH
)

// algoDefault is CUBLAS_GEMM_DEFAULT as a C int argument: -1's bit pattern,
// of which the callee reads the low 32 bits.
var algoDefault = uintptr(int64(cublasGemmDefault) & 0xffffffff)

// cublasStatusNames are cublasStatus_t's names (cublas_api.h);
// cublasGetStatusString gives only the description.
var cublasStatusNames = map[int]string{
	0: "CUBLAS_STATUS_SUCCESS", 1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED",
	7: "CUBLAS_STATUS_INVALID_VALUE", 8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED", 14: "CUBLAS_STATUS_INTERNAL_ERROR", 15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

func checkBLAS(op string, r int) error {
	if r == 0 {
		return nil
	}
	e := &Error{Op: op, Code: r, API: "cuBLAS", Name: cublasStatusNames[r]}
	if e.Name == "" {
		e.Name = fmt.Sprintf("cublasStatus %d", r)
	}
	if bl.cublasGetStatusString != 0 {
		e.Desc = goString(callPtr(bl.cublasGetStatusString, uintptr(r)))
	}
	return e
}

// BLAS is a cuBLAS handle bound to one stream: its GEMMs are queued on that
// stream. Use one BLAS per stream.
type BLAS struct {
	stream *Stream
	handle uintptr // cublasHandle_t
}

// NewBLAS creates a cuBLAS handle whose work goes on s, with TF32 off
// (CUBLAS_DEFAULT_MATH: fp32 GEMMs in full fp32).
func (c *Context) NewBLAS(s *Stream) (*BLAS, error) {
	if s == nil || s.ctx != c {
		return nil, errors.New("gpu: NewBLAS needs a stream of the same context")
	}
	b := &BLAS{stream: s}
	err := c.do(func() error {
		where := " on " + c.dev.where()
		if err := checkBLAS("cublasCreate"+where, call(bl.cublasCreate, uintptr(unsafe.Pointer(&b.handle)))); err != nil {
			return err
		}
		if err := checkBLAS("cublasSetStream"+where, call(bl.cublasSetStream, b.handle, s.handle)); err != nil {
			call(bl.cublasDestroy, b.handle)
			return err
		}
		if err := checkBLAS("cublasSetMathMode"+where, call(bl.cublasSetMathMode, b.handle, cublasDefaultMath)); err != nil {
			call(bl.cublasDestroy, b.handle)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Destroy releases the handle. Destroying twice is a no-op.
func (b *BLAS) Destroy() error {
	if b == nil || b.handle == 0 {
		return nil
	}
	h := b.handle
	b.handle = 0
	return b.stream.ctx.do(func() error {
		return checkBLAS("cublasDestroy on "+b.stream.ctx.dev.where(), call(bl.cublasDestroy, h))
	})
}

// SetTF32 lets fp32 GEMMs use TF32 tensor cores (CUBLAS_TF32_TENSOR_OP_MATH:
// inputs rounded to 10-bit mantissas, fp32 accumulation) or not
// (CUBLAS_DEFAULT_MATH, the default).
func (b *BLAS) SetTF32(on bool) error {
	mode := uintptr(cublasDefaultMath)
	if on {
		mode = cublasTF32TensorOp
	}
	return b.stream.ctx.do(func() error {
		return checkBLAS("cublasSetMathMode on "+b.stream.ctx.dev.where(), call(bl.cublasSetMathMode, b.handle, mode))
	})
}

func checkTypes(a, bt, c DataType) error {
	if a.Size() == 0 || bt.Size() == 0 || c.Size() == 0 {
		return fmt.Errorf("gpu: gemm types %v, %v → %v: want R32F, R16F or R16BF", a, bt, c)
	}
	if a != bt {
		return fmt.Errorf("gpu: gemm inputs A %v and B %v: must have the same type", a, bt)
	}
	if c != R32F && c != a {
		return fmt.Errorf("gpu: gemm output %v for %v inputs: want R32F or %v", c, a, a)
	}
	return nil
}

// Gemm queues a ROW-MAJOR GEMM on the handle's stream, with compute.Gemm's
// conventions:
//
//	C (m×n, ldc ≥ n) = alpha·op(A)·op(B) + beta·C
//	op(A) m×k: A is m×k (lda ≥ k), or k×m (lda ≥ m) when transA
//	op(B) k×n: B is k×n (ldb ≥ n), or n×k (ldb ≥ k) when transB
//
// A and B have the same DataType; C is R32F or the inputs' type; the
// arithmetic is fp32 (CUBLAS_COMPUTE_32F). m or n = 0 is a no-op. It runs as
// the column-major call Cᵀ = op(B)ᵀ·op(A)ᵀ (see gemm_layout.go).
func (b *BLAS) Gemm(transA, transB bool, m, n, k int, alpha float32, A DevicePtr, aType DataType, lda int,
	B DevicePtr, bType DataType, ldb int, beta float32, C DevicePtr, cType DataType, ldc int) error {
	if err := checkTypes(aType, bType, cType); err != nil {
		return err
	}
	g, err := toColMajor(rowGemm{transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, batch: 1})
	if err != nil {
		return err
	}
	if m == 0 || n == 0 {
		return nil
	}
	return b.stream.ctx.do(func() error {
		// Pointer mode is host: cuBLAS reads alpha and beta before returning.
		r := call(bl.cublasGemmEx, b.handle, uintptr(g.opA), uintptr(g.opB),
			uintptr(g.m), uintptr(g.n), uintptr(g.k),
			uintptr(unsafe.Pointer(&alpha)),
			uintptr(B), uintptr(bType), uintptr(g.lda),
			uintptr(A), uintptr(aType), uintptr(g.ldb),
			uintptr(unsafe.Pointer(&beta)),
			uintptr(C), uintptr(cType), uintptr(g.ldc),
			cublasCompute32F, algoDefault)
		if r != 0 {
			return checkBLAS(fmt.Sprintf("cublasGemmEx(%s, m=%d n=%d k=%d, transA=%v transB=%v) on %s",
				aType, m, n, k, transA, transB, b.stream.ctx.dev.where()), r)
		}
		return nil
	})
}

// GemmStridedBatched is Gemm for batch problems: problem i uses
// A + i·strideA, B + i·strideB and C + i·strideC (strides in elements of
// each operand's type). Input strides may be 0 (one matrix for every
// problem); C's must keep the outputs apart. batch = 0 is a no-op.
func (b *BLAS) GemmStridedBatched(transA, transB bool, m, n, k int, alpha float32,
	A DevicePtr, aType DataType, lda int, strideA int64, B DevicePtr, bType DataType, ldb int, strideB int64,
	beta float32, C DevicePtr, cType DataType, ldc int, strideC int64, batch int) error {
	if err := checkTypes(aType, bType, cType); err != nil {
		return err
	}
	g, err := toColMajor(rowGemm{transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc,
		strideA: strideA, strideB: strideB, strideC: strideC, batch: batch})
	if err != nil {
		return err
	}
	if m == 0 || n == 0 || batch == 0 {
		return nil
	}
	return b.stream.ctx.do(func() error {
		r := call(bl.cublasGemmStridedBatchedEx, b.handle, uintptr(g.opA), uintptr(g.opB),
			uintptr(g.m), uintptr(g.n), uintptr(g.k),
			uintptr(unsafe.Pointer(&alpha)),
			uintptr(B), uintptr(bType), uintptr(g.lda), uintptr(g.strideA),
			uintptr(A), uintptr(aType), uintptr(g.ldb), uintptr(g.strideB),
			uintptr(unsafe.Pointer(&beta)),
			uintptr(C), uintptr(cType), uintptr(g.ldc), uintptr(g.strideC),
			uintptr(batch), cublasCompute32F, algoDefault)
		if r != 0 {
			return checkBLAS(fmt.Sprintf("cublasGemmStridedBatchedEx(%s, m=%d n=%d k=%d batch=%d, transA=%v transB=%v) on %s",
				aType, m, n, k, batch, transA, transB, b.stream.ctx.dev.where()), r)
		}
		return nil
	})
}
