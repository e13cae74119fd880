package safetensors

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"
)

func fuzzSeeds() [][]byte {
	var seeds [][]byte
	var buf bytes.Buffer
	if err := Write(&buf, map[string]string{"format": "pt", "k\n": "\u00e9"}, allDTypes()); err != nil {
		panic(err)
	}
	all := buf.Bytes()
	known := knownFile()
	seeds = append(seeds, known, all)
	// Truncations cut the prefix, the header and the data at various places.
	for _, f := range [][]byte{known, all} {
		for _, n := range []int{0, 4, 8, 9, 20, len(f) / 2, len(f) - 9, len(f) - 1} {
			seeds = append(seeds, slices.Clone(f[:n]))
		}
	}
	seeds = append(seeds,
		rawFile(`{}`, nil),
		rawFile(`{"__metadata__":null}`, nil),
		rawFile(`{"b":{"data_offsets":[4,6],"shape":[1],"dtype":"F16"}, "a\u00e9":{"shape":[1],"dtype":"F32","data_offsets":[0,4]}}  `, make([]byte, 6)),
		rawFile(`{"e":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"f":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, nil),
		rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}`, nil),
		rawFile(`{"a":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}}`, nil),
		rawFile(`{"a":{"dtype":"F8_E4M3","shape":[],"data_offsets":[0,1]}}`, []byte{0x7f}),
		rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)),
		rawFile(`{"\ud800":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, []byte{1}),
	)
	return seeds
}

// FuzzParse checks that Parse never panics, that whatever it accepts reads
// back consistently, and that accepted content survives Write and Parse
// unchanged, with Write being deterministic on it.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "safetensors: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		meta := file.Metadata()
		infos := file.Tensors()
		tensors := make([]Tensor, len(infos))
		for i, ti := range infos {
			b, err := file.Bytes(ti.Name)
			if err != nil {
				t.Fatalf("Bytes(%q): %v", ti.Name, err)
			}
			if int64(len(b)) != ti.NumBytes() || ti.NumBytes() != ti.NumElements()*int64(ti.DType.Size()) {
				t.Fatalf("%q: %d bytes, info %+v", ti.Name, len(b), ti)
			}
			v, err := file.Float32(ti.Name)
			if ti.DType.IsFloat() != (err == nil) {
				t.Fatalf("Float32(%q) of %s: %v", ti.Name, ti.DType, err)
			}
			if err == nil && int64(len(v)) != ti.NumElements() {
				t.Fatalf("Float32(%q): %d values for %d elements", ti.Name, len(v), ti.NumElements())
			}
			tensors[i] = Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: b}
		}

		var out bytes.Buffer
		if err := Write(&out, meta, tensors); err != nil {
			t.Fatalf("accepted content does not write: %v", err)
		}
		back, err := Parse(out.Bytes())
		if err != nil {
			t.Fatalf("written file does not parse: %v\n%q", err, out.Bytes())
		}
		if got := back.Metadata(); !maps.Equal(got, meta) {
			t.Fatalf("metadata %q became %q", meta, got)
		}
		backInfos := back.Tensors()
		if len(backInfos) != len(infos) {
			t.Fatalf("%d tensors became %d", len(infos), len(backInfos))
		}
		for i, ti := range backInfos {
			want := tensors[i]
			if ti.Name != want.Name || ti.DType != want.DType || !slices.Equal(ti.Shape, want.Shape) {
				t.Fatalf("tensor %+v became %+v", infos[i], ti)
			}
			b, err := back.Bytes(ti.Name)
			if err != nil || !bytes.Equal(b, want.Data) {
				t.Fatalf("%q: data changed (%v)", ti.Name, err)
			}
		}
		var again bytes.Buffer
		if err := Write(&again, back.Metadata(), tensorsOf(t, back)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), out.Bytes()) {
			t.Fatalf("writing the same content twice differs:\n%q\n%q", out.Bytes(), again.Bytes())
		}
	})
}

func tensorsOf(t *testing.T, f *File) []Tensor {
	var out []Tensor
	for _, ti := range f.Tensors() {
		b, err := f.Bytes(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: b})
	}
	return out
}
