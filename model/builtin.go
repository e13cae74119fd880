package model

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/kronfed/kronfed/model/tokenizer"
)

// BuiltinName is the identity of the built-in model, recorded in adapter
// files: the pretrained kronfed-tiny (Builtin), what every command and
// federation means by --model builtin.
const BuiltinName = "kronfed-tiny"

// BuiltinPath is the name train.LoadModel recognizes for the built-in model
// (its Model.Path).
const BuiltinPath = "builtin"

// BuiltinRandomName and BuiltinRandomPath name the same architecture with
// random, never-trained weights (BuiltinRandom): the built-in model before
// it was pretrained, kept for comparisons and for tests that need a model
// without the pretrained file.
const (
	BuiltinRandomName = "kronfed-tiny-random"
	BuiltinRandomPath = "builtin-random"
)

// BuiltinSeed is the seed of the random weights --model builtin-random
// means, and of the initialization the built-in model was pretrained from.
const BuiltinSeed = 1

// builtinSpec is the architecture and initialization of the built-in model.
type builtinSpec struct {
	hidden, layers, heads, kvHeads, ffn, maxPos int
	// Standard deviations of the Gaussian weights: embeddings (tied to
	// lm_head), q/k projections, o/down projections, and the other linears.
	embedStd, qkStd, outStd, std float64
	// The constant RMSNorm weights: before attention, before the MLP, and
	// the final norm.
	attnNorm, ffnNorm, finalNorm float64
}

// builtinRandom was chosen, before the built-in model was pretrained, by
// fitting Kron-LoRA (r = 8, the paper's recipe: AdamW lr 3e-4, 2 epochs of
// 800 items) on every synthetic family over several seeds (see the reasoning
// on BuiltinRandom).
var builtinRandom = builtinSpec{
	hidden: 128, layers: 4, heads: 8, kvHeads: 4, ffn: 352, maxPos: 128,
	embedStd: 0.02, qkStd: 0.005, outStd: 0.02 / math.Sqrt(2*4), std: 0.02,
	attnNorm: 10, ffnNorm: 10, finalNorm: 10,
}

// builtinInit is the same architecture with a language model's usual
// initialization (GPT-2's and Llama's: Gaussian 0.02, the residual outputs
// scaled by 1/sqrt(2·layers), unit norm weights): where pretraining starts.
var builtinInit = builtinSpec{
	hidden: 128, layers: 4, heads: 8, kvHeads: 4, ffn: 352, maxPos: 128,
	embedStd: 0.02, qkStd: 0.02, outStd: 0.02 / math.Sqrt(2*4), std: 0.02,
	attnNorm: 1, ffnNorm: 1, finalNorm: 1,
}

// BuiltinConfig returns the configuration of the built-in model: a
// Llama-family decoder with hidden size 128, 4 layers, 8 attention heads
// sharing 4 key/value heads (head size 16), a SwiGLU MLP of 352, RoPE, at
// most 128 positions, and lm_head tied to the embeddings, whose rows are the
// built-in tokenizer's vocabulary (vocab: the words of the synthetic tasks,
// task.Vocabulary()) rounded up to a multiple of 16.
func BuiltinConfig(vocab []string) *Config { return builtinInit.config(vocab) }

func (s builtinSpec) config(vocab []string) *Config {
	return &Config{
		ModelType: "llama", Family: Decoder, Activation: "silu",
		Hidden: s.hidden, Intermediate: s.ffn, Layers: s.layers,
		Heads: s.heads, KVHeads: s.kvHeads, HeadDim: s.hidden / s.heads,
		Vocab: builtinVocab(vocab), MaxPositions: s.maxPos,
		RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: true,
	}
}

// builtinVocab is the number of embedding rows: the built-in tokenizer's
// vocabulary rounded up to a multiple of 16, so that any Kron-LoRA dA2 up to
// 16 that divides the other layers also divides lm_head. The extra rows are
// never produced by the tokenizer.
func builtinVocab(vocab []string) int {
	n := len(tokenizer.WordSpecials) + len(tokenizer.WordPunctuation) + len(vocab)
	return (n + 15) / 16 * 16
}

// BuiltinTokenizer is the built-in model's tokenizer: tokenizer.Word over
// vocab (task.Vocabulary(), which covers every item of every synthetic
// task).
func BuiltinTokenizer(vocab []string) (*tokenizer.Word, error) {
	return tokenizer.NewWord(vocab)
}

