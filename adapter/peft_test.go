package adapter

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/safetensors"
)

func TestPEFTFactorization(t *testing.T) {
	// PEFT's answers: computed by running peft.tuners.lokr.layer.factorization's
	// code (CPython 3.11) on each pair. A dividing factor is returned first even
	// when it is the larger part: (768, 384) → (384, 2), (64, 32) → (32, 2).
	for _, c := range []struct{ dim, f, m, n int }{
		{768, -1, 24, 32}, {4096, -1, 64, 64}, {768, 4, 4, 192}, {768, 2, 2, 384}, {3072, 8, 8, 384},
		{10, 3, 2, 5}, {7, -1, 1, 7}, {768, 384, 384, 2}, {12, 5, 3, 4}, {64, 32, 32, 2}, {128, 4, 4, 32},
		{256, -1, 16, 16}, {127, -1, 1, 127}, {128, -1, 8, 16}, {4096, 16, 16, 256}, {14336, 16, 16, 896},
		{3072, 1536, 1536, 2}, {1024, 512, 512, 2}, {96, 48, 48, 2}, {360, 7, 6, 60}, {100, 200, 10, 10},
	} {
		if m, n := PEFTFactorization(c.dim, c.f); m != c.m || n != c.n {
			t.Errorf("factorization(%d, %d) = (%d, %d), want (%d, %d)", c.dim, c.f, m, n, c.m, c.n)
		}
	}
}

