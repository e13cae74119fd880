package train

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/model/tokenizer"
)

// PretrainConfig is a run of pretraining: every weight of a decoder trained
// as a language model on a text corpus (next-token cross-entropy), with the
// same engine as fine-tuning plus the base's weight gradients
// (model.LlamaGrads). Zero fields take the defaults the built-in model was
// pretrained with (DefaultPretrain).
type PretrainConfig struct {
	Steps  int // optimizer steps
	Batch  int // sequences per step
	SeqLen int // tokens per sequence, BOS included
	// LR is the peak learning rate: linear warm-up over Warmup steps, then a
	// cosine decay to MinLR·LR at the last step.
	LR     float64
	Warmup int
	MinLR  float64
	// WeightDecay applies to the linear layers' matrices only (not the
	// embedding or the norm weights), as GPT-style recipes do.
	WeightDecay float64
	MaxGradNorm float64
	Seed        uint64 // the sequences' draw
	// EvalEvery steps the held-out loss is measured (and at the end);
	// EvalSequences sequences of it.
	EvalEvery, EvalSequences int
}

// DefaultPretrain is the recipe of the built-in model (`client pretrain`).
func DefaultPretrain() PretrainConfig {
	return PretrainConfig{Steps: 1200, Batch: 16, SeqLen: 64, LR: 3e-3, Warmup: 60, MinLR: 0.1,
		WeightDecay: 0.01, MaxGradNorm: 1, Seed: 1, EvalEvery: 100, EvalSequences: 64}
}

func (c PretrainConfig) withDefaults() PretrainConfig {
	d := DefaultPretrain()
	c.Steps = cmp.Or(c.Steps, d.Steps)
	c.Batch = cmp.Or(c.Batch, d.Batch)
	c.SeqLen = cmp.Or(c.SeqLen, d.SeqLen)
	c.LR = cmp.Or(c.LR, d.LR)
	c.MaxGradNorm = cmp.Or(c.MaxGradNorm, d.MaxGradNorm)
	c.EvalEvery = cmp.Or(c.EvalEvery, d.EvalEvery)
	c.EvalSequences = cmp.Or(c.EvalSequences, d.EvalSequences)
	return c
}

// Validate says what is wrong with a configuration.
func (c PretrainConfig) Validate() error {
	switch {
	case c.Steps < 1:
		return fmt.Errorf("pretrain: steps %d, want ≥ 1", c.Steps)
	case c.Batch < 1:
		return fmt.Errorf("pretrain: batch %d, want ≥ 1", c.Batch)
	case c.SeqLen < 2:
		return fmt.Errorf("pretrain: sequence length %d, want ≥ 2", c.SeqLen)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("pretrain: learning rate %v, want > 0", c.LR)
	case c.Warmup < 0 || c.Warmup >= c.Steps:
		return fmt.Errorf("pretrain: warm-up of %d steps for %d steps", c.Warmup, c.Steps)
	case !(c.MinLR >= 0 && c.MinLR <= 1):
		return fmt.Errorf("pretrain: min_lr %v, want a fraction of lr in [0, 1]", c.MinLR)
	case !(c.WeightDecay >= 0):
		return fmt.Errorf("pretrain: weight decay %v, want ≥ 0", c.WeightDecay)
	case c.EvalEvery < 1 || c.EvalSequences < 1:
		return fmt.Errorf("pretrain: eval every %d steps on %d sequences, want both ≥ 1", c.EvalEvery, c.EvalSequences)
	}
	return nil
}

// LR is the learning rate of step (0-based).
func (c PretrainConfig) lrAt(step int) float64 {
	if step < c.Warmup {
		return c.LR * float64(step+1) / float64(c.Warmup)
	}
	span := max(1, c.Steps-c.Warmup-1)
	p := float64(step-c.Warmup) / float64(span)
	return c.LR * (c.MinLR + (1-c.MinLR)*0.5*(1+math.Cos(math.Pi*min(1, p))))
}

