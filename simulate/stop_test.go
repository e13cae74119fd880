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
