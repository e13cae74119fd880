package fed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate"
	"github.com/kronfed/kronfed/fed/fedpb"
)

// ownShapeTrainer is a client of its own adapter shape: every round it
// returns the same adapter of its rank and dA2 (deterministic), so the
// published global is known.
type ownShapeTrainer struct {
	own      *adapter.Set
	examples int
}

func (o *ownShapeTrainer) Train(ctx context.Context, local *adapter.Set, rc *fedpb.RoundConfig) (TrainStats, error) {
	return TrainStats{}, errors.New("a client of its own shape trains with TrainOwn")
}

func (o *ownShapeTrainer) TrainOwn(ctx context.Context, global *adapter.Set, rc *fedpb.RoundConfig) (*adapter.Set, TrainStats, error) {
	return o.own.Clone(), TrainStats{Examples: o.examples, Loss: 1, Accuracy: 0.5}, nil
}

// TestHeteroRoundsInMemory: clients of ranks 2, 4, 3 and dA2 2, 4, 8 in one
// federation under hetero-exact, float32 uploads: the published global is
// HeteroExact of their adapters (to float32 rounding of the coordinator's
// own arithmetic: exactly), of the global's shape, and the replay recomputes
// it. A client of its own shape is refused under a rule that takes changes.
func TestHeteroRoundsInMemory(t *testing.T) {
	p := testPolicy()
	p.Rounds, p.Train.Bits = 1, 32
	f := newTestFed(t, p, 0)
	f.rule = Rule{Name: "hetero-exact"}
	f.st.Close()
	f.open(t)
	defer f.st.Close()
	shapes := [][2]int{{2, 2}, {4, 4}, {3, 8}}
	examples := []int{10, 30, 60}
	var clients []*testClient
	var ws []aggregate.Weighted
	for i, sh := range shapes {
		c := f.client(t, fmt.Sprintf("c%d", i), 0, examples[i], p.Rounds)
		own := shapedSet(t, f.initial, sh[0], sh[1])
		scaleParams(own, float32(i+1))
		c.c.cfg.Trainer = &ownShapeTrainer{own: own, examples: examples[i]}
		clients = append(clients, c)
		ws = append(ws, aggregate.Weighted{Set: own, Weight: float64(examples[i])})
	}
	if serr, cerrs := runAll(t, context.Background(), f.srv, clients...); serr != nil || errors.Join(cerrs...) != nil {
		t.Fatalf("rounds: %v %v", serr, cerrs)
	}
	want, _, err := aggregate.HeteroExact(ws, f.initial)
	if err != nil {
		t.Fatal(err)
	}
	got, version := f.srv.GlobalAdapter()
	if version != 2 || got.Config != f.initial.Config {
		t.Fatalf("version %d, config %v", version, got.Config)
	}
	if d := adapter.MaxAbsDiff(want, got); d != 0 {
		t.Fatalf("published global is %g from HeteroExact of the clients' adapters", d)
	}
	if r := f.srv.Status().Results[0]; r.Outcome != "published" || !(r.AggregationError > 0) || len(r.Clients) != 3 {
		t.Fatalf("result %+v", r)
	}
	rp, err := ReplayRound(f.st, f.identity, p, f.rule, 1)
	if err != nil || !rp.Equal {
		t.Fatalf("replay: %+v, %v", rp, err)
	}

	// A whole adapter sent to a federation that takes changes, and a change
	// sent to one that takes whole adapters, are refused, naming why.
	own := shapedSet(t, f.initial, 2, 2)
	whole, err := EncodeWhole(f.initial, own, 1, "c0", 1, 32, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeUpdate(whole, f.initial, 1, "c0", 1, 32, false); err == nil || !strings.Contains(err.Error(), "a whole adapter, but this federation trains one shape") {
		t.Errorf("whole adapter under fedavg: %v", err)
	}
	// A client of the global's own shape may send a change: under
	// hetero-exact it counts as the whole adapter global + Δ.
	delta := f.initial.Clone()
	scaleParams(delta, 0.5)
	change, err := EncodeUpdate(f.initial, delta, 1, "c0", 1, 32, nil)
	if err != nil {
		t.Fatal(err)
	}
	theta, err := DecodeUpdate(change, f.initial, 1, "c0", 1, 32, true)
	if err != nil {
		t.Fatal(err)
	}
	if d := adapter.MaxAbsDiff(theta, f.initial.Clone().Add(delta)); d != 0 {
		t.Errorf("change under hetero-exact: %g from global + Δ", d)
	}
	if got, err := DecodeUpdate(whole, f.initial, 1, "c0", 1, 32, true); err != nil || got.Config.Rank != 2 || got.Config.DA2 != 2 {
		t.Errorf("whole adapter under hetero-exact: %v", err)
	}

	// Rules and policies that cannot take whole adapters say so.
	for _, c := range []struct {
		p    Policy
		want string
	}{
		{Policy{MaxUpdateNorm: 1}, "max update norm"},
		{Policy{DP: &DPPolicy{Noise: 1, Clip: 1}}, "central differential privacy"},
		{Policy{SecAgg: &SecAggPolicy{}}, "secure aggregation"},
	} {
		if err := (Rule{Name: "hetero-exact"}).Check(adapter.KindKron, c.p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.p, err, c.want)
		}
	}
}

func scaleParams(s *adapter.Set, f float32) {
	for _, p := range s.Params() {
		for i := range p.Data {
			p.Data[i] *= f
		}
	}
}

// TestJoinChecksModelDigest: a coordinator that knows its base model's
// digest refuses a client sending another, or none, and admits the same.
func TestJoinChecksModelDigest(t *testing.T) {
	f := newTestFed(t, testPolicy(), 0)
	f.digest = "sha256:aaaa"
	f.st.Close()
	f.open(t)
	defer f.st.Close()
	peer := Peer{Name: "c0"}
	for _, c := range []struct{ digest, want string }{
		{"sha256:bbbb", "this client's sha256:bbbb"},
		{"", "this client's none sent"},
		{"sha256:aaaa", ""},
	} {
		_, err := f.srv.Join(context.Background(), peer, &fedpb.JoinRequest{Model: f.initial.BaseModel, Examples: 5, ModelDigest: c.digest})
		if c.want == "" {
			if err != nil {
				t.Errorf("the same digest refused: %v", err)
			}
		} else if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "identical model files") {
			t.Errorf("digest %q: %v, want %q", c.digest, err, c.want)
		}
	}
}
