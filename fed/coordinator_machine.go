package fed

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kronfed/kronfed/aggregate/accountant"
	"github.com/kronfed/kronfed/fed/fedpb"
)

// CoordinatorMachine is the coordinator's round logic as a deterministic state
// machine: joins, member failures, uploads and clock ticks go in; effects
// come out. It does no I/O and reads no clock, so tests drive it exactly and
// a restart rebuilds it from the stored State.
//
// Persistence follows etcd raft's Ready/Advance: every transition that
// changes the durable State marks it unstable; the driver asks Ready for
// the state to persist, writes it (with whatever must go atomically with it)
// before performing the transition's effects, then calls Advance — or
// Rollback when the write failed, so memory never runs ahead of disk.
type CoordinatorMachine struct {
	policy  Policy
	st      State
	stable  State // the state last persisted (Advance)
	dirty   bool  // st differs from stable
	members map[string]*Member
	// rejoin: the machine resumed a federation that had run rounds, and
	// waits for its members to call again (see waitForRejoin); since: the
	// first tick after that.
	rejoin bool
	since  time.Time
	// The last ε computed and its rounds: the budget check at a round's
	// start and the accounting at its end ask for the same rounds, and a
	// PLD over many rounds is not cheap.
	epsRounds []accountant.Composition
	eps       float64
}

// epsilonOf is the policy's ε of rounds, remembered for the next ask.
func (m *CoordinatorMachine) epsilonOf(rounds []accountant.Composition) (float64, error) {
	if m.epsRounds != nil && slices.Equal(rounds, m.epsRounds) {
		return m.eps, nil
	}
	eps, err := m.policy.epsilonOf(rounds)
	if err == nil {
		m.epsRounds, m.eps = slices.Clone(rounds), eps
	}
	return eps, err
}

// NewCoordinatorMachine starts from a stored state (the zero State for a new
// federation, with GlobalVersion set to the initial adapter's version).
func NewCoordinatorMachine(p Policy, st State) (*CoordinatorMachine, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("coordinator policy: %w", err)
	}
	if st.Phase == "" {
		st.Phase = PhaseIdle
	}
	if p.DP != nil && st.Clip == 0 {
		st.Clip = p.DP.Clip
	}
	// A finished federation restarted with more rounds to run continues.
	if st.Phase == PhaseDone && st.Stopped == "" && (p.Rounds == 0 || st.Published < p.Rounds) {
		st.Phase = PhaseIdle
	}
	if p.DP != nil && st.RDP != nil && (p.dpSampling() != SamplingFixed || p.DP.Accountant == AccountantPLD) {
		return nil, errors.New("coordinator policy: the store's private rounds were accounted by RDP for fixed cohorts (a state from before rounds.sampling); keep sampling fixed and the rdp accountant")
	}
	if p.DP != nil && st.DPSampling != "" && st.DPSampling != p.dpSampling() {
		return nil, fmt.Errorf("coordinator policy: the store's private rounds were accounted for %s sampling; this policy accounts %s (keep rounds.sampling as the federation began)",
			st.DPSampling, p.dpSampling())
	}
	return &CoordinatorMachine{policy: p, st: st.clone(), stable: st.clone(), members: map[string]*Member{},
		rejoin: st.Round > 0 && p.RejoinGrace > 0}, nil
}

// waitForRejoin says whether a new round must wait for members to come
// back. A restarted coordinator knows no members until they call again; a
// round started at once would draw its cohort from whichever few called
// first. So the first round after a restart waits until as many clients as
// the last round drew from are eligible again, or RejoinGrace has passed.
func (m *CoordinatorMachine) waitForRejoin(now time.Time, eligible int) bool {
	if !m.rejoin {
		return false
	}
	if m.since.IsZero() {
		m.since = now
	}
	if eligible >= m.st.Eligible || now.Sub(m.since) >= m.policy.RejoinGrace {
		m.rejoin = false
	}
	return m.rejoin
}

// State returns a copy of the durable state.
func (m *CoordinatorMachine) State() State { return m.st.clone() }

