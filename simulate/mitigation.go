package simulate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate"
	"github.com/kronfed/kronfed/train"
)

// Mitigation is a strategy against forgetting, applied where the protocol
// switches from task A to task B. The paper (§6) names adapter merging,
// task-specific reinitialization and structured regularization as the
// candidates; each is here, federated, for Kron-LoRA and LoRA alike:
//
//   - none: phase B continues training task A's adapter (the protocol as
//     published).
//   - merge: phase B trains a fresh adapter on the base; the model after B
//     is the average of the two tasks' ΔW, ½·ΔW_A + ½·ΔW_B, re-fitted
//     exactly to one adapter (aggregate.ExactMerge).
//   - ties: as merge, combined by TIES-merging (Yadav et al. 2023): each
//     task's ΔW trimmed to its largest Param fraction of entries, signs
//     elected by the summed mass, agreeing entries averaged, re-fitted.
//   - reinit: task A's adapter is folded into the base weights and phase B
//     trains a freshly initialized adapter on top.
//   - l2sp: phase B continues task A's adapter with L2-SP, Param/2·‖θ − θ_A‖².
//   - ortho: as reinit, plus O-LoRA's orthogonality penalty
//     Param·Σ‖P_A·P_Bᵀ‖² between the two adapters' input-side factors
//     (train.Orthogonal).
type Mitigation struct {
	Kind  string
	Param float64 // l2sp, ortho: λ; ties: density; else 0
}

// MitigationNames lists the kinds, in the order of the doc comment.
var MitigationNames = []string{"none", "merge", "ties", "reinit", "l2sp", "ortho"}

// defaultParam is each kind's parameter when the spec gives none.
var defaultParam = map[string]float64{"ties": 0.2, "l2sp": 0.1, "ortho": 0.5}

// ParseMitigation reads "none", "merge", "ties[:DENSITY]", "reinit",
// "l2sp[:λ]" or "ortho[:λ]".
func ParseMitigation(s string) (Mitigation, error) {
	name, arg, hasArg := strings.Cut(s, ":")
	m := Mitigation{Kind: name, Param: defaultParam[name]}
	known := false
	for _, n := range MitigationNames {
		known = known || n == name
	}
	if !known {
		return m, fmt.Errorf("mitigation %q: want one of %s", s, strings.Join(MitigationNames, ", "))
	}
	if hasArg {
		if _, takes := defaultParam[name]; !takes {
			return m, fmt.Errorf("mitigation %q: %s takes no parameter", s, name)
		}
		v, err := strconv.ParseFloat(arg, 64)
		if err != nil {
			return m, fmt.Errorf("mitigation %q: %q is not a number", s, arg)
		}
		m.Param = v
	}
	switch {
	case name == "ties" && !(m.Param > 0 && m.Param <= 1):
		return m, fmt.Errorf("mitigation %q: the density is the fraction of entries kept, want 0 < density ≤ 1", s)
	case (name == "l2sp" || name == "ortho") && !(m.Param > 0 && m.Param < 1e6):
		return m, fmt.Errorf("mitigation %q: λ must be > 0", s)
	}
	return m, nil
}

// String is the spec ParseMitigation reads back.
func (m Mitigation) String() string {
	if _, takes := defaultParam[m.Kind]; takes {
		return m.Kind + ":" + strconv.FormatFloat(m.Param, 'g', -1, 64)
	}
	if m.Kind == "" {
		return "none"
	}
	return m.Kind
}

// freshAdapter says whether phase B trains a new adapter (in a second
// federation of the same clients) rather than continuing task A's.
func (m Mitigation) freshAdapter() bool {
	switch m.Kind {
	case "merge", "ties", "reinit", "ortho":
		return true
	}
	return false
}

// foldsBase says whether phase B's base carries task A's ΔW.
func (m Mitigation) foldsBase() bool { return m.Kind == "reinit" || m.Kind == "ortho" }

// Check refuses a mitigation the run's options do not allow: those that
// start a second federation for phase B would not compose its privacy loss
// with phase A's, and canaries would audit only one of them; folding needs
// a decoder.
func (m Mitigation) Check(o Options) error {
	if !m.freshAdapter() {
		return nil
	}
	switch {
	case o.DP != nil:
		return fmt.Errorf("mitigation %s trains phase B in a second federation, whose ε would not be composed with phase A's: not with DP (l2sp and none keep one federation)", m)
	case o.Canaries > 0:
		return fmt.Errorf("mitigation %s trains phase B in a second federation: the audit's canaries cover one federation", m)
	case m.foldsBase() && o.Model != nil && o.Model.Llama == nil:
		return fmt.Errorf("mitigation %s folds task A's adapter into the base weights, which only decoders allow (%s is an encoder, whose head belongs to the adapter)", m, o.Model.Name)
	}
	return nil
}

// penalty is phase B's regularizer given task A's adapter (nil: none).
func (m Mitigation) penalty(taskA *adapter.Set) (train.Penalty, error) {
	switch m.Kind {
	case "l2sp":
		return train.NewL2SP(taskA, m.Param)
	case "ortho":
		return train.NewOrthogonal(taskA, m.Param)
	}
	return nil, nil
}

// combine is the model after phase B given both tasks' adapters: the merge
// for merge and ties, task B's adapter otherwise.
func (m Mitigation) combine(taskA, taskB *adapter.Set) (*adapter.Set, error) {
	switch m.Kind {
	case "merge":
		out, _, err := aggregate.ExactMerge([]aggregate.Weighted{{Set: taskA, Weight: 1}, {Set: taskB, Weight: 1}})
		return out, err
	case "ties":
		out, _, err := aggregate.TIESMerge([]*adapter.Set{taskA, taskB}, m.Param)
		return out, err
	}
	return taskB, nil
}
