package fed

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/kronfed/kronfed/aggregate/accountant"
	"github.com/kronfed/kronfed/fed/fedpb"
)

// Policy is how the coordinator runs rounds.
type Policy struct {
	// Rounds to publish before stopping (0: until stopped).
	Rounds int
	// CohortSize clients are selected per round; when 0, Fraction of the
	// eligible clients (rounded up) are.
	CohortSize int
	Fraction   float64
	// MinClients eligible (joined, live) clients are needed before a round
	// starts (default: the cohort size, or 1 with Fraction). Below the
	// cohort size it lets a round start short: with fewer eligible clients
	// than CohortSize, all of them form the cohort (and Quorum is capped at
	// its size).
	MinClients int
	// StartClients eligible clients are needed before the first round
	// starts (default: MinClients); later rounds need only MinClients. A
	// federation whose clients come up one by one would otherwise run its
	// first round with whichever MinClients joined first.
	StartClients int
	// Quorum uploads are needed to aggregate at the deadline (default: half
	// the cohort, rounded up). A round whose whole live cohort has uploaded
	// aggregates at once.
	Quorum int
	// RoundTimeout is the time from a round's start to its upload deadline.
	RoundTimeout time.Duration
	// Lease is how long a client stays selectable after it was last heard
	// from (a join, a poll, an upload): one that left without gossip
	// noticing — or with gossip off — is not picked again, and no round
	// waits out its deadline for it, until it polls again. 0: no lease
	// (the coordinator command defaults to the round timeout plus a
	// minute: a live client polls while it waits, and is heard from at
	// least once a round while it trains).
	Lease time.Duration
	// Seed makes cohort selection reproducible: round r's cohort is a
	// function of (Seed, r, the eligible clients).
	Seed uint64
	// Train is sent to every client of a round (its seed is mixed with the
	// round number).
	Train *fedpb.RoundConfig
	// DP, when set, makes every round client-level DP-FedAvg and accounts
	// for it.
	DP *DPPolicy
	// SecAgg, when set, makes every round a secure aggregation (SecAgg+):
	// the coordinator sees only the sum of the survivors' updates.
	SecAgg *SecAggPolicy
	// MaxExamples bounds the example count a client may announce (at join,
	// and with each upload, where it is the client's FedAvg weight): one
	// enrolled client claiming 2⁶³ must not set the global model alone.
	// 0: for uploads the round's max_items when it caps the items a client
	// trains on, else (and at join) DefaultMaxExamples.
	MaxExamples int64
	// MaxUpdateNorm refuses an upload whose update Δ has an L2 norm (all
	// its tensors together, as DP clipping measures it) above this bound:
	// a client that scales its update up — the "model replacement" attack
	// that lets one client set the global adapter under FedAvg — is turned
	// away with reason update_norm. 0: no bound. Not with secure
	// aggregation, where the coordinator never sees one update (its range
	// bounds each coordinate instead).
	MaxUpdateNorm float64
	// RejoinGrace: after a restart, the first new round waits for as many
	// clients as the last round drew from to call again, at most this long
	// (0: it starts as soon as MinClients are back, with whoever came
	// first — an attacker that reconnects fastest included).
	RejoinGrace time.Duration
	// Sampling is how a round's cohort is drawn: SamplingFixed (""
	// too) draws CohortSize clients, or Fraction of the eligible ones,
	// uniformly without replacement — accounted under replace-one
	// adjacency; SamplingPoisson includes each eligible client
	// independently with probability Fraction (DP-FedAvg as McMahan et al.
	// 2018 analyse it, under add/remove-one adjacency: what the PLD
	// accountant covers). A Poisson round that draws nobody is abandoned at
	// once.
	Sampling string
}

// The cohort samplings (Policy.Sampling).
const (
	SamplingFixed   = "fixed"
	SamplingPoisson = "poisson"
)

// poisson reports whether cohorts are Poisson samples.
func (p Policy) poisson() bool { return p.Sampling == SamplingPoisson }

// DefaultMaxExamples is the bound on a client's announced examples when
// neither max_examples nor max_items sets one: about a million, far above
// any device's local fine-tuning set, far below an overflow.
const DefaultMaxExamples = 1 << 20

// lease is the effective Lease (0: none).
func (p Policy) lease() time.Duration { return max(p.Lease, 0) }

// JoinExampleBound is the largest data size a client may announce when it
// joins (max_examples, else DefaultMaxExamples: a round's max_items caps
// what a client trains on, not what it holds).
func (p Policy) JoinExampleBound() int64 {
	if p.MaxExamples > 0 {
		return p.MaxExamples
	}
	return DefaultMaxExamples
}

