package fed

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/fed/fedpb"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func testPolicy() Policy {
	return Policy{Rounds: 2, CohortSize: 3, Quorum: 2, RoundTimeout: time.Minute, Seed: 7,
		Train: &fedpb.RoundConfig{LocalEpochs: 1, BatchSize: 4, LearningRate: 1e-3, Bits: 8, Seed: 1}}
}

func header(m *CoordinatorMachine, client string, nonce byte) *fedpb.UploadHeader {
	st := m.State()
	return &fedpb.UploadHeader{Round: st.Round, Client: client, BaseVersion: st.GlobalVersion, Examples: 10,
		Size: 100, Digest: bytes.Repeat([]byte{nonce}, 32), Nonce: bytes.Repeat([]byte{nonce}, NonceSize)}
}

func receipt(h *fedpb.UploadHeader) Receipt {
	return Receipt{Client: h.Client, Examples: h.Examples, Nonce: h.Nonce, Digest: h.Digest}
}

func newTestMachine(t *testing.T, p Policy, clients ...string) *CoordinatorMachine {
	t.Helper()
	m, err := NewCoordinatorMachine(p, State{GlobalVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		m.Join(t0, c, 10, "cpu:1")
	}
	return m
}

func only[T Effect](t *testing.T, effects []Effect) T {
	t.Helper()
	if len(effects) != 1 {
		t.Fatalf("effects = %#v, want one %T", effects, *new(T))
	}
	e, ok := effects[0].(T)
	if !ok {
		t.Fatalf("effect = %#v, want %T", effects[0], *new(T))
	}
	return e
}

func TestRoundLifecycle(t *testing.T) {
	m := newTestMachine(t, testPolicy(), "c1", "c2")
	if e := m.Tick(t0); e != nil {
		t.Fatalf("round started with 2 of the 3 clients a cohort needs: %v", e)
	}
	m.Join(t0, "c3", 10, "")
	m.Join(t0, "c4", 10, "")
	sr := only[StartRound](t, m.Tick(t0))
	if sr.Round != 1 || len(sr.Cohort) != 3 || sr.Eligible != 4 || !sr.Deadline.Equal(t0.Add(time.Minute)) || sr.GlobalVersion != 1 {
		t.Fatalf("start = %+v", sr)
	}
	if !slices.IsSorted(sr.Cohort) {
		t.Fatalf("cohort %v not sorted", sr.Cohort)
	}
	if want := SelectCohort(7, 1, []string{"c1", "c2", "c3", "c4"}, 3); !slices.Equal(sr.Cohort, want) {
		t.Fatalf("cohort %v, SelectCohort says %v", sr.Cohort, want)
	}
	for i, c := range sr.Cohort {
		h := header(m, c, byte(i))
		if dup, ref := m.CheckUpload(t0.Add(time.Second), c, h); dup || ref != nil {
			t.Fatalf("upload of %s refused: %v", c, ref)
		}
		effects := m.Accept(t0.Add(time.Second), receipt(h))
		if i < 2 && effects != nil {
			t.Fatalf("uploads closed after %d of 3: %v", i+1, effects)
		}
		if i == 2 {
			agg := only[StartAggregation](t, effects)
			if agg.Round != 1 || agg.BaseVersion != 1 || len(agg.Uploads) != 3 {
				t.Fatalf("aggregation = %+v", agg)
			}
		}
	}
	if m.State().Phase != PhaseAggregating {
		t.Fatalf("phase %s", m.State().Phase)
	}
	if e := m.Tick(t0.Add(2 * time.Minute)); e != nil {
		t.Fatalf("tick during aggregation: %v", e)
	}
	pub := only[RoundPublished](t, m.Aggregated(1, 2, 0))
	if pub.Version != 2 || m.State().GlobalVersion != 2 || m.State().Published != 1 {
		t.Fatalf("published %+v, state %+v", pub, m.State())
	}
	sr2 := only[StartRound](t, m.Tick(t0.Add(3*time.Minute)))
	if sr2.Round != 2 || sr2.GlobalVersion != 2 {
		t.Fatalf("round 2 = %+v", sr2)
	}
	for _, c := range sr2.Cohort {
		m.Accept(t0, receipt(header(m, c, 1)))
	}
	only[RoundPublished](t, m.Aggregated(2, 3, 0))
	only[AllPublished](t, m.Tick(t0.Add(4*time.Minute)))
	if m.State().Phase != PhaseDone {
		t.Fatalf("phase %s after the last round", m.State().Phase)
	}
	// Restarted with more rounds to run, the federation continues.
	more := testPolicy()
	more.Rounds = 3
	m2, err := NewCoordinatorMachine(more, m.State())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"c1", "c2", "c3"} {
		m2.Join(t0, c, 10, "")
	}
	if sr := only[StartRound](t, m2.Tick(t0)); sr.Round != 3 || sr.GlobalVersion != 3 {
		t.Fatalf("continued round: %+v", sr)
	}
}

