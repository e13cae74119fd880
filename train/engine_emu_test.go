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
}
