package secagg

import (
	"encoding/binary"
	"fmt"
)

// Every encoding starts with a version byte and a tag naming the type, so a
// message handed to the wrong decoder, or written by a newer version, is
// refused with an error that says so. Integers are big-endian; byte strings
// and lists carry a uint32 length that is checked against what remains
// before anything is allocated; trailing bytes are an error.
const wireVersion = 1

const (
	tagConfig         = 'C'
	tagAdvertiseKeys  = 'A'
	tagKeyBundle      = 'B'
	tagShareKeys      = 'S'
	tagShareBundle    = 'R'
	tagMaskedInput    = 'M'
	tagUnmaskRequest  = 'Q'
	tagUnmaskResponse = 'U'
)

// reader decodes with a sticky error: after the first failure every read
// returns zero values and done reports the failure.
type reader struct {
	what string
	b    []byte
	off  int
	err  error
}

func newReader(data []byte, tag byte, what string) (*reader, error) {
	if len(data) < 2 {
		return nil, fmt.Errorf("secagg: decode %s: %d bytes, too short for a header", what, len(data))
	}
	if data[0] != wireVersion {
		return nil, fmt.Errorf("secagg: decode %s: version %d, this build reads version %d", what, data[0], wireVersion)
	}
	if data[1] != tag {
		return nil, fmt.Errorf("secagg: decode %s: tag %q, want %q", what, data[1], tag)
	}
	return &reader{what: what, b: data, off: 2}, nil
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("secagg: decode %s at byte %d: %s", r.what, r.off, fmt.Sprintf(format, args...))
	}
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > r.remaining() {
		r.fail("need %d bytes, %d remain", n, r.remaining())
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) u8() uint8 {
	s := r.bytes(1)
	if s == nil {
		return 0
	}
	return s[0]
}

func (r *reader) u32() uint32 {
	s := r.bytes(4)
	if s == nil {
		return 0
	}
	return binary.BigEndian.Uint32(s)
}

func (r *reader) u64() uint64 {
	s := r.bytes(8)
	if s == nil {
		return 0
	}
	return binary.BigEndian.Uint64(s)
}

// blob reads a length-prefixed byte string of at most max bytes and returns
// a copy (nil for length zero).
func (r *reader) blob(max int, field string) []byte {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(max) {
		r.fail("%s of %d bytes, at most %d allowed", field, n, max)
		return nil
	}
	s := r.bytes(int(n))
	if len(s) == 0 {
		return nil
	}
	return append([]byte(nil), s...)
}

// count reads a list length and checks that the list can fit in what
// remains, given each element takes at least minSize bytes.
func (r *reader) count(minSize int, field string) int {
	n := r.u32()
	if r.err != nil {
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(r.remaining()) {
		r.fail("%d %s cannot fit in %d remaining bytes", n, field, r.remaining())
		return 0
	}
	return int(n)
}

func (r *reader) done() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d trailing bytes", len(r.b)-r.off)
	}
	return r.err
}

func header(tag byte, capacity int) []byte {
	b := make([]byte, 0, capacity)
	return append(b, wireVersion, tag)
}

func appendBlob(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
