package fed

import (
	"fmt"
	"time"

	"github.com/kronfed/kronfed/fed/fedpb"
)

// ClientPhase is what a client is doing.
type ClientPhase string

const (
	ClientJoining   ClientPhase = "joining"
	ClientPolling   ClientPhase = "polling"
	ClientFetching  ClientPhase = "fetching"
	ClientTraining  ClientPhase = "training"
	ClientUploading ClientPhase = "uploading"
	// ClientKeying: a secure-aggregation round's key and share exchange
	// (before training); ClientUnmasking: revealing shares after upload.
	ClientKeying    ClientPhase = "keying"
	ClientUnmasking ClientPhase = "unmasking"
	ClientStopped   ClientPhase = "stopped"
)

// ClientEvent is an outcome the client driver feeds to its machine.
type ClientEvent interface{ clientEvent() }

// Joined: the coordinator accepted the join.
type Joined struct{ Resp *fedpb.JoinResponse }

// Assigned: a poll answered; Assignment.Round == 0 means no round yet. The
// driver has verified the coordinator's signature. Now is the local clock
// when the answer arrived.
type Assigned struct {
	Assignment *fedpb.RoundAssignment
	Now        time.Time
}

// Fetched: the assignment's global adapter is held locally (downloaded and
// its digest checked, or already cached).
type Fetched struct{}

// Trained: local training finished at Now.
type Trained struct{ Now time.Time }

// Uploaded: the coordinator acknowledged the upload (durably).
type Uploaded struct{ Receipt *fedpb.UploadReceipt }

// Keyed: a secure-aggregation round's key and share exchange finished.
type Keyed struct{}

// Unmasked: the coordinator took this client's revealed shares.
type Unmasked struct{}

// Failure classes how the driver judged an operation's error.
type Failure int

const (
	// Retry: transient (connection lost, coordinator restarting): back
	// off and do the same operation again.
	Retry Failure = iota + 1
	// Rejoin: the coordinator does not know this client (it restarted):
	// join again, then continue.
	Rejoin
	// SkipRound: this round cannot be completed (refused, late): wait for
	// the next one.
	SkipRound
	// Fatal: the client cannot take part (bad credentials, wrong model).
	Fatal
	// Done: the federation has published all its rounds.
	Done
)

func (f Failure) String() string {
	switch f {
	case Retry:
		return "retry"
	case Rejoin:
		return "rejoin"
	case SkipRound:
		return "skip-round"
	case Fatal:
		return "fatal"
	case Done:
		return "done"
	}
	return fmt.Sprintf("Failure(%d)", int(f))
}

// Failed: an operation failed, judged as Class.
type Failed struct {
	Class Failure
	Err   error
}

func (Joined) clientEvent()   {}
func (Assigned) clientEvent() {}
func (Fetched) clientEvent()  {}
func (Trained) clientEvent()  {}
func (Uploaded) clientEvent() {}
func (Keyed) clientEvent()    {}
func (Unmasked) clientEvent() {}
func (Failed) clientEvent()   {}

// ClientAction is the next thing the driver must do.
type ClientAction struct {
	Phase ClientPhase
	// Poll: wait for a round after this one.
	After uint64
	// Fetch, Train, Upload: the round's assignment.
	Assignment *fedpb.RoundAssignment
	// Backoff before doing the action (after a failure).
	Backoff time.Duration
	// Stop: why the client stopped (nil: the federation finished or the
	// configured rounds are done).
	Err error
	// Note explains a skipped round, for the log.
	Note string
}

// ClientMachine is a client's round logic as a deterministic state
// machine: join, poll for an assignment, fetch the global adapter, train,
// upload, and again; with backoff on transient failures, re-joining after a
// coordinator restart, and skipping rounds it cannot complete.
type ClientMachine struct {
	phase     ClientPhase
	after     uint64 // last round completed or skipped
	a         *fedpb.RoundAssignment
	deadline  time.Time   // local clock: arrival + remaining time
	resume    ClientPhase // the phase a re-join interrupted
	failures  int
	rounds    int // rounds uploaded
	maxRounds int
	// BackoffBase and BackoffMax bound the exponential backoff.
	BackoffBase, BackoffMax time.Duration
}

