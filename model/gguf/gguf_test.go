package gguf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/safetensors"
)

func TestRoundTrip(t *testing.T) {
	for _, version := range []int{1, 2, 3} {
		for _, align := range []uint32{0, 64} {
			t.Run(fmt.Sprintf("v%d/align%d", version, align), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(version), uint64(align)))
				kvs := allValues()
				wantAlign := DefaultAlignment
				if align != 0 {
					kvs = append(kvs, KV{AlignmentKey, align})
					wantAlign = int(align)
				}
				tensors := allTensors(rng)
				b := mustWrite(t, version, kvs, tensors)
				f := mustParse(t, b)
				if f.Version != version || f.Alignment != wantAlign || f.DataOffset%int64(wantAlign) != 0 {
					t.Fatalf("version %d alignment %d data offset %d", f.Version, f.Alignment, f.DataOffset)
				}
				checkMetadata(t, f, kvs)
				checkTensors(t, f, tensors)
				// Writing what we read reproduces the file exactly.
				if again := mustWrite(t, version, f.Metadata(), rawTensors(t, f)); !bytes.Equal(again, b) {
					t.Fatal("rewriting the parsed file changed it")
				}
			})
		}
	}
}

func checkMetadata(t *testing.T, f *File, kvs []KV) {
	t.Helper()
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
		v, ok := f.Value(kv.Key)
		if !ok {
			t.Fatalf("key %q missing", kv.Key)
		}
		want := mustValue(kv.Value)
		if !reflect.DeepEqual(v.Any(), want.Any()) || v.Type() != want.Type() || v.ElemType() != want.ElemType() {
			t.Errorf("key %q: got %s %v, want %s %v", kv.Key, v.Type(), v, want.Type(), want)
		}
	}
	if got := f.Keys(); !slices.Equal(got, keys) {
		t.Errorf("keys %q, want %q", got, keys)
	}
}

