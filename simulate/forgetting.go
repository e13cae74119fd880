package simulate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate/audit"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/task"
)

// Pair is a sequential-task pair: train on A, then on B, measure A again.
type Pair struct {
	A, B string
	// Label names the pair in tables ("related", "shifted", ...).
	Label string
	// RoundsA and RoundsB are this pair's own phase lengths in federated
	// rounds; 0 takes the experiment's RoundsA or RoundsB. Pairs differ
	// because the paper trains a large task (HellaSwag) for fewer epochs
	// than a small one (ARC).
	RoundsA, RoundsB int
}

// ParsePair reads a pair spec: "A:B", "A:B:label", "A:B:ROUNDS_A:ROUNDS_B"
// or "A:B:label:ROUNDS_A:ROUNDS_B". Phase lengths are whole rounds ≥ 1. A
// three-part spec whose third part is a number is refused rather than taken
// as a label, since it is almost surely a schedule missing its phase B.
func ParsePair(s string) (Pair, error) {
	parts := strings.Split(s, ":")
	const want = "want A:B, A:B:label, A:B:ROUNDS_A:ROUNDS_B or A:B:label:ROUNDS_A:ROUNDS_B"
	if len(parts) < 2 || len(parts) > 5 {
		return Pair{}, fmt.Errorf("pair %q: %s", s, want)
	}
	for _, x := range parts {
		if strings.TrimSpace(x) == "" {
			return Pair{}, fmt.Errorf("pair %q: empty field (%s)", s, want)
		}
	}
	p := Pair{A: parts[0], B: parts[1]}
	var rounds []string
	switch len(parts) {
	case 3:
		if _, err := strconv.Atoi(parts[2]); err == nil {
			return Pair{}, fmt.Errorf("pair %q: a schedule needs both phase lengths (A:B:ROUNDS_A:ROUNDS_B)", s)
		}
		p.Label = parts[2]
	case 4:
		rounds = parts[2:]
	case 5:
		p.Label, rounds = parts[2], parts[3:]
	}
	for i, r := range rounds {
		n, err := strconv.Atoi(r)
		if err != nil || n < 1 {
			return Pair{}, fmt.Errorf("pair %q: rounds of phase %s %q: want a whole number ≥ 1", s, []string{"A", "B"}[i], r)
		}
		if i == 0 {
			p.RoundsA = n
		} else {
			p.RoundsB = n
		}
	}
	return p, nil
}

// Spec is the pair in ParsePair's syntax, schedule included when it has one.
func (p Pair) Spec() string {
	s := p.A + ":" + p.B
	if p.Label != "" {
		s += ":" + p.Label
	}
	if p.RoundsA > 0 || p.RoundsB > 0 {
		s += fmt.Sprintf(":%d:%d", p.RoundsA, p.RoundsB)
	}
	return s
}

// Name is the pair's label, or "A→B" without one.
func (p Pair) Name() string { return p.label() }

// ScaleRounds is n rounds scaled by f, rounded to the nearest round and at
// least 1, so a scaled-down schedule still trains and measures every phase.
func ScaleRounds(n int, f float64) int {
	return max(1, int(math.Round(float64(n)*f)))
}

// Schedule is the phase lengths a pair runs with: its own, else the
// experiment's.
func (e *Experiment) Schedule(p Pair) (roundsA, roundsB int) {
	roundsA, roundsB = e.RoundsA, e.RoundsB
	if p.RoundsA > 0 {
		roundsA = p.RoundsA
	}
	if p.RoundsB > 0 {
		roundsB = p.RoundsB
	}
	return roundsA, roundsB
}

// Arm is one adapter of a comparison, trained with its own learning rate:
// adapters of different kinds and sizes want different ones (a comparison
// at one shared rate measures the rate as much as the method).
type Arm struct {
	Adapter adapter.Config
	// LR is the arm's learning rate; 0 keeps Base.Train's.
	LR float64
	// LRSweep, when the LR was chosen by a validation sweep, is its
	// outcome, printed in the resolved config.
	LRSweep string
}

