package aggregate

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/internal/adaptertest"
)

// TestLoRAExactAgainstDense: the merged LoRA's ΔW must be the best rank-q
// approximation of the exact weighted sum (Eckart–Young: its error equals
// the dense SVD's tail), and the reported error must be the dense one — on
// both paths (module q takes the factored one, o the explicit one; with
// preferFactored both take the factored one).
func TestLoRAExactAgainstDense(t *testing.T) {
	for _, factored := range []bool{false, true} {
		t.Run(map[bool]string{false: "by size", true: "factored"}[factored], func(t *testing.T) {
			saved := preferFactored
			preferFactored = factored
			defer func() { preferFactored = saved }()
			loraExactAgainstDense(t)
		})
	}
}

func loraExactAgainstDense(t *testing.T) {
	ac := adapter.DefaultConfig(adapter.KindLoRA)
	ac.Rank = 3
	targets := []adapter.Target{{Name: "q", DOut: 10, DIn: 7}, {Name: "o", DOut: 6, DIn: 9}}
	a := adaptertest.Random(t, ac, "m", targets, 1)
	b := adaptertest.Random(t, ac, "m", targets, 2)
	merged, errs, err := ExactMerge([]Weighted{{a, 3}, {b, 1}})
	if err != nil {
		t.Fatal(err)
	}
	dense := denseDelta
	for mi, m := range merged.Modules {
		var exact mat.Dense
		exact.Scale(0.75, dense(a.Modules[mi].Layer))
		var part mat.Dense
		part.Scale(0.25, dense(b.Modules[mi].Layer))
		exact.Add(&exact, &part)
		var svd mat.SVD
		if !svd.Factorize(&exact, mat.SVDNone) {
			t.Fatal("svd")
		}
		s := svd.Values(nil)
		var tail, all float64
		for i, v := range s {
			all += v * v
			if i >= ac.Rank {
				tail += v * v
			}
		}
		var diff mat.Dense
		diff.Sub(&exact, dense(m.Layer))
		got := mat.Norm(&diff, 2) / math.Sqrt(all) // Frobenius
		want := math.Sqrt(tail / all)
		if math.Abs(got-want) > 1e-5 || math.Abs(errs[mi].Rel-got) > 1e-5 {
			t.Errorf("%s: dense error %.7f, best rank-%d %.7f, reported %.7f", m.Name, got, ac.Rank, want, errs[mi].Rel)
		}
	}
	// Merging an adapter with itself gives it back (error 0).
	self, errs, err := ExactMerge([]Weighted{{a, 1}, {a, 1}})
	if err != nil {
		t.Fatal(err)
	}
	for mi, m := range self.Modules {
		var diff mat.Dense
		diff.Sub(dense(a.Modules[mi].Layer), dense(m.Layer))
		if n := mat.Norm(&diff, 2); n > 1e-5 || errs[mi].Rel > 1e-5 {
			t.Errorf("%s: self-merge moved ΔW by %g (reported %g)", m.Name, n, errs[mi].Rel)
		}
	}
	// Kron-LoRA goes through KronExact; mixed kinds are refused.
	k := kronSet(t, 1, []adapter.Target{{Name: "q", DOut: 8, DIn: 8}})
	if _, _, err := ExactMerge([]Weighted{{k, 1}, {k, 1}}); err != nil {
		t.Fatalf("kron merge: %v", err)
	}
	if _, _, err := LoRAExact([]Weighted{{k, 1}}); err == nil {
		t.Fatal("LoRAExact took kron adapters")
	}
}

// TestLoRAExactStrategy: the lora-exact rule on the clients' changes is
// LoRAExact on their adapters, reports its re-fit error, and is refused
// for Kron-LoRA federations.
func TestLoRAExactStrategy(t *testing.T) {
	ac := adapter.DefaultConfig(adapter.KindLoRA)
	ac.Rank = 2
	targets := []adapter.Target{{Name: "q", DOut: 6, DIn: 5}}
	base := adaptertest.Random(t, ac, "m", targets, 1)
	r := Round{Base: base}
	var ws []Weighted
	for i := range 3 {
		theta := adaptertest.Random(t, ac, "m", targets, uint64(2+i))
		r.Updates = append(r.Updates, Update{Delta: theta.Clone().Sub(base), Weight: float64(1 + i)})
		ws = append(ws, Weighted{Set: base.Clone().Add(theta.Clone().Sub(base)), Weight: float64(1 + i)})
	}
	want, _, err := LoRAExact(ws)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStrategy(StrategyConfig{Rule: "lora-exact", Kind: adapter.KindLoRA})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Aggregate(r)
	if err != nil {
		t.Fatal(err)
	}
	if d := adapter.MaxAbsDiff(res.Next, want); d != 0 || !(res.AggregationError > 0) {
		t.Errorf("lora-exact: %g from LoRAExact, error %v", d, res.AggregationError)
	}
	if _, err := NewStrategy(StrategyConfig{Rule: "lora-exact", Kind: adapter.KindKron}); err == nil {
		t.Error("lora-exact accepted for Kron-LoRA")
	}
}
