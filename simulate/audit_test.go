package simulate

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/aggregate/accountant"
	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/task"
)

// TestAuditedRun: a federated run with canary clients. Without noise the
// canaries stand out in the published adapter (ε̂ large); with strong
// central DP noise ε̂ falls under the accountant's ε, and a canary's every
// round is in the cohort (population = clients + canaries). Settings the
// method does not cover are refused before any work.
func TestAuditedRun(t *testing.T) {
	run := func(dp *fed.DPPolicy) []RoundRecord {
		t.Helper()
		e := tinyExperiment(t, t.TempDir())
		e.Base.Canaries, e.Base.DP, e.Base.Clients, e.Base.Adapter = 16, dp, 4, e.Adapters[0].Adapter
		s := &Single{Base: e.Base, Splits: mustSplits(t, e, "word-category"), Rounds: 2, EvalItems: 8, Out: t.TempDir()}
		recs, err := s.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || recs[0].Clients != 20 {
			t.Fatalf("records %+v", recs)
		}
		return recs
	}
	open := run(nil)
	if a := open[1]; !(a.Audit > 20) || !(a.AuditLow <= a.Audit && a.Audit <= a.AuditHigh) {
		t.Errorf("no noise: audit ε̂ %v [%v, %v]; the canaries should stand out", a.Audit, a.AuditLow, a.AuditHigh)
	}
	noisy := run(&fed.DPPolicy{Clip: 1, Noise: 8, Delta: 1e-5, SeededNoise: true, Seed: 3})
	a := noisy[1]
	// Every client is in every round (fraction 1): q = 1, replace-one.
	eps, _, err := accountant.OptimalEpsilon(accountant.WithoutReplacement{}, []accountant.Composition{{Z: 8, Q: 1, Steps: 2}}, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(a.Epsilon-eps) > 1e-9*eps || !(a.AuditLow <= eps) || !(a.Audit < open[1].Audit) {
		t.Errorf("z = 8: accountant ε %v (want %v), audit ε̂ %v [%v, %v]", a.Epsilon, eps, a.Audit, a.AuditLow, a.AuditHigh)
	}
	t.Logf("no noise: ε̂ %.3g [%.3g, %.3g]; z = 8: ε %.3g, ε̂ %.3g [%.3g, %.3g]", open[1].Audit, open[1].AuditLow, open[1].AuditHigh,
		a.Epsilon, a.Audit, a.AuditLow, a.AuditHigh)

	for name, edit := range map[string]func(*Options){
		"secure aggregation": func(o *Options) { o.SecAgg = &fed.SecAggPolicy{} },
		"local DP":           func(o *Options) { o.DP = &fed.DPPolicy{Clip: 1, Noise: 1, Delta: 1e-5, Local: true} },
		"grpc":               func(o *Options) { o.Transport = "grpc" },
		"one canary":         func(o *Options) { o.Canaries = 1 },
	} {
		e := tinyExperiment(t, t.TempDir())
		e.Base.Canaries, e.Base.Dir = 8, t.TempDir()
		edit(&e.Base)
		if _, err := New(e.Base); err == nil || !strings.Contains(err.Error(), "canar") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func mustSplits(t *testing.T, e *Experiment, name string) *task.Splits {
	t.Helper()
	s, err := e.Splits(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
