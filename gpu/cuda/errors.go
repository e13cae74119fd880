package cuda

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a failed call into the driver, cuBLAS or NVRTC.
//
// Error() reads like
// "gpu: cuMemAlloc(2.0 GiB) on device 0 (NVIDIA H100): CUDA_ERROR_OUT_OF_MEMORY: out of memory".
type Error struct {
	Op     string // what was being done and where: "cuMemAlloc(2.0 GiB) on device 0 (NVIDIA H100)"
	Code   int    // the library's status code (CUresult, cublasStatus_t or nvrtcResult)
	Name   string // the code's name: "CUDA_ERROR_OUT_OF_MEMORY"
	Desc   string // the library's description: "out of memory"
	API    string // "CUDA", "cuBLAS" or "NVRTC": which library's codes Code and Name are
	Detail string // extra context, e.g. "free 1.2 GiB of 79.1 GiB"; may be empty
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("gpu: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Name)
	if e.Desc != "" && e.Desc != e.Name {
		b.WriteString(": ")
		b.WriteString(e.Desc)
	}
	if e.Detail != "" {
		b.WriteString(" (")
		b.WriteString(e.Detail)
		b.WriteString(")")
	}
	return b.String()
}

// Status codes this package acts on (cuda.h, cublas_api.h).
const (
	cudaErrorOutOfMemory    = 2   // CUDA_ERROR_OUT_OF_MEMORY
	cudaErrorNoDevice       = 100 // CUDA_ERROR_NO_DEVICE
	cublasStatusAllocFailed = 3   // CUBLAS_STATUS_ALLOC_FAILED
)

// IsOutOfMemory reports whether err (or an error it wraps) is the driver's
// CUDA_ERROR_OUT_OF_MEMORY or cuBLAS's CUBLAS_STATUS_ALLOC_FAILED.
func IsOutOfMemory(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.API {
	case "CUDA":
		return e.Code == cudaErrorOutOfMemory
	case "cuBLAS":
		return e.Code == cublasStatusAllocFailed
	}
	return false
}

// FormatBytes renders a size the way the error messages and Device.String
// show it: "512 B", "4.0 KiB", "2.0 GiB".
func FormatBytes(n int64) string {
	const (
		kib = 1 << 10
		mib = 1 << 20
		gib = 1 << 30
	)
	switch {
	case n < 0:
		return fmt.Sprintf("%d B", n)
	case n < kib:
		return fmt.Sprintf("%d B", n)
	case n < mib:
		return fmt.Sprintf("%.1f KiB", float64(n)/kib)
	case n < gib:
		return fmt.Sprintf("%.1f MiB", float64(n)/mib)
	default:
		return fmt.Sprintf("%.1f GiB", float64(n)/gib)
	}
}
