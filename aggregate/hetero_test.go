package aggregate

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/internal/adaptertest"
)

// TestHeteroExact: clients of different dA2 and rank aggregated into one
// shape. The reported error is the dense one against the float64 sum; when
// the sum is a Kron-LoRA of the target's shape (clients sharing A, ranks
// adding up to the target's), the re-fit reproduces it.
func TestHeteroExact(t *testing.T) {
	targets := []adapter.Target{{Name: "q", DOut: 16, DIn: 12}, {Name: "up", DOut: 8, DIn: 16}}
	kron := func(dA2, r int, seed uint64) *adapter.Set {
		return adaptertest.Random(t, kronConfig(dA2, r), "m", targets, seed)
	}
	target := kron(2, 8, 9)
	ups := []Weighted{{kron(2, 4, 1), 1}, {kron(4, 8, 2), 2}, {kron(2, 2, 3), 3}}
	got, errs, err := HeteroExact(ups, target)
	if err != nil {
		t.Fatal(err)
	}
	for m, mod := range got.Modules {
		if mod.Layer.(*adapter.Kron).Shape.DA2 != 2 || mod.Layer.Rank() != 8 {
			t.Fatalf("module %s has the wrong shape", mod.Name)
		}
		var sum mat.Dense
		for i, u := range ups {
			var part mat.Dense
			part.Scale(u.Weight/6, denseDelta(u.Set.Modules[m].Layer))
			if i == 0 {
				sum.CloneFrom(&part)
			} else {
				sum.Add(&sum, &part)
			}
		}
		if d := relDiff(&sum, denseDelta(mod.Layer)); math.Abs(d-errs[m].Rel) > 1e-5 || !(d > 0 && d < 1) {
			t.Errorf("%s: dense error %.6f, reported %.6f", mod.Name, d, errs[m].Rel)
		}
	}
	// Representable: two clients with the same A, ranks 3 and 5, into rank 8.
	a, b := kron(2, 3, 4), kron(2, 5, 5)
	for m := range a.Modules {
		copy(b.Modules[m].Layer.(*adapter.Kron).A, a.Modules[m].Layer.(*adapter.Kron).A)
	}
	sumSet, errs, err := HeteroExact([]Weighted{{a, 1}, {b, 1}}, target)
	if err != nil {
		t.Fatal(err)
	}
	for m, mod := range sumSet.Modules {
		var want, half mat.Dense
		want.Scale(0.5, denseDelta(a.Modules[m].Layer))
		half.Scale(0.5, denseDelta(b.Modules[m].Layer))
		want.Add(&want, &half)
		if d := relDiff(&want, denseDelta(mod.Layer)); d > 1e-5 || errs[m].Rel > 1e-5 {
			t.Errorf("%s: representable sum re-fitted with error %g (reported %g)", mod.Name, d, errs[m].Rel)
		}
	}
	// Mismatched kinds or layer sizes are refused.
	lora := adaptertest.Random(t, adapter.DefaultConfig(adapter.KindLoRA), "m", targets, 1)
	if _, _, err := HeteroExact([]Weighted{{lora, 1}}, target); err == nil || !strings.Contains(err.Error(), "the target kron") {
		t.Errorf("lora into kron: %v", err)
	}
	other := adaptertest.Random(t, kronConfig(2, 8), "m", []adapter.Target{{Name: "q", DOut: 8, DIn: 12}, {Name: "up", DOut: 8, DIn: 16}}, 1)
	if _, _, err := HeteroExact([]Weighted{{other, 1}}, target); err == nil || !strings.Contains(err.Error(), "8×12") {
		t.Errorf("other layer sizes: %v", err)
	}
}

func kronConfig(dA2, r int) adapter.Config {
	ac := adapter.DefaultConfig(adapter.KindKron)
	ac.DA2, ac.Rank = dA2, r
	return ac
}
