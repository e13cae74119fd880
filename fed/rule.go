package fed

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate"
)

// Rule is how the coordinator combines a round's client adapters.
type Rule struct {
	// Name is fedavg, kron-exact, median, trimmed-mean or fedadam.
	Name string
	// Beta is the fraction trimmed at each end (trimmed-mean).
	Beta float64
	// LR and Tau are FedAdam's server learning rate and adaptivity.
	LR, Tau float64
}

// RuleNames lists the aggregation rules ParseRule accepts.
var RuleNames = []string{"fedavg", "kron-exact", "median", "trimmed-mean[:beta]", "fedadam[:lr[:tau]]"}

// ParseRule reads "fedavg", "kron-exact", "median", "trimmed-mean:0.1" or
// "fedadam:0.01:0.001".
func ParseRule(s string) (Rule, error) {
	parts := strings.Split(s, ":")
	num := func(i int, def float64) (float64, error) {
		if i >= len(parts) {
			return def, nil
		}
		v, err := strconv.ParseFloat(parts[i], 64)
		if err != nil {
			return 0, fmt.Errorf("aggregation rule %q: parameter %q is not a number", s, parts[i])
		}
		return v, nil
	}
	r := Rule{Name: parts[0]}
	var err error
	switch r.Name {
	case "fedavg", "kron-exact", "median":
		if len(parts) > 1 {
			return Rule{}, fmt.Errorf("aggregation rule %q takes no parameters", r.Name)
		}
	case "trimmed-mean":
		if len(parts) > 2 {
			return Rule{}, fmt.Errorf("aggregation rule %q: want trimmed-mean[:beta]", s)
		}
		if r.Beta, err = num(1, 0.1); err != nil {
			return Rule{}, err
		}
		if !(r.Beta >= 0 && r.Beta < 0.5) {
			return Rule{}, fmt.Errorf("aggregation rule %q: beta must be in [0, 0.5)", s)
		}
	case "fedadam":
		if len(parts) > 3 {
			return Rule{}, fmt.Errorf("aggregation rule %q: want fedadam[:lr[:tau]]", s)
		}
		if r.LR, err = num(1, 0.01); err != nil {
			return Rule{}, err
		}
		if r.Tau, err = num(2, 1e-3); err != nil {
			return Rule{}, err
		}
		if !(r.LR > 0) || !(r.Tau > 0) {
			return Rule{}, fmt.Errorf("aggregation rule %q: lr and tau must be positive", s)
		}
	default:
		return Rule{}, fmt.Errorf("unknown aggregation rule %q (want one of %s)", s, strings.Join(RuleNames, ", "))
	}
	return r, nil
}

func (r Rule) String() string {
	switch r.Name {
	case "trimmed-mean":
		return fmt.Sprintf("trimmed-mean:%g", r.Beta)
	case "fedadam":
		return fmt.Sprintf("fedadam:%g:%g", r.LR, r.Tau)
	}
	return r.Name
}

// Check reports a rule that cannot aggregate adapters of kind.
func (r Rule) Check(kind adapter.Kind) error {
	if r.Name == "kron-exact" && kind != adapter.KindKron {
		return fmt.Errorf("aggregation rule kron-exact needs Kron-LoRA adapters, the federation trains %s", kind)
	}
	return nil
}

// Aggregator applies a Rule round after round, keeping the server
// optimizer's state between rounds.
type Aggregator struct {
	Rule Rule
	adam *aggregate.FedAdam
}

// NewAggregator prepares rule for adapters of kind.
func NewAggregator(rule Rule, kind adapter.Kind) (*Aggregator, error) {
	if err := rule.Check(kind); err != nil {
		return nil, err
	}
	a := &Aggregator{Rule: rule}
	if rule.Name == "fedadam" {
		a.adam = aggregate.NewFedAdam(rule.LR, rule.Tau)
	}
	return a, nil
}

// Apply combines the clients' adapters into the next global adapter.
// global is not modified, and neither is the optimizer's state: with
// FedAdam, opt is the state after this step (nil for the other rules), to
// be persisted together with next and then adopted with Commit, so an
// aggregation that fails or is redone after a crash starts from the same
// moments. relErr is the largest per-module relative error of the
// Kron-aware re-fit (0 for the other rules).
func (a *Aggregator) Apply(global *adapter.Set, updates []aggregate.Update) (next *adapter.Set, opt *aggregate.FedAdam, relErr float64, err error) {
	switch a.Rule.Name {
	case "fedavg":
		next, err = aggregate.FedAvg(updates)
	case "kron-exact":
		var errs []aggregate.ModuleError
		next, errs, err = aggregate.KronExact(updates)
		for _, e := range errs {
			relErr = max(relErr, e.Rel)
		}
	case "median":
		next, err = aggregate.Median(updates)
	case "trimmed-mean":
		next, err = aggregate.TrimmedMean(updates, a.Rule.Beta)
	case "fedadam":
		var avg *adapter.Set
		if avg, err = aggregate.FedAvg(updates); err == nil {
			next, opt = global.Clone(), a.adam.Clone()
			err = opt.Step(next, avg)
		}
	default:
		err = fmt.Errorf("unknown aggregation rule %q", a.Rule.Name)
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("aggregate (%s): %w", a.Rule, err)
	}
	next.BaseModel = global.BaseModel
	return next, opt, relErr, nil
}

// Commit adopts the optimizer state an Apply returned, once its global
// adapter is stored (nil: nothing to adopt).
func (a *Aggregator) Commit(opt *aggregate.FedAdam) {
	if opt != nil {
		a.adam = opt
	}
}

// Restore continues from the optimizer state stored with the current
// global adapter (shape). Empty state is a fresh start; state stored for a
// rule without one (the operator changed the rule) is dropped, and
// reported so.
func (a *Aggregator) Restore(state []byte, shape *adapter.Set) (dropped bool, err error) {
	switch {
	case len(state) == 0:
		return false, nil
	case a.adam == nil:
		return true, nil
	}
	return false, a.adam.UnmarshalMoments(state, shape)
}
