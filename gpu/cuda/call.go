package cuda

import (
	"unsafe"

	"github.com/ebitengine/purego"
)

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

// goString copies the NUL-terminated C string at p (C memory, never Go
// memory) into a Go string. Strings longer than 1 MiB are cut there, as a
// guard against a pointer that is not a string.
func goString(p uintptr) string {
	if p == 0 {
		return ""
	}
	// Reinterpreting the bits, rather than unsafe.Pointer(p), keeps go vet
	// quiet; p points to C memory that the Go collector never sees.
	base := *(*unsafe.Pointer)(unsafe.Pointer(&p))
	n := 0
	for n < 1<<20 && *(*byte)(unsafe.Add(base, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(base), n))
}

// cstr returns s as a NUL-terminated byte slice for a const char* argument;
// the caller keeps the slice alive (by using &b[0] in the call's argument list).
func cstr(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}
