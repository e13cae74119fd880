package gguf

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"unicode/utf8"
)

const (
	// DefaultAlignment is the data alignment when general.alignment is
	// absent.
	DefaultAlignment = 32
	// AlignmentKey is the metadata key that sets the alignment.
	AlignmentKey = "general.alignment"

	// maxDims is ggml's GGML_MAX_DIMS; llama.cpp refuses more.
	maxDims = 4
	// maxKeyLen is the specification's limit on key length.
	maxKeyLen = 1<<16 - 1
	// maxArrayDepth bounds arrays of arrays. The specification allows
	// nesting but sets no limit and no known file nests at all (llama.cpp
	// cannot read nested arrays); the bound keeps a hostile file from
	// driving deep recursion.
	maxArrayDepth = 8
)

var magic = []byte("GGUF")

// cursor reads the header fields of one file, tracking the offset for error
// messages. Every read checks the remaining length first, so truncation
// anywhere is an error rather than a panic.
type cursor struct {
	b   []byte
	off int
	// v1 selects 32-bit counts and string lengths (and dimensions).
	v1 bool
}

func (c *cursor) remaining() int { return len(c.b) - c.off }

// errAt formats an error that names the byte offset where the problem is.
func errAt(off int, format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", off, fmt.Sprintf(format, args...))
}

func (c *cursor) need(n int, what string) error {
	if c.remaining() < n {
		return errAt(c.off, "truncated: %s needs %d bytes, %d left", what, n, c.remaining())
	}
	return nil
}

