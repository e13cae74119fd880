package model

import (
	"fmt"
	"math"

	"github.com/kronfed/kronfed/adapter"
)

// Llama is a frozen Llama-family causal LM (Llama, Mistral): RMSNorm, RoPE,
// grouped-query attention (with Mistral's sliding window), SwiGLU. It is
// read-only after loading, so any number of LlamaRuns (one per client) can
// share one Llama.
type Llama struct {
	Cfg    *Config
	Rope   RopeStyle
	Embed  []float32 // vocab×d
	Blocks []LlamaBlock
	Norm   []float32     // d
	LMHead *FrozenLinear // vocab×d (shares Embed's storage when tied)

	cos, sin []float32 // RoPE table: MaxPositions×(hd/2)
}

// LlamaBlock is one transformer block's frozen weights.
type LlamaBlock struct {
	AttnNorm, FFNNorm []float32 // d
	Q, K, V, O        *FrozenLinear
	Gate, Up, Down    *FrozenLinear
}

// TensorSource yields a model's weights by Hugging Face name, checked against
// the shape the config implies (row-major, e.g. [d_out, d_in]). Loaders for
// GGUF and safetensors map their own names onto these.
type TensorSource func(name string, shape ...int) ([]float32, error)

// NewLlama assembles a Llama-family decoder from its weights. rope says how the Q/K
// weights lay out rotary pairs: RopeHalf for Hugging Face checkpoints,
// RopeInterleaved for Meta's original layout (llama2.c, GGUF).
func NewLlama(cfg *Config, rope RopeStyle, src TensorSource) (*Llama, error) {
	if cfg.Family != Decoder {
		return nil, fmt.Errorf("model_type %q is not a decoder", cfg.ModelType)
	}
	if cfg.HeadDim%2 != 0 {
		return nil, fmt.Errorf("head dim %d must be even for RoPE", cfg.HeadDim)
	}
	d, f, v := cfg.Hidden, cfg.Intermediate, cfg.Vocab
	qw, kw := cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	m := &Llama{Cfg: cfg, Rope: rope}
	wl := &weightLoader{src: src}
	get := wl.get
	linear := func(name string, dOut, dIn int) *FrozenLinear { return wl.linear(name, dOut, dIn, false) }
	m.Embed = get("model.embed_tokens.weight", v, d)
	for i := 0; i < cfg.Layers && wl.err == nil; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		m.Blocks = append(m.Blocks, LlamaBlock{
			AttnNorm: get(p+"input_layernorm.weight", d),
			FFNNorm:  get(p+"post_attention_layernorm.weight", d),
			Q:        linear(p+"self_attn.q_proj", qw, d),
			K:        linear(p+"self_attn.k_proj", kw, d),
			V:        linear(p+"self_attn.v_proj", kw, d),
			O:        linear(p+"self_attn.o_proj", d, qw),
			Gate:     linear(p+"mlp.gate_proj", f, d),
			Up:       linear(p+"mlp.up_proj", f, d),
			Down:     linear(p+"mlp.down_proj", d, f),
		})
	}
	m.Norm = get("model.norm.weight", d)
	if cfg.TieWordEmbeddings {
		if wl.err == nil {
			m.LMHead, wl.err = NewFrozenLinear(v, d, m.Embed, nil)
		}
	} else {
		m.LMHead = linear("lm_head", v, d)
	}
	if wl.err != nil {
		return nil, wl.err
	}
	m.cos, m.sin = RopeTable(cfg.MaxPositions, cfg.HeadDim, cfg.RopeTheta)
	return m, nil
}

// linears lists the adaptable layers in Config.AdaptedLinears order.
func (m *Llama) linears() []*FrozenLinear {
	var out []*FrozenLinear
	for _, b := range m.Blocks {
		out = append(out, b.Q, b.K, b.V, b.O, b.Gate, b.Up, b.Down)
	}
	return append(out, m.LMHead)
}

// bindAdapters pairs each adaptable layer with the Set's adapter of the same
// module name (see AdapterLayers).
func bindAdapters(cfg *Config, frozen []*FrozenLinear, set *adapter.Set) ([]*AdaptedLinear, error) {
	layers, err := AdapterLayers(cfg, set)
	if err != nil {
		return nil, err
	}
	if len(layers) != len(frozen) {
		return nil, fmt.Errorf("internal: %d adapted linears for %d layers", len(layers), len(frozen))
	}
	out := make([]*AdaptedLinear, len(frozen))
	for i := range frozen {
		out[i] = &AdaptedLinear{Frozen: frozen[i], Adapter: layers[i]}
	}
	return out, nil
}

