package safetensors

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Tensor is a tensor to write: raw little-endian Data of the given DType and
// Shape (empty Shape for a scalar).
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// F32Tensor encodes data as an F32 tensor.
func F32Tensor(name string, shape []int, data []float32) Tensor {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Tensor{Name: name, DType: F32, Shape: slices.Clone(shape), Data: b}
}

// F64Tensor encodes data as an F64 tensor.
func F64Tensor(name string, shape []int, data []float64) Tensor {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return Tensor{Name: name, DType: F64, Shape: slices.Clone(shape), Data: b}
}

// F16Tensor encodes data as an F16 tensor, rounding to nearest even.
func F16Tensor(name string, shape []int, data []float32) Tensor {
	b := make([]byte, 2*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint16(b[2*i:], Float32ToF16(v))
	}
	return Tensor{Name: name, DType: F16, Shape: slices.Clone(shape), Data: b}
}

// BF16Tensor encodes data as a BF16 tensor, rounding to nearest even.
func BF16Tensor(name string, shape []int, data []float32) Tensor {
	b := make([]byte, 2*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint16(b[2*i:], Float32ToBF16(v))
	}
	return Tensor{Name: name, DType: BF16, Shape: slices.Clone(shape), Data: b}
}

// Write writes a safetensors file to w. It validates everything first
// (dtypes, shapes against data lengths, unique names, UTF-8 text) and writes
// nothing if that fails.
//
// The output is deterministic: tensors are laid out by descending dtype
// order, then by name, exactly like the reference implementation, which
// keeps each tensor aligned to its element size; the header lists
// "__metadata__" first with sorted keys (omitted when metadata is empty),
// then the tensors in layout order. See the package documentation.
func Write(w io.Writer, metadata map[string]string, tensors []Tensor) error {
	hdr, order, err := buildHeader(metadata, tensors)
	if err != nil {
		return err
	}
	if err := writeBody(w, hdr, order, tensors); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// writeBody writes a header made by buildHeader and the tensor data.
func writeBody(w io.Writer, hdr []byte, order []int, tensors []Tensor) error {
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(hdr)))
	if _, err := w.Write(prefix[:]); err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	for _, i := range order {
		if len(tensors[i].Data) == 0 {
			continue
		}
		if _, err := w.Write(tensors[i].Data); err != nil {
			return fmt.Errorf("tensor %q: %w", tensors[i].Name, err)
		}
	}
	return nil
}

// buildHeader validates the input and returns the padded header and the
// order in which tensor data follows it.
func buildHeader(metadata map[string]string, tensors []Tensor) ([]byte, []int, error) {
	keys := make([]string, 0, len(metadata))
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, fmt.Errorf("safetensors: metadata %q: key or value is not valid UTF-8", k)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)

	seen := make(map[string]bool, len(tensors))
	for _, t := range tensors {
		if err := checkTensor(t); err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %w", t.Name, err)
		}
		if seen[t.Name] {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: given twice", t.Name)
		}
		seen[t.Name] = true
	}

	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := &tensors[i], &tensors[j]
		if ra, rb := dtypeRank[a.DType], dtypeRank[b.DType]; ra != rb {
			return rb - ra // descending
		}
		return strings.Compare(a.Name, b.Name)
	})

	b := []byte{'{'}
	if len(keys) > 0 {
		b = appendJSONString(b, metadataKey)
		b = append(b, ':', '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, metadata[k])
		}
		b = append(b, '}')
	}
	var off int64
	for n, i := range order {
		t := &tensors[i]
		if n > 0 || len(keys) > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t.Name)
		b = append(b, `:{"dtype":`...)
		b = appendJSONString(b, string(t.DType))
		b = append(b, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(d), 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendInt(b, off, 10)
		b = append(b, ',')
		if int64(len(t.Data)) > math.MaxInt64-off {
			return nil, nil, errors.New("safetensors: total data size overflows 64 bits")
		}
		off += int64(len(t.Data))
		b = strconv.AppendInt(b, off, 10)
		b = append(b, "]}"...)
	}
	b = append(b, '}')
	// Pad with spaces so the data starts 8-byte aligned in the file (the
	// length prefix is 8 bytes too).
	for len(b)%8 != 0 {
		b = append(b, ' ')
	}
	if len(b) > MaxHeaderSize {
		return nil, nil, fmt.Errorf("safetensors: header of %d bytes exceeds the %d-byte limit", len(b), MaxHeaderSize)
	}
	return b, order, nil
}

func checkTensor(t Tensor) error {
	if t.Name == metadataKey {
		return errors.New(`"__metadata__" is reserved and cannot name a tensor`)
	}
	if !utf8.ValidString(t.Name) {
		return errors.New("name is not valid UTF-8")
	}
	if !t.DType.Valid() {
		return fmt.Errorf("unknown dtype %q", string(t.DType))
	}
	nb, ok := numBytes(t.Shape, t.DType)
	if !ok {
		if slices.ContainsFunc(t.Shape, func(d int) bool { return d < 0 }) {
			return fmt.Errorf("shape %v has a negative dimension", t.Shape)
		}
		return fmt.Errorf("shape %v of %s has more bytes than fit in 64 bits", t.Shape, t.DType)
	}
	if int64(len(t.Data)) != nb {
		return fmt.Errorf("%d bytes of data, but shape %v of %s needs %d", len(t.Data), t.Shape, t.DType, nb)
	}
	return nil
}

// appendJSONString appends s as a JSON string escaped the way the reference
// (serde_json) escapes it: only '"', '\\' and control characters, with the
// short forms where JSON has them. Everything else, non-ASCII included, is
// written as is. s must be valid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

// WriteFile writes a safetensors file to path atomically: it writes and
// syncs a temporary file in the same directory, then renames it over path,
// so readers never see a partial file. The file gets mode 0644.
func WriteFile(path string, metadata map[string]string, tensors []Tensor) (err error) {
	// Validate before touching the filesystem.
	hdr, order, err := buildHeader(metadata, tensors)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := writeBody(bw, hdr, order, tensors); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	// Make the rename itself durable. Not every platform can sync a
	// directory, and the data is already safe, so failure is ignored.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