func (c *cursor) u32(what string) (uint32, error) {
	if err := c.need(4, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(c.b[c.off:])
	c.off += 4
	return v, nil
}

func (c *cursor) u64(what string) (uint64, error) {
	if err := c.need(8, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(c.b[c.off:])
	c.off += 8
	return v, nil
}

// size reads a count or length: 32 bits in version 1, 64 bits after.
func (c *cursor) size(what string) (uint64, error) {
	if c.v1 {
		v, err := c.u32(what)
		return uint64(v), err
	}
	return c.u64(what)
}

func (c *cursor) sizeLen() int {
	if c.v1 {
		return 4
	}
	return 8
}

// count reads an element count and checks, before anything is allocated
// from it, that n elements of at least minSize bytes each fit in what is
// left of the file.
func (c *cursor) count(what string, minSize int) (int, error) {
	at := c.off
	n, err := c.size(what)
	if err != nil {
		return 0, err
	}
	if n > uint64(c.remaining()/minSize) {
		return 0, errAt(at, "%s %d is impossible: %d elements of at least %d bytes need more than the %d bytes left",
			what, n, n, minSize, c.remaining())
	}
	return int(n), nil
}

// str reads a length-prefixed string. It copies the bytes, so the result
// does not pin a mapping.
func (c *cursor) str(what string) (string, error) {
	at := c.off
	n, err := c.size(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(c.remaining()) {
		return "", errAt(at, "truncated: %s of %d bytes, %d left", what, n, c.remaining())
	}
	s := string(c.b[c.off : c.off+int(n)])
	c.off += int(n)
	return s, nil
}

// minValueSize is the smallest encoding of a value of type t, used to bound
// array counts.
func (c *cursor) minValueSize(t ValueType) int {
	switch t {
	case TypeString:
		return c.sizeLen()
	case TypeArray:
		return 4 + c.sizeLen()
	}
	return t.fixedSize()
}

// value reads a value of type t; depth counts enclosing arrays.
func (c *cursor) value(t ValueType, depth int) (Value, error) {
	at := c.off
	switch t {
	case TypeString:
		s, err := c.str("string")
		return Value{typ: t, str: s}, err
	case TypeArray:
		return c.array(depth)
	}
	size := t.fixedSize()
	if size == 0 {
		return Value{}, errAt(at, "unknown value type %d", uint32(t))
	}
	if err := c.need(size, t.String()+" value"); err != nil {
		return Value{}, err
	}
	v := Value{typ: t}
	p := c.b[c.off:]
	switch t {
	case TypeUint8:
		v.bits = uint64(p[0])
	case TypeInt8:
		v.bits = uint64(int64(int8(p[0])))
	case TypeBool:
		if p[0] > 1 {
			return Value{}, errAt(at, "BOOL value is %d, want 0 or 1", p[0])
		}
		v.bits = uint64(p[0])
	case TypeUint16:
		v.bits = uint64(binary.LittleEndian.Uint16(p))
	case TypeInt16:
		v.bits = uint64(int64(int16(binary.LittleEndian.Uint16(p))))
	case TypeUint32, TypeFloat32:
		v.bits = uint64(binary.LittleEndian.Uint32(p))
	case TypeInt32:
		v.bits = uint64(int64(int32(binary.LittleEndian.Uint32(p))))
	case TypeUint64, TypeInt64, TypeFloat64:
		v.bits = binary.LittleEndian.Uint64(p)
	}
	c.off += size
	return v, nil
}

// array reads an array's element type, count and elements.
func (c *cursor) array(depth int) (Value, error) {
	at := c.off
	et, err := c.u32("array element type")
	if err != nil {
		return Value{}, err
	}
	elem := ValueType(et)
	if !elem.valid() {
		return Value{}, errAt(at, "unknown array element type %d", et)
	}
	if elem == TypeArray && depth+1 >= maxArrayDepth {
		return Value{}, errAt(at, "arrays nested more than %d deep", maxArrayDepth)
	}
	n, err := c.count("array length", c.minValueSize(elem))
	if err != nil {
		return Value{}, err
	}
	v := Value{typ: TypeArray, elem: elem}
	p := c.b[c.off:]
	size := elem.fixedSize()
	switch elem {
	case TypeUint8:
		v.arr = slices.Clone(p[:n])
	case TypeInt8:
		v.arr = decodeArray(p, n, 1, func(b []byte) int8 { return int8(b[0]) })
	case TypeBool:
		a := make([]bool, n)
		for i, x := range p[:n] {
			if x > 1 {
				return Value{}, errAt(c.off+i, "BOOL array element %d is %d, want 0 or 1", i, x)
			}
			a[i] = x == 1
		}
		v.arr = a
	case TypeUint16:
		v.arr = decodeArray(p, n, 2, binary.LittleEndian.Uint16)
	case TypeInt16:
		v.arr = decodeArray(p, n, 2, func(b []byte) int16 { return int16(binary.LittleEndian.Uint16(b)) })
	case TypeUint32:
		v.arr = decodeArray(p, n, 4, binary.LittleEndian.Uint32)
	case TypeInt32:
		v.arr = decodeArray(p, n, 4, func(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) })
	case TypeFloat32:
		v.arr = decodeArray(p, n, 4, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) })
	case TypeUint64:
		v.arr = decodeArray(p, n, 8, binary.LittleEndian.Uint64)
	case TypeInt64:
		v.arr = decodeArray(p, n, 8, func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) })
	case TypeFloat64:
		v.arr = decodeArray(p, n, 8, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) })
	case TypeString:
		a := make([]string, n)
		for i := range a {
			if a[i], err = c.str(fmt.Sprintf("string element %d", i)); err != nil {
				return Value{}, err
			}
		}
		v.arr = a
		return v, nil
	case TypeArray:
		a := make([]Value, n)
		for i := range a {
			if a[i], err = c.array(depth + 1); err != nil {
				return Value{}, fmt.Errorf("array element %d: %w", i, err)
			}
		}
		v.arr = a
		return v, nil
	}
	// count has checked that n fixed-size elements fit.
	c.off += n * size
	return v, nil
}

func decodeArray[T any](p []byte, n, size int, get func([]byte) T) []T {
	a := make([]T, n)
	for i := range a {
		a[i] = get(p[i*size:])
	}
	return a
}

// checkName validates a key or tensor name.
func checkName(s, what string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s", what)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	return nil
}