// Experiment is the federated forgetting protocol over adapters and pairs,
// repeated over seeds.
type Experiment struct {
	Base     Options // Adapter is replaced by each arm's, Seed by each of Seeds
	Adapters []Arm
	Pairs    []Pair
	// Seeds: every (adapter, pair) runs once per seed — the adapters'
	// initialization, the partition, the cohorts, shuffling and dropout
	// change; the tasks' splits do not. Empty: Base.Seed once.
	Seeds []uint64
	// Mitigations: every (adapter, pair, seed) runs once per mitigation
	// against forgetting. Empty: none.
	Mitigations []Mitigation
	// RoundsA and RoundsB are the federated rounds of each phase for pairs
	// without their own schedule (Pair.RoundsA, Pair.RoundsB).
	RoundsA, RoundsB int
	// Splits loads a task's splits (train.LoadSplits with a data folder).
	Splits func(name string) (*task.Splits, error)
	// EvalItems caps the test items scored per task and round (0: all).
	EvalItems int
	// Out is the run folder.
	Out string
	// Progress is told about every round (may be nil).
	Progress func(Progress)
}

// Progress is one published round of one run of the experiment.
type Progress struct {
	Run, Runs  int
	Seed       uint64
	Adapter    string
	Mitigation string
	Pair       Pair
	Phase      string // "A" or "B"
	Round      int    // within the run, from 1
	Rounds     int
	Loss       float64
	Epsilon    float64
	AccA       float64
	AccB       float64
	Elapsed    time.Duration
	// Accountant names how Epsilon was computed ("RDP", "PLD"; empty
	// without DP).
	Accountant string
	// Audit is the round's empirical ε̂ (with canaries), else nil.
	Audit *audit.Estimate
	// RefitError and RefitErrorMax: the clients' rank-change errors (see
	// RoundInfo).
	RefitError, RefitErrorMax float64
}

// RoundRecord is one line of rounds.jsonl.
type RoundRecord struct {
	Adapter    string  `json:"adapter"`
	Mitigation string  `json:"mitigation,omitempty"`
	Seed       uint64  `json:"seed"`
	Pair       string  `json:"pair"`
	TaskA      string  `json:"task_a"`
	TaskB      string  `json:"task_b"`
	Phase      string  `json:"phase"`
	Round      int     `json:"round"`
	Clients    int     `json:"clients"`
	TrainLoss  float64 `json:"train_loss"`
	AccA       float64 `json:"acc_a"`
	AccB       float64 `json:"acc_b"`
	WireBytes  uint64  `json:"wire_bytes"`
	RawBytes   uint64  `json:"raw_bytes"`
	AggError   float64 `json:"aggregation_error"`
	Epsilon    float64 `json:"epsilon,omitempty"`
	// PerplexityA is task A's test perplexity on completion tasks (whose
	// AccA is the exact-match rate), 0 on multiple-choice tasks.
	PerplexityA float64 `json:"perplexity_a,omitempty"`
	// Accountant names how Epsilon was computed ("RDP" or "PLD"; empty
	// without DP).
	Accountant string `json:"accountant,omitempty"`
	// Audit: the empirical ε̂ of the adapter published so far, at the run's
	// δ, and its 95% bootstrap interval (with canaries; see
	// Options.Canaries).
	Audit     float64 `json:"audit_epsilon,omitempty"`
	AuditLow  float64 `json:"audit_low,omitempty"`
	AuditHigh float64 `json:"audit_high,omitempty"`
	// RefitError and RefitErrorMax: with clients of different ranks, the
	// mean and largest relative ΔW error of their taking the global
	// adapter down to their own rank this round.
	RefitError    float64 `json:"refit_error,omitempty"`
	RefitErrorMax float64 `json:"refit_error_max,omitempty"`
	// ChanceA and ChanceB are the tasks' chance accuracies on the scored
	// items (the mean of 1/choices; 0 for completion tasks).
	ChanceA float64 `json:"chance_a,omitempty"`
	ChanceB float64 `json:"chance_b,omitempty"`
}

