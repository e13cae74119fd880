package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header accepted, in bytes. It is the
// reference implementation's limit; it keeps a corrupt length field from
// making us allocate gigabytes before anything is validated.
const MaxHeaderSize = 100_000_000

// metadataKey is the header key holding the free-form string metadata.
const metadataKey = "__metadata__"

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name  string
	DType DType
	// Shape is the tensor's shape; empty for a scalar (one element). A zero
	// anywhere makes the tensor empty.
	Shape []int
	// Begin and End delimit the tensor's bytes in the data buffer, which
	// starts right after the header. End-Begin is NumElements·DType.Size().
	Begin, End int64
}

// NumElements returns the number of elements: the product of Shape (1 for a
// scalar). The reader and writer guarantee it fits in an int64.
func (t TensorInfo) NumElements() int64 {
	n, _ := numElements(t.Shape)
	return n
}

// NumBytes returns the size of the tensor's data in bytes.
func (t TensorInfo) NumBytes() int64 { return t.End - t.Begin }

func (t TensorInfo) clone() TensorInfo {
	t.Shape = slices.Clone(t.Shape)
	if t.Shape == nil {
		t.Shape = []int{}
	}
	return t
}

// numElements multiplies out a shape left to right, failing on a negative
// dimension or once the running product no longer fits in an int64. The
// left-to-right order matches the reference, so both accept the same shapes.
func numElements(shape []int) (int64, bool) {
	n := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		n = lo
	}
	return int64(n), true
}

// numBytes returns the byte size of a tensor, with the same overflow rule.
func numBytes(shape []int, dt DType) (int64, bool) {
	n, ok := numElements(shape)
	if !ok {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(n), uint64(dt.Size()))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// header is a parsed and validated header.
type header struct {
	meta    map[string]string
	tensors []TensorInfo // sorted by name
	index   map[string]int
}

// checkLength validates the header length prefix n of a file of size bytes
// and returns it as an int64.
func checkLength(n uint64, size int64) (int64, error) {
	if n > MaxHeaderSize {
		return 0, fmt.Errorf("header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(size-8) {
		return 0, fmt.Errorf("header length %d exceeds the %d bytes after the length prefix", n, size-8)
	}
	return int64(n), nil
}

// parseHeader parses the JSON header hdr and validates it against a data
// buffer of dataLen bytes. Its errors do not name the file; callers add it.
func parseHeader(hdr []byte, dataLen int64) (*header, error) {
	if !utf8.Valid(hdr) {
		return nil, errors.New("header is not valid UTF-8")
	}
	// The reference rejects a header that does not start with '{' (no
	// leading whitespace); so do we, to accept no more than it does.
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, errors.New("header does not start with '{'")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	r := jsonReader{dec}
	if err := r.delim('{', "header"); err != nil {
		return nil, err
	}
	h := &header{index: map[string]int{}}
	seenMeta := false
	for dec.More() {
		key, err := r.key()
		if err != nil {
			return nil, err
		}
		if key == metadataKey {
			if seenMeta {
				return nil, errors.New(`"__metadata__" appears twice in the header`)
			}
			seenMeta = true
			if h.meta, _, err = r.stringMap(`"__metadata__"`); err != nil {
				return nil, err
			}
			continue
		}
		if _, dup := h.index[key]; dup {
			return nil, fmt.Errorf("tensor %q: appears twice in the header", key)
		}
		t, err := r.tensorInfo(key)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", key, err)
		}
		h.index[key] = len(h.tensors)
		h.tensors = append(h.tensors, t)
	}
	if err := r.delim('}', "header"); err != nil {
		return nil, err
	}
	// Only padding may follow the object. The spec pads with spaces; like the
	// reference's JSON parser we also allow the other JSON whitespace.
	end := int(dec.InputOffset())
	for i, c := range hdr[end:] {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return nil, fmt.Errorf("unexpected byte %q at header offset %d after the JSON object", c, end+i)
		}
	}
	if err := checkSurrogates(hdr[:end]); err != nil {
		return nil, err
	}
	if err := validateLayout(h.tensors, dataLen); err != nil {
		return nil, err
	}
	slices.SortFunc(h.tensors, func(a, b TensorInfo) int { return strings.Compare(a.Name, b.Name) })
	for i, t := range h.tensors {
		h.index[t.Name] = i
	}
	return h, nil
}

