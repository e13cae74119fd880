package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/internal/adaptertest"
	"github.com/kronfed/kronfed/internal/gradcheck"
)

// randomSource serves normally distributed weights of any requested shape
// (norm weights around 1), remembering them so a second model can be built
// from the same values.
type randomSource struct {
	rng  *rand.Rand
	seen map[string][]float32
}

func newRandomSource(seed uint64) *randomSource {
	return &randomSource{rng: rand.New(rand.NewPCG(seed, 3)), seen: map[string][]float32{}}
}

func (s *randomSource) get(name string, shape ...int) ([]float32, error) {
	if t, ok := s.seen[name]; ok {
		return append([]float32(nil), t...), nil
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	t := make([]float32, n)
	for i := range t {
		if len(shape) == 1 {
			t[i] = 1 + 0.1*float32(s.rng.NormFloat64())
		} else {
			t[i] = 0.3 * float32(s.rng.NormFloat64())
		}
	}
	s.seen[name] = t
	return append([]float32(nil), t...), nil
}

func tinyLlamaConfig() *Config {
	return &Config{ModelType: "llama", Family: Decoder, Hidden: 16, Intermediate: 24, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 4,
		Vocab: 12, MaxPositions: 16, RMSNormEps: 1e-5, RopeTheta: 10000}
}

// randomAdapters puts an adapter with random (non-zero) factors on every
// adapted linear.
func randomAdapters(t *testing.T, cfg *Config, kind adapter.Kind, seed uint64) *adapter.Set {
	t.Helper()
	ac := adapter.DefaultConfig(kind)
	ac.Rank = 2
	if kind == adapter.KindKron {
		ac.DA2 = 2
	}
	return adaptertest.Random(t, ac, "tiny", cfg.Targets(), seed)
}

// TestLlamaAdapterGradients checks the whole model's adapter gradients against
// central finite differences of the loss, along random directions through all
// factors (a large, well-conditioned signal) and on single entries.
func TestLlamaAdapterGradients(t *testing.T) { bothAttentionModes(t, testLlamaAdapterGradients) }

func testLlamaAdapterGradients(t *testing.T) {
	for _, c := range []struct {
		kind   adapter.Kind
		window int
		rope   RopeStyle
	}{{adapter.KindKron, 0, RopeInterleaved}, {adapter.KindLoRA, 0, RopeHalf}, {adapter.KindKron, 3, RopeHalf}} {
		t.Run(fmt.Sprintf("%s_window%d_rope%d", c.kind, c.window, c.rope), func(t *testing.T) {
			cfg := tinyLlamaConfig()
			cfg.SlidingWindow = c.window
			m, err := NewLlama(cfg, c.rope, newRandomSource(1).get)
			if err != nil {
				t.Fatal(err)
			}
			set := randomAdapters(t, cfg, c.kind, 2)
			run, err := m.NewRun(set)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(5, 5))
			const B, T = 2, 7
			tokens, targets := randomBatch(rng, cfg.Vocab, B*T, 4)
			loss := func() float64 {
				if err := run.Forward(tokens, B, T); err != nil {
					t.Fatal(err)
				}
				l, _, err := run.LossAndGrad(targets)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			for _, mod := range set.Modules {
				mod.Layer.ZeroGrad()
			}
			loss()
			run.Backward()

			var params []adapter.Factor
			for _, mod := range set.Modules {
				params = append(params, mod.Layer.Factors()...)
			}
			checkDirectionalDerivatives(t, params, loss, rng)
		})
	}
}

// randomBatch draws n token ids and next-token targets below vocab, about
// one target in ignoreEvery ignored (−1).
func randomBatch(rng *rand.Rand, vocab, n, ignoreEvery int) (tokens, targets []int) {
	tokens, targets = make([]int, n), make([]int, n)
	for i := range tokens {
		tokens[i] = rng.IntN(vocab)
		targets[i] = rng.IntN(vocab)
		if rng.IntN(ignoreEvery) == 0 {
			targets[i] = -1
		}
	}
	return tokens, targets
}

// checkDirectionalDerivatives compares the backward pass's gradient
// (already in params' Grad) with central finite differences of loss along
// random directions through all params at once.
func checkDirectionalDerivatives(t *testing.T, params []adapter.Factor, loss func() float64, rng *rand.Rand) {
	t.Helper()
	gradcheck.Directional(t, params, loss, rng, gradcheck.Options{})
}

// TestRopeLayoutsAgree builds the same model twice: once with Meta's
// interleaved RoPE and once with Hugging Face's rotate-half layout, whose
// Q/K rows are permuted as transformers' conversion script permutes them
// (row 2i+j of a head becomes row j·hd/2+i). The logits must match.
func TestRopeLayoutsAgree(t *testing.T) {
	cfg := tinyLlamaConfig()
	src := newRandomSource(7)
	meta, err := NewLlama(cfg, RopeInterleaved, src.get)
	if err != nil {
		t.Fatal(err)
	}
	permute := func(w []float32, heads int) []float32 {
		hd, dIn := cfg.HeadDim, cfg.Hidden
		out := make([]float32, len(w))
		for h := 0; h < heads; h++ {
			for i := 0; i < hd/2; i++ {
				for j := 0; j < 2; j++ {
					copy(out[(h*hd+j*hd/2+i)*dIn:(h*hd+j*hd/2+i+1)*dIn], w[(h*hd+2*i+j)*dIn:(h*hd+2*i+j+1)*dIn])
				}
			}
		}
		return out
	}
	hf, err := NewLlama(cfg, RopeHalf, func(name string, shape ...int) ([]float32, error) {
		w, err := src.get(name, shape...)
		switch {
		case err != nil:
			return nil, err
		case strings.HasSuffix(name, "q_proj.weight"):
			return permute(w, cfg.Heads), nil
		case strings.HasSuffix(name, "k_proj.weight"):
			return permute(w, cfg.KVHeads), nil
		}
		return w, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tokens := []int{1, 5, 3, 9, 2, 2, 7, 0}
	var logits [2][]float32
	for i, m := range []*Llama{meta, hf} {
		run, err := m.NewRun(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := run.Forward(tokens, 1, len(tokens)); err != nil {
			t.Fatal(err)
		}
		logits[i] = run.Logits
	}
	for i := range logits[0] {
		if d := math.Abs(float64(logits[0][i] - logits[1][i])); d > 1e-4 {
			t.Fatalf("logit %d: interleaved %v, rotate-half %v", i, logits[0][i], logits[1][i])
		}
	}
}

// TestSlidingWindow: with one layer and window W, the output at position i
// depends only on tokens i−W+1…i.
func TestSlidingWindow(t *testing.T) {
	cfg := tinyLlamaConfig()
	cfg.Layers, cfg.SlidingWindow = 1, 3
	m, err := NewLlama(cfg, RopeHalf, newRandomSource(3).get)
	if err != nil {
		t.Fatal(err)
	}
	run, _ := m.NewRun(nil)
	a := []int{1, 2, 3, 4, 5, 6, 7}
	b := []int{9, 2, 3, 4, 5, 6, 7} // differs at position 0 only
	if err := run.Forward(a, 1, 7); err != nil {
		t.Fatal(err)
	}
	la := append([]float32(nil), run.Logits...)
	if err := run.Forward(b, 1, 7); err != nil {
		t.Fatal(err)
	}
	V := cfg.Vocab
	for pos := 0; pos < 7; pos++ {
		same := true
		for j := 0; j < V; j++ {
			if la[pos*V+j] != run.Logits[pos*V+j] {
				same = false
			}
		}
		if want := pos >= 3; same != want {
			t.Errorf("position %d: unchanged = %v, want %v", pos, same, want)
		}
	}
}

func TestLlamaBadInput(t *testing.T) {
	cfg := tinyLlamaConfig()
	m, err := NewLlama(cfg, RopeHalf, newRandomSource(3).get)
	if err != nil {
		t.Fatal(err)
	}
	run, _ := m.NewRun(nil)
	if err := run.Forward([]int{1, 2, 12}, 1, 3); err == nil || err.Error() != "decoder forward: token 12 at position 2 is outside the vocabulary of 12" {
		t.Errorf("got %v", err)
	}
	if err := run.Forward(make([]int, 17), 1, 17); err == nil {
		t.Error("sequence longer than the context accepted")
	}
	set := randomAdapters(t, cfg, adapter.KindLoRA, 1)
	set.Modules[0].Name = "model.layers.9.self_attn.q_proj"
	if _, err := m.NewRun(set); err == nil {
		t.Error("adapter for a missing layer accepted")
	}
	_, err = NewLlama(cfg, RopeHalf, func(name string, shape ...int) ([]float32, error) {
		if name == "model.layers.1.mlp.up_proj.weight" {
			return nil, fmt.Errorf("tensor %s missing", name)
		}
		return newRandomSource(1).get(name, shape...)
	})
	if err == nil || err.Error() != "tensor model.layers.1.mlp.up_proj.weight missing" {
		t.Errorf("got %v", err)
	}
}
