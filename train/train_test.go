package train

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/internal/sharedtest"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/model/tokenizer"
	"github.com/kronfed/kronfed/task"
)

// meanLoss is the inference-mode loss over items in batches of 8.
func meanLoss(t *testing.T, l Learner, items []task.Item) float64 {
	t.Helper()
	var sum float64
	n := 0
	for i := 0; i < len(items); i += 8 {
		loss, err := l.Loss(items[i:min(i+8, len(items))])
		if err != nil {
			t.Fatal(err)
		}
		sum += loss
		n++
	}
	return sum / float64(n)
}

// TestStoriesLearnsARC fine-tunes the real stories260K model with Kron-LoRA
// on real ARC-Easy questions: the training loss (measured without dropout on
// the same items) must go down.
func TestStoriesLearnsARC(t *testing.T) {
	m, err := model.LoadGGUF(sharedtest.Path(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	splits, err := task.Load("arc-easy", sharedtest.Path(t, "data"))
	if err != nil {
		t.Fatal(err)
	}
	items := splits.Train.Items[:32]
	ac := adapter.DefaultConfig(adapter.KindKron).Resolve(m.Cfg.Hidden)
	rng := rand.New(rand.NewPCG(1, 2))
	set, err := adapter.NewSet(ac, m.Name, m.Targets(), rng)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewDecoderLearner(m.Llama, m.Tok, set, rng)
	if err != nil {
		t.Fatal(err)
	}
	before := meanLoss(t, l, items)
	cfg := Config{Epochs: 4, Optim: DefaultAdamW(), Seed: 3}
	cfg.Optim.LR = 3e-3
	res, err := Fit(context.Background(), l, items, splits.Validation.Items[:16], nil, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	after := meanLoss(t, l, items) // the best-validation epoch's adapters
	t.Logf("training loss %.4f → %.4f; epochs %+v", before, after, res.Epochs)
	if !(after < before-0.05) {
		t.Fatalf("training loss did not go down: %.4f → %.4f", before, after)
	}
}

// wordTokenizer is a real SentencePiece vocabulary over the synthetic suite's
// words: "▁word" pieces plus byte fallback, the way a small built-in model's
// tokenizer is made.
func wordTokenizer(t *testing.T) *tokenizer.SentencePiece {
	t.Helper()
	tokens := []string{"<unk>", "<s>", "</s>"}
	types := []int32{2, 3, 3}
	for b := 0; b < 256; b++ {
		tokens = append(tokens, "<0x"+strings.ToUpper(hex2(b))+">")
		types = append(types, 6)
	}
	seen := map[string]bool{}
	for _, w := range task.Vocabulary() {
		if p := "▁" + w; !seen[p] {
			seen[p] = true
			tokens, types = append(tokens, p), append(types, 1)
		}
	}
	scores := make([]float32, len(tokens))
	for i := range scores {
		scores[i] = -float32(i)
	}
	tok, err := tokenizer.NewSentencePiece(tokens, scores, types, tokenizer.SentencePieceOptions{BOS: 1, EOS: 2, UNK: 0, PAD: -1, ByteFallback: true})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func hex2(b int) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// TestSmallModelLearnsSynthetic trains adapters on a small random frozen
// decoder on a synthetic task: test accuracy must be clearly above chance.
func TestSmallModelLearnsSynthetic(t *testing.T) {
	tok := wordTokenizer(t)
	cfg := &model.Config{ModelType: "llama", Family: model.Decoder, Hidden: 32, Intermediate: 64, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8,
		Vocab: (tok.VocabSize() + 7) / 8 * 8, MaxPositions: 64, RMSNormEps: 1e-5, RopeTheta: 10000}
	wrng := rand.New(rand.NewPCG(4, 4))
	m, err := model.NewLlama(cfg, model.RopeHalf, func(name string, shape ...int) ([]float32, error) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		w := make([]float32, n)
		for i := range w {
			if len(shape) == 1 {
				w[i] = 1
			} else {
				w[i] = float32(wrng.NormFloat64() / float64(shape[len(shape)-1]) * 2)
			}
		}
		return w, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all, err := task.Synthetic("word-category", 600, 7)
	if err != nil {
		t.Fatal(err)
	}
	trainT, rest := all.Split(0.7, 1)
	val, test := rest.Split(0.5, 2)
	ac := adapter.DefaultConfig(adapter.KindKron)
	ac.DA2 = 2
	rng := rand.New(rand.NewPCG(5, 5))
	targets := cfg.Targets()
	set, err := adapter.NewSet(ac, "tiny", targets, rng)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewDecoderLearner(m, tok, set, rng)
	if err != nil {
		t.Fatal(err)
	}
	tc := Config{Epochs: 4, Optim: DefaultAdamW(), Seed: 1}
	tc.Optim.LR = 1e-2
	res, err := Fit(context.Background(), l, trainT.Items, val.Items, test.Items, tc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v test %+v", res.Epochs, res.Test)
	if res.Test.Acc < 0.6 { // chance is 0.25
		t.Fatalf("test accuracy %.3f is not clearly above chance (0.25)", res.Test.Acc)
	}
}