// Outcome is one (adapter, mitigation, pair, seed) run's summary.
type Outcome struct {
	Adapter         string  `json:"adapter"`
	Mitigation      string  `json:"mitigation"`
	Seed            uint64  `json:"seed"`
	LR              float64 `json:"lr"`
	TrainableParams int     `json:"trainable_params"`
	Pair            string  `json:"pair"`
	TaskA           string  `json:"task_a"`
	TaskB           string  `json:"task_b"`
	AccAAfterA      float64 `json:"acc_a_after_a"`
	AccBAfterA      float64 `json:"acc_b_after_a"`
	AccAAfterB      float64 `json:"acc_a_after_b"`
	AccBAfterB      float64 `json:"acc_b_after_b"`
	Forgetting      float64 `json:"forgetting"`
	RoundsA         int     `json:"rounds_a"`
	RoundsB         int     `json:"rounds_b"`
	UploadedBytes   uint64  `json:"uploaded_bytes"`
	RawBytes        uint64  `json:"raw_bytes"`
	Epsilon         float64 `json:"epsilon,omitempty"`
	Accountant      string  `json:"accountant,omitempty"` // "RDP" or "PLD" (with DP)
	Seconds         float64 `json:"seconds"`
	// NotRun names the phases that did not run ("B", or "A and B") when
	// the run stopped (a privacy budget), and Stopped says why; their
	// accuracies and the forgetting are then not results and are reported
	// as not run.
	NotRun  string `json:"not_run,omitempty"`
	Stopped string `json:"stopped,omitempty"`
}

// seeds is the experiment's seeds: Seeds, or Base.Seed alone.
func (e *Experiment) seeds() []uint64 {
	if len(e.Seeds) > 0 {
		return e.Seeds
	}
	return []uint64{e.Base.Seed}
}

// mitigations is the experiment's mitigations: Mitigations, or none.
func (e *Experiment) mitigations() []Mitigation {
	if len(e.Mitigations) > 0 {
		return e.Mitigations
	}
	return []Mitigation{{Kind: "none"}}
}

// Run executes every (seed, adapter, mitigation, pair) combination in
// order and returns the outcomes and the per-round records.
func (e *Experiment) Run(ctx context.Context) ([]Outcome, []RoundRecord, error) {
	var outcomes []Outcome
	var records []RoundRecord
	seeds, mits := e.seeds(), e.mitigations()
	for _, m := range mits {
		if err := m.Check(e.Base); err != nil {
			return nil, nil, err
		}
	}
	runs := len(seeds) * len(e.Adapters) * len(mits) * len(e.Pairs)
	run := 0
	var stop *StoppedError
	var stopErr error
	for _, seed := range seeds {
		for _, arm := range e.Adapters {
			for _, mit := range mits {
				for _, pair := range e.Pairs {
					run++
					if stopErr != nil { // the run ended at a budget stop: the rest did not run
						outcomes = append(outcomes, Outcome{Adapter: adapterLabel(arm.Adapter.Resolve(e.Base.Model.Cfg.Hidden)), Mitigation: mit.String(),
							Seed: seed, Pair: pair.label(), TaskA: pair.A, TaskB: pair.B, NotRun: "A and B", Stopped: "an earlier experiment stopped the run"})
						continue
					}
					o, recs, err := e.runOne(ctx, run, runs, arm, pair, seed, mit)
					if err != nil && errors.As(err, &stop) && o.Adapter != "" {
						// Keep what ran, marked: a stop is a result to report, not a
						// row of zeros.
						o.Stopped = stop.Reason
						outcomes, records = append(outcomes, o), append(records, recs...)
						stopErr = fmt.Errorf("%s, %s→%s, seed %d: %w", arm.Adapter, pair.A, pair.B, seed, err)
						continue
					}
					if err != nil {
						return outcomes, records, fmt.Errorf("%s, %s, %s→%s, seed %d: %w", arm.Adapter, mit, pair.A, pair.B, seed, err)
					}
					outcomes = append(outcomes, o)
					records = append(records, recs...)
				}
			}
		}
	}
	return outcomes, records, stopErr
}

// ArmOptions is Base with the arm's adapter and learning rate and seed.
func (e *Experiment) ArmOptions(arm Arm, seed uint64) Options {
	opts := e.Base
	opts.Adapter = arm.Adapter
	opts.Seed = seed
	if opts.Train != nil {
		tc := proto.Clone(opts.Train).(*fedpb.RoundConfig)
		tc.Seed = seed
		if arm.LR > 0 {
			tc.LearningRate = arm.LR
		}
		opts.Train = tc
	}
	return opts
}

