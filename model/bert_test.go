package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kronfed/kronfed/adapter"
)

func tinyEncoderConfig(modelType string) *Config {
	c := &Config{ModelType: modelType, Family: Encoder, Hidden: 16, Intermediate: 20, Layers: 2, Heads: 4, KVHeads: 4, HeadDim: 4,
		Vocab: 30, MaxPositions: 12, LayerNormEps: 1e-12, Activation: "gelu", HiddenDropout: 0.1, AttnDropout: 0.1, ClassifierDropout: 0.2}
	if modelType == "bert" {
		c.TypeVocab = 2
	}
	return c
}

// encoderSet puts random adapters on every block linear and a random head.
func encoderSet(t *testing.T, cfg *Config, kind adapter.Kind) *adapter.Set {
	set := randomAdapters(t, cfg, kind, 4)
	set.Dense = NewHead(cfg, rand.New(rand.NewPCG(8, 8)))
	for i := range set.Dense { // non-zero biases too
		for j := range set.Dense[i].Data {
			set.Dense[i].Data[j] += 0.1
		}
	}
	return set
}

func tinyBatch(cfg *Config, rng *rand.Rand) EncoderBatch {
	b := EncoderBatch{B: 2, C: 3, T: 6}
	n := b.B * b.C * b.T
	b.IDs, b.Mask = make([]int, n), make([]float32, n)
	if cfg.TypeVocab > 0 {
		b.Types = make([]int, n)
	}
	for sq := 0; sq < b.B*b.C; sq++ {
		length := 3 + rng.IntN(4) // padded sequences
		for t := 0; t < b.T; t++ {
			i := sq*b.T + t
			b.IDs[i] = rng.IntN(cfg.Vocab)
			if t < length {
				b.Mask[i] = 1
			}
			if b.Types != nil && t >= 2 {
				b.Types[i] = 1
			}
		}
	}
	b.Labels = []int{2, 0}
	return b
}

// TestEncoderGradients checks adapter and head gradients of DistilBERT and
// BERT (with every training-mode dropout on, the masks replayed identically by
// reseeding) against finite differences of the multiple-choice loss.
func TestEncoderGradients(t *testing.T) { bothAttentionModes(t, testEncoderGradients) }

func testEncoderGradients(t *testing.T) {
	for _, mt := range []string{"distilbert", "bert"} {
		for _, kind := range []adapter.Kind{adapter.KindKron, adapter.KindLoRA} {
			t.Run(fmt.Sprintf("%s_%s", mt, kind), func(t *testing.T) {
				cfg := tinyEncoderConfig(mt)
				m, err := NewBERT(cfg, newRandomSource(2).get)
				if err != nil {
					t.Fatal(err)
				}
				set := encoderSet(t, cfg, kind)
				run, err := m.NewRun(set)
				if err != nil {
					t.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(6, 6))
				batch := tinyBatch(cfg, rng)
				loss := func() float64 {
					run.Base = rand.New(rand.NewPCG(11, 12))
					run.Drop = &adapter.Dropout{P: 0.1, Rng: rand.New(rand.NewPCG(13, 14))}
					if err := run.Forward(batch); err != nil {
						t.Fatal(err)
					}
					l, err := run.LossAndGrad()
					if err != nil {
						t.Fatal(err)
					}
					return l
				}
				var params []adapter.Factor
				for _, mod := range set.Modules {
					mod.Layer.ZeroGrad()
					params = append(params, mod.Layer.Factors()...)
				}
				for i := range set.Dense {
					dd := &set.Dense[i]
					clear(dd.Grad)
					params = append(params, adapter.Factor{Name: dd.Name, Data: dd.Data, Grad: dd.Grad})
				}
				loss()
				run.Backward()
				// A second step on the same run (its Backward scratch
				// reused) must give the same gradients bit for bit.
				var first [][]float32
				for _, p := range params {
					first = append(first, append([]float32(nil), p.Grad...))
					clear(p.Grad)
				}
				loss()
				run.Backward()
				for i, p := range params {
					for j := range p.Grad {
						if p.Grad[j] != first[i][j] {
							t.Fatalf("%s[%d]: second step's gradient %v, first %v", p.Name, j, p.Grad[j], first[i][j])
						}
					}
				}
				checkDirectionalDerivatives(t, params, loss, rng)
			})
		}
	}
}

// TestEncoderPaddingInvariance: at inference, a sequence's score must not
// depend on what sits in its padding.
func TestEncoderPaddingInvariance(t *testing.T) {
	cfg := tinyEncoderConfig("distilbert")
	m, err := NewBERT(cfg, newRandomSource(2).get)
	if err != nil {
		t.Fatal(err)
	}
	run, err := m.NewRun(encoderSet(t, cfg, adapter.KindKron))
	if err != nil {
		t.Fatal(err)
	}
	batch := tinyBatch(cfg, rand.New(rand.NewPCG(1, 1)))
	if err := run.Forward(batch); err != nil {
		t.Fatal(err)
	}
	before := append([]float32(nil), run.Logits...)
	for i, mk := range batch.Mask {
		if mk == 0 {
			batch.IDs[i] = (batch.IDs[i] + 7) % cfg.Vocab
		}
	}
	if err := run.Forward(batch); err != nil {
		t.Fatal(err)
	}
	for i := range before {
		if math.Abs(float64(before[i]-run.Logits[i])) > 1e-5 {
			t.Fatalf("logit %d changed from %v to %v when only padding changed", i, before[i], run.Logits[i])
		}
	}
}

func TestEncoderBadInput(t *testing.T) {
	cfg := tinyEncoderConfig("distilbert")
	m, err := NewBERT(cfg, newRandomSource(2).get)
	if err != nil {
		t.Fatal(err)
	}
	set := randomAdapters(t, cfg, adapter.KindKron, 4)
	if _, err := m.NewRun(set); err == nil || err.Error() != "adapter set lacks the multiple-choice head tensor pre_classifier.weight (see model.NewHead)" {
		t.Errorf("set without head: got %v", err)
	}
	run, err := m.NewRun(encoderSet(t, cfg, adapter.KindKron))
	if err != nil {
		t.Fatal(err)
	}
	b := tinyBatch(cfg, rand.New(rand.NewPCG(1, 1)))
	b.IDs[3] = 30
	if err := run.Forward(b); err == nil || err.Error() != "encoder forward: token 30 at position 3 is outside the vocabulary of 30" {
		t.Errorf("got %v", err)
	}
	b = tinyBatch(cfg, rand.New(rand.NewPCG(1, 1)))
	b.Labels = []int{3, 0}
	if err := run.Forward(b); err != nil {
		t.Fatal(err)
	}
	if _, err := run.LossAndGrad(); err == nil || err.Error() != "loss: label 3 of question 0 is not one of 3 choices" {
		t.Errorf("got %v", err)
	}
}
