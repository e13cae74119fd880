package model_test

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/model/tokenizer"
	"github.com/kronfed/kronfed/task"
	"github.com/kronfed/kronfed/train"
)

// builtinTensors lists every frozen tensor of a built model, in a fixed order.
func builtinTensors(m *model.Model) [][]float32 {
	out := [][]float32{m.Llama.Embed, m.Llama.Norm, m.Llama.LMHead.W}
	for _, b := range m.Llama.Blocks {
		out = append(out, b.AttnNorm, b.FFNNorm, b.Q.W, b.K.W, b.V.W, b.O.W, b.Gate.W, b.Up.W, b.Down.W)
	}
	return out
}

func sameWeights(a, b *model.Model) bool {
	ta, tb := builtinTensors(a), builtinTensors(b)
	for i := range ta {
		if !slices.Equal(ta[i], tb[i]) {
			return false
		}
	}
	return true
}

func TestBuiltin(t *testing.T) {
	m, err := model.BuiltinRandom(1, task.Vocabulary())
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != model.BuiltinRandomName || m.Path != "builtin-random" || m.Llama == nil || m.BERT != nil {
		t.Fatalf("Name %q, Path %q, Llama %v, BERT %v", m.Name, m.Path, m.Llama != nil, m.BERT != nil)
	}
	if _, ok := m.Tok.(*tokenizer.Word); !ok {
		t.Fatalf("tokenizer is %T, want *tokenizer.Word", m.Tok)
	}
	c := m.Cfg
	if c.ModelType != "llama" || c.Family != model.Decoder || c.Hidden != 128 || c.Layers != 4 ||
		c.Heads != 8 || c.KVHeads != 4 || c.HeadDim != 16 || c.Intermediate != 352 || c.MaxPositions != 128 || !c.TieWordEmbeddings {
		t.Fatalf("config %+v", c)
	}
	if *c != *model.BuiltinConfig(task.Vocabulary()) {
		t.Fatalf("config %+v differs from BuiltinConfig %+v", c, model.BuiltinConfig(task.Vocabulary()))
	}
	if v := m.Tok.VocabSize(); c.Vocab < v || c.Vocab%16 != 0 || c.Vocab >= v+16 {
		t.Fatalf("embedding of %d rows for %d tokens", c.Vocab, v)
	}
	if want := len(tokenizer.WordSpecials) + len(tokenizer.WordPunctuation) + len(task.Vocabulary()); m.Tok.VocabSize() != want {
		t.Fatalf("tokenizer has %d tokens, want %d", m.Tok.VocabSize(), want)
	}
	// Every adapted linear takes the default adapters of both kinds.
	for _, k := range []adapter.Kind{adapter.KindKron, adapter.KindLoRA} {
		set, err := train.NewAdapterSet(m, adapter.DefaultConfig(k), 1)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if got, want := len(set.Modules), len(c.AdaptedLinears()); got != want {
			t.Fatalf("%s: %d modules, want %d", k, got, want)
		}
	}
	for _, dA2 := range []int{2, 4, 8, 16} {
		ac := adapter.DefaultConfig(adapter.KindKron)
		ac.DA2 = dA2
		if _, err := train.NewAdapterSet(m, ac, 1); err != nil {
			t.Errorf("dA2 %d: %v", dA2, err)
		}
	}
}