// ExampleBound is the largest example count — its aggregation weight — a
// client may report with an upload.
func (p Policy) ExampleBound() int64 {
	switch {
	case p.MaxExamples > 0:
		return p.MaxExamples
	case p.Train != nil && p.Train.MaxItems > 0:
		return int64(p.Train.MaxItems)
	}
	return DefaultMaxExamples
}

// DPPolicy is client-level differential privacy: each client's whole update
// clipped to Clip, Gaussian noise of std Noise·Clip added to the sum, the
// privacy spent accounted round by round (Rényi DP of fixed-size sampling
// without replacement, cohort of the eligible clients, replace-one
// adjacency), and rounds stopped before ε would pass Epsilon at Delta.
type DPPolicy struct {
	Clip  float64 // initial clipping norm C
	Noise float64 // noise multiplier z
	// Adaptive adapts C every round (Andrew et al. 2021, γ = 0.5, η = 0.2).
	Adaptive bool
	// Epsilon is the budget (0: none, ε is still reported); Delta the δ.
	Epsilon, Delta float64
	// SeededNoise draws the noise from Seed, for reproducible simulations
	// only: such noise is NOT private.
	SeededNoise bool
	Seed        uint64
	// Local makes it local DP: every client clips its own update to Clip
	// and adds the Gaussian noise before upload (aggregate.AddLocalNoise),
	// so not even the coordinator sees an unnoised update; the coordinator
	// aggregates the noisy updates with any rule. Each round is then a
	// Gaussian mechanism on each participating client with no
	// amplification by sampling, accounted as such (an upper bound for a
	// client selected in every round). Costlier in accuracy: the mean's
	// noise is z·C/√n rather than z·C/n.
	Local bool
	// Accountant is how ε is computed: AccountantRDP ("" too: Rényi DP at
	// its best order, every sampling) or AccountantPLD (the privacy loss
	// distribution, tighter over many rounds; Poisson sampling only).
	Accountant string
}

// The privacy accountants (DPPolicy.Accountant).
const (
	AccountantRDP = "rdp"
	AccountantPLD = "pld"
)

// AccountantName is the accountant in outputs: "RDP" or "PLD".
func (d *DPPolicy) AccountantName() string {
	if d != nil && d.Accountant == AccountantPLD {
		return "PLD"
	}
	return "RDP"
}

// Validate reports a DP policy that cannot run.
func (d *DPPolicy) Validate() error {
	switch {
	case !(d.Noise > 0) || math.IsInf(d.Noise, 0):
		return fmt.Errorf("dp: noise multiplier %v must be positive", d.Noise)
	case !(d.Clip > 0) || math.IsInf(d.Clip, 0):
		return fmt.Errorf("dp: clipping norm %v must be positive", d.Clip)
	case !(d.Delta > 0 && d.Delta < 1):
		return fmt.Errorf("dp: delta %v must be in (0, 1)", d.Delta)
	case d.Epsilon < 0 || math.IsNaN(d.Epsilon):
		return fmt.Errorf("dp: budget epsilon %v must not be negative", d.Epsilon)
	case d.Local && d.Adaptive:
		return errors.New("dp: adaptive clipping needs the server's noisy count of unclipped updates; local DP uses a fixed clip")
	}
	return nil
}

// roundComposition is one round that selects cohort of eligible clients,
// as the accountant composes it. Fixed cohorts: sampling without
// replacement at rate cohort/eligible (replace-one adjacency: the
// accountant uses noise multiplier z/2, as replacing one client moves the
// clipped sum by up to 2C). Poisson cohorts: rate Fraction whatever was
// drawn (add/remove adjacency, multiplier z). Local DP: rate 1 (a client's
// own noisy update is not amplified by sampling).
func (p Policy) roundComposition(cohort, eligible int) accountant.Composition {
	q := min(float64(cohort)/float64(max(eligible, 1)), 1)
	switch {
	case p.DP.Local:
		q = 1
	case p.poisson():
		q = p.Fraction
	}
	return accountant.Composition{Z: p.DP.Noise, Q: q, Steps: 1}
}

// dpDenominator is central DP's fixed denominator for a round of st: the
// cohort drawn (fixed sampling), or its expected size Fraction·eligible
// (Poisson sampling, as McMahan et al. 2018: dividing by the size actually
// drawn would leak it).
func (p Policy) dpDenominator(st State) int {
	if p.poisson() {
		return max(1, int(math.Round(p.Fraction*float64(st.Eligible))))
	}
	return len(st.Cohort)
}

