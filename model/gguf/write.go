package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// WriteTensor is a tensor for Write: either Data, values in ggml order
// (Dims[0] fastest) that Write encodes as Type (F32, F16, BF16 or Q8_0), or
// Raw, the already encoded bytes of any known type, written as they are.
type WriteTensor struct {
	Name string
	Type GGMLType
	// Dims are in ggml order, fastest first, at most 4.
	Dims []int
	Data []float32
	Raw  []byte
}

// Write writes a GGUF file of the given version (1, 2 or 3) to w: the
// metadata in the given order, then the tensor infos in the given order,
// then the data, each tensor starting at the next multiple of the
// alignment (general.alignment if the metadata sets it, else 32) and padded
// with zeros to one. A file without tensors ends after the tensor infos
// (an empty tensor list), unpadded. It validates everything, and encodes every tensor,
// before writing anything, so an invalid input writes nothing.
//
// Q8_0 quantizes as ggml does: per block of 32, d = max|x|/127 and
// q = round(x/d).
func Write(w io.Writer, version int, metadata []KV, tensors []WriteTensor) error {
	hdr, data, err := build(version, metadata, tensors)
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.Write(hdr)
	for _, d := range data {
		bw.Write(d)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

// encoder appends header fields for one version.
type encoder struct {
	b  []byte
	v1 bool
}

func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }

// size writes a count or length, which the caller has checked fits.
func (e *encoder) size(n int) {
	if e.v1 {
		e.u32(uint32(n))
	} else {
		e.u64(uint64(n))
	}
}

// fits reports whether a count or length can be written.
func (e *encoder) fits(n int) bool {
	return !e.v1 || uint64(n) <= math.MaxUint32
}

func (e *encoder) str(s, what string) error {
	if !e.fits(len(s)) {
		return fmt.Errorf("%s of %d bytes is too long for version 1", what, len(s))
	}
	e.size(len(s))
	e.b = append(e.b, s...)
	return nil
}

// value appends v's encoding without its type tag; depth counts enclosing
// arrays, bounded as the reader bounds it.
func (e *encoder) value(v Value, depth int) error {
	switch v.typ {
	case TypeString:
		return e.str(v.str, "string")
	case TypeArray:
		return e.array(v, depth)
	}
	switch v.typ.fixedSize() {
	case 1:
		e.b = append(e.b, byte(v.bits))
	case 2:
		e.b = binary.LittleEndian.AppendUint16(e.b, uint16(v.bits))
	case 4:
		e.u32(uint32(v.bits))
	case 8:
		e.u64(v.bits)
	default:
		return fmt.Errorf("invalid value type %s", v.typ)
	}
	return nil
}

func (e *encoder) array(v Value, depth int) error {
	if !v.elem.valid() {
		return fmt.Errorf("invalid array element type %s", v.elem)
	}
	if v.elem == TypeArray && depth+1 >= maxArrayDepth {
		return fmt.Errorf("arrays nested more than %d deep", maxArrayDepth)
	}
	n := v.Len()
	if !e.fits(n) {
		return fmt.Errorf("array of %d elements is too long for version 1", n)
	}
	e.u32(uint32(v.elem))
	e.size(n)
	switch a := v.arr.(type) {
	case []uint8:
		e.b = append(e.b, a...)
	case []int8:
		for _, x := range a {
			e.b = append(e.b, byte(x))
		}
	case []bool:
		for _, x := range a {
			var b byte
			if x {
				b = 1
			}
			e.b = append(e.b, b)
		}
	case []uint16:
		for _, x := range a {
			e.b = binary.LittleEndian.AppendUint16(e.b, x)
		}
	case []int16:
		for _, x := range a {
			e.b = binary.LittleEndian.AppendUint16(e.b, uint16(x))
		}
	case []uint32:
		for _, x := range a {
			e.u32(x)
		}
	case []int32:
		for _, x := range a {
			e.u32(uint32(x))
		}
	case []float32:
		for _, x := range a {
			e.u32(math.Float32bits(x))
		}
	case []uint64:
		for _, x := range a {
			e.u64(x)
		}
	case []int64:
		for _, x := range a {
			e.u64(uint64(x))
		}
	case []float64:
		for _, x := range a {
			e.u64(math.Float64bits(x))
		}
	case []string:
		for i, s := range a {
			if err := e.str(s, fmt.Sprintf("string element %d", i)); err != nil {
				return err
			}
		}
	case []Value:
		for i, x := range a {
			if x.typ != TypeArray {
				return fmt.Errorf("array of arrays: element %d is %s", i, x.typ)
			}
			if err := e.array(x, depth+1); err != nil {
				return fmt.Errorf("array element %d: %w", i, err)
			}
		}
	default:
		return errors.New("malformed array value")
	}
	return nil
}

// build validates the input and returns the header (through the padding
// before the data section) and each tensor's data, padded.
func build(version int, metadata []KV, tensors []WriteTensor) ([]byte, [][]byte, error) {
	if version < 1 || version > 3 {
		return nil, nil, fmt.Errorf("cannot write version %d (want 1, 2 or 3)", version)
	}
	e := &encoder{v1: version == 1}
	if !e.fits(len(metadata)) || !e.fits(len(tensors)) {
		return nil, nil, errors.New("too many entries for version 1")
	}
	e.b = append(e.b, magic...)
	e.u32(uint32(version))
	e.size(len(tensors))
	e.size(len(metadata))

	align := int64(DefaultAlignment)
	seen := make(map[string]bool, len(metadata))
	for _, kv := range metadata {
		if err := checkName(kv.Key, "key"); err != nil {
			return nil, nil, err
		}
		if len(kv.Key) > maxKeyLen {
			return nil, nil, fmt.Errorf("key %.40q… is longer than %d bytes", kv.Key, maxKeyLen)
		}
		if seen[kv.Key] {
			return nil, nil, fmt.Errorf("duplicate key %q", kv.Key)
		}
		seen[kv.Key] = true
		v, err := ValueOf(kv.Value)
		if err != nil {
			return nil, nil, fmt.Errorf("key %q: %w", kv.Key, err)
		}
		if kv.Key == AlignmentKey {
			a := uint32(v.bits)
			if v.typ != TypeUint32 || a == 0 || a&(a-1) != 0 {
				return nil, nil, fmt.Errorf("key %q must be a UINT32 power of two, got %s %v", AlignmentKey, v.typ, v)
			}
			align = int64(a)
		}
		e.str(kv.Key, "key") // at most maxKeyLen bytes, so it fits
		e.u32(uint32(v.typ))
		if err := e.value(v, 0); err != nil {
			return nil, nil, fmt.Errorf("key %q: %w", kv.Key, err)
		}
	}

	data := make([][]byte, len(tensors))
	names := make(map[string]bool, len(tensors))
	var off int64
	for i, t := range tensors {
		fail := func(format string, args ...any) ([]byte, [][]byte, error) {
			return nil, nil, fmt.Errorf("tensor %q: %s", t.Name, fmt.Sprintf(format, args...))
		}
		if err := checkName(t.Name, "tensor name"); err != nil {
			return nil, nil, fmt.Errorf("tensor %d: %w", i, err)
		}
		if names[t.Name] {
			return nil, nil, fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		names[t.Name] = true
		if len(t.Dims) > maxDims {
			return fail("%d dimensions, more than %d", len(t.Dims), maxDims)
		}
		for _, d := range t.Dims {
			if d < 0 || (e.v1 && uint64(d) > math.MaxUint32) {
				return fail("dimension %d is out of range", d)
			}
		}
		if !t.Type.Known() {
			return fail("unknown type %s", t.Type)
		}
		size, err := tensorSize(t.Type, t.Dims)
		if err != nil {
			return fail("%v", err)
		}
		n, _ := numElements(t.Dims)
		var b []byte
		switch {
		case t.Raw != nil && t.Data != nil:
			return fail("both Data and Raw are set")
		case t.Raw != nil:
			if int64(len(t.Raw)) != size {
				return fail("Raw has %d bytes, want %d for %s %v", len(t.Raw), size, t.Type, t.Dims)
			}
			b = t.Raw
		default:
			if int64(len(t.Data)) != n {
				return fail("Data has %d values, want %d for dims %v", len(t.Data), n, t.Dims)
			}
			if b, err = encode(t.Type, t.Data); err != nil {
				return fail("%v", err)
			}
		}
		padded := (size + align - 1) / align * align
		if padded > math.MaxInt64-off {
			return fail("data section overflows")
		}
		data[i] = append(slices.Clip(b), make([]byte, padded-size)...)

		if err := e.str(t.Name, "tensor name"); err != nil {
			return fail("%v", err)
		}
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			if e.v1 {
				e.u32(uint32(d))
			} else {
				e.u64(uint64(d))
			}
		}
		e.u32(uint32(t.Type))
		e.u64(uint64(off))
		off += padded
	}
	// Without tensors there is no data section to align. Skipping the
	// padding then (readers, ours and llama.cpp's, accept its absence)
	// keeps a file with a huge general.alignment small.
	if len(tensors) > 0 {
		pad := (int64(len(e.b))+align-1)/align*align - int64(len(e.b))
		e.b = append(e.b, make([]byte, pad)...)
	}
	return e.b, data, nil
}
