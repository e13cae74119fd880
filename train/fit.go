package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/task"
)

// Config is a local fine-tuning run. Zero fields take the paper's recipe.
type Config struct {
	Epochs      int         // default 1
	BatchSize   int         // micro-batch, default 8 (no accumulation)
	EvalBatch   int         // items per scoring batch, default 8
	Optim       AdamWConfig // default DefaultAdamW()
	MaxGradNorm float64     // default 1.0; negative disables clipping
	Seed        uint64      // shuffling
	// SelectNorm picks the best epoch by acc_norm instead of acc.
	SelectNorm bool
	// MaxSteps stops training after this many optimizer steps (0: no limit);
	// the learning-rate schedule is then laid out over MaxSteps.
	MaxSteps int
	// Penalty, when set, is added to every step's loss and gradient (a
	// forgetting mitigation: L2SP, Orthogonal).
	Penalty Penalty
}

func (c Config) withDefaults() Config {
	if c.Epochs <= 0 {
		c.Epochs = 1
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 8
	}
	if c.EvalBatch <= 0 {
		c.EvalBatch = 8
	}
	if c.Optim == (AdamWConfig{}) {
		c.Optim = DefaultAdamW()
	}
	if c.MaxGradNorm == 0 {
		c.MaxGradNorm = 1
	}
	return c
}

// ErrDiverged marks a fit whose gradients or factors became NaN or ±Inf
// (a learning rate too high, most often).
var ErrDiverged = errors.New("training diverged")

// Accuracy is a scored split.
type Accuracy struct {
	N       int     `json:"n"`
	Acc     float64 `json:"acc"`
	AccNorm float64 `json:"acc_norm"`
	// Perplexity is exp of the mean negative log-likelihood per completion
	// token, for completion items (task.Item.Completion; 0 otherwise), whose
	// Acc and AccNorm are the exact-match rate: greedy decoding reproduces
	// the completion.
	Perplexity float64 `json:"perplexity,omitempty"`
}

// Evaluate scores items in batches of batch.
func Evaluate(ctx context.Context, l Learner, items []task.Item, batch int) (Accuracy, error) {
	if batch <= 0 {
		batch = 8
	}
	var a Accuracy
	var nll float64
	tokens := 0
	for i := 0; i < len(items); i += batch {
		if err := ctx.Err(); err != nil {
			return a, err
		}
		scores, err := l.Score(items[i:min(i+batch, len(items))])
		if err != nil {
			return a, err
		}
		for _, s := range scores {
			a.N++
			if s.Completion {
				nll -= s.LogLik[0]
				tokens += s.Tokens
				if s.Exact {
					a.Acc++
					a.AccNorm++
				}
				continue
			}
			if s.Correct() {
				a.Acc++
			}
			if s.CorrectNorm() {
				a.AccNorm++
			}
		}
	}
	if a.N > 0 {
		a.Acc /= float64(a.N)
		a.AccNorm /= float64(a.N)
	}
	if tokens > 0 {
		a.Perplexity = math.Exp(nll / float64(tokens))
	}
	return a, nil
}

// EpochResult is one epoch's record.
type EpochResult struct {
	Epoch     int      `json:"epoch"`
	Steps     int      `json:"steps"`
	TrainLoss float64  `json:"train_loss"` // mean over the epoch's batches
	Val       Accuracy `json:"validation"`
	Seconds   float64  `json:"seconds"`
}

// Result is a whole run.
type Result struct {
	Epochs          []EpochResult `json:"epochs"`
	BestEpoch       int           `json:"best_epoch"`
	BestVal         Accuracy      `json:"best_validation"`
	Test            *Accuracy     `json:"test,omitempty"` // of the best epoch's adapters
	TrainableParams int           `json:"trainable_params"`
	ExamplesPerSec  float64       `json:"examples_per_sec"` // training examples (forward+backward+update) per second
	Steps           int           `json:"steps"`
}

// Progress is reported after every step and evaluation.
type Progress struct {
	Epoch, Epochs int
	Step, Steps   int // within the run
	Loss          float64
	Phase         string // "train", "validate", "test"
}

