//go:build linux && (amd64 || arm64)

package gpu

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/kronfed/kronfed/compute"
	"github.com/kronfed/kronfed/gpu/cuda"
	"github.com/kronfed/kronfed/gpu/internal/emu"
)

// OpenEmulated is an Engine on the kernels' CPU emulator (gpu/internal/emu):
// the very .cu sources run as host code and the GEMMs that cuBLAS does on a
// device are compute.Gemm over the same memory (bf16 operands widened
// exactly). It exists for tests — of this package and, through gpu/gputest,
// of the packages above it (the trainer, the simulator) — to check
// everything the engine and its users decide (buffer sizes and reuse, which
// kernel gets which pointer, one upload of a shared base) where no GPU is
// present. It is not a device: NVRTC, cuBLAS and the hardware are checked
// only by gpu/devcheck.sh. Only code under gpu/ can reach an *emu.Device.
//
// memory is the emulated device's size (0: 64 GiB), against which uploads
// check that a base fits.
func OpenEmulated(d *emu.Device, p Precision, memory int64) *Engine {
	if memory <= 0 {
		memory = 64 << 30
	}
	return &Engine{Precision: p, b: &emuBackend{Device: d, live: map[cuda.DevicePtr]int64{}, memory: memory}}
}

// emuBackend implements backend on the emulator.
type emuBackend struct {
	*emu.Device
	stats  cuda.PoolStats
	live   map[cuda.DevicePtr]int64
	memory int64 // the emulated device's size
	// busy catches concurrent calls, which an Engine does not allow (one
	// stream, one cuBLAS handle, the context made current per call) but the
	// synchronous emulator would otherwise compute right anyway.
	busy atomic.Bool
}

// guarded runs one backend call, failing it when another call is in
// progress: every entry point of the backend goes through here.
func (b *emuBackend) guarded(op string, f func() error) error {
	if !b.busy.CompareAndSwap(false, true) {
		return fmt.Errorf("emulated device: %s during another call: an Engine is not safe for concurrent use", op)
	}
	defer b.busy.Store(false)
	return f()
}

func (b *emuBackend) Launch(entry string, grid, block [3]uint32, sharedBytes uint32, args ...any) error {
	return b.guarded("launch "+entry, func() error { return b.Device.Launch(entry, grid, block, sharedBytes, args...) })
}

func (b *emuBackend) alloc(bytes int64) (p cuda.DevicePtr, err error) {
	err = b.guarded("alloc", func() error {
		q, err := b.Alloc(int(bytes))
		if err != nil {
			return err
		}
		p = cuda.DevicePtr(q)
		b.live[p] = bytes
		b.stats.InUse += bytes
		b.stats.Peak = max(b.stats.Peak, b.stats.InUse)
		return nil
	})
	return p, err
}

func (b *emuBackend) free(p cuda.DevicePtr) error {
	return b.guarded("free", func() error {
		b.stats.InUse -= b.live[p]
		delete(b.live, p)
		return b.Free(uintptr(p))
	})
}

func (b *emuBackend) upload(dst cuda.DevicePtr, src unsafe.Pointer, bytes int64) error {
	return b.guarded("upload", func() error { return b.Upload(uintptr(dst), unsafe.Slice((*byte)(src), bytes)) })
}

func (b *emuBackend) download(dst unsafe.Pointer, src cuda.DevicePtr, bytes int64) error {
	return b.guarded("download", func() error { return b.Download(unsafe.Slice((*byte)(dst), bytes), uintptr(src)) })
}

func (b *emuBackend) memset(dst cuda.DevicePtr, bytes int64) error {
	return b.guarded("memset", func() error {
		m, err := b.Bytes(uintptr(dst), int(bytes))
		clear(m)
		return err
	})
}

func (b *emuBackend) copy(dst, src cuda.DevicePtr, bytes int64) error {
	return b.guarded("copy", func() error {
		from, err := b.Bytes(uintptr(src), int(bytes))
		if err != nil {
			return err
		}
		return b.Upload(uintptr(dst), from)
	})
}

// floats views rows×ld (the last row only cols long) elements of type dt at
// p as float32, widening bf16.
func (b *emuBackend) floats(p cuda.DevicePtr, dt cuda.DataType, rows, cols, ld int) ([]float32, error) {
	n := (rows-1)*ld + cols
	raw, err := b.Bytes(uintptr(p), n*dt.Size())
	if err != nil {
		return nil, err
	}
	switch dt {
	case cuda.R32F:
		return unsafe.Slice((*float32)(unsafe.Pointer(&raw[0])), n), nil
	case cuda.R16BF:
		h := unsafe.Slice((*uint16)(unsafe.Pointer(&raw[0])), n)
		out := make([]float32, n)
		for i, v := range h {
			out[i] = fromBF16(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("emulated gemm: type %v", dt)
}

func (b *emuBackend) gemm(tA, tB bool, m, n, k int, alpha float32, a cuda.DevicePtr, at cuda.DataType, lda int,
	bm cuda.DevicePtr, bt cuda.DataType, ldb int, beta float32, c cuda.DevicePtr, ct cuda.DataType, ldc int) error {
	return b.guarded("gemm", func() error { return b.gemmNow(tA, tB, m, n, k, alpha, a, at, lda, bm, bt, ldb, beta, c, ct, ldc) })
}

func (b *emuBackend) gemmNow(tA, tB bool, m, n, k int, alpha float32, a cuda.DevicePtr, at cuda.DataType, lda int,
	bm cuda.DevicePtr, bt cuda.DataType, ldb int, beta float32, c cuda.DevicePtr, ct cuda.DataType, ldc int) error {
	if ct != cuda.R32F || at != bt {
		return fmt.Errorf("emulated gemm: types %v·%v→%v", at, bt, ct)
	}
	ar, ac := m, k
	if tA {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB {
		br, bc = n, k
	}
	av, err := b.floats(a, at, ar, ac, lda)
	if err != nil {
		return err
	}
	bv, err := b.floats(bm, bt, br, bc, ldb)
	if err != nil {
		return err
	}
	cv, err := b.floats(c, ct, m, n, ldc)
	if err != nil {
		return err
	}
	tr := func(t bool) compute.Transpose {
		if t {
			return compute.Trans
		}
		return compute.NoTrans
	}
	compute.Gemm(tr(tA), tr(tB), m, n, k, alpha, av, lda, bv, ldb, beta, cv, ldc)
	return nil
}

func (b *emuBackend) setMaxDynamicShared(string, int) error { return nil }
func (b *emuBackend) sync() error                           { return nil }
func (b *emuBackend) device() cuda.Device {
	return cuda.Device{Name: "CPU emulator", TotalMem: b.memory}
}
func (b *emuBackend) memStats() cuda.PoolStats { return b.stats }
func (b *emuBackend) resetPeak()               { b.stats.Peak = b.stats.InUse }
func (b *emuBackend) memInfo() (free, total int64, err error) {
	return b.memory - b.stats.InUse, b.memory, nil
}
func (b *emuBackend) close() error {
	for p := range b.live {
		b.free(p)
	}
	return nil
}