func TestDeadlineQuorum(t *testing.T) {
	for _, uploads := range []int{0, 1, 2} {
		t.Run(fmt.Sprint(uploads), func(t *testing.T) {
			m := newTestMachine(t, testPolicy(), "a", "b", "c")
			sr := only[StartRound](t, m.Tick(t0))
			for _, c := range sr.Cohort[:uploads] {
				m.Accept(t0, receipt(header(m, c, 1)))
			}
			if e := m.Tick(sr.Deadline.Add(-time.Millisecond)); e != nil {
				t.Fatalf("closed before the deadline: %v", e)
			}
			effects := m.Tick(sr.Deadline)
			if uploads >= 2 {
				if agg := only[StartAggregation](t, effects); len(agg.Uploads) != uploads {
					t.Fatalf("aggregating %d uploads, want %d", len(agg.Uploads), uploads)
				}
				return
			}
			ab := only[RoundAbandoned](t, effects)
			if ab.Round != 1 || m.State().Phase != PhaseIdle || m.State().GlobalVersion != 1 || len(m.State().Accepted) != 0 {
				t.Fatalf("abandoned %+v, state %+v", ab, m.State())
			}
			// The next round gets a new number: uploads for the abandoned one are late.
			sr2 := only[StartRound](t, m.Tick(sr.Deadline))
			if sr2.Round != 2 {
				t.Fatalf("next round %d", sr2.Round)
			}
		})
	}
}

func TestMemberDownClosesRoundAtQuorum(t *testing.T) {
	m := newTestMachine(t, testPolicy(), "a", "b", "c")
	sr := only[StartRound](t, m.Tick(t0))
	m.Accept(t0, receipt(header(m, sr.Cohort[0], 1)))
	if e := m.MemberDown(t0, sr.Cohort[2]); e != nil {
		t.Fatalf("closed with 1 upload and 1 live member left: %v", e)
	}
	agg := only[StartAggregation](t, m.Accept(t0, receipt(header(m, sr.Cohort[1], 2))))
	if len(agg.Uploads) != 2 {
		t.Fatalf("aggregating %d uploads", len(agg.Uploads))
	}
}

