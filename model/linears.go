package model

import (
	"fmt"

	"github.com/kronfed/kronfed/adapter"
)

// Linear is one frozen linear layer y = W·x (+ bias) of a model: W is DOut×DIn.
type Linear struct {
	Name      string // the Hugging Face module name, e.g. "model.layers.0.self_attn.q_proj"
	DOut, DIn int
	Bias      bool
}

// The adapted linears of one decoder block, in their AdaptedLinears order
// (as llm.c names its l_qkvw, l_attprojw, …): block l's layer i is number
// l·DecoderLinears + i, and a decoder's lm_head comes last.
const (
	DecQ = iota
	DecK
	DecV
	DecO
	DecGate
	DecUp
	DecDown
	DecoderLinears // per block
)

// The adapted linears of one encoder block, in their AdaptedLinears order.
const (
	EncQ = iota
	EncK
	EncV
	EncO
	EncFF1
	EncFF2
	EncoderLinears // per block
)

// Targets lists the layers adapters go on (AdaptedLinears), as
// adapter.Targets.
func (c *Config) Targets() []adapter.Target {
	var out []adapter.Target
	for _, l := range c.AdaptedLinears() {
		out = append(out, adapter.Target{Name: l.Name, DOut: l.DOut, DIn: l.DIn})
	}
	return out
}

// AdaptedLinears lists the linear layers that carry adapters, counting as the
// Kron-LoRA paper does: every linear of every transformer block, and for
// decoders also lm_head. Names follow the Hugging Face checkpoints, so adapter
// files and PEFT exports line up with the base model's keys.
func (c *Config) AdaptedLinears() []Linear {
	var out []Linear
	h, ff := c.Hidden, c.Intermediate
	qOut, kvOut := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	for i := 0; i < c.Layers; i++ {
		switch c.ModelType {
		case "distilbert":
			p := fmt.Sprintf("distilbert.transformer.layer.%d.", i)
			out = append(out,
				Linear{p + "attention.q_lin", h, h, true},
				Linear{p + "attention.k_lin", h, h, true},
				Linear{p + "attention.v_lin", h, h, true},
				Linear{p + "attention.out_lin", h, h, true},
				Linear{p + "ffn.lin1", ff, h, true},
				Linear{p + "ffn.lin2", h, ff, true},
			)
		case "bert":
			p := fmt.Sprintf("bert.encoder.layer.%d.", i)
			out = append(out,
				Linear{p + "attention.self.query", h, h, true},
				Linear{p + "attention.self.key", h, h, true},
				Linear{p + "attention.self.value", h, h, true},
				Linear{p + "attention.output.dense", h, h, true},
				Linear{p + "intermediate.dense", ff, h, true},
				Linear{p + "output.dense", h, ff, true},
			)
		case "llama", "mistral":
			p := fmt.Sprintf("model.layers.%d.", i)
			out = append(out,
				Linear{p + "self_attn.q_proj", qOut, h, false},
				Linear{p + "self_attn.k_proj", kvOut, h, false},
				Linear{p + "self_attn.v_proj", kvOut, h, false},
				Linear{p + "self_attn.o_proj", h, qOut, false},
				Linear{p + "mlp.gate_proj", ff, h, false},
				Linear{p + "mlp.up_proj", ff, h, false},
				Linear{p + "mlp.down_proj", h, ff, false},
			)
		}
	}
	if c.Family == Decoder {
		out = append(out, Linear{"lm_head", c.Vocab, h, false})
	}
	return out
}

// HeadLinears lists the task head that is trained in full (not adapted):
// encoders get a multiple-choice head like Hugging Face's
// DistilBertForMultipleChoice, pre_classifier (hidden×hidden) + ReLU + dropout
// + classifier (1×hidden), for DistilBERT; BertForMultipleChoice's classifier
// (1×hidden) for BERT, whose pooler stays frozen as in Hugging Face. Decoders
// score by log-likelihood and have no extra head.
func (c *Config) HeadLinears() []Linear {
	switch c.ModelType {
	case "distilbert":
		return []Linear{{"pre_classifier", c.Hidden, c.Hidden, true}, {"classifier", 1, c.Hidden, true}}
	case "bert":
		return []Linear{{"classifier", 1, c.Hidden, true}}
	}
	return nil
}

// Params is the number of weights (and biases) of the layer.
func (l Linear) Params() int {
	n := l.DOut * l.DIn
	if l.Bias {
		n += l.DOut
	}
	return n
}