// validateLayout checks each tensor's size against its shape and dtype, and
// that the tensors tile the data buffer exactly: no holes, no overlaps, no
// trailing bytes. Without the tiling rule a file could hide data (or a
// second interpretation of the same bytes) from some readers but not others.
func validateLayout(tensors []TensorInfo, dataLen int64) error {
	for _, t := range tensors {
		nb, ok := numBytes(t.Shape, t.DType)
		if !ok {
			return fmt.Errorf("tensor %q: shape %v of %s has more bytes than fit in 64 bits", t.Name, t.Shape, t.DType)
		}
		if t.End < t.Begin {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] end before they begin", t.Name, t.Begin, t.End)
		}
		if t.End > dataLen {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] extend past the %d-byte data buffer", t.Name, t.Begin, t.End, dataLen)
		}
		if t.End-t.Begin != nb {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] span %d bytes, but shape %v of %s needs %d", t.Name, t.Begin, t.End, t.End-t.Begin, t.Shape, t.DType, nb)
		}
	}
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := &tensors[i], &tensors[j]
		if a.Begin != b.Begin {
			return cmpInt64(a.Begin, b.Begin)
		}
		if a.End != b.End {
			return cmpInt64(a.End, b.End)
		}
		return strings.Compare(a.Name, b.Name)
	})
	pos, prev := int64(0), ""
	for k, i := range order {
		t := &tensors[i]
		switch {
		case t.Begin < pos:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q, which ends at %d", t.Name, t.Begin, t.End, prev, pos)
		case t.Begin > pos && k == 0:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] leave bytes [0, %d) of the data buffer unused%s", t.Name, t.Begin, t.End, t.Begin, gapHint)
		case t.Begin > pos:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] leave bytes [%d, %d) after tensor %q unused%s", t.Name, t.Begin, t.End, pos, t.Begin, prev, gapHint)
		}
		pos, prev = t.End, t.Name
	}
	if pos != dataLen {
		if len(tensors) == 0 {
			return fmt.Errorf("the header lists no tensors, but the data buffer has %d bytes", dataLen)
		}
		return fmt.Errorf("bytes [%d, %d) at the end of the data buffer belong to no tensor%s", pos, dataLen, gapHint)
	}
	return nil
}

// gapHint says what data no tensor claims usually means: an entry deleted
// from the header (the tensor is missing) or offsets edited wrongly.
const gapHint = " (a tensor missing from the header, or wrong data_offsets)"

// checkSurrogates rejects \u escapes encoding a lone UTF-16 surrogate.
// encoding/json silently decodes them to U+FFFD, while the reference refuses
// the file; accepting them would let a name read differently here and there.
// js must already be known to be valid JSON, so every \u has 4 hex digits.
func checkSurrogates(js []byte) error {
	inString := false
	for i := 0; i < len(js); i++ {
		c := js[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if js[i+1] != 'u' {
				i++ // a one-character escape
				continue
			}
			r := hex4(js[i+2 : i+6])
			switch {
			case r >= 0xd800 && r < 0xdc00:
				if i+11 < len(js) && js[i+6] == '\\' && js[i+7] == 'u' {
					if lo := hex4(js[i+8 : i+12]); lo >= 0xdc00 && lo < 0xe000 {
						i += 11
						continue
					}
				}
				return fmt.Errorf("header has a lone UTF-16 surrogate escape %s at offset %d", js[i:i+6], i)
			case r >= 0xdc00 && r < 0xe000:
				return fmt.Errorf("header has a lone UTF-16 surrogate escape %s at offset %d", js[i:i+6], i)
			}
			i += 5
		}
	}
	return nil
}

// hex4 decodes 4 hex digits already validated by the JSON decoder.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// jsonReader walks a JSON document token by token. We walk instead of
// unmarshalling into maps because encoding/json silently keeps the last of
// duplicate keys, and a duplicated tensor name must be an error.
type jsonReader struct{ dec *json.Decoder }

func (r jsonReader) token() (json.Token, error) {
	tok, err := r.dec.Token()
	if err == io.EOF {
		return nil, errors.New("invalid JSON: unexpected end of header")
	}
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	return tok, nil
}

func (r jsonReader) delim(want json.Delim, what string) error {
	tok, err := r.token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%s: expected '%c', found %s", what, rune(want), describe(tok))
	}
	return nil
}

// key reads an object key. The decoder only yields strings in key position.
func (r jsonReader) key() (string, error) {
	tok, err := r.token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("invalid JSON: expected an object key, found %s", describe(tok))
	}
	return s, nil
}