func TestCheckUploadRefusals(t *testing.T) {
	m := newTestMachine(t, Policy{CohortSize: 2, RoundTimeout: time.Minute, Train: testPolicy().Train}, "a", "b", "c")
	sr := only[StartRound](t, m.Tick(t0))
	in, out := sr.Cohort[0], ""
	for _, c := range []string{"a", "b", "c"} {
		if !slices.Contains(sr.Cohort, c) {
			out = c
		}
	}
	ok := header(m, in, 1)
	m.Accept(t0, receipt(ok))
	mod := func(f func(h *fedpb.UploadHeader)) *fedpb.UploadHeader {
		h := header(m, sr.Cohort[1], 2)
		f(h)
		return h
	}
	cases := []struct {
		name   string
		caller string
		h      *fedpb.UploadHeader
		now    time.Time
		kind   RefusalKind
		reason string
	}{
		{"identity", sr.Cohort[1], mod(func(h *fedpb.UploadHeader) { h.Client = in }), t0, RefuseDenied, "identity"},
		{"future round", sr.Cohort[1], mod(func(h *fedpb.UploadHeader) { h.Round = 2 }), t0, RefuseNotNow, "wrong_round"},
		{"round zero", sr.Cohort[1], mod(func(h *fedpb.UploadHeader) { h.Round = 0 }), t0, RefuseNotNow, "wrong_round"},
		{"duplicate", in, header(m, in, 3), t0, RefuseDuplicate, "duplicate"},
		{"after deadline", sr.Cohort[1], mod(func(*fedpb.UploadHeader) {}), sr.Deadline, RefuseLate, "late"},
		{"not in cohort", out, func() *fedpb.UploadHeader { h := header(m, out, 4); return h }(), t0, RefuseDenied, "not_in_cohort"},
		{"stale base", sr.Cohort[1], mod(func(h *fedpb.UploadHeader) { h.BaseVersion = 0 }), t0, RefuseNotNow, "stale_base"},
		{"no examples", sr.Cohort[1], mod(func(h *fedpb.UploadHeader) { h.Examples = 0 }), t0, RefuseInvalid, "bad_header"},
		{"short digest", sr.Cohort[1], mod(func(h *fedpb.UploadHeader) { h.Digest = h.Digest[:31] }), t0, RefuseInvalid, "bad_header"},
		{"short nonce", sr.Cohort[1], mod(func(h *fedpb.UploadHeader) { h.Nonce = nil }), t0, RefuseInvalid, "bad_header"},
		{"weight 2^63-1", sr.Cohort[1], mod(func(h *fedpb.UploadHeader) { h.Examples = math.MaxInt64 }), t0, RefuseInvalid, "bad_header"},
		{"infinite loss", sr.Cohort[1], mod(func(h *fedpb.UploadHeader) { h.TrainLoss = math.Inf(1) }), t0, RefuseInvalid, "bad_header"},
		{"accuracy -0.5", sr.Cohort[1], mod(func(h *fedpb.UploadHeader) { h.ValAccuracy = -0.5 }), t0, RefuseInvalid, "bad_header"},
	}
	for _, c := range cases {
		dup, ref := m.CheckUpload(c.now, c.caller, c.h)
		if dup || ref == nil || ref.Kind != c.kind || ref.Reason != c.reason {
			t.Errorf("%s: dup=%v refusal=%+v, want %v/%s", c.name, dup, ref, c.kind, c.reason)
		}
	}
	// A retry of the accepted upload (same nonce and digest) is recognized.
	if dup, ref := m.CheckUpload(t0, in, ok); !dup || ref != nil {
		t.Fatalf("retry of an accepted upload: dup=%v refusal=%v", dup, ref)
	}
	// Uploads for a finished round are late.
	only[StartAggregation](t, m.Accept(t0, receipt(header(m, sr.Cohort[1], 2))))
	only[RoundPublished](t, m.Aggregated(1, 2, 0))
	// Published but the next round not started: a retry whose receipt was
	// lost is still recognised, anything else for round 1 is refused.
	if dup, ref := m.CheckUpload(t0, in, ok); !dup || ref != nil {
		t.Fatalf("retry of an accepted upload after publication: dup=%v refusal=%v", dup, ref)
	}
	if dup, ref := m.CheckUpload(t0, in, header(m, in, 5)); dup || ref == nil || ref.Reason != "duplicate" {
		t.Fatalf("another upload after publication: dup=%v refusal=%v", dup, ref)
	}
	only[StartRound](t, m.Tick(t0))
	if dup, ref := m.CheckUpload(t0, in, ok); dup || ref == nil || ref.Reason != "late" {
		t.Fatalf("retry of round 1's upload during round 2: dup=%v refusal=%v", dup, ref)
	}
	if _, ref := m.CheckUpload(t0, in, &fedpb.UploadHeader{Round: 1, Client: in}); ref == nil || ref.Reason != "late" {
		t.Fatalf("upload for round 1 during round 2: %v", ref)
	}
}

