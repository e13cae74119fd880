//go:build linux && (amd64 || arm64)

package simulate

import (
	"context"
	"math"
	"testing"

	"github.com/kronfed/kronfed/gpu"
	"github.com/kronfed/kronfed/gpu/gputest"
	"github.com/kronfed/kronfed/train"
)

// TestEmulatedGPUExperiment runs the tiny forgetting experiment with its
// clients on a GPU engine — the kernels' CPU emulator (gputest), fp32
// frozen weights, dropout masks drawn on the host as the CPU draws them —
// three at a time, and compares every round with the CPU run of the same
// seed: the same clients, losses within float32 rounding of a different
// summation order, accuracies within one test item. With
// the reinit mitigation phase B trains on a second base (task A folded in);
// after the run the device holds the first base only: the second was
// released, every client's run freed.
func TestEmulatedGPUExperiment(t *testing.T) {
	cpu := tinyExperiment(t, t.TempDir())
	// 32-bit uploads: 8-bit quantization would turn float32 rounding
	// differences into whole quantization steps now and then.
	cpu.Base.Train.Bits = 32
	cpu.EvalItems = 12
	cpu.Mitigations = []Mitigation{{Kind: "none"}, {Kind: "reinit"}}
	_, want, err := cpu.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dev := gputest.Engine(t, gpu.FP32, 0)
	dev.Masks = gpu.HostDropout // the CPU's adapter dropout masks
	engine := train.NewGPUEngine(dev)
	g := tinyExperiment(t, t.TempDir())
	g.Mitigations, g.Base.Train.Bits, g.EvalItems = cpu.Mitigations, 32, cpu.EvalItems
	g.Base.Engine, g.Base.Workers = engine, 3
	if _, err := engine.PrepareBase(g.Base.Model); err != nil {
		t.Fatal(err)
	}
	base := dev.MemStats().InUse
	_, got, err := g.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d rounds on the GPU engine, %d on the CPU", len(got), len(want))
	}
	item := 1.0 / float64(g.EvalItems)
	for i, w := range want {
		r := got[i]
		if r.Clients != w.Clients || r.Phase != w.Phase || r.Mitigation != w.Mitigation {
			t.Fatalf("round %d: GPU %+v, CPU %+v", i, r, w)
		}
		if math.Abs(r.TrainLoss-w.TrainLoss) > 1e-4*math.Abs(w.TrainLoss) {
			t.Errorf("round %d (%s, phase %s): train loss GPU %v, CPU %v", i, w.Mitigation, w.Phase, r.TrainLoss, w.TrainLoss)
		}
		if math.Abs(r.AccA-w.AccA) > item+1e-9 || math.Abs(r.AccB-w.AccB) > item+1e-9 {
			t.Errorf("round %d (%s, phase %s): accuracy GPU %.3f/%.3f, CPU %.3f/%.3f", i, w.Mitigation, w.Phase, r.AccA, r.AccB, w.AccA, w.AccB)
		}
	}
	if in := dev.MemStats().InUse; in != base {
		t.Errorf("after the experiment the device holds %d bytes, the base alone %d", in, base)
	}
}
