package adapter

import (
	"bytes"
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
		}, "module layers.0.q: factor B2 is 5×6: neither side is the rank 8"},
		{"transposed B1", func(m map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			ts = drop(ts, "layers.0.q.B1")
			return append(ts, safetensors.F32Tensor("layers.0.q.B1", []int{8, 4}, make([]float32, 32)))
		}, "module layers.0.q: factor B1 is 8×4, want 4×8 for kron-lora"},
		{"transposed A", func(m map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			ts = drop(ts, "layers.0.down.A")
			return append(ts, safetensors.F32Tensor("layers.0.down.A", []int{2, 4}, make([]float32, 8)))
		}, "it is transposed"},
		{"rank mismatch", func(m map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			m["rank"] = "4"
			return ts
		}, "module layers.0.q: factor B2 is 8×6: neither side is the rank 4 the metadata gives"},
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

// TestEncodeTallFactorsPerColumn: asked for per-row scales, Encode stores
// every tall factor (Kron-LoRA's A and B1, LoRA's B) per-column, with one scale
// per column, and the rest per-row; the file shrinks by exactly 4 bytes per
// saved scale; and the file decodes to within one step of each stored group
// (half a step with round-to-nearest).
func TestEncodeTallFactorsPerColumn(t *testing.T) {
	// Kron-LoRA on 384×768 with dA2 4, r 8: A 4×2, B1 96×8, B2 8×384.
	// LoRA-8 on the same: A 8×768, B 384×8.
	targets := []Target{{"layers.0.q", 384, 768}, {"layers.0.o", 384, 768}}
	for _, kind := range []Kind{KindKron, KindLoRA} {
		s := testSet(t, kind, 4, targets)
		for _, bits := range []int{8, 4} {
			for _, sr := range []bool{true, false} {
				req := quant.Scheme{Symmetric: true, PerRow: true, Stochastic: sr}
				opts := SaveOptions{Bits: bits, Scheme: req, Rng: rand.New(rand.NewPCG(7, uint64(bits)))}
				req.Bits = bits
				meta, tensors, err := s.Encode(opts)
				if err != nil {
					t.Fatal(err)
				}
				if meta["quant"] != req.String() {
					t.Errorf("metadata quant = %q, want the requested %q", meta["quant"], req.String())
				}
				byName := make(map[string][]byte)
				for _, ts := range tensors {
					byName[ts.Name] = ts.Data
				}
				newBytes, oldBytes := 0, 0 // factor payloads now, and with per-row scales everywhere
				for _, m := range s.Modules {
					for _, f := range m.Layer.Factors() {
						key := m.Name + "." + f.Name
						q, err := quant.Unmarshal(byName[key])
						if err != nil {
							t.Fatalf("%s: %v", key, err)
						}
						tall := f.Rows > f.Cols
						if q.Scheme.PerColumn != tall || q.Scheme.PerRow == tall || q.Scheme.Bits != bits ||
							!q.Scheme.Symmetric || q.Scheme.Stochastic != sr {
							t.Fatalf("%s %s %d×%d stored as %s", kind, key, f.Rows, f.Cols, q.Scheme)
						}
						groups := f.Rows
						if tall {
							groups = f.Cols
						}
						codes := (f.Rows*f.Cols*bits + 7) / 8
						if want := quant.HeaderSize + codes + 4*groups; len(byName[key]) != want {
							t.Fatalf("%s: %d bytes, want %d", key, len(byName[key]), want)
						}
						newBytes += len(byName[key])
						oldBytes += quant.HeaderSize + codes + 4*f.Rows
					}
				}
				// The whole file: the same metadata and tensors, only the
				// factor payloads shorter (the JSON header's offsets may lose a
				// digit and its padding to 8 bytes may shift; here it does not).
				var buf bytes.Buffer
				if err := safetensors.Write(&buf, meta, tensors); err != nil {
					t.Fatal(err)
				}
				old := oldFile(t, s, meta, tensors, opts)
				if d, want := len(old)-buf.Len(), oldBytes-newBytes; d < want-8 || d > want+8 {
					t.Errorf("%s %d bits: file %d bytes, %d with per-row scales: saved %d, want %d (±8 header)", kind, bits, buf.Len(), len(old), d, want)
				}
				if kind == KindKron && bits == 8 {
					// Per module: A saves 2 scales, B1 88.
					if want := 2 * (4*2 + 4*88); oldBytes-newBytes != want {
						t.Errorf("kron 8 bits: saved %d factor bytes, want %d", oldBytes-newBytes, want)
					}
				}

				sf, err := safetensors.Parse(buf.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				got, err := Decode(sf)
				if err != nil {
					t.Fatalf("%s %d bits: decode: %v", kind, bits, err)
				}
				for i, m := range s.Modules {
					for j, f := range m.Layer.Factors() {
						checkFactorBound(t, f, got.Modules[i].Layer.Factors()[j], req)
					}
				}
			}
		}
	}
}

// oldFile is the file Encode wrote before tall factors went per-column: the
// same metadata and tensors, with every factor quantized per-row.
func oldFile(t *testing.T, s *Set, meta map[string]string, tensors []safetensors.Tensor, opts SaveOptions) []byte {
	t.Helper()
	sch := opts.Scheme
	sch.Bits = opts.Bits
	old := append([]safetensors.Tensor(nil), tensors...)
	for _, m := range s.Modules {
		for _, f := range m.Layer.Factors() {
			q, err := quant.Quantize(f.Data, f.Rows, f.Cols, sch, rand.New(rand.NewPCG(1, 1)))
			if err != nil {
				t.Fatal(err)
			}
			enc, err := q.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			for k := range old {
				if old[k].Name == m.Name+"."+f.Name {
					old[k] = safetensors.Tensor{Name: old[k].Name, DType: safetensors.U8, Shape: []int{len(enc)}, Data: enc}
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, meta, old); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkFactorBound checks a decoded factor against the original: every element
// within Δ/2 (round-to-nearest) or below Δ (stochastic) of its group, the group
// being the column of a tall factor and the row otherwise, with Δ computed from
// the original values by the scheme's formula.
func checkFactorBound(t *testing.T, f, g Factor, s quant.Scheme) {
	t.Helper()
	if g.Rows != f.Rows || g.Cols != f.Cols {
		t.Fatalf("%s: decoded %d×%d, want %d×%d", f.Name, g.Rows, g.Cols, f.Rows, f.Cols)
	}
	tall := f.Rows > f.Cols
	at := func(r, c int) int { return r*f.Cols + c }
	ng, glen := f.Rows, f.Cols
	if tall {
		ng, glen = f.Cols, f.Rows
	}
	for k := 0; k < ng; k++ {
		idx := func(j int) int {
			if tall {
				return at(j, k)
			}
			return at(k, j)
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for j := 0; j < glen; j++ {
			v := float64(f.Data[idx(j)])
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		step := s.Step(lo, hi)
		lim := step / 2
		if s.Stochastic {
			lim = step
		}
		lim = lim*(1+1e-6) + 1e-30
		for j := 0; j < glen; j++ {
			i := idx(j)
			if e := math.Abs(float64(f.Data[i]) - float64(g.Data[i])); e > lim {
				t.Fatalf("%s %s: elem %d: |%g − %g| = %g > %g (step %g)", f.Name, s, i, f.Data[i], g.Data[i], e, lim, step)
			}
		}
	}
}

// TestReleaseGrads: a Set without gradients keeps its values, and its Clone
// has zero gradients of every factor's size again, so it can be trained.
func TestReleaseGrads(t *testing.T) {
	for _, kind := range []Kind{KindKron, KindLoRA} {
		s := testSet(t, kind, 4, smallTargets)
		want := s.Clone()
		s.ReleaseGrads()
		for _, p := range s.Params() {
			if p.Grad != nil {
				t.Fatalf("%v %s: gradient kept", kind, p.Name)
			}
		}
		c := s.Clone()
		for i, p := range c.Params() {
			if len(p.Grad) != len(p.Data) || len(p.Data) != p.Rows*p.Cols {
				t.Fatalf("%v %s: clone has %d gradients for %d values", kind, p.Name, len(p.Grad), len(p.Data))
			}
			for k := range p.Data {
				if p.Data[k] != want.Params()[i].Data[k] || p.Grad[k] != 0 {
					t.Fatalf("%v %s[%d]: %v (grad %v), want %v", kind, p.Name, k, p.Data[k], p.Grad[k], want.Params()[i].Data[k])
				}
				p.Grad[k] = 1 // writable
			}
		}
		c.ZeroGrad()
	}
}
