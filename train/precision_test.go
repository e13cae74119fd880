package train

import (
	"math"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/compute"
	"github.com/kronfed/kronfed/gpu"
	"github.com/kronfed/kronfed/model"
)

// TestFrozenPrecision: what auto, bf16 and fp32 resolve to for a small and a
// transformer-sized base, on the CPU and a GPU, and the refusals.
func TestFrozenPrecision(t *testing.T) {
	small := &model.Model{Cfg: &model.Config{Hidden: 128}}
	large := &model.Model{Cfg: &model.Config{Hidden: 768}}
	bf16Here := gpu.FP32
	if compute.HasBF16() {
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
}

// TestUseBF16: the built-in model switched to bf16 scores like fp32 (its
// weights are bf16 already, so only activations round), every frozen
// linear is packed as bf16, and a weight gone NaN is refused naming it.
func TestUseBF16(t *testing.T) {
	if !compute.HasBF16() {
		t.Skip("this CPU has no AVX512_BF16")
	}
	logits := func(m *model.Model) []float32 {
		t.Helper()
		set, err := NewAdapterSet(m, adapter.DefaultConfig(adapter.KindKron), 1)
		if err != nil {
			t.Fatal(err)
		}
		run, err := m.Llama.NewRun(set)
		if err != nil {
			t.Fatal(err)
		}
		toks := []int{1, 5, 9, 2, 7, 3, 4, 8}
		if err := run.Forward(toks, 1, len(toks)); err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), run.Logits...)
	}
	m, err := LoadModel("builtin")
	if err != nil {
		t.Fatal(err)
	}
	want := logits(m)
	if err := m.UseBF16(); err != nil || !m.BF16() {
		t.Fatalf("UseBF16: %v (BF16 %v)", err, m.BF16())
	}
	got := logits(m)
	var d2, n2 float64
	for i := range want {
		d := float64(got[i] - want[i])
		d2, n2 = d2+d*d, n2+float64(want[i])*float64(want[i])
	}
	if rel := math.Sqrt(d2 / n2); rel > 0.02 || rel == 0 {
		t.Errorf("bf16 logits differ from fp32 by %.2g (relative L2): want a small, nonzero difference", rel)
	}

	m2, err := LoadModel("builtin")
	if err != nil {
		t.Fatal(err)
	}
	m2.Llama.Blocks[1].Up.W[7] = float32(math.Inf(1))
	err = m2.UseBF16()
	if err == nil || !strings.Contains(err.Error(), "model.layers.1.mlp.up_proj.weight") || !strings.Contains(err.Error(), "+Inf") {
		t.Errorf("Inf in a weight: %v", err)
	}
	if m2.BF16() || m2.UseBF16() == nil {
		t.Error("a refused UseBF16 reports success later")
	}
}
