package aggregate

import (
	"fmt"
	"math"

	"github.com/kronfed/kronfed/adapter"
)

// A Strategy turns one round's client updates into the next global adapter,
// in the spirit of Flower's Strategy.aggregate_fit and its DP wrappers:
//
//	fedavg, kron-exact, lora-exact, median, trimmed-mean  rules on the clients' factors
//	hetero-exact                                     clients' whole adapters of their own shapes
//	fedadam                                   FedAvg, then a server Adam step
//	CentralDP{fedavg}                         clip, sum, noise, fixed denominator
//
// Updates arrive as the clients' changes Δ_i = θ_i − base, as they came off
// the wire. The rules defined on the clients' factors (averaging Kron-LoRA
// factors is not averaging their ΔW; KronExact needs each client's own
// A_i ⊗ B1_i·B2_i) rebuild θ_i = base + Δ_i themselves; DP and secure
// aggregation work on Δ directly. A strategy that can work from the sum of
// the updates alone (secure aggregation) is a SumStrategy. NewStrategy builds
// one and refuses the combinations that cannot work, with one message each.
type Strategy interface {
	// Aggregate combines a round's updates; the round's Base is not
	// modified, nor the strategy's state until Result.Commit.
	Aggregate(r Round) (*Result, error)
	// Restore continues from the state stored with the current global
	// adapter (shape): empty state is a fresh start; state stored for a
	// strategy that keeps none (the operator changed the rule) is dropped
	// and reported so.
	Restore(state []byte, shape *adapter.Set) (dropped bool, err error)
	String() string
}

// SumStrategy is a Strategy that can also work from the sum of the updates
// alone, as secure aggregation delivers it.
type SumStrategy interface {
	Strategy
	AggregateSum(s Sum) (*Result, error)
}

// Update is one client's contribution to a round: its change Δ = θ − base
// to the round's base global adapter (dequantized), and its weight (its
// example count; DP ignores it).
type Update struct {
	Delta  *adapter.Set
	Weight float64
}

// Round is what Strategy.Aggregate combines.
type Round struct {
	Base    *adapter.Set // the global adapter the cohort trained from
	Updates []Update
	// Cohort is how many clients were selected: central DP's fixed
	// denominator m (an update that never came still counts).
	Cohort int
	// Clip is the round's clipping norm C (central DP).
	Clip float64
}

// Sum is a round's updates as secure aggregation reveals them: only their
// sum.
type Sum struct {
	Base *adapter.Set
	// Total is Σ w_i·Δ_i (FedAvg: each client multiplied its weight in) or,
	// with central DP, Σ clip_C(Δ_i) (the clients clipped their own).
	Total *adapter.Set
	// Weight is Σ w_i over the updates in Total (FedAvg).
	Weight float64
	// Clients is how many updates Total holds; Unclipped how many of them
	// needed no clipping (central DP with adaptive clipping; itself a secure
	// sum of the clients' bits).
	Clients, Unclipped int
	Cohort             int
	Clip               float64
}

// Result is a strategy's outcome for one round.
type Result struct {
	Next *adapter.Set
	// AggregationError is the exact rules' largest per-module relative
	// re-fit error (0 for the other rules).
	AggregationError float64
	// DP is central DP's report (nil without it), and NextClip the next
	// round's clipping norm (the same C without adaptive clipping; 0
	// without DP).
	DP       *DPReport
	NextClip float64
	// State is the strategy's state after this round (FedAdam's moments),
	// to be stored with Next; nil when the strategy keeps none.
	State  []byte
	commit func()
}

// Commit adopts the round's strategy state once Next and State are stored,
// so an aggregation that fails, or is redone after a crash, starts from the
// same state.
func (r *Result) Commit() {
	if r.commit != nil {
		r.commit()
		r.commit = nil
	}
}

