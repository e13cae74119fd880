package cuda

import (
	"errors"
	"fmt"
	"unsafe"
)

// Stream is a CUDA stream: work queued on it runs in order, asynchronously
// to the host. Streams are created non-blocking (CU_STREAM_NON_BLOCKING), so
// they never wait on the legacy default stream, which this package does not use.
type Stream struct {
	ctx    *Context
	handle uintptr // CUstream
}

// NewStream creates a stream in the context.
func (c *Context) NewStream() (*Stream, error) {
	s := &Stream{ctx: c}
	err := c.do(func() error {
		return checkCU("cuStreamCreate on "+c.dev.where(), call(cu.cuStreamCreate, uintptr(unsafe.Pointer(&s.handle)), streamNonBlocking))
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// do runs f like Context.do, refusing a nil or destroyed stream (whose
// handle, 0, would silently mean the legacy default stream).
func (s *Stream) do(f func() error) error {
	if s == nil || s.handle == 0 {
		return errors.New("gpu: use of a nil or destroyed stream")
	}
	return s.ctx.do(f)
}

// Context is the stream's context.
func (s *Stream) Context() *Context { return s.ctx }

// Sync waits until all work queued on s has finished.
func (s *Stream) Sync() error {
	return s.do(func() error {
		if r := call(cu.cuStreamSynchronize, s.handle); r != 0 {
			return cuError("cuStreamSynchronize on "+s.ctx.dev.where(), r)
		}
		return nil
	})
}

// Destroy releases the stream once its queued work is done. Destroying twice is a no-op.
func (s *Stream) Destroy() error {
	if s == nil || s.handle == 0 {
		return nil
	}
	h := s.handle
	s.handle = 0
	return s.ctx.do(func() error {
		return checkCU("cuStreamDestroy on "+s.ctx.dev.where(), call(cu.cuStreamDestroy, h))
	})
}

// Wait makes work queued on s after this call wait for e's last Record.
func (s *Stream) Wait(e *Event) error {
	if e == nil {
		return errors.New("gpu: Stream.Wait on a nil event")
	}
	return s.do(func() error {
		if r := call(cu.cuStreamWaitEvent, s.handle, e.handle, 0); r != 0 {
			return cuError("cuStreamWaitEvent on "+s.ctx.dev.where(), r)
		}
		return nil
	})
}

func checkBytes(op string, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("gpu: %s: negative size %d", op, bytes)
	}
	return nil
}

// CopyHtoD queues a copy of bytes from host memory src to dst on s. With
// ordinary (pageable) Go memory the driver stages src before returning, so
// src may be reused as soon as CopyHtoD returns.
func (s *Stream) CopyHtoD(dst DevicePtr, src unsafe.Pointer, bytes int64) error {
	if err := checkBytes("CopyHtoD", bytes); err != nil || bytes == 0 {
		return err
	}
	return s.do(func() error {
		if r := call(cu.cuMemcpyHtoDAsync, uintptr(dst), uintptr(src), uintptr(bytes), s.handle); r != 0 {
			return cuError(fmt.Sprintf("cuMemcpyHtoDAsync(%s) on %s", FormatBytes(bytes), s.ctx.dev.where()), r)
		}
		return nil
	})
}

// CopyDtoH queues a copy of bytes from src to host memory dst on s. Into
// pageable Go memory the driver completes the copy before returning; Download
// synchronizes explicitly.
func (s *Stream) CopyDtoH(dst unsafe.Pointer, src DevicePtr, bytes int64) error {
	if err := checkBytes("CopyDtoH", bytes); err != nil || bytes == 0 {
		return err
	}
	return s.do(func() error {
		if r := call(cu.cuMemcpyDtoHAsync, uintptr(dst), uintptr(src), uintptr(bytes), s.handle); r != 0 {
			return cuError(fmt.Sprintf("cuMemcpyDtoHAsync(%s) on %s", FormatBytes(bytes), s.ctx.dev.where()), r)
		}
		return nil
	})
}

// CopyDtoD queues a device-to-device copy of bytes on s.
func (s *Stream) CopyDtoD(dst, src DevicePtr, bytes int64) error {
	if err := checkBytes("CopyDtoD", bytes); err != nil || bytes == 0 {
		return err
	}
	return s.do(func() error {
		if r := call(cu.cuMemcpyDtoDAsync, uintptr(dst), uintptr(src), uintptr(bytes), s.handle); r != 0 {
			return cuError(fmt.Sprintf("cuMemcpyDtoDAsync(%s) on %s", FormatBytes(bytes), s.ctx.dev.where()), r)
		}
		return nil
	})
}

// Memset queues zeroing bytes at dst on s.
func (s *Stream) Memset(dst DevicePtr, bytes int64) error {
	if err := checkBytes("Memset", bytes); err != nil || bytes == 0 {
		return err
	}
	return s.do(func() error {
		if r := call(cu.cuMemsetD8Async, uintptr(dst), 0, uintptr(bytes), s.handle); r != 0 {
			return cuError(fmt.Sprintf("cuMemsetD8Async(%s) on %s", FormatBytes(bytes), s.ctx.dev.where()), r)
		}
		return nil
	})
}

// Elem is the element types Upload and Download move.
type Elem interface {
	float32 | float64 | int32 | int64 | uint8 | uint16 | uint32 | uint64
}

// Upload queues copying src (len(src) elements) to dst on s.
func Upload[T Elem](s *Stream, dst DevicePtr, src []T) error {
	if len(src) == 0 {
		return nil
	}
	var z T
	return s.CopyHtoD(dst, unsafe.Pointer(&src[0]), int64(len(src))*int64(unsafe.Sizeof(z)))
}

// Download copies len(dst) elements from src into dst and synchronizes s, so
// dst holds the data (and all earlier work on s is done) when it returns.
func Download[T Elem](s *Stream, dst []T, src DevicePtr) error {
	if len(dst) == 0 {
		return s.Sync()
	}
	var z T
	if err := s.CopyDtoH(unsafe.Pointer(&dst[0]), src, int64(len(dst))*int64(unsafe.Sizeof(z))); err != nil {
		return err
	}
	return s.Sync()
}
