package train

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/gpu"
	"github.com/kronfed/kronfed/model"
)

// DistilBERTConfig is distilbert-base-uncased's architecture, for benchmarks
// that need its shape without its weights.
func DistilBERTConfig() *model.Config {
	return &model.Config{ModelType: "distilbert", Family: model.Encoder, Hidden: 768, Intermediate: 3072, Layers: 6,
		Heads: 12, KVHeads: 12, HeadDim: 64, Vocab: 30522, MaxPositions: 512, LayerNormEps: 1e-12, Activation: "gelu",
		HiddenDropout: 0.1, AttnDropout: 0.1, ClassifierDropout: 0.2}
}

// randomWeights is a model.TensorSource of random weights: N(0, std²),
// vectors (LayerNorm weights, biases) around 1, each value passed through
// round when it is not nil (say, to make the weights bf16-exact). Each
// tensor is filled in chunks of 1M values, each from its own generator
// (seed, tensor's name, chunk), in parallel: a Mistral-7B's 7 billion
// values take seconds, not minutes, and the same on any number of cores.
func randomWeights(seed uint64, std float64, round func(float32) float32) model.TensorSource {
	return func(name string, shape ...int) ([]float32, error) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		h := fnv.New64a()
		h.Write([]byte(name))
		stream := h.Sum64()
		w := make([]float32, n)
		const chunk = 1 << 20
		var wg sync.WaitGroup
		sem := make(chan struct{}, runtime.GOMAXPROCS(0))
		for lo := 0; lo < n; lo += chunk {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				rng := rand.New(rand.NewPCG(seed, stream+uint64(lo/chunk)))
				part := w[lo:min(lo+chunk, n)]
				for i := range part {
					v := float32(rng.NormFloat64() * std)
					if len(shape) == 1 { // LayerNorm weights near 1
						v += 1
					}
					if round != nil {
						v = round(v)
					}
					part[i] = v
				}
			})
		}
		wg.Wait()
		return w, nil
	}
}

// Mistral7BConfig is Mistral-7B-v0.1's architecture (hidden 4096, 32 layers
// of 32 heads of 128 with 8 key/value heads, SwiGLU FFN 14336, a 4096-token
// sliding window, vocabulary 32000), for benchmarks that need its shape
// without its 14 GB of weights.
func Mistral7BConfig() *model.Config {
	return &model.Config{ModelType: "mistral", Family: model.Decoder, Hidden: 4096, Intermediate: 14336, Layers: 32,
		Heads: 32, KVHeads: 8, HeadDim: 128, Vocab: 32000, MaxPositions: 32768, RMSNormEps: 1e-5, RopeTheta: 10000, SlidingWindow: 4096}
}

// BenchShapes are the shapes BenchConfig knows.
var BenchShapes = []string{"distilbert", "mistral-7b"}

// BenchConfig is a benchmark shape's architecture with layers layers (0:
// the real model's).
func BenchConfig(shape string, layers int) (*model.Config, error) {
	var cfg *model.Config
	switch strings.ToLower(shape) {
	case "distilbert":
		cfg = DistilBERTConfig()
	case "mistral-7b", "mistral":
		cfg = Mistral7BConfig()
	default:
		return nil, fmt.Errorf("unknown shape %q (want %s)", shape, strings.Join(BenchShapes, " or "))
	}
	if layers < 0 {
		return nil, fmt.Errorf("%d layers", layers)
	}
	if layers > 0 {
		cfg.Layers = layers
	}
	return cfg, nil
}

// BenchStep is one prepared training step on a random-weight model.
type BenchStep struct {
	Run    func() error // forward, backward, clip, AdamW update
	Tokens int          // tokens per step
	// Flops counts per step: frozen forward and activation backward of every
	// linear (2·2·n·d_out·d_in; an encoder's first block's q, k, v skip the
	// backward), attention (forward 4·N·T²·d, backward twice that, per
	// layer; a decoder's causal mask is not discounted), an encoder's head
	// or a decoder's lm_head, and the adapters (forward 2·n·r·(d_in+d_out),
	// backward twice that; LoRA-q the same with q).
	Flops float64
	// FrozenBytes is the memory of the frozen linears on the host (W and
	// packed copies, made on the first step; on a GPU the host copy the
	// base was uploaded from).
	FrozenBytes func() int64
	// Close frees the step's run (device memory on a GPU), not the base;
	// closing twice is harmless.
	Close func()
}

// NewBenchStep builds cfg's model with random weights on the CPU engine
// with the frozen weights in precision (a --precision value, see
// UsePrecision) and returns one training step on it (Engine.NewBenchStep).
func NewBenchStep(cfg *model.Config, kind string, seqs, T int, seed uint64, precision string) (*BenchStep, error) {
	e, err := OpenEngine("cpu", precision, gpu.Options{})
	if err != nil {
		return nil, err
	}
	base, err := e.NewBenchBase(cfg, seed)
	if err != nil {
		return nil, err
	}
	return e.NewBenchStep(base, kind, seqs, T, seed)
}

// NewBenchBase builds cfg's model with random weights (N(0, 0.02²), norms
// around 1) and prepares it on this engine (PrepareBase: on a GPU, the
// upload). A CPU base in bf16 drops its fp32 weights
// (model.Model.ReleaseFP32), as a client does. Release it when done.
func (e *Engine) NewBenchBase(cfg *model.Config, seed uint64) (*model.Model, error) {
	base := &model.Model{Name: "bench", Cfg: cfg}
	var err error
	if cfg.Family == model.Encoder {
		base.BERT, err = model.NewBERT(cfg, randomWeights(seed, 0.02, nil))
	} else {
		base.Llama, err = model.NewLlama(cfg, model.RopeHalf, randomWeights(seed, 0.02, nil))
	}
	if err != nil {
		return nil, err
	}
	p, err := e.PrepareBase(base)
	if err != nil {
		return nil, err
	}
	if e.gpu == nil && p != "fp32" {
		if err := base.ReleaseFP32(); err != nil {
			return nil, err
		}
	}
	return base, nil
}