// StrategyConfig names a strategy.
type StrategyConfig struct {
	// Rule is fedavg, kron-exact, lora-exact, hetero-exact, median,
	// trimmed-mean or fedadam.
	Rule string
	// Beta is trimmed-mean's fraction trimmed at each end; LR and Tau are
	// FedAdam's server learning rate and adaptivity.
	Beta, LR, Tau float64
	// Kind is the federation's adapter kind (kron-exact needs kron); empty
	// when not known yet (a configuration checked before its adapter is
	// made), which skips that check.
	Kind adapter.Kind
	// DP, when set, wraps the rule in central DP (CentralDP).
	DP *CentralDPConfig
	// SecureSum says the coordinator sees only the sum of the updates
	// (secure aggregation): the strategy must be a SumStrategy.
	SecureSum bool
}

// CentralDPConfig is central DP-FedAvg's setting; the clip comes with each
// round (Round.Clip), since adaptive clipping moves it.
type CentralDPConfig struct {
	NoiseMultiplier float64
	Adaptive        bool
	Noise           NoiseSource // nil: CryptoNoise
}

// NewStrategy builds the strategy c names, or refuses a combination that
// cannot work.
func NewStrategy(c StrategyConfig) (Strategy, error) {
	var base Strategy
	switch c.Rule {
	case "fedavg":
		base = fedAvg{}
	case "kron-exact":
		if c.Kind != "" && c.Kind != adapter.KindKron {
			return nil, fmt.Errorf("aggregation rule kron-exact needs Kron-LoRA adapters, the federation trains %s", c.Kind)
		}
		base = kronExact{}
	case "lora-exact":
		if c.Kind != "" && c.Kind != adapter.KindLoRA {
			return nil, fmt.Errorf("aggregation rule lora-exact needs LoRA adapters, the federation trains %s (kron-exact is Kron-LoRA's)", c.Kind)
		}
		base = loraExact{}
	case "hetero-exact":
		base = heteroExact{}
	case "median":
		base = median{}
	case "trimmed-mean":
		if !(c.Beta >= 0 && c.Beta < 0.5) {
			return nil, fmt.Errorf("aggregation rule trimmed-mean: fraction %v must be in [0, 0.5)", c.Beta)
		}
		base = trimmedMean{beta: c.Beta}
	case "fedadam":
		if !(c.LR > 0) || !(c.Tau > 0) {
			return nil, fmt.Errorf("aggregation rule fedadam: lr %v and tau %v must be positive", c.LR, c.Tau)
		}
		base = &fedAdam{adam: NewFedAdam(c.LR, c.Tau)}
	default:
		return nil, fmt.Errorf("unknown aggregation rule %q", c.Rule)
	}
	if c.DP != nil {
		avg, ok := base.(fedAvg)
		if !ok {
			return nil, fmt.Errorf("central differential privacy averages clipped updates; aggregation rule %s cannot be combined with it (use fedavg)", base)
		}
		base = &CentralDP{Inner: avg, Config: *c.DP}
	}
	if c.SecureSum {
		if _, ok := base.(SumStrategy); !ok {
			return nil, fmt.Errorf("secure aggregation reveals only the sum of the updates; aggregation rule %s needs each one (use fedavg)", c.Rule)
		}
	}
	return base, nil
}

// clients rebuilds each client's adapter θ_i = base + Δ_i for the rules
// defined on the clients' factors.
func clients(r Round) ([]Weighted, error) {
	out := make([]Weighted, len(r.Updates))
	for i, u := range r.Updates {
		if u.Delta == nil {
			return nil, fmt.Errorf("aggregate: update %d has no adapter", i)
		}
		if err := r.Base.SameShape(u.Delta); err != nil {
			return nil, fmt.Errorf("aggregate: update %d: %w", i, err)
		}
		out[i] = Weighted{Set: r.Base.Clone().Add(u.Delta), Weight: u.Weight}
	}
	return out, nil
}

// onFactors adapts a rule on the clients' factors to Strategy.
func onFactors(r Round, rule func([]Weighted) (*adapter.Set, float64, error)) (*Result, error) {
	ws, err := clients(r)
	if err != nil {
		return nil, err
	}
	next, relErr, err := rule(ws)
	if err != nil {
		return nil, err
	}
	next.BaseModel = r.Base.BaseModel
	return &Result{Next: next, AggregationError: relErr}, nil
}

// stateless is the Restore of the strategies that keep no state.
type stateless struct{}

func (stateless) Restore(state []byte, _ *adapter.Set) (bool, error) { return len(state) > 0, nil }