// Corpus is tokenized text for pretraining: sentences of token ids, joined
// into sequences as BOS s₁ . s₂ . … (cut at the sequence length).
type Corpus struct {
	Sentences [][]int
	Sep       int // the separator between sentences ("." or EOS)
	BOS       int
	Tokens    int // total tokens of Sentences
}

// NewCorpus tokenizes sentences with tok. It refuses text that is mostly
// unknown words (a tokenizer that does not fit the text) and a corpus with
// fewer tokens than one sequence of seqLen needs.
func NewCorpus(tok tokenizer.Tokenizer, sentences []string, seqLen int) (*Corpus, error) {
	sp := tok.Special()
	if sp.BOS < 0 {
		return nil, fmt.Errorf("pretrain corpus: the tokenizer has no BOS token")
	}
	c := &Corpus{BOS: sp.BOS, Sep: sp.EOS}
	if w, ok := tok.(interface{ TokenID(string) (int, bool) }); ok {
		if id, ok := w.TokenID("."); ok {
			c.Sep = id
		}
	}
	if c.Sep < 0 {
		return nil, fmt.Errorf("pretrain corpus: the tokenizer has neither \".\" nor EOS to separate sentences")
	}
	unk := 0
	for i, s := range sentences {
		ids := tok.Encode(s)
		if len(ids) == 0 {
			return nil, fmt.Errorf("pretrain corpus: sentence %d (%q) has no tokens", i, s)
		}
		for _, id := range ids {
			if id == sp.UNK {
				unk++
			}
		}
		c.Sentences = append(c.Sentences, ids)
		c.Tokens += len(ids) + 1
	}
	if c.Tokens < 4*seqLen {
		return nil, fmt.Errorf("pretrain corpus: %d tokens in %d sentences, too small for sequences of %d tokens (want at least %d)",
			c.Tokens, len(sentences), seqLen, 4*seqLen)
	}
	if unk*20 > c.Tokens {
		return nil, fmt.Errorf("pretrain corpus: %d of %d tokens are unknown words: the text does not fit the tokenizer", unk, c.Tokens)
	}
	return c, nil
}

// sequence fills seq (length T) with BOS and randomly drawn sentences.
func (c *Corpus) sequence(seq []int, r *rand.Rand) {
	seq[0] = c.BOS
	i := 1
	for i < len(seq) {
		s := c.Sentences[r.IntN(len(c.Sentences))]
		i += copy(seq[i:], s)
		if i < len(seq) {
			seq[i] = c.Sep
			i++
		}
	}
}

// batch draws B sequences of T tokens: inputs (B×T) and next-token targets
// (the last position of each row has none: −1).
func (c *Corpus) batch(B, T int, r *rand.Rand) (tokens, targets []int) {
	tokens = make([]int, B*T)
	targets = make([]int, B*T)
	seq := make([]int, T+1)
	for b := 0; b < B; b++ {
		c.sequence(seq, r)
		copy(tokens[b*T:(b+1)*T], seq[:T])
		copy(targets[b*T:(b+1)*T], seq[1:])
	}
	return tokens, targets
}

// PretrainProgress reports a step: its training loss and, on evaluation
// steps, the held-out loss (NaN otherwise).
type PretrainProgress struct {
	Step, Steps int
	LR          float64
	Loss        float64
	EvalLoss    float64
	Elapsed     time.Duration
	TokensPerS  float64
}

// PretrainResult summarizes a run.
type PretrainResult struct {
	Steps         int     `json:"steps"`
	Tokens        int     `json:"tokens"`
	FirstEvalLoss float64 `json:"first_eval_loss"`
	EvalLoss      float64 `json:"eval_loss"`
	Seconds       float64 `json:"seconds"`
}