func TestBuiltinDeterministic(t *testing.T) {
	a, err := model.BuiltinRandom(1, task.Vocabulary())
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.BuiltinRandom(1, task.Vocabulary())
	if err != nil {
		t.Fatal(err)
	}
	if !sameWeights(a, b) {
		t.Fatal("two builds from seed 1 differ")
	}
	c, err := model.BuiltinRandom(2, task.Vocabulary())
	if err != nil {
		t.Fatal(err)
	}
	// Every random tensor differs between seeds; the norm weights are constant.
	ta, tc := builtinTensors(a), builtinTensors(c)
	for i := range ta {
		random := i == 0 || i == 2 || (i >= 3 && (i-3)%9 >= 2)
		if random == slices.Equal(ta[i], tc[i]) {
			t.Errorf("tensor %d: equal across seeds = %v", i, !random)
		}
	}
	// Tied lm_head: the same storage as the embedding.
	if &a.Llama.LMHead.W[0] != &a.Llama.Embed[0] {
		t.Error("lm_head is not tied to the embedding")
	}
	// A few values pinned: adapters are only portable between machines (and
	// versions) that build the same weights, so a change of the generator
	// must show.
	for _, p := range []struct {
		got  []float32
		want []float32
	}{
		{a.Llama.Embed[:3], []float32{-0.002726054, -0.0008840627, -0.04139453}},
		{a.Llama.Blocks[0].Q.W[:2], []float32{0.011398056, -0.0010126996}},
		{a.Llama.Blocks[3].Down.W[:2], []float32{0.0016390743, -0.012060616}},
	} {
		if !slices.Equal(p.got, p.want) {
			t.Errorf("weights %v, want %v", p.got, p.want)
		}
	}
	l, err := train.LoadModel("builtin-random")
	if err != nil {
		t.Fatal(err)
	}
	if !sameWeights(a, l) || l.Name != model.BuiltinRandomName || l.Path != model.BuiltinRandomPath {
		t.Fatal(`train.LoadModel("builtin-random") is not BuiltinRandom(1)`)
	}
	if byName, err := train.LoadModel(model.BuiltinRandomName); err != nil || !sameWeights(a, byName) {
		t.Fatalf("train.LoadModel(%q): %v", model.BuiltinRandomName, err)
	}
	// "builtin" and its name are the pretrained model, not the random one.
	pre, err := train.LoadModel("builtin")
	if err != nil {
		t.Fatal(err)
	}
	if sameWeights(a, pre) || pre.Name != model.BuiltinName || pre.Path != model.BuiltinPath {
		t.Fatal(`train.LoadModel("builtin") is not the pretrained model`)
	}
	if byName, err := train.LoadModel(model.BuiltinName); err != nil || !sameWeights(pre, byName) {
		t.Fatalf("train.LoadModel(%q): %v", model.BuiltinName, err)
	}
	// model itself does not know the tasks' vocabulary, and says where to go.
	for _, p := range []string{"builtin", "builtin-random"} {
		if _, err := model.Load(p); err == nil || !strings.Contains(err.Error(), "train.LoadModel") {
			t.Fatalf(`model.Load(%q): %v`, p, err)
		}
	}
	for _, x := range a.Llama.Norm {
		if x != 10 {
			t.Fatalf("final norm weight %v, want 10", x)
		}
	}
	var sum, sq float64
	for _, x := range a.Llama.Blocks[0].Up.W {
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	n := float64(len(a.Llama.Blocks[0].Up.W))
	if mean, std := sum/n, math.Sqrt(sq/n); math.Abs(mean) > 0.001 || math.Abs(std-0.02) > 0.001 {
		t.Errorf("up_proj mean %v std %v, want about 0 and 0.02", mean, std)
	}
}

func TestBuiltinForward(t *testing.T) {
	m, err := model.BuiltinRandom(model.BuiltinSeed, task.Vocabulary())
	if err != nil {
		t.Fatal(err)
	}
	tk, err := task.Synthetic("add-mod-10", 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	var seqs [][]int
	T := 0
	for _, it := range tk.Items {
		s := append([]int{m.Tok.Special().BOS}, m.Tok.Encode(it.Context+it.Continuation(it.Label))...)
		seqs = append(seqs, s)
		T = max(T, len(s))
	}
	tokens := make([]int, len(seqs)*T)
	for b, s := range seqs {
		copy(tokens[b*T:], s)
	}
	run, err := m.Llama.NewRun(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Forward(tokens, len(seqs), T); err != nil {
		t.Fatal(err)
	}
	if got, want := len(run.Logits), len(seqs)*T*m.Cfg.Vocab; got != want {
		t.Fatalf("%d logits, want %d", got, want)
	}
	var sq float64
	for i, x := range run.Logits {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("logit %d is %v", i, x)
		}
		sq += float64(x) * float64(x)
	}
	// Random but not degenerate: the untrained model is unsure, not flat or
	// saturated.
	if rms := math.Sqrt(sq / float64(len(run.Logits))); rms < 0.3 || rms > 10 {
		t.Errorf("logit rms %v", rms)
	}
	if _, err := model.Load("no-such-model"); err == nil {
		t.Error("Load of a missing path succeeded")
	}
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestBuiltinLearns fine-tunes Kron-LoRA on the pretrained built-in model
// with the paper's recipe at the learning rate the validation sweep picks
// there (3e-3; see BENCHMARKS.md) on a short run of the word-category
// family: the adapters must lift validation accuracy well above chance
// (1/4) and the training loss must fall. Under
// -race (about ten times slower) it only runs a few steps, which exercise the
// same code.
func TestBuiltinLearns(t *testing.T) {
	nTrain, nVal, maxSteps := 640, 100, 0
	if raceEnabled() {
		nTrain, nVal, maxSteps = 40, 8, 5
	}
	m, err := train.LoadModel("builtin")
	if err != nil {
		t.Fatal(err)
	}
	splits, err := train.LoadSplits("word-category", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	set, err := train.NewAdapterSet(m, adapter.DefaultConfig(adapter.KindKron), 1)
	if err != nil {
		t.Fatal(err)
	}
	l, err := train.NewDecoderLearner(m.Llama, m.Tok, set, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	val := splits.Validation.Items[:nVal]
	before, err := train.Evaluate(context.Background(), l, val, 8)
	if err != nil {
		t.Fatal(err)
	}
	var first, last []float64
	res, err := train.Fit(context.Background(), l, splits.Train.Items[:nTrain], val, nil,
		train.Config{Epochs: 2, Seed: 1, MaxSteps: maxSteps, Optim: train.AdamWConfig{LR: 3e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}}, func(p train.Progress) {
			if p.Phase != "train" {
				return
			}
			if p.Step <= 10 {
				first = append(first, p.Loss)
			} else if p.Step > p.Steps-10 {
				last = append(last, p.Loss)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if maxSteps > 0 {
		return
	}
	mean := func(x []float64) float64 {
		s := 0.0
		for _, v := range x {
			s += v
		}
		return s / float64(len(x))
	}
	t.Logf("validation accuracy %.2f before, %.2f after (chance 0.25); loss %.2f over the first 10 steps, %.2f over the last 10",
		before.Acc, res.BestVal.Acc, mean(first), mean(last))
	if res.BestVal.Acc < 0.6 {
		t.Errorf("validation accuracy %.2f after training, want at least 0.6 (chance 0.25)", res.BestVal.Acc)
	}
	if mean(last) > 0.7*mean(first) {
		t.Errorf("training loss fell only from %.2f to %.2f", mean(first), mean(last))
	}
}
