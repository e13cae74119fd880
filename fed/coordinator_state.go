package fed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/kronfed/kronfed/aggregate/accountant"
)

// Phase is where the coordinator's current round stands.
type Phase string

const (
	// PhaseIdle: no round is open; the next tick may start one.
	PhaseIdle Phase = "idle"
	// PhaseCollecting: a cohort is training and uploads are accepted until
	// the deadline.
	PhaseCollecting Phase = "collecting"
	// PhaseAggregating: uploads are closed; the aggregate is being computed.
	PhaseAggregating Phase = "aggregating"
	// PhaseDone: the configured number of rounds has been published.
	PhaseDone Phase = "done"
)

// State is the coordinator's durable state: everything needed to continue
// the current round after a restart. It is persisted (as JSON) in the same
// transaction as each accepted upload and each published global adapter.
type State struct {
	Round    uint64    `json:"round"`
	Phase    Phase     `json:"phase"`
	Cohort   []string  `json:"cohort,omitempty"` // sorted
	Started  time.Time `json:"started"`
	Deadline time.Time `json:"deadline"`
	// Accepted holds the round's accepted uploads; after publication they
	// stay until the next round starts, so a retried upload is recognised.
	Accepted []Receipt `json:"accepted,omitempty"` // sorted by client
	// Excluded cohort members cannot upload this round (they missed a
	// secure-aggregation stage); the round does not wait for them.
	Excluded []string `json:"excluded,omitempty"` // sorted
	// Refused cohort members sent this round an upload refused for its
	// content (undecryptable, malformed, above the norm bound). They may
	// still send a valid one, but a round at quorum does not wait for them:
	// one enrolled client sending bad updates must not hold every round to
	// its deadline.
	Refused       []string `json:"refused,omitempty"` // sorted
	GlobalVersion uint64   `json:"global_version"`
	Published     int      `json:"published"`
	// Eligible is how many clients the cohort was drawn from (the
	// accountant's population).
	Eligible int `json:"eligible,omitempty"`
	// DP: the current clipping norm, the rounds the accountant has
	// composed (runs of rounds with the same sampling rate and noise), and
	// their ε at the policy's δ, minimized over the Rényi order. RDP is the
	// spent Rényi DP at accountant.DefaultOrders as states written before
	// DPRounds kept it: such a federation goes on accounting on that grid.
	Clip     float64                  `json:"clip,omitempty"`
	DPRounds []accountant.Composition `json:"dp_rounds,omitempty"`
	// DPSampling is how DPRounds are accounted ("fixed": replace-one,
	// "poisson": add/remove); a config that samples otherwise is refused.
	DPSampling string    `json:"dp_sampling,omitempty"`
	RDP        []float64 `json:"rdp,omitempty"`
	Epsilon    float64   `json:"epsilon,omitempty"`
	// Stopped says why rounds stopped early (the privacy budget).
	Stopped string `json:"stopped,omitempty"`
}

// Receipt is what the state machine remembers of an accepted upload; the
// payload itself is in the store.
type Receipt struct {
	Client    string  `json:"client"`
	Examples  int64   `json:"examples"`
	Nonce     []byte  `json:"nonce"`
	Digest    []byte  `json:"digest"`
	WireBytes uint64  `json:"wire_bytes"`
	RawBytes  uint64  `json:"raw_bytes"`
	Loss      float64 `json:"loss"`
	Accuracy  float64 `json:"accuracy"`
}

// MarshalState encodes a state snapshot for the store.
func MarshalState(s State) ([]byte, error) { return json.Marshal(s) }