// stringMap reads an object whose values are all strings, refusing
// duplicate keys; what names it in errors. A JSON null yields null = true
// (the reference accepts "__metadata__": null as no metadata).
func (r jsonReader) stringMap(what string) (m map[string]string, null bool, err error) {
	tok, err := r.token()
	if err != nil {
		return nil, false, err
	}
	if tok == nil {
		return nil, true, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, false, fmt.Errorf("%s must be an object of strings, found %s", what, describe(tok))
	}
	m = map[string]string{}
	for r.dec.More() {
		k, err := r.key()
		if err != nil {
			return nil, false, err
		}
		if _, dup := m[k]; dup {
			return nil, false, fmt.Errorf("%s: key %q appears twice", what, k)
		}
		tok, err := r.token()
		if err != nil {
			return nil, false, err
		}
		v, ok := tok.(string)
		if !ok {
			return nil, false, fmt.Errorf("%s: key %q: value must be a string, found %s", what, k, describe(tok))
		}
		m[k] = v
	}
	return m, false, r.delim('}', what)
}

// tensorInfo reads one tensor entry. Every field is required and unknown
// fields are refused: a writer that adds fields we would drop is a writer
// whose files we do not understand.
func (r jsonReader) tensorInfo(name string) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	if err := r.delim('{', "entry"); err != nil {
		return t, err
	}
	var haveDType, haveShape, haveOffsets bool
	for r.dec.More() {
		k, err := r.key()
		if err != nil {
			return t, err
		}
		switch k {
		case "dtype":
			if haveDType {
				return t, errors.New(`"dtype" appears twice`)
			}
			haveDType = true
			tok, err := r.token()
			if err != nil {
				return t, err
			}
			s, ok := tok.(string)
			if !ok {
				return t, fmt.Errorf(`"dtype" must be a string, found %s`, describe(tok))
			}
			if !DType(s).Valid() {
				return t, fmt.Errorf("unknown dtype %q", s)
			}
			t.DType = DType(s)
		case "shape":
			if haveShape {
				return t, errors.New(`"shape" appears twice`)
			}
			haveShape = true
			dims, err := r.counts("shape", math.MaxInt)
			if err != nil {
				return t, err
			}
			t.Shape = make([]int, len(dims))
			for i, d := range dims {
				t.Shape[i] = int(d)
			}
		case "data_offsets":
			if haveOffsets {
				return t, errors.New(`"data_offsets" appears twice`)
			}
			haveOffsets = true
			offs, err := r.counts("data_offsets", math.MaxInt64)
			if err != nil {
				return t, err
			}
			if len(offs) != 2 {
				return t, fmt.Errorf(`"data_offsets" must hold 2 integers, found %d`, len(offs))
			}
			t.Begin, t.End = int64(offs[0]), int64(offs[1])
		default:
			return t, fmt.Errorf("unknown key %q", k)
		}
	}
	if err := r.delim('}', "entry"); err != nil {
		return t, err
	}
	switch {
	case !haveDType:
		return t, errors.New(`missing "dtype"`)
	case !haveShape:
		return t, errors.New(`missing "shape"`)
	case !haveOffsets:
		return t, errors.New(`missing "data_offsets"`)
	}
	return t, nil
}

// counts reads an array of non-negative integers no larger than limit.
func (r jsonReader) counts(field string, limit uint64) ([]uint64, error) {
	if err := r.delim('[', strconv.Quote(field)); err != nil {
		return nil, err
	}
	var out []uint64
	for r.dec.More() {
		tok, err := r.token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%q must hold integers, found %s", field, describe(tok))
		}
		v, err := parseCount(string(num), limit)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", field, err)
		}
		out = append(out, v)
	}
	return out, r.delim(']', strconv.Quote(field))
}

// parseCount parses a JSON number that must be a non-negative integer
// written without fraction or exponent (the reference refuses 1.0 and 1e3
// for sizes too).
func parseCount(s string, limit uint64) (uint64, error) {
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%s is negative", s)
	}
	if strings.ContainsAny(s, ".eE") {
		return 0, fmt.Errorf("%s is not an integer", s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > limit {
		return 0, fmt.Errorf("%s is too large", s)
	}
	return v, nil
}

// describe renders a JSON token for an error message.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		default:
			return fmt.Sprintf("'%c'", rune(v))
		}
	case string:
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return "string " + strconv.Quote(v)
	case json.Number:
		return "number " + string(v)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(tok)
}
