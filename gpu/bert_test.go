package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/model"
)

// randomBERT builds a small encoder with random weights (randomWeights).
func randomBERT(t *testing.T, cfg *model.Config, seed uint64, p Precision) *model.BERT {
	t.Helper()
	m, err := model.NewBERT(cfg, randomWeights(cfg, seed, p == BF16))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// encoderBatch is B questions × C choices of T tokens with padded tails,
// one question with a missing (dummy) choice, and random token types.
func encoderBatch(cfg *model.Config, B, C, T int, seed uint64) model.EncoderBatch {
	rng := rand.New(rand.NewPCG(seed, 6))
	b := model.EncoderBatch{B: B, C: C, T: T}
	n := B * C * T
	b.IDs, b.Types, b.Mask = make([]int, n), make([]int, n), make([]float32, n)
	for sq := 0; sq < B*C; sq++ {
		length := T - rng.IntN(T/2)
		for t := 0; t < T; t++ {
			i := sq*T + t
			b.IDs[i] = rng.IntN(cfg.Vocab)
			if cfg.TypeVocab > 0 {
				b.Types[i] = rng.IntN(cfg.TypeVocab)
			}
			if t < length {
				b.Mask[i] = 1
			}
		}
	}
	for q := 0; q < B; q++ {
		nc := C
		if q == 0 {
			nc = C - 1
		}
		b.NumChoices = append(b.NumChoices, nc)
		b.Labels = append(b.Labels, rng.IntN(nc))
	}
	return b
}

// TestBERTParity compares a whole forward + backward of small random
// DistilBERT- and BERT-shaped encoders (padding masks, every training-mode
// dropout on with the same host-drawn masks, Kron-LoRA and LoRA, the
// multiple-choice head) on the device with the CPU engine.
func TestBERTParity(t *testing.T) {
	cfgs := []*model.Config{
		{ModelType: "distilbert", Family: model.Encoder, Hidden: 64, Intermediate: 128, Layers: 2, Heads: 4, KVHeads: 4, HeadDim: 16,
			Vocab: 101, MaxPositions: 64, LayerNormEps: 1e-12, Activation: "gelu", HiddenDropout: 0.1, AttnDropout: 0.1, ClassifierDropout: 0.2},
		{ModelType: "bert", Family: model.Encoder, Hidden: 64, Intermediate: 96, Layers: 2, Heads: 2, KVHeads: 2, HeadDim: 32,
			Vocab: 89, MaxPositions: 64, LayerNormEps: 1e-12, TypeVocab: 2, Activation: "gelu", HiddenDropout: 0.1, AttnDropout: 0.1, ClassifierDropout: 0.1},
	}
	for ci, cfg := range cfgs {
		for _, kind := range []adapter.Kind{adapter.KindKron, adapter.KindLoRA} {
			for _, prec := range []Precision{FP32, BF16} {
				t.Run(fmt.Sprintf("%s/%s/%s", cfg.ModelType, kind, prec), func(t *testing.T) {
					e := requireEngine(t, prec)
					checkBERTParity(t, e, randomBERT(t, cfg, uint64(ci+1), prec), kind, 3, 4, 29, tolerance(prec))
				})
			}
		}
	}
}

func checkBERTParity(t *testing.T, e *Engine, m *model.BERT, kind adapter.Kind, B, C, T int, tol float64) {
	t.Helper()
	cfg := m.Cfg
	hostSet := randomSet(t, cfg, kind, 31)
	hostSet.Dense = model.NewHead(cfg, rand.New(rand.NewPCG(32, 33)))
	devSet := cloneSet(t, hostSet)
	for i := range devSet.Dense {
		clear(devSet.Dense[i].Grad)
	}
	b := encoderBatch(cfg, B, C, T, 34)

	cpu, err := m.NewRun(hostSet)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(41, 42))
	cpu.Drop, cpu.Base = &adapter.Dropout{P: 0.1, Rng: rng}, rng
	if err := cpu.Forward(b); err != nil {
		t.Fatal(err)
	}
	wantLoss, err := cpu.LossAndGrad()
	if err != nil {
		t.Fatal(err)
	}
	cpu.Backward()

	run := bertRun(t, e, m, devSet)
	rng = rand.New(rand.NewPCG(41, 42))
	run.Drop, run.Base, run.Masks = &adapter.Dropout{P: 0.1, Rng: rng}, rng, HostDropout
	if err := run.Forward(b); err != nil {
		t.Fatal(err)
	}
	if r := relErr(run.Logits(), cpu.Logits); r > tol {
		t.Errorf("choice logits differ by %.3g relative (tolerance %g): %v vs %v", r, tol, run.Logits(), cpu.Logits)
	}
	loss, err := run.LossAndGrad()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(loss-wantLoss) > tol*math.Abs(wantLoss) {
		t.Errorf("loss %v, CPU %v", loss, wantLoss)
	}
	if err := run.Backward(); err != nil {
		t.Fatal(err)
	}
	checkGradients(t, hostSet, devSet, tol)
}
