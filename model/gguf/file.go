package gguf

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/kronfed/kronfed/internal/mmap"
)

// File is one validated GGUF file, opened with Open or Parse.
//
// Its methods may be called concurrently, except Close, which must not race
// with any other call.
type File struct {
	// Version is the format version: 1, 2 or 3.
	Version int
	// Alignment is the data alignment in bytes: general.alignment, or 32.
	Alignment int
	// DataOffset is the file offset of the data section, to which the
	// tensors' offsets are relative.
	DataOffset int64

	name      string // for errors; empty for Parse
	kvs       []kvEntry
	keyIndex  map[string]int
	tensors   []TensorInfo
	tensorIdx map[string]int

	data   []byte // the whole file
	mapped bool   // data is a mapping to unmap on Close
	closed bool
}

type kvEntry struct {
	key   string
	value Value
}

// TensorInfo describes one tensor.
type TensorInfo struct {
	Name string
	Type GGMLType
	// Dims are in ggml order: Dims[0] varies fastest. A PyTorch tensor of
	// shape [rows, cols] has Dims [cols, rows]; see Shape.
	Dims []int
	// Offset is where the data starts, relative to File.DataOffset.
	Offset int64
	// Size is the data's size in bytes.
	Size int64
}

// NumElements is the product of the dimensions (1 for no dimensions).
func (t TensorInfo) NumElements() int64 {
	n, _ := numElements(t.Dims) // checked when the file was parsed
	return n
}

// Shape returns the dimensions in PyTorch order, slowest first: the
// reverse of Dims.
func (t TensorInfo) Shape() []int {
	s := slices.Clone(t.Dims)
	slices.Reverse(s)
	return s
}

func (t TensorInfo) clone() TensorInfo {
	t.Dims = slices.Clone(t.Dims)
	return t
}

// Parse validates a complete GGUF file held in memory. The File refers to
// data without copying it, so data must not change while the File is in
// use.
func Parse(data []byte) (*File, error) {
	f, err := parse(data)
	if err != nil {
		return nil, fileErr("", err)
	}
	return f, nil
}

// Open opens and validates the GGUF file at path. On unix it maps the file
// read-only, so tensor data is only read from disk when used; elsewhere, or
// if mapping fails, it reads the whole file into memory. Call Close when
// done.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	defer fh.Close() // a mapping stays valid without the descriptor
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fileErr(path, errors.New("not a regular file"))
	}
	size := st.Size()
	var data []byte
	mapped := false
	if m, err := mmap.File(fh, size); err == nil {
		data, mapped = m, true
	} else {
		// Mapping fails for empty files, on some filesystems, or for lack
		// of address space; reading is slower but correct.
		if size > math.MaxInt {
			return nil, fileErr(path, fmt.Errorf("file of %d bytes is too large to read", size))
		}
		data = make([]byte, size)
		// ReadAt may report io.EOF along with a full read; only a short
		// read (the file shrank) is an error.
		if n, err := fh.ReadAt(data, 0); n < len(data) {
			return nil, fileErr(path, err)
		}
	}
	f, err := parse(data)
	if err != nil {
		if mapped {
			mmap.Unmap(data)
		}
		return nil, fileErr(path, err)
	}
	f.name = path
	f.mapped = mapped
	return f, nil
}

// Close releases the mapping. Views returned by Bytes must not be used
// afterwards. Closing twice is harmless.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	var err error
	if f.mapped {
		err = mmap.Unmap(f.data)
	}
	f.data = nil
	if err != nil {
		return fileErr(f.name, err)
	}
	return nil
}

// fileErr prefixes err with the package and, when known, the file name.
func fileErr(name string, err error) error {
	if name == "" {
		return fmt.Errorf("gguf: %w", err)
	}
	return fmt.Errorf("gguf: %s: %w", name, err)
}

func (f *File) errorf(format string, args ...any) error {
	return fileErr(f.name, fmt.Errorf(format, args...))
}

// Keys lists the metadata keys in file order.
func (f *File) Keys() []string {
	keys := make([]string, len(f.kvs))
	for i, kv := range f.kvs {
		keys[i] = kv.key
	}
	return keys
}

// Metadata returns every key and value in file order, as Write takes them.
func (f *File) Metadata() []KV {
	out := make([]KV, len(f.kvs))
	for i, kv := range f.kvs {
		out[i] = KV{kv.key, kv.value}
	}
	return out
}

// Has reports whether the key is present.
func (f *File) Has(key string) bool {
	_, ok := f.keyIndex[key]
	return ok
}

// Value returns the raw value of a key, whatever its type.
func (f *File) Value(key string) (Value, bool) {
	i, ok := f.keyIndex[key]
	if !ok {
		return Value{}, false
	}
	return f.kvs[i].value, true
}

