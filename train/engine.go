package train

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/compute"
	"github.com/kronfed/kronfed/gpu"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/model/tokenizer"
	"github.com/kronfed/kronfed/task"
)

// Engine is where learners compute: the CPU (package model's runs over
// package compute) or a CUDA device (package gpu). It is the one place that
// picks; Learner, Fit and everything above them are the same on both.
//
// A GPU engine uploads each frozen base once and shares it among all the
// learners it makes (the simulator's clients), each with its own adapters,
// activations and optimizer state. The device has one stream, so its
// learners take turns: every call of one (Step, Score, Loss, Close) holds
// the engine's turn, and learners used from many goroutines at once are
// safe, one call at a time.
type Engine struct {
	gpu *gpu.Engine // nil on the CPU
	// precision is the --precision value a CPU engine resolves for each
	// base its learners bind to (FrozenPrecision): "fp32", "bf16", "auto".
	precision string

	// turn orders everything a GPU engine does on its device: uploads,
	// runs' creation, their calls and their freeing.
	turn   sync.Mutex
	llamas map[*model.Llama]*gpu.Llama
	berts  map[*model.BERT]*gpu.BERT
}

// CPU is the CPU engine: NewLearner on it is the package-level NewLearner.
var CPU = &Engine{precision: "fp32"}

// ParseDevice checks a --device value: "cpu" (or ""), "cuda", "cuda:N",
// "gpu" or "gpu:N".
func ParseDevice(device string) (string, error) {
	d := strings.ToLower(strings.TrimSpace(device))
	if d == "" || d == "cpu" {
		return "cpu", nil
	}
	if d == "cuda" || d == "gpu" || strings.HasPrefix(d, "cuda:") || strings.HasPrefix(d, "gpu:") {
		return d, nil
	}
	return "", fmt.Errorf("unknown device %q (want cpu, cuda or cuda:N)", device)
}

// OpenEngine starts the engine for device with the frozen weights in
// precision (a --precision value, see FrozenPrecision; on a GPU it sets
// opt.Precision). For a GPU it loads the CUDA libraries and compiles the
// kernels; a machine without a usable GPU, or bf16 asked of a CPU without
// AVX512_BF16, gets the error that says what is missing.
func OpenEngine(device, precision string, opt gpu.Options) (*Engine, error) {
	d, err := ParseDevice(device)
	if err != nil {
		return nil, err
	}
	if precision, err = ParsePrecision(precision); err != nil {
		return nil, err
	}
	if d == "cpu" {
		if (precision == "bf16" || precision == "bf16-lean") && !compute.HasBF16() {
			return nil, errNoCPUBF16
		}
		if precision == "fp32" {
			return CPU, nil
		}
		return &Engine{precision: precision}, nil
	}
	if opt.Precision, err = FrozenPrecision(precision, d, nil); err != nil {
		return nil, err
	}
	g, err := gpu.Open(d, opt)
	if err != nil {
		return nil, err
	}
	return NewGPUEngine(g), nil
}

// NewGPUEngine makes learners on an open CUDA engine (OpenEngine opens one
// from a --device value; tests pass gputest's emulated one). Close closes g.
func NewGPUEngine(g *gpu.Engine) *Engine {
	return &Engine{gpu: g, llamas: map[*model.Llama]*gpu.Llama{}, berts: map[*model.BERT]*gpu.BERT{}}
}

// Device names the engine's device: "cpu" or the GPU's description.
func (e *Engine) Device() string {
	if e.gpu == nil {
		return "cpu"
	}
	return e.gpu.Device().String()
}

// GPU is the CUDA engine, or nil on the CPU.
func (e *Engine) GPU() *gpu.Engine { return e.gpu }

// errEngineClosed is what a closed GPU engine answers.
var errEngineClosed = errors.New("train: the GPU engine is closed")

// Close frees the device and every base uploaded to it; closing twice is
// harmless. Learners made by the engine must not be used afterwards.
func (e *Engine) Close() error {
	if e.gpu == nil {
		return nil
	}
	e.turn.Lock()
	defer e.turn.Unlock()
	if e.llamas == nil {
		return nil
	}
	for _, m := range e.llamas {
		m.Free()
	}
	for _, m := range e.berts {
		m.Free()
	}
	e.llamas, e.berts = nil, nil
	return e.gpu.Close()
}

// PrepareBase readies base m on this engine before any learner binds to it,
// so that what cannot work fails before training starts, and returns the
// precision its frozen weights are in ("fp32", "bf16", "bf16-lean"). On the
// CPU it applies the engine's --precision (UsePrecision); on a GPU it
// uploads m, which fails, saying how much memory m needs and how much is
// free, when m does not fit. The host's fp32 weights must still be there
// for a GPU (model.Model.ReleaseFP32 only after this).
func (e *Engine) PrepareBase(m *model.Model) (string, error) {
	if e.gpu == nil {
		return UsePrecision(e.precision, m)
	}
	e.turn.Lock()
	defer e.turn.Unlock()
	var err error
	if m.BERT != nil {
		_, err = e.deviceBERT(m.BERT)
	} else {
		_, err = e.deviceLlama(m.Llama)
	}
	return e.gpu.Precision.String(), err
}

