package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"

	"github.com/kronfed/kronfed/internal/mmap"
)

// Reader is what File and Index have in common: lookup and reading of
// tensors by name, whether they live in one file or in shards.
type Reader interface {
	// Tensors lists every tensor, sorted by name.
	Tensors() []TensorInfo
	// Tensor describes the named tensor, if present.
	Tensor(name string) (TensorInfo, bool)
	// Bytes returns the named tensor's raw little-endian bytes.
	Bytes(name string) ([]byte, error)
	// Float32 returns the named tensor converted to float32.
	Float32(name string) ([]float32, error)
	// Close releases the underlying files or mappings.
	Close() error
}

// File is one validated safetensors file, opened with Open or Parse.
//
// Its methods may be called concurrently, except Close, which must not race
// with any other call.
type File struct {
	name string // for errors; empty for Parse
	h    *header

	// data is the whole data buffer when the file is in memory or mapped;
	// nil when reading goes through r.
	data   []byte
	mapped []byte   // the whole mapping, to unmap on Close
	r      *os.File // the ReadAt fallback
	off    int64    // file offset of the data buffer, for r
	closed bool
}

var _ Reader = (*File)(nil)

// Parse validates a complete safetensors file held in memory. The File
// refers to data without copying it, so data must not change while the File
// is in use.
func Parse(data []byte) (*File, error) {
	return parseBytes("", data)
}

func parseBytes(name string, b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fileErr(name, fmt.Errorf("file is %d bytes, too short for the 8-byte header length", len(b)))
	}
	n, err := checkLength(binary.LittleEndian.Uint64(b), int64(len(b)))
	if err != nil {
		return nil, fileErr(name, err)
	}
	h, err := parseHeader(b[8:8+n], int64(len(b))-8-n)
	if err != nil {
		return nil, fileErr(name, err)
	}
	return &File{name: name, h: h, data: b[8+n:]}, nil
}

// Open opens and validates the safetensors file at path. On unix it maps
// the file read-only, so nothing but the header is read until tensors are
// used; elsewhere, or if mapping fails, it reads tensors with ReadAt. Call
// Close when done.
func Open(path string) (*File, error) {
	return open(path, true)
}

func open(path string, useMmap bool) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := openHandle(path, fh, useMmap)
	if err != nil {
		fh.Close()
		return nil, err
	}
	return f, nil
}

// openHandle builds a File from an open handle. On success the File owns
// fh (it may already have closed it, once the mapping no longer needs it).
func openHandle(path string, fh *os.File, useMmap bool) (*File, error) {
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	size := st.Size()
	if size < 8 {
		return nil, fileErr(path, fmt.Errorf("file is %d bytes, too short for the 8-byte header length", size))
	}
	if useMmap {
		if m, err := mmap.File(fh, size); err == nil {
			f, err := parseBytes(path, m)
			if err != nil {
				mmap.Unmap(m)
				return nil, err
			}
			f.mapped = m
			// The mapping stays valid without the descriptor.
			fh.Close()
			return f, nil
		}
		// Mapping can fail on some filesystems or for lack of address space;
		// reading is slower but correct, so fall through.
	}
	var prefix [8]byte
	if err := readAt(fh, prefix[:], 0); err != nil {
		return nil, fileErr(path, err)
	}
	n, err := checkLength(binary.LittleEndian.Uint64(prefix[:]), size)
	if err != nil {
		return nil, fileErr(path, err)
	}
	hdr := make([]byte, n)
	if err := readAt(fh, hdr, 8); err != nil {
		return nil, fileErr(path, err)
	}
	h, err := parseHeader(hdr, size-8-n)
	if err != nil {
		return nil, fileErr(path, err)
	}
	return &File{name: path, h: h, r: fh, off: 8 + n}, nil
}

// readAt fills p from offset off, treating a short read as an error (the
// file shrank after we sized it).
func readAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// fileErr prefixes err with the package and, when known, the file name.
func fileErr(name string, err error) error {
	if name == "" {
		return fmt.Errorf("safetensors: %w", err)
	}
	return fmt.Errorf("safetensors: %s: %w", name, err)
}

// Metadata returns a copy of the header's "__metadata__" map (empty if the
// file has none).
func (f *File) Metadata() map[string]string {
	m := maps.Clone(f.h.meta)
	if m == nil {
		m = map[string]string{}
	}
	return m
}

// Tensors lists every tensor, sorted by name. The result is a copy.
func (f *File) Tensors() []TensorInfo {
	out := make([]TensorInfo, len(f.h.tensors))
	for i, t := range f.h.tensors {
		out[i] = t.clone()
	}
	return out
}

// Tensor describes the named tensor, if present.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.h.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.h.tensors[i].clone(), true
}

// Bytes returns the named tensor's raw little-endian bytes. For a mapped or
// parsed file this is a view without copying: it must not be written to,
// and a mapped view is invalid after Close. Otherwise it is a fresh copy.
func (f *File) Bytes(name string) ([]byte, error) {
	if f.closed {
		return nil, fileErr(f.name, errors.New("file is closed"))
	}
	i, ok := f.h.index[name]
	if !ok {
		return nil, fileErr(f.name, fmt.Errorf("no tensor %q", name))
	}
	t := &f.h.tensors[i]
	if f.data != nil {
		// The capacity limit makes an append by the caller copy instead of
		// overwriting the next tensor (or faulting on the read-only mapping).
		return f.data[t.Begin:t.End:t.End], nil
	}
	buf := make([]byte, t.End-t.Begin)
	if err := readAt(f.r, buf, f.off+t.Begin); err != nil {
		return nil, fileErr(f.name, fmt.Errorf("tensor %q: %w", name, err))
	}
	return buf, nil
}

// Float32 returns the named tensor converted to a new float32 slice. It
// converts F32, F16, BF16, F64 (rounding) and the F8 types, and refuses
// integer and bool tensors.
func (f *File) Float32(name string) ([]float32, error) {
	b, err := f.Bytes(name)
	if err != nil {
		return nil, err
	}
	t := &f.h.tensors[f.h.index[name]]
	out := make([]float32, t.NumElements())
	if err := DecodeFloat32(out, t.DType, b); err != nil {
		return nil, fileErr(f.name, fmt.Errorf("tensor %q: %w", name, err))
	}
	return out, nil
}

// Float64 returns the named F64 tensor as a new float64 slice, exactly; any
// other dtype is refused (use Float32 to convert).
func (f *File) Float64(name string) ([]float64, error) {
	b, err := f.Bytes(name)
	if err != nil {
		return nil, err
	}
	t := &f.h.tensors[f.h.index[name]]
	if t.DType != F64 {
		return nil, fileErr(f.name, fmt.Errorf("tensor %q is %s, not F64", name, t.DType))
	}
	out := make([]float64, t.NumElements())
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out, nil
}

// Close unmaps or closes the file. Views returned by Bytes from a mapped
// file must not be used afterwards. Closing twice is harmless.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	var err error
	if f.mapped != nil {
		err = mmap.Unmap(f.mapped)
		f.mapped = nil
	}
	if f.r != nil {
		err = errors.Join(err, f.r.Close())
	}
	f.data = nil
	if err != nil {
		return fileErr(f.name, err)
	}
	return nil
}
