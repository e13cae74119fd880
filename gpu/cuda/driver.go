package cuda

import (
	"fmt"
	"unsafe"
)

// driverFuncs are the libcuda entry points. Where cuda.h maps a name to a
// versioned symbol (#define cuMemAlloc cuMemAlloc_v2), the versioned one is
// bound: the unversioned symbols are the pre-CUDA-4 32-bit ABIs.
type driverFuncs struct {
	cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName uintptr
	cuDeviceGetAttribute, cuDeviceTotalMem                                     uintptr
	cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease, cuCtxSetCurrent       uintptr
	cuCtxSynchronize, cuMemGetInfo, cuMemAlloc, cuMemFree                      uintptr
	cuMemcpyHtoDAsync, cuMemcpyDtoHAsync, cuMemcpyDtoDAsync, cuMemsetD8Async   uintptr
	cuStreamCreate, cuStreamSynchronize, cuStreamDestroy, cuStreamWaitEvent    uintptr
	cuEventCreate, cuEventRecord, cuEventSynchronize, cuEventElapsedTime       uintptr
	cuEventDestroy, cuModuleLoadData, cuModuleGetFunction, cuModuleUnload      uintptr
	cuLaunchKernel, cuFuncSetAttribute, cuGetErrorName, cuGetErrorString       uintptr
}

func (f *driverFuncs) symbols() []symbol {
	return []symbol{
		sym(&f.cuGetErrorName, "cuGetErrorName"),
		sym(&f.cuGetErrorString, "cuGetErrorString"),
		sym(&f.cuInit, "cuInit"),
		sym(&f.cuDriverGetVersion, "cuDriverGetVersion"),
		sym(&f.cuDeviceGetCount, "cuDeviceGetCount"),
		sym(&f.cuDeviceGet, "cuDeviceGet"),
		sym(&f.cuDeviceGetName, "cuDeviceGetName"),
		sym(&f.cuDeviceGetAttribute, "cuDeviceGetAttribute"),
		sym(&f.cuDeviceTotalMem, "cuDeviceTotalMem_v2"),
		sym(&f.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
		sym(&f.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"),
		sym(&f.cuCtxSetCurrent, "cuCtxSetCurrent"),
		sym(&f.cuCtxSynchronize, "cuCtxSynchronize"),
		sym(&f.cuMemGetInfo, "cuMemGetInfo_v2"),
		sym(&f.cuMemAlloc, "cuMemAlloc_v2"),
		sym(&f.cuMemFree, "cuMemFree_v2"),
		sym(&f.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"),
		sym(&f.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"),
		sym(&f.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"),
		sym(&f.cuMemsetD8Async, "cuMemsetD8Async"),
		sym(&f.cuStreamCreate, "cuStreamCreate"),
		sym(&f.cuStreamSynchronize, "cuStreamSynchronize"),
		sym(&f.cuStreamDestroy, "cuStreamDestroy_v2"),
		sym(&f.cuStreamWaitEvent, "cuStreamWaitEvent"),
		sym(&f.cuEventCreate, "cuEventCreate"),
		sym(&f.cuEventRecord, "cuEventRecord"),
		sym(&f.cuEventSynchronize, "cuEventSynchronize"),
		// CUDA 12.8 added cuEventElapsedTime_v2 (same signature); CUDA 13's
		// cuda.h maps the name to it. Older drivers (and some Jetson ones)
		// export only the original.
		sym(&f.cuEventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime"),
		sym(&f.cuEventDestroy, "cuEventDestroy_v2"),
		sym(&f.cuModuleLoadData, "cuModuleLoadData"),
		sym(&f.cuModuleGetFunction, "cuModuleGetFunction"),
		sym(&f.cuModuleUnload, "cuModuleUnload"),
		sym(&f.cuLaunchKernel, "cuLaunchKernel"),
		sym(&f.cuFuncSetAttribute, "cuFuncSetAttribute"),
	}
}

// Enum values from cuda.h.
const (
	attrMaxSharedPerBlockOptin = 97 // CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
	attrMultiprocessorCount    = 16 // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
	attrComputeCapMajor        = 75 // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	attrComputeCapMinor        = 76 // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR

	funcAttrMaxDynamicShared = 8 // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
	streamNonBlocking        = 1 // CU_STREAM_NON_BLOCKING
	eventDefault             = 0 // CU_EVENT_DEFAULT
)

// cuError describes a failed driver call, asking the driver for the code's
// name and description.
func cuError(op string, r int) *Error {
	e := &Error{Op: op, Code: r, API: "CUDA"}
	var p uintptr
	if cu.cuGetErrorName != 0 && call(cu.cuGetErrorName, uintptr(r), uintptr(unsafe.Pointer(&p))) == 0 {
		e.Name = goString(p)
	}
	if e.Name == "" {
		e.Name = fmt.Sprintf("CUresult %d", r)
	}
	p = 0
	if cu.cuGetErrorString != 0 && call(cu.cuGetErrorString, uintptr(r), uintptr(unsafe.Pointer(&p))) == 0 {
		e.Desc = goString(p)
	}
	return e
}

// checkCU turns a driver status into nil or an *Error for op.
func checkCU(op string, r int) error {
	if r == 0 {
		return nil
	}
	return cuError(op, r)
}