func checkTensors(t *testing.T, f *File, tensors []WriteTensor) {
	t.Helper()
	infos := f.Tensors()
	if len(infos) != len(tensors) {
		t.Fatalf("%d tensors, want %d", len(infos), len(tensors))
	}
	for i, wt := range tensors {
		ti := infos[i]
		if ti.Name != wt.Name || ti.Type != wt.Type || !slices.Equal(ti.Dims, wt.Dims) {
			t.Errorf("tensor %d: got %s %s %v, want %s %s %v", i, ti.Name, ti.Type, ti.Dims, wt.Name, wt.Type, wt.Dims)
		}
		if ti.Offset%int64(f.Alignment) != 0 {
			t.Errorf("tensor %q at unaligned offset %d", ti.Name, ti.Offset)
		}
		if byName, ok := f.Tensor(wt.Name); !ok || !reflect.DeepEqual(byName, ti) {
			t.Errorf("Tensor(%q) = %+v, %v", wt.Name, byName, ok)
		}
		got, err := f.Float32(wt.Name)
		if wt.Raw != nil {
			want := fmt.Sprintf("unsupported tensor type %s in tensor %q", wt.Type, wt.Name)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Float32(%q) error %v, want %q", wt.Name, err, want)
			}
			if b, _ := f.Bytes(wt.Name); !bytes.Equal(b, wt.Raw) {
				t.Errorf("Bytes(%q) differs from what was written", wt.Name)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(wt.Data) || int64(len(got)) != ti.NumElements() {
			t.Fatalf("tensor %q: %d values, want %d", wt.Name, len(got), len(wt.Data))
		}
		switch wt.Type {
		case F32, F16, BF16:
			for j, x := range wt.Data {
				if want := roundTo(wt.Type, x); got[j] != want {
					t.Fatalf("tensor %q[%d] = %v, want %v", wt.Name, j, got[j], want)
				}
			}
		case Q8_0:
			checkQ8_0(t, wt.Data, got)
		}
	}
}

func roundTo(t GGMLType, x float32) float32 {
	switch t {
	case F16:
		return safetensors.F16ToFloat32(safetensors.Float32ToF16(x))
	case BF16:
		return safetensors.BF16ToFloat32(safetensors.Float32ToBF16(x))
	}
	return x
}

// checkQ8_0 bounds the error of each decoded value against a float64
// computation of the block's scale d = max|x|/127: rounding to an integer
// costs at most d/2, and storing d as F16 (relative error 2^-11) at most
// 127·d·2^-11 more.
func checkQ8_0(t *testing.T, x, got []float32) {
	t.Helper()
	for blk := 0; blk < len(x); blk += 32 {
		var amax float64
		for _, v := range x[blk : blk+32] {
			amax = max(amax, math.Abs(float64(v)))
		}
		d := amax / 127
		bound := d*(0.5+127*math.Exp2(-11)) + 1e-12
		for j := blk; j < blk+32; j++ {
			if e := math.Abs(float64(got[j]) - float64(x[j])); e > bound {
				t.Fatalf("Q8_0 value %d: got %v for %v, error %g > bound %g", j, got[j], x[j], e, bound)
			}
		}
	}
}

func rawTensors(t *testing.T, f *File) []WriteTensor {
	t.Helper()
	var out []WriteTensor
	for _, ti := range f.Tensors() {
		b, err := f.Bytes(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, WriteTensor{Name: ti.Name, Type: ti.Type, Dims: ti.Dims, Raw: b})
	}
	return out
}

// TestQ8_0MatchesGGML checks the rounding of quantize_row_q8_0_ref on a
// block with scale exactly 1: halves round away from zero.
func TestQ8_0MatchesGGML(t *testing.T) {
	x := make([]float32, 32)
	copy(x, []float32{127, 2.5, -2.5, 0.5, -0.5, 1.49, -126.6, 3})
	b, err := quantizeQ8_0(x)
	if err != nil {
		t.Fatal(err)
	}
	if d := binary.LittleEndian.Uint16(b); d != safetensors.Float32ToF16(1) {
		t.Fatalf("scale %#04x, want F16 1.0", d)
	}
	want := []int8{127, 3, -3, 1, -1, 1, -127, 3}
	for j, w := range want {
		if q := int8(b[2+j]); q != w {
			t.Errorf("q[%d] = %d, want %d", j, q, w)
		}
	}
	// An all-zero block has scale 0 and decodes to zeros; a tiny one
	// whose 1/d overflows float32 still encodes.
	for _, v := range []float32{0, 1e-40} {
		z := make([]float32, 32)
		z[5] = v
		b, err := quantizeQ8_0(z)
		if err != nil {
			t.Fatal(err)
		}
		dec, _ := decodeFloat32(Q8_0, b, 32)
		if slices.ContainsFunc(dec, func(f float32) bool { return f != 0 }) {
			t.Errorf("block with max %g decodes to %v", v, dec)
		}
	}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), 1e7} {
		z := make([]float32, 32)
		z[3] = bad
		if _, err := quantizeQ8_0(z); err == nil {
			t.Errorf("quantizing %v succeeded", bad)
		}
	}
}

// TestGolden compares Write's bytes with files built field by field, for
// the version-dependent widths.
func TestGolden(t *testing.T) {
	for _, version := range []uint32{1, 2, 3} {
		r := newRaw(version, 2, 2)
		r.s("general.architecture").u32(uint32(TypeString)).s("llama")
		r.s("a.list").u32(uint32(TypeArray)).u32(uint32(TypeInt16)).n(2)
		r.b = binary.LittleEndian.AppendUint16(r.b, 0xfffe)
		r.b = binary.LittleEndian.AppendUint16(r.b, 3)
		r.tensor("w", F32, 0, 3, 2)
		r.tensor("b", F16, 32, 2)
		want := r.data(0)
		for _, v := range []float32{1, 2, 3, 4, 5, 6} {
			want = binary.LittleEndian.AppendUint32(want, math.Float32bits(v))
		}
		want = append(want, make([]byte, 8)...)
		want = binary.LittleEndian.AppendUint16(want, safetensors.Float32ToF16(-2))
		want = binary.LittleEndian.AppendUint16(want, safetensors.Float32ToF16(0.5))
		want = append(want, make([]byte, 28)...)

		got := mustWrite(t, int(version), []KV{
			{"general.architecture", "llama"},
			{"a.list", []int16{-2, 3}},
		}, []WriteTensor{
			{Name: "w", Type: F32, Dims: []int{3, 2}, Data: []float32{1, 2, 3, 4, 5, 6}},
			{Name: "b", Type: F16, Dims: []int{2}, Data: []float32{-2, 0.5}},
		})
		if !bytes.Equal(got, want) {
			t.Fatalf("v%d:\n got %x\nwant %x", version, got, want)
		}
		f := mustParse(t, want)
		if w, _ := f.Float32("w"); !slices.Equal(w, []float32{1, 2, 3, 4, 5, 6}) {
			t.Errorf("w = %v", w)
		}
		if ti, _ := f.Tensor("w"); !slices.Equal(ti.Shape(), []int{2, 3}) || ti.Size != 24 {
			t.Errorf("w: shape %v size %d", ti.Shape(), ti.Size)
		}
	}
}

