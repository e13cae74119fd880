package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// raw builds GGUF bytes field by field, independently of the writer, so
// tests can produce both golden files and malformed ones.
type raw struct {
	b  []byte
	v1 bool
}

// newRaw starts a file with the magic, the version and the two counts.
func newRaw(version uint32, nTensors, nKV uint64) *raw {
	r := &raw{v1: version == 1}
	r.b = append(r.b, "GGUF"...)
	r.u32(version)
	r.n(nTensors)
	r.n(nKV)
	return r
}

func (r *raw) u8(v uint8) *raw   { r.b = append(r.b, v); return r }
func (r *raw) u32(v uint32) *raw { r.b = binary.LittleEndian.AppendUint32(r.b, v); return r }
func (r *raw) u64(v uint64) *raw { r.b = binary.LittleEndian.AppendUint64(r.b, v); return r }

// n appends a count or length in the version's width.
func (r *raw) n(v uint64) *raw {
	if r.v1 {
		return r.u32(uint32(v))
	}
	return r.u64(v)
}

func (r *raw) s(v string) *raw { r.n(uint64(len(v))); r.b = append(r.b, v...); return r }

// kvU32 appends a UINT32 metadata entry.
func (r *raw) kvU32(key string, v uint32) *raw { return r.s(key).u32(4).u32(v) }

// tensor appends a tensor info.
func (r *raw) tensor(name string, typ GGMLType, off uint64, dims ...uint64) *raw {
	r.s(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.n(d)
	}
	return r.u32(uint32(typ)).u64(off)
}

// pad appends zeros to a multiple of 32, then n data bytes.
func (r *raw) data(n int) []byte {
	for len(r.b)%32 != 0 {
		r.b = append(r.b, 0)
	}
	return append(r.b, make([]byte, n)...)
}

func mustWrite(t testing.TB, version int, kvs []KV, tensors []WriteTensor) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, version, kvs, tensors); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustParse(t testing.TB, b []byte) *File {
	t.Helper()
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func randFloats(rng *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * scale)
	}
	return x
}

// allValues has one metadata entry of every value type, scalar and array,
// with edge values.
func allValues() []KV {
	nested, _ := ValueOf([]Value{
		mustValue([]string{"a", "b"}),
		mustValue([]int8{-1}),
		mustValue([]Value{mustValue([]bool{})}),
	})
	return []KV{
		{"general.architecture", "llama"},
		{"t.u8", uint8(255)},
		{"t.i8", int8(-128)},
		{"t.u16", uint16(65535)},
		{"t.i16", int16(-32768)},
		{"t.u32", uint32(math.MaxUint32)},
		{"t.i32", int32(math.MinInt32)},
		{"t.f32", float32(-1.5e-7)},
		{"t.bool", true},
		{"t.str", "héllo\x00\xff"}, // values are kept byte for byte
		{"t.empty_str", ""},
		{"t.u64", uint64(math.MaxUint64)},
		{"t.i64", int64(math.MinInt64)},
		{"t.f64", math.Pi},
		{"t.a.u8", []uint8{0, 1, 255}},
		{"t.a.i8", []int8{-128, 127}},
		{"t.a.u16", []uint16{1, 65535}},
		{"t.a.i16", []int16{-32768, 7}},
		{"t.a.u32", []uint32{0, math.MaxUint32}},
		{"t.a.i32", []int32{-5, 6}},
		{"t.a.f32", []float32{0.25, float32(math.Inf(-1))}},
		{"t.a.bool", []bool{true, false}},
		{"t.a.str", []string{"<unk>", "", "▁the"}},
		{"t.a.u64", []uint64{math.MaxUint64}},
		{"t.a.i64", []int64{math.MinInt64, 0}},
		{"t.a.f64", []float64{1e300}},
		{"t.a.empty", []float32{}},
		{"t.a.nested", nested},
	}
}

func mustValue(x any) Value {
	v, err := ValueOf(x)
	if err != nil {
		panic(err)
	}
	return v
}

// allTensors has a tensor of every type the writer encodes, plus a scalar,
// an empty tensor and a raw Q4_K one.
func allTensors(rng *rand.Rand) []WriteTensor {
	q4k := make([]byte, Q4_K.BlockSize()*2)
	for i := range q4k {
		q4k[i] = byte(rng.IntN(256))
	}
	return []WriteTensor{
		{Name: "f32", Type: F32, Dims: []int{5, 3}, Data: randFloats(rng, 15, 1)},
		{Name: "f16", Type: F16, Dims: []int{7}, Data: randFloats(rng, 7, 10)},
		{Name: "bf16", Type: BF16, Dims: []int{4, 2, 3}, Data: randFloats(rng, 24, 1e-3)},
		{Name: "q8", Type: Q8_0, Dims: []int{64, 3, 1, 2}, Data: randFloats(rng, 384, 0.02)},
		{Name: "scalar", Type: F32, Dims: []int{}, Data: []float32{42}},
		{Name: "empty", Type: F16, Dims: []int{0, 4}, Data: []float32{}},
		{Name: "q4k", Type: Q4_K, Dims: []int{256, 2}, Raw: q4k},
		{Name: "blk.0.attn_q.weight", Type: F32, Dims: []int{8}, Data: randFloats(rng, 8, 1)},
	}
}