// Pretrain trains every weight of m (a decoder) in place on train,
// measuring the loss on eval (held-out text). The run is deterministic for
// a given configuration, corpus and thread count.
func Pretrain(ctx context.Context, m *model.Model, train, eval *Corpus, cfg PretrainConfig, progress func(PretrainProgress)) (*PretrainResult, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m.Llama == nil {
		return nil, fmt.Errorf("pretrain %s: only decoders can be pretrained", m.Name)
	}
	if cfg.SeqLen > m.Cfg.MaxPositions {
		return nil, fmt.Errorf("pretrain %s: sequence length %d exceeds the context of %d", m.Name, cfg.SeqLen, m.Cfg.MaxPositions)
	}
	run, err := m.Llama.NewRun(nil)
	if err != nil {
		return nil, err
	}
	grads := m.Llama.NewGrads()
	run.Grads = grads
	params := m.Llama.Params(grads)
	var decayed, plain []adapter.Factor
	for _, p := range params {
		if p.Rows > 1 && p.Name != "model.embed_tokens.weight" {
			decayed = append(decayed, p)
		} else {
			plain = append(plain, p)
		}
	}
	oc := AdamWConfig{LR: cfg.LR, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8}
	optPlain, err := NewAdamW(plain, oc)
	if err != nil {
		return nil, err
	}
	oc.WeightDecay = cfg.WeightDecay
	optDecayed, err := NewAdamW(decayed, oc)
	if err != nil {
		return nil, err
	}
	evalRNG := rand.New(rand.NewPCG(cfg.Seed, 0x6576616c))
	evalTokens, evalTargets := eval.batch(cfg.EvalSequences, cfg.SeqLen, evalRNG)
	evalLoss := func() (float64, error) {
		run.Grads = nil
		defer func() { run.Grads = grads }()
		var sum float64
		var count int
		B := min(cfg.Batch, cfg.EvalSequences)
		for lo := 0; lo < cfg.EvalSequences; lo += B {
			hi := min(lo+B, cfg.EvalSequences)
			if err := run.Forward(evalTokens[lo*cfg.SeqLen:hi*cfg.SeqLen], hi-lo, cfg.SeqLen); err != nil {
				return 0, err
			}
			l, n, err := run.LossAndGrad(evalTargets[lo*cfg.SeqLen : hi*cfg.SeqLen])
			if err != nil {
				return 0, err
			}
			sum += l * float64(n)
			count += n
		}
		return sum / float64(count), nil
	}
	res := &PretrainResult{Steps: cfg.Steps}
	if res.FirstEvalLoss, err = evalLoss(); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x7072657472))
	start := time.Now()
	for step := 0; step < cfg.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tokens, targets := train.batch(cfg.Batch, cfg.SeqLen, r)
		grads.Zero()
		if err := run.Forward(tokens, cfg.Batch, cfg.SeqLen); err != nil {
			return nil, err
		}
		loss, _, err := run.LossAndGrad(targets)
		if err != nil {
			return nil, err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, fmt.Errorf("pretrain: loss is %v at step %d (lower the learning rate)", loss, step)
		}
		run.Backward()
		if _, err := ClipGradNorm(params, cfg.MaxGradNorm); err != nil {
			return nil, fmt.Errorf("pretrain step %d: %w", step, err)
		}
		lr := cfg.lrAt(step)
		optPlain.Step(lr)
		optDecayed.Step(lr)
		m.Llama.Repack()
		res.Tokens += cfg.Batch * cfg.SeqLen
		p := PretrainProgress{Step: step + 1, Steps: cfg.Steps, LR: lr, Loss: loss, EvalLoss: math.NaN(),
			Elapsed: time.Since(start)}
		p.TokensPerS = float64(res.Tokens) / p.Elapsed.Seconds()
		if (step+1)%cfg.EvalEvery == 0 || step+1 == cfg.Steps {
			if p.EvalLoss, err = evalLoss(); err != nil {
				return nil, err
			}
			res.EvalLoss = p.EvalLoss
		}
		if progress != nil {
			progress(p)
		}
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}