// dpSampling names how the rounds are accounted: "poisson" (add/remove) or
// "fixed" (replace-one, also local DP). A store's rounds keep it.
func (p Policy) dpSampling() string {
	if p.poisson() && !p.DP.Local {
		return SamplingPoisson
	}
	return SamplingFixed
}

// addRound appends c to rounds, merged into the last run when it has the
// same rate and noise.
func addRound(rounds []accountant.Composition, c accountant.Composition) []accountant.Composition {
	if n := len(rounds); n > 0 && rounds[n-1].Z == c.Z && rounds[n-1].Q == c.Q {
		rounds[n-1].Steps += c.Steps
		return rounds
	}
	return append(rounds, c)
}

// epsilonOf is the ε at the policy's δ of the composed rounds (0 for
// none): RDP minimized over the Rényi order, or the PLD's pessimistic
// estimate.
func (p Policy) epsilonOf(rounds []accountant.Composition) (float64, error) {
	if len(rounds) == 0 {
		return 0, nil
	}
	if p.DP.Accountant == AccountantPLD {
		a, err := accountant.NewPLDAccountant(accountant.PLDOptions{})
		if err != nil {
			return 0, err
		}
		for _, c := range rounds {
			if err := a.Compose(c.Z, c.Q, c.Steps); err != nil {
				return 0, err
			}
		}
		e, err := a.Epsilon(p.DP.Delta)
		return e.Upper, err
	}
	var s accountant.Sampling = accountant.WithoutReplacement{}
	if p.dpSampling() == SamplingPoisson {
		s = accountant.Poisson{}
	}
	eps, _, err := accountant.OptimalEpsilon(s, rounds, p.DP.Delta)
	return eps, err
}

// legacyCompose adds one round to RDP accumulated at
// accountant.DefaultOrders (a state written before DPRounds), returning the
// new curve and its ε on that grid.
func legacyCompose(dp *DPPolicy, rdp []float64, cohort, eligible int) ([]float64, float64, error) {
	c := Policy{DP: dp}.roundComposition(cohort, eligible)
	orders := accountant.DefaultOrders()
	if len(rdp) != len(orders) {
		return nil, 0, fmt.Errorf("the stored Rényi DP has %d orders, the accountant's grid %d", len(rdp), len(orders))
	}
	out := slices.Clone(rdp)
	for i, a := range orders {
		r, err := accountant.WithoutReplacementRDP(c.Q, c.Z/2, a)
		if err != nil {
			return nil, 0, err
		}
		out[i] += r
	}
	eps, _, err := accountant.EpsilonFromRDP(orders, out, dp.Delta)
	return out, eps, err
}

// SpentAfter is the ε (at d.Delta) the federation has spent after rounds
// rounds that each select cohort of population clients, as the coordinator
// accounts fixed cohorts (sampling without replacement; local DP: no
// amplification). Policy.SpentAfter covers every sampling.
func (d *DPPolicy) SpentAfter(rounds, cohort, population int) (float64, error) {
	return Policy{DP: d}.SpentAfter(rounds, cohort, population)
}

// SpentAfter is the ε the federation has spent after rounds rounds that
// each draw cohort of population clients (Poisson: at rate Fraction, the
// cohort aside), as the coordinator accounts them. A run checks its budget
// with it before it starts.
func (p Policy) SpentAfter(rounds, cohort, population int) (float64, error) {
	if rounds <= 0 || p.DP == nil {
		return 0, nil
	}
	c := p.roundComposition(cohort, population)
	c.Steps = rounds
	return p.epsilonOf([]accountant.Composition{c})
}

// AffordableRounds is how many such rounds fit in the budget d.Epsilon
// (−1 when there is no budget), counting up to limit.
func (d *DPPolicy) AffordableRounds(cohort, population, limit int) (int, error) {
	if d.Epsilon <= 0 {
		return -1, nil
	}
	for n := 1; n <= limit; n++ {
		eps, err := d.SpentAfter(n, cohort, population)
		if err != nil {
			return 0, err
		}
		if eps > d.Epsilon {
			return n - 1, nil
		}
	}
	return limit, nil
}

