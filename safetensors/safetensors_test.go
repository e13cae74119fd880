package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// rawFile assembles a file from a header string and data, with no padding
// added, so tests control every byte.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// knownHeader is what the reference writes for knownTensors (layout I64,
// F32, BF16, U8; then names), before padding.
const knownHeader = `{"__metadata__":{"format":"pt"},` +
	`"d":{"dtype":"I64","shape":[1,0],"data_offsets":[0,0]},` +
	`"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
	`"c":{"dtype":"BF16","shape":[],"data_offsets":[8,10]},` +
	`"b":{"dtype":"U8","shape":[3],"data_offsets":[10,13]}}`

var knownData = []byte{
	0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, // a: 1, -2
	0x80, 0x3f, // c: bf16 1
	1, 2, 3, // b
}

func knownTensors() []Tensor {
	return []Tensor{
		{Name: "b", DType: U8, Shape: []int{3}, Data: []byte{1, 2, 3}},
		F32Tensor("a", []int{2}, []float32{1, -2}),
		BF16Tensor("c", nil, []float32{1}),
		{Name: "d", DType: I64, Shape: []int{1, 0}},
	}
}

func knownFile() []byte {
	h := knownHeader
	for (len(h))%8 != 0 {
		h += " "
	}
	return rawFile(h, knownData)
}

func TestKnownFileParse(t *testing.T) {
	f, err := Parse(knownFile())
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Metadata(); !reflect.DeepEqual(got, map[string]string{"format": "pt"}) {
		t.Errorf("metadata %v", got)
	}
	want := []TensorInfo{
		{Name: "a", DType: F32, Shape: []int{2}, Begin: 0, End: 8},
		{Name: "b", DType: U8, Shape: []int{3}, Begin: 10, End: 13},
		{Name: "c", DType: BF16, Shape: []int{}, Begin: 8, End: 10},
		{Name: "d", DType: I64, Shape: []int{1, 0}, Begin: 0, End: 0},
	}
	if got := f.Tensors(); !reflect.DeepEqual(got, want) {
		t.Errorf("tensors\n got %+v\nwant %+v", got, want)
	}
	if c, _ := f.Tensor("c"); c.NumElements() != 1 {
		t.Errorf("scalar has %d elements", c.NumElements())
	}
	if d, _ := f.Tensor("d"); d.NumElements() != 0 {
		t.Errorf("empty tensor has %d elements", d.NumElements())
	}
	a, err := f.Float32("a")
	if err != nil || !slices.Equal(a, []float32{1, -2}) {
		t.Errorf("a = %v, %v", a, err)
	}
	c, err := f.Float32("c")
	if err != nil || !slices.Equal(c, []float32{1}) {
		t.Errorf("c = %v, %v", c, err)
	}
	b, err := f.Bytes("b")
	if err != nil || !bytes.Equal(b, []byte{1, 2, 3}) || cap(b) != 3 {
		t.Errorf("b = %v (cap %d), %v", b, cap(b), err)
	}
	if _, err := f.Float32("b"); err == nil || err.Error() != `safetensors: tensor "b": dtype U8 is not a floating-point type and is not converted to float32` {
		t.Errorf("Float32 of U8: %v", err)
	}
	if _, err := f.Bytes("zz"); err == nil || err.Error() != `safetensors: no tensor "zz"` {
		t.Errorf("missing tensor: %v", err)
	}
	if _, ok := f.Tensor("zz"); ok {
		t.Error("Tensor(zz) found")
	}
}

// TestKnownFileWrite checks that the writer produces the reference's bytes.
func TestKnownFileWrite(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, map[string]string{"format": "pt"}, knownTensors()); err != nil {
		t.Fatal(err)
	}
	if want := knownFile(); !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("writer output differs\n got %q\nwant %q", buf.Bytes(), want)
	}
}

// TestForeignLayout reads a file laid out differently from ours (name
// order, keys in another order, padding beyond alignment, unaligned data,
// escapes), as other writers may produce.
func TestForeignLayout(t *testing.T) {
	h := `{"b":{"data_offsets":[4,6],"shape":[1],"dtype":"F16"}, "a\u00e9\n":{"shape":[1],"dtype":"F32","data_offsets":[0,4]},"__metadata__":{"k":"v\"<>"}}   `
	f, err := Parse(rawFile(h, []byte{0, 0, 0x80, 0x3f, 0x00, 0x3c}))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Metadata()["k"]; got != `v"<>` {
		t.Errorf("metadata %q", got)
	}
	a, err := f.Float32("a\u00e9\n")
	if err != nil || a[0] != 1 {
		t.Errorf("a = %v, %v", a, err)
	}
	b, err := f.Float32("b")
	if err != nil || b[0] != 1 {
		t.Errorf("b = %v, %v", b, err)
	}
	// A surrogate pair escape is one character, and an escaped backslash
	// before a "u" is not an escape.
	f, err = Parse(rawFile(`{"\ud83d\ude00\\ud800":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Tensor("\U0001F600\\ud800"); !ok {
		t.Errorf("tensors %v", f.Tensors())
	}
	// An empty header object and no data is a valid, empty file.
	if f, err := Parse(rawFile("{}", nil)); err != nil || len(f.Tensors()) != 0 {
		t.Errorf("empty file: %v", err)
	}
	// "__metadata__": null means no metadata, as in the reference.
	if f, err := Parse(rawFile(`{"__metadata__":null}`, nil)); err != nil || len(f.Metadata()) != 0 {
		t.Errorf("null metadata: %v", err)
	}
}

func TestRejections(t *testing.T) {
	f32 := func(name, shape, offs string) string {
		return `"` + name + `":{"dtype":"F32","shape":` + shape + `,"data_offsets":` + offs + `}`
	}
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"short file", []byte{1, 2, 3}, "file is 3 bytes, too short for the 8-byte header length"},
		{"header past file", append(binary.LittleEndian.AppendUint64(nil, 100), "{}"...), "header length 100 exceeds the 2 bytes after the length prefix"},
		{"header over limit", append(binary.LittleEndian.AppendUint64(nil, 200_000_000), "{}"...), "header length 200000000 exceeds the 100000000-byte limit"},
		{"header length overflow", append(binary.LittleEndian.AppendUint64(nil, math.MaxUint64), "{}"...), "header length 18446744073709551615 exceeds the 100000000-byte limit"},
		{"invalid json", rawFile(`{"a":`, nil), `tensor "a": invalid JSON: unexpected end of header`},
		{"invalid json syntax", rawFile(`{"a" 1}`, nil), `tensor "a": invalid JSON: invalid character '1' after object key`},
		{"invalid json top", rawFile(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}`, nil), "invalid JSON: unexpected end of header"},
		{"invalid json comma", rawFile(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]} "b":1}`, nil), "invalid JSON: invalid character '\"' after object key:value pair"},
		{"not an object", rawFile(`[]`, nil), "header does not start with '{'"},
		{"leading space", rawFile(` {}`, nil), "header does not start with '{'"},
		{"empty header", rawFile(``, nil), "header does not start with '{'"},
		{"trailing garbage", rawFile(`{} x`, nil), "unexpected byte 'x' at header offset 3 after the JSON object"},
		{"trailing nul", rawFile("{}\x00", nil), `unexpected byte '\x00' at header offset 2 after the JSON object`},
		{"lone high surrogate", rawFile(`{"\ud800":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, nil), `header has a lone UTF-16 surrogate escape \ud800 at offset 2`},
		{"lone low surrogate", rawFile(`{"__metadata__":{"k":"x\\\uDC00"}}`, nil), `header has a lone UTF-16 surrogate escape \uDC00 at offset 25`},
		{"reversed surrogates", rawFile(`{"\ud800\ud800\udc00":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, nil), `header has a lone UTF-16 surrogate escape \ud800 at offset 2`},
		{"invalid utf8", rawFile("{\"\xff\":1}", nil), "header is not valid UTF-8"},
		{"duplicate tensor", rawFile(`{`+f32("a", "[1]", "[0,4]")+`,`+f32("a", "[1]", "[4,8]")+`}`, make([]byte, 8)), `tensor "a": appears twice in the header`},
		{"duplicate metadata", rawFile(`{"__metadata__":{},"__metadata__":{}}`, nil), `"__metadata__" appears twice in the header`},
		{"duplicate metadata key", rawFile(`{"__metadata__":{"k":"a","k":"b"}}`, nil), `"__metadata__": key "k" appears twice`},
		{"metadata not string", rawFile(`{"__metadata__":{"k":1}}`, nil), `"__metadata__": key "k": value must be a string, found number 1`},
		{"metadata nested", rawFile(`{"__metadata__":{"k":{}}}`, nil), `"__metadata__": key "k": value must be a string, found an object`},
		{"metadata not object", rawFile(`{"__metadata__":"x"}`, nil), `"__metadata__" must be an object of strings, found string "x"`},
		{"unknown dtype", rawFile(`{"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": unknown dtype "F31"`},
		{"dtype not string", rawFile(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": "dtype" must be a string, found number 4`},
		{"negative shape", rawFile(`{`+f32("a", "[-1]", "[0,4]")+`}`, make([]byte, 4)), `tensor "a": "shape": -1 is negative`},
		{"fractional shape", rawFile(`{`+f32("a", "[1.5]", "[0,4]")+`}`, make([]byte, 4)), `tensor "a": "shape": 1.5 is not an integer`},
		{"exponent shape", rawFile(`{`+f32("a", "[1e0]", "[0,4]")+`}`, make([]byte, 4)), `tensor "a": "shape": 1e0 is not an integer`},
		{"huge shape", rawFile(`{`+f32("a", "[18446744073709551616]", "[0,4]")+`}`, make([]byte, 4)), `tensor "a": "shape": 18446744073709551616 is too large`},
		{"shape not array", rawFile(`{`+f32("a", "3", "[0,4]")+`}`, make([]byte, 4)), `tensor "a": "shape": expected '[', found number 3`},
		{"shape of strings", rawFile(`{`+f32("a", `["1"]`, "[0,4]")+`}`, make([]byte, 4)), `tensor "a": "shape" must hold integers, found string "1"`},
		{"negative offset", rawFile(`{`+f32("a", "[1]", "[-4,0]")+`}`, make([]byte, 4)), `tensor "a": "data_offsets": -4 is negative`},
		{"fractional offset", rawFile(`{`+f32("a", "[1]", "[0,4.0]")+`}`, make([]byte, 4)), `tensor "a": "data_offsets": 4.0 is not an integer`},
		{"three offsets", rawFile(`{`+f32("a", "[1]", "[0,4,8]")+`}`, make([]byte, 4)), `tensor "a": "data_offsets" must hold 2 integers, found 3`},
		{"element overflow", rawFile(`{`+f32("a", "[4294967296,4294967296]", "[0,4]")+`}`, make([]byte, 4)), `tensor "a": shape [4294967296 4294967296] of F32 has more bytes than fit in 64 bits`},
		{"byte overflow", rawFile(`{`+f32("a", "[4611686018427387904]", "[0,4]")+`}`, make([]byte, 4)), `tensor "a": shape [4611686018427387904] of F32 has more bytes than fit in 64 bits`},
		{"end before begin", rawFile(`{`+f32("a", "[1]", "[4,0]")+`}`, make([]byte, 4)), `tensor "a": data_offsets [4, 0] end before they begin`},
		{"past buffer", rawFile(`{`+f32("a", "[2]", "[0,8]")+`}`, make([]byte, 4)), `tensor "a": data_offsets [0, 8] extend past the 4-byte data buffer`},
		{"size mismatch", rawFile(`{`+f32("a", "[2]", "[0,4]")+`}`, make([]byte, 4)), `tensor "a": data_offsets [0, 4] span 4 bytes, but shape [2] of F32 needs 8`},
		{"overlap", rawFile(`{`+f32("a", "[1]", "[0,4]")+`,`+f32("b", "[1]", "[2,6]")+`}`, make([]byte, 6)), `tensor "b": data_offsets [2, 6] overlap tensor "a", which ends at 4`},
		{"same range", rawFile(`{`+f32("a", "[1]", "[0,4]")+`,`+f32("b", "[1]", "[0,4]")+`}`, make([]byte, 4)), `tensor "b": data_offsets [0, 4] overlap tensor "a", which ends at 4`},
		{"hole", rawFile(`{`+f32("a", "[1]", "[0,4]")+`,`+f32("b", "[1]", "[8,12]")+`}`, make([]byte, 12)), `tensor "b": data_offsets [8, 12] leave bytes [4, 8) after tensor "a" unused` + gapHint},
		{"hole at start", rawFile(`{`+f32("a", "[1]", "[4,8]")+`}`, make([]byte, 8)), `tensor "a": data_offsets [4, 8] leave bytes [0, 4) of the data buffer unused` + gapHint},
		{"trailing data", rawFile(`{`+f32("a", "[1]", "[0,4]")+`}`, make([]byte, 8)), "bytes [4, 8) at the end of the data buffer belong to no tensor" + gapHint},
		{"data without tensors", rawFile(`{}`, make([]byte, 8)), "the header lists no tensors, but the data buffer has 8 bytes"},
		{"missing dtype", rawFile(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": missing "dtype"`},
		{"missing offsets", rawFile(`{"a":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), `tensor "a": missing "data_offsets"`},
		{"unknown key", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, make([]byte, 4)), `tensor "a": unknown key "x"`},
		{"duplicate field", rawFile(`{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": "dtype" appears twice`},
		{"entry not object", rawFile(`{"a":[1]}`, nil), `tensor "a": entry: expected '{', found an array`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if strconv.IntSize == 32 && strings.Contains(c.name, "overflow") {
				t.Skip("on 32-bit platforms these dimensions are refused earlier, as too large for int")
			}
			_, err := Parse(c.file)
			if err == nil {
				t.Fatalf("accepted")
			}
			if want := "safetensors: " + c.want; err.Error() != want {
				t.Errorf("error\n got %s\nwant %s", err, want)
			}
		})
	}
}

// TestOpenErrorsNameFile checks that errors from Open carry the path, on
// both the mapped and the ReadAt paths.
func TestOpenErrorsNameFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(path, rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "safetensors: " + path + `: tensor "w": data_offsets [0, 4] span 4 bytes, but shape [2] of F32 needs 8`
	for _, useMmap := range []bool{true, false} {
		if _, err := open(path, useMmap); err == nil || err.Error() != want {
			t.Errorf("mmap=%v: %v", useMmap, err)
		}
	}
	short := filepath.Join(t.TempDir(), "short.safetensors")
	if err := os.WriteFile(short, []byte{1}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(short); err == nil || err.Error() != "safetensors: "+short+": file is 1 bytes, too short for the 8-byte header length" {
		t.Errorf("short: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// allDTypes builds one tensor of every dtype, plus scalars and empties,
// with data that differs per tensor.
func allDTypes() []Tensor {
	var out []Tensor
	shapes := [][]int{{3, 2}, {}, {0}, {2, 0, 5}, {7}}
	for i, dt := range dtypeOrder {
		for j, shape := range shapes {
			n, _ := numBytes(shape, dt)
			data := make([]byte, n)
			for k := range data {
				data[k] = byte(i*31 + j*7 + k*13 + 1)
			}
			out = append(out, Tensor{Name: string(dt) + "/" + string(rune('a'+j)), DType: dt, Shape: shape, Data: data})
		}
	}
	return out
}

// readers opens the same content through every path: in memory, mapped,
// and ReadAt.
func readers(t *testing.T, content []byte) map[string]*File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.safetensors")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	mem, err := Parse(content)
	if err != nil {
		t.Fatal(err)
	}
	mapped, err := open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mapped.Close() })
	plain, err := open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	if plain.data != nil || plain.r == nil {
		t.Fatal("open without mmap did not take the ReadAt path")
	}
	return map[string]*File{"memory": mem, "mapped": mapped, "readat": plain}
}

func TestRoundTripAllDTypes(t *testing.T) {
	tensors := allDTypes()
	meta := map[string]string{"format": "pt", "z": "last", "": "empty key", "ü\n\"": "\x01\u2028"}
	var buf bytes.Buffer
	if err := Write(&buf, meta, tensors); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%8 != 0 && binary.LittleEndian.Uint64(buf.Bytes())%8 != 0 {
		t.Errorf("header length %d not 8-aligned", binary.LittleEndian.Uint64(buf.Bytes()))
	}
	for how, f := range readers(t, buf.Bytes()) {
		if got := f.Metadata(); !reflect.DeepEqual(got, meta) {
			t.Errorf("%s: metadata %q", how, got)
		}
		infos := f.Tensors()
		if len(infos) != len(tensors) {
			t.Fatalf("%s: %d tensors, want %d", how, len(infos), len(tensors))
		}
		if !slices.IsSortedFunc(infos, func(a, b TensorInfo) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("%s: Tensors not sorted by name", how)
		}
		for _, want := range tensors {
			info, ok := f.Tensor(want.Name)
			if !ok {
				t.Fatalf("%s: %s missing", how, want.Name)
			}
			if info.DType != want.DType || len(info.Shape) != len(want.Shape) || (len(want.Shape) > 0 && !slices.Equal(info.Shape, want.Shape)) {
				t.Errorf("%s: %s: info %+v", how, want.Name, info)
			}
			// Layout keeps every tensor aligned to its element size.
			if info.Begin%int64(want.DType.Size()) != 0 {
				t.Errorf("%s: %s: begins at %d, unaligned for %s", how, want.Name, info.Begin, want.DType)
			}
			got, err := f.Bytes(want.Name)
			if err != nil || !bytes.Equal(got, want.Data) {
				t.Errorf("%s: %s: bytes %v, %v", how, want.Name, got, err)
			}
		}
	}
}

// TestReadersAgree compares every tensor through the three read paths,
// including the float conversion.
func TestReadersAgree(t *testing.T) {
	vals := []float32{0, 1, -2, 0.1, 65504, 1e-7, float32(math.Inf(-1)), 3e38}
	f64 := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(f64[8*i:], math.Float64bits(float64(v)))
	}
	tensors := []Tensor{
		F32Tensor("f32", []int{2, 4}, vals),
		F16Tensor("f16", []int{8}, vals),
		BF16Tensor("bf16", []int{4, 2}, vals),
		{Name: "f64", DType: F64, Shape: []int{8}, Data: f64},
		{Name: "i32", DType: I32, Shape: []int{2}, Data: make([]byte, 8)},
	}
	var buf bytes.Buffer
	if err := Write(&buf, nil, tensors); err != nil {
		t.Fatal(err)
	}
	rs := readers(t, buf.Bytes())
	for _, tn := range tensors {
		var ref []float32
		var refErr string
		for _, how := range []string{"memory", "mapped", "readat"} {
			got, err := rs[how].Float32(tn.Name)
			errText := ""
			if err != nil {
				// Only the file name may differ between the paths.
				errText = strings.Replace(err.Error(), rs["mapped"].name+": ", "", 1)
			}
			if how == "memory" {
				ref, refErr = got, errText
				continue
			}
			if !slices.Equal(got, ref) || errText != refErr {
				t.Errorf("%s via %s: %v (%q), memory gave %v (%q)", tn.Name, how, got, errText, ref, refErr)
			}
		}
		switch tn.Name {
		case "f32", "f64":
			if !slices.Equal(ref, vals) {
				t.Errorf("%s: %v, want %v", tn.Name, ref, vals)
			}
		case "f16":
			want := []float32{0, 1, -2, F16ToFloat32(Float32ToF16(0.1)), 65504, F16ToFloat32(Float32ToF16(1e-7)), float32(math.Inf(-1)), float32(math.Inf(1))}
			if !slices.Equal(ref, want) {
				t.Errorf("f16: %v, want %v", ref, want)
			}
		case "i32":
			if !strings.HasSuffix(refErr, `tensor "i32": dtype I32 is not a floating-point type and is not converted to float32`) {
				t.Errorf("i32: %q", refErr)
			}
		}
	}
	// After Close, reads fail instead of touching unmapped memory.
	for how, f := range rs {
		if err := f.Close(); err != nil {
			t.Errorf("%s: close: %v", how, err)
		}
		if err := f.Close(); err != nil {
			t.Errorf("%s: second close: %v", how, err)
		}
		if _, err := f.Bytes("f32"); err == nil || !strings.HasSuffix(err.Error(), "file is closed") {
			t.Errorf("%s: read after close: %v", how, err)
		}
	}
}

func TestWriteRejects(t *testing.T) {
	ok := F32Tensor("ok", []int{1}, []float32{1})
	cases := []struct {
		name    string
		meta    map[string]string
		tensors []Tensor
		want    string
	}{
		{"negative dim", nil, []Tensor{{Name: "a", DType: F32, Shape: []int{-1}}}, `tensor "a": shape [-1] has a negative dimension`},
		{"short data", nil, []Tensor{{Name: "a", DType: F32, Shape: []int{2}, Data: make([]byte, 4)}}, `tensor "a": 4 bytes of data, but shape [2] of F32 needs 8`},
		{"scalar data", nil, []Tensor{{Name: "a", DType: I16, Data: make([]byte, 4)}}, `tensor "a": 4 bytes of data, but shape [] of I16 needs 2`},
		{"overflow", nil, []Tensor{{Name: "a", DType: U8, Shape: []int{1 << 30, 1 << 30, 1 << 30}}}, `tensor "a": shape [1073741824 1073741824 1073741824] of U8 has more bytes than fit in 64 bits`},
		{"unknown dtype", nil, []Tensor{{Name: "a", DType: "f32"}}, `tensor "a": unknown dtype "f32"`},
		{"duplicate", nil, []Tensor{ok, ok}, `tensor "ok": given twice`},
		{"reserved name", nil, []Tensor{{Name: "__metadata__", DType: U8, Shape: []int{0}}}, `tensor "__metadata__": "__metadata__" is reserved and cannot name a tensor`},
		{"bad utf8 name", nil, []Tensor{{Name: "\xff", DType: U8, Shape: []int{0}}}, `tensor "\xff": name is not valid UTF-8`},
		{"bad utf8 metadata", map[string]string{"k": "\xff"}, nil, `metadata "k": key or value is not valid UTF-8`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, c.meta, c.tensors)
			if err == nil || err.Error() != "safetensors: "+c.want {
				t.Errorf("error\n got %v\nwant safetensors: %s", err, c.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestWriteIOError(t *testing.T) {
	err := Write(&failWriter{n: 2}, nil, knownTensors())
	if err == nil || err.Error() != `safetensors: tensor "d": disk full` && err.Error() != `safetensors: tensor "a": disk full` {
		t.Errorf("got %v", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "adapter_model.safetensors")
	if err := WriteFile(path, map[string]string{"format": "pt"}, knownTensors()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, knownFile()) {
		t.Fatalf("file content differs: %v", err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	// A failed write leaves the old file and no temporary behind.
	err = WriteFile(path, nil, []Tensor{{Name: "x", DType: F32, Shape: []int{1}}})
	if err == nil || err.Error() != `safetensors: tensor "x": 0 bytes of data, but shape [1] of F32 needs 4` {
		t.Errorf("got %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, knownFile()) {
		t.Error("failed write changed the file")
	}
	// Overwriting replaces the content.
	if err := WriteFile(path, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, rawFile("{}      ", nil)) {
		t.Errorf("overwrite: %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1 (temporary left behind?)", len(entries))
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir", "x"), nil, nil); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

// TestFloat64Exact: F64 tensors round-trip bit for bit (extremes, subnormals,
// negative zero), and Float64 refuses other dtypes instead of converting.
func TestFloat64Exact(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 1, -1.5, math.MaxFloat64, math.SmallestNonzeroFloat64, 1e-300, math.Pi, math.Inf(-1)}
	var b bytes.Buffer
	if err := Write(&b, nil, []Tensor{F64Tensor("m", []int{3, 3}, vals), F32Tensor("x", []int{1}, []float32{1})}); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Float64("m")
	if err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		if math.Float64bits(got[i]) != math.Float64bits(vals[i]) {
			t.Errorf("[%d] = %v, want %v", i, got[i], vals[i])
		}
	}
	if _, err := f.Float64("x"); err == nil || !strings.Contains(err.Error(), "not F64") {
		t.Errorf("F32 tensor read as F64: %v", err)
	}
	if _, err := f.Float64("nope"); err == nil {
		t.Error("missing tensor read")
	}
}
