package gpu

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/model"
)

// BenchmarkMistralLayers times a training step (forward, loss, backward,
// gradients to the host) of a Mistral-7B-shaped layer stack — hidden 4096,
// 32 heads of 128 with 8 KV heads, FFN 14336, window 4096 — with Kron-LoRA
// and LoRA-8 on every linear, at micro-batch 8 of 512 tokens, bf16 frozen
// weights. $KRONFED_BENCH_LAYERS sets the depth (default 2: the real model's
// 32 layers cost 16× the time and 14 GB of weights); the vocabulary is cut
// to 4096 so the stack, not lm_head, is measured. It reports tokens/s.
func BenchmarkMistralLayers(b *testing.B) {
	layers := 2
	if v, err := strconv.Atoi(os.Getenv("KRONFED_BENCH_LAYERS")); err == nil && v > 0 {
		layers = v
	}
	cfg := &model.Config{ModelType: "mistral", Family: model.Decoder, Hidden: 4096, Intermediate: 14336, Layers: layers,
		Heads: 32, KVHeads: 8, HeadDim: 128, Vocab: 4096, MaxPositions: 4096, RMSNormEps: 1e-5, RopeTheta: 1e6, SlidingWindow: 4096}
	const B, T = 8, 512
	e, err := Open("cuda", Options{Precision: BF16})
	if err != nil {
		skipWithoutGPU(b, err)
	}
	defer e.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	m, err := model.NewLlama(cfg, model.RopeHalf, func(name string, shape ...int) ([]float32, error) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(rng.Float64()-0.5) * 0.02
		}
		if len(shape) == 1 {
			for i := range w {
				w[i] += 1
			}
		}
		return w, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	dm, err := UploadLlama(e, m)
	if err != nil {
		b.Fatal(err)
	}
	defer dm.Free()
	for _, kind := range []adapter.Kind{adapter.KindKron, adapter.KindLoRA} {
		b.Run(fmt.Sprintf("%s/B%d/T%d/layers%d", kind, B, T, layers), func(b *testing.B) {
			ac := adapter.DefaultConfig(kind).Resolve(cfg.Hidden)
			targets := cfg.Targets()
			set, err := adapter.NewSet(ac, "bench", targets, rand.New(rand.NewPCG(3, 4)))
			if err != nil {
				b.Fatal(err)
			}
			run, err := dm.NewRun(set)
			if err != nil {
				b.Fatal(err)
			}
			defer run.Free()
			run.Drop = &adapter.Dropout{P: 0.1, Rng: rand.New(rand.NewPCG(5, 6))}
			tokens, targets2 := parityBatch(cfg, B, T, 7)
			step := func() {
				if err := run.Forward(tokens, B, T); err != nil {
					b.Fatal(err)
				}
				if _, _, err := run.LossAndGrad(targets2); err != nil {
					b.Fatal(err)
				}
				if err := run.Backward(); err != nil {
					b.Fatal(err)
				}
			}
			step() // warm-up: buffers settle at their size
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step()
			}
			b.StopTimer()
			b.ReportMetric(float64(B*T*b.N)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(e.MemStats().Peak)/(1<<30), "peak-GiB")
		})
	}
}
