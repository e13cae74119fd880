package simulate

import (
	"math"
	"strings"
	"testing"
)

// TestSummarize checks the seeds' means and sample standard deviations
// against hand-computed values, and that phases that did not run are left
// out of the statistics (never counted as zeros).
func TestSummarize(t *testing.T) {
	o := func(adapter, pair string, seed uint64, aa, ab float64, notRun string) Outcome {
		return Outcome{Adapter: adapter, Pair: pair, Seed: seed, TaskA: "a", TaskB: "b", AccAAfterA: aa, AccAAfterB: ab,
			Forgetting: aa - ab, NotRun: notRun, TrainableParams: 10, UploadedBytes: 100, RawBytes: 400, LR: 0.01}
	}
	outcomes := []Outcome{
		o("kron-r8", "p", 1, 0.9, 0.5, ""),
		o("lora-r8", "p", 1, 0.8, 0.8, ""),
		o("kron-r8", "p", 2, 0.7, 0.4, ""),
		o("lora-r8", "p", 2, 0.6, 0, "B"),
		o("kron-r8", "p", 3, 0.8, 0.3, ""),
	}
	sums := Summarize(outcomes)
	if len(sums) != 2 || sums[0].Adapter != "kron-r8" || sums[1].Adapter != "lora-r8" {
		t.Fatalf("summaries %+v", sums)
	}
	k := sums[0]
	// acc A after A: 0.9, 0.7, 0.8 → mean 0.8, sd 0.1; forgetting 0.4, 0.3, 0.5 → 0.4, 0.1.
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-12 }
	if k.Seeds != 3 || k.AccAAfterA.N != 3 || !near(k.AccAAfterA.Mean, 0.8) || !near(k.AccAAfterA.SD, 0.1) ||
		!near(k.Forgetting.Mean, 0.4) || !near(k.Forgetting.SD, 0.1) || k.LR != 0.01 {
		t.Fatalf("kron summary %+v", k)
	}
	l := sums[1]
	if l.AccAAfterA.N != 2 || !near(l.AccAAfterA.Mean, 0.7) || l.AccAAfterB.N != 1 || l.AccAAfterB.Mean != 0.8 || l.AccAAfterB.SD != 0 ||
		len(l.Stops) != 1 || !strings.Contains(l.Stops[0], "seed 2: phase B not run") {
		t.Fatalf("lora summary %+v", l)
	}
	if got := k.Forgetting.Cell(true); got != "+0.400 ± 0.100" {
		t.Errorf("cell %q", got)
	}
	if got := l.AccAAfterB.Cell(false); got != "0.800" {
		t.Errorf("one-seed cell %q", got)
	}
	if got := (Stat{}).Cell(false); got != "not run" {
		t.Errorf("empty cell %q", got)
	}
	table := MarkdownTable(outcomes)
	for _, want := range []string{"| kron-r8 | 10 | 0.01 | p (a→b) | 0.800 ± 0.100 |", "over 3 seeds", "lora-r8 p seed 2: phase B not run"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	// Plots get one curve per run: records of several seeds are averaged.
	recs := meanOverSeeds([]RoundRecord{
		{Adapter: "k", Pair: "p", Phase: "A", Round: 1, Seed: 1, AccA: 0.2},
		{Adapter: "k", Pair: "p", Phase: "A", Round: 1, Seed: 2, AccA: 0.4},
		{Adapter: "k", Pair: "p", Phase: "A", Round: 2, Seed: 1, AccA: 0.5},
	})
	if len(recs) != 2 || !near(recs[0].AccA, 0.3) || recs[1].AccA != 0.5 {
		t.Fatalf("mean over seeds %+v", recs)
	}
}