// Builtin reads the built-in model, kronfed-tiny, from its decoder file
// (train.BuiltinFile pretrains it once and caches it): a Llama-family
// decoder (BuiltinConfig) over the word list vocab (the synthetic tasks'
// task.Vocabulary(): the model package does not depend on the tasks),
// pretrained on the synthetic world's text (task.WorldText: number and letter
// order, sums and differences, last digits, comparisons, the nouns'
// categories, colors — never a task's question/answer frame). A file over
// another vocab or config is refused.
func Builtin(file []byte, vocab []string) (*Model, error) {
	m, err := ParseDecoderFile(file)
	if err != nil {
		return nil, fmt.Errorf("builtin model: %w", err)
	}
	w := m.Tok.(*tokenizer.Word)
	if words := w.Words(); !slices.Equal(words, vocab) {
		return nil, fmt.Errorf("builtin model: it was pretrained over a different word list (%d words, this program's tasks have %d): regenerate it with `go run ./cmd/client pretrain --builtin`", len(words), len(vocab))
	}
	if want := BuiltinConfig(vocab); *m.Cfg != *want {
		return nil, fmt.Errorf("builtin model: the file's config %+v is not BuiltinConfig %+v", *m.Cfg, *want)
	}
	m.Name, m.Path = BuiltinName, BuiltinPath
	return m, nil
}

// BuiltinRandom builds the built-in architecture with random weights drawn
// from seed, never trained (765,056 frozen parameters with the tasks'
// vocabulary): what the built-in model was before it was pretrained, kept
// as a baseline ("adapters on random features"). Initialization: Gaussian,
// standard deviation 0.02 (GPT-2 and Llama's), o_proj and down_proj scaled
// by 1/sqrt(2·layers), q_proj and k_proj 0.005; every RMSNorm weight is 10.
//
// The last two depart from a language model's initialization on purpose.
// The paper's recipe trains a few hundred AdamW steps at lr 3e-4, which moves
// each adapter factor by at most a few hundredths; on a pretrained model that
// is enough, on a random one with unit norm weights the logits hardly move.
// Norm weights of 10 make every adapted linear's input (and the final
// features lm_head reads) ten times larger, so the same factor updates change
// the outputs ten times as much; small q/k weights keep the untrained
// attention close to a causal average of the earlier tokens (a bag of
// words), which carries the operands of every synthetic question to the
// last position, rather than a random pattern that often skips them.
//
// The same seed gives the same weights on every machine: each tensor is
// drawn from its own PCG stream, keyed by seed and the tensor's name.
func BuiltinRandom(seed uint64, vocab []string) (*Model, error) {
	m, err := builtinRandom.build(seed, vocab)
	if err != nil {
		return nil, err
	}
	m.Name, m.Path = BuiltinRandomName, BuiltinRandomPath
	return m, nil
}

// BuiltinInit builds the built-in architecture with a language model's
// initialization drawn from seed (see builtinInit): the starting point of
// `client pretrain`.
func BuiltinInit(seed uint64, vocab []string) (*Model, error) {
	m, err := builtinInit.build(seed, vocab)
	if err != nil {
		return nil, err
	}
	m.Name, m.Path = BuiltinName, ""
	return m, nil
}

func (s builtinSpec) build(seed uint64, vocab []string) (*Model, error) {
	tok, err := BuiltinTokenizer(vocab)
	if err != nil {
		return nil, fmt.Errorf("builtin model: %w", err)
	}
	cfg := s.config(vocab)
	if tok.VocabSize() > cfg.Vocab {
		return nil, fmt.Errorf("builtin model: tokenizer has %d tokens, the embedding %d rows", tok.VocabSize(), cfg.Vocab)
	}
	llama, err := NewLlama(cfg, RopeHalf, s.source(seed))
	if err != nil {
		return nil, fmt.Errorf("builtin model: %w", err)
	}
	return &Model{Name: BuiltinName, Path: BuiltinPath, Cfg: cfg, Llama: llama, Tok: tok}, nil
}

// source serves the generated tensors by their Hugging Face names.
func (s builtinSpec) source(seed uint64) TensorSource {
	return func(name string, shape ...int) ([]float32, error) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		t := make([]float32, n)
		constant := func(v float64) ([]float32, error) {
			for i := range t {
				t[i] = float32(v)
			}
			return t, nil
		}
		var std float64
		switch {
		case name == "model.embed_tokens.weight":
			std = s.embedStd
		case name == "model.norm.weight":
			return constant(s.finalNorm)
		case strings.HasSuffix(name, ".input_layernorm.weight"):
			return constant(s.attnNorm)
		case strings.HasSuffix(name, ".post_attention_layernorm.weight"):
			return constant(s.ffnNorm)
		case strings.HasSuffix(name, ".q_proj.weight"), strings.HasSuffix(name, ".k_proj.weight"):
			std = s.qkStd
		case strings.HasSuffix(name, ".o_proj.weight"), strings.HasSuffix(name, ".down_proj.weight"):
			std = s.outStd
		case strings.HasSuffix(name, ".v_proj.weight"), strings.HasSuffix(name, ".gate_proj.weight"),
			strings.HasSuffix(name, ".up_proj.weight"), name == "lm_head.weight":
			std = s.std
		default:
			return nil, fmt.Errorf("builtin model has no tensor %s", name)
		}
		h := fnv.New64a()
		h.Write([]byte("kronfed/model/builtin/" + name))
		r := rand.New(rand.NewPCG(seed, h.Sum64()))
		for i := range t {
			t[i] = float32(r.NormFloat64() * std)
		}
		return t, nil
	}
}
