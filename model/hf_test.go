package model

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/internal/sharedtest"
	"github.com/kronfed/kronfed/safetensors"
)

// recordingSource hands out random weights and records them by name and
// shape, so a test can write exactly those tensors in a checkpoint's layout.
type recordingSource struct {
	*randomSource
	shapes map[string][]int
}

func newRecordingSource(seed uint64) *recordingSource {
	return &recordingSource{randomSource: newRandomSource(seed), shapes: map[string][]int{}}
}

func (r *recordingSource) get(name string, shape ...int) ([]float32, error) {
	r.shapes[name] = shape
	return r.randomSource.get(name, shape...)
}

// writeCheckpoint writes the recorded tensors as model.safetensors, or, with
// shards > 1, as model-0000i-of-0000n.safetensors plus the index, as
// transformers' save_pretrained does. rename maps names (e.g. to old BERT
// gamma/beta spellings).
func (r *recordingSource) writeCheckpoint(t *testing.T, dir string, shards int, rename func(string) string) {
	t.Helper()
	names := make([]string, 0, len(r.shapes))
	for n := range r.shapes {
		names = append(names, n)
	}
	slices.Sort(names)
	if rename == nil {
		rename = func(s string) string { return s }
	}
	parts := make([][]safetensors.Tensor, shards)
	weightMap := map[string]string{}
	for i, n := range names {
		p := i % shards
		parts[p] = append(parts[p], safetensors.F32Tensor(rename(n), r.shapes[n], r.seen[n]))
		weightMap[rename(n)] = fmt.Sprintf("model-%05d-of-%05d.safetensors", p+1, shards)
	}
	if shards == 1 {
		if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), map[string]string{"format": "pt"}, parts[0]); err != nil {
			t.Fatal(err)
		}
		return
	}
	for p, ts := range parts {
		if err := safetensors.WriteFile(filepath.Join(dir, fmt.Sprintf("model-%05d-of-%05d.safetensors", p+1, shards)), map[string]string{"format": "pt"}, ts); err != nil {
			t.Fatal(err)
		}
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// llamaTokenizerJSON is a small tokenizer.json in Llama-2's layout (BPE with
// byte fallback, Prepend/Replace normalizer) covering vocab ids < vocab.
func llamaTokenizerJSON(vocab int) map[string]any {
	v := map[string]any{"<unk>": 0, "<s>": 1, "</s>": 2}
	for b := 0; b < 256; b++ {
		v[fmt.Sprintf("<0x%02X>", b)] = 3 + b
	}
	next := 259
	for _, tok := range []string{"▁", "a", "b", "▁a", "▁b", "ab", "▁ab"} {
		if next < vocab {
			v[tok] = next
			next++
		}
	}
	special := func(id int, s string) map[string]any {
		return map[string]any{"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
	}
	return map[string]any{
		"version": "1.0", "added_tokens": []any{special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")},
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}},
		"pre_tokenizer": nil, "post_processor": nil,
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}},
		"model": map[string]any{"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true, "vocab": v,
			"merges": []string{"▁ a", "▁ b", "a b", "▁a b"}},
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLoadHFDecoders writes small random Llama and Mistral checkpoints in the
// published layout (config.json with HF keys, HF tensor names, single and
// sharded safetensors, tokenizer.json) and checks the loaded model computes
// exactly what the same weights give when assembled directly.
func TestLoadHFDecoders(t *testing.T) {
	for _, c := range []struct {
		modelType string
		shards    int
		window    int
	}{{"llama", 1, 0}, {"mistral", 3, 4}} {
		t.Run(c.modelType, func(t *testing.T) {
			dir := t.TempDir()
			hfCfg := map[string]any{"model_type": c.modelType, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
				"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 272, "max_position_embeddings": 32,
				"rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false}
			if c.window > 0 {
				hfCfg["sliding_window"] = c.window
			}
			writeJSON(t, filepath.Join(dir, "config.json"), hfCfg)
			writeJSON(t, filepath.Join(dir, "tokenizer.json"), llamaTokenizerJSON(272))
			raw, _ := json.Marshal(hfCfg)
			cfg, err := ParseConfig(raw)
			if err != nil {
				t.Fatal(err)
			}
			src := newRecordingSource(3)
			direct, err := NewLlama(cfg, RopeHalf, src.get)
			if err != nil {
				t.Fatal(err)
			}
			src.writeCheckpoint(t, dir, c.shards, nil)
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Llama == nil || m.Llama.Rope != RopeHalf || m.Cfg.SlidingWindow != c.window {
				t.Fatalf("loaded %+v", m.Cfg)
			}
			ids := append([]int{1}, m.Tok.Encode("ab a b ab")...)
			for len(ids) < 9 {
				ids = append(ids, 5)
			}
			var logits [2][]float32
			for i, l := range []*Llama{direct, m.Llama} {
				run, _ := l.NewRun(nil)
				if err := run.Forward(ids, 1, len(ids)); err != nil {
					t.Fatal(err)
				}
				logits[i] = run.Logits
			}
			if !slices.Equal(logits[0], logits[1]) {
				t.Fatal("the loaded model's logits differ from the directly assembled one's")
			}
			if _, err := m.Generate("ab", 3, 0, nil, nil, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLoadHFEncoders does the same for DistilBERT and BERT (whose old
// checkpoints spell LayerNorm parameters gamma/beta), with the real
// bert-base-uncased tokenizer.json.
func TestLoadHFEncoders(t *testing.T) {
	tokPath := sharedtest.Path(t, "models", "bert-base-uncased-tokenizer.json")
	for _, mt := range []string{"distilbert", "bert"} {
		t.Run(mt, func(t *testing.T) {
			dir := t.TempDir()
			var hfCfg map[string]any
			if mt == "distilbert" {
				hfCfg = map[string]any{"model_type": "distilbert", "dim": 16, "hidden_dim": 20, "n_layers": 2, "n_heads": 4,
					"vocab_size": 30522, "max_position_embeddings": 40, "activation": "gelu"}
			} else {
				hfCfg = map[string]any{"model_type": "bert", "hidden_size": 16, "intermediate_size": 20, "num_hidden_layers": 2,
					"num_attention_heads": 4, "vocab_size": 30522, "max_position_embeddings": 40, "type_vocab_size": 2, "hidden_act": "gelu"}
			}
			writeJSON(t, filepath.Join(dir, "config.json"), hfCfg)
			copyFile(t, tokPath, filepath.Join(dir, "tokenizer.json"))
			raw, _ := json.Marshal(hfCfg)
			cfg, err := ParseConfig(raw)
			if err != nil {
				t.Fatal(err)
			}
			src := newRecordingSource(5)
			direct, err := NewBERT(cfg, src.get)
			if err != nil {
				t.Fatal(err)
			}
			rename := func(s string) string { return s }
			if mt == "bert" {
				rename = func(s string) string {
					s = strings.Replace(s, "LayerNorm.weight", "LayerNorm.gamma", 1)
					return strings.Replace(s, "LayerNorm.bias", "LayerNorm.beta", 1)
				}
			}
			src.writeCheckpoint(t, dir, 1, rename)
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			set := &adapter.Set{Config: adapter.DefaultConfig(adapter.KindLoRA), Dense: NewHead(cfg, rand.New(rand.NewPCG(1, 1)))}
			b := tinyBatch(cfg, rand.New(rand.NewPCG(2, 2)))
			var logits [2][]float32
			for i, e := range []*BERT{direct, m.BERT} {
				run, err := e.NewRun(set)
				if err != nil {
					t.Fatal(err)
				}
				if err := run.Forward(b); err != nil {
					t.Fatal(err)
				}
				logits[i] = append([]float32(nil), run.Logits...)
			}
			if !slices.Equal(logits[0], logits[1]) {
				t.Fatal("the loaded encoder's logits differ from the directly assembled one's")
			}
		})
	}
}

func TestLoadHFErrors(t *testing.T) {
	dir := t.TempDir()
	hfCfg := map[string]any{"model_type": "llama", "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 1,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 272, "max_position_embeddings": 32}
	writeJSON(t, filepath.Join(dir, "config.json"), hfCfg)
	writeJSON(t, filepath.Join(dir, "tokenizer.json"), llamaTokenizerJSON(272))
	raw, _ := json.Marshal(hfCfg)
	cfg, _ := ParseConfig(raw)
	src := newRecordingSource(3)
	if _, err := NewLlama(cfg, RopeHalf, src.get); err != nil {
		t.Fatal(err)
	}
	delete(src.shapes, "model.layers.0.mlp.down_proj.weight")
	src.shapes["model.layers.0.self_attn.k_proj.weight"] = []int{16, 8}
	src.seen["model.layers.0.self_attn.k_proj.weight"] = make([]float32, 128)
	src.writeCheckpoint(t, dir, 1, nil)
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "tensor model.layers.0.self_attn.k_proj.weight has shape [16 8], config.json implies [8 16]") {
		t.Fatalf("got %v", err)
	}
	src.shapes["model.layers.0.self_attn.k_proj.weight"] = []int{8, 16}
	src.writeCheckpoint(t, dir, 1, nil)
	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), "tensor model.layers.0.mlp.down_proj.weight missing") {
		t.Fatalf("got %v", err)
	}
	hfCfg["vocab_size"] = 100
	writeJSON(t, filepath.Join(dir, "config.json"), hfCfg)
	if _, err = Load(dir); err == nil || !strings.Contains(err.Error(), "tokenizer.json has 266 tokens but config.json's vocab_size is 100") {
		t.Fatalf("got %v", err)
	}
}

func TestHubID(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "llama", "_name_or_path": "meta-llama/Llama-2-7b-hf", "hidden_size": 64, "intermediate_size": 96,
		"num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 32, "max_position_embeddings": 16}`), 0o644)
	for in, want := range map[string]string{"mistralai/Mistral-7B-v0.1": "mistralai/Mistral-7B-v0.1", dir: "meta-llama/Llama-2-7b-hf",
		filepath.Join(dir, "config.json"): "meta-llama/Llama-2-7b-hf"} {
		if got, err := HubID(in); err != nil || got != want {
			t.Errorf("HubID(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	bare := t.TempDir()
	os.WriteFile(filepath.Join(bare, "config.json"), []byte(`{"model_type": "llama", "hidden_size": 64, "intermediate_size": 96,
		"num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 32, "max_position_embeddings": 16}`), 0o644)
	if _, err := HubID(bare); err == nil || !strings.Contains(err.Error(), "_name_or_path") {
		t.Errorf("a config without _name_or_path: %v", err)
	}
}
