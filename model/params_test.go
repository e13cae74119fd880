package model

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/internal/sharedtest"
)

// TestParamCountsReproducePaper checks the totals against the Kron-LoRA paper's
// table (millions, two decimals) and against exact counts worked out by hand
// from the published configs.
func TestParamCountsReproducePaper(t *testing.T) {
	dir := sharedtest.Dir(t)
	cases := []struct {
		config string
		kind   adapter.Kind
		rank   int
		dA2    int
		paperM float64
		exact  int
	}{
		// DistilBERT: 6 layers × (4 × 768² + 3072×768 + 768×3072) + head 768²+768+768+1.
		{"distilbert-base-uncased.json", adapter.KindKron, 8, 4, 0.84, 6*(4*4616+9224+13832) + 591361},
		{"distilbert-base-uncased.json", adapter.KindLoRA, 4, 0, 0.92, 6*4*(4*1536+2*3840) + 591361},
		{"distilbert-base-uncased.json", adapter.KindLoRA, 8, 0, 1.25, 6*8*(4*1536+2*3840) + 591361},
		{"distilbert-base-uncased.json", adapter.KindLoRA, 16, 0, 1.92, 6*16*(4*1536+2*3840) + 591361},
		// Mistral-7B: 32 layers of q,k,v,o,gate,up,down plus lm_head.
		{"mistral-7b-v0.1.json", adapter.KindKron, 8, 16, 5.71, 32*(2*18464+2*16928+2*23584+59424) + 32416},
		{"mistral-7b-v0.1.json", adapter.KindLoRA, 4, 0, 10.63, 32*4*(2*8192+2*5120+3*18432) + 4*36096},
		{"mistral-7b-v0.1.json", adapter.KindLoRA, 8, 0, 21.26, 32*8*(2*8192+2*5120+3*18432) + 8*36096},
		{"mistral-7b-v0.1.json", adapter.KindLoRA, 16, 0, 42.52, 32*16*(2*8192+2*5120+3*18432) + 16*36096},
	}
	for _, c := range cases {
		cfg, err := LoadConfig(filepath.Join(dir, "models", "configs", c.config))
		if err != nil {
			t.Fatal(err)
		}
		ac := adapter.DefaultConfig(c.kind)
		ac.Rank = c.rank
		rep, err := CountParams(cfg, ac) // dA2 left at 0: the default rule must pick the paper's
		if err != nil {
			t.Fatal(err)
		}
		if c.kind == adapter.KindKron && rep.DA2 != c.dA2 {
			t.Errorf("%s: default dA2 = %d, paper uses %d", c.config, rep.DA2, c.dA2)
		}
		if rep.TrainableParams != c.exact {
			t.Errorf("%s %s-%d: %d trainable params, want %d", c.config, c.kind, c.rank, rep.TrainableParams, c.exact)
		}
		if got := math.Round(float64(rep.TrainableParams)/1e4) / 100; got != c.paperM {
			t.Errorf("%s %s-%d: %.2f M, paper %.2f M", c.config, c.kind, c.rank, got, c.paperM)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ json, want string }{
		{`{"model_type": "gpt2"}`, `unsupported model_type "gpt2"`},
		{`{}`, `missing "model_type"`},
		{`{"model_type": "llama", "hidden_size": 64}`, `missing "intermediate_size"`},
		{`{"model_type": "llama", "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 5, "num_attention_heads": 8, "num_key_value_heads": 3, "vocab_size": 512}`, "not a multiple of 3 key/value heads"},
		{`{"model_type": "distilbert", "dim": -768}`, `"dim" = -768 must be positive`},
		{`{"model_type": `, "invalid JSON"},
	} {
		_, err := ParseConfig([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseConfig(%s) = %v, want error containing %q", c.json, err, c.want)
		}
	}
}

func TestCountParamsShapeError(t *testing.T) {
	cfg := &Config{ModelType: "llama", Family: Decoder, Hidden: 64, Intermediate: 172, Layers: 1, Heads: 8, KVHeads: 4, HeadDim: 8, Vocab: 512}
	ac := adapter.DefaultConfig(adapter.KindKron)
	ac.DA2 = 3
	_, err := CountParams(cfg, ac)
	if err == nil || !strings.Contains(err.Error(), "module model.layers.0.self_attn.q_proj: kron-lora shape 64×64: dA2 = 3 does not divide d_out = 64") {
		t.Fatalf("got %v", err)
	}
}