func TestAccessors(t *testing.T) {
	f := mustParse(t, mustWrite(t, 3, append(allValues(),
		KV{"neg", int32(-5)},
		KV{"pos", int16(5)},
		KV{"big", []uint32{1, math.MaxUint32}},
		KV{"small", []uint8{1, 255}},
	), nil))
	check := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", what, err, want)
		}
	}
	if s, err := f.String("general.architecture"); s != "llama" || err != nil {
		t.Errorf("String = %q, %v", s, err)
	}
	_, err := f.String("t.u32")
	check("String(UINT32)", err, `key "t.u32" is UINT32, want STRING`)
	_, err = f.String("nope")
	check("String(missing)", err, `no metadata key "nope"`)

	if u, err := f.Uint("t.u8"); u != 255 || err != nil {
		t.Errorf("Uint(u8) = %d, %v", u, err)
	}
	if u, err := f.Uint("pos"); u != 5 || err != nil {
		t.Errorf("Uint(INT16 5) = %d, %v", u, err)
	}
	_, err = f.Uint("neg")
	check("Uint(-5)", err, `key "neg" is INT32 -5, want a non-negative integer`)
	_, err = f.Uint("t.f32")
	check("Uint(FLOAT32)", err, `key "t.f32" is FLOAT32, want an unsigned integer`)

	if i, err := f.Int("t.i64"); i != math.MinInt64 || err != nil {
		t.Errorf("Int(i64) = %d, %v", i, err)
	}
	if i, err := f.Int("t.u32"); i != math.MaxUint32 || err != nil {
		t.Errorf("Int(u32) = %d, %v", i, err)
	}
	_, err = f.Int("t.u64")
	check("Int(MaxUint64)", err, "too large for an int64")

	if x, err := f.Float("t.f32"); x != float64(float32(-1.5e-7)) || err != nil {
		t.Errorf("Float(f32) = %v, %v", x, err)
	}
	if x, err := f.Float("t.f64"); x != math.Pi || err != nil {
		t.Errorf("Float(f64) = %v, %v", x, err)
	}
	_, err = f.Float("t.i8")
	check("Float(INT8)", err, `key "t.i8" is INT8, want FLOAT32 or FLOAT64`)

	if b, err := f.Bool("t.bool"); !b || err != nil {
		t.Errorf("Bool = %v, %v", b, err)
	}
	_, err = f.Bool("t.a.bool")
	check("Bool(array)", err, `key "t.a.bool" is ARRAY of BOOL, want BOOL`)

	if s, err := f.Strings("t.a.str"); !slices.Equal(s, []string{"<unk>", "", "▁the"}) || err != nil {
		t.Errorf("Strings = %q, %v", s, err)
	}
	_, err = f.Strings("t.a.i32")
	check("Strings(INT32 array)", err, `key "t.a.i32" is ARRAY of INT32, want ARRAY of STRING`)

	if x, err := f.Float32s("t.a.f32"); len(x) != 2 || x[0] != 0.25 || err != nil {
		t.Errorf("Float32s = %v, %v", x, err)
	}
	_, err = f.Float32s("t.a.f64")
	check("Float32s(FLOAT64 array)", err, "want ARRAY of FLOAT32")

	if x, err := f.Int32s("t.a.i32"); !slices.Equal(x, []int32{-5, 6}) || err != nil {
		t.Errorf("Int32s = %v, %v", x, err)
	}
	if x, err := f.Int32s("small"); !slices.Equal(x, []int32{1, 255}) || err != nil {
		t.Errorf("Int32s(UINT8) = %v, %v", x, err)
	}
	_, err = f.Int32s("big")
	check("Int32s(big)", err, `key "big": element 1 (UINT32 4294967295) does not fit in an int32`)
	_, err = f.Int32s("t.a.str")
	check("Int32s(strings)", err, "want ARRAY of an integer type")

	// Results are copies: changing them does not change the File.
	s, _ := f.Strings("t.a.str")
	s[0] = "x"
	v, _ := f.Value("t.a.str")
	v.Any().([]string)[1] = "y"
	if s2, _ := f.Strings("t.a.str"); s2[0] != "<unk>" || s2[1] != "" {
		t.Errorf("File changed through a returned slice: %q", s2)
	}
	if !f.Has("t.u8") || f.Has("t.u9") {
		t.Error("Has")
	}
	if got := mustValue([]string{"a", "b"}).String(); got != `[2]STRING{"a", "b"}` {
		t.Errorf("Value.String = %s", got)
	}
}