// UnmarshalState decodes a stored snapshot, checking its invariants so a
// damaged store is reported instead of acted on.
func UnmarshalState(b []byte) (State, error) {
	var s State
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("coordinator state: %w", err)
	}
	switch s.Phase {
	case PhaseIdle, PhaseCollecting, PhaseAggregating, PhaseDone:
	default:
		return State{}, fmt.Errorf("coordinator state: unknown phase %q", s.Phase)
	}
	if !slices.IsSorted(s.Cohort) {
		return State{}, fmt.Errorf("coordinator state: cohort not sorted")
	}
	if !slices.IsSorted(s.Excluded) {
		return State{}, fmt.Errorf("coordinator state: excluded clients not sorted")
	}
	if !slices.IsSorted(s.Refused) {
		return State{}, fmt.Errorf("coordinator state: refused clients not sorted")
	}
	for _, c := range slices.Concat(s.Excluded, s.Refused) {
		if !slices.Contains(s.Cohort, c) {
			return State{}, fmt.Errorf("coordinator state: excluded or refused client %q, not in the cohort", c)
		}
	}
	for i, r := range s.Accepted {
		if !slices.Contains(s.Cohort, r.Client) {
			return State{}, fmt.Errorf("coordinator state: accepted upload of %q, not in the cohort", r.Client)
		}
		if i > 0 && s.Accepted[i-1].Client >= r.Client {
			return State{}, fmt.Errorf("coordinator state: accepted uploads not sorted or duplicated")
		}
	}
	return s, nil
}

func (s State) clone() State {
	s.RDP = slices.Clone(s.RDP)
	s.DPRounds = slices.Clone(s.DPRounds)
	s.Cohort = slices.Clone(s.Cohort)
	s.Accepted = slices.Clone(s.Accepted)
	s.Excluded = slices.Clone(s.Excluded)
	s.Refused = slices.Clone(s.Refused)
	return s
}

// Member is a client the coordinator knows: joined over the protocol, and
// live unless the transport or the gossip layer says otherwise.
type Member struct {
	Name       string
	Examples   int64
	Capability string
	Live       bool
	LastSeen   time.Time
}

// Effect is something the driver must do after a step of the state machine.
type Effect interface{ effect() }

// StartRound: a round opened; the driver signs and announces it.
type StartRound struct {
	Round         uint64
	Cohort        []string
	Eligible      int
	Deadline      time.Time
	GlobalVersion uint64
}

// StartAggregation: uploads are closed; the driver aggregates these
// (durably stored) uploads onto BaseVersion and reports back with
// Aggregated or AggregationFailed.
type StartAggregation struct {
	Round       uint64
	BaseVersion uint64
	Uploads     []Receipt
}

// RoundAbandoned: the round closed without publishing (quorum not reached
// or aggregation failed); nothing of it is applied.
type RoundAbandoned struct {
	Round  uint64
	Reason string
}

// RoundPublished: a new global adapter version is live.
type RoundPublished struct {
	Round   uint64
	Version uint64
}

// AllPublished: the configured number of rounds is published.
type AllPublished struct{}

// BudgetExhausted: one more round would spend more privacy than the
// budget allows; the federation stops (PhaseDone) with what it published.
type BudgetExhausted struct {
	Epsilon, Next, Budget float64
}

func (BudgetExhausted) effect() {}

func (StartRound) effect() {}

func (StartAggregation) effect() {}

func (RoundAbandoned) effect() {}

func (RoundPublished) effect() {}

func (AllPublished) effect() {}

// Refusal is why an upload (or a secure-aggregation message) is refused:
// its kind, a short machine-readable reason ("late", "duplicate", ...) for
// metrics, and a message for the client. The machine knows nothing of
// transports: the Server maps the kind to a gRPC status (refusalStatus).
type Refusal struct {
	Kind   RefusalKind
	Reason string
	Msg    string
}

func (r *Refusal) Error() string { return r.Msg }

// RefusalKind is the class of a refusal.
type RefusalKind int

const (
	RefuseInvalid         RefusalKind = iota // the message is malformed
	RefuseDenied                             // the caller may not do this
	RefuseUnauthenticated                    // a signature does not verify
	RefuseNotNow                             // valid, but not in the current state of the round
	RefuseDuplicate                          // already done
	RefuseLate                               // past the round's deadline
	RefuseAborted                            // the round cannot complete
	RefuseInternal                           // the coordinator failed (storage)
	RefuseExhausted                          // over a size or load limit (uploads admitted by header)
)

func (k RefusalKind) String() string {
	return [...]string{"invalid", "denied", "unauthenticated", "not now", "duplicate", "late", "aborted", "internal", "exhausted"}[k]
}

func refuse(kind RefusalKind, reason, format string, args ...any) *Refusal {
	return &Refusal{Kind: kind, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}
