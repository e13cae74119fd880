// Package cuda binds the NVIDIA CUDA driver API (libcuda), cuBLAS and NVRTC
// at run time, for the GPU engine in package gpu.
//
// It provides what that engine needs and no more: library discovery (Load),
// devices and their primary contexts (Open), device memory (Alloc, Free and
// a caching allocator, Pool), streams and events, copies, modules and kernel
// launches (LoadModule, Launch), run-time compilation of CUDA C (Compile),
// and row-major GEMMs through cuBLAS (BLAS.Gemm, BLAS.GemmStridedBatched).
//
// # No cgo
//
// The libraries are opened with dlopen and called through
// github.com/ebitengine/purego, not cgo, so the package (and everything above
// it) builds with CGO_ENABLED=0 on any machine, with no CUDA toolkit or
// headers installed, and a machine without a GPU gets an error that says what
// is missing, not a build failure. The existing Go binding, gorgonia.org/cu,
// is cgo: it needs cuda.h (a CUDA toolkit) on every machine that builds it,
// and it does not build against the headers of CUDA 12 or 13, so it is not
// an option. The bound ABIs are the versioned ones cuda.h maps
// names to (cuMemAlloc_v2, cuStreamDestroy_v2, cuEventElapsedTime_v2 where
// exported, ...) and cuBLAS's handle API (cublasCreate_v2, cublasGemmEx).
// Every bound function takes integers and pointers only (floats go by
// pointer), so purego.SyscallN calls them directly, without reflection.
//
// # Discovery
//
// Load runs once per process and finds libcuda.so.1, libcublas.so.13 or .12
// (loading libcublasLt.so.N from the same folder first) and libnvrtc.so.13
// or .12 (loading libnvrtc-builtins.so.N.M from the same folder first). It
// looks, in order, in:
//
//  1. $KRONFED_CUDA_PATH, a list of folders separated by ':';
//  2. $CUDA_HOME and $CUDA_PATH: lib64, lib, targets/*/lib;
//  3. pip wheels: lib/python3.*/{site,dist}-packages/nvidia/*/lib under
//     $VIRTUAL_ENV, $CONDA_PREFIX, /usr/local, /usr and ~/.local (CUDA 12
//     wheels use nvidia/cublas/lib and nvidia/cuda_nvrtc/lib, CUDA 13 wheels
//     nvidia/cu13/lib), and $CONDA_PREFIX/lib;
//  4. /usr/local/cuda/lib64 and /usr/local/cuda/targets/*/lib;
//  5. the system folders (/usr/lib/x86_64-linux-gnu, /lib/x86_64-linux-gnu,
//     /usr/lib64, /usr/lib, /usr/lib/wsl/lib);
//  6. the bare soname through the dynamic linker (ld.so.cache, LD_LIBRARY_PATH).
//
// The first file that loads wins; within a folder the newer major version is
// preferred, and cuBLAS and NVRTC versions newer than the driver supports are
// skipped (CUDA 13 libraries need a CUDA 13 driver, 580 or later). When
// nothing loads, the *LoadError names the library, every place looked, what
// the dynamic loader said, and KRONFED_CUDA_PATH. So to use the CUDA 13
// libraries of a PyTorch environment, either activate it (VIRTUAL_ENV) or
//
//	export KRONFED_CUDA_PATH=$(python -c 'import nvidia; print(list(nvidia.__path__)[0])')/cu13/lib
//
// # Threads
//
// A CUDA context is current per OS thread, and goroutines migrate between
// threads. Every Context method (and every method of a Stream, Event,
// Module, Function or BLAS made from it) therefore locks the goroutine to its
// thread and makes the context current for the duration of the call, so
// these values may be used from any goroutine. They are not synchronized:
// concurrent calls on one Context are the caller's to serialize (the engine
// drives one device from one goroutine at a time). NVRTC needs no context.
//
// Device memory is a DevicePtr (a CUdeviceptr), never a Go pointer; host
// memory passed to copies is ordinary Go memory, which the driver stages
// before an upload returns and fills before a download returns.
package cuda
