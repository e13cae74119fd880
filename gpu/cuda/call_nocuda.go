//go:build nocuda

package cuda

// Built with -tags nocuda (a static binary without the run-time CUDA
// binding): dlopen always fails (dl_nocuda.go), so no function pointer ever
// reaches these.

func call(fn uintptr, args ...uintptr) int { panic("cuda: built with -tags nocuda") }

func callPtr(fn uintptr, args ...uintptr) uintptr { panic("cuda: built with -tags nocuda") }
