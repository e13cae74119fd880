//go:build !nocuda

package cuda

import "github.com/ebitengine/purego"

// call invokes a C function that returns a 32-bit status (CUresult,
// cublasStatus_t, nvrtcResult are all C enums) and takes only integer and
// pointer arguments, which is every function this package binds: floats are
// always passed by pointer (alpha, beta, the elapsed-time result).
//
// go:uintptrescapes makes every unsafe.Pointer converted to uintptr in a
// caller's argument list escape to the heap and stay alive until call returns,
// which is the same guarantee purego.SyscallN gives its own callers. The Go
// heap does not move objects, so such pointers stay valid while C runs.
//
//go:uintptrescapes
func call(fn uintptr, args ...uintptr) int {
	r, _, _ := purego.SyscallN(fn, args...)
	return int(int32(uint32(r))) // the upper half of the return register is undefined for a C int
}

// callPtr invokes a C function that returns a pointer (const char* in practice).
//
//go:uintptrescapes
func callPtr(fn uintptr, args ...uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, args...)
	return r
}