// AdapterLayers lists, in Config.AdaptedLinears order, the Set's adapter on
// each adaptable layer (nil where it has none; all nil for a nil Set), and
// rejects modules the model does not have or whose shapes differ. Both
// engines bind adapters with it.
func AdapterLayers(cfg *Config, set *adapter.Set) ([]adapter.Layer, error) {
	targets := cfg.AdaptedLinears()
	out := make([]adapter.Layer, len(targets))
	if set == nil {
		return out, nil
	}
	index := make(map[string]int, len(targets))
	for i, t := range targets {
		index[t.Name] = i
	}
	for _, mod := range set.Modules {
		i, ok := index[mod.Name]
		if !ok {
			return nil, fmt.Errorf("adapter module %s: the %s model has no such layer", mod.Name, cfg.ModelType)
		}
		dOut, dIn := mod.Layer.Dims()
		if dOut != targets[i].DOut || dIn != targets[i].DIn {
			return nil, fmt.Errorf("adapter module %s is %d×%d, the model's layer is %d×%d", mod.Name, dOut, dIn, targets[i].DOut, targets[i].DIn)
		}
		out[i] = mod.Layer
	}
	return out, nil
}

// LlamaRun is one client's forward/backward state on a shared Llama: its
// adapters and the activations of the last batch.
type LlamaRun struct {
	m    *Llama
	lin  []*AdaptedLinear // Config.AdaptedLinears order
	Drop *adapter.Dropout // adapter input dropout; nil at inference
	// Grads, when set, makes Backward also accumulate the gradients of the
	// base's own weights (pretraining; see LlamaGrads).
	Grads *LlamaGrads

	B, T   int
	tokens []int
	pos    []int
	blocks []blockActs
	xL     []float32 // final residual stream (n×d)
	xf     []float32 // after the final norm
	rstdF  []float32
	Logits []float32 // n×vocab
	dlog   []float32 // ∂L/∂logits (n×vocab)
}

type blockActs struct {
	// attProbs (kept) or attStats (rebuilt from): the attention
	// probabilities for the backward (attentionForward).
	x, xn1, rstd1, q, k, v, attProbs, attStats, ao, x2, xn2, rstd2, g, u, h []float32
}

// NewRun binds a Set of adapters (or nil) to the decoder.
func (m *Llama) NewRun(set *adapter.Set) (*LlamaRun, error) {
	lin, err := bindAdapters(m.Cfg, m.linears(), set)
	if err != nil {
		return nil, err
	}
	return &LlamaRun{m: m, lin: lin, blocks: make([]blockActs, len(m.Blocks))}, nil
}

func (r *LlamaRun) shape() attentionShape {
	c := r.m.Cfg
	return attentionShape{B: r.B, T: r.T, H: c.Heads, KV: c.KVHeads, HD: c.HeadDim, Causal: true, Window: c.SlidingWindow}
}

