package cuda

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// Module is loaded device code (a cubin or PTX image).
type Module struct {
	ctx    *Context
	handle uintptr // CUmodule
}

// Function is a kernel in a Module.
type Function struct {
	mod    *Module
	name   string
	handle uintptr // CUfunction
}

// LoadModule loads a cubin (ELF) or PTX image into the context; PTX is JIT
// compiled by the driver. PTX must be NUL-terminated for the driver; a copy
// with the NUL is made when it is missing.
func (c *Context) LoadModule(image []byte) (*Module, error) {
	if len(image) == 0 {
		return nil, errors.New("gpu: LoadModule: empty image")
	}
	if !bytes.HasPrefix(image, []byte("\x7fELF")) && image[len(image)-1] != 0 {
		image = append(image[:len(image):len(image)], 0)
	}
	m := &Module{ctx: c}
	err := c.do(func() error {
		return checkCU(fmt.Sprintf("cuModuleLoadData(%s image) on %s", FormatBytes(int64(len(image))), c.dev.where()),
			call(cu.cuModuleLoadData, uintptr(unsafe.Pointer(&m.handle)), uintptr(unsafe.Pointer(&image[0]))))
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Function looks up an extern "C" kernel by name.
func (m *Module) Function(name string) (*Function, error) {
	if m == nil || m.handle == 0 {
		return nil, errors.New("gpu: Function on an unloaded module")
	}
	f := &Function{mod: m, name: name}
	cname := cstr(name)
	err := m.ctx.do(func() error {
		return checkCU(fmt.Sprintf("cuModuleGetFunction(%q) on %s", name, m.ctx.dev.where()),
			call(cu.cuModuleGetFunction, uintptr(unsafe.Pointer(&f.handle)), m.handle, uintptr(unsafe.Pointer(&cname[0]))))
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Unload unloads the module; its Functions become invalid. Unloading twice is a no-op.
func (m *Module) Unload() error {
	if m == nil || m.handle == 0 {
		return nil
	}
	h := m.handle
	m.handle = 0
	return m.ctx.do(func() error {
		return checkCU("cuModuleUnload on "+m.ctx.dev.where(), call(cu.cuModuleUnload, h))
	})
}

// Name is the kernel's name.
func (f *Function) Name() string { return f.name }

// SetMaxDynamicShared allows launches of f with up to bytes of dynamic
// shared memory; above 48 KiB a kernel must opt in this way (the device's
// limit is Device.MaxSharedOptin).
func (f *Function) SetMaxDynamicShared(bytes int) error {
	if bytes < 0 || int64(bytes) > int64(1<<31-1) {
		return fmt.Errorf("gpu: SetMaxDynamicShared(%d) for %s: out of range", bytes, f.name)
	}
	return f.mod.ctx.do(func() error {
		return checkCU(fmt.Sprintf("cuFuncSetAttribute(%s, max dynamic shared = %d) on %s", f.name, bytes, f.mod.ctx.dev.where()),
			call(cu.cuFuncSetAttribute, f.handle, funcAttrMaxDynamicShared, uintptr(bytes)))
	})
}

// Launch queues f on s with a grid of grid blocks of block threads and
// sharedBytes of dynamic shared memory, passing args by value in order.
// Allowed Go types and their C types:
//
//	DevicePtr/uintptr → pointer, int32 → int, uint32 → unsigned, int64 → long long,
//	uint64 → unsigned long long, float32 → float, float64 → double.
//
// Anything else is an error. Launch errors (a bad configuration) are
// reported here; faults inside the kernel surface at the next synchronizing call.
func (s *Stream) Launch(f *Function, grid, block [3]uint32, sharedBytes uint32, args ...any) error {
	if f == nil || f.handle == 0 || f.mod.handle == 0 {
		return errors.New("gpu: Launch of a nil function or one whose module was unloaded")
	}
	for i := range 3 {
		if grid[i] == 0 || block[i] == 0 {
			return fmt.Errorf("gpu: launch %s: grid %v and block %v must have every dimension ≥ 1", f.name, grid, block)
		}
	}
	packed, err := packArgs(args)
	if err != nil {
		return fmt.Errorf("launch %s: %w", f.name, err)
	}
	params := packed.pointers()
	var kp unsafe.Pointer // void** kernelParams; NULL when there are no arguments
	if len(params) > 0 {
		kp = unsafe.Pointer(&params[0])
	}
	err = s.do(func() error {
		r := call(cu.cuLaunchKernel, f.handle,
			uintptr(grid[0]), uintptr(grid[1]), uintptr(grid[2]),
			uintptr(block[0]), uintptr(block[1]), uintptr(block[2]),
			uintptr(sharedBytes), s.handle, uintptr(kp), 0)
		if r != 0 {
			return cuError(fmt.Sprintf("cuLaunchKernel(%s, grid %v, block %v, shared %d) on %s", f.name, grid, block, sharedBytes, s.ctx.dev.where()), r)
		}
		return nil
	})
	// The driver copies the argument values during cuLaunchKernel; keep the
	// buffer and the pointer array alive until it has returned.
	runtime.KeepAlive(packed.words)
	runtime.KeepAlive(params)
	return err
}
