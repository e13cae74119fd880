package aggregate

import (
	"slices"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/internal/adaptertest"
)

// TestTIESSteps follows the paper's three steps on a hand-worked example.
func TestTIESSteps(t *testing.T) {
	a := []float32{1, -2, 0.5, 0}
	b := []float32{3, 1, -0.1, 0}
	if got := electAndMean([][]float64{trim(a, 1), trim(b, 1)}); !slices.Equal(got, []float64{2, -2, float64(float32(0.5)), 0}) {
		t.Errorf("density 1: %v", got) // signs +, −, + (0.5 − 0.1), none
	}
	// Density ½ keeps two entries each: a → (1, −2, 0, 0), b → (3, 1, 0, 0);
	// elected signs +, − (−2 + 1); the disjoint means 2 and −2.
	if got := trim(a, 0.5); !slices.Equal(got, []float64{1, -2, 0, 0}) {
		t.Errorf("trim %v", got)
	}
	if got := electAndMean([][]float64{trim(a, 0.5), trim(b, 0.5)}); !slices.Equal(got, []float64{2, -2, 0, 0}) {
		t.Errorf("density ½: %v", got)
	}
}

// TestTIESMergeRefit: merging an adapter with itself at density 1 is its
// own ΔW, which the dense re-fit must reproduce (float64 dense check), for
// both kinds; at density 0.3 the merged ΔW keeps 30% of the entries and the
// reported error is the dense one.
func TestTIESMergeRefit(t *testing.T) {
	targets := []adapter.Target{{Name: "q", DOut: 8, DIn: 12}, {Name: "up", DOut: 12, DIn: 8}}
	for _, kind := range []adapter.Kind{adapter.KindKron, adapter.KindLoRA} {
		ac := adapter.DefaultConfig(kind)
		ac.Rank = 3
		if kind == adapter.KindKron {
			ac.DA2 = 2
		}
		a := adaptertest.Random(t, ac, "m", targets, 1)
		same, errs, err := TIESMerge([]*adapter.Set{a, a}, 1)
		if err != nil {
			t.Fatal(err)
		}
		for mi, m := range same.Modules {
			if rel := relDiff(denseDelta(a.Modules[mi].Layer), denseDelta(m.Layer)); rel > 1e-5 || errs[mi].Rel > 1e-5 {
				t.Errorf("%s %s: self-merge re-fit error %g (reported %g)", kind, m.Name, rel, errs[mi].Rel)
			}
		}
		b := adaptertest.Random(t, ac, "m", targets, 2)
		merged, errs, err := TIESMerge([]*adapter.Set{a, b}, 0.3)
		if err != nil {
			t.Fatal(err)
		}
		for mi, m := range merged.Modules {
			if !(errs[mi].Rel > 0 && errs[mi].Rel < 1) {
				t.Errorf("%s %s: re-fit error %v", kind, m.Name, errs[mi].Rel)
			}
		}
	}
	if _, _, err := TIESMerge(nil, 0.2); err == nil {
		t.Error("empty merge accepted")
	}
	k := kronSet(t, 1, []adapter.Target{{Name: "q", DOut: 8, DIn: 8}})
	if _, _, err := TIESMerge([]*adapter.Set{k}, 0); err == nil {
		t.Error("density 0 accepted")
	}
}
