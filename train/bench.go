package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/kronfed/kronfed/adapter"
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
// round when it is not nil (say, to make the weights bf16-exact).
func randomWeights(seed uint64, std float64, round func(float32) float32) model.TensorSource {
	rng := rand.New(rand.NewPCG(seed, 1))
	return func(name string, shape ...int) ([]float32, error) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(rng.NormFloat64() * std)
			if len(shape) == 1 { // LayerNorm weights near 1
				w[i] += 1
			}
			if round != nil {
				w[i] = round(w[i])
			}
		}
		return w, nil
	}
}

// BenchStep is one prepared training step on a random-weight encoder.
type BenchStep struct {
	Run    func() error // forward, backward, clip, AdamW update
	Tokens int          // tokens per step
	// Flops counts per step: frozen forward and activation backward of every
	// linear (2·2·n·d_out·d_in; the first block's q, k, v skip the backward),
	// attention (forward 4·N·T²·d, backward twice
	// that, per layer), the head, and the adapters (forward 2·n·r·(d_in+d_out),
	// backward twice that; LoRA-q the same with q).
	Flops float64
	// FrozenBytes is the memory of the frozen linears (W and packed
	// copies, made on the first step).
	FrozenBytes func() int64
}

// NewBenchStep builds cfg's encoder with random weights and an adapter of
// kind ("kron", or "loraQ" for LoRA of rank Q) and returns a training step on
// seqs sequences (seqs/4 questions × 4 choices) of T tokens each, dropout on,
// as training runs it, with the frozen weights in precision (a --precision
// value, see UsePrecision); bf16 bases drop their fp32 weights
// (model.Model.ReleaseFP32), as a client does.
func NewBenchStep(cfg *model.Config, kind string, seqs, T int, seed uint64, precision string) (*BenchStep, error) {
	if seqs%4 != 0 {
		return nil, fmt.Errorf("bench: %d sequences is not a whole number of 4-choice questions", seqs)
	}
	m, err := model.NewBERT(cfg, randomWeights(seed, 0.02, nil))
	if err != nil {
		return nil, err
	}
	base := &model.Model{Name: "bench", Cfg: cfg, BERT: m}
	p, err := UsePrecision(precision, base)
	if err != nil {
		return nil, err
	}
	if p != "fp32" { // as a client does: the fp32 weights released
		if err := base.ReleaseFP32(); err != nil {
			return nil, err
		}
	}
	var ac adapter.Config
	switch {
	case kind == "kron":
		ac = adapter.DefaultConfig(adapter.KindKron).Resolve(cfg.Hidden)
	default:
		ac = adapter.DefaultConfig(adapter.KindLoRA)
		if _, err := fmt.Sscanf(kind, "lora%d", &ac.Rank); err != nil {
			return nil, fmt.Errorf("bench: adapter %q: want kron or loraQ", kind)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	targets := cfg.Targets()
	set, err := adapter.NewSet(ac, "bench", targets, rng)
	if err != nil {
		return nil, err
	}
	set.Dense = model.NewHead(cfg, rng)
	run, err := m.NewRun(set)
	if err != nil {
		return nil, err
	}
	run.Drop = &adapter.Dropout{P: ac.Dropout, Rng: rng}
	run.Base = rng
	b := model.EncoderBatch{B: seqs / 4, C: 4, T: T}
	n := seqs * T
	b.IDs, b.Mask = make([]int, n), make([]float32, n)
	for i := range b.IDs {
		b.IDs[i] = rng.IntN(cfg.Vocab)
		b.Mask[i] = 1
	}
	b.Labels = make([]int, b.B)
	params := set.Params()
	opt, err := NewAdamW(params, DefaultAdamW())
	if err != nil {
		return nil, err
	}
	step := func() error {
		set.ZeroGrad()
		if err := run.Forward(b); err != nil {
			return err
		}
		if _, err := run.LossAndGrad(); err != nil {
			return err
		}
		run.Backward()
		if _, err := ClipGradNorm(params, 1); err != nil {
			return err
		}
		opt.Step(3e-4)
		return nil
	}
	var flops float64
	for i, l := range cfg.AdaptedLinears() {
		passes := 2.0 // frozen forward and activation backward
		if i < 3 {
			passes = 1 // the first block's q, k, v need no input gradient (the embeddings are frozen)
		}
		flops += passes * 2 * float64(n) * float64(l.DOut) * float64(l.DIn)
		flops += 3 * 2 * float64(n) * float64(ac.Rank) * float64(l.DIn+l.DOut)
	}
	flops += float64(cfg.Layers) * 12 * float64(seqs) * float64(T) * float64(T) * float64(cfg.Hidden)
	flops += 2 * 3 * float64(seqs) * float64(cfg.Hidden) * float64(cfg.Hidden) // pre_classifier
	return &BenchStep{Run: step, Tokens: n, Flops: flops, FrozenBytes: base.FrozenBytes}, nil
}