// NewClientMachine starts a client that stops after maxRounds uploads (0:
// until the federation finishes).
func NewClientMachine(maxRounds int) *ClientMachine {
	return &ClientMachine{phase: ClientJoining, maxRounds: maxRounds, BackoffBase: 100 * time.Millisecond, BackoffMax: 5 * time.Second}
}

// Start returns the first action.
func (m *ClientMachine) Start() ClientAction { return ClientAction{Phase: ClientJoining} }

// Rounds is the number of rounds uploaded.
func (m *ClientMachine) Rounds() int { return m.rounds }

// LastRound is the last round completed or skipped.
func (m *ClientMachine) LastRound() uint64 { return m.after }

func (m *ClientMachine) backoff() time.Duration {
	d := m.BackoffBase << min(max(m.failures-1, 0), 16)
	return min(d, m.BackoffMax)
}

func (m *ClientMachine) act(p ClientPhase) ClientAction {
	m.phase = p
	return ClientAction{Phase: p, After: m.after, Assignment: m.a}
}

func (m *ClientMachine) skip(note string) ClientAction {
	if m.a != nil {
		m.after = max(m.after, m.a.Round)
	}
	m.a = nil
	act := m.act(ClientPolling)
	act.Note = note
	return act
}

// Step feeds one event and returns the next action.
func (m *ClientMachine) Step(ev ClientEvent) ClientAction {
	if m.phase == ClientStopped {
		return ClientAction{Phase: ClientStopped}
	}
	if _, failed := ev.(Failed); !failed {
		m.failures = 0
	}
	switch ev := ev.(type) {
	case Joined:
		if m.a != nil { // re-joined mid-round: carry on where we were
			return m.act(m.resumePhase())
		}
		return m.act(ClientPolling)
	case Assigned:
		a := ev.Assignment
		if a == nil || a.Round == 0 {
			return m.act(ClientPolling)
		}
		if a.Round <= m.after {
			return m.act(ClientPolling) // an old round; keep waiting
		}
		m.a = a
		m.deadline = ev.Now.Add(time.Duration(a.RemainingMs) * time.Millisecond)
		return m.act(ClientFetching)
	case Fetched:
		if m.a == nil {
			return m.act(ClientPolling)
		}
		if m.a.Secagg != nil {
			return m.act(ClientKeying)
		}
		return m.act(ClientTraining)
	case Keyed:
		if m.a == nil {
			return m.act(ClientPolling)
		}
		return m.act(ClientTraining)
	case Trained:
		if m.a == nil {
			return m.act(ClientPolling)
		}
		if !ev.Now.Before(m.deadline) {
			return m.skip(fmt.Sprintf("training of round %d finished after its deadline; update dropped", m.a.Round))
		}
		return m.act(ClientUploading)
	case Uploaded:
		m.rounds++
		if m.a != nil {
			m.after = max(m.after, m.a.Round)
			if m.a.Secagg != nil {
				return m.act(ClientUnmasking) // the round needs this client's shares
			}
		}
		return m.roundDone()
	case Unmasked:
		return m.roundDone()
	case Failed:
		switch ev.Class {
		case Retry:
			m.failures++
			act := m.act(m.phase)
			act.Backoff = m.backoff()
			return act
		case Rejoin:
			m.failures++
			if m.phase != ClientJoining {
				m.resume = m.phase
			}
			act := m.act(ClientJoining)
			act.Backoff = m.backoff()
			return act
		case SkipRound:
			return m.skip(ev.Err.Error())
		case Done:
			m.phase = ClientStopped
			return ClientAction{Phase: ClientStopped}
		default:
			m.phase = ClientStopped
			return ClientAction{Phase: ClientStopped, Err: ev.Err}
		}
	}
	return ClientAction{Phase: ClientStopped, Err: fmt.Errorf("client: unexpected event %T in phase %s", ev, m.phase)}
}

// roundDone ends the client's part in a round.
func (m *ClientMachine) roundDone() ClientAction {
	m.a = nil
	if m.maxRounds > 0 && m.rounds >= m.maxRounds {
		m.phase = ClientStopped
		return ClientAction{Phase: ClientStopped}
	}
	return m.act(ClientPolling)
}

// resumePhase is where a re-joined client continues its round: an upload
// already prepared is retried; otherwise the round starts over from fetch.
func (m *ClientMachine) resumePhase() ClientPhase {
	if m.resume == ClientUploading || m.resume == ClientUnmasking {
		return m.resume
	}
	return ClientFetching
}