func (e *Experiment) runOne(ctx context.Context, run, runs int, arm Arm, pair Pair, seed uint64, mit Mitigation) (Outcome, []RoundRecord, error) {
	start := time.Now()
	sa, err := e.Splits(pair.A)
	if err != nil {
		return Outcome{}, nil, err
	}
	sb, err := e.Splits(pair.B)
	if err != nil {
		return Outcome{}, nil, err
	}
	opts := e.ArmOptions(arm, seed)
	name := fmt.Sprintf("%02d-%s-%s", run, adapterLabel(arm.Adapter), pair.label())
	if len(e.mitigations()) > 1 || mit.Kind != "none" {
		name += "-" + strings.ReplaceAll(mit.String(), ":", "")
	}
	if len(e.seeds()) > 1 {
		name += fmt.Sprintf("-seed%d", seed)
	}
	opts.Dir = filepath.Join(e.Out, "federations", name)
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return Outcome{}, nil, err
	}
	f, err := New(opts)
	if err != nil {
		return Outcome{}, nil, err
	}
	defer f.Close()
	label := adapterLabel(f.Initial().Config)
	testA, testB := evalSplit(sa, e.EvalItems), evalSplit(sb, e.EvalItems)
	roundsA, roundsB := e.Schedule(pair)
	o := Outcome{Adapter: label, Mitigation: mit.String(), Seed: seed, LR: opts.Train.GetLearningRate(), TrainableParams: f.Initial().NumParams(),
		Pair: pair.label(), TaskA: pair.A, TaskB: pair.B, RoundsA: roundsA, RoundsB: roundsB}
	var records []RoundRecord
	round := 0
	var lastA, lastB float64
	var lastGlobal *adapter.Set
	// phase runs rounds of sp on fed; every published global goes through
	// model (the model after the round: the merge of the tasks' adapters
	// for merge and ties) before it is scored.
	phase := func(fed *Federation, name string, sp *task.Splits, rounds int, model func(*adapter.Set) (*adapter.Set, error)) error {
		return fed.Phase(ctx, sp.Train.Items, sp.Validation.Items, rounds, func(ri RoundInfo) error {
			round++
			lastGlobal = ri.Global
			scored, err := model(ri.Global)
			if err != nil {
				return err
			}
			accA, err := fed.Evaluate(ctx, scored, testA)
			if err != nil {
				return err
			}
			accB, err := fed.Evaluate(ctx, scored, testB)
			if err != nil {
				return err
			}
			lastA, lastB = accA.Acc, accB.Acc
			r := ri.Result
			o.UploadedBytes += r.WireBytes
			o.RawBytes += r.RawBytes
			records = append(records, RoundRecord{Adapter: label, Mitigation: o.Mitigation, Seed: seed, Pair: pair.label(), TaskA: pair.A, TaskB: pair.B, Phase: name,
				ChanceA: chance(testA), ChanceB: chance(testB),
				Round: round, Clients: len(r.Clients), TrainLoss: r.TrainLoss, AccA: accA.Acc, AccB: accB.Acc,
				WireBytes: r.WireBytes, RawBytes: r.RawBytes, AggError: r.AggregationError, Epsilon: r.Epsilon, Accountant: e.Base.accountant()})
			o.Epsilon, o.Accountant = r.Epsilon, e.Base.accountant()
			if e.Progress != nil {
				e.Progress(Progress{Run: run, Runs: runs, Seed: seed, Adapter: label, Mitigation: o.Mitigation, Pair: pair, Phase: name, Round: round,
					Rounds: roundsA + roundsB, Loss: r.TrainLoss, Epsilon: r.Epsilon, Accountant: e.Base.accountant(), AccA: accA.Acc, AccB: accB.Acc,
					Elapsed: time.Since(start)})
			}
			return nil
		})
	}
	asIs := func(s *adapter.Set) (*adapter.Set, error) { return s, nil }
	// Each phase's result is kept as a PEFT-exportable adapter file in the
	// experiment's folder: global-after-A.safetensors, global-after-B (with
	// merge and ties, the merged adapter; with reinit and ortho, task B's
	// adapter, which acts on the base with task A's folded in), and with a
	// second federation its own published adapter, global-task-B.
	if err := phase(f, "A", sa, roundsA, asIs); err != nil {
		o.NotRun = "A and B"
		return o, records, err
	}
	o.AccAAfterA, o.AccBAfterA = lastA, lastB
	if _, err := f.WriteGlobal(filepath.Join(opts.Dir, "global-after-A.safetensors")); err != nil {
		return o, records, err
	}
	taskA := lastGlobal
	fb, model, err := e.phaseB(f, opts, taskA, mit)
	if err != nil {
		return o, records, err
	}
	if fb != f {
		defer fb.Close()
		if fb.opts.Model != opts.Model {
			defer fb.opts.Engine.Release(fb.opts.Model) // the base with task A folded in
		}
	}
	if err := phase(fb, "B", sb, roundsB, model); err != nil {
		o.NotRun = "B"
		return o, records, err
	}
	o.AccAAfterB, o.AccBAfterB = lastA, lastB
	final, err := model(lastGlobal)
	if err != nil {
		return o, records, err
	}
	afterB := filepath.Join(opts.Dir, "global-after-B.safetensors")
	if final == lastGlobal { // the file exactly as the coordinator published it
		_, err = fb.WriteGlobal(afterB)
	} else { // a merge made here, in float32
		err = final.WriteFile(afterB, adapter.SaveOptions{Bits: 32})
	}
	if err != nil {
		return o, records, err
	}
	if fb != f { // task B's own adapter, as its federation published it
		if _, err := fb.WriteGlobal(filepath.Join(opts.Dir, "global-task-B.safetensors")); err != nil {
			return o, records, err
		}
	}
	o.Forgetting = o.AccAAfterA - o.AccAAfterB
	o.Seconds = time.Since(start).Seconds()
	return o, records, nil
}

