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
	// Name is fedavg, kron-exact, lora-exact, hetero-exact, median,
	// trimmed-mean or fedadam. hetero-exact is for clients that train
	// adapters of their own shapes (ShapedTrainer): they upload whole
	// adapters, summed exactly as ΔW and re-fitted to the global's shape.
	Name string
	// Beta is the fraction trimmed at each end (trimmed-mean).
	Beta float64
	// LR and Tau are FedAdam's server learning rate and adaptivity.
	LR, Tau float64
}

// RuleNames lists the aggregation rules ParseRule accepts.
var RuleNames = []string{"fedavg", "kron-exact", "lora-exact", "hetero-exact", "median", "trimmed-mean[:beta]", "fedadam[:lr[:tau]]"}

// ParseRule reads "fedavg", "kron-exact", "lora-exact", "median", "trimmed-mean:0.1" or
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
	case "fedavg", "kron-exact", "lora-exact", "hetero-exact", "median":
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

// Whole says whether the rule takes each client's whole adapter of its own
// shape (hetero-exact) rather than a change of the global's.
func (r Rule) Whole() bool { return r.Name == "hetero-exact" }

// Strategy builds the aggregation strategy of this rule for a federation
// of adapters of kind under policy (central DP wraps it; secure aggregation
// needs a strategy that works from the sum), refusing the combinations that
// cannot work. noise is central DP's noise source (nil: CryptoNoise).
func (r Rule) Strategy(kind adapter.Kind, policy Policy, noise aggregate.NoiseSource) (aggregate.Strategy, error) {
	if r.Whole() && policy.MaxUpdateNorm > 0 {
		return nil, fmt.Errorf("max update norm bounds a change of the global; rule %s takes whole adapters (set max_update_norm to 0)", r.Name)
	}
	if r.Whole() && policy.DP != nil && policy.DP.Local {
		return nil, fmt.Errorf("local DP noises a change of the global; rule %s takes whole adapters", r.Name)
	}
	c := aggregate.StrategyConfig{Rule: r.Name, Beta: r.Beta, LR: r.LR, Tau: r.Tau, Kind: kind, SecureSum: policy.SecAgg != nil}
	if dp := policy.DP; dp != nil && !dp.Local {
		c.DP = &aggregate.CentralDPConfig{NoiseMultiplier: dp.Noise, Adaptive: dp.Adaptive, Noise: noise}
	}
	return aggregate.NewStrategy(c)
}

// Check reports a rule that cannot aggregate adapters of kind under policy
// (aggregate.NewStrategy's refusals; kind "" checks the policy alone).
func (r Rule) Check(kind adapter.Kind, policy Policy) error {
	_, err := r.Strategy(kind, policy, nil)
	return err
}