// parse validates a whole file held in b and builds its File. Errors do not
// yet name the file; the callers add that.
func parse(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("file is %d bytes, too short for a GGUF header", len(b))
	}
	if !bytes.Equal(b[:4], magic) {
		if bytes.Equal(b[:4], []byte("FUGG")) {
			return nil, errors.New(`magic is "FUGG": the file is big-endian, and only little-endian GGUF is supported`)
		}
		return nil, fmt.Errorf("bad magic %q, want %q: not a GGUF file", b[:4], magic)
	}
	c := &cursor{b: b, off: 4}
	version, _ := c.u32("version")
	switch version {
	case 1, 2, 3:
	default:
		if sw := bits.ReverseBytes32(version); sw >= 1 && sw <= 3 {
			return nil, errAt(4, "version field is 0x%08x, which is version %d byte-swapped: the file is big-endian, and only little-endian GGUF is supported", version, sw)
		}
		return nil, errAt(4, "unsupported GGUF version %d (this reader knows 1, 2 and 3)", version)
	}
	c.v1 = version == 1
	f := &File{
		Version:   int(version),
		Alignment: DefaultAlignment,
		keyIndex:  map[string]int{},
		tensorIdx: map[string]int{},
	}

	// The smallest metadata entry is a one-byte key, a type and a one-byte
	// value; the smallest tensor info a one-byte name, n_dims, type and
	// offset. Bounding the counts by these keeps allocation proportional
	// to the file size.
	minKV := c.sizeLen() + 1 + 4 + 1
	minTensor := c.sizeLen() + 1 + 4 + 4 + 8
	nTensors, err := c.count("tensor count", minTensor)
	if err != nil {
		return nil, err
	}
	nKV, err := c.count("metadata count", minKV)
	if err != nil {
		return nil, err
	}

	f.kvs = make([]kvEntry, 0, nKV)
	for i := range nKV {
		at := c.off
		key, err := c.str(fmt.Sprintf("key of metadata entry %d", i))
		if err != nil {
			return nil, err
		}
		if err := checkName(key, "key"); err != nil {
			return nil, errAt(at, "metadata entry %d: %v", i, err)
		}
		if len(key) > maxKeyLen {
			return nil, errAt(at, "key %.40q… is %d bytes, longer than the %d allowed", key, len(key), maxKeyLen)
		}
		if _, dup := f.keyIndex[key]; dup {
			return nil, errAt(at, "duplicate key %q", key)
		}
		t, err := c.u32("value type")
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		v, err := c.value(ValueType(t), 0)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		f.keyIndex[key] = len(f.kvs)
		f.kvs = append(f.kvs, kvEntry{key, v})
	}

	if i, ok := f.keyIndex[AlignmentKey]; ok {
		v := f.kvs[i].value
		// The specification types it uint32, and llama.cpp insists.
		if v.typ != TypeUint32 {
			return nil, fmt.Errorf("key %q is %s, want UINT32", AlignmentKey, v.typ)
		}
		a := uint32(v.bits)
		if a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("key %q is %d, want a power of two", AlignmentKey, a)
		}
		f.Alignment = int(a)
	}

	f.tensors = make([]TensorInfo, 0, nTensors)
	for i := range nTensors {
		t, err := c.tensorInfo(i)
		if err != nil {
			return nil, err
		}
		if _, dup := f.tensorIdx[t.Name]; dup {
			return nil, fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		f.tensorIdx[t.Name] = len(f.tensors)
		f.tensors = append(f.tensors, t)
	}

	// The data section starts at the next multiple of the alignment. The
	// padding may be missing when no tensor needs the data section.
	align := int64(f.Alignment)
	f.DataOffset = (int64(c.off) + align - 1) / align * align
	if err := f.checkLayout(int64(len(b))); err != nil {
		return nil, err
	}
	f.data = b
	return f, nil
}

