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
}

// Engine is one device's CUDA state: its context, one stream that every
// kernel, copy and cuBLAS call of the engine is ordered on, a cuBLAS handle,
// a caching allocator and the compiled kernels. An Engine is not safe for
// concurrent use: runs that share it take turns (one stream keeps their work
// ordered).
type Engine struct {
	Libs      *cuda.Libs
	Precision Precision

	ctx     *cuda.Context
	stream  *cuda.Stream
	blas    *cuda.BLAS
	pool    *cuda.Pool
	modules []*cuda.Module
	funcs   map[string]*cuda.Function
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
	e := &Engine{Libs: libs, Precision: opt.Precision, ctx: ctx, funcs: map[string]*cuda.Function{}}
	if err := e.start(opt); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Engine) start(opt Options) error {
	var err error
	if e.stream, err = e.ctx.NewStream(); err != nil {
		return err
	}
	if e.blas, err = e.ctx.NewBLAS(e.stream); err != nil {
		return err
	}
	e.pool = cuda.NewPool(e.ctx)
	log := opt.Log
	if log == nil {
		log = slog.Default()
	}
	cache, err := openCache(opt.KernelCache)
	if err != nil {
		return err
	}
	return e.loadKernels(cache, log)
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
func (e *Engine) loadKernels(cache *kernels.Cache, log *slog.Logger) error {
	dev := e.ctx.Device()
	arch := fmt.Sprintf("sm_%d%d", dev.Major, dev.Minor)
	for _, src := range kernels.Sources() {
		key := kernels.CacheKey(src.Hash, arch, e.Libs.DriverVersion, e.Libs.NVRTCMajor, e.Libs.NVRTCMinor)
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
		mod, err := e.ctx.LoadModule(image)
		if err != nil {
			return fmt.Errorf("gpu: load %s on %s: %w", src.Name, dev, err)
		}
		e.modules = append(e.modules, mod)
		for _, name := range src.Entries {
			f, err := mod.Function(name)
			if err != nil {
				return fmt.Errorf("gpu: %s: %w", src.Name, err)
			}
			e.funcs[name] = f
		}
	}
	return nil
}

// Launch runs a compiled kernel on the engine's stream (kernels.Launcher).
func (e *Engine) Launch(entry string, grid, block [3]uint32, sharedBytes uint32, args ...any) error {
	f, ok := e.funcs[entry]
	if !ok {
		return fmt.Errorf("gpu: no kernel %q in the compiled sources", entry)
	}
	if err := e.stream.Launch(f, grid, block, sharedBytes, args...); err != nil {
		return fmt.Errorf("gpu: launch %s: %w", entry, err)
	}
	return nil
}

// SetMaxDynamicShared lets a kernel use more than the default 48 KiB of
// dynamic shared memory.
func (e *Engine) SetMaxDynamicShared(entry string, bytes int) error {
	f, ok := e.funcs[entry]
	if !ok {
		return fmt.Errorf("gpu: no kernel %q in the compiled sources", entry)
	}
	return f.SetMaxDynamicShared(bytes)
}

// Device describes the engine's GPU.
func (e *Engine) Device() cuda.Device { return e.ctx.Device() }

// Sync waits for everything queued on the engine's stream and returns the
// first asynchronous error.
func (e *Engine) Sync() error { return e.stream.Sync() }

// MemStats is the caching allocator's account.
func (e *Engine) MemStats() cuda.PoolStats { return e.pool.Stats() }

// Close frees everything the engine holds. Buffers still held by runs are
// freed with the context.
func (e *Engine) Close() error {
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	if e.stream != nil {
		keep(e.stream.Sync())
	}
	for _, m := range e.modules {
		keep(m.Unload())
	}
	if e.pool != nil {
		keep(e.pool.Close())
	}
	if e.blas != nil {
		keep(e.blas.Destroy())
	}
	if e.stream != nil {
		keep(e.stream.Destroy())
	}
	if e.ctx != nil {
		keep(e.ctx.Close())
	}
	return first
}

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
	p, err := e.pool.Get(need)
	if err != nil {
		return err
	}
	*b = buf{ptr: p, n: n, bytes: need}
	return nil
}

// release returns b's memory to the pool.
func (e *Engine) release(b *buf) {
	if b.ptr != 0 {
		_ = e.pool.Put(b.ptr) // only fails for pointers the pool never gave out
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
	return cuda.Upload(e.stream, b.ptr, data)
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
	return cuda.Download(e.stream, dst, b.ptr)
}

// zero clears a device buffer.
func (e *Engine) zero(b buf, elem int64) error {
	if b.n == 0 {
		return nil
	}
	return e.stream.Memset(b.ptr, int64(b.n)*elem)
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