func TestWriteErrors(t *testing.T) {
	ok := []WriteTensor{{Name: "a", Type: F32, Dims: []int{1}, Data: []float32{1}}}
	cases := []struct {
		name    string
		version int
		kvs     []KV
		tensors []WriteTensor
		want    string
	}{
		{"version", 4, nil, nil, "cannot write version 4"},
		{"dup key", 2, []KV{{"a", uint8(1)}, {"a", uint8(2)}}, nil, `duplicate key "a"`},
		{"empty key", 2, []KV{{"", uint8(1)}}, nil, "empty key"},
		{"bad utf8 key", 2, []KV{{"a\xff", uint8(1)}}, nil, "not valid UTF-8"},
		{"int", 2, []KV{{"a", 5}}, nil, `key "a": unsupported Go type int: use a sized integer type`},
		{"alignment type", 2, []KV{{AlignmentKey, uint64(32)}}, nil, "must be a UINT32 power of two"},
		{"alignment value", 2, []KV{{AlignmentKey, uint32(48)}}, nil, "must be a UINT32 power of two"},
		{"array of scalars", 2, []KV{{"a", []Value{mustValue(uint8(1))}}}, nil, "element 0 is UINT8, not ARRAY"},
		{"dup tensor", 2, nil, append(ok, ok...), `duplicate tensor name "a"`},
		{"dims", 2, nil, []WriteTensor{{Name: "a", Type: F32, Dims: []int{1, 1, 1, 1, 1}}}, "5 dimensions"},
		{"negative dim", 2, nil, []WriteTensor{{Name: "a", Type: F32, Dims: []int{-1}}}, "out of range"},
		{"v1 dim", 1, nil, []WriteTensor{{Name: "a", Type: F32, Dims: []int{1 << 32, 0}}}, "out of range"},
		{"data length", 2, nil, []WriteTensor{{Name: "a", Type: F32, Dims: []int{2}, Data: []float32{1}}}, "Data has 1 values, want 2"},
		{"raw length", 2, nil, []WriteTensor{{Name: "a", Type: Q4_K, Dims: []int{256}, Raw: make([]byte, 10)}}, "Raw has 10 bytes, want 144"},
		{"raw and data", 2, nil, []WriteTensor{{Name: "a", Type: F32, Dims: []int{1}, Data: []float32{1}, Raw: make([]byte, 4)}}, "both Data and Raw"},
		{"encode Q4_K", 2, nil, []WriteTensor{{Name: "a", Type: Q4_K, Dims: []int{256}, Data: make([]float32, 256)}}, "cannot encode type Q4_K"},
		{"Q8_0 blocks", 2, nil, []WriteTensor{{Name: "a", Type: Q8_0, Dims: []int{16}, Data: make([]float32, 16)}}, "not a multiple of the Q8_0 block length 32"},
		{"Q8_0 NaN", 2, nil, []WriteTensor{{Name: "a", Type: Q8_0, Dims: []int{32}, Data: append([]float32{float32(math.NaN())}, make([]float32, 31)...)}}, `tensor "a": Q8_0 cannot encode the non-finite value NaN at index 0`},
		{"unknown type", 2, nil, []WriteTensor{{Name: "a", Type: 4, Dims: []int{1}, Raw: []byte{0}}}, "unknown type GGMLType(4)"},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		err := Write(&buf, c.version, c.kvs, c.tensors)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "gguf: ") {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: wrote %d bytes despite the error", c.name, buf.Len())
		}
	}
}