// TestStartClients: the first round waits for StartClients eligible
// clients even though MinClients would do; later rounds need only
// MinClients.
func TestStartClients(t *testing.T) {
	p := testPolicy()
	p.CohortSize, p.Fraction, p.MinClients, p.StartClients, p.Quorum = 0, 1, 2, 3, 2
	m := newTestMachine(t, p, "a", "b")
	if e := m.Tick(t0); len(e) != 0 {
		t.Fatalf("first round started with 2 of the 3 start clients: %#v", e)
	}
	m.Join(t0, "c", 10, "cpu:1")
	sr := only[StartRound](t, m.Tick(t0))
	if !slices.Equal(sr.Cohort, []string{"a", "b", "c"}) {
		t.Fatalf("first cohort %v", sr.Cohort)
	}
	m.MemberDown(t0, "c")
	m.Accept(t0, receipt(header(m, "a", 'a')))
	only[StartAggregation](t, m.Accept(t0, receipt(header(m, "b", 'b'))))
	only[RoundPublished](t, m.Aggregated(1, 2, 0))
	sr = only[StartRound](t, m.Tick(t0))
	if !slices.Equal(sr.Cohort, []string{"a", "b"}) {
		t.Fatalf("second round with 2 live clients (min 2): cohort %v", sr.Cohort)
	}
	p.StartClients = -1
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "start clients") {
		t.Fatalf("start clients -1: %v", err)
	}
}

// TestMinClientsBelowCohort: a cohort of 3 with min_clients 2 starts a round
// with the 2 clients there, whose quorum is capped at 2; without min_clients
// it waits for the third.
func TestMinClientsBelowCohort(t *testing.T) {
	p := testPolicy()
	p.CohortSize, p.Quorum = 3, 3
	if e := newTestMachine(t, p, "a", "b").Tick(t0); len(e) != 0 {
		t.Fatalf("round started with 2 of a cohort of 3 and no min_clients: %#v", e)
	}
	p.MinClients = 2
	m := newTestMachine(t, p, "a")
	if e := m.Tick(t0); len(e) != 0 {
		t.Fatalf("round started with 1 client, min 2: %#v", e)
	}
	m.Join(t0, "b", 10, "cpu:1")
	sr := only[StartRound](t, m.Tick(t0))
	if !slices.Equal(sr.Cohort, []string{"a", "b"}) {
		t.Fatalf("cohort %v, want [a b]", sr.Cohort)
	}
	m.Accept(t0, receipt(header(m, "a", 'a')))
	only[StartAggregation](t, m.Accept(t0, receipt(header(m, "b", 'b'))))
}

func TestFractionCohortAndSeed(t *testing.T) {
	p := testPolicy()
	p.CohortSize, p.Fraction, p.Quorum = 0, 0.3, 0
	var names []string
	for i := range 10 {
		names = append(names, fmt.Sprintf("c%02d", i))
	}
	m := newTestMachine(t, p, names...)
	sr := only[StartRound](t, m.Tick(t0))
	if len(sr.Cohort) != 3 {
		t.Fatalf("cohort of %d from 10 at fraction 0.3", len(sr.Cohort))
	}
	// Same seed, same round, same members: same cohort; another round: usually another.
	if again := SelectCohort(p.Seed, 1, names, 3); !slices.Equal(again, sr.Cohort) {
		t.Fatalf("cohort not reproducible: %v vs %v", again, sr.Cohort)
	}
	differ := false
	for r := uint64(2); r < 10; r++ {
		differ = differ || !slices.Equal(SelectCohort(p.Seed, r, names, 3), sr.Cohort)
	}
	if !differ {
		t.Fatal("every round selected the same cohort")
	}
}

