//go:build linux && (amd64 || arm64)

package gpu

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/gpu/cuda"
	"github.com/kronfed/kronfed/gpu/internal/emu"
	"github.com/kronfed/kronfed/model"
)

// The engine on the kernels' CPU emulator: the very .cu sources run as host
// code (gpu/internal/emu) and the GEMMs that cuBLAS does on a device are
// compute.Gemm over the same memory (bf16 operands widened exactly). This
// checks everything the engine itself decides — buffer sizes and reuse,
// the order of layers, which kernel gets which pointer, dropout masks,
// gradient transfer — against the CPU engine where no GPU is present. It is
// not a device check: NVRTC, cuBLAS and the real hardware are the device
// tests' (devcheck.sh).

// emuEngine is an Engine on the emulator, or skips when clang++ is missing
// outside CI.
func emuEngine(t *testing.T, p Precision) *Engine {
	t.Helper()
	e := OpenEmulated(emu.Require(t), p, 0)
	t.Cleanup(func() {
		if in := e.MemStats().InUse; in != 0 {
			// Every run and model of a test frees what it took.
			t.Errorf("%d bytes still allocated after the test", in)
		}
		e.Close()
	})
	return e
}

// TestEmulatedLlamaParity runs the decoder parity check on the emulator:
// GQA, a sliding window, both RoPE layouts, Kron-LoRA and LoRA, adapter
// dropout from the host, fp32 and bf16 frozen weights.
func TestEmulatedLlamaParity(t *testing.T) {
	cfg := &model.Config{ModelType: "mistral", Family: model.Decoder, Hidden: 32, Intermediate: 48, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8,
		Vocab: 40, MaxPositions: 32, RMSNormEps: 1e-5, RopeTheta: 10000, SlidingWindow: 5}
	for _, rope := range []model.RopeStyle{model.RopeInterleaved, model.RopeHalf} {
		for _, kind := range []adapter.Kind{adapter.KindKron, adapter.KindLoRA} {
			for _, prec := range []Precision{FP32, BF16} {
				t.Run(fmt.Sprintf("rope%d/%s/%s", rope, kind, prec), func(t *testing.T) {
					checkLlamaParity(t, emuEngine(t, prec), randomLlama(t, cfg, rope, 1, prec), kind, 2, 11, tolerance(prec))
				})
			}
		}
	}
}

// TestEmulatedBERTParity runs the encoder parity check on the emulator.
func TestEmulatedBERTParity(t *testing.T) {
	cfgs := []*model.Config{
		{ModelType: "distilbert", Family: model.Encoder, Hidden: 32, Intermediate: 64, Layers: 2, Heads: 4, KVHeads: 4, HeadDim: 8,
			Vocab: 41, MaxPositions: 32, LayerNormEps: 1e-12, Activation: "gelu", HiddenDropout: 0.1, AttnDropout: 0.1, ClassifierDropout: 0.2},
		{ModelType: "bert", Family: model.Encoder, Hidden: 32, Intermediate: 48, Layers: 2, Heads: 2, KVHeads: 2, HeadDim: 16,
			Vocab: 43, MaxPositions: 32, LayerNormEps: 1e-12, TypeVocab: 2, Activation: "gelu", HiddenDropout: 0.1, AttnDropout: 0.1, ClassifierDropout: 0.1},
	}
	for _, cfg := range cfgs {
		for _, kind := range []adapter.Kind{adapter.KindKron, adapter.KindLoRA} {
			for _, prec := range []Precision{FP32, BF16} {
				t.Run(fmt.Sprintf("%s/%s/%s", cfg.ModelType, kind, prec), func(t *testing.T) {
					checkBERTParity(t, emuEngine(t, prec), randomBERT(t, cfg, 1, prec), kind, 2, 3, 9, tolerance(prec))
				})
			}
		}
	}
}

// TestEmulatedLogitRows: the gathered logit rows are the full logits' rows
// (scoring completions copies only those).
func TestEmulatedLogitRows(t *testing.T) {
	e := emuEngine(t, FP32)
	cfg := &model.Config{ModelType: "llama", Family: model.Decoder, Hidden: 32, Intermediate: 48, Layers: 1, Heads: 4, KVHeads: 2, HeadDim: 8,
		Vocab: 40, MaxPositions: 16, RMSNormEps: 1e-5, RopeTheta: 10000}
	run := llamaRun(t, e, randomLlama(t, cfg, model.RopeHalf, 2, FP32), nil)
	tokens, _ := parityBatch(cfg, 2, 7, 3)
	if err := run.Forward(tokens, 2, 7); err != nil {
		t.Fatal(err)
	}
	all, err := run.Logits()
	if err != nil {
		t.Fatal(err)
	}
	pos := []int{13, 0, 6}
	rows, err := run.LogitRows(pos)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pos {
		for j := 0; j < cfg.Vocab; j++ {
			if rows[i*cfg.Vocab+j] != all[p*cfg.Vocab+j] {
				t.Fatalf("row %d (position %d) differs at %d", i, p, j)
			}
		}
	}
	if _, err := run.LogitRows([]int{14}); err == nil {
		t.Fatal("a position outside the forward was gathered")
	}
}

// TestEmulatedUploadFits: an upload first counts its bytes; on a device
// without that much free it fails before allocating anything, with the
// sizes in the error; where it fits, what it allocated is what it counted.
func TestEmulatedUploadFits(t *testing.T) {
	cfg := &model.Config{ModelType: "llama", Family: model.Decoder, Hidden: 32, Intermediate: 48, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8,
		Vocab: 40, MaxPositions: 16, RMSNormEps: 1e-5, RopeTheta: 10000}
	for _, prec := range []Precision{FP32, BF16} {
		m := randomLlama(t, cfg, model.RopeHalf, 1, prec)
		// Embeddings, lm_head, norms, RoPE tables in fp32; the 7 linears of
		// each block in the engine's precision.
		elem := int64(4)
		if prec == BF16 {
			elem = 2
		}
		linears := int64(cfg.Layers) * int64(2*cfg.Hidden*cfg.Heads*cfg.HeadDim+2*cfg.Hidden*cfg.KVHeads*cfg.HeadDim+3*cfg.Hidden*cfg.Intermediate)
		want := elem*(linears+int64(cfg.Vocab*cfg.Hidden)) + 4*int64(cfg.Vocab*cfg.Hidden+(2*cfg.Layers+1)*cfg.Hidden+cfg.MaxPositions*cfg.HeadDim)

		small := OpenEmulated(emu.Require(t), prec, want-1)
		_, err := UploadLlama(small, m)
		if err == nil || !strings.Contains(err.Error(), cuda.FormatBytes(want)) || !strings.Contains(err.Error(), "free of") {
			t.Errorf("%s: upload to a device one byte too small: %v", prec, err)
		} else {
			t.Log(err)
		}
		if in := small.MemStats().InUse; in != 0 {
			t.Errorf("%s: the refused upload left %d bytes allocated", prec, in)
		}
		e := OpenEmulated(emu.Require(t), prec, want)
		g, err := UploadLlama(e, m)
		if err != nil {
			t.Fatalf("%s: upload to a device of exactly its size: %v", prec, err)
		}
		if in := e.MemStats().InUse; in != want {
			t.Errorf("%s: upload allocated %d bytes, counted %d", prec, in, want)
		}
		g.Free()
	}
}