// Forward runs B sequences of T token ids (row-major B×T; pad the ends of
// short sequences with any valid id and ignore their outputs) and fills
// Logits ((B·T)×vocab).
func (r *LlamaRun) Forward(tokens []int, B, T int) error {
	c := r.m.Cfg
	if len(tokens) != B*T {
		return fmt.Errorf("decoder forward: %d tokens for a %d×%d batch", len(tokens), B, T)
	}
	if T > c.MaxPositions {
		return fmt.Errorf("decoder forward: sequence of %d tokens exceeds the context of %d", T, c.MaxPositions)
	}
	for i, id := range tokens {
		if id < 0 || id >= c.Vocab {
			return fmt.Errorf("decoder forward: token %d at position %d is outside the vocabulary of %d", id, i, c.Vocab)
		}
	}
	r.B, r.T = B, T
	r.tokens = append(r.tokens[:0], tokens...)
	n, d, f := B*T, c.Hidden, c.Intermediate
	qw, kw := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	r.pos = growInts(r.pos, n)
	for i := range r.pos {
		r.pos[i] = i % T
	}
	x := make([]float32, n*d)
	for t, id := range tokens {
		copy(x[t*d:(t+1)*d], r.m.Embed[id*d:(id+1)*d])
	}
	s := r.shape()
	eps := float32(c.RMSNormEps)
	for l := range r.m.Blocks {
		w := &r.m.Blocks[l]
		a := &r.blocks[l]
		lin := r.lin[l*DecoderLinears : (l+1)*DecoderLinears]
		a.x = x
		a.xn1, a.rstd1 = grow(a.xn1, n*d), grow(a.rstd1, n)
		rmsnormForward(a.xn1, a.rstd1, x, w.AttnNorm, n, d, eps)
		a.q, a.k, a.v = grow(a.q, n*qw), grow(a.k, n*kw), grow(a.v, n*kw)
		lin[DecQ].Forward(a.xn1, n, a.q, r.Drop)
		lin[DecK].Forward(a.xn1, n, a.k, r.Drop)
		lin[DecV].Forward(a.xn1, n, a.v, r.Drop)
		ropeApply(a.q, r.pos, c.Heads, c.HeadDim, r.m.Rope, r.m.cos, r.m.sin, 1)
		ropeApply(a.k, r.pos, c.KVHeads, c.HeadDim, r.m.Rope, r.m.cos, r.m.sin, 1)
		a.attStats, a.ao = grow(a.attStats, B*c.Heads*T*2), grow(a.ao, n*qw)
		if keepAttention(len(r.blocks), B, c.Heads, T) {
			a.attProbs = grow(a.attProbs, B*c.Heads*T*T)
		} else {
			a.attProbs = nil // a longer batch than before: let the old buffer go
		}
		attentionForward(a.ao, a.attStats, a.attProbs, a.q, a.k, a.v, nil, s, nil)
		a.x2 = make([]float32, n*d)
		lin[DecO].Forward(a.ao, n, a.x2, r.Drop)
		for i := range a.x2 {
			a.x2[i] += x[i]
		}
		a.xn2, a.rstd2 = grow(a.xn2, n*d), grow(a.rstd2, n)
		rmsnormForward(a.xn2, a.rstd2, a.x2, w.FFNNorm, n, d, eps)
		a.g, a.u, a.h = grow(a.g, n*f), grow(a.u, n*f), grow(a.h, n*f)
		lin[DecGate].Forward(a.xn2, n, a.g, r.Drop)
		lin[DecUp].Forward(a.xn2, n, a.u, r.Drop)
		swigluForward(a.h, a.g, a.u)
		x = make([]float32, n*d)
		lin[DecDown].Forward(a.h, n, x, r.Drop)
		for i := range x {
			x[i] += a.x2[i]
		}
	}
	r.xL = x
	r.xf, r.rstdF = grow(r.xf, n*d), grow(r.rstdF, n)
	rmsnormForward(r.xf, r.rstdF, x, r.m.Norm, n, d, eps)
	r.Logits = grow(r.Logits, n*c.Vocab)
	r.lin[len(r.lin)-1].Forward(r.xf, n, r.Logits, r.Drop)
	return nil
}

// LossAndGrad computes the mean next-token cross-entropy over the positions
// whose target is ≥ 0 (targets is B×T, −1 to ignore; target t is the token
// that should follow position t) and stores ∂loss/∂logits for Backward. It
// returns the loss and the number of positions counted.
func (r *LlamaRun) LossAndGrad(targets []int) (float64, int, error) {
	V := r.m.Cfg.Vocab
	n := r.B * r.T
	if len(targets) != n {
		return 0, 0, fmt.Errorf("loss: %d targets for %d positions", len(targets), n)
	}
	count := 0
	for i, t := range targets {
		if t >= V {
			return 0, 0, fmt.Errorf("loss: target %d at position %d is outside the vocabulary of %d", t, i, V)
		}
		if t >= 0 {
			count++
		}
	}
	r.dlog = grow(r.dlog, n*V)
	clear(r.dlog)
	if count == 0 {
		return 0, 0, nil
	}
	var loss float64
	lp := make([]float32, V)
	inv := 1 / float32(count)
	for i, t := range targets {
		if t < 0 {
			continue
		}
		LogSoftmax(lp, r.Logits[i*V:(i+1)*V])
		loss -= float64(lp[t])
		g := r.dlog[i*V : (i+1)*V]
		for j, l := range lp {
			g[j] = float32(math.Exp(float64(l))) * inv
		}
		g[t] -= inv
	}
	return loss / float64(count), count, nil
}

