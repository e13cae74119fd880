package simulate

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"

	"github.com/kronfed/kronfed/task"
)

// Single is one federated training run on one task, evaluated on its test
// split after every round.
type Single struct {
	Base   Options
	Splits *task.Splits
	// Shards, when set, are the clients' own training data (one per client,
	// Base.Clients of them), used as they are instead of partitioning
	// Splits.Train; Splits still gives the validation and test items.
	Shards    [][]task.Item
	Rounds    int
	EvalItems int
	Out       string
	Progress  func(Progress)
}

// Run trains and returns one record per published round.
func (s *Single) Run(ctx context.Context) ([]RoundRecord, error) {
	start := time.Now()
	opts := s.Base
	opts.Dir = filepath.Join(s.Out, "federation")
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	f, err := New(opts)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	label := adapterLabel(f.Initial().Config)
	test := evalSplit(s.Splits, s.EvalItems)
	var records []RoundRecord
	phase := func(onRound func(RoundInfo) error) error {
		if s.Shards != nil {
			return f.PhaseOwnData(ctx, s.Shards, s.Splits.Validation.Items, s.Rounds, onRound)
		}
		return f.Phase(ctx, s.Splits.Train.Items, s.Splits.Validation.Items, s.Rounds, onRound)
	}
	err = phase(func(ri RoundInfo) error {
		acc, err := f.Evaluate(ctx, ri.Global, test)
		if err != nil {
			return err
		}
		r := ri.Result
		rec := RoundRecord{Adapter: label, TaskA: s.Splits.Name, Phase: "run", Round: len(records) + 1, Clients: len(r.Clients),
			TrainLoss: r.TrainLoss, AccA: acc.Acc, WireBytes: r.WireBytes, RawBytes: r.RawBytes, AggError: r.AggregationError, Epsilon: r.Epsilon,
			PerplexityA: acc.Perplexity, Accountant: opts.accountant(), RefitError: ri.RefitError, RefitErrorMax: ri.RefitErrorMax,
			ChanceA: chance(test)}
		if a := ri.Audit; a != nil {
			rec.Audit, rec.AuditLow, rec.AuditHigh = a.Epsilon, a.Low, a.High
		}
		records = append(records, rec)
		if s.Progress != nil {
			s.Progress(Progress{Run: 1, Runs: 1, Adapter: label, Pair: Pair{A: s.Splits.Name}, Phase: "run", Round: rec.Round,
				Rounds: s.Rounds, Loss: r.TrainLoss, Epsilon: r.Epsilon, Accountant: opts.accountant(), AccA: acc.Acc, Elapsed: time.Since(start),
				Audit: ri.Audit, RefitError: ri.RefitError, RefitErrorMax: ri.RefitErrorMax})
		}
		return nil
	})
	if len(records) > 0 { // the result so far, as a PEFT-exportable adapter file
		if _, werr := f.WriteGlobal(filepath.Join(s.Out, "global-final.safetensors")); werr != nil && err == nil {
			err = werr
		}
	}
	return records, err
}