// Fit fine-tunes l's Set on train, validating after each epoch and keeping the
// epoch with the best validation accuracy; it restores that epoch's
// parameters at the end and, when test is non-empty, reports its test
// accuracy. Everything is seeded: the same inputs give the same result.
func Fit(ctx context.Context, l Learner, trainItems, val, test []task.Item, cfg Config, progress func(Progress)) (*Result, error) {
	cfg = cfg.withDefaults()
	if len(trainItems) == 0 {
		return nil, fmt.Errorf("train: no training items")
	}
	if len(val) == 0 {
		return nil, fmt.Errorf("train: no validation items (the best epoch is chosen on validation)")
	}
	set := l.Set()
	params := set.Params()
	opt, err := NewAdamW(params, cfg.Optim)
	if err != nil {
		return nil, err
	}
	perEpoch := (len(trainItems) + cfg.BatchSize - 1) / cfg.BatchSize
	total := perEpoch * cfg.Epochs
	if cfg.MaxSteps > 0 && cfg.MaxSteps < total {
		total = cfg.MaxSteps
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x747261696e))
	order := make([]int, len(trainItems))
	for i := range order {
		order[i] = i
	}
	res := &Result{TrainableParams: set.NumParams(), BestEpoch: -1}
	var best [][]float32
	report := func(p Progress) {
		if progress != nil {
			progress(p)
		}
	}
	var trainTime time.Duration
	examples := 0
	batch := make([]task.Item, 0, cfg.BatchSize)
	for epoch := 1; epoch <= cfg.Epochs && opt.Steps() < total; epoch++ {
		start := time.Now()
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var lossSum float64
		steps := 0
		for i := 0; i < len(order) && opt.Steps() < total; i += cfg.BatchSize {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			batch = batch[:0]
			for _, k := range order[i:min(i+cfg.BatchSize, len(order))] {
				batch = append(batch, trainItems[k])
			}
			set.ZeroGrad()
			loss, err := l.Step(batch)
			if err != nil {
				return nil, fmt.Errorf("epoch %d step %d: %w", epoch, opt.Steps()+1, err)
			}
			if cfg.Penalty != nil {
				loss += cfg.Penalty.AddGrad(params)
			}
			if _, err := clipOrSkip(params, cfg.MaxGradNorm); err != nil {
				return nil, fmt.Errorf("epoch %d step %d: %w: %w", epoch, opt.Steps()+1, ErrDiverged, err)
			}
			opt.Step(LinearLR(cfg.Optim.LR, opt.Steps(), total))
			lossSum += loss
			steps++
			examples += len(batch)
			report(Progress{Epoch: epoch, Epochs: cfg.Epochs, Step: opt.Steps(), Steps: total, Loss: loss, Phase: "train"})
		}
		trainTime += time.Since(start)
		if err := set.CheckFinite(); err != nil {
			return nil, fmt.Errorf("epoch %d: %w: %w", epoch, ErrDiverged, err)
		}
		report(Progress{Epoch: epoch, Epochs: cfg.Epochs, Step: opt.Steps(), Steps: total, Phase: "validate"})
		acc, err := Evaluate(ctx, l, val, cfg.EvalBatch)
		if err != nil {
			return nil, fmt.Errorf("epoch %d validation: %w", epoch, err)
		}
		er := EpochResult{Epoch: epoch, Steps: steps, Val: acc, Seconds: time.Since(start).Seconds()}
		if steps > 0 {
			er.TrainLoss = lossSum / float64(steps)
		}
		res.Epochs = append(res.Epochs, er)
		if res.BestEpoch < 0 || metric(acc, cfg.SelectNorm) > metric(res.BestVal, cfg.SelectNorm) {
			res.BestEpoch, res.BestVal = epoch, acc
			best = snapshot(params, best)
		}
	}
	restore(params, best)
	res.Steps = opt.Steps()
	if trainTime > 0 {
		res.ExamplesPerSec = float64(examples) / trainTime.Seconds()
	}
	if len(test) > 0 {
		report(Progress{Epoch: res.BestEpoch, Epochs: cfg.Epochs, Step: res.Steps, Steps: total, Phase: "test"})
		acc, err := Evaluate(ctx, l, test, cfg.EvalBatch)
		if err != nil {
			return nil, fmt.Errorf("test: %w", err)
		}
		res.Test = &acc
	}
	return res, nil
}

func clipOrSkip(params []adapter.Factor, maxNorm float64) (float64, error) {
	if maxNorm < 0 {
		maxNorm = 0
	}
	return ClipGradNorm(params, maxNorm)
}

func metric(a Accuracy, norm bool) float64 {
	if a.Perplexity > 0 { // completion tasks: the lowest perplexity is best
		return -a.Perplexity
	}
	if norm {
		return a.AccNorm
	}
	return a.Acc
}

func snapshot(params []adapter.Factor, dst [][]float32) [][]float32 {
	if dst == nil {
		dst = make([][]float32, len(params))
	}
	for i, p := range params {
		dst[i] = append(dst[i][:0], p.Data...)
	}
	return dst
}

func restore(params []adapter.Factor, src [][]float32) {
	for i, p := range params {
		copy(p.Data, src[i])
	}
}
