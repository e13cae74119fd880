package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/compute"
	"github.com/kronfed/kronfed/model"
)

// TestBF16AdapterGradients: with the frozen weights packed as bf16, every
// adapter and head gradient of a DistilBERT-shaped step (smaller: 2 layers,
// hidden 256, bf16-exact weights) stays within 5% (relative L2; 2.6% measured) of the fp32
// gradient — and moves (bf16 is really in use: some tensor differs by more
// than 1e-4).
func TestBF16AdapterGradients(t *testing.T) {
	if !compute.HasBF16() {
		t.Skip("this CPU has no AVX512_BF16")
	}
	cfg := DistilBERTConfig()
	cfg.Hidden, cfg.Intermediate, cfg.Layers, cfg.Heads, cfg.Vocab = 256, 1024, 2, 4, 1000
	// bf16-exact weights, as in a bf16 checkpoint (Llama, Mistral, the
	// built-in model): packing is then lossless and the test measures the
	// activation rounding alone. Rounding fp32 weights is a change of
	// model, not of arithmetic — on this random net it alone moves
	// gradients by up to ~35%.
	m, err := model.NewBERT(cfg, randomWeights(3, 0.05, func(v float32) float32 { return compute.BF16ToFloat32(compute.BF16(v)) }))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 2))
	ac := adapter.DefaultConfig(adapter.KindKron).Resolve(cfg.Hidden)
	set, err := adapter.NewSet(ac, "bf16", cfg.Targets(), rng)
	if err != nil {
		t.Fatal(err)
	}
	set.Dense = model.NewHead(cfg, rng)
	randomizeFactors(set, rng)
	b := randomEncoderBatch(rng, cfg.Vocab, 32, []int{1, 3})
	grads := func() [][]float32 { return encoderGrads(t, m, set, b) }
	g32 := grads()
	if err := m.UseBF16(); err != nil {
		t.Fatal(err)
	}
	g16 := grads()
	var largest float64 // the largest fp32 gradient norm, the scale of "zero"
	for _, g := range g32 {
		var n2 float64
		for _, v := range g {
			n2 += float64(v) * float64(v)
		}
		largest = max(largest, math.Sqrt(n2))
	}
	var worst, moved float64
	for i, p := range set.Params() {
		var d2, n2 float64
		for j := range g32[i] {
			d := float64(g16[i][j] - g32[i][j])
			d2 += d * d
			n2 += float64(g32[i][j]) * float64(g32[i][j])
		}
		// classifier.bias: shared by the 4 choices, its gradient cancels to
		// rounding noise in both precisions, where a relative error means
		// nothing.
		if math.Sqrt(n2) < 1e-5*largest {
			if math.Sqrt(d2) > 1e-5*largest {
				t.Errorf("%s: fp32 gradient zero, bf16 not (%g)", p.Name, math.Sqrt(d2))
			}
			continue
		}
		rel := math.Sqrt(d2 / n2)
		worst, moved = max(worst, rel), max(moved, rel)
		if rel > 0.05 {
			t.Errorf("%s: bf16 gradient off by %.4f (relative L2) from fp32", p.Name, rel)
		}
	}
	if moved < 1e-4 {
		t.Errorf("bf16 gradients equal fp32 ones (largest difference %.2g): bf16 weights not in use", moved)
	}
	t.Logf("largest relative L2 difference of an adapter/head gradient, bf16 vs fp32 frozen weights: %.4f", worst)
}