// TestReject feeds malformed files, each built field by field, and checks
// the error text.
func TestReject(t *testing.T) {
	big := uint64(1) << 62
	valid := func(v uint32) *raw { return newRaw(v, 0, 1).kvU32("a", 1) }
	kv := func(v uint32, f func(r *raw)) []byte {
		r := newRaw(v, 0, 1).s("k")
		f(r)
		return r.b
	}
	nested := func(depth int) []byte {
		r := newRaw(2, 0, 1).s("k").u32(uint32(TypeArray))
		for range depth - 1 {
			r.u32(uint32(TypeArray)).n(1)
		}
		return r.u32(uint32(TypeUint8)).n(0).b
	}
	tensors := func(v uint32, align uint32, dataLen int, add func(r *raw)) []byte {
		n := uint64(0)
		if align != 0 {
			n = 1
		}
		r := newRaw(v, 2, n)
		if align != 0 {
			r.kvU32(AlignmentKey, align)
		}
		add(r)
		return r.data(dataLen)
	}
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "file is 0 bytes, too short"},
		{"magic", []byte("GGML\x01\x00\x00\x00\x00\x00\x00\x00"), `bad magic "GGML"`},
		{"big-endian magic", []byte("FUGG\x00\x00\x00\x03"), "big-endian"},
		{"big-endian version", binary.BigEndian.AppendUint32([]byte("GGUF"), 3), "version 3 byte-swapped: the file is big-endian"},
		{"version", newRaw(4, 0, 0).b, "at byte 4: unsupported GGUF version 4"},
		{"tensor count", newRaw(2, big, 0).b, "tensor count 4611686018427387904 is impossible"},
		{"kv count", newRaw(2, 0, big).b, "metadata count 4611686018427387904 is impossible"},
		{"kv count v1", newRaw(1, 0, 1<<32-1).b, "at byte 12: metadata count 4294967295 is impossible"},
		{"truncated kv", valid(2).b[:38], `key "a": at byte 37: truncated: UINT32 value needs 4 bytes, 1 left`},
		{"key length", newRaw(2, 0, 1).n(big).u64(0).b, "at byte 24: truncated: key of metadata entry 0 of 4611686018427387904 bytes, 8 left"},
		{"string length", kv(2, func(r *raw) { r.u32(uint32(TypeString)).n(big) }), `key "k": at byte 37: truncated: string of 4611686018427387904 bytes`},
		{"array length", kv(3, func(r *raw) { r.u32(uint32(TypeArray)).u32(uint32(TypeUint32)).n(big) }), `key "k": at byte 41: array length 4611686018427387904 is impossible`},
		{"string array length", kv(1, func(r *raw) { r.u32(uint32(TypeArray)).u32(uint32(TypeString)).n(3).n(0) }), "array length 3 is impossible"},
		{"array element", kv(2, func(r *raw) { r.u32(uint32(TypeArray)).u32(uint32(TypeString)).n(1).n(5).u8('x') }), "truncated: string element 0 of 5 bytes, 1 left"},
		{"value type", kv(2, func(r *raw) { r.u32(13).u32(0) }), `key "k": at byte 37: unknown value type 13`},
		{"element type", kv(2, func(r *raw) { r.u32(uint32(TypeArray)).u32(99).n(0) }), "unknown array element type 99"},
		{"bool", kv(2, func(r *raw) { r.u32(uint32(TypeBool)).u8(2) }), `key "k": at byte 37: BOOL value is 2, want 0 or 1`},
		{"bool array", kv(2, func(r *raw) { r.u32(uint32(TypeArray)).u32(uint32(TypeBool)).n(2).u8(1).u8(7) }), "BOOL array element 1 is 7"},
		{"nesting", nested(9), "arrays nested more than 8 deep"},
		{"dup key", newRaw(2, 0, 2).kvU32("a", 1).kvU32("a", 2).b, `at byte 41: duplicate key "a"`},
		{"empty key", newRaw(2, 0, 1).kvU32("", 1).b, "at byte 24: metadata entry 0: empty key"},
		{"utf8 key", newRaw(2, 0, 1).kvU32("a\xc3", 1).b, `key "a\xc3" is not valid UTF-8`},
		{"long key", newRaw(2, 0, 1).kvU32(strings.Repeat("k", 1<<16), 1).b, "is 65536 bytes, longer than the 65535 allowed"},
		{"alignment type", newRaw(2, 0, 1).s(AlignmentKey).u32(uint32(TypeUint64)).u64(32).b, `key "general.alignment" is UINT64, want UINT32`},
		{"alignment zero", newRaw(2, 0, 1).kvU32(AlignmentKey, 0).b, `key "general.alignment" is 0, want a power of two`},
		{"alignment 48", newRaw(2, 0, 1).kvU32(AlignmentKey, 48).b, "is 48, want a power of two"},
		{"truncated tensor", newRaw(3, 1, 0).s("w").u32(3).u64(1).u64(1).u32(0).b, `tensor "w": at byte 53: truncated: dimension needs 8 bytes, 4 left`},
		{"empty tensor name", newRaw(2, 1, 0).tensor("", F32, 0, 1).b, "tensor 0: empty tensor name"},
		{"utf8 tensor name", newRaw(2, 1, 0).tensor("\xff", F32, 0, 1).b, "tensor name \"\\xff\" is not valid UTF-8"},
		{"dims", newRaw(2, 1, 0).tensor("w", F32, 0, 1, 1, 1, 1, 1).b, `tensor "w": at byte 33: 5 dimensions, more than the 4 ggml supports`},
		{"dim too large", newRaw(2, 1, 0).tensor("w", F32, 0, 1<<63).b, "dimension 0 is 9223372036854775808, too large"},
		{"ggml type", newRaw(2, 1, 0).tensor("w", 4, 0, 1).b, `tensor "w": at byte 45: unknown ggml type 4`},
		{"ggml type 41", newRaw(2, 1, 0).tensor("w", 41, 0, 1).b, "unknown ggml type 41"},
		{"offset too large", newRaw(2, 1, 0).tensor("w", F32, 1<<63, 1).b, "data offset 9223372036854775808 is too large"},
		{"block", newRaw(2, 1, 0).tensor("w", Q8_0, 0, 16, 2).b, `tensor "w": first dimension 16 is not a multiple of the Q8_0 block length 32`},
		{"scalar Q4_K", newRaw(2, 1, 0).tensor("w", Q4_K, 0).b, "first dimension 1 is not a multiple of the Q4_K block length 256"},
		{"elements overflow", newRaw(2, 1, 0).tensor("w", F32, 0, 1<<32, 1<<32, 1<<32).b, "overflow the element count"},
		{"size overflow", newRaw(2, 1, 0).tensor("w", F32, 0, 1<<31, 1<<31).b, "overflow the size in bytes"},
		{"dup tensor", tensors(2, 0, 8, func(r *raw) { r.tensor("w", F32, 0, 1).tensor("w", F32, 32, 1) }), `duplicate tensor name "w"`},
		{"misaligned", tensors(2, 0, 64, func(r *raw) { r.tensor("w", F32, 0, 1).tensor("v", F32, 4, 1) }), `tensor "v": data offset 4 is not a multiple of the alignment 32`},
		{"misaligned 64", tensors(2, 64, 128, func(r *raw) { r.tensor("w", F32, 0, 1).tensor("v", F32, 32, 1) }), "not a multiple of the alignment 64"},
		{"past end", tensors(2, 0, 40, func(r *raw) { r.tensor("w", F32, 0, 1).tensor("v", F32, 32, 4) }), `tensor "v": data offset 32 + 16 bytes runs past the end of the file (data section at byte 96, file 136 bytes)`},
		{"far past end", tensors(1, 0, 40, func(r *raw) { r.tensor("w", F32, 0, 1).tensor("v", F32, 1<<40, 4) }), "runs past the end of the file"},
		{"overlap", tensors(2, 0, 128, func(r *raw) { r.tensor("w", F32, 64, 1).tensor("v", F32, 32, 9) }), `tensor "v" (data offset 32, 36 bytes) overlaps tensor "w" (data offset 64)`},
	}
	for _, c := range cases {
		f, err := Parse(c.b)
		if err == nil {
			t.Errorf("%s: accepted: %d tensors", c.name, len(f.Tensors()))
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "gguf: ") {
			t.Errorf("%s:\n got %v\nwant %q", c.name, err, c.want)
		}
	}
}

