package fed

import (
	"errors"
	"testing"
	"time"

	"github.com/kronfed/kronfed/fed/fedpb"
)

func wantPhase(t *testing.T, act ClientAction, p ClientPhase) ClientAction {
	t.Helper()
	if act.Phase != p {
		t.Fatalf("action %+v, want phase %s", act, p)
	}
	return act
}

func TestClientMachineRounds(t *testing.T) {
	m := NewClientMachine(2)
	wantPhase(t, m.Start(), ClientJoining)
	wantPhase(t, m.Step(Joined{}), ClientPolling)
	wantPhase(t, m.Step(Assigned{Assignment: &fedpb.RoundAssignment{}, Now: t0}), ClientPolling)
	a := &fedpb.RoundAssignment{Round: 3, GlobalVersion: 2, RemainingMs: 60_000}
	act := wantPhase(t, m.Step(Assigned{Assignment: a, Now: t0}), ClientFetching)
	if act.Assignment != a {
		t.Fatal("fetch action lost the assignment")
	}
	wantPhase(t, m.Step(Fetched{}), ClientTraining)
	wantPhase(t, m.Step(Trained{Now: t0.Add(time.Second)}), ClientUploading)
	act = wantPhase(t, m.Step(Uploaded{}), ClientPolling)
	if act.After != 3 || m.Rounds() != 1 {
		t.Fatalf("after upload: poll after %d, rounds %d", act.After, m.Rounds())
	}
	// An old round answered again is ignored.
	wantPhase(t, m.Step(Assigned{Assignment: a, Now: t0}), ClientPolling)
	a5 := &fedpb.RoundAssignment{Round: 5, RemainingMs: 1000}
	wantPhase(t, m.Step(Assigned{Assignment: a5, Now: t0}), ClientFetching)
	wantPhase(t, m.Step(Fetched{}), ClientTraining)
	wantPhase(t, m.Step(Trained{Now: t0}), ClientUploading)
	act = m.Step(Uploaded{})
	if act.Phase != ClientStopped || act.Err != nil {
		t.Fatalf("after the configured 2 rounds: %+v", act)
	}
}

func TestClientMachineFailures(t *testing.T) {
	m := NewClientMachine(0)
	m.Start()
	// Transient failures back off exponentially up to the cap, then reset.
	var last time.Duration
	for i := range 8 {
		act := wantPhase(t, m.Step(Failed{Class: Retry, Err: errors.New("unavailable")}), ClientJoining)
		if act.Backoff < last || act.Backoff > m.BackoffMax {
			t.Fatalf("retry %d: backoff %v after %v", i, act.Backoff, last)
		}
		last = act.Backoff
	}
	if last != m.BackoffMax {
		t.Fatalf("backoff stopped at %v, cap %v", last, m.BackoffMax)
	}
	wantPhase(t, m.Step(Joined{}), ClientPolling)
	a := &fedpb.RoundAssignment{Round: 1, RemainingMs: 60_000}
	m.Step(Assigned{Assignment: a, Now: t0})
	m.Step(Fetched{})
	wantPhase(t, m.Step(Trained{Now: t0}), ClientUploading)
	// The coordinator restarted while we uploaded: re-join, then retry the
	// same upload (it is idempotent on the coordinator).
	act := wantPhase(t, m.Step(Failed{Class: Retry, Err: errors.New("unavailable")}), ClientUploading)
	if act.Backoff != m.BackoffBase {
		t.Fatalf("first retry backoff %v", act.Backoff)
	}
	wantPhase(t, m.Step(Failed{Class: Rejoin, Err: errors.New("not joined")}), ClientJoining)
	act = wantPhase(t, m.Step(Joined{}), ClientUploading)
	if act.Assignment != a {
		t.Fatal("re-joined upload lost its assignment")
	}
	// A refusal skips the round; polling continues after it.
	act = wantPhase(t, m.Step(Failed{Class: SkipRound, Err: errors.New("late")}), ClientPolling)
	if act.After != 1 || act.Note == "" {
		t.Fatalf("skip: %+v", act)
	}
	// Training that ends after the local deadline skips the upload.
	m.Step(Assigned{Assignment: &fedpb.RoundAssignment{Round: 2, RemainingMs: 1000}, Now: t0})
	m.Step(Fetched{})
	act = wantPhase(t, m.Step(Trained{Now: t0.Add(time.Second)}), ClientPolling)
	if act.After != 2 {
		t.Fatalf("late training: %+v", act)
	}
	// The federation finished: stop without error; a fatal error stops with it.
	if act := m.Step(Failed{Class: Done, Err: errors.New("finished")}); act.Phase != ClientStopped || act.Err != nil {
		t.Fatalf("done: %+v", act)
	}
	m2 := NewClientMachine(0)
	m2.Start()
	boom := errors.New("bad certificate")
	if act := m2.Step(Failed{Class: Fatal, Err: boom}); act.Phase != ClientStopped || act.Err != boom {
		t.Fatalf("fatal: %+v", act)
	}
}