// Backward propagates the gradient LossAndGrad stored and accumulates every
// bound adapter's factor gradients, and with Grads set every weight's.
func (r *LlamaRun) Backward() {
	c := r.m.Cfg
	n, d, f := r.B*r.T, c.Hidden, c.Intermediate
	qw, kw := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	s := r.shape()
	g := r.Grads
	dxf := make([]float32, n*d)
	head := r.lin[len(r.lin)-1]
	head.Backward(r.dlog, n, dxf)
	if g != nil {
		dHead := g.LMHead
		if dHead == nil { // tied: lm_head is the embedding
			dHead = g.Embed
		}
		head.Frozen.AccumulateWeightGrad(dHead, r.dlog, r.xf, n)
		rmsnormWeightGrad(g.Norm, dxf, r.xL, r.rstdF, n, d)
	}
	dx := make([]float32, n*d)
	rmsnormBackward(dx, dxf, r.xL, r.m.Norm, r.rstdF, n, d)
	dh := make([]float32, n*f)
	dg, du := make([]float32, n*f), make([]float32, n*f)
	dxn := make([]float32, n*d)
	dao := make([]float32, n*qw)
	dq, dk, dv := make([]float32, n*qw), make([]float32, n*kw), make([]float32, n*kw)
	for l := len(r.m.Blocks) - 1; l >= 0; l-- {
		w := &r.m.Blocks[l]
		a := &r.blocks[l]
		lin := r.lin[l*DecoderLinears : (l+1)*DecoderLinears]
		var bg *LlamaBlockGrads
		if g != nil {
			bg = &g.Blocks[l]
		}
		// x3 = x2 + down(swiglu(gate(xn2), up(xn2)))
		lin[DecDown].BackwardInto(dx, n, dh) // overwrites: no clearing pass
		swigluBackward(dg, du, dh, a.g, a.u)
		lin[DecGate].BackwardInto(dg, n, dxn)
		lin[DecUp].Backward(du, n, dxn)
		if bg != nil {
			w.Down.AccumulateWeightGrad(bg.Down, dx, a.h, n)
			w.Gate.AccumulateWeightGrad(bg.Gate, dg, a.xn2, n)
			w.Up.AccumulateWeightGrad(bg.Up, du, a.xn2, n)
			rmsnormWeightGrad(bg.FFNNorm, dxn, a.x2, a.rstd2, n, d)
		}
		rmsnormBackward(dx, dxn, a.x2, w.FFNNorm, a.rstd2, n, d)
		// x2 = x + o(attention(rope(q(xn1)), rope(k(xn1)), v(xn1)))
		lin[DecO].BackwardInto(dx, n, dao)
		if bg != nil {
			w.O.AccumulateWeightGrad(bg.O, dx, a.ao, n)
		}
		clear(dq)
		clear(dk)
		clear(dv)
		attentionBackward(dq, dk, dv, dao, a.attStats, a.attProbs, a.q, a.k, a.v, nil, s, nil)
		ropeApply(dq, r.pos, c.Heads, c.HeadDim, r.m.Rope, r.m.cos, r.m.sin, -1)
		ropeApply(dk, r.pos, c.KVHeads, c.HeadDim, r.m.Rope, r.m.cos, r.m.sin, -1)
		if bg != nil {
			w.Q.AccumulateWeightGrad(bg.Q, dq, a.xn1, n)
			w.K.AccumulateWeightGrad(bg.K, dk, a.xn1, n)
			w.V.AccumulateWeightGrad(bg.V, dv, a.xn1, n)
		}
		if l == 0 && g == nil {
			// The embeddings are frozen: only the adapters' gradients are
			// needed from the first block's projections.
			lin[DecQ].Backward(dq, n, nil)
			lin[DecK].Backward(dk, n, nil)
			lin[DecV].Backward(dv, n, nil)
			break
		}
		lin[DecQ].BackwardInto(dq, n, dxn)
		lin[DecK].Backward(dk, n, dxn)
		lin[DecV].Backward(dv, n, dxn)
		if bg != nil {
			rmsnormWeightGrad(bg.AttnNorm, dxn, a.x, a.rstd1, n, d)
		}
		rmsnormBackward(dx, dxn, a.x, w.AttnNorm, a.rstd1, n, d)
	}
	if g != nil {
		embeddingBackward(g.Embed, dx, r.tokens, d)
	}
}

func grow(s []float32, n int) []float32 {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]float32, n)
}

func growInts(s []int, n int) []int {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]int, n)
}