// Ready returns the state to persist and whether it changed since the last
// Advance: the driver writes it before performing the effects of the
// transitions that changed it.
func (m *CoordinatorMachine) Ready() (st State, persist bool) { return m.st.clone(), m.dirty }

// Advance records that the state Ready returned is durable.
func (m *CoordinatorMachine) Advance() {
	if m.dirty {
		m.stable, m.dirty = m.st.clone(), false
	}
}

// Rollback returns the machine to the last durable state: the driver undoes
// the transitions whose persistence failed.
func (m *CoordinatorMachine) Rollback() {
	if m.dirty {
		m.st, m.dirty = m.stable.clone(), false
	}
}

// touch marks the durable state changed; every transition that writes m.st
// calls it.
func (m *CoordinatorMachine) touch() { m.dirty = true }

// IsMember reports whether name has joined since the machine started.
func (m *CoordinatorMachine) IsMember(name string) bool { return m.members[name] != nil }

// Member returns a copy of a joined client's record.
func (m *CoordinatorMachine) Member(name string) (Member, bool) {
	mb := m.members[name]
	if mb == nil {
		return Member{}, false
	}
	return *mb, true
}

// Policy returns the policy the machine runs.
func (m *CoordinatorMachine) Policy() Policy { return m.policy }

// Members returns the known clients sorted by name.
func (m *CoordinatorMachine) Members() []Member {
	out := make([]Member, 0, len(m.members))
	for _, mb := range m.members {
		out = append(out, *mb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// InCohort reports whether client is selected for the open round and has
// not uploaded yet.
func (m *CoordinatorMachine) InCohort(client string) bool {
	if m.st.Phase != PhaseCollecting {
		return false
	}
	_, in := slices.BinarySearch(m.st.Cohort, client)
	return in && m.accepted(client) < 0
}

func (m *CoordinatorMachine) accepted(client string) int {
	i, ok := slices.BinarySearchFunc(m.st.Accepted, client, byClient)
	if !ok {
		return -1
	}
	return i
}

// Join records a client joining (or re-joining) with its weight.
func (m *CoordinatorMachine) Join(now time.Time, name string, examples int64, capability string) {
	mb := m.members[name]
	if mb == nil {
		mb = &Member{Name: name}
		m.members[name] = mb
	}
	mb.Examples, mb.Capability, mb.Live, mb.LastSeen = examples, capability, true, now
}

// Seen marks a client alive (it called in).
func (m *CoordinatorMachine) Seen(now time.Time, name string) {
	if mb := m.members[name]; mb != nil {
		mb.Live, mb.LastSeen = true, now
	}
}

// MemberDown records that a client failed or left; if every live member of
// the cohort has uploaded and the quorum is met, the round closes at once.
func (m *CoordinatorMachine) MemberDown(now time.Time, name string) []Effect {
	if mb := m.members[name]; mb != nil {
		mb.Live = false
	}
	if m.st.Phase == PhaseCollecting && m.liveCohortDone(now) && len(m.st.Accepted) >= m.quorum() {
		return m.closeUploads()
	}
	return nil
}

// cohortSize is how many clients a round selects from eligible ones.
func (m *CoordinatorMachine) cohortSize(eligible int) int {
	if m.policy.CohortSize > 0 {
		return m.policy.CohortSize
	}
	return max(1, int(math.Ceil(m.policy.Fraction*float64(eligible)-1e-9)))
}

// minClients is how many eligible clients the next round needs.
func (m *CoordinatorMachine) minClients() int {
	n := 1
	switch {
	case m.policy.MinClients > 0:
		n = m.policy.MinClients
	case m.policy.CohortSize > 0:
		n = m.policy.CohortSize
	}
	if m.st.Round == 0 {
		n = max(n, m.policy.StartClients)
	}
	return n
}

func (m *CoordinatorMachine) quorum() int {
	if m.policy.Quorum > 0 {
		return min(m.policy.Quorum, len(m.st.Cohort))
	}
	return max(1, (len(m.st.Cohort)+1)/2)
}

func (m *CoordinatorMachine) eligible(now time.Time) []string {
	lease := m.policy.lease()
	var names []string
	for _, mb := range m.members {
		if mb.Live && (lease == 0 || now.Sub(mb.LastSeen) <= lease) {
			names = append(names, mb.Name)
		}
	}
	sort.Strings(names)
	return names
}

// SelectCohort picks n of the eligible clients (sorted by name) for round,
// reproducibly: the same seed, round and eligible set give the same cohort.
func SelectCohort(seed, round uint64, eligible []string, n int) []string {
	pool := slices.Clone(eligible)
	rng := rand.New(rand.NewPCG(seed, round))
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	cohort := pool[:min(n, len(pool))]
	sort.Strings(cohort)
	return cohort
}

// SelectPoisson is a Poisson cohort: each eligible client joins round
// independently with probability q, by a coin that is a function of (seed,
// round, client) — reproducible, and independent across clients and
// rounds. Sorted.
func SelectPoisson(seed, round uint64, eligible []string, q float64) []string {
	var cohort []string
	for _, name := range eligible {
		h := fnv.New64a()
		h.Write([]byte(name))
		coin := rand.New(rand.NewPCG(RoundSeed(seed, round), h.Sum64())).Float64()
		if coin < q {
			cohort = append(cohort, name)
		}
	}
	sort.Strings(cohort)
	return cohort
}

// Tick advances time: it starts a round when enough clients are live, and
// closes a round whose deadline passed (aggregating at quorum, abandoning
// below it).
func (m *CoordinatorMachine) Tick(now time.Time) []Effect {
	switch m.st.Phase {
	case PhaseIdle:
		if m.policy.Rounds > 0 && m.st.Published >= m.policy.Rounds {
			m.touch()
			m.st.Phase = PhaseDone
			return []Effect{AllPublished{}}
		}
		eligible := m.eligible(now)
		if len(eligible) < m.minClients() || m.waitForRejoin(now, len(eligible)) {
			return nil
		}
		// With MinClients below the cohort size, a round starts with every
		// eligible client once MinClients are there (a smaller cohort).
		n := min(m.cohortSize(len(eligible)), len(eligible))
		if m.policy.SecAgg != nil && n < MinSecAggCohort {
			return nil
		}
		if dp := m.policy.DP; dp != nil && dp.Epsilon > 0 {
			// Stop before the budget is exceeded, not after.
			next, err := m.spend(n, len(eligible))
			if err == nil && next > dp.Epsilon {
				m.touch()
				m.st.Phase = PhaseDone
				m.st.Stopped = fmt.Sprintf("privacy budget: one more round would reach ε = %.4g > %.4g (δ = %g); spent ε = %.4g", next, dp.Epsilon, dp.Delta, m.st.Epsilon)
				return []Effect{BudgetExhausted{Epsilon: m.st.Epsilon, Next: next, Budget: dp.Epsilon}}
			}
		}
		m.touch()
		m.st.Round++
		m.st.Eligible = len(eligible)
		if m.policy.poisson() {
			m.st.Cohort = SelectPoisson(m.policy.Seed, m.st.Round, eligible, m.policy.Fraction)
			if len(m.st.Cohort) == 0 {
				return []Effect{RoundAbandoned{Round: m.st.Round, Reason: fmt.Sprintf("Poisson sampling at rate %g drew none of the %d eligible clients", m.policy.Fraction, len(eligible))}}
			}
		} else {
			m.st.Cohort = SelectCohort(m.policy.Seed, m.st.Round, eligible, n)
		}
		m.st.Accepted, m.st.Excluded, m.st.Refused = nil, nil, nil
		m.st.Started = now
		m.st.Deadline = now.Add(m.policy.RoundTimeout)
		m.st.Phase = PhaseCollecting
		return []Effect{StartRound{Round: m.st.Round, Cohort: slices.Clone(m.st.Cohort), Eligible: len(eligible),
			Deadline: m.st.Deadline, GlobalVersion: m.st.GlobalVersion}}
	case PhaseCollecting:
		if now.Before(m.st.Deadline) {
			// Members silent for longer than the lease (clients heartbeat
			// while they train) are not waited for: at quorum the round
			// closes now rather than at the deadline.
			if len(m.st.Accepted) >= m.quorum() && m.liveCohortDone(now) {
				return m.closeUploads()
			}
			return nil
		}
		if got, need := len(m.st.Accepted), m.quorum(); got < need {
			return m.abandon(fmt.Sprintf("quorum not reached by the deadline: %d of %d uploads needed", got, need))
		}
		return m.closeUploads()
	}
	return nil
}

// Resume returns what a restarted driver must redo: the aggregation of a
// round that was closed but not published when the coordinator stopped, or
// AllPublished when the federation had already finished (so a restarted
// coordinator lingers and exits instead of serving forever).
func (m *CoordinatorMachine) Resume() []Effect {
	if m.st.Phase == PhaseDone { // restarted after the federation finished
		return []Effect{AllPublished{}}
	}
	if m.policy.SecAgg != nil && (m.st.Phase == PhaseCollecting || m.st.Phase == PhaseAggregating) {
		return m.abandon(errSecAggRestart.Error())
	}
	if m.st.Phase == PhaseAggregating {
		return []Effect{StartAggregation{Round: m.st.Round, BaseVersion: m.st.GlobalVersion, Uploads: slices.Clone(m.st.Accepted)}}
	}
	return nil
}

func (m *CoordinatorMachine) closeUploads() []Effect {
	m.touch()
	m.st.Phase = PhaseAggregating
	return []Effect{StartAggregation{Round: m.st.Round, BaseVersion: m.st.GlobalVersion, Uploads: slices.Clone(m.st.Accepted)}}
}

func (m *CoordinatorMachine) abandon(reason string) []Effect {
	round := m.st.Round
	m.touch()
	m.st.Phase, m.st.Cohort, m.st.Accepted, m.st.Excluded, m.st.Refused = PhaseIdle, nil, nil, nil, nil
	return []Effect{RoundAbandoned{Round: round, Reason: reason}}
}

// Abandon closes the open round without publishing (the driver found it
// cannot complete, e.g. its secure aggregation failed).
func (m *CoordinatorMachine) Abandon(round uint64, reason string) []Effect {
	if round != m.st.Round || (m.st.Phase != PhaseCollecting && m.st.Phase != PhaseAggregating) {
		return nil
	}
	return m.abandon(reason)
}

// Exclude records cohort members that can no longer upload this round.
// The round stops waiting for them: it closes when everyone else has
// uploaded, and is abandoned at once when the quorum is out of reach.
func (m *CoordinatorMachine) Exclude(now time.Time, round uint64, names []string) []Effect {
	if m.st.Phase != PhaseCollecting || round != m.st.Round {
		return nil
	}
	for _, n := range names {
		if _, in := slices.BinarySearch(m.st.Cohort, n); !in {
			continue
		}
		if i, found := slices.BinarySearch(m.st.Excluded, n); !found {
			m.touch()
			m.st.Excluded = slices.Insert(m.st.Excluded, i, n)
		}
	}
	if can, need := len(m.st.Cohort)-len(m.st.Excluded), m.quorum(); can < need {
		return m.abandon(fmt.Sprintf("only %d of the cohort can upload (the rest missed the key exchange); quorum is %d", can, need))
	}
	if m.liveCohortDone(now) && len(m.st.Accepted) >= m.quorum() {
		return m.closeUploads()
	}
	return nil
}

// RefusedUpload records that a cohort member's upload in round was
// refused for its content: a round at quorum stops waiting for it (it may
// still send a valid upload until the round closes).
func (m *CoordinatorMachine) RefusedUpload(now time.Time, round uint64, name string) []Effect {
	if m.st.Phase != PhaseCollecting || round != m.st.Round || m.accepted(name) >= 0 {
		return nil
	}
	if _, in := slices.BinarySearch(m.st.Cohort, name); !in {
		return nil
	}
	if i, found := slices.BinarySearch(m.st.Refused, name); !found {
		m.touch()
		m.st.Refused = slices.Insert(m.st.Refused, i, name)
	}
	if m.liveCohortDone(now) && len(m.st.Accepted) >= m.quorum() {
		return m.closeUploads()
	}
	return nil
}

// liveCohortDone reports whether every cohort member not known to be down
// has uploaded. Down: gossip said so, or it has been silent for longer
// than the lease. A member unknown since a restart counts as pending: it
// may be about to re-join. Excluded members cannot upload; refused ones
// are not waited for.
func (m *CoordinatorMachine) liveCohortDone(now time.Time) bool {
	lease := m.policy.lease()
	for _, c := range m.st.Cohort {
		if _, out := slices.BinarySearch(m.st.Excluded, c); out {
			continue
		}
		if _, refused := slices.BinarySearch(m.st.Refused, c); refused {
			continue
		}
		mb := m.members[c]
		silent := mb != nil && lease > 0 && now.Sub(mb.LastSeen) > lease
		if (mb == nil || (mb.Live && !silent)) && m.accepted(c) < 0 {
			return false
		}
	}
	return true
}

// CheckUpload decides whether an upload header from the authenticated
// client may be accepted now. It checks round, timing, cohort, identity,
// duplicates and base version; the driver checks the signature, decrypts
// and validates the payload. A header identical to an accepted one (same
// nonce and digest: a retry whose receipt was lost) is reported with
// dup=true and no refusal, so the driver can answer it idempotently.
func (m *CoordinatorMachine) CheckUpload(now time.Time, client string, h *fedpb.UploadHeader) (dup bool, r *Refusal) {
	switch {
	case h.Client != client:
		return false, refuse(RefuseDenied, "identity", "upload names client %q but the caller is %q", h.Client, client)
	case h.Round == 0 || h.Round > m.st.Round:
		return false, refuse(RefuseNotNow, "wrong_round", "round %d has not started (current round %d)", h.Round, m.st.Round)
	case h.Round < m.st.Round:
		return false, refuse(RefuseNotNow, "late", "round %d is over (current round %d): late upload refused", h.Round, m.st.Round)
	}
	if i := m.accepted(client); i >= 0 {
		a := m.st.Accepted[i]
		if bytes.Equal(a.Nonce, h.Nonce) && bytes.Equal(a.Digest, h.Digest) {
			return true, nil
		}
		return false, refuse(RefuseDuplicate, "duplicate", "client %s already has an accepted upload in round %d", client, h.Round)
	}
	switch {
	case m.st.Phase != PhaseCollecting:
		return false, refuse(RefuseNotNow, "late", "round %d is closed for uploads (%s)", h.Round, m.st.Phase)
	case !now.Before(m.st.Deadline):
		return false, refuse(RefuseLate, "late", "round %d's deadline passed at %s", h.Round, m.st.Deadline.UTC().Format(time.RFC3339Nano))
	}
	if _, in := slices.BinarySearch(m.st.Cohort, client); !in {
		return false, refuse(RefuseDenied, "not_in_cohort", "client %s is not in round %d's cohort", client, h.Round)
	}
	switch {
	case h.BaseVersion != m.st.GlobalVersion:
		return false, refuse(RefuseNotNow, "stale_base", "update is relative to global version %d, round %d trains from version %d", h.BaseVersion, h.Round, m.st.GlobalVersion)
	case h.Examples <= 0:
		return false, refuse(RefuseInvalid, "bad_header", "examples %d must be positive", h.Examples)
	case h.Examples > m.policy.ExampleBound():
		return false, refuse(RefuseInvalid, "bad_header", "examples %d exceed the bound of %d a client may claim (its aggregation weight)", h.Examples, m.policy.ExampleBound())
	case math.IsNaN(h.TrainLoss) || math.IsInf(h.TrainLoss, 0) || h.TrainLoss < 0:
		return false, refuse(RefuseInvalid, "bad_header", "train loss %v: want a finite, non-negative number", h.TrainLoss)
	case !(h.ValAccuracy >= 0 && h.ValAccuracy <= 1):
		return false, refuse(RefuseInvalid, "bad_header", "validation accuracy %v: want a number in [0, 1]", h.ValAccuracy)
	case len(h.Digest) != 32:
		return false, refuse(RefuseInvalid, "bad_header", "digest has %d bytes, want 32 (SHA-256)", len(h.Digest))
	case len(h.Nonce) != NonceSize:
		return false, refuse(RefuseInvalid, "bad_header", "nonce has %d bytes, want %d", len(h.Nonce), NonceSize)
	}
	return false, nil
}

// Accept records an upload that passed CheckUpload and the driver's
// payload checks. The driver persists the returned state together with the
// upload before acknowledging it. When the whole live cohort has uploaded,
// uploads close and aggregation starts.
func (m *CoordinatorMachine) Accept(now time.Time, r Receipt) []Effect {
	i := m.accepted(r.Client)
	if i >= 0 || m.st.Phase != PhaseCollecting {
		return nil // CheckUpload guards this; never accept twice
	}
	i, _ = slices.BinarySearchFunc(m.st.Accepted, r.Client, byClient)
	m.touch()
	m.st.Accepted = slices.Insert(m.st.Accepted, i, r)
	m.Seen(now, r.Client)
	if len(m.st.Accepted) == len(m.st.Cohort) || (m.liveCohortDone(now) && len(m.st.Accepted) >= m.quorum()) {
		return m.closeUploads()
	}
	return nil
}

// spend is the ε after one more round with cohort of eligible clients.
func (m *CoordinatorMachine) spend(cohort, eligible int) (float64, error) {
	dp := m.policy.DP
	if m.st.RDP != nil {
		_, eps, err := legacyCompose(dp, m.st.RDP, cohort, eligible)
		return eps, err
	}
	return m.epsilonOf(addRound(slices.Clone(m.st.DPRounds), m.policy.roundComposition(cohort, eligible)))
}

// Aggregated records that round's aggregate was published as version. With
// DP, the round's privacy cost is added to the accountant's state and
// nextClip (adaptive clipping; 0: unchanged) becomes the clipping norm.
func (m *CoordinatorMachine) Aggregated(round, version uint64, nextClip float64) []Effect {
	if m.st.Phase != PhaseAggregating || round != m.st.Round {
		return nil
	}
	m.touch()
	if dp := m.policy.DP; dp != nil {
		var eps float64
		var err error
		if m.st.RDP != nil {
			m.st.RDP, eps, err = legacyCompose(dp, m.st.RDP, len(m.st.Cohort), m.st.Eligible)
		} else {
			m.st.DPRounds = addRound(m.st.DPRounds, m.policy.roundComposition(len(m.st.Cohort), m.st.Eligible))
			m.st.DPSampling = m.policy.dpSampling()
			eps, err = m.epsilonOf(m.st.DPRounds)
		}
		if err != nil {
			return m.abandon("privacy accounting: " + err.Error())
		}
		m.st.Epsilon = eps
		if nextClip > 0 {
			m.st.Clip = nextClip
		}
	}
	m.st.GlobalVersion = version
	m.st.Published++
	// The receipts stay until the next round starts: a client whose
	// receipt was lost (the coordinator died between committing its upload
	// and answering) retries, and CheckUpload answers it as accepted.
	m.st.Phase, m.st.Excluded, m.st.Refused = PhaseIdle, nil, nil
	return []Effect{RoundPublished{Round: round, Version: version}}
}

// AggregationFailed abandons a round whose uploads could not be aggregated.
func (m *CoordinatorMachine) AggregationFailed(round uint64, reason string) []Effect {
	if m.st.Phase != PhaseAggregating || round != m.st.Round {
		return nil
	}
	return m.abandon("aggregation failed: " + reason)
}

func byClient(r Receipt, client string) int { return strings.Compare(r.Client, client) }