// fedAvg averages the clients' factors weighted by their examples.
type fedAvg struct{ stateless }

func (fedAvg) String() string { return "fedavg" }

func (fedAvg) Aggregate(r Round) (*Result, error) {
	next, err := meanOfClients(r)
	if err != nil {
		return nil, err
	}
	return &Result{Next: next}, nil
}

// meanOfClients is FedAvg of the clients' adapters, Σ p_i·θ_i with
// θ_i = base + Δ_i formed element by element as it is summed (FedAvg's
// arithmetic exactly, without a copy of every client's adapter).
func meanOfClients(r Round) (*adapter.Set, error) {
	if len(r.Updates) == 0 {
		return nil, fmt.Errorf("aggregate: no updates")
	}
	var total float64
	for i, u := range r.Updates {
		if u.Delta == nil {
			return nil, fmt.Errorf("aggregate: update %d has no adapter", i)
		}
		if !(u.Weight > 0) || math.IsInf(u.Weight, 0) {
			return nil, fmt.Errorf("aggregate: update %d has weight %v (want positive and finite)", i, u.Weight)
		}
		if err := r.Base.SameShape(u.Delta); err != nil {
			return nil, fmt.Errorf("aggregate: update %d: %w", i, err)
		}
		if err := u.Delta.CheckFinite(); err != nil {
			return nil, fmt.Errorf("aggregate: update %d: %w", i, err)
		}
		total += u.Weight
	}
	out := r.Base.Clone()
	dst, base := out.Params(), r.Base.Params()
	for _, d := range dst {
		clear(d.Data)
		clear(d.Grad)
	}
	for _, u := range r.Updates {
		p := u.Weight / total
		for j, src := range u.Delta.Params() {
			b, o := base[j].Data, dst[j].Data
			for k, v := range src.Data {
				o[k] += float32(p * float64(b[k]+v))
			}
		}
	}
	if err := out.CheckFinite(); err != nil {
		return nil, fmt.Errorf("aggregate: the mean is not finite: %w", err)
	}
	return out, nil
}

// AggregateSum is FedAvg from the weighted sum: base + Total/Weight.
func (fedAvg) AggregateSum(s Sum) (*Result, error) {
	if !(s.Weight > 0) {
		return nil, fmt.Errorf("aggregate: sum of %v weight", s.Weight)
	}
	mean := s.Total.Clone()
	for _, p := range mean.Params() {
		for j, v := range p.Data {
			p.Data[j] = float32(float64(v) / s.Weight)
		}
	}
	return &Result{Next: s.Base.Clone().Add(mean)}, nil
}

type kronExact struct{ stateless }

func (kronExact) String() string { return "kron-exact" }

func (kronExact) Aggregate(r Round) (*Result, error) {
	return onFactors(r, func(ws []Weighted) (*adapter.Set, float64, error) {
		next, errs, err := KronExact(ws)
		relErr := 0.0
		for _, e := range errs {
			relErr = max(relErr, e.Rel)
		}
		return next, relErr, err
	})
}

// loraExact is kron-exact's counterpart for LoRA: the exact weighted sum
// of the clients' B·A, re-fitted to rank q by a truncated SVD (LoRAExact).
type loraExact struct{ stateless }

func (loraExact) String() string { return "lora-exact" }

func (loraExact) Aggregate(r Round) (*Result, error) {
	return onFactors(r, func(ws []Weighted) (*adapter.Set, float64, error) {
		next, errs, err := LoRAExact(ws)
		relErr := 0.0
		for _, e := range errs {
			relErr = max(relErr, e.Rel)
		}
		return next, relErr, err
	})
}

// heteroExact aggregates clients that train adapters of their own shapes
// (ranks, dA2): each update is the client's whole adapter θ_i, not a
// change, and the next global is HeteroExact's re-fit of their exact ΔW
// sum to the base's shape.
type heteroExact struct{ stateless }

func (heteroExact) String() string { return "hetero-exact" }

