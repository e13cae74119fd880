package train

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/compute"
	"github.com/kronfed/kronfed/gpu"
	"github.com/kronfed/kronfed/model"
)

// loadBuiltin loads a fresh copy of the built-in model.
func loadBuiltin(t *testing.T) *model.Model {
	t.Helper()
	m, err := LoadModel("builtin")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// kronSet is a Kron-LoRA adapter set for m from seed.
func kronSet(t *testing.T, m *model.Model, seed uint64) *adapter.Set {
	t.Helper()
	set, err := NewAdapterSet(m, adapter.DefaultConfig(adapter.KindKron), seed)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// randomizeFactors gives every factor and head tensor N(0, 0.05²) values,
// so no factor is zero and every gradient flows.
func randomizeFactors(set *adapter.Set, rng *rand.Rand) {
	for _, p := range set.Params() {
		for i := range p.Data {
			p.Data[i] = float32(rng.NormFloat64() * 0.05)
		}
	}
}

// decoderLogits runs the decoder m with set over toks (one sequence).
func decoderLogits(t *testing.T, m *model.Model, set *adapter.Set, toks []int) []float32 {
	t.Helper()
	run, err := m.Llama.NewRun(set)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Forward(toks, 1, len(toks)); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), run.Logits...)
}

// encoderGrads runs one forward and backward of b with set on batch and
// returns every factor's and head tensor's gradient, in set.Params order.
func encoderGrads(t *testing.T, b *model.BERT, set *adapter.Set, batch model.EncoderBatch) [][]float32 {
	t.Helper()
	run, err := b.NewRun(set)
	if err != nil {
		t.Fatal(err)
	}
	set.ZeroGrad()
	if err := run.Forward(batch); err != nil {
		t.Fatal(err)
	}
	if _, err := run.LossAndGrad(); err != nil {
		t.Fatal(err)
	}
	run.Backward()
	var out [][]float32
	for _, p := range set.Params() {
		out = append(out, append([]float32(nil), p.Grad...))
	}
	return out
}

// randomEncoderBatch is len(labels) four-choice questions of T random
// tokens each (no padding).
func randomEncoderBatch(rng *rand.Rand, vocab, T int, labels []int) model.EncoderBatch {
	b := model.EncoderBatch{B: len(labels), C: 4, T: T, Labels: labels}
	n := b.B * b.C * T
	b.IDs, b.Mask = make([]int, n), make([]float32, n)
	for i := range b.IDs {
		b.IDs[i], b.Mask[i] = rng.IntN(vocab), 1
	}
	return b
}

// relL2 is ‖got − want‖ / ‖want‖.
func relL2(got, want []float32) float64 {
	var d2, n2 float64
	for i := range want {
		d := float64(got[i] - want[i])
		d2, n2 = d2+d*d, n2+float64(want[i])*float64(want[i])
	}
	return math.Sqrt(d2 / n2)
}

// TestFrozenPrecision: what auto, bf16 and fp32 resolve to for a small and a
// transformer-sized base, on the CPU and a GPU, and the refusals.
func TestFrozenPrecision(t *testing.T) {
	small := &model.Model{Cfg: &model.Config{Hidden: 128}}
	large := &model.Model{Cfg: &model.Config{Hidden: 768}}
	bf16Here := gpu.FP32
	if pays, _ := compute.BF16Pays(); pays {
		bf16Here = gpu.BF16
	}
	for _, c := range []struct {
		prec, device string
		m            *model.Model
		want         gpu.Precision
	}{
		{"auto", "cpu", small, gpu.FP32}, // the built-in model: the same bits everywhere
		{"", "cpu", small, gpu.FP32},
		{"auto", "cpu", large, bf16Here},
		{"auto", "cpu", nil, gpu.FP32},
		{"fp32", "cpu", large, gpu.FP32},
		{"FP32", "cuda", large, gpu.FP32},
		{"auto", "cuda:0", small, gpu.BF16},
		{"bf16", "cuda", nil, gpu.BF16},
	} {
		got, err := FrozenPrecision(c.prec, c.device, c.m)
		if err != nil || got != c.want {
			t.Errorf("FrozenPrecision(%q, %q, hidden %v) = %v, %v; want %v", c.prec, c.device, c.m, got, err, c.want)
		}
	}
	got, err := FrozenPrecision("bf16", "cpu", small)
	if compute.HasBF16() {
		if err != nil || got != gpu.BF16 {
			t.Errorf("bf16 on this AVX512_BF16 CPU: %v, %v", got, err)
		}
	} else if err == nil || !strings.Contains(err.Error(), "AVX512_BF16") {
		t.Errorf("bf16 on a CPU without AVX512_BF16: %v, %v", got, err)
	}
	for _, bad := range []string{"fp16", "int8", "bf 16"} {
		if _, err := FrozenPrecision(bad, "cpu", small); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("precision %q: %v", bad, err)
		}
	}
	if _, err := FrozenPrecision("auto", "tpu", small); err == nil {
		t.Error("device tpu accepted")
	}
	if _, err := FrozenPrecision("bf16-lean", "cuda", large); err == nil || !strings.Contains(err.Error(), "CPU") {
		t.Errorf("bf16-lean on a GPU: %v", err)
	}
	if got, err := FrozenPrecision("bf16-lean", "cpu", small); compute.HasBF16() && (err != nil || got != gpu.BF16) {
		t.Errorf("bf16-lean on this CPU: %v, %v", got, err)
	}
}