// tensorInfo reads the i-th tensor info and checks it on its own.
func (c *cursor) tensorInfo(i int) (TensorInfo, error) {
	at := c.off
	name, err := c.str(fmt.Sprintf("name of tensor %d", i))
	if err != nil {
		return TensorInfo{}, err
	}
	if err := checkName(name, "tensor name"); err != nil {
		return TensorInfo{}, errAt(at, "tensor %d: %v", i, err)
	}
	fail := func(err error) (TensorInfo, error) {
		return TensorInfo{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	nd, err := c.u32("number of dimensions")
	if err != nil {
		return fail(err)
	}
	if nd > maxDims {
		return fail(errAt(c.off-4, "%d dimensions, more than the %d ggml supports", nd, maxDims))
	}
	dims := make([]int, nd)
	for j := range dims {
		dimAt := c.off
		var d uint64
		if c.v1 {
			var d32 uint32
			d32, err = c.u32("dimension")
			d = uint64(d32)
		} else {
			d, err = c.u64("dimension")
		}
		if err != nil {
			return fail(err)
		}
		// ggml holds dimensions in int64; we want them as int.
		if d > math.MaxInt64 || d > math.MaxInt {
			return fail(errAt(dimAt, "dimension %d is %d, too large", j, d))
		}
		dims[j] = int(d)
	}
	typAt := c.off
	typ, err := c.u32("tensor type")
	if err != nil {
		return fail(err)
	}
	t := GGMLType(typ)
	if !t.Known() {
		return fail(errAt(typAt, "unknown ggml type %d (removed from ggml, or newer than this reader)", typ))
	}
	offAt := c.off
	off, err := c.u64("data offset")
	if err != nil {
		return fail(err)
	}
	if off > math.MaxInt64 {
		return fail(errAt(offAt, "data offset %d is too large", off))
	}
	size, err := tensorSize(t, dims)
	if err != nil {
		return fail(err)
	}
	return TensorInfo{Name: name, Type: t, Dims: dims, Offset: int64(off), Size: size}, nil
}

// tensorSize is the size in bytes of a tensor of type t and ggml dims,
// with every overflow checked. The first dimension must hold whole blocks,
// as ggml requires: blocks never straddle rows.
func tensorSize(t GGMLType, dims []int) (int64, error) {
	tr := typeTraits[t]
	ne0 := int64(1)
	if len(dims) > 0 {
		ne0 = int64(dims[0])
	}
	if ne0%tr.blockLen != 0 {
		return 0, fmt.Errorf("first dimension %d is not a multiple of the %s block length %d", ne0, tr.name, tr.blockLen)
	}
	n, ok := numElements(dims)
	if !ok {
		return 0, fmt.Errorf("dimensions %v overflow the element count", dims)
	}
	blocks := n / tr.blockLen
	if blocks > math.MaxInt64/tr.blockSize {
		return 0, fmt.Errorf("dimensions %v overflow the size in bytes", dims)
	}
	return blocks * tr.blockSize, nil
}

// numElements multiplies the dimensions, reporting overflow. A zero
// dimension makes the product zero whatever the others are.
func numElements(dims []int) (int64, bool) {
	if slices.Contains(dims, 0) {
		return 0, true
	}
	n := int64(1)
	for _, d := range dims {
		if int64(d) > math.MaxInt64/n {
			return 0, false
		}
		n *= int64(d)
	}
	return n, true
}

// checkLayout checks that every tensor is aligned, inside the file, and
// overlaps no other.
func (f *File) checkLayout(fileSize int64) error {
	align := int64(f.Alignment)
	for _, t := range f.tensors {
		if t.Offset%align != 0 {
			return fmt.Errorf("tensor %q: data offset %d is not a multiple of the alignment %d", t.Name, t.Offset, align)
		}
		// Offset and Size are each at most MaxInt64; compare without
		// adding them.
		if t.Offset > fileSize-f.DataOffset || t.Size > fileSize-f.DataOffset-t.Offset {
			return fmt.Errorf("tensor %q: data offset %d + %d bytes runs past the end of the file (data section at byte %d, file %d bytes)",
				t.Name, t.Offset, t.Size, f.DataOffset, fileSize)
		}
	}
	order := make([]int, 0, len(f.tensors))
	for i, t := range f.tensors {
		if t.Size > 0 {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(f.tensors[a].Offset, f.tensors[b].Offset)
	})
	for k := 1; k < len(order); k++ {
		prev, cur := &f.tensors[order[k-1]], &f.tensors[order[k]]
		if prev.Offset+prev.Size > cur.Offset {
			return fmt.Errorf("tensor %q (data offset %d, %d bytes) overlaps tensor %q (data offset %d)",
				prev.Name, prev.Offset, prev.Size, cur.Name, cur.Offset)
		}
	}
	return nil
}
