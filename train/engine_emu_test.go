//go:build linux && (amd64 || arm64)

package train

import (
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/gpu"
	"github.com/kronfed/kronfed/gpu/gputest"
	"github.com/kronfed/kronfed/model"
)

// TestEmulatedEngineSharesBase runs the GPU engine's learners on the
// kernels' CPU emulator (gputest): two learners fine-tune concurrently on
// one engine, taking turns, and each matches the CPU engine's fit; the base
// is uploaded once, each learner's run is freed by Close (after both, the
// device holds exactly what one learner's base left), and the engine's
// Close frees the rest.
func TestEmulatedEngineSharesBase(t *testing.T) {
	g := gputest.Engine(t, gpu.FP32, 0)
	e := NewGPUEngine(g)
	m, err := LoadModel(model.BuiltinRandomPath)
	if err != nil {
		t.Fatal(err)
	}
	set, err := NewAdapterSet(m, adapter.DefaultConfig(adapter.KindKron), 7)
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.NewLearner(m, set, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	withRun := g.MemStats().InUse
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	base := g.MemStats().InUse
	// fp32 frozen linears alone: 4 bytes per weight.
	c := m.Cfg
	perLayer := c.Hidden*c.Heads*c.HeadDim*2 + c.Hidden*c.KVHeads*c.HeadDim*2 + 3*c.Hidden*c.Intermediate
	frozen := 4 * int64(c.Layers*perLayer)
	if base < frozen || withRun <= base {
		t.Fatalf("device memory: %d bytes with a learner, %d after its Close; the frozen linears alone are %d", withRun, base, frozen)
	}
	checkFitMatchesCPU(t, e, m, 16, 8, 2)
	if got := g.MemStats().InUse; got != base {
		t.Errorf("after two learners trained and closed the device holds %d bytes, want the base's %d (a second base, or a run not freed)", got, base)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := g.MemStats().InUse; got != 0 {
		t.Errorf("after the engine's Close %d bytes are still allocated", got)
	}
	// A closed engine refuses new work with an error, and closes again harmlessly.
	if _, err := e.NewLearner(m, set, 0, nil); err == nil || e.Close() != nil {
		t.Errorf("closed engine: NewLearner %v", err)
	}
}

// TestEmulatedBenchStep: the benchmark's training step runs on a GPU
// engine for both families (a decoder and an encoder of tiny shapes), and
// closing the steps and releasing the base leaves the device empty.
func TestEmulatedBenchStep(t *testing.T) {
	g := gputest.Engine(t, gpu.BF16, 0)
	e := NewGPUEngine(g)
	dec := &model.Config{ModelType: "mistral", Family: model.Decoder, Hidden: 32, Intermediate: 48, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8,
		Vocab: 40, MaxPositions: 16, RMSNormEps: 1e-5, RopeTheta: 10000, SlidingWindow: 8}
	enc := DistilBERTConfig()
	enc.Hidden, enc.Intermediate, enc.Layers, enc.Heads, enc.HeadDim, enc.Vocab, enc.MaxPositions = 32, 64, 2, 4, 8, 50, 16
	for _, cfg := range []*model.Config{dec, enc} {
		base, err := e.NewBenchBase(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"kron", "lora8"} {
			s, err := e.NewBenchStep(base, kind, 4, 12, 1)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := s.Run(); err != nil {
					t.Fatalf("%s %s: %v", cfg.ModelType, kind, err)
				}
			}
			s.Close()
		}
		e.Release(base)
		if in := g.MemStats().InUse; in != 0 {
			t.Errorf("%s: %d bytes left on the device", cfg.ModelType, in)
		}
	}
}
