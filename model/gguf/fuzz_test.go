package gguf

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// fuzzSeeds are valid small files of each version (every value type, every
// encodable tensor type, a custom alignment), some hand-built oddities, and
// truncations of them.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	rng := rand.New(rand.NewPCG(7, 7))
	small := func(v int, kvs []KV, ts []WriteTensor) []byte {
		var buf bytes.Buffer
		if err := Write(&buf, v, kvs, ts); err != nil {
			panic(err)
		}
		return buf.Bytes()
	}
	for v := 1; v <= 3; v++ {
		full := small(v, allValues(), allTensors(rng))
		aligned := small(v, []KV{{AlignmentKey, uint32(64)}, {"tokenizer.ggml.tokens", []string{"<unk>", "<s>"}}},
			[]WriteTensor{
				{Name: "q", Type: Q8_0, Dims: []int{32, 2}, Data: randFloats(rng, 64, 1)},
				{Name: "b", Type: BF16, Dims: []int{3}, Data: []float32{1, 2, 3}},
			})
		empty := small(v, nil, nil)
		seeds = append(seeds, full, aligned, empty)
		for _, f := range [][]byte{full, aligned} {
			for _, n := range []int{4, 8, 20, 30, len(f) / 3, len(f) / 2, len(f) - 33, len(f) - 1} {
				seeds = append(seeds, slices.Clone(f[:n]))
			}
		}
	}
	// Tensors out of order with a gap, and a zero-size tensor.
	r := newRaw(2, 3, 0).tensor("late", F32, 64, 2).tensor("early", F16, 0, 4).tensor("none", Q8_0, 0, 0, 3)
	seeds = append(seeds, r.data(72))
	// A nested array, an empty string array.
	r = newRaw(1, 0, 2).s("n").u32(uint32(TypeArray)).u32(uint32(TypeArray)).n(1).u32(uint32(TypeBool)).n(1).u8(1)
	r.s("e").u32(uint32(TypeArray)).u32(uint32(TypeString)).n(0)
	seeds = append(seeds, r.b)
	// No tensors, so no padding, despite the largest alignment.
	seeds = append(seeds, newRaw(3, 0, 1).kvU32(AlignmentKey, 1<<31).b)
	return seeds
}

// FuzzParse checks that Parse never panics, that everything it accepts is
// self-consistent and readable through every accessor, and that Write
// reproduces it: writing the parsed content and parsing that gives the same
// metadata and tensors, and writing again gives the same bytes.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "gguf: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		exercise(t, file)
		tensors := rawTensors(t, file)
		var buf bytes.Buffer
		if err := Write(&buf, file.Version, file.Metadata(), tensors); err != nil {
			t.Fatalf("cannot write back an accepted file: %v", err)
		}
		again, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("cannot parse the rewritten file: %v", err)
		}
		if again.Version != file.Version || again.Alignment != file.Alignment {
			t.Fatalf("version/alignment %d/%d became %d/%d", file.Version, file.Alignment, again.Version, again.Alignment)
		}
		if !slices.Equal(again.Keys(), file.Keys()) {
			t.Fatalf("keys changed: %q -> %q", file.Keys(), again.Keys())
		}
		got := rawTensors(t, again)
		for i := range tensors {
			a, b := tensors[i], got[i]
			if a.Name != b.Name || a.Type != b.Type || !slices.Equal(a.Dims, b.Dims) || !bytes.Equal(a.Raw, b.Raw) {
				t.Fatalf("tensor %d changed: %s %s %v -> %s %s %v", i, a.Name, a.Type, a.Dims, b.Name, b.Type, b.Dims)
			}
		}
		var buf2 bytes.Buffer
		if err := Write(&buf2, again.Version, again.Metadata(), got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
			t.Fatal("writing is not stable")
		}
	})
}

// exercise calls every accessor on every key and tensor of an accepted
// file, checking the invariants that do not depend on the content.
func exercise(t *testing.T, f *File) {
	if f.Version < 1 || f.Version > 3 || f.Alignment <= 0 || f.Alignment&(f.Alignment-1) != 0 || f.DataOffset%int64(f.Alignment) != 0 {
		t.Fatalf("version %d alignment %d data offset %d", f.Version, f.Alignment, f.DataOffset)
	}
	for _, k := range f.Keys() {
		v, ok := f.Value(k)
		if !ok || !f.Has(k) {
			t.Fatalf("listed key %q missing", k)
		}
		_ = v.String()
		if !reflect.DeepEqual(mustValue(v.Any()).Type(), v.Type()) {
			t.Fatalf("key %q: Any does not convert back", k)
		}
		f.String(k)
		f.Uint(k)
		f.Int(k)
		f.Float(k)
		f.Bool(k)
		f.Strings(k)
		f.Float32s(k)
		f.Int32s(k)
	}
	for _, ti := range f.Tensors() {
		b, err := f.Bytes(ti.Name)
		if err != nil || int64(len(b)) != ti.Size || ti.Offset%int64(f.Alignment) != 0 {
			t.Fatalf("tensor %q: %d bytes for size %d at offset %d: %v", ti.Name, len(b), ti.Size, ti.Offset, err)
		}
		x, err := f.Float32(ti.Name)
		switch {
		case err != nil && !strings.Contains(err.Error(), "unsupported tensor type "+ti.Type.String()+" in tensor"):
			t.Fatalf("tensor %q: %v", ti.Name, err)
		case err == nil && int64(len(x)) != ti.NumElements():
			t.Fatalf("tensor %q: %d values for %d elements", ti.Name, len(x), ti.NumElements())
		}
	}
}

// TestFuzzSeeds runs the fuzz body's checks on the seeds, so plain go test
// covers them (f.Add seeds run too, but this also asserts they are valid
// where meant to be).
func TestFuzzSeeds(t *testing.T) {
	valid := 0
	for _, s := range fuzzSeeds() {
		if f, err := Parse(s); err == nil {
			exercise(t, f)
			valid++
		}
	}
	if valid < 12 {
		t.Errorf("only %d valid seeds", valid)
	}
}
