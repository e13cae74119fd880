package fed

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/secure"
	"github.com/kronfed/kronfed/secure/secagg"
)

// checkMoved asserts that every tensor of the published adapter moved from
// the initial one by want, within tol.
func checkMoved(t *testing.T, f *testFed, want, tol float64) {
	t.Helper()
	got, _ := f.srv.GlobalAdapter()
	init := f.initial.Params()
	worst := 0.0
	for k, g := range got.Params() {
		for i := range g.Data {
			worst = math.Max(worst, math.Abs(float64(g.Data[i])-float64(init[k].Data[i])-want))
		}
	}
	if worst > tol {
		t.Fatalf("published adapter is off the expected move %.5g by %.3g (tolerance %.3g)", want, worst, tol)
	}
}

func weightedMean(shifts []float32, examples []int) float64 {
	s, w := 0.0, 0.0
	for i := range shifts {
		s += float64(shifts[i]) * float64(examples[i])
		w += float64(examples[i])
	}
	return s / w
}

// TestSecAggRoundsInMemory runs two secure-aggregation rounds with four
// clients and checks the published adapter against the weighted mean of the
// clients' known updates (within the common 8-bit grid's rounding), that
// the coordinator's store holds only masked inputs, and what status and
// results report.
func TestSecAggRoundsInMemory(t *testing.T) {
	p := testPolicy()
	p.CohortSize, p.Quorum = 4, 3
	p.SecAgg = &SecAggPolicy{Range: 0.1}
	f := newTestFed(t, p, 0)
	defer f.st.Close()
	shifts := []float32{0.01, -0.02, 0.04, 0.03}
	examples := []int{10, 30, 60, 20}
	var clients []*testClient
	for i := range shifts {
		clients = append(clients, f.client(t, fmt.Sprintf("c%d", i), shifts[i], examples[i], p.Rounds))
	}
	serr, cerrs := runAll(t, context.Background(), f.srv, clients...)
	if serr != nil {
		t.Fatalf("server: %v", serr)
	}
	for i, err := range cerrs {
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	// Stochastic rounding on [−0.1, 0.1] at 8 bits: each client's error is
	// under one step 0.2/255 per round, and so is their weighted mean.
	checkMoved(t, f, 2*weightedMean(shifts, examples), 2*0.2/255)

	st := f.srv.Status()
	if !st.SecureAggregation || len(st.Results) != 2 {
		t.Fatalf("status: secure aggregation %v, results %v", st.SecureAggregation, st.Results)
	}
	r := st.Results[1]
	if r.Outcome != "published" || r.Survivors != 4 || !strings.HasPrefix(r.SecureAggregation, "secagg+ X25519") || r.Examples != 120 {
		t.Fatalf("round 2 result: %v", r)
	}
	// The store holds the masked inputs, age-encrypted: decrypted, each is
	// a secagg.MaskedInput of ⌈L·M/8⌉ bytes, M = 8 + ⌈log2 120⌉ = 15, and
	// not an adapter file.
	clientsOf, err := f.st.UploadClients(2)
	if err != nil || len(clientsOf) != 4 {
		t.Fatalf("round 2 uploads %v, %v", clientsOf, err)
	}
	rec, err := f.st.Upload(2, clientsOf[0])
	if err != nil {
		t.Fatal(err)
	}
	var su fedpb.StoredUpload
	if err := proto.Unmarshal(rec, &su); err != nil {
		t.Fatal(err)
	}
	plain, err := secure.Decrypt(f.identity, su.Ciphertext, 1<<24)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := DecodeAdapter(plain); err == nil {
		t.Fatal("a stored upload decodes as an adapter: the coordinator saw an unmasked update")
	}
	var mi secagg.MaskedInput
	if err := mi.UnmarshalBinary(plain); err != nil {
		t.Fatalf("stored upload is not a masked input: %v", err)
	}
	n := secAggVectorLen(f.initial, false)
	if want := (n*15 + 7) / 8; len(mi.Data) != want || mi.Round != 2 {
		t.Fatalf("masked input: round %d, %d bytes, want round 2 and %d bytes (%d values at 15 bits)", mi.Round, len(mi.Data), want, n)
	}
}

// TestSecAggDropout: one client completes the key exchange and never
// uploads; once it is known down the round closes, its pairwise masks are
// reconstructed from its neighbours' shares and removed, and the result is
// the survivors' weighted mean.
func TestSecAggDropout(t *testing.T) {
	p := testPolicy()
	p.Rounds, p.CohortSize, p.Quorum = 1, 5, 3
	p.SecAgg = &SecAggPolicy{Range: 0.1}
	f := newTestFed(t, p, 0)
	defer f.st.Close()
	shifts := []float32{0.01, -0.02, 0.04, 0.03, 0.05}
	examples := []int{10, 30, 60, 20, 40}
	var clients []*testClient
	for i := range shifts {
		clients = append(clients, f.client(t, fmt.Sprintf("c%d", i), shifts[i], examples[i], 1))
	}
	stuck := clients[4]
	stuck.tr.Block = make(chan struct{}) // trains forever
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range clients {
		go c.c.Run(ctx)
	}
	go func() {
		for ctx.Err() == nil {
			if st := f.srv.Status(); len(st.Accepted) == 4 {
				f.srv.MemberDown(stuck.name)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if err := f.srv.Run(ctx); err != nil {
		t.Fatalf("server: %v", err)
	}
	cancel()
	r := f.srv.Status().Results[0]
	if r.Outcome != "published" || r.Survivors != 4 {
		t.Fatalf("result: %v", r)
	}
	checkMoved(t, f, weightedMean(shifts[:4], examples[:4]), 0.2/255)
}

// TestSecAggTooFewSurvivors: with threshold 3 and two of four clients
// never uploading, the quorum of 2 is met at the deadline but the secure
// sum cannot be unmasked: the round is abandoned and nothing is published.
func TestSecAggTooFewSurvivors(t *testing.T) {
	p := testPolicy()
	p.Rounds, p.CohortSize, p.Quorum, p.RoundTimeout = 1, 4, 2, 1500*time.Millisecond
	p.SecAgg = &SecAggPolicy{Range: 0.1, Neighbours: 3, Threshold: 3}
	f := newTestFed(t, p, 0)
	defer f.st.Close()
	var clients []*testClient
	for i := range 4 {
		c := f.client(t, fmt.Sprintf("c%d", i), 0.01, 10, 1)
		if i >= 2 {
			c.tr.Block = make(chan struct{})
		}
		clients = append(clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range clients {
		go c.c.Run(ctx)
	}
	go f.srv.Run(ctx)
	var r *fedpb.RoundResult
	for ctx.Err() == nil && r == nil {
		if st := f.srv.Status(); len(st.Results) > 0 {
			r = st.Results[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if r == nil || !strings.HasPrefix(r.Outcome, "abandoned") || !strings.Contains(r.Outcome, "threshold 3") {
		t.Fatalf("result: %v", r)
	}
	if _, v := f.srv.GlobalAdapter(); v != 1 {
		t.Fatalf("global version %d: a round without enough survivors published", v)
	}
}

// TestSecAggDPRound: DP-FedAvg over secure aggregation. Clients clip their
// own updates and send their clipping bit as one more secure coordinate;
// the coordinator noises the unmasked sum over the cohort size.
func TestSecAggDPRound(t *testing.T) {
	p := testPolicy()
	p.Rounds, p.CohortSize, p.Quorum = 1, 3, 3
	p.DP = &DPPolicy{Clip: 10, Noise: 1e-6, Delta: 1e-5, SeededNoise: true, Seed: 4, Adaptive: true}
	p.SecAgg = &SecAggPolicy{Range: 0.1}
	f := newTestFed(t, p, 0)
	defer f.st.Close()
	shifts := []float32{0.01, -0.02, 0.04}
	var clients []*testClient
	for i, s := range shifts {
		clients = append(clients, f.client(t, fmt.Sprintf("c%d", i), s, 10*(i+1), 1))
	}
	serr, cerrs := runAll(t, context.Background(), f.srv, clients...)
	if serr != nil || cerrs[0] != nil || cerrs[1] != nil || cerrs[2] != nil {
		t.Fatalf("%v %v", serr, cerrs)
	}
	st := f.srv.Status()
	r := st.Results[0]
	if !(st.Epsilon > 0) || r.Clip != 10 || r.Survivors != 3 {
		t.Fatalf("DP over secure aggregation: status ε %v, result %v", st.Epsilon, r)
	}
	// Every update's norm is far below C = 10, so all three are unclipped
	// and adaptive clipping (γ = 0.5, η = 0.2) shrinks C: 10·e^(−0.2·0.5).
	if got := f.srv.m.State().Clip; math.Abs(got-10*math.Exp(-0.1)) > 0.05 {
		t.Fatalf("next clip %v, want about %v (all clients unclipped)", got, 10*math.Exp(-0.1))
	}
	checkMoved(t, f, float64(shifts[0]+shifts[1]+shifts[2])/3, 0.2/255+1e-5)
}

func TestSecAggRestartAbandonsRound(t *testing.T) {
	p := testPolicy()
	p.SecAgg = &SecAggPolicy{}
	m, err := NewCoordinatorMachine(p, State{Round: 3, Phase: PhaseCollecting, Cohort: []string{"a", "b", "c"}, GlobalVersion: 2})
	if err != nil {
		t.Fatal(err)
	}
	eff := m.Resume()
	if len(eff) != 1 {
		t.Fatalf("effects %v", eff)
	}
	if ab, ok := eff[0].(RoundAbandoned); !ok || ab.Round != 3 || !strings.Contains(ab.Reason, "restarted") {
		t.Fatalf("effect %#v", eff[0])
	}
	if m.State().Phase != PhaseIdle {
		t.Fatalf("phase %s", m.State().Phase)
	}
}

func TestSecAggPolicyRefusals(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Policy)
		want string
	}{
		{func(p *Policy) { p.Train.Bits = 32 }, "upload bits 32"},
		{func(p *Policy) { p.CohortSize, p.Quorum = 2, 2 }, "at least 3"},
		{func(p *Policy) { p.SecAgg.Range = -1 }, "range -1"},
		{func(p *Policy) { p.SecAgg.Neighbours = -2 }, "neighbours -2"},
		{func(p *Policy) { p.DP = &DPPolicy{Clip: 1, Noise: 1, Delta: 1e-5, Local: true} }, "use central DP with secure aggregation"},
		{func(p *Policy) {
			p.SecAgg, p.DP = nil, &DPPolicy{Clip: 1, Noise: 1, Delta: 1e-5, Local: true, Adaptive: true}
		}, "local DP uses a fixed clip"},
	} {
		p := testPolicy()
		p.SecAgg = &SecAggPolicy{}
		tc.mod(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error with %q, got %v", tc.want, err)
		}
	}
	p := testPolicy()
	p.SecAgg = &SecAggPolicy{}
	f := newTestFed(t, testPolicy(), 0)
	defer f.st.Close()
	_, err := NewServer(ServerConfig{Policy: p, Rule: Rule{Name: "median"}, Store: f.st, Identity: f.identity, Signer: f.signer})
	if err == nil || !strings.Contains(err.Error(), "use fedavg") {
		t.Fatalf("median with secure aggregation: %v", err)
	}
}
