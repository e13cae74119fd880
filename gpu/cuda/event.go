package cuda

import (
	"errors"
	"unsafe"
)

// Event marks a point in a stream, for timing and cross-stream waits.
type Event struct {
	ctx    *Context
	handle uintptr // CUevent
}

// NewEvent creates a timing-capable event.
func (c *Context) NewEvent() (*Event, error) {
	e := &Event{ctx: c}
	err := c.do(func() error {
		return checkCU("cuEventCreate on "+c.dev.where(), call(cu.cuEventCreate, uintptr(unsafe.Pointer(&e.handle)), eventDefault))
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Record marks the current end of s's queue.
func (e *Event) Record(s *Stream) error {
	if s == nil || s.handle == 0 {
		return errors.New("gpu: Event.Record on a nil or destroyed stream")
	}
	return e.ctx.do(func() error {
		if r := call(cu.cuEventRecord, e.handle, s.handle); r != 0 {
			return cuError("cuEventRecord on "+e.ctx.dev.where(), r)
		}
		return nil
	})
}

// Sync waits until the work before the last Record has finished.
func (e *Event) Sync() error {
	return e.ctx.do(func() error {
		return checkCU("cuEventSynchronize on "+e.ctx.dev.where(), call(cu.cuEventSynchronize, e.handle))
	})
}

// Destroy releases the event. Destroying twice is a no-op.
func (e *Event) Destroy() error {
	if e == nil || e.handle == 0 {
		return nil
	}
	h := e.handle
	e.handle = 0
	return e.ctx.do(func() error {
		return checkCU("cuEventDestroy on "+e.ctx.dev.where(), call(cu.cuEventDestroy, h))
	})
}

// Elapsed is the time in milliseconds between two recorded events (about
// 0.5 µs resolution). It waits for end first.
func Elapsed(start, end *Event) (ms float32, err error) {
	if start == nil || end == nil || start.ctx != end.ctx {
		return 0, errors.New("gpu: Elapsed needs two events of the same context")
	}
	if err := end.Sync(); err != nil {
		return 0, err
	}
	err = start.ctx.do(func() error {
		return checkCU("cuEventElapsedTime on "+start.ctx.dev.where(),
			call(cu.cuEventElapsedTime, uintptr(unsafe.Pointer(&ms)), start.handle, end.handle))
	})
	return ms, err
}