// WriteRunResults writes rounds.jsonl, summary.csv (one row per round),
// accuracy.svg/.png and, with DP on, epsilon.svg/.png for a single run, and
// returns a Markdown table.
func WriteRunResults(dir string, records []RoundRecord) (string, error) {
	jl, err := jsonLines(records)
	if err != nil {
		return "", err
	}
	var cs strings.Builder
	w := csv.NewWriter(&cs)
	w.Write([]string{"round", "clients", "train_loss", "test_accuracy", "epsilon", "wire_bytes", "raw_bytes", "aggregation_error", "test_perplexity",
		"audit_epsilon", "audit_low", "audit_high", "refit_error", "refit_error_max"})
	// The ε column only with DP on, as in the forgetting table; completion
	// tasks report perplexity, and their accuracy is exact match.
	dp := hasEpsilon(records)
	completions := len(records) > 0 && records[0].PerplexityA > 0
	var md strings.Builder
	cols := []string{"round:", "clients:", "train loss:", "test accuracy:"}
	if completions {
		cols = []string{"round:", "clients:", "train loss:", "test perplexity:", "exact match:"}
	}
	if dp {
		cols = append(cols, epsilonColumn(records))
	}
	audited := len(records) > 0 && records[0].AuditHigh > 0
	if audited {
		cols = append(cols, "audit ε̂ [95%]:")
	}
	hetero := false
	for _, r := range records {
		hetero = hetero || r.RefitErrorMax > 0
	}
	if hetero {
		cols = append(cols, "rank re-fit error (mean, max):")
	}
	writeHeader(&md, append(cols, "uploaded:")...)
	for _, r := range records {
		f := func(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }
		w.Write([]string{strconv.Itoa(r.Round), strconv.Itoa(r.Clients), f(r.TrainLoss), f(r.AccA), f(r.Epsilon),
			strconv.FormatUint(r.WireBytes, 10), strconv.FormatUint(r.RawBytes, 10), f(r.AggError), f(r.PerplexityA),
			f(r.Audit), f(r.AuditLow), f(r.AuditHigh), f(r.RefitError), f(r.RefitErrorMax)})
		if completions {
			fmt.Fprintf(&md, "| %d | %d | %.4f | %.4g | %.3f |", r.Round, r.Clients, r.TrainLoss, r.PerplexityA, r.AccA)
		} else {
			fmt.Fprintf(&md, "| %d | %d | %.4f | %.3f |", r.Round, r.Clients, r.TrainLoss, r.AccA)
		}
		if dp {
			fmt.Fprintf(&md, " %.3g |", r.Epsilon)
		}
		if audited {
			fmt.Fprintf(&md, " %.3g [%.3g, %.3g] |", r.Audit, r.AuditLow, r.AuditHigh)
		}
		if hetero {
			fmt.Fprintf(&md, " %.3f, %.3f |", r.RefitError, r.RefitErrorMax)
		}
		fmt.Fprintf(&md, " %s |\n", humanBytes(r.WireBytes))
	}
	w.Flush()
	for name, data := range map[string]string{"rounds.jsonl": jl, "summary.csv": cs.String(), "table.md": md.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return "", err
		}
	}
	figs := []figureMaker{{"accuracy", func() (*plot.Plot, error) { return runPlot(records) }}}
	if hasEpsilon(records) {
		figs = append(figs, figureMaker{"epsilon", func() (*plot.Plot, error) { return epsilonPlot(records) }})
	}
	if err := writeFigures(dir, figs); err != nil {
		return "", err
	}
	return md.String(), nil
}

// runPlot: test accuracy per round of a single-task run.
func runPlot(records []RoundRecord) (*plot.Plot, error) {
	p := newFigure("Test accuracy per round", "round", "test accuracy")
	roundAxis(p, len(records))
	p.Y.Min, p.Y.Max = 0, 1
	if len(records) == 0 {
		return p, nil
	}
	if c := records[0].ChanceA; c > 0 {
		if err := addHLine(p, c, 0.6, float64(len(records))+0.4, "chance"); err != nil {
			return nil, err
		}
	}
	var xs, ys []float64
	for _, r := range records {
		xs = append(xs, float64(r.Round))
		ys = append(ys, r.AccA)
	}
	return p, addMarkedLine(p, seriesKey(records[0]), 0, xs, ys)
}

// OwnData reads a folder of clients' own data: every *.jsonl file in dir
// (task.LoadJSONL), one client each in file-name order. It returns each
// client's training items and, as Splits, the clients' validation and test
// items pooled (Train holds every client's training items, for reports).
func OwnData(dir string, seed uint64) (shards [][]task.Item, splits *task.Splits, names []string, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"+task.JSONLExt))
	if err != nil {
		return nil, nil, nil, err
	}
	if len(files) == 0 {
		return nil, nil, nil, fmt.Errorf("%s holds no %s files (one per client)", dir, task.JSONLExt)
	}
	slices.Sort(files)
	splits = &task.Splits{Name: filepath.Base(dir), Train: &task.Task{Name: filepath.Base(dir), Source: dir},
		Validation: &task.Task{Name: filepath.Base(dir), Source: dir}, Test: &task.Task{Name: filepath.Base(dir), Source: dir},
		Note: fmt.Sprintf("%d clients' own files in %s; validation and test pooled", len(files), dir)}
	for _, file := range files {
		s, err := task.LoadJSONL(file, seed)
		if err != nil {
			return nil, nil, nil, err
		}
		shards = append(shards, s.Train.Items)
		names = append(names, strings.TrimSuffix(filepath.Base(file), task.JSONLExt))
		splits.Train.Items = append(splits.Train.Items, s.Train.Items...)
		if s.Validation != nil {
			splits.Validation.Items = append(splits.Validation.Items, s.Validation.Items...)
		}
		if s.Test != nil {
			splits.Test.Items = append(splits.Test.Items, s.Test.Items...)
		}
	}
	return shards, splits, names, nil
}
