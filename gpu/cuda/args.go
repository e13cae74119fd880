package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// packedArgs holds kernel arguments by value for cuLaunchKernel, whose
// kernelParams is an array of pointers, one per argument, each pointing to
// that argument's value. Values sit at their natural alignment in one
// 8-byte-aligned buffer; ptrs[i] points at argument i.
type packedArgs struct {
	words   []uint64 // backing store; 8-byte aligned
	offsets []int    // byte offset of each argument in words
	sizes   []int    // byte size of each argument (4 or 8)
}

// packArgs lays out args as the C types Launch documents:
//
//	DevicePtr, uintptr → pointer (8 bytes)   int32 → int (4)    uint32 → unsigned (4)
//	int64 → long long (8)   uint64 → unsigned long long (8)
//	float32 → float (4)     float64 → double (8)
//
// Any other type (int, bool, a Go pointer, nil) is an error naming the
// argument: the kernel's C signature fixes each size, and a guess would
// silently corrupt the launch.
func packArgs(args []any) (packedArgs, error) {
	p := packedArgs{offsets: make([]int, len(args)), sizes: make([]int, len(args))}
	off := 0
	for i, a := range args {
		size := argSize(a)
		if size == 0 {
			return packedArgs{}, fmt.Errorf("gpu: launch argument %d has Go type %T; want DevicePtr, uintptr, int32, uint32, int64, uint64, float32 or float64", i, a)
		}
		off = (off + size - 1) / size * size
		p.offsets[i], p.sizes[i] = off, size
		off += size
	}
	p.words = make([]uint64, (off+7)/8)
	buf := p.bytes()
	ne := binary.NativeEndian
	for i, a := range args {
		b := buf[p.offsets[i]:]
		switch v := a.(type) {
		case DevicePtr:
			ne.PutUint64(b, uint64(v))
		case uintptr:
			ne.PutUint64(b, uint64(v))
		case int32:
			ne.PutUint32(b, uint32(v))
		case uint32:
			ne.PutUint32(b, v)
		case int64:
			ne.PutUint64(b, uint64(v))
		case uint64:
			ne.PutUint64(b, v)
		case float32:
			ne.PutUint32(b, math.Float32bits(v))
		case float64:
			ne.PutUint64(b, math.Float64bits(v))
		}
	}
	return p, nil
}

func argSize(a any) int {
	switch a.(type) {
	case DevicePtr, uintptr, int64, uint64, float64:
		return 8
	case int32, uint32, float32:
		return 4
	}
	return 0
}

// bytes views words as bytes.
func (p packedArgs) bytes() []byte {
	if len(p.words) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&p.words[0])), len(p.words)*8)
}

// pointers is the kernelParams array: one pointer into words per argument.
// The caller keeps p (and the returned slice) alive across cuLaunchKernel.
func (p packedArgs) pointers() []unsafe.Pointer {
	buf := p.bytes()
	out := make([]unsafe.Pointer, len(p.offsets))
	for i, off := range p.offsets {
		out[i] = unsafe.Pointer(&buf[off])
	}
	return out
}
