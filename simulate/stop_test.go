package simulate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/train"
)

// TestBudgetStopsPhase: a DP budget that one round fits but not two ends a
// three-round phase after round 1 with a StoppedError naming the budget —
// promptly, not by hanging — and the next phase on the same federation
// stops at once with the same reason.
func TestBudgetStopsPhase(t *testing.T) {
	m, err := train.LoadModel("builtin")
	if err != nil {
		t.Fatal(err)
	}
	splits, err := train.LoadSplits("word-category", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	dp := &fed.DPPolicy{Noise: 2, Clip: 0.5, Delta: 1e-5, SeededNoise: true, Seed: 3}
	one, _ := dp.SpentAfter(1, 4, 4)
	two, _ := dp.SpentAfter(2, 4, 4)
	dp.Epsilon = (one + two) / 2
	f, err := New(Options{Model: m, Adapter: adapter.DefaultConfig(adapter.KindKron), Clients: 4, Fraction: 1,
		Rule: fed.Rule{Name: "fedavg"}, DP: dp, Partition: "iid", Seed: 5, Dir: t.TempDir(),
		Train: &fedpb.RoundConfig{LocalEpochs: 1, BatchSize: 8, LearningRate: 3e-3, Bits: 8, Seed: 5, MaxItems: 8}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rounds := 0
	err = f.Phase(ctx, splits.Train.Items[:32], splits.Validation.Items[:8], 3, func(RoundInfo) error { rounds++; return nil })
	var stop *StoppedError
	if !errors.As(err, &stop) || stop.Published != 1 || rounds != 1 || !strings.Contains(stop.Reason, "privacy budget") {
		t.Fatalf("phase: %v (rounds reported %d)", err, rounds)
	}
	err = f.Phase(ctx, splits.Train.Items[:32], splits.Validation.Items[:8], 2, nil)
	if !errors.As(err, &stop) || stop.Published != 1 {
		t.Fatalf("next phase: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the phases ran into the test's deadline")
	}
}

// TestBudgetStopMarksNotRun: a budget one round fits stops the forgetting
// protocol after phase A of the first experiment; the table marks that
// experiment's phase B and the whole second experiment as not run — never
// a row of zeros — and the run returns the stop.
func TestBudgetStopMarksNotRun(t *testing.T) {
	dir := t.TempDir()
	e := tinyExperiment(t, dir)
	e.Adapters = append(e.Adapters, Arm{Adapter: adapter.DefaultConfig(adapter.KindLoRA)})
	dp := &fed.DPPolicy{Noise: 2, Clip: 0.5, Delta: 1e-5, SeededNoise: true, Seed: 3}
	one, _ := dp.SpentAfter(1, 3, 3)
	two, _ := dp.SpentAfter(2, 3, 3)
	dp.Epsilon = (one + two) / 2
	e.Base.DP = dp
	outcomes, records, err := e.Run(context.Background())
	var stop *StoppedError
	if !errors.As(err, &stop) || len(outcomes) != 2 || outcomes[0].NotRun != "B" || outcomes[1].NotRun != "A and B" || len(records) != 1 {
		t.Fatalf("run: %v; outcomes %+v; %d records", err, outcomes, len(records))
	}
	table, err := WriteResults(dir, outcomes, records)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(table, "\n")
	if strings.Count(rows[2], "not run") != 3 || strings.Count(rows[3], "not run") != 5 || strings.Contains(rows[3], " 0 B") ||
		strings.Contains(table, "+0.000") || !strings.Contains(table, "privacy budget") {
		t.Fatalf("table:\n%s", table)
	}
}
