package model

import (
	"fmt"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/compute"
)

// Training the base itself (pretraining, `client pretrain`): the gradients
// of the weights the fine-tuning engine keeps frozen. The forward pass is the
// same; LlamaRun.Backward additionally accumulates dW = dYᵀ·X for every
// linear, the RMSNorm weights' gradients and the embedding rows' gradients
// when its Grads is set.

// LlamaGrads holds one gradient per trainable tensor of a Llama, shaped as
// the tensor. With tied embeddings lm_head's gradient is added into Embed.
type LlamaGrads struct {
	Embed  []float32 // vocab×d
	Blocks []LlamaBlockGrads
	Norm   []float32 // d
	LMHead []float32 // vocab×d; nil when tied to Embed
}

// LlamaBlockGrads are one block's weight gradients (each d_out×d_in, norms d).
type LlamaBlockGrads struct {
	AttnNorm, FFNNorm          []float32
	Q, K, V, O, Gate, Up, Down []float32
}

// NewGrads allocates zero gradients for every weight of m.
func (m *Llama) NewGrads() *LlamaGrads {
	like := func(t []float32) []float32 { return make([]float32, len(t)) }
	g := &LlamaGrads{Embed: like(m.Embed), Norm: like(m.Norm)}
	if !m.Cfg.TieWordEmbeddings {
		g.LMHead = like(m.LMHead.W)
	}
	for _, b := range m.Blocks {
		g.Blocks = append(g.Blocks, LlamaBlockGrads{
			AttnNorm: like(b.AttnNorm), FFNNorm: like(b.FFNNorm),
			Q: like(b.Q.W), K: like(b.K.W), V: like(b.V.W), O: like(b.O.W),
			Gate: like(b.Gate.W), Up: like(b.Up.W), Down: like(b.Down.W),
		})
	}
	return g
}

// Params pairs every trainable tensor of m with its gradient in g, named by
// its Hugging Face name (the names the model's file uses), for an optimizer.
// Data aliases the model's weights: an optimizer step changes the model, and
// Repack must follow before the next forward.
func (m *Llama) Params(g *LlamaGrads) []adapter.Factor {
	d := m.Cfg.Hidden
	var out []adapter.Factor
	add := func(name string, rows, cols int, data, grad []float32) {
		out = append(out, adapter.Factor{Name: name, Rows: rows, Cols: cols, Data: data, Grad: grad})
	}
	lin := func(name string, l *FrozenLinear, grad []float32) { add(name, l.DOut, l.DIn, l.W, grad) }
	add("model.embed_tokens.weight", m.Cfg.Vocab, d, m.Embed, g.Embed)
	for i, b := range m.Blocks {
		p := fmt.Sprintf("model.layers.%d.", i)
		bg := &g.Blocks[i]
		add(p+"input_layernorm.weight", 1, d, b.AttnNorm, bg.AttnNorm)
		add(p+"post_attention_layernorm.weight", 1, d, b.FFNNorm, bg.FFNNorm)
		lin(p+"self_attn.q_proj.weight", b.Q, bg.Q)
		lin(p+"self_attn.k_proj.weight", b.K, bg.K)
		lin(p+"self_attn.v_proj.weight", b.V, bg.V)
		lin(p+"self_attn.o_proj.weight", b.O, bg.O)
		lin(p+"mlp.gate_proj.weight", b.Gate, bg.Gate)
		lin(p+"mlp.up_proj.weight", b.Up, bg.Up)
		lin(p+"mlp.down_proj.weight", b.Down, bg.Down)
	}
	add("model.norm.weight", 1, d, m.Norm, g.Norm)
	if g.LMHead != nil {
		lin("lm_head.weight", m.LMHead, g.LMHead)
	}
	return out
}

// Zero clears every gradient.
func (g *LlamaGrads) Zero() {
	clear(g.Embed)
	clear(g.Norm)
	clear(g.LMHead)
	for i := range g.Blocks {
		b := &g.Blocks[i]
		for _, t := range [][]float32{b.AttnNorm, b.FFNNorm, b.Q, b.K, b.V, b.O, b.Gate, b.Up, b.Down} {
			clear(t)
		}
	}
}

// Repack refreshes the packed copies of every linear after the weights were
// changed in place (an optimizer step). Not safe while another goroutine
// runs the model: pretraining owns its model alone.
func (m *Llama) Repack() {
	for _, l := range m.linears() {
		l.Repack()
	}
}

// Repack re-packs the copies of W already made (see packedFwd, packedBwd)
// after W changed in place. Not safe while another goroutine uses l.
func (l *FrozenLinear) Repack() {
	if l.W == nil {
		return // released (Model.ReleaseFP32): nothing can have changed it
	}
	if l.bf16 {
		if l.useBF16() == nil {
			return
		}
		// W holds NaN/Inf (a diverged step), which bf16 packing refuses:
		// fp32 copies carry them into the outputs, where the loss shows
		// them, instead of the stale copies hiding the divergence.
		l.bf16 = false
		l.fwd = compute.PackB(compute.Trans, l.DIn, l.DOut, l.W, l.DIn)
		l.bwd = compute.PackB(compute.NoTrans, l.DOut, l.DIn, l.W, l.DIn)
		return
	}
	if l.fwd != nil {
		l.fwd = compute.PackB(compute.Trans, l.DIn, l.DOut, l.W, l.DIn)
	}
	if l.bwd != nil {
		l.bwd = compute.PackB(compute.NoTrans, l.DOut, l.DIn, l.W, l.DIn)
	}
}

// AccumulateWeightGrad adds dyᵀ·x to dW: the weight gradient of y = x·Wᵀ.
// dy: n×d_out, x: n×d_in, dW: d_out×d_in.
func (l *FrozenLinear) AccumulateWeightGrad(dW, dy, x []float32, n int) {
	compute.Gemm(compute.Trans, compute.NoTrans, l.DOut, l.DIn, n, 1, dy, l.DOut, x, l.DIn, 1, dW, l.DIn)
}

// rmsnormWeightGrad adds ∂L/∂w to dw (d): dw[i] += Σ_t dout[t,i]·x[t,i]·r[t].
// dout, x: n×d; rstd: n. Serial: O(n·d) beside the GEMMs' O(n·d²).
func rmsnormWeightGrad(dw, dout, x, rstd []float32, n, d int) {
	for t := 0; t < n; t++ {
		r := rstd[t]
		xt, dot := x[t*d:(t+1)*d], dout[t*d:(t+1)*d]
		for i := range dw {
			dw[i] += dot[i] * xt[i] * r
		}
	}
}

// embeddingBackward adds each position's gradient dx[t] (n×d) to its token's
// embedding row of dE (vocab×d).
func embeddingBackward(dE, dx []float32, tokens []int, d int) {
	for t, id := range tokens {
		compute.Axpy(1, dx[t*d:(t+1)*d], dE[id*d:(id+1)*d])
	}
}
