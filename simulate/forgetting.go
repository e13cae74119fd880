package simulate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/task"
)

// Pair is a sequential-task pair: train on A, then on B, measure A again.
type Pair struct {
	A, B string
	// Label names the pair in tables ("related", "shifted", ...).
	Label string
}

// Experiment is the federated forgetting protocol over adapters and pairs.
type Experiment struct {
	Base     Options // Adapter is replaced by each of Adapters
	Adapters []adapter.Config
	Pairs    []Pair
	// RoundsA and RoundsB are the federated rounds of each phase.
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
	Run, Runs int
	Adapter   string
	Pair      Pair
	Phase     string // "A" or "B"
	Round     int    // within the run, from 1
	Rounds    int
	Loss      float64
	Epsilon   float64
	AccA      float64
	AccB      float64
	Elapsed   time.Duration
}

// RoundRecord is one line of rounds.jsonl.
type RoundRecord struct {
	Adapter   string  `json:"adapter"`
	Pair      string  `json:"pair"`
	TaskA     string  `json:"task_a"`
	TaskB     string  `json:"task_b"`
	Phase     string  `json:"phase"`
	Round     int     `json:"round"`
	Clients   int     `json:"clients"`
	TrainLoss float64 `json:"train_loss"`
	AccA      float64 `json:"acc_a"`
	AccB      float64 `json:"acc_b"`
	WireBytes uint64  `json:"wire_bytes"`
	RawBytes  uint64  `json:"raw_bytes"`
	AggError  float64 `json:"aggregation_error"`
	Epsilon   float64 `json:"epsilon,omitempty"`
}

// Outcome is one (adapter, pair) run's summary.
type Outcome struct {
	Adapter         string  `json:"adapter"`
	TrainableParams int     `json:"trainable_params"`
	Pair            string  `json:"pair"`
	TaskA           string  `json:"task_a"`
	TaskB           string  `json:"task_b"`
	AccAAfterA      float64 `json:"acc_a_after_a"`
	AccBAfterA      float64 `json:"acc_b_after_a"`
	AccAAfterB      float64 `json:"acc_a_after_b"`
	AccBAfterB      float64 `json:"acc_b_after_b"`
	Forgetting      float64 `json:"forgetting"`
	UploadedBytes   uint64  `json:"uploaded_bytes"`
	RawBytes        uint64  `json:"raw_bytes"`
	Epsilon         float64 `json:"epsilon,omitempty"`
	Seconds         float64 `json:"seconds"`
}

// Run executes every (adapter, pair) combination in order and returns the
// outcomes and the per-round records.
func (e *Experiment) Run(ctx context.Context) ([]Outcome, []RoundRecord, error) {
	var outcomes []Outcome
	var records []RoundRecord
	runs := len(e.Adapters) * len(e.Pairs)
	run := 0
	for _, ac := range e.Adapters {
		for _, pair := range e.Pairs {
			run++
			o, recs, err := e.runOne(ctx, run, runs, ac, pair)
			if err != nil {
				return outcomes, records, fmt.Errorf("%s, %s→%s: %w", ac, pair.A, pair.B, err)
			}
			outcomes = append(outcomes, o)
			records = append(records, recs...)
		}
	}
	return outcomes, records, nil
}

func (e *Experiment) runOne(ctx context.Context, run, runs int, ac adapter.Config, pair Pair) (Outcome, []RoundRecord, error) {
	start := time.Now()
	sa, err := e.Splits(pair.A)
	if err != nil {
		return Outcome{}, nil, err
	}
	sb, err := e.Splits(pair.B)
	if err != nil {
		return Outcome{}, nil, err
	}
	opts := e.Base
	opts.Adapter = ac
	opts.Dir = filepath.Join(e.Out, "federations", fmt.Sprintf("%02d-%s-%s", run, adapterLabel(ac), pair.label()))
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
	o := Outcome{Adapter: label, TrainableParams: f.Initial().NumParams(), Pair: pair.label(), TaskA: pair.A, TaskB: pair.B}
	var records []RoundRecord
	round := 0
	var lastA, lastB float64
	phase := func(name string, sp *task.Splits, rounds int) error {
		return f.Phase(ctx, sp.Train.Items, sp.Validation.Items, rounds, func(ri RoundInfo) error {
			round++
			accA, err := f.Evaluate(ctx, ri.Global, testA)
			if err != nil {
				return err
			}
			accB, err := f.Evaluate(ctx, ri.Global, testB)
			if err != nil {
				return err
			}
			lastA, lastB = accA.Acc, accB.Acc
			r := ri.Result
			o.UploadedBytes += r.WireBytes
			o.RawBytes += r.RawBytes
			records = append(records, RoundRecord{Adapter: label, Pair: pair.label(), TaskA: pair.A, TaskB: pair.B, Phase: name,
				Round: round, Clients: len(r.Clients), TrainLoss: r.TrainLoss, AccA: accA.Acc, AccB: accB.Acc,
				WireBytes: r.WireBytes, RawBytes: r.RawBytes, AggError: r.AggregationError, Epsilon: r.Epsilon})
			o.Epsilon = r.Epsilon
			if e.Progress != nil {
				e.Progress(Progress{Run: run, Runs: runs, Adapter: label, Pair: pair, Phase: name, Round: round,
					Rounds: e.RoundsA + e.RoundsB, Loss: r.TrainLoss, Epsilon: r.Epsilon, AccA: accA.Acc, AccB: accB.Acc, Elapsed: time.Since(start)})
			}
			return nil
		})
	}
	if err := phase("A", sa, e.RoundsA); err != nil {
		return o, records, err
	}
	o.AccAAfterA, o.AccBAfterA = lastA, lastB
	if err := phase("B", sb, e.RoundsB); err != nil {
		return o, records, err
	}
	o.AccAAfterB, o.AccBAfterB = lastA, lastB
	o.Forgetting = o.AccAAfterA - o.AccAAfterB
	o.Seconds = time.Since(start).Seconds()
	return o, records, nil
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