func (heteroExact) Aggregate(r Round) (*Result, error) {
	ws := make([]Weighted, len(r.Updates))
	for i, u := range r.Updates {
		ws[i] = Weighted{Set: u.Delta, Weight: u.Weight}
	}
	next, errs, err := HeteroExact(ws, r.Base)
	if err != nil {
		return nil, err
	}
	relErr := 0.0
	for _, e := range errs {
		relErr = max(relErr, e.Rel)
	}
	return &Result{Next: next, AggregationError: relErr}, nil
}

type median struct{ stateless }

func (median) String() string { return "median" }

func (median) Aggregate(r Round) (*Result, error) {
	return onFactors(r, func(ws []Weighted) (*adapter.Set, float64, error) {
		next, err := Median(ws)
		return next, 0, err
	})
}

type trimmedMean struct {
	stateless
	beta float64
}

func (t trimmedMean) String() string { return fmt.Sprintf("trimmed-mean:%g", t.beta) }

func (t trimmedMean) Aggregate(r Round) (*Result, error) {
	return onFactors(r, func(ws []Weighted) (*adapter.Set, float64, error) {
		next, err := TrimmedMean(ws, t.beta)
		return next, 0, err
	})
}

// fedAdam steps the global adapter toward the round's FedAvg with the
// server optimizer, whose moments live between rounds.
type fedAdam struct{ adam *FedAdam }

func (f *fedAdam) String() string { return fmt.Sprintf("fedadam:%g:%g", f.adam.LR, f.adam.Tau) }

func (f *fedAdam) Aggregate(r Round) (*Result, error) {
	avg, err := meanOfClients(r)
	if err != nil {
		return nil, err
	}
	next, opt := r.Base.Clone(), f.adam.Clone()
	if err := opt.Step(next, avg); err != nil {
		return nil, err
	}
	state, err := opt.MarshalMoments(next)
	if err != nil {
		return nil, err
	}
	return &Result{Next: next, State: state, commit: func() { f.adam = opt }}, nil
}

func (f *fedAdam) Restore(state []byte, shape *adapter.Set) (bool, error) {
	if len(state) == 0 {
		return false, nil
	}
	return false, f.adam.UnmarshalMoments(state, shape)
}

// CentralDP is DP-FedAvg around a rule that averages (FedAvg): the clipped,
// noised mean of the updates over the fixed denominator (DP.Aggregate, or
// DP.NoiseSum from a secure sum), added to the base. The clients' weights
// are not used: each client must move the sum by at most C.
type CentralDP struct {
	Inner  fedAvg
	Config CentralDPConfig
}

func (c *CentralDP) String() string {
	return fmt.Sprintf("%s with central DP (z = %g)", c.Inner, c.Config.NoiseMultiplier)
}

func (c *CentralDP) Restore(state []byte, shape *adapter.Set) (bool, error) {
	return c.Inner.Restore(state, shape)
}

// dp is the round's mechanism: the round's clip, the fixed denominator.
func (c *CentralDP) dp(cohort int, clip float64) *DP {
	d := &DP{Clip: clip, NoiseMultiplier: c.Config.NoiseMultiplier, ExpectedClients: float64(cohort), Noise: c.Config.Noise}
	if c.Config.Adaptive {
		d.Adaptive = DefaultAdaptiveClip(float64(cohort))
	}
	return d
}

func (c *CentralDP) Aggregate(r Round) (*Result, error) {
	d := c.dp(r.Cohort, r.Clip)
	deltas := make([]*adapter.Set, len(r.Updates))
	for i, u := range r.Updates {
		deltas[i] = u.Delta
	}
	mean, rep, err := d.Aggregate(deltas, nil)
	if err != nil {
		return nil, err
	}
	return c.finish(r.Base, mean, rep, d), nil
}

func (c *CentralDP) AggregateSum(s Sum) (*Result, error) {
	d := c.dp(s.Cohort, s.Clip)
	mean, rep, err := d.NoiseSum(s.Total, s.Clients, s.Unclipped)
	if err != nil {
		return nil, err
	}
	return c.finish(s.Base, mean, rep, d), nil
}

func (c *CentralDP) finish(base, mean *adapter.Set, rep DPReport, d *DP) *Result {
	// The noise source is drawn lazily by DP; keep the one it made.
	c.Config.Noise = d.Noise
	return &Result{Next: base.Clone().Add(mean), DP: &rep, NextClip: d.Clip}
}