func TestStateRoundTripAndRestore(t *testing.T) {
	m := newTestMachine(t, testPolicy(), "a", "b", "c")
	sr := only[StartRound](t, m.Tick(t0))
	m.Accept(t0, receipt(header(m, sr.Cohort[0], 1)))
	st := m.State()
	b, err := MarshalState(st)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalState(b)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := NewCoordinatorMachine(testPolicy(), back)
	if err != nil {
		t.Fatal(err)
	}
	// The restarted machine refuses the accepted client's second upload and
	// closes the round at the deadline with the quorum it persisted.
	if _, ref := m2.CheckUpload(t0, sr.Cohort[0], header(m2, sr.Cohort[0], 9)); ref == nil || ref.Kind != RefuseDuplicate {
		t.Fatalf("after restart, second upload: %v", ref)
	}
	m2.Accept(t0, receipt(header(m2, sr.Cohort[1], 2)))
	only[StartAggregation](t, m2.Tick(sr.Deadline))

	m.Advance()
	m.Accept(t0, receipt(header(m, sr.Cohort[1], 2)))
	if _, persist := m.Ready(); !persist {
		t.Fatal("an accepted upload did not ask to be persisted")
	}
	m.Rollback()
	if len(m.State().Accepted) != 1 {
		t.Fatalf("Rollback left %d accepted", len(m.State().Accepted))
	}
	for _, bad := range []string{`{"phase":"weird"}`, `{"phase":"idle","cohort":["b","a"]}`,
		`{"phase":"collecting","cohort":["a"],"accepted":[{"client":"z"}]}`, `{"phase":"idle","extra":1}`, `[`} {
		if _, err := UnmarshalState([]byte(bad)); err == nil {
			t.Errorf("UnmarshalState(%s) accepted", bad)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	bad := []func(p *Policy){
		func(p *Policy) { p.CohortSize, p.Fraction = 0, 0 },
		func(p *Policy) { p.CohortSize, p.Fraction = 0, 1.5 },
		func(p *Policy) { p.Quorum = 4 },
		func(p *Policy) { p.RoundTimeout = 0 },
		func(p *Policy) { p.Train = nil },
		func(p *Policy) { p.Train.Bits = 5 },
		func(p *Policy) { p.Train.LearningRate = 0 },
		func(p *Policy) { p.Train.LocalEpochs = 0 },
		func(p *Policy) { p.Rounds = -1 },
	}
	for i, f := range bad {
		p := testPolicy()
		p.Train = proto.Clone(p.Train).(*fedpb.RoundConfig)
		f(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("case %d: invalid policy accepted", i)
		}
	}
	if err := testPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
}

func FuzzUnmarshalState(f *testing.F) {
	m, _ := NewCoordinatorMachine(testPolicy(), State{GlobalVersion: 1})
	for _, c := range []string{"a", "b", "c"} {
		m.Join(t0, c, 1, "")
	}
	m.Tick(t0)
	b, _ := MarshalState(m.State())
	f.Add(b)
	f.Add([]byte(`{"phase":"idle"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := UnmarshalState(data)
		if err != nil {
			return
		}
		if _, err := NewCoordinatorMachine(testPolicy(), st); err != nil {
			t.Fatal(err)
		}
	})
}

// TestReadyMarksEveryChange drives the machine with random joins, ticks,
// member failures, uploads, exclusions and aggregation outcomes, with DP
// accounting on, and checks after every event that Ready asks to persist
// exactly when the durable state (as stored, JSON) differs from the last
// persisted one — so no transition can forget to mark its change, and no
// tick rewrites an unchanged state. Rollback restores the persisted state.
func TestReadyMarksEveryChange(t *testing.T) {
	p := testPolicy()
	p.Rounds = 0
	p.DP = &DPPolicy{Clip: 1, Noise: 1, Delta: 1e-5, Epsilon: 50}
	m := newTestMachine(t, p)
	rng := uint64(12345)
	next := func(n int) int { // a small deterministic generator
		rng = rng*6364136223846793005 + 1442695040888963407
		return int((rng >> 33) % uint64(n))
	}
	stable, _ := MarshalState(m.State())
	now := t0
	names := []string{"a", "b", "c", "d", "e"}
	for step := 0; step < 3000; step++ {
		st := m.State()
		name := names[next(len(names))]
		switch next(8) {
		case 0:
			m.Join(now, name, int64(1+next(20)), "")
		case 1:
			now = now.Add(time.Duration(next(90)) * time.Second)
			m.Tick(now)
		case 2:
			m.MemberDown(now, name)
		case 3, 4:
			if st.Phase == PhaseCollecting {
				h := header(m, name, byte(step))
				if dup, ref := m.CheckUpload(now, name, h); ref == nil && !dup {
					m.Accept(now, receipt(h))
				}
			}
		case 5:
			m.Exclude(now, st.Round, []string{name})
		case 6:
			if next(4) == 0 {
				m.AggregationFailed(st.Round, "test")
			} else {
				m.Aggregated(st.Round, st.GlobalVersion+1, 0.5+float64(next(10))/10)
			}
		case 7:
			m.Seen(now, name)
		}
		cur, persist := m.Ready()
		b, _ := MarshalState(cur)
		if changed := !bytes.Equal(b, stable); persist != changed {
			t.Fatalf("step %d: Ready says persist=%v but the state changed=%v\n%s\n%s", step, persist, changed, stable, b)
		}
		if next(10) == 0 {
			m.Rollback()
			if b, _ := MarshalState(m.State()); !bytes.Equal(b, stable) {
				t.Fatalf("step %d: Rollback did not restore the persisted state", step)
			}
			continue
		}
		m.Advance()
		stable = b
	}
}

// TestLeaseDropsSilentClients: without gossip, a client that joined and
// went quiet is not selected once its lease has run out, so no round waits
// out a deadline for it; polling again makes it selectable again.
func TestLeaseDropsSilentClients(t *testing.T) {
	p := testPolicy()
	p.CohortSize, p.Quorum, p.Lease = 2, 2, 5*time.Minute
	m := newTestMachine(t, p, "a", "b")
	later := t0.Add(6 * time.Minute)
	m.Seen(later, "a") // a polls, b has not been heard from since it joined
	if e := m.Tick(later); e != nil {
		t.Fatalf("a round started with b, silent for 6 minutes, selectable: %v", e)
	}
	m.Seen(later, "b")
	if sr := only[StartRound](t, m.Tick(later)); len(sr.Cohort) != 2 {
		t.Fatalf("cohort %v", sr.Cohort)
	}
	if got := (Policy{RoundTimeout: time.Minute, Lease: -1}).lease(); got != 0 {
		t.Errorf("a negative lease is none: %v", got)
	}
}

// TestLeaseClosesRoundAtQuorum: a cohort member silent for longer than the
// lease is not waited for: once the quorum has uploaded, the round closes
// at that tick, not at the deadline. A member that keeps calling in
// (heartbeats while it trains) is waited for.
func TestLeaseClosesRoundAtQuorum(t *testing.T) {
	p := testPolicy()
	p.CohortSize, p.Quorum, p.Lease, p.RoundTimeout = 3, 2, 30*time.Second, 5*time.Minute
	for _, heartbeat := range []bool{false, true} {
		m := newTestMachine(t, p, "a", "b", "c")
		only[StartRound](t, m.Tick(t0))
		at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
		m.Accept(at(10), receipt(header(m, "a", 'a')))
		if e := m.Accept(at(12), receipt(header(m, "b", 'b'))); len(e) != 0 {
			t.Fatalf("closed with c inside its lease: %#v", e)
		}
		if e := m.Tick(at(20)); len(e) != 0 {
			t.Fatalf("closed at 20 s with c silent for 20 s of a 30 s lease: %#v", e)
		}
		if heartbeat {
			m.Seen(at(25), "c")
		}
		e := m.Tick(at(31))
		if heartbeat {
			if len(e) != 0 {
				t.Fatalf("closed while c heartbeats: %#v", e)
			}
			continue
		}
		if sa := only[StartAggregation](t, e); len(sa.Uploads) != 2 {
			t.Fatalf("aggregating %d uploads, want a's and b's", len(sa.Uploads))
		}
	}
}

// TestRefusedUploadClosesRoundAtQuorum: a live cohort member whose upload
// was refused for its content is not waited for once the quorum is in;
// before the quorum it changes nothing, it may still send a valid upload,
// and the mark survives a restart (it is state) but not the round.
func TestRefusedUploadClosesRoundAtQuorum(t *testing.T) {
	p := testPolicy()
	p.CohortSize, p.Quorum, p.RoundTimeout = 3, 2, 5*time.Minute
	m := newTestMachine(t, p, "a", "b", "c")
	only[StartRound](t, m.Tick(t0))
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	if e := m.RefusedUpload(at(1), 1, "c"); len(e) != 0 {
		t.Fatalf("closed before the quorum: %#v", e)
	}
	m.Advance()
	raw, _ := MarshalState(m.State())
	st, err := UnmarshalState(raw)
	if err != nil || !slices.Equal(st.Refused, []string{"c"}) {
		t.Fatalf("refused members after a restart: %v, %v", st.Refused, err)
	}
	m.Accept(at(2), receipt(header(m, "a", 'a')))
	sa := only[StartAggregation](t, m.Accept(at(3), receipt(header(m, "b", 'b'))))
	if len(sa.Uploads) != 2 {
		t.Fatalf("aggregating %d uploads", len(sa.Uploads))
	}
	m.Aggregated(1, 2, 0)
	if st := m.State(); len(st.Refused) != 0 {
		t.Fatalf("refused members outlive their round: %v", st.Refused)
	}

	// A refused member that then sends a valid upload is accepted, and a
	// member not in the cohort, or a refusal for another round, is ignored.
	m = newTestMachine(t, p, "a", "b", "c")
	only[StartRound](t, m.Tick(t0))
	m.RefusedUpload(at(1), 1, "c")
	m.RefusedUpload(at(1), 1, "z")
	m.RefusedUpload(at(1), 7, "b")
	if st := m.State(); !slices.Equal(st.Refused, []string{"c"}) {
		t.Fatalf("refused: %v", st.Refused)
	}
	if _, ref := m.CheckUpload(at(2), "c", header(m, "c", 'c')); ref != nil {
		t.Fatalf("a refused member's valid upload: %v", ref)
	}
	m.Accept(at(2), receipt(header(m, "c", 'c')))
	if e := m.Accept(at(3), receipt(header(m, "a", 'a'))); len(e) != 0 {
		t.Fatalf("closed with b live and pending: %#v", e)
	}
}

// TestRestartWaitsForMembersToRejoin: a restarted coordinator's first
// round waits until as many clients as the last round drew from are back,
// or RejoinGrace has passed; a new federation does not wait.
func TestRestartWaitsForMembersToRejoin(t *testing.T) {
	p := testPolicy()
	p.Rounds, p.CohortSize, p.Quorum, p.MinClients, p.RejoinGrace = 10, 0, 1, 1, 10*time.Second
	p.Fraction = 1
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	stored := State{Round: 3, Phase: PhaseIdle, GlobalVersion: 4, Published: 3, Eligible: 3}

	m, _ := NewCoordinatorMachine(p, stored)
	m.Join(at(0), "a", 10, "")
	if e := m.Tick(at(0)); e != nil {
		t.Fatalf("a round started with 1 of the 3 clients back, at once: %#v", e)
	}
	m.Join(at(1), "b", 10, "")
	if e := m.Tick(at(1)); e != nil {
		t.Fatalf("a round started with 2 of 3 back: %#v", e)
	}
	m.Join(at(2), "c", 10, "")
	if sr := only[StartRound](t, m.Tick(at(2))); sr.Round != 4 || len(sr.Cohort) != 3 {
		t.Fatalf("with all three back: %+v", sr)
	}

	m, _ = NewCoordinatorMachine(p, stored)
	m.Join(at(0), "a", 10, "")
	m.Tick(at(0))
	if e := m.Tick(at(9)); e != nil {
		t.Fatalf("started within the grace: %#v", e)
	}
	if sr := only[StartRound](t, m.Tick(at(10))); len(sr.Cohort) != 1 {
		t.Fatalf("after the grace: %+v", sr)
	}

	m, _ = NewCoordinatorMachine(p, State{GlobalVersion: 1})
	m.Join(at(0), "a", 10, "")
	only[StartRound](t, m.Tick(at(0)))
}
