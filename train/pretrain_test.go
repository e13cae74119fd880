package train

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/task"
)

func worldCorpus(t *testing.T, m *model.Model, n int, seed uint64, seqLen int) *Corpus {
	t.Helper()
	text, err := task.WorldText(n, seed)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCorpus(m.Tok, text, seqLen)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPretrainLearnsAndIsDeterministic pretrains the built-in architecture
// from its initialization for a few dozen steps: the held-out loss must fall
// well below its start (ln(vocab) ≈ 5.4 for the initial, nearly uniform
// model), and a second run with the same configuration must give the same
// weights bit for bit.
func TestPretrainLearnsAndIsDeterministic(t *testing.T) {
	cfg := PretrainConfig{Steps: 40, Batch: 4, SeqLen: 32, LR: 3e-3, Warmup: 5, MinLR: 0.1, WeightDecay: 0.01, Seed: 1,
		EvalEvery: 20, EvalSequences: 8}
	if testing.Short() {
		cfg.Steps = 10
	}
	run := func() (*model.Model, *PretrainResult, []PretrainProgress) {
		m, err := model.BuiltinInit(1, task.Vocabulary())
		if err != nil {
			t.Fatal(err)
		}
		var seen []PretrainProgress
		res, err := Pretrain(context.Background(), m, worldCorpus(t, m, 2000, 1, cfg.SeqLen), worldCorpus(t, m, 200, 2, cfg.SeqLen), cfg,
			func(p PretrainProgress) { seen = append(seen, p) })
		if err != nil {
			t.Fatal(err)
		}
		return m, res, seen
	}
	a, res, seen := run()
	t.Logf("held-out loss %.3f → %.3f in %d steps", res.FirstEvalLoss, res.EvalLoss, res.Steps)
	if math.Abs(res.FirstEvalLoss-math.Log(float64(a.Tok.VocabSize()))) > 0.5 {
		t.Errorf("initial held-out loss %.3f, want about ln(%d) = %.3f", res.FirstEvalLoss, a.Tok.VocabSize(), math.Log(float64(a.Tok.VocabSize())))
	}
	if res.EvalLoss > 0.75*res.FirstEvalLoss {
		t.Errorf("held-out loss fell only from %.3f to %.3f", res.FirstEvalLoss, res.EvalLoss)
	}
	if len(seen) != cfg.Steps || seen[len(seen)-1].Step != cfg.Steps || math.IsNaN(seen[len(seen)-1].EvalLoss) {
		t.Fatalf("%d progress reports, last %+v", len(seen), seen[len(seen)-1])
	}
	// Warm-up rises linearly to the peak, then the cosine falls to min_lr.
	if seen[0].LR != cfg.LR/5 || seen[4].LR != cfg.LR || math.Abs(seen[len(seen)-1].LR-cfg.MinLR*cfg.LR) > 1e-12 {
		t.Errorf("learning rates %v … %v", seen[0].LR, seen[len(seen)-1].LR)
	}
	b, _, _ := run()
	pa, pb := a.Llama.Params(a.Llama.NewGrads()), b.Llama.Params(b.Llama.NewGrads())
	for i := range pa {
		if !slices.Equal(pa[i].Data, pb[i].Data) {
			t.Fatalf("%s differs between two identical runs", pa[i].Name)
		}
	}
	init, _ := model.BuiltinInit(1, task.Vocabulary())
	if slices.Equal(pa[3].Data, init.Llama.Params(init.Llama.NewGrads())[3].Data) {
		t.Fatal("pretraining left the weights unchanged")
	}
}

func TestPretrainBadInput(t *testing.T) {
	m, err := model.BuiltinInit(1, task.Vocabulary())
	if err != nil {
		t.Fatal(err)
	}
	good := worldCorpus(t, m, 500, 1, 32)
	for _, c := range []struct {
		cfg  PretrainConfig
		want string
	}{
		{PretrainConfig{Steps: 10, Warmup: 10}, "warm-up of 10 steps for 10 steps"},
		{PretrainConfig{Steps: 10, Warmup: 1, LR: -1}, "learning rate -1"},
		{PretrainConfig{Steps: 10, Warmup: 1, MinLR: 2}, "min_lr 2"},
		{PretrainConfig{Steps: 10, Warmup: 1, SeqLen: 129}, "exceeds the context of 128"},
	} {
		_, err := Pretrain(context.Background(), m, good, good, c.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
	// A corpus too small for its context, and text the tokenizer does not
	// know, are refused before any work.
	if _, err := NewCorpus(m.Tok, []string{"1 2 3", "a b c"}, 64); err == nil || !strings.Contains(err.Error(), "too small for sequences of 64") {
		t.Errorf("tiny corpus: %v", err)
	}
	foreign := slices.Repeat([]string{"the quick brown fox jumps over the lazy dog"}, 100)
	if _, err := NewCorpus(m.Tok, foreign, 16); err == nil || !strings.Contains(err.Error(), "unknown words") {
		t.Errorf("foreign text: %v", err)
	}
	if _, err := NewCorpus(m.Tok, []string{"1 2", "  "}, 2); err == nil || !strings.Contains(err.Error(), "sentence 1") {
		t.Errorf("empty sentence: %v", err)
	}
	// Only decoders can be pretrained.
	if _, err := Pretrain(context.Background(), &model.Model{Name: "enc"}, good, good, PretrainConfig{Steps: 2, Warmup: 1}, nil); err == nil ||
		!strings.Contains(err.Error(), "only decoders") {
		t.Errorf("encoder: %v", err)
	}
}