// readPEFT loads an exported folder: its config and tensors in float64.
func readPEFT(t *testing.T, dir string) (map[string]any, map[string][]float64, map[string][]int) {
	t.Helper()
	js, err := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(js, &cfg); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vals, shapes := map[string][]float64{}, map[string][]int{}
	for _, info := range f.Tensors() {
		x, err := f.Float32(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		vals[info.Name], shapes[info.Name] = to64(x), info.Shape
	}
	return cfg, vals, shapes
}

// TestExportLoKrRebuildsDeltaW exports an adapter PEFT's LoKr can express
// (dA2 = dA1 = 2, decompose_factor 2) and rebuilds each module's ΔW the way
// PEFT does — kron(w1, w2_a·w2_b)·alpha/r — checking it against ours.
func TestExportLoKrRebuildsDeltaW(t *testing.T) {
	s := testSet(t, KindKron, 2, []Target{{"m.q", 64, 64}, {"m.up", 96, 64}, {"m.down", 64, 96}})
	dir := t.TempDir()
	if err := s.ExportPEFT(dir); err != nil {
		t.Fatal(err)
	}
	cfg, vals, shapes := readPEFT(t, dir)
	// alpha stays as trained (PEFT's LoKr scales by alpha/r, as we do).
	if cfg["peft_type"] != "LOKR" || cfg["decompose_factor"].(float64) != 2 || cfg["r"].(float64) != 8 || cfg["alpha"].(float64) != float64(s.Config.Alpha) {
		t.Fatalf("config %v", cfg)
	}
	scale := cfg["alpha"].(float64) / cfg["r"].(float64)
	for _, m := range s.Modules {
		p := "base_model.model." + m.Name
		w1, wa, wb := vals[p+".lokr_w1"], vals[p+".lokr_w2_a"], vals[p+".lokr_w2_b"]
		s1, sa, sb := shapes[p+".lokr_w1"], shapes[p+".lokr_w2_a"], shapes[p+".lokr_w2_b"]
		dIn := m.Layer.(*Kron).Shape.DIn
		// PEFT's shapes from factorization(dim, decompose_factor).
		outL, outK := PEFTFactorization(m.Layer.(*Kron).Shape.DOut, 2)
		inM, inN := PEFTFactorization(dIn, 2)
		if s1[0] != outL || s1[1] != inM || sa[0] != outK || sa[1] != 8 || sb[0] != 8 || sb[1] != inN {
			t.Fatalf("%s: shapes %v %v %v do not match PEFT's (%d,%d) (%d,8) (8,%d)", m.Name, s1, sa, sb, outL, inM, outK, inN)
		}
		w2 := matmul64(wa, wb, sa[0], sa[1], sb[1])
		checkRebuilt(t, m, kron64(w1, s1[0], s1[1], w2, sa[0], sb[1]), scale)
	}
	if _, ok := vals["base_model.model.classifier.weight"]; !ok {
		t.Error("dense head not exported")
	}
}

// TestExportLoKrRefusesPaperDistilBERT: the paper's DistilBERT setting (dA2 = 4)
// needs A = 4×2, but one decompose_factor splits d_in and d_out alike.
func TestExportLoKrRefusesPaperDistilBERT(t *testing.T) {
	s := testSet(t, KindKron, 4, []Target{{"attention.q_lin", 768, 768}, {"ffn.lin1", 3072, 768}})
	err := s.ExportPEFT(t.TempDir())
	if !errors.Is(err, ErrNotLoKr) || !strings.Contains(err.Error(), "A = 4×2") {
		t.Fatalf("got %v, want ErrNotLoKr naming A = 4×2", err)
	}
	// r too large for PEFT's w2 split.
	s = testSet(t, KindKron, 2, []Target{{"tiny", 8, 8}})
	err = s.ExportPEFT(t.TempDir())
	if !errors.Is(err, ErrNotLoKr) || !strings.Contains(err.Error(), "r = 8 is not < max(dB2, dB1)/2 = 2") {
		t.Fatalf("got %v", err)
	}
}

// TestExportLoRAIsExact rebuilds lora_B·lora_A·lora_alpha/r from the exported
// folder for both a Kron-LoRA (rank-2r rewrite) and a LoRA adapter.
func TestExportLoRAIsExact(t *testing.T) {
	for _, kind := range []Kind{KindKron, KindLoRA} {
		s := testSet(t, kind, 4, []Target{{"attention.q_lin", 64, 48}, {"ffn.lin1", 96, 48}})
		dir := t.TempDir()
		if err := s.ExportPEFTLoRA(dir); err != nil {
			t.Fatal(err)
		}
		cfg, vals, shapes := readPEFT(t, dir)
		if cfg["peft_type"] != "LORA" {
			t.Fatalf("peft_type %v", cfg["peft_type"])
		}
		scale := cfg["lora_alpha"].(float64) / cfg["r"].(float64)
		for _, m := range s.Modules {
			p := "base_model.model." + m.Name
			a, b := vals[p+".lora_A.weight"], vals[p+".lora_B.weight"]
			sa, sb := shapes[p+".lora_A.weight"], shapes[p+".lora_B.weight"]
			if sa[0] != sb[1] || sa[0] != int(cfg["r"].(float64)) {
				t.Fatalf("%s: lora_A %v, lora_B %v, r %v", m.Name, sa, sb, cfg["r"])
			}
			checkRebuilt(t, m, matmul64(b, a, sb[0], sb[1], sa[1]), scale)
		}
	}
}

func TestExportMerged(t *testing.T) {
	s := testSet(t, KindKron, 4, smallTargets)
	path := filepath.Join(t.TempDir(), "delta.safetensors")
	if err := s.ExportMerged(path); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, m := range s.Modules {
		got, err := f.Float32(m.Name + ".weight")
		if err != nil {
			t.Fatal(err)
		}
		if e := relErr(got, deltaW64(t, m.Layer)); e > 1e-6 {
			t.Errorf("%s: merged ΔW relative error %.3g", m.Name, e)
		}
	}
}

// checkRebuilt compares scale·got, a ΔW rebuilt from exported tensors the way
// PEFT would, with the module's own ΔW.
func checkRebuilt(t *testing.T, m Module, got []float64, scale float64) {
	t.Helper()
	want := deltaW64(t, m.Layer)
	var num, den float64
	for i := range got {
		d := got[i]*scale - want[i]
		num, den = num+d*d, den+want[i]*want[i]
	}
	if num > 1e-12*den {
		t.Errorf("%s %s: rebuilt ΔW differs (rel² %.3g)", m.Layer.Kind(), m.Name, num/den)
	}
}

// TestPEFTTaskTypeAndBaseModel: a decoder's export says CAUSAL_LM, an
// encoder's says none (PEFT has no multiple-choice type); the Hugging Face
// id given replaces the Set's model name.
func TestPEFTTaskTypeAndBaseModel(t *testing.T) {
	dec := testSet(t, KindKron, 2, []Target{{"model.layers.0.self_attn.q_proj", 64, 64}, {"lm_head", 96, 64}})
	enc := testSet(t, KindKron, 2, []Target{{"distilbert.transformer.layer.0.attention.q_lin", 64, 64}})
	for _, c := range []struct {
		set  *Set
		opts []PEFTOptions
		task any
		base string
	}{
		{dec, nil, "CAUSAL_LM", dec.BaseModel},
		{enc, nil, nil, enc.BaseModel},
		{dec, []PEFTOptions{{BaseModel: "mistralai/Mistral-7B-v0.1"}}, "CAUSAL_LM", "mistralai/Mistral-7B-v0.1"},
		{enc, []PEFTOptions{{TaskType: "SEQ_CLS", BaseModel: "distilbert-base-uncased"}}, "SEQ_CLS", "distilbert-base-uncased"},
	} {
		dir := t.TempDir()
		if _, err := c.set.ExportPEFTBest(dir, c.opts...); err != nil {
			t.Fatal(err)
		}
		cfg, _, _ := readPEFT(t, dir)
		if cfg["task_type"] != c.task || cfg["base_model_name_or_path"] != c.base {
			t.Errorf("%v: task_type %v, base %v; want %v, %v", c.opts, cfg["task_type"], cfg["base_model_name_or_path"], c.task, c.base)
		}
	}
}
