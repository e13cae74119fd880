package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kronfed/kronfed/adapter"
)

// TestWithMerged: the decoder with an adapter folded into its weights gives
// the logits the original gives with the adapter on (inference, no
// dropout), and the original is left untouched.
func TestWithMerged(t *testing.T) {
	for _, kind := range []adapter.Kind{adapter.KindKron, adapter.KindLoRA} {
		cfg := tinyLlamaConfig()
		cfg.TieWordEmbeddings = true
		llama, err := NewLlama(cfg, RopeHalf, newRandomSource(1).get)
		if err != nil {
			t.Fatal(err)
		}
		m := &Model{Name: "tiny", Cfg: cfg, Llama: llama}
		set := randomAdapters(t, cfg, kind, 2)
		before := append([]float32(nil), llama.Blocks[1].Up.W...)
		folded, err := m.WithMerged(set)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(4, 4))
		const B, T = 2, 5
		tokens := make([]int, B*T)
		for i := range tokens {
			tokens[i] = rng.IntN(cfg.Vocab)
		}
		logits := func(l *Llama, s *adapter.Set) []float32 {
			r, err := l.NewRun(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Forward(tokens, B, T); err != nil {
				t.Fatal(err)
			}
			return r.Logits
		}
		want, got := logits(llama, set), logits(folded.Llama, nil)
		var worst float64
		for i := range want {
			worst = math.Max(worst, math.Abs(float64(want[i]-got[i])))
		}
		if worst > 1e-4 {
			t.Errorf("%s: folded logits differ by up to %g", kind, worst)
		}
		if plain := logits(llama, nil); math.Abs(float64(plain[0]-want[0])) < 1e-6 && math.Abs(float64(plain[7]-want[7])) < 1e-6 {
			t.Errorf("%s: the adapter changes nothing; the test is vacuous", kind)
		}
		for i, v := range llama.Blocks[1].Up.W {
			if v != before[i] {
				t.Fatalf("%s: the original model's weights changed", kind)
			}
		}
		if &folded.Llama.Embed[0] != &llama.Embed[0] {
			t.Errorf("%s: the embedding was copied, not shared", kind)
		}
	}
	enc := &Model{Name: "bert", BERT: &BERT{}}
	if _, err := enc.WithMerged(nil); err == nil {
		t.Error("an encoder took an adapter into its weights")
	}
}
