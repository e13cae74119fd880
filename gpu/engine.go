package gpu

import (
	"fmt"
	"log/slog"
	"unsafe"

	"github.com/kronfed/kronfed/gpu/cuda"
	"github.com/kronfed/kronfed/gpu/kernels"
)

// Precision is how the frozen base weights are stored on the device.
// Adapters, their gradients, the optimizer state and every activation are
// fp32 in both.
type Precision int

const (
	// BF16 stores frozen weights as bfloat16 (half the memory: a 7B base is
	// 14 GB) and multiplies them with bf16 copies of the activations,
	// accumulating in fp32, as PyTorch's bf16 autocast does.
	BF16 Precision = iota
	// FP32 keeps frozen weights in fp32 and multiplies in fp32 (no TF32):
	// the engine then matches the CPU engine to rounding.
	FP32
)

func (p Precision) String() string {
	if p == FP32 {
		return "fp32"
	}
	return "bf16"
}

// ParsePrecision accepts "bf16" and "fp32".
func ParsePrecision(s string) (Precision, error) {
	switch s {
	case "bf16", "bfloat16":
		return BF16, nil
	case "fp32", "float32":
		return FP32, nil
	}
	return 0, fmt.Errorf("unknown precision %q (want bf16 or fp32)", s)
}

// Options configure an Engine. The zero value is bf16 frozen weights and the
// default kernel cache.
type Options struct {
	Precision Precision
	// KernelCache is the folder of compiled kernels; "" takes
	// $KRONFED_KERNEL_CACHE or the user cache folder (kernels.DefaultCache).
	KernelCache string
	Log         *slog.Logger // nil: slog.Default()
	// Masks is where the runs' dropout masks come from (Engine.Masks).
	Masks DropoutSource
}

// Engine is one device's CUDA state: its context, one stream that every
// kernel, copy and cuBLAS call of the engine is ordered on, a cuBLAS handle,
// a caching allocator and the compiled kernels. An Engine is not safe for
// concurrent use: runs that share it take turns (one stream keeps their work
// ordered).
type Engine struct {
	Libs      *cuda.Libs
	Precision Precision
	// Masks is where new runs draw dropout masks: DeviceDropout (fast, the
	// default) or HostDropout (the CPU engine's masks from the same seed,
	// so a device run reproduces a CPU run's numbers).
	Masks DropoutSource
	b     backend
}

// backend is the device an Engine computes on: cudaBackend, or in this
// package's tests the kernels' CPU emulator (gpu/internal/emu), which checks
// the engine's logic where there is no GPU. Every call is ordered after the
// ones before it.
type backend interface {
	kernels.Launcher
	alloc(bytes int64) (cuda.DevicePtr, error)
	free(p cuda.DevicePtr) error
	upload(dst cuda.DevicePtr, src unsafe.Pointer, bytes int64) error
	// download waits for the work queued before it.
	download(dst unsafe.Pointer, src cuda.DevicePtr, bytes int64) error
	memset(dst cuda.DevicePtr, bytes int64) error
	copy(dst, src cuda.DevicePtr, bytes int64) error
	// gemm is cuda.BLAS.Gemm: row-major C (m×n) = alpha·op(A)·op(B) + beta·C.
	gemm(tA, tB bool, m, n, k int, alpha float32, a cuda.DevicePtr, at cuda.DataType, lda int,
		b cuda.DevicePtr, bt cuda.DataType, ldb int, beta float32, c cuda.DevicePtr, ct cuda.DataType, ldc int) error
	setMaxDynamicShared(entry string, bytes int) error
	sync() error
	device() cuda.Device
	memStats() cuda.PoolStats
	resetPeak()
	// memInfo is the device's free and total memory (cuMemGetInfo).
	memInfo() (free, total int64, err error)
	close() error
}

// Open starts an engine on device ("cuda", "cuda:N", "gpu", "gpu:N"). It
// loads the CUDA libraries, compiles (or takes from the cache) every kernel
// for the device's architecture, and returns one error naming what is missing
// when any of that fails.
func Open(device string, opt Options) (*Engine, error) {
	ordinal, err := cuda.ParseDevice(device)
	if err != nil {
		return nil, err
	}
	libs, err := cuda.Load()
	if err != nil {
		return nil, err
	}
	ctx, err := cuda.Open(ordinal)
	if err != nil {
		return nil, err
	}
	b := &cudaBackend{ctx: ctx, funcs: map[string]*cuda.Function{}}
	if err := b.start(libs, opt); err != nil {
		b.close()
		return nil, err
	}
	return &Engine{Libs: libs, Precision: opt.Precision, Masks: opt.Masks, b: b}, nil
}

