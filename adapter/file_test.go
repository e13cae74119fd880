package adapter

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter/quant"
	"github.com/kronfed/kronfed/safetensors"
)

func testSet(t testing.TB, kind Kind, dA2 int, targets []Target) *Set {
	t.Helper()
	c := DefaultConfig(kind)
	if kind == KindKron {
		c.DA2 = dA2
	}
	rng := rand.New(rand.NewPCG(42, 1))
	s, err := NewSet(c, "test-base", targets, rng)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.Modules {
		randomize(m.Layer, rng)
	}
	s.Dense = []Dense{{Name: "classifier.weight", Rows: 1, Cols: 8, Data: randSlice(rng, 8, 1)}}
	return s
}

var smallTargets = []Target{{"layers.0.q", 16, 12}, {"layers.0.up", 32, 12}, {"layers.0.down", 12, 32}}

func TestFileRoundTrip(t *testing.T) {
	for _, kind := range []Kind{KindKron, KindLoRA} {
		s := testSet(t, kind, 4, smallTargets)
		path := filepath.Join(t.TempDir(), "a.safetensors")
		if err := s.WriteFile(path, Float32); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.Config != s.Config || got.BaseModel != s.BaseModel || len(got.Modules) != len(s.Modules) {
			t.Fatalf("%s: read back %+v, wrote %+v", kind, got.Config, s.Config)
		}
		for i, m := range s.Modules {
			gm := got.Modules[i]
			if gm.Name != m.Name {
				t.Fatalf("module %d: %s, want %s", i, gm.Name, m.Name)
			}
			for j, f := range m.Layer.Factors() {
				gf := gm.Layer.Factors()[j]
				if gf.Rows != f.Rows || gf.Cols != f.Cols || !equal32(gf.Data, f.Data) {
					t.Fatalf("%s %s.%s differs after round trip", kind, m.Name, f.Name)
				}
			}
		}
		if !equal32(got.Dense[0].Data, s.Dense[0].Data) {
			t.Fatal("dense tensor differs")
		}
	}
}

// TestQuantizedFile checks a 4- and 8-bit file stores codes (smaller than
// float32) and reads back within the quantizer's error.
func TestQuantizedFile(t *testing.T) {
	s := testSet(t, KindKron, 4, smallTargets)
	dir := t.TempDir()
	full := filepath.Join(dir, "f32.safetensors")
	if err := s.WriteFile(full, Float32); err != nil {
		t.Fatal(err)
	}
	for _, bits := range []int{8, 4} {
		path := filepath.Join(dir, "q.safetensors")
		err := s.WriteFile(path, SaveOptions{Bits: bits, Scheme: quant.Scheme{Symmetric: true, PerRow: true}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range s.Modules {
			e, err := MeasureQuantError(m.Layer, got.Modules[i].Layer, bits)
			if err != nil {
				t.Fatal(err)
			}
			limit := 0.02
			if bits == 4 {
				limit = 0.3
			}
			if e.Rel() == 0 || e.Rel() > limit {
				t.Errorf("%d bits, %s: relative ΔW error %.3g, want in (0, %g]", bits, m.Name, e.Rel(), limit)
			}
		}
		fi, _ := os.Stat(path)
		ff, _ := os.Stat(full)
		if fi.Size() >= ff.Size() {
			t.Errorf("%d-bit file %d bytes is not smaller than float32's %d", bits, fi.Size(), ff.Size())
		}
	}
}

// TestDecodeRejects corrupts one thing at a time and checks the error names it.
func TestDecodeRejects(t *testing.T) {
	s := testSet(t, KindKron, 4, smallTargets)
	meta, tensors, err := s.Encode(Float32)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(meta map[string]string, ts []safetensors.Tensor) []safetensors.Tensor
		want string
	}{
		{"wrong format", func(m map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			m["format"] = "pt"
			return ts
		}, `metadata format = "pt"`},
		{"missing rank", func(m map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			delete(m, "rank")
			return ts
		}, "metadata rank missing"},
		{"bad kind", func(m map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			m["kind"] = "loha"
			return ts
		}, `unknown adapter kind "loha"`},
		{"missing factor", func(m map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			return drop(ts, "layers.0.up.B1")
		}, "module layers.0.up: factor B1 missing"},
		{"stray tensor", func(m map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.F32Tensor("layers.9.q.A", []int{1, 1}, []float32{1}))
		}, "tensor layers.9.q.A belongs to no module"},
		{"wrong shape", func(m map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			ts = drop(ts, "layers.0.q.B2")
			return append(ts, safetensors.F32Tensor("layers.0.q.B2", []int{5, 6}, make([]float32, 30)))
		}, "module layers.0.q: factor B2 is 5×6, want 8×6"},
		{"rank mismatch", func(m map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			m["rank"] = "4"
			return ts
		}, "module layers.0.q: factor B1 is 4×8, want 4×4"},
		{"NaN", func(m map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			ts = drop(ts, "layers.0.down.A")
			a := make([]float32, 8)
			a[3] = float32(math.NaN())
			return append(ts, safetensors.F32Tensor("layers.0.down.A", []int{4, 2}, a))
		}, "module layers.0.down: factor A[1,1] is NaN"},
	}
	for _, c := range cases {
		m := make(map[string]string)
		for k, v := range meta {
			m[k] = v
		}
		ts := c.edit(m, append([]safetensors.Tensor(nil), tensors...))
		path := filepath.Join(t.TempDir(), "bad.safetensors")
		if err := safetensors.WriteFile(path, m, ts); err != nil {
			t.Fatal(err)
		}
		_, err := ReadFile(path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want error containing %q", c.name, err, c.want)
		}
	}
	// A truncated file is the safetensors reader's to reject, with the path.
	path := filepath.Join(t.TempDir(), "ok.safetensors")
	if err := s.WriteFile(path, Float32); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, data[:len(data)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("truncated file: got %v", err)
	}
}

func drop(ts []safetensors.Tensor, name string) []safetensors.Tensor {
	out := ts[:0]
	for _, t := range ts {
		if t.Name != name {
			out = append(out, t)
		}
	}
	return out
}

func equal32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// FuzzDecode feeds arbitrary bytes through the safetensors parser and the
// adapter decoder: they must return errors, never panic, and anything accepted
// must encode again.
func FuzzDecode(f *testing.F) {
	for _, kind := range []Kind{KindKron, KindLoRA} {
		s := testSet(f, kind, 4, smallTargets)
		for _, opts := range []SaveOptions{Float32, {Bits: 4, Scheme: quant.Scheme{Symmetric: true, PerRow: true}}} {
			path := filepath.Join(f.TempDir(), "seed.safetensors")
			if err := s.WriteFile(path, opts); err != nil {
				f.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			f.Add(data[:len(data)/2])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := safetensors.Parse(data)
		if err != nil {
			return
		}
		s, err := Decode(sf)
		if err != nil {
			return
		}
		if _, _, err := s.Encode(Float32); err != nil {
			t.Fatalf("decoded adapter does not encode: %v", err)
		}
	})
}