// TestUseBF16: the built-in model switched to bf16 scores like fp32 (its
// weights are bf16 already, so only activations round), every frozen
// linear is packed as bf16, and a weight gone NaN is refused naming it.
func TestUseBF16(t *testing.T) {
	if !compute.HasBF16() {
		t.Skip("this CPU has no AVX512_BF16")
	}
	toks := []int{1, 5, 9, 2, 7, 3, 4, 8}
	m := loadBuiltin(t)
	want := decoderLogits(t, m, kronSet(t, m, 1), toks)
	if err := m.UseBF16(); err != nil || !m.BF16() {
		t.Fatalf("UseBF16: %v (BF16 %v)", err, m.BF16())
	}
	got := decoderLogits(t, m, kronSet(t, m, 1), toks)
	if rel := relL2(got, want); rel > 0.02 || rel == 0 {
		t.Errorf("bf16 logits differ from fp32 by %.2g (relative L2): want a small, nonzero difference", rel)
	}

	m2 := loadBuiltin(t)
	m2.Llama.Blocks[1].Up.W[7] = float32(math.Inf(1))
	err := m2.UseBF16()
	if err == nil || !strings.Contains(err.Error(), "model.layers.1.mlp.up_proj.weight") || !strings.Contains(err.Error(), "+Inf") {
		t.Errorf("Inf in a weight: %v", err)
	}
	if m2.BF16() || m2.UseBF16() == nil {
		t.Error("a refused UseBF16 reports success later")
	}
	// Refused as a whole: no layer was switched (the model stays fp32).
	if fresh := loadBuiltin(t); m2.FrozenBytes() != fresh.FrozenBytes() {
		t.Errorf("after a refused UseBF16 the frozen linears hold %d bytes, a fresh base %d: some were switched", m2.FrozenBytes(), fresh.FrozenBytes())
	}
}

// TestReleaseFP32: a bf16 base without its float32 weights runs exactly as
// before (the packed copies are all it reads), holds a third of the fp32
// path's frozen memory, keeps a tied lm_head's W (the embedding), and
// refuses what would read the released weights.
func TestReleaseFP32(t *testing.T) {
	if !compute.HasBF16() {
		t.Skip("this CPU has no AVX512_BF16")
	}
	m := loadBuiltin(t)
	if err := m.ReleaseFP32(); err == nil || !strings.Contains(err.Error(), "UseBF16") {
		t.Errorf("ReleaseFP32 on an fp32 base: %v", err)
	}
	set := kronSet(t, m, 1)
	logits := func() []float32 { return decoderLogits(t, m, set, []int{1, 5, 9, 2, 7, 3, 4, 8}) }
	logits() // packs the fp32 copies
	fp32Bytes := m.FrozenBytes()
	if err := m.UseBF16(); err != nil {
		t.Fatal(err)
	}
	before := logits()
	if err := m.ReleaseFP32(); err != nil {
		t.Fatal(err)
	}
	after := logits()
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("logit %d: %v after release, %v before", i, after[i], before[i])
		}
	}
	// Untied weights: 12 bytes (W + two fp32 copies) → 4 (two bf16
	// copies); the tied head (a third of this small model) 8 → 4, its W
	// being the embedding's. Measured 0.509.
	if got := m.FrozenBytes(); !(got > 0 && float64(got) < 0.55*float64(fp32Bytes)) {
		t.Errorf("frozen bytes %d after release, %d on the fp32 path", got, fp32Bytes)
	}
	if m.Llama.LMHead.W == nil || m.Llama.Blocks[0].Q.W != nil {
		t.Errorf("released: lm_head W nil %v (tied: must stay), q_proj W nil %v (must go)", m.Llama.LMHead.W == nil, m.Llama.Blocks[0].Q.W == nil)
	}
	if _, err := m.WithMerged(set); err == nil || !strings.Contains(err.Error(), "ReleaseFP32") {
		t.Errorf("WithMerged after release: %v", err)
	}
}