// Release frees base m's device copy (PrepareBase, NewLearner) once no
// learner of it is left: a simulator that folds adapters into fresh bases
// would otherwise keep every one. Nothing on the CPU.
func (e *Engine) Release(m *model.Model) {
	if e.gpu == nil {
		return
	}
	e.turn.Lock()
	defer e.turn.Unlock()
	if d, ok := e.llamas[m.Llama]; ok && m.Llama != nil {
		d.Free()
		delete(e.llamas, m.Llama)
	}
	if d, ok := e.berts[m.BERT]; ok && m.BERT != nil {
		d.Free()
		delete(e.berts, m.BERT)
	}
}

// NewLearner binds set to the loaded model as the right kind of learner on
// this engine (see the package-level NewLearner).
func (e *Engine) NewLearner(m *model.Model, set *adapter.Set, maxLen int, rng *rand.Rand) (Learner, error) {
	if e.gpu == nil {
		if _, err := UsePrecision(e.precision, m); err != nil {
			return nil, err
		}
		return e.bindLearner(m, set, maxLen, rng)
	}
	e.turn.Lock()
	defer e.turn.Unlock()
	l, err := e.bindLearner(m, set, maxLen, rng)
	if err != nil {
		return nil, err
	}
	return &turnLearner{l: l, turn: &e.turn}, nil
}

// bindLearner binds set to m as the right kind of learner, on a run of
// this engine (bindRun: on a GPU the base is uploaded the first time, and
// the caller holds e.turn).
func (e *Engine) bindLearner(m *model.Model, set *adapter.Set, maxLen int, rng *rand.Rand) (Learner, error) {
	var pe tokenizer.PairEncoder
	if m.BERT != nil {
		var ok bool
		if pe, ok = m.Tok.(tokenizer.PairEncoder); !ok {
			return nil, fmt.Errorf("encoder %s needs a tokenizer with a pair template (tokenizer.json with a post_processor)", m.Name)
		}
	}
	enc, dec, free, err := e.bindRun(m, set)
	if err != nil {
		return nil, err
	}
	var l Learner
	if enc != nil {
		l, err = newEncoderLearner(enc, m.Cfg, pe, set, maxLen, rng)
	} else {
		l, err = newDecoderLearner(dec, m.Cfg, m.Tok, set, rng)
	}
	if err != nil {
		free()
		return nil, err
	}
	return l, nil
}

// bindRun binds set to base m on this engine: an encoder run or a decoder
// run (the other nil), and what frees it. A GPU engine uploads m the first
// time; its caller holds e.turn.
func (e *Engine) bindRun(m *model.Model, set *adapter.Set) (encoderRun, decoderRun, func(), error) {
	none := func() {}
	switch {
	case e.gpu == nil && m.BERT != nil:
		run, err := m.BERT.NewRun(set)
		return cpuEncoderRun{run}, nil, none, err
	case e.gpu == nil:
		run, err := m.Llama.NewRun(set)
		return nil, cpuDecoderRun{run}, none, err
	case m.BERT != nil:
		dev, err := e.deviceBERT(m.BERT)
		if err != nil {
			return nil, nil, nil, err
		}
		run, err := dev.NewRun(set)
		if err != nil {
			return nil, nil, nil, err
		}
		return gpuEncoderRun{run}, nil, run.Free, nil
	}
	dev, err := e.deviceLlama(m.Llama)
	if err != nil {
		return nil, nil, nil, err
	}
	run, err := dev.NewRun(set)
	if err != nil {
		return nil, nil, nil, err
	}
	return nil, gpuDecoderRun{run}, run.Free, nil
}

// turnLearner is a GPU engine's learner: each call holds the engine's turn.
type turnLearner struct {
	l    Learner
	turn *sync.Mutex
}

func (t *turnLearner) Set() *adapter.Set { return t.l.Set() }

func (t *turnLearner) Step(items []task.Item) (float64, error) {
	t.turn.Lock()
	defer t.turn.Unlock()
	return t.l.Step(items)
}

func (t *turnLearner) Score(items []task.Item) ([]Score, error) {
	t.turn.Lock()
	defer t.turn.Unlock()
	return t.l.Score(items)
}

func (t *turnLearner) Loss(items []task.Item) (float64, error) {
	t.turn.Lock()
	defer t.turn.Unlock()
	return t.l.Loss(items)
}

func (t *turnLearner) Close() error {
	t.turn.Lock()
	defer t.turn.Unlock()
	return t.l.Close()
}

// deviceLlama uploads m the first time it is asked for. The caller holds
// e.turn.
func (e *Engine) deviceLlama(m *model.Llama) (*gpu.Llama, error) {
	if e.llamas == nil {
		return nil, errEngineClosed
	}
	if d, ok := e.llamas[m]; ok {
		return d, nil
	}
	d, err := gpu.UploadLlama(e.gpu, m)
	if err != nil {
		return nil, err
	}
	e.llamas[m] = d
	return d, nil
}

