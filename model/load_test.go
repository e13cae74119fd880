package model

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/internal/sharedtest"
	"github.com/kronfed/kronfed/model/gguf"
)

// rewriteGGUF copies a GGUF file into a new one of the given version,
// re-encoding each tensor with typeOf(name, dims) and letting edit change the
// metadata and tensor list.
func rewriteGGUF(t *testing.T, src string, version int, typeOf func(name string, dims []int) gguf.GGMLType,
	edit func(kv []gguf.KV, ts []gguf.WriteTensor) ([]gguf.KV, []gguf.WriteTensor)) string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv := f.Metadata()
	var ts []gguf.WriteTensor
	for _, info := range f.Tensors() {
		data, err := f.Float32(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, gguf.WriteTensor{Name: info.Name, Type: typeOf(info.Name, info.Dims), Dims: info.Dims, Data: data})
	}
	if edit != nil {
		kv, ts = edit(kv, ts)
	}
	var buf bytes.Buffer
	if err := gguf.Write(&buf, version, kv, ts); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.gguf")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func logitsOf(t *testing.T, m *Model, text string) []float32 {
	t.Helper()
	ids := append([]int{1}, m.Tok.Encode(text)...)
	run, err := m.Llama.NewRun(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Forward(ids, 1, len(ids)); err != nil {
		t.Fatal(err)
	}
	return run.Logits
}

// TestLoadGGUFVersionsAndTypes re-encodes the real stories260K as GGUF v2 and
// v3 with F32, F16, BF16 and Q8_0 tensors; the loaded models must reproduce
// the original's logits (exactly for F32, within the format's rounding
// otherwise).
func TestLoadGGUFVersionsAndTypes(t *testing.T) {
	src := sharedtest.Path(t, "models", "stories260K.gguf")
	orig, err := LoadGGUF(src)
	if err != nil {
		t.Fatal(err)
	}
	want := logitsOf(t, orig, "Once upon a time, there was a dog.")
	for _, c := range []struct {
		name    string
		version int
		typ     gguf.GGMLType
		tol     float64
	}{{"v3-f32", 3, gguf.F32, 0}, {"v2-f16", 2, gguf.F16, 0.05}, {"v3-bf16", 3, gguf.BF16, 0.3}, {"v3-q8_0", 3, gguf.Q8_0, 0.3}} {
		t.Run(c.name, func(t *testing.T) {
			path := rewriteGGUF(t, src, c.version, func(name string, dims []int) gguf.GGMLType {
				if len(dims) < 2 || (c.typ == gguf.Q8_0 && dims[0]%32 != 0) {
					return gguf.F32 // norms stay F32, as llama.cpp's converter keeps them
				}
				return c.typ
			}, nil)
			m, err := LoadGGUF(path)
			if err != nil {
				t.Fatal(err)
			}
			got := logitsOf(t, m, "Once upon a time, there was a dog.")
			var worst float64
			for i := range want {
				worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
			}
			if worst > c.tol {
				t.Fatalf("largest logit difference %.4g > %g", worst, c.tol)
			}
			if c.tol > 0 && worst == 0 {
				t.Fatalf("%s tensors gave bit-identical logits: they were not re-encoded", c.typ)
			}
		})
	}
}

func TestLoadGGUFErrors(t *testing.T) {
	src := sharedtest.Path(t, "models", "stories260K.gguf")
	same := func(string, []int) gguf.GGMLType { return gguf.F32 }
	for _, c := range []struct {
		name string
		edit func(kv []gguf.KV, ts []gguf.WriteTensor) ([]gguf.KV, []gguf.WriteTensor)
		want string
	}{
		{"missing tensor", func(kv []gguf.KV, ts []gguf.WriteTensor) ([]gguf.KV, []gguf.WriteTensor) {
			var out []gguf.WriteTensor
			for _, x := range ts {
				if x.Name != "blk.3.ffn_up.weight" {
					out = append(out, x)
				}
			}
			return kv, out
		}, "tensor blk.3.ffn_up.weight (model.layers.3.mlp.up_proj.weight) missing"},
		{"wrong shape", func(kv []gguf.KV, ts []gguf.WriteTensor) ([]gguf.KV, []gguf.WriteTensor) {
			for i := range ts {
				if ts[i].Name == "blk.0.attn_k.weight" {
					ts[i].Dims = []int{32, 64}
				}
			}
			return kv, ts
		}, "tensor blk.0.attn_k.weight has shape [64 32], the config implies [32 64]"},
		{"architecture", func(kv []gguf.KV, ts []gguf.WriteTensor) ([]gguf.KV, []gguf.WriteTensor) {
			for i := range kv {
				if kv[i].Key == "general.architecture" {
					kv[i].Value = "gpt2"
				}
			}
			return kv, ts
		}, `general.architecture "gpt2": only llama-family GGUF models are supported`},
	} {
		path := rewriteGGUF(t, src, 3, same, c.edit)
		_, err := LoadGGUF(path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want error containing %q", c.name, err, c.want)
		}
	}
}

// TestNonFiniteWeightsRefused: a weight holding NaN or Inf is refused at
// load, naming the tensor and the element.
func TestNonFiniteWeightsRefused(t *testing.T) {
	cfg := &Config{ModelType: "llama", Family: Decoder, Hidden: 8, Intermediate: 12, Layers: 1, Heads: 2, KVHeads: 2, HeadDim: 4,
		Vocab: 10, MaxPositions: 8, RMSNormEps: 1e-5, RopeTheta: 10000}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		_, err := NewLlama(cfg, RopeHalf, func(name string, shape ...int) ([]float32, error) {
			n := 1
			for _, d := range shape {
				n *= d
			}
			w := make([]float32, n)
			for i := range w {
				w[i] = 0.1
			}
			if name == "model.layers.0.mlp.up_proj.weight" {
				w[5] = bad
			}
			return w, nil
		})
		if err == nil || !strings.Contains(err.Error(), "model.layers.0.mlp.up_proj.weight: element 5") {
			t.Errorf("weight %v: %v", bad, err)
		}
	}
}