// Validate reports a policy that cannot run.
func (p Policy) Validate() error {
	switch {
	case p.Rounds < 0:
		return fmt.Errorf("rounds %d < 0", p.Rounds)
	case p.CohortSize < 0:
		return fmt.Errorf("cohort size %d < 0", p.CohortSize)
	case p.CohortSize == 0 && !(p.Fraction > 0 && p.Fraction <= 1):
		return fmt.Errorf("cohort: give a size ≥ 1 or a fraction in (0, 1] (fraction %v)", p.Fraction)
	case p.MinClients < 0:
		return fmt.Errorf("min clients %d < 0", p.MinClients)
	case p.MaxExamples < 0:
		return fmt.Errorf("max examples %d < 0", p.MaxExamples)
	case p.RejoinGrace < 0:
		return fmt.Errorf("rejoin grace %v < 0", p.RejoinGrace)
	case p.Sampling != "" && p.Sampling != SamplingFixed && p.Sampling != SamplingPoisson:
		return fmt.Errorf("sampling %q: want fixed or poisson", p.Sampling)
	case p.poisson() && p.CohortSize > 0:
		return fmt.Errorf("poisson sampling includes each client with probability fraction; a cohort size (%d) is for fixed sampling", p.CohortSize)
	case p.poisson() && !(p.Fraction > 0 && p.Fraction <= 1):
		return fmt.Errorf("poisson sampling needs a fraction in (0, 1] (each client's probability of joining a round), got %v", p.Fraction)
	case p.poisson() && p.SecAgg != nil:
		return errors.New("poisson sampling with secure aggregation: a secure-aggregation round needs a cohort known in advance of a sufficient size; use fixed sampling")
	case p.DP != nil && p.DP.Accountant != "" && p.DP.Accountant != AccountantRDP && p.DP.Accountant != AccountantPLD:
		return fmt.Errorf("dp accountant %q: want rdp or pld", p.DP.Accountant)
	case p.DP != nil && p.DP.Accountant == AccountantPLD && (!p.poisson() || p.DP.Local):
		return errors.New("dp accountant pld covers Poisson sampling (sampling = \"poisson\") under add/remove adjacency with central noise; fixed cohorts and local DP are accounted with rdp")
	case !(p.MaxUpdateNorm >= 0) || math.IsInf(p.MaxUpdateNorm, 0):
		return fmt.Errorf("max update norm %v: want a finite bound ≥ 0 (0: none)", p.MaxUpdateNorm)
	case p.MaxUpdateNorm > 0 && p.SecAgg != nil:
		return errors.New("max update norm needs to see each update, which secure aggregation hides (its range bounds each coordinate instead)")
	case p.StartClients < 0:
		return fmt.Errorf("start clients %d < 0", p.StartClients)
	case p.Quorum < 0:
		return fmt.Errorf("quorum %d < 0", p.Quorum)
	case p.CohortSize > 0 && p.Quorum > p.CohortSize:
		return fmt.Errorf("quorum %d exceeds the cohort size %d", p.Quorum, p.CohortSize)
	case p.RoundTimeout <= 0:
		return fmt.Errorf("round timeout %v must be positive", p.RoundTimeout)
	case p.Train == nil:
		return fmt.Errorf("no training config")
	}
	if p.DP != nil {
		if err := p.DP.Validate(); err != nil {
			return err
		}
	}
	if err := validateRoundConfig(p.Train); err != nil {
		return err
	}
	if p.SecAgg != nil {
		if p.DP != nil && p.DP.Local {
			return errors.New("local DP noise (z·C per coordinate) swamps the secure-aggregation range; use central DP with secure aggregation")
		}
		return p.SecAgg.validate(p)
	}
	return nil
}

func validateRoundConfig(c *fedpb.RoundConfig) error {
	switch {
	case c.LocalEpochs < 1:
		return fmt.Errorf("local epochs %d < 1", c.LocalEpochs)
	case c.BatchSize < 1:
		return fmt.Errorf("batch size %d < 1", c.BatchSize)
	case !(c.LearningRate > 0) || math.IsInf(c.LearningRate, 0):
		return fmt.Errorf("learning rate %v must be positive", c.LearningRate)
	case c.LocalNoise < 0 || math.IsNaN(c.LocalNoise) || math.IsInf(c.LocalNoise, 0):
		return fmt.Errorf("local DP noise multiplier %v must be positive (or 0: off)", c.LocalNoise)
	case c.LocalNoise > 0 && (!(c.LocalClip > 0) || math.IsInf(c.LocalClip, 0)):
		return fmt.Errorf("local DP clipping norm %v must be positive", c.LocalClip)
	}
	switch c.Bits {
	case 2, 3, 4, 8, 32:
	default:
		return fmt.Errorf("upload bits %d: want 2, 3, 4, 8 or 32", c.Bits)
	}
	return nil
}