// cudaBackend is the real device: a context, one stream, a cuBLAS handle on
// it, a caching allocator and the compiled kernels.
type cudaBackend struct {
	ctx     *cuda.Context
	stream  *cuda.Stream
	blas    *cuda.BLAS
	pool    *cuda.Pool
	modules []*cuda.Module
	funcs   map[string]*cuda.Function
}

func (b *cudaBackend) start(libs *cuda.Libs, opt Options) error {
	var err error
	if b.stream, err = b.ctx.NewStream(); err != nil {
		return err
	}
	if b.blas, err = b.ctx.NewBLAS(b.stream); err != nil {
		return err
	}
	b.pool = cuda.NewPool(b.ctx)
	log := opt.Log
	if log == nil {
		log = slog.Default()
	}
	cache, err := openCache(opt.KernelCache)
	if err != nil {
		return err
	}
	return b.loadKernels(libs, cache, log)
}

func openCache(dir string) (*kernels.Cache, error) {
	if dir != "" {
		return &kernels.Cache{Dir: dir}, nil
	}
	return kernels.DefaultCache()
}

// loadKernels compiles every kernel source for this device with NVRTC, or
// loads the image an earlier run cached (keyed by source hash, device
// architecture, driver and NVRTC versions).
func (b *cudaBackend) loadKernels(libs *cuda.Libs, cache *kernels.Cache, log *slog.Logger) error {
	dev := b.ctx.Device()
	arch := fmt.Sprintf("sm_%d%d", dev.Major, dev.Minor)
	for _, src := range kernels.Sources() {
		key := kernels.CacheKey(src.Hash, arch, libs.DriverVersion, libs.NVRTCMajor, libs.NVRTCMinor)
		image, ok := cache.Get(key)
		if !ok {
			var target string
			var err error
			image, target, err = cuda.Compile(src.Code, src.Name, dev.Major, dev.Minor)
			if err != nil {
				return err
			}
			log.Info("gpu: compiled kernels", "source", src.Name, "target", target)
			if err := cache.Put(key, image); err != nil {
				// A read-only cache costs a compile next time, nothing more.
				log.Warn("gpu: kernel cache not written", "err", err)
			}
		}
		mod, err := b.ctx.LoadModule(image)
		if err != nil {
			return fmt.Errorf("gpu: load %s on %s: %w", src.Name, dev, err)
		}
		b.modules = append(b.modules, mod)
		for _, name := range src.Entries {
			f, err := mod.Function(name)
			if err != nil {
				return fmt.Errorf("gpu: %s: %w", src.Name, err)
			}
			b.funcs[name] = f
		}
	}
	return nil
}

func (b *cudaBackend) Launch(entry string, grid, block [3]uint32, sharedBytes uint32, args ...any) error {
	f, ok := b.funcs[entry]
	if !ok {
		return fmt.Errorf("gpu: no kernel %q in the compiled sources", entry)
	}
	if err := b.stream.Launch(f, grid, block, sharedBytes, args...); err != nil {
		return fmt.Errorf("gpu: launch %s: %w", entry, err)
	}
	return nil
}

func (b *cudaBackend) setMaxDynamicShared(entry string, bytes int) error {
	f, ok := b.funcs[entry]
	if !ok {
		return fmt.Errorf("gpu: no kernel %q in the compiled sources", entry)
	}
	return f.SetMaxDynamicShared(bytes)
}

func (b *cudaBackend) alloc(bytes int64) (cuda.DevicePtr, error) { return b.pool.Get(bytes) }
func (b *cudaBackend) free(p cuda.DevicePtr) error               { return b.pool.Put(p) }
func (b *cudaBackend) upload(dst cuda.DevicePtr, src unsafe.Pointer, bytes int64) error {
	return b.stream.CopyHtoD(dst, src, bytes)
}
func (b *cudaBackend) download(dst unsafe.Pointer, src cuda.DevicePtr, bytes int64) error {
	if err := b.stream.CopyDtoH(dst, src, bytes); err != nil {
		return err
	}
	return b.stream.Sync()
}
func (b *cudaBackend) memset(dst cuda.DevicePtr, bytes int64) error {
	return b.stream.Memset(dst, bytes)
}
func (b *cudaBackend) copy(dst, src cuda.DevicePtr, bytes int64) error {
	return b.stream.CopyDtoD(dst, src, bytes)
}
func (b *cudaBackend) gemm(tA, tB bool, m, n, k int, alpha float32, a cuda.DevicePtr, at cuda.DataType, lda int,
	bm cuda.DevicePtr, bt cuda.DataType, ldb int, beta float32, c cuda.DevicePtr, ct cuda.DataType, ldc int) error {
	return b.blas.Gemm(tA, tB, m, n, k, alpha, a, at, lda, bm, bt, ldb, beta, c, ct, ldc)
}
func (b *cudaBackend) sync() error              { return b.stream.Sync() }
func (b *cudaBackend) device() cuda.Device      { return b.ctx.Device() }
func (b *cudaBackend) memStats() cuda.PoolStats { return b.pool.Stats() }
func (b *cudaBackend) resetPeak()               { b.pool.ResetPeak() }
func (b *cudaBackend) memInfo() (free, total int64, err error) {
	return b.ctx.MemInfo()
}

