package simulate

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate"
	"github.com/kronfed/kronfed/fed"
)

func TestParseMitigation(t *testing.T) {
	for s, want := range map[string]Mitigation{
		"none": {"none", 0}, "merge": {"merge", 0}, "ties": {"ties", 0.2}, "ties:0.5": {"ties", 0.5},
		"reinit": {"reinit", 0}, "l2sp": {"l2sp", 0.1}, "l2sp:3": {"l2sp", 3}, "ortho": {"ortho", 0.5},
	} {
		m, err := ParseMitigation(s)
		if err != nil || m != want {
			t.Errorf("%q: %+v, %v", s, m, err)
		}
		if back, _ := ParseMitigation(m.String()); back != m {
			t.Errorf("%q: String %q does not read back", s, m.String())
		}
	}
	for s, want := range map[string]string{
		"dropout": "want one of none, merge", "merge:0.5": "merge takes no parameter", "ties:0": "0 < density ≤ 1",
		"ties:1.5": "0 < density ≤ 1", "l2sp:-1": "λ must be > 0", "ortho:x": `"x" is not a number`,
	} {
		if _, err := ParseMitigation(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", s, err, want)
		}
	}
	// Settings a mitigation does not apply to are refused before any work.
	e := tinyExperiment(t, t.TempDir())
	e.Base.DP = &fed.DPPolicy{Noise: 1, Clip: 1, Delta: 1e-5}
	e.Mitigations = []Mitigation{{Kind: "merge"}}
	if _, _, err := e.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "not with DP") {
		t.Errorf("merge with DP: %v", err)
	}
	e.Base.DP, e.Base.Canaries = nil, 4
	e.Mitigations = []Mitigation{{Kind: "ortho", Param: 1}}
	if _, _, err := e.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "canaries") {
		t.Errorf("ortho with canaries: %v", err)
	}
}

// TestMitigations runs the protocol under every mitigation and checks what
// each must do to the adapters, not only that it runs:
//   - l2sp with a huge λ keeps phase B's adapter at task A's (within a few
//     learning-rate steps of Adam), and task A's accuracy with it;
//   - merge scores and keeps the exact average of the two tasks' adapters;
//   - ortho with a large λ leaves the tasks' input-side factors far more
//     orthogonal than reinit (λ = 0) does.
func TestMitigations(t *testing.T) {
	dir := t.TempDir()
	e := tinyExperiment(t, dir)
	// Enough local work for word-category to be learned in phase A.
	e.RoundsA, e.RoundsB = 2, 2
	e.Base.Train.LearningRate, e.Base.Train.MaxItems, e.Base.Train.LocalEpochs = 1e-2, 64, 2
	for _, s := range []string{"none", "l2sp:10000", "merge", "ties:0.3", "reinit", "ortho:100000"} {
		m, err := ParseMitigation(s)
		if err != nil {
			t.Fatal(err)
		}
		e.Mitigations = append(e.Mitigations, m)
	}
	outcomes, records, err := e.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(outcomes) != 6 || len(records) != 24 {
		t.Fatalf("%d outcomes, %d records", len(outcomes), len(records))
	}
	by := map[string]Outcome{}
	for _, o := range outcomes {
		by[o.Mitigation] = o
		t.Logf("%-11s A after A %.3f, A after B %.3f, B after B %.3f", o.Mitigation, o.AccAAfterA, o.AccAAfterB, o.AccBAfterB)
	}
	read := func(run, file string) *adapter.Set {
		t.Helper()
		s, err := adapter.ReadFile(filepath.Join(dir, "federations", run, file))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// l2sp: θ after B stays within a few Adam steps (lr each) of θ_A.
	a, b := read("02-kron-r8-shifted-l2sp10000", "global-after-A.safetensors"), read("02-kron-r8-shifted-l2sp10000", "global-after-B.safetensors")
	if d := adapter.MaxAbsDiff(a, b); d > 10*e.Base.Train.LearningRate {
		t.Errorf("l2sp λ=1e4 moved a factor by %g", d)
	}
	if o := by["l2sp:10000"]; math.Abs(o.AccAAfterB-o.AccAAfterA) > 0.1 {
		t.Errorf("l2sp λ=1e4: task A accuracy %.3f → %.3f", o.AccAAfterA, o.AccAAfterB)
	}
	// merge: the kept adapter is the exact merge of task A's and phase B's
	// own global (the second federation's).
	taskA := read("03-kron-r8-shifted-merge", "global-after-A.safetensors")
	merged := read("03-kron-r8-shifted-merge", "global-after-B.safetensors")
	ownB := read("03-kron-r8-shifted-merge", "global-task-B.safetensors")
	want, _, err := aggregate.ExactMerge([]aggregate.Weighted{{Set: taskA, Weight: 1}, {Set: ownB, Weight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if d := adapter.MaxAbsDiff(want, merged); d > 1e-6 || d != d {
		t.Errorf("merge kept an adapter %g away from the exact merge", d)
	}
	// ortho vs reinit: overlap ‖P_A·P_Bᵀ‖ / (‖P_A‖·‖P_B‖) of B2.
	overlap := func(run string) float64 {
		pa, pb := read(run, "global-after-A.safetensors"), read(run, "global-after-B.safetensors")
		var num, na, nb float64
		for mi, m := range pa.Modules {
			fa, fb := m.Layer.Factors()[2], pb.Modules[mi].Layer.Factors()[2]
			for x := 0; x < fa.Rows; x++ {
				for y := 0; y < fb.Rows; y++ {
					var s float64
					for c := 0; c < fa.Cols; c++ {
						s += float64(fa.Data[x*fa.Cols+c]) * float64(fb.Data[y*fb.Cols+c])
					}
					num += s * s
				}
			}
			for _, v := range fa.Data {
				na += float64(v) * float64(v)
			}
			for _, v := range fb.Data {
				nb += float64(v) * float64(v)
			}
		}
		return math.Sqrt(num / (na * nb))
	}
	re, or := overlap("05-kron-r8-shifted-reinit"), overlap("06-kron-r8-shifted-ortho100000")
	t.Logf("B2 overlap: reinit %.4f, ortho %.4f", re, or)
	if !(or < re/3) {
		t.Errorf("ortho left an overlap of %.4f, reinit %.4f", or, re)
	}
	table := MarkdownTable(outcomes)
	for _, want := range []string{"| mitigation |", "| l2sp:10000 |", "| ties:0.3 |", "merge of the two tasks' adapters"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
