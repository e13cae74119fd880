package fed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/secure"
)

// TestReplayRound: a FedAdam federation (server state carried from version
// to version) publishes three rounds; the last, whose uploads the store
// keeps, recomputes byte for byte from them, each replayed upload is the
// shift its client trained (within 8-bit quantization) with its announced
// weight, and the replay notices a wrong rule, a wrong key, a wrong bit
// width and a published result that left out an accepted upload.
func TestReplayRound(t *testing.T) {
	p := testPolicy()
	p.Rounds = 3
	f := newTestFed(t, p, 0)
	f.rule = Rule{Name: "fedadam", LR: 0.05, Tau: 1e-3}
	f.st.Close()
	f.open(t)
	defer f.st.Close()
	shifts, examples := []float32{0.01, -0.02, 0.04}, []int{10, 30, 60}
	var clients []*testClient
	for i := range shifts {
		clients = append(clients, f.client(t, fmt.Sprintf("c%d", i), shifts[i], examples[i], p.Rounds))
	}
	if serr, cerrs := runAll(t, context.Background(), f.srv, clients...); serr != nil || errors.Join(cerrs...) != nil {
		t.Fatalf("rounds: %v %v", serr, cerrs)
	}

	rp, err := ReplayRound(f.st, f.identity, p, f.rule, 2)
	if err != nil || !strings.Contains(rp.Skipped, "uploads were pruned") {
		t.Fatalf("round 2 (uploads pruned): %+v, %v", rp, err)
	}
	rp, err = ReplayRound(f.st, f.identity, p, f.rule, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rp.Skipped != "" || !rp.Equal || rp.MaxAbsDiff != 0 || rp.Base.Version != 3 || rp.Published.Version != 4 || len(rp.Uploads) != 3 {
		t.Fatalf("round 3: skipped %q, equal %v (max diff %g), versions %d→%d, %d uploads", rp.Skipped, rp.Equal, rp.MaxAbsDiff,
			rp.Base.Version, rp.Published.Version, len(rp.Uploads))
	}
	for _, u := range rp.Uploads {
		var i int
		fmt.Sscanf(u.Client, "c%d", &i)
		if u.Examples != int64(examples[i]) {
			t.Errorf("%s's replayed weight %d, it trained on %d", u.Client, u.Examples, examples[i])
		}
		for _, q := range u.Delta.Params() {
			for _, x := range q.Data {
				if d := math.Abs(float64(x) - float64(shifts[i])); d > math.Abs(float64(shifts[i]))/127+1e-9 {
					t.Fatalf("%s's replayed Δ %s has %v, it trained a shift of %v", u.Client, q.Name, x, shifts[i])
				}
			}
		}
	}

	// Another rule makes another global: the replay says so.
	if rp, err := ReplayRound(f.st, f.identity, p, Rule{Name: "fedavg"}, 3); err != nil || rp.Equal || !(rp.MaxAbsDiff > 1e-4) {
		t.Errorf("replayed under fedavg: equal %v, max diff %g, %v", rp.Equal, rp.MaxAbsDiff, err)
	}
	otherID, _, _ := secure.GenerateIdentity("x25519")
	other, _ := secure.ParseIdentity(otherID)
	if _, err := ReplayRound(f.st, other, p, f.rule, 3); err == nil || !strings.Contains(err.Error(), "cannot decrypt") {
		t.Errorf("replayed with another coordinator's key: %v", err)
	}
	p4 := p
	p4.Train = proto.Clone(p.Train).(*fedpb.RoundConfig)
	p4.Train.Bits = 4
	if _, err := ReplayRound(f.st, f.identity, p4, f.rule, 3); err == nil || !strings.Contains(err.Error(), "bits") {
		t.Errorf("replayed as 4-bit uploads: %v", err)
	}
	// A published result that does not name one of the accepted uploads.
	rec, _ := f.st.Round(3)
	var res fedpb.RoundResult
	proto.Unmarshal(rec, &res)
	res.Clients = res.Clients[1:]
	forged, _ := proto.Marshal(&res)
	raw, _, _ := f.st.State()
	if err := f.st.PutRound(3, forged, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := ReplayRound(f.st, f.identity, p, f.rule, 3); err == nil || !strings.Contains(err.Error(), "the store holds accepted uploads of") {
		t.Errorf("a result that left out an accepted upload: %v", err)
	}
}