// NewBenchStep binds an adapter of kind ("kron" with the paper's dA2 for
// the hidden size, "kron:D" with dA2 = D, or "loraQ" for LoRA of rank Q)
// on every linear of base (NewBenchBase) and returns a training
// step as training runs it, dropout on: an encoder on seqs sequences
// (seqs/4 questions × 4 choices) of T tokens, a decoder on seqs sequences
// of T tokens predicting every next token.
func (e *Engine) NewBenchStep(base *model.Model, kind string, seqs, T int, seed uint64) (*BenchStep, error) {
	cfg := base.Cfg
	if cfg.Family == model.Encoder && seqs%4 != 0 {
		return nil, fmt.Errorf("bench: %d sequences is not a whole number of 4-choice questions", seqs)
	}
	if seqs < 1 || T < 1 || T > cfg.MaxPositions {
		return nil, fmt.Errorf("bench: %d sequences of %d tokens (at most %d)", seqs, T, cfg.MaxPositions)
	}
	var ac adapter.Config
	switch {
	case kind == "kron":
		ac = adapter.DefaultConfig(adapter.KindKron).Resolve(cfg.Hidden)
	case strings.HasPrefix(kind, "kron:"):
		ac = adapter.DefaultConfig(adapter.KindKron)
		if _, err := fmt.Sscanf(kind, "kron:%d", &ac.DA2); err != nil || ac.DA2 < 1 {
			return nil, fmt.Errorf("bench: adapter %q: want kron:dA2 with dA2 ≥ 1", kind)
		}
	default:
		ac = adapter.DefaultConfig(adapter.KindLoRA)
		if _, err := fmt.Sscanf(kind, "lora%d", &ac.Rank); err != nil {
			return nil, fmt.Errorf("bench: adapter %q: want kron or loraQ", kind)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	set, err := adapter.NewSet(ac, "bench", cfg.Targets(), rng)
	if err != nil {
		return nil, err
	}
	n := seqs * T
	ids := make([]int, n)
	for i := range ids {
		ids[i] = rng.IntN(cfg.Vocab)
	}
	drop := &adapter.Dropout{P: ac.Dropout, Rng: rng}
	if cfg.Family == model.Encoder {
		set.Dense = model.NewHead(cfg, rng)
	}
	e.turn.Lock()
	enc, dec, free, err := e.bindRun(base, set)
	e.turn.Unlock()
	if err != nil {
		return nil, err
	}
	var fwdBwd func() error
	if run := enc; run != nil {
		run.SetDropout(drop, rng)
		b := model.EncoderBatch{B: seqs / 4, C: 4, T: T, IDs: ids, Mask: make([]float32, n), Labels: make([]int, seqs/4)}
		for i := range b.Mask {
			b.Mask[i] = 1
		}
		fwdBwd = func() error {
			if err := run.Forward(b); err != nil {
				return err
			}
			if _, err := run.LossAndGrad(); err != nil {
				return err
			}
			return run.Backward()
		}
	} else {
		run := dec
		run.SetDropout(drop)
		targets := make([]int, n)
		for i := range targets {
			targets[i] = rng.IntN(cfg.Vocab)
		}
		fwdBwd = func() error {
			if err := run.Forward(ids, seqs, T); err != nil {
				return err
			}
			if _, _, err := run.LossAndGrad(targets); err != nil {
				return err
			}
			return run.Backward()
		}
	}
	params := set.Params()
	opt, err := NewAdamW(params, DefaultAdamW())
	if err != nil {
		free()
		return nil, err
	}
	step := func() error {
		set.ZeroGrad()
		if err := fwdBwd(); err != nil {
			return err
		}
		if _, err := ClipGradNorm(params, 1); err != nil {
			return err
		}
		opt.Step(3e-4)
		return nil
	}
	return &BenchStep{Run: step, Tokens: n, Flops: benchFlops(cfg, ac, seqs, T), FrozenBytes: base.FrozenBytes, Close: free}, nil
}

// benchFlops is BenchStep.Flops for cfg with adapter ac.
func benchFlops(cfg *model.Config, ac adapter.Config, seqs, T int) float64 {
	n := float64(seqs * T)
	var flops float64
	for i, l := range cfg.AdaptedLinears() {
		passes := 2.0 // frozen forward and activation backward
		if i < 3 && cfg.Family == model.Encoder {
			passes = 1 // the first block's q, k, v need no input gradient (the embeddings are frozen)
		}
		flops += passes * 2 * n * float64(l.DOut) * float64(l.DIn)
		flops += 3 * 2 * n * float64(ac.Rank) * float64(l.DIn+l.DOut)
	}
	flops += float64(cfg.Layers) * 12 * n * float64(T) * float64(cfg.Heads*cfg.HeadDim)
	if cfg.Family == model.Encoder {
		flops += 2 * 3 * float64(seqs) * float64(cfg.Hidden) * float64(cfg.Hidden) // pre_classifier
	} else {
		flops += 2 * 2 * n * float64(cfg.Hidden) * float64(cfg.Vocab) // lm_head forward and input gradient
	}
	return flops
}
