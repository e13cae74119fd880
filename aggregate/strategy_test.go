package aggregate

import (
	"math"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
)

// strategyRound is a base and three clients' changes with unequal weights.
func strategyRound(t *testing.T) Round {
	t.Helper()
	base := kronSet(t, 100, targets)
	r := Round{Base: base, Cohort: 4, Clip: 0.5}
	for i := 0; i < 3; i++ {
		d := kronSet(t, uint64(101+i), targets).Scale(0.01 * float64(i+1))
		r.Updates = append(r.Updates, Update{Delta: d, Weight: float64(5 + 3*i)})
	}
	return r
}

func maxDiff(a, b *adapter.Set) float64 {
	worst := 0.0
	bp := b.Params()
	for i, p := range a.Params() {
		for j, v := range p.Data {
			worst = max(worst, math.Abs(float64(v)-float64(bp[i].Data[j])))
		}
	}
	return worst
}

// TestStrategiesOnFactors: each factor rule, given the clients' changes,
// equals the same rule on the clients' adapters θ_i = base + Δ_i, and leaves
// the base alone.
func TestStrategiesOnFactors(t *testing.T) {
	r := strategyRound(t)
	baseCopy := r.Base.Clone()
	var ws []Weighted
	for _, u := range r.Updates {
		ws = append(ws, Weighted{Set: r.Base.Clone().Add(u.Delta), Weight: u.Weight})
	}
	wantAvg, _ := FedAvg(ws)
	wantKron, _, _ := KronExact(ws)
	wantMed, _ := Median(ws)
	wantTrim, _ := TrimmedMean(ws, 0.34)
	for _, c := range []struct {
		cfg  StrategyConfig
		want *adapter.Set
	}{
		{StrategyConfig{Rule: "fedavg"}, wantAvg},
		{StrategyConfig{Rule: "kron-exact", Kind: adapter.KindKron}, wantKron},
		{StrategyConfig{Rule: "median"}, wantMed},
		{StrategyConfig{Rule: "trimmed-mean", Beta: 0.34}, wantTrim},
	} {
		s, err := NewStrategy(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Aggregate(r)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(res.Next, c.want); d != 0 {
			t.Errorf("%s: differs from the rule on the clients' adapters by %g", s, d)
		}
		if c.cfg.Rule == "kron-exact" && !(res.AggregationError > 0) {
			t.Errorf("kron-exact reported aggregation error %v", res.AggregationError)
		}
		if maxDiff(r.Base, baseCopy) != 0 {
			t.Fatalf("%s modified the base", s)
		}
	}
}

// TestFedAvgFromSum: FedAvg from the weighted sum (secure aggregation)
// equals FedAvg from the individual changes, to float32 rounding.
func TestFedAvgFromSum(t *testing.T) {
	r := strategyRound(t)
	s, _ := NewStrategy(StrategyConfig{Rule: "fedavg", SecureSum: true})
	direct, err := s.Aggregate(r)
	if err != nil {
		t.Fatal(err)
	}
	total := r.Updates[0].Delta.Clone().Scale(0)
	weight := 0.0
	for _, u := range r.Updates {
		total.AddScaled(u.Weight, u.Delta)
		weight += u.Weight
	}
	fromSum, err := s.(SumStrategy).AggregateSum(Sum{Base: r.Base, Total: total, Weight: weight, Clients: 3})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(direct.Next, fromSum.Next); d > 1e-6 {
		t.Fatalf("FedAvg from the sum differs by %g", d)
	}
}

// TestFedAdamCommits: FedAdam's moments move only on Commit, so a result
// that is never stored leaves the next round where it was; its State
// restores a fresh strategy to the same place.
func TestFedAdamCommits(t *testing.T) {
	r := strategyRound(t)
	s, _ := NewStrategy(StrategyConfig{Rule: "fedadam", LR: 0.01, Tau: 1e-3})
	first, err := s.Aggregate(r)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := s.Aggregate(r) // not committed: the same step again
	if maxDiff(first.Next, again.Next) != 0 || len(first.State) == 0 {
		t.Fatal("an uncommitted FedAdam step changed the strategy")
	}
	first.Commit()
	r2 := r
	r2.Base = first.Next
	second, _ := s.Aggregate(r2)
	restored, _ := NewStrategy(StrategyConfig{Rule: "fedadam", LR: 0.01, Tau: 1e-3})
	if dropped, err := restored.Restore(first.State, first.Next); dropped || err != nil {
		t.Fatalf("restore: %v %v", dropped, err)
	}
	viaRestore, _ := restored.Aggregate(r2)
	if maxDiff(second.Next, viaRestore.Next) != 0 {
		t.Fatal("a restored FedAdam does not continue where the committed one is")
	}
	fresh, _ := NewStrategy(StrategyConfig{Rule: "fedavg"})
	if dropped, _ := fresh.Restore(first.State, first.Next); !dropped {
		t.Fatal("fedavg kept FedAdam's state")
	}
}

// TestCentralDPStrategy: the DP wrapper gives DP.Aggregate's noised mean
// on the changes plus the base; from a sum of the clipped changes
// (DP.NoiseSum) the same seeded noise gives the same global.
func TestCentralDPStrategy(t *testing.T) {
	r := strategyRound(t)
	mk := func() Strategy {
		s, err := NewStrategy(StrategyConfig{Rule: "fedavg", DP: &CentralDPConfig{NoiseMultiplier: 1, Noise: SeededNoise(7)}, SecureSum: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	res, err := mk().Aggregate(r)
	if err != nil {
		t.Fatal(err)
	}
	d := DP{Clip: r.Clip, NoiseMultiplier: 1, ExpectedClients: 4, Noise: SeededNoise(7)}
	var deltas []*adapter.Set
	for _, u := range r.Updates {
		deltas = append(deltas, u.Delta)
	}
	mean, rep, _ := d.Aggregate(deltas, nil)
	if maxDiff(res.Next, r.Base.Clone().Add(mean)) != 0 || res.DP == nil || res.DP.NoiseStd != rep.NoiseStd || res.NextClip != r.Clip {
		t.Fatalf("central DP strategy: report %+v, next clip %v", res.DP, res.NextClip)
	}
	sum := r.Updates[0].Delta.Clone().Scale(0)
	for _, dl := range deltas {
		c := dl.Clone()
		ClipUpdate(c, r.Clip)
		sum.Add(c)
	}
	fromSum, err := mk().(SumStrategy).AggregateSum(Sum{Base: r.Base, Total: sum, Clients: 3, Unclipped: 0, Cohort: 4, Clip: r.Clip})
	if err != nil {
		t.Fatal(err)
	}
	if dd := maxDiff(res.Next, fromSum.Next); dd > 1e-6 {
		t.Fatalf("central DP from the sum differs by %g", dd)
	}
}

// TestNewStrategyRefuses lists the combinations that cannot work.
func TestNewStrategyRefuses(t *testing.T) {
	dp := &CentralDPConfig{NoiseMultiplier: 1}
	for _, c := range []struct {
		cfg  StrategyConfig
		want string
	}{
		{StrategyConfig{Rule: "mean"}, "unknown aggregation rule"},
		{StrategyConfig{Rule: "kron-exact", Kind: adapter.KindLoRA}, "needs Kron-LoRA"},
		{StrategyConfig{Rule: "trimmed-mean", Beta: 0.5}, "[0, 0.5)"},
		{StrategyConfig{Rule: "fedadam"}, "must be positive"},
		{StrategyConfig{Rule: "median", DP: dp}, "cannot be combined"},
		{StrategyConfig{Rule: "fedadam", LR: 1, Tau: 1, DP: dp}, "cannot be combined"},
		{StrategyConfig{Rule: "median", SecureSum: true}, "reveals only the sum"},
		{StrategyConfig{Rule: "kron-exact", Kind: adapter.KindKron, SecureSum: true}, "reveals only the sum"},
	} {
		if _, err := NewStrategy(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}