// deviceBERT uploads m the first time it is asked for. The caller holds
// e.turn.
func (e *Engine) deviceBERT(m *model.BERT) (*gpu.BERT, error) {
	if e.berts == nil {
		return nil, errEngineClosed
	}
	if d, ok := e.berts[m]; ok {
		return d, nil
	}
	d, err := gpu.UploadBERT(e.gpu, m)
	if err != nil {
		return nil, err
	}
	e.berts[m] = d
	return d, nil
}

// decoderRun is one decoder forward/backward state on either engine:
// model.LlamaRun or gpu.LlamaRun, method for method.
type decoderRun interface {
	SetDropout(d *adapter.Dropout)
	Forward(tokens []int, B, T int) error
	LossAndGrad(targets []int) (float64, int, error)
	Backward() error
	// TargetLogProbs is the log-probability of each position's target token
	// (0 where the target is < 0) after Forward, and whether the target is
	// the position's most likely token (greedy decoding would emit it).
	TargetLogProbs(targets []int) (logProbs []float32, top []bool, err error)
	// Free releases the run's device memory (nothing on the CPU, where the
	// garbage collector takes it).
	Free()
}

type cpuDecoderRun struct{ *model.LlamaRun }

func (cpuDecoderRun) Free() {}

func (r cpuDecoderRun) SetDropout(d *adapter.Dropout) { r.Drop = d }

func (r cpuDecoderRun) Backward() error {
	r.LlamaRun.Backward()
	return nil
}

func (r cpuDecoderRun) TargetLogProbs(targets []int) ([]float32, []bool, error) {
	if len(targets) == 0 || len(r.Logits)%len(targets) != 0 {
		return nil, nil, fmt.Errorf("score: %d targets for %d logits", len(targets), len(r.Logits))
	}
	V := len(r.Logits) / len(targets)
	out, top := make([]float32, len(targets)), make([]bool, len(targets))
	lp := make([]float32, V)
	for p, t := range targets {
		if t >= 0 {
			row := r.Logits[p*V : (p+1)*V]
			model.LogSoftmax(lp, row)
			out[p], top[p] = lp[t], isArgmax(row, t)
		}
	}
	return out, top, nil
}

// isArgmax reports whether row[t] is the row's largest value (the first
// largest on ties, as greedy decoding picks).
func isArgmax(row []float32, t int) bool {
	for i, v := range row {
		if v > row[t] || (v == row[t] && i < t) {
			return false
		}
	}
	return true
}

type gpuDecoderRun struct{ *gpu.LlamaRun }

// TargetLogProbs adds the greedy check to the device's log-probabilities:
// it copies only the target positions' logit rows to the host.
func (r gpuDecoderRun) TargetLogProbs(targets []int) ([]float32, []bool, error) {
	lp, err := r.LlamaRun.TargetLogProbs(targets)
	if err != nil {
		return nil, nil, err
	}
	var pos []int
	for p, t := range targets {
		if t >= 0 {
			pos = append(pos, p)
		}
	}
	rows, err := r.LogitRows(pos)
	if err != nil {
		return nil, nil, err
	}
	top := make([]bool, len(targets))
	if len(pos) > 0 {
		V := len(rows) / len(pos)
		for i, p := range pos {
			top[p] = isArgmax(rows[i*V:(i+1)*V], targets[p])
		}
	}
	return lp, top, nil
}

func (r gpuDecoderRun) SetDropout(d *adapter.Dropout) { r.Drop = d }

// encoderRun is one encoder forward/backward state on either engine:
// model.BERTRun or gpu.BERTRun.
type encoderRun interface {
	// SetDropout sets the adapter input dropout and the frozen model's own
	// training-mode dropout generator (both nil at inference).
	SetDropout(d *adapter.Dropout, base *rand.Rand)
	Forward(b model.EncoderBatch) error
	LossAndGrad() (float64, error)
	Backward() error
	// ChoiceLogits are the last Forward's choice scores (B×C).
	ChoiceLogits() []float32
	// Free releases the run's device memory (nothing on the CPU).
	Free()
}

type cpuEncoderRun struct{ *model.BERTRun }

func (cpuEncoderRun) Free() {}

func (r cpuEncoderRun) SetDropout(d *adapter.Dropout, base *rand.Rand) { r.Drop, r.Base = d, base }
func (r cpuEncoderRun) ChoiceLogits() []float32                        { return r.Logits }
func (r cpuEncoderRun) Backward() error {
	r.BERTRun.Backward()
	return nil
}

type gpuEncoderRun struct{ *gpu.BERTRun }

func (r gpuEncoderRun) SetDropout(d *adapter.Dropout, base *rand.Rand) { r.Drop, r.Base = d, base }
func (r gpuEncoderRun) ChoiceLogits() []float32                        { return r.Logits() }

// PrecisionText names the frozen weights' precision on this engine: the
// GPU's, or what the CPU --precision value means here (PrecisionText).
func (e *Engine) PrecisionText() string {
	if e.gpu != nil {
		return e.gpu.Precision.String()
	}
	return PrecisionText(e.precision)
}