// phaseB sets up task B's training for a mitigation: the federation that
// trains it (f itself, or a second federation of the same clients with a
// fresh adapter, on a base with task A's adapter folded in for reinit and
// ortho) and how a published global becomes the model scored after a
// round.
func (e *Experiment) phaseB(f *Federation, opts Options, taskA *adapter.Set, mit Mitigation) (*Federation, func(*adapter.Set) (*adapter.Set, error), error) {
	asIs := func(s *adapter.Set) (*adapter.Set, error) { return s, nil }
	pen, err := mit.penalty(taskA)
	if err != nil {
		return nil, nil, err
	}
	if !mit.freshAdapter() {
		f.SetPenalty(pen)
		return f, asIs, nil
	}
	ob := opts
	ob.Dir = filepath.Join(opts.Dir, "phase-b")
	ob.Seed = opts.Seed ^ 0x7461736b42 // a fresh initialization, not task A's
	if err := os.MkdirAll(ob.Dir, 0o755); err != nil {
		return nil, nil, err
	}
	if mit.foldsBase() {
		if ob.Model, err = opts.Model.WithMerged(taskA); err != nil {
			return nil, nil, err
		}
	}
	fb, err := New(ob)
	if err != nil {
		return nil, nil, err
	}
	fb.SetPenalty(pen)
	if mit.foldsBase() {
		return fb, asIs, nil
	}
	return fb, func(b *adapter.Set) (*adapter.Set, error) { return mit.combine(taskA, b) }, nil
}

func (p Pair) label() string {
	if p.Label != "" {
		return p.Label
	}
	return p.A + "→" + p.B
}

// adapterLabel is "kron-r8" or "lora-r8".
func adapterLabel(c adapter.Config) string {
	if c.Kind == adapter.KindKron {
		return fmt.Sprintf("kron-r%d", c.Rank)
	}
	return fmt.Sprintf("lora-r%d", c.Rank)
}

// chance is the accuracy of guessing on items: the mean of 1/choices over
// the multiple-choice ones (0 when there are none).
func chance(items []task.Item) float64 {
	var sum float64
	n := 0
	for _, it := range items {
		if len(it.Choices) > 1 {
			sum += 1 / float64(len(it.Choices))
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// evalSplit is the test split (validation where there is none), capped.
func evalSplit(s *task.Splits, n int) []task.Item {
	t := s.Test
	if t == nil || len(t.Items) == 0 {
		t = s.Validation
	}
	items := t.Items
	if n > 0 && n < len(items) {
		items = items[:n]
	}
	return items
}