// TestTruncated cuts a valid file of each version at every byte: each
// prefix must fail cleanly (the last tensor fills its padded slot, so no
// prefix is complete).
func TestTruncated(t *testing.T) {
	for _, version := range []int{1, 2, 3} {
		b := mustWrite(t, version, allValues()[:16], []WriteTensor{
			{Name: "q", Type: Q8_0, Dims: []int{32}, Data: make([]float32, 32)},
			{Name: "w", Type: F32, Dims: []int{8}, Data: make([]float32, 8)},
		})
		mustParse(t, b)
		for n := range len(b) {
			if _, err := Parse(b[:n]); err == nil {
				t.Fatalf("v%d: prefix of %d of %d bytes accepted", version, n, len(b))
			}
		}
	}
}

func TestOpen(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tensors := allTensors(rng)
	b := mustWrite(t, 2, allValues(), tensors)
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	checkTensors(t, f, tensors)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Bytes("f32"); err == nil || !strings.Contains(err.Error(), path+": file is closed") {
		t.Errorf("Bytes after Close: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Float32("nope"); err == nil {
		t.Error("Float32 of a missing tensor succeeded")
	}

	// Errors from a file name it.
	if err := os.WriteFile(path, b[:len(b)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.HasPrefix(err.Error(), "gguf: "+path+": tensor ") {
		t.Errorf("Open(truncated) error %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.gguf")); err == nil {
		t.Error("Open of a missing file succeeded")
	}
	empty := filepath.Join(t.TempDir(), "empty.gguf")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("Open(empty) error %v", err)
	}
}

// TestNoTensors checks that a file without tensors needs no padding, so a
// huge alignment costs nothing.
func TestNoTensors(t *testing.T) {
	for _, version := range []int{1, 2, 3} {
		b := mustWrite(t, version, []KV{{AlignmentKey, uint32(1 << 31)}}, nil)
		if len(b) > 64 {
			t.Fatalf("v%d: %d bytes", version, len(b))
		}
		f := mustParse(t, b)
		if f.Alignment != 1<<31 || f.DataOffset != 1<<31 || len(f.Tensors()) != 0 {
			t.Errorf("v%d: alignment %d data offset %d", version, f.Alignment, f.DataOffset)
		}
	}
}

func TestTypeNames(t *testing.T) {
	for ty, tr := range typeTraits {
		if ty.String() != tr.name || ty.BlockLen() != int(tr.blockLen) || ty.BlockSize() != int(tr.blockSize) {
			t.Errorf("type %d: %s %d %d", ty, ty, ty.BlockLen(), ty.BlockSize())
		}
	}
	if s := GGMLType(4).String(); s != "GGMLType(4)" || GGMLType(4).Known() {
		t.Errorf("removed type 4: %s", s)
	}
	if s := ValueType(13).String(); s != "ValueType(13)" {
		t.Errorf("ValueType(13) = %s", s)
	}
}