// lookup finds a key or returns an error naming it.
func (f *File) lookup(key string) (Value, error) {
	v, ok := f.Value(key)
	if !ok {
		return Value{}, f.errorf("no metadata key %q", key)
	}
	return v, nil
}

func (f *File) typeErr(key string, v Value, want string) error {
	got := v.typ.String()
	if v.typ == TypeArray {
		got = "ARRAY of " + v.elem.String()
	}
	return f.errorf("key %q is %s, want %s", key, got, want)
}

// String returns a STRING value.
func (f *File) String(key string) (string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return "", err
	}
	if v.typ != TypeString {
		return "", f.typeErr(key, v, "STRING")
	}
	return v.str, nil
}

// Uint returns an integer value of any width that is not negative.
func (f *File) Uint(key string) (uint64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	u, ok := v.uint()
	if !ok {
		if v.typ.isSigned() {
			return 0, f.errorf("key %q is %s %d, want a non-negative integer", key, v.typ, int64(v.bits))
		}
		return 0, f.typeErr(key, v, "an unsigned integer")
	}
	return u, nil
}

// Int returns an integer value of any width that fits in an int64.
func (f *File) Int(key string) (int64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	i, ok := v.int()
	if !ok {
		if v.typ.isUnsigned() {
			return 0, f.errorf("key %q is %s %d, too large for an int64", key, v.typ, v.bits)
		}
		return 0, f.typeErr(key, v, "an integer")
	}
	return i, nil
}

// Float returns a FLOAT32 or FLOAT64 value.
func (f *File) Float(key string) (float64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	x, ok := v.float()
	if !ok {
		return 0, f.typeErr(key, v, "FLOAT32 or FLOAT64")
	}
	return x, nil
}

// Bool returns a BOOL value.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.lookup(key)
	if err != nil {
		return false, err
	}
	if v.typ != TypeBool {
		return false, f.typeErr(key, v, "BOOL")
	}
	return v.bits != 0, nil
}

// Strings returns a copy of an array of STRING.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	a, ok := v.arr.([]string)
	if !ok {
		return nil, f.typeErr(key, v, "ARRAY of STRING")
	}
	return slices.Clone(a), nil
}

// Float32s returns a copy of an array of FLOAT32.
func (f *File) Float32s(key string) ([]float32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	a, ok := v.arr.([]float32)
	if !ok {
		return nil, f.typeErr(key, v, "ARRAY of FLOAT32")
	}
	return slices.Clone(a), nil
}

// Int32s returns an array of integers of any type as int32s, failing if
// an element does not fit. (Token types are INT32 in files written by
// llama.cpp's tools, but the specification does not insist.)
func (f *File) Int32s(key string) ([]int32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	if v.typ != TypeArray || !(v.elem.isSigned() || v.elem.isUnsigned()) {
		return nil, f.typeErr(key, v, "ARRAY of an integer type")
	}
	if a, ok := v.arr.([]int32); ok {
		return slices.Clone(a), nil
	}
	out := make([]int32, v.Len())
	for i := range out {
		e := v.index(i)
		x, ok := e.int()
		if !ok || x < math.MinInt32 || x > math.MaxInt32 {
			return nil, f.errorf("key %q: element %d (%s %s) does not fit in an int32", key, i, e.typ, e)
		}
		out[i] = int32(x)
	}
	return out, nil
}

// Tensors lists every tensor in file order. The result is a copy.
func (f *File) Tensors() []TensorInfo {
	out := make([]TensorInfo, len(f.tensors))
	for i, t := range f.tensors {
		out[i] = t.clone()
	}
	return out
}

// Tensor describes the named tensor, if present.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.tensorIdx[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.tensors[i].clone(), true
}

// Bytes returns the named tensor's raw data, in the file's encoding. It is
// a view without copying: it must not be written to, and for a file from
// Open it is invalid after Close.
func (f *File) Bytes(name string) ([]byte, error) {
	if f.closed {
		return nil, f.errorf("file is closed")
	}
	i, ok := f.tensorIdx[name]
	if !ok {
		return nil, f.errorf("no tensor %q", name)
	}
	t := &f.tensors[i]
	start := f.DataOffset + t.Offset
	end := start + t.Size
	// The capacity limit makes an append by the caller copy instead of
	// overwriting the next tensor (or faulting on a read-only mapping).
	return f.data[start:end:end], nil
}

// Float32 decodes the named tensor to a new float32 slice, in ggml order
// (Dims[0] fastest), which is PyTorch's row-major order for Shape. It
// decodes F32, F16, BF16 and Q8_0; other types give an error naming the
// type and the tensor.
func (f *File) Float32(name string) ([]float32, error) {
	b, err := f.Bytes(name)
	if err != nil {
		return nil, err
	}
	t := &f.tensors[f.tensorIdx[name]]
	out, err := decodeFloat32(t.Type, b, t.NumElements())
	if err != nil {
		return nil, f.errorf("%v in tensor %q", err, name)
	}
	return out, nil
}