// TestReleaseFP32Encoder: an encoder (no tied head) released to bf16 holds
// exactly 4 bytes per frozen weight plus fp32 biases.
func TestReleaseFP32Encoder(t *testing.T) {
	if !compute.HasBF16() {
		t.Skip("this CPU has no AVX512_BF16")
	}
	cfg := DistilBERTConfig()
	cfg.Hidden, cfg.Intermediate, cfg.Layers, cfg.Heads, cfg.Vocab = 256, 1024, 2, 4, 1000
	b, err := model.NewBERT(cfg, randomWeights(5, 0.02, nil))
	if err != nil {
		t.Fatal(err)
	}
	m := &model.Model{Name: "tiny-distilbert", Cfg: cfg, BERT: b}
	if err := m.UseBF16(); err != nil {
		t.Fatal(err)
	}
	if err := m.ReleaseFP32(); err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, l := range cfg.AdaptedLinears() {
		want += 4*int64(l.DOut)*int64(l.DIn) + 4*int64(l.DOut)
	}
	if got := m.FrozenBytes(); got != want {
		t.Errorf("frozen bytes %d, want %d (4 per weight + fp32 biases)", got, want)
	}

	// bf16-lean: one copy (2 bytes per weight), the same gradients bit
	// for bit (dy·W rebuilt from Wᵀ's copy per call).
	rng := rand.New(rand.NewPCG(3, 2))
	set, err := adapter.NewSet(adapter.DefaultConfig(adapter.KindKron).Resolve(cfg.Hidden), "lean", cfg.Targets(), rng)
	if err != nil {
		t.Fatal(err)
	}
	set.Dense = model.NewHead(cfg, rng)
	randomizeFactors(set, rng)
	batch := randomEncoderBatch(rng, cfg.Vocab, 16, []int{2})
	two := encoderGrads(t, b, set, batch)
	if err := m.LeanBF16(); err != nil {
		t.Fatal(err)
	}
	one := encoderGrads(t, b, set, batch)
	for i := range two {
		for j := range two[i] {
			if one[i][j] != two[i][j] {
				t.Fatalf("%s[%d]: gradient with one bf16 copy %v, with two %v", set.Params()[i].Name, j, one[i][j], two[i][j])
			}
		}
	}
	var lean int64
	for _, l := range cfg.AdaptedLinears() {
		lean += 2*int64(l.DOut)*int64(l.DIn) + 4*int64(l.DOut)
	}
	if got := m.FrozenBytes(); got != lean {
		t.Errorf("bf16-lean frozen bytes %d, want %d (2 per weight + fp32 biases)", got, lean)
	}
}

// TestWithMergedBF16: folding an adapter into a bf16 base gives a bf16
// base (its new linears packed as bf16 too) whose outputs match the fp32
// merge within bf16 rounding.
func TestWithMergedBF16(t *testing.T) {
	if !compute.HasBF16() {
		t.Skip("this CPU has no AVX512_BF16")
	}
	m32 := loadBuiltin(t)
	set := kronSet(t, m32, 1)
	randomizeFactors(set, rand.New(rand.NewPCG(9, 9)))
	m16 := loadBuiltin(t)
	if err := m16.UseBF16(); err != nil {
		t.Fatal(err)
	}
	var outs [][]float32
	for _, m := range []*model.Model{m32, m16} {
		mm, err := m.WithMerged(set)
		if err != nil {
			t.Fatal(err)
		}
		if mm.BF16() != m.BF16() {
			t.Fatalf("merge of a base with BF16 %v reports BF16 %v", m.BF16(), mm.BF16())
		}
		outs = append(outs, decoderLogits(t, mm, kronSet(t, mm, 2), []int{3, 1, 4, 1, 5, 9, 2, 6}))
	}
	if rel := relL2(outs[1], outs[0]); rel > 0.03 || rel == 0 {
		t.Errorf("bf16 merge vs fp32 merge: logits %.3g apart (relative L2); want small but nonzero", rel)
	}
}
