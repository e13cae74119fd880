package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// Context is a device's primary context (the one the CUDA runtime, and so
// cuBLAS, also uses).
//
// CUDA makes a context current per OS thread, and goroutines move between
// threads, so every method locks the calling goroutine to its thread and
// makes the context current for the duration of the call. A Context (and its
// streams, events, modules and BLAS handles) may therefore be used from any
// goroutine; concurrent calls are the caller's to serialize.
type Context struct {
	dev    Device
	handle int32   // CUdevice
	ctx    uintptr // CUcontext
	closed atomic.Bool
}

// DevicePtr is a device memory address (CUdeviceptr).
type DevicePtr uintptr

var errClosed = errors.New("gpu: context is closed")

// Open initializes the driver, checks the ordinal and retains the device's
// primary context.
func Open(ordinal int) (*Context, error) {
	if err := initDriver(); err != nil {
		return nil, err
	}
	n, err := DeviceCount()
	if err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("gpu: device %d requested but %d CUDA device(s) are visible (CUDA_VISIBLE_DEVICES may hide some)", ordinal, n)
	}
	d, dev, err := queryDevice(ordinal)
	if err != nil {
		return nil, err
	}
	c := &Context{dev: d, handle: dev}
	if err := checkCU("cuDevicePrimaryCtxRetain on "+d.where(),
		call(cu.cuDevicePrimaryCtxRetain, uintptr(unsafe.Pointer(&c.ctx)), uintptr(dev))); err != nil {
		return nil, err
	}
	return c, nil
}

// Device describes the context's device.
func (c *Context) Device() Device { return c.dev }

// do runs f on a locked OS thread with the context current.
func (c *Context) do(f func() error) error {
	if c == nil {
		return errors.New("gpu: nil context")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if c.closed.Load() {
		return errClosed
	}
	// Error texts are built only on failure: these paths run per kernel launch.
	if r := call(cu.cuCtxSetCurrent, c.ctx); r != 0 {
		return cuError("cuCtxSetCurrent on "+c.dev.where(), r)
	}
	return f()
}

// Close releases the primary context. Memory, streams and modules made in it
// should be freed first; the driver destroys the context when its last
// retainer (this package or the CUDA runtime) releases it. Closing twice is
// a no-op.
func (c *Context) Close() error {
	if c == nil || c.closed.Swap(true) {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// Leave no thread pointing at a context that may be destroyed.
	call(cu.cuCtxSetCurrent, 0)
	return checkCU("cuDevicePrimaryCtxRelease on "+c.dev.where(), call(cu.cuDevicePrimaryCtxRelease, uintptr(c.handle)))
}

// Sync waits for all work in the context, on every stream.
func (c *Context) Sync() error {
	return c.do(func() error {
		return checkCU("cuCtxSynchronize on "+c.dev.where(), call(cu.cuCtxSynchronize))
	})
}

// MemInfo is the device's free and total memory in bytes.
func (c *Context) MemInfo() (free, total int64, err error) {
	err = c.do(func() error {
		var f, t uintptr // size_t
		if err := checkCU("cuMemGetInfo on "+c.dev.where(), call(cu.cuMemGetInfo, uintptr(unsafe.Pointer(&f)), uintptr(unsafe.Pointer(&t)))); err != nil {
			return err
		}
		free, total = int64(f), int64(t)
		return nil
	})
	return free, total, err
}

// Alloc allocates bytes (> 0) of device memory, 256-byte aligned. Out of
// memory, the error names the device, the size asked and the free and total
// memory; IsOutOfMemory recognizes it.
func (c *Context) Alloc(bytes int64) (DevicePtr, error) {
	if bytes <= 0 {
		return 0, fmt.Errorf("gpu: Alloc(%d) on %s: size must be positive", bytes, c.dev.where())
	}
	var p DevicePtr
	err := c.do(func() error {
		r := call(cu.cuMemAlloc, uintptr(unsafe.Pointer(&p)), uintptr(bytes))
		if r == 0 {
			return nil
		}
		e := cuError(fmt.Sprintf("cuMemAlloc(%s) on %s", FormatBytes(bytes), c.dev.where()), r)
		if r == cudaErrorOutOfMemory {
			var f, t uintptr
			if call(cu.cuMemGetInfo, uintptr(unsafe.Pointer(&f)), uintptr(unsafe.Pointer(&t))) == 0 {
				e.Detail = fmt.Sprintf("free %s of %s", FormatBytes(int64(f)), FormatBytes(int64(t)))
			}
		}
		return e
	})
	return p, err
}

// Free releases memory from Alloc. Free(0) is a no-op.
func (c *Context) Free(p DevicePtr) error {
	if p == 0 {
		return nil
	}
	return c.do(func() error {
		if r := call(cu.cuMemFree, uintptr(p)); r != 0 {
			return cuError(fmt.Sprintf("cuMemFree(%#x) on %s", uintptr(p), c.dev.where()), r)
		}
		return nil
	})
}

// The Pool's backing (see pool.go).
func (c *Context) alloc(bytes int64) (DevicePtr, error)    { return c.Alloc(bytes) }
func (c *Context) free(p DevicePtr) error                  { return c.Free(p) }
func (c *Context) memInfo() (free, total int64, err error) { return c.MemInfo() }
