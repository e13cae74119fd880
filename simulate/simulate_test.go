package simulate

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/task"
	"github.com/kronfed/kronfed/train"
)

func tinyExperiment(t *testing.T, out string) *Experiment {
	t.Helper()
	m, err := train.LoadModel("builtin")
	if err != nil {
		t.Fatal(err)
	}
	splits := map[string]*task.Splits{}
	for _, n := range []string{"word-category", "next-letter"} {
		s, err := train.LoadSplits(n, "", 1)
		if err != nil {
			t.Fatal(err)
		}
		splits[n] = s
	}
	return &Experiment{
		Base: Options{Model: m, Clients: 3, Fraction: 1, Rule: fed.Rule{Name: "fedavg"}, Partition: "iid", Seed: 3,
			Train: &fedpb.RoundConfig{LocalEpochs: 1, BatchSize: 8, LearningRate: 1e-3, Bits: 8, Seed: 3, MaxItems: 16}},
		Adapters: []Arm{{Adapter: adapter.DefaultConfig(adapter.KindKron)}},
		Pairs:    []Pair{{A: "word-category", B: "next-letter", Label: "shifted"}},
		RoundsA:  1, RoundsB: 1, EvalItems: 24, Out: out,
		Splits: func(n string) (*task.Splits, error) { return splits[n], nil },
	}
}

// TestForgettingRunIsReproducible runs the federated forgetting protocol
// twice with the same seed: the per-round records and outcomes must be
// identical, and the result files complete.
func TestForgettingRunIsReproducible(t *testing.T) {
	var runs [2][]RoundRecord
	var outs [2][]Outcome
	for i := range runs {
		dir := t.TempDir()
		e := tinyExperiment(t, dir)
		o, recs, err := e.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		runs[i], outs[i] = recs, o
		table, err := WriteResults(dir, o, recs)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(table, "kron-r8") {
			t.Fatalf("table:\n%s", table)
		}
		for _, f := range []string{"rounds.jsonl", "summary.csv", "table.md", "accuracy.svg", "forgetting.svg", "bytes.svg", "accuracy.png", "forgetting.png", "bytes.png"} {
			if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
				t.Fatalf("%s: %v", f, err)
			}
		}
		// Each experiment keeps its global adapter after each phase, as
		// published: readable adapter files, and phase B moved it.
		after, err := filepath.Glob(filepath.Join(dir, "federations", "*", "global-after-*.safetensors"))
		if err != nil || len(after) != 2 {
			t.Fatalf("global-after files: %v %v", after, err)
		}
		a, errA := adapter.ReadFile(after[0])
		b, errB := adapter.ReadFile(after[1])
		if errA != nil || errB != nil || a.Clone().Sub(b).Norm() == 0 {
			t.Fatalf("global after A and B: %v, %v (or equal)", errA, errB)
		}
	}
	if len(runs[0]) != 2 || runs[0][0].Phase != "A" || runs[0][1].Phase != "B" || runs[0][0].Clients != 3 {
		t.Fatalf("records: %+v", runs[0])
	}
	o := outs[0][0]
	if o.Forgetting != o.AccAAfterA-o.AccAAfterB || o.UploadedBytes == 0 || o.UploadedBytes >= o.RawBytes {
		t.Fatalf("outcome: %+v", o)
	}
	for i := range runs[0] {
		runs[0][i].AggError, runs[1][i].AggError = 0, 0
	}
	if !reflect.DeepEqual(runs[0], runs[1]) || !reflect.DeepEqual(outs[0][0].Forgetting, outs[1][0].Forgetting) {
		t.Fatalf("same seed, different numbers:\n%+v\n%+v", runs[0], runs[1])
	}
}

// TestGRPCTransport runs the same tiny experiment over real gRPC with TLS
// on loopback: the numbers equal the in-memory transport's.
func TestGRPCTransport(t *testing.T) {
	var recs [2][]RoundRecord
	for i, transport := range []string{"memory", "grpc"} {
		e := tinyExperiment(t, t.TempDir())
		e.Base.Transport = transport
		_, r, err := e.Run(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", transport, err)
		}
		for j := range r {
			r[j].AggError = 0
		}
		recs[i] = r
	}
	if !reflect.DeepEqual(recs[0], recs[1]) {
		t.Fatalf("memory and grpc transports differ:\n%+v\n%+v", recs[0], recs[1])
	}
}

func TestParsePartition(t *testing.T) {
	for _, ok := range []string{"iid", "dirichlet:0.5", "dirichlet:10"} {
		if _, _, err := ParsePartition(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "dirichlet", "dirichlet:0", "dirichlet:-1", "dirichlet:x", "noniid"} {
		if _, _, err := ParsePartition(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestUploadsProgress: Options.Uploads hears the cohort's uploads as they
// are accepted: counts within 1..cohort, growing within a round.
func TestUploadsProgress(t *testing.T) {
	e := tinyExperiment(t, t.TempDir())
	type call struct{ accepted, cohort int }
	var calls []call
	e.Base.Uploads = func(accepted, cohort int) { calls = append(calls, call{accepted, cohort}) }
	if _, _, err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 {
		t.Fatal("no upload progress in two rounds of three uploads")
	}
	for i, c := range calls {
		if c.cohort != 3 || c.accepted < 1 || c.accepted > 3 {
			t.Fatalf("call %d: %+v", i, c)
		}
		if i > 0 && c.accepted == calls[i-1].accepted {
			t.Fatalf("call %d repeats %+v: %v", i, c, calls)
		}
	}
}