// close frees everything the backend holds; what it never made is skipped.
func (b *cudaBackend) close() error {
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	if b.stream != nil {
		keep(b.stream.Sync())
	}
	for _, m := range b.modules {
		keep(m.Unload())
	}
	if b.pool != nil {
		keep(b.pool.Close())
	}
	if b.blas != nil {
		keep(b.blas.Destroy())
	}
	if b.stream != nil {
		keep(b.stream.Destroy())
	}
	if b.ctx != nil {
		keep(b.ctx.Close())
	}
	return first
}

// Launch runs a compiled kernel on the engine's stream (kernels.Launcher).
func (e *Engine) Launch(entry string, grid, block [3]uint32, sharedBytes uint32, args ...any) error {
	return e.b.Launch(entry, grid, block, sharedBytes, args...)
}

// SetMaxDynamicShared lets a kernel use more than the default 48 KiB of
// dynamic shared memory.
func (e *Engine) SetMaxDynamicShared(entry string, bytes int) error {
	return e.b.setMaxDynamicShared(entry, bytes)
}

// Device describes the engine's GPU.
func (e *Engine) Device() cuda.Device { return e.b.device() }

// Sync waits for everything queued on the engine's stream and returns the
// first asynchronous error.
func (e *Engine) Sync() error { return e.b.sync() }

// MemStats is the caching allocator's account.
func (e *Engine) MemStats() cuda.PoolStats { return e.b.memStats() }

// ResetPeak starts MemStats' peaks again from what is held now.
func (e *Engine) ResetPeak() { e.b.resetPeak() }

// Close frees everything the engine holds. Buffers still held by runs are
// freed with the context.
func (e *Engine) Close() error { return e.b.close() }

// buf is a device array of float32 (or, for bf16, uint16) elements from the
// engine's pool. The zero buf is empty.
type buf struct {
	ptr   cuda.DevicePtr
	n     int // elements
	bytes int64
}

func (b buf) p() uintptr { return uintptr(b.ptr) }

// ptrOffset is the byte offset of float32 element i.
func ptrOffset(i int) cuda.DevicePtr { return cuda.DevicePtr(i * 4) }

// grow makes b hold at least n elements of size elem bytes, reallocating
// (contents lost) only when it is too small, so a run's buffers settle after
// its largest batch, like model's grow.
func (e *Engine) grow(b *buf, n int, elem int64) error {
	need := int64(n) * elem
	if b.ptr != 0 && b.bytes >= need {
		b.n = n
		return nil
	}
	e.release(b)
	if n == 0 {
		return nil
	}
	p, err := e.b.alloc(need)
	if err != nil {
		return err
	}
	*b = buf{ptr: p, n: n, bytes: need}
	return nil
}

// release returns b's memory to the pool.
func (e *Engine) release(b *buf) {
	if b.ptr != 0 {
		_ = e.b.free(b.ptr) // only fails for pointers the pool never gave out
	}
	*b = buf{}
}

// upload copies host data into a fresh (or large enough) device buffer.
func upload[T float32 | int32 | uint16 | uint64](e *Engine, b *buf, data []T) error {
	var zero T
	if err := e.grow(b, len(data), int64(unsafe.Sizeof(zero))); err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	return e.b.upload(b.ptr, unsafe.Pointer(&data[0]), int64(len(data))*int64(unsafe.Sizeof(zero)))
}

// download copies a device buffer's first len(dst) elements to dst,
// waiting for the stream.
func download[T float32 | int32 | uint16 | uint64](e *Engine, dst []T, b buf) error {
	if len(dst) > b.n {
		return fmt.Errorf("gpu: download of %d elements from a buffer of %d", len(dst), b.n)
	}
	if len(dst) == 0 {
		return e.Sync()
	}
	var zero T
	return e.b.download(unsafe.Pointer(&dst[0]), b.ptr, int64(len(dst))*int64(unsafe.Sizeof(zero)))
}

// zero clears a device buffer.
func (e *Engine) zero(b buf, elem int64) error {
	if b.n == 0 {
		return nil
	}
	return e.b.memset(b.ptr, int64(b.n)*elem)
}

// errs keeps the first error of a sequence of launches, so a layer's forward
// reads as the list of its kernels (as llm.c's cudaCheck does, without
// exiting). Launches are asynchronous anyway: a failure inside a kernel
// surfaces at the next synchronization.
type errs struct{ err error }

func (s *errs) do(err error) {
	if s.err == nil {
		s.err = err
	}
}
