package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/compute"
)

// BERT is a frozen BERT-family encoder (BERT or DistilBERT: learned positions,
// post-LayerNorm blocks, GELU, padding mask, token types for BERT) with a
// multiple-choice head like Hugging Face's DistilBertForMultipleChoice /
// BertForMultipleChoice. The head's trainable tensors live in the adapter Set
// (Set.Dense); everything here is read-only, so clients share one BERT.
type BERT struct {
	Cfg       *Config
	WordEmb   []float32 // vocab×d
	PosEmb    []float32 // MaxPositions×d
	TypeEmb   []float32 // TypeVocab×d (BERT; nil for DistilBERT)
	EmbLNW    []float32 // d
	EmbLNB    []float32 // d
	Blocks    []BERTBlock
	Pooler    *FrozenLinear // BERT only: tanh(pooler(h_CLS)) feeds the classifier
	dropAfter bool          // BERT drops out the attention output before its residual; DistilBERT does not
}

// BERTBlock is one post-LayerNorm transformer block.
type BERTBlock struct {
	Q, K, V, O *FrozenLinear
	LN1W, LN1B []float32 // after attention + residual
	FF1, FF2   *FrozenLinear
	LN2W, LN2B []float32 // after feed-forward + residual
}

// Head tensor names, as Hugging Face's multiple-choice models name them.
const (
	HeadPreW = "pre_classifier.weight" // DistilBERT: d×d
	HeadPreB = "pre_classifier.bias"   // 1×d
	HeadClsW = "classifier.weight"     // 1×d
	HeadClsB = "classifier.bias"       // 1×1
)

// NewBERT assembles an encoder from Hugging Face-named weights (with
// "distilbert." or "bert." prefixes).
func NewBERT(cfg *Config, src TensorSource) (*BERT, error) {
	if cfg.Family != Encoder {
		return nil, fmt.Errorf("model_type %q is not an encoder", cfg.ModelType)
	}
	d, f := cfg.Hidden, cfg.Intermediate
	wl := &weightLoader{src: src}
	get := wl.get
	linear := func(name string, dOut, dIn int) *FrozenLinear { return wl.linear(name, dOut, dIn, true) }
	m := &BERT{Cfg: cfg}
	switch cfg.ModelType {
	case "distilbert":
		p := "distilbert.embeddings."
		m.WordEmb = get(p+"word_embeddings.weight", cfg.Vocab, d)
		m.PosEmb = get(p+"position_embeddings.weight", cfg.MaxPositions, d)
		m.EmbLNW, m.EmbLNB = get(p+"LayerNorm.weight", d), get(p+"LayerNorm.bias", d)
		for i := 0; i < cfg.Layers && wl.err == nil; i++ {
			p := fmt.Sprintf("distilbert.transformer.layer.%d.", i)
			m.Blocks = append(m.Blocks, BERTBlock{
				Q: linear(p+"attention.q_lin", d, d), K: linear(p+"attention.k_lin", d, d),
				V: linear(p+"attention.v_lin", d, d), O: linear(p+"attention.out_lin", d, d),
				LN1W: get(p+"sa_layer_norm.weight", d), LN1B: get(p+"sa_layer_norm.bias", d),
				FF1: linear(p+"ffn.lin1", f, d), FF2: linear(p+"ffn.lin2", d, f),
				LN2W: get(p+"output_layer_norm.weight", d), LN2B: get(p+"output_layer_norm.bias", d),
			})
		}
	case "bert":
		m.dropAfter = true
		p := "bert.embeddings."
		m.WordEmb = get(p+"word_embeddings.weight", cfg.Vocab, d)
		m.PosEmb = get(p+"position_embeddings.weight", cfg.MaxPositions, d)
		m.TypeEmb = get(p+"token_type_embeddings.weight", cfg.TypeVocab, d)
		m.EmbLNW, m.EmbLNB = get(p+"LayerNorm.weight", d), get(p+"LayerNorm.bias", d)
		for i := 0; i < cfg.Layers && wl.err == nil; i++ {
			p := fmt.Sprintf("bert.encoder.layer.%d.", i)
			m.Blocks = append(m.Blocks, BERTBlock{
				Q: linear(p+"attention.self.query", d, d), K: linear(p+"attention.self.key", d, d),
				V: linear(p+"attention.self.value", d, d), O: linear(p+"attention.output.dense", d, d),
				LN1W: get(p+"attention.output.LayerNorm.weight", d), LN1B: get(p+"attention.output.LayerNorm.bias", d),
				FF1: linear(p+"intermediate.dense", f, d), FF2: linear(p+"output.dense", d, f),
				LN2W: get(p+"output.LayerNorm.weight", d), LN2B: get(p+"output.LayerNorm.bias", d),
			})
		}
		m.Pooler = linear("bert.pooler.dense", d, d)
	default:
		return nil, fmt.Errorf("unsupported encoder model_type %q", cfg.ModelType)
	}
	if wl.err != nil {
		return nil, wl.err
	}
	if cfg.Activation != "gelu" {
		return nil, fmt.Errorf("encoder activation %q: only exact gelu is supported", cfg.Activation)
	}
	return m, nil
}

func (m *BERT) linears() []*FrozenLinear {
	var out []*FrozenLinear
	for _, b := range m.Blocks {
		out = append(out, b.Q, b.K, b.V, b.O, b.FF1, b.FF2)
	}
	return out
}

// NewHead returns freshly initialized multiple-choice head tensors for the
// adapter Set, initialized as Hugging Face does (weights N(0, 0.02), biases
// 0): pre_classifier (DistilBERT only) and classifier.
func NewHead(cfg *Config, rng *rand.Rand) []adapter.Dense {
	d := cfg.Hidden
	dense := func(name string, rows, cols int, std float64) adapter.Dense {
		t := adapter.Dense{Name: name, Rows: rows, Cols: cols, Data: make([]float32, rows*cols), Grad: make([]float32, rows*cols)}
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64() * std)
		}
		return t
	}
	var out []adapter.Dense
	if cfg.ModelType == "distilbert" {
		out = append(out, dense(HeadPreW, d, d, 0.02), dense(HeadPreB, 1, d, 0))
	}
	return append(out, dense(HeadClsW, 1, d, 0.02), dense(HeadClsB, 1, 1, 0))
}

// EncoderBatch is B questions × C choices, one (context, choice) sequence of
// T tokens each: sequence s = b·C + c.
type EncoderBatch struct {
	B, C, T int
	IDs     []int     // (B·C)×T token ids, padded
	Types   []int     // (B·C)×T token type ids (BERT; DistilBERT ignores them), or nil
	Mask    []float32 // (B·C)×T: 1 for real tokens, 0 for padding
	Labels  []int     // B gold choice indices (for the loss)
	// NumChoices, when non-nil, says how many of a question's C sequences
	// are real choices (questions with fewer choices are padded with dummy
	// sequences, left out of the softmax).
	NumChoices []int
}

// choices is how many real choices question q has.
func (b *EncoderBatch) choices(q int) int {
	if b.NumChoices == nil {
		return b.C
	}
	return b.NumChoices[q]
}

// BERTRun is one client's forward/backward state on a shared BERT.
type BERTRun struct {
	m    *BERT
	lin  []*AdaptedLinear
	head *EncoderHead
	// Drop is the adapter input dropout; Base is the frozen model's own
	// training-mode dropout (hidden, attention, classifier). Both nil at
	// inference.
	Drop *adapter.Dropout
	Base *rand.Rand

	batch  EncoderBatch
	blocks []encoderActs
	hidden []float32 // final hidden states (n×d)
	cls    []float32 // (B·C)×d CLS rows
	// Logits are the choice scores, B×C.
	Logits []float32
	// bw is Backward's scratch, kept between steps: allocating it afresh
	// (50 MB a DistilBERT step) cost page faults, zeroing and GC work
	// worth ~10% of the step.
	bw struct{ dx, ds, df, dgl, df1, dx1, dctx, dq, dk, dv []float32 }
	// emb and x0 are the embeddings before and after their LayerNorm, kept
	// between steps like every block's buffers (fresh 3 MB slices each step
	// were page faults worth 4% of a DistilBERT step).
	emb, x0 []float32
}

// EncoderHead is the multiple-choice head on each sequence's first ([CLS])
// hidden state: DistilBERT's relu(pre_classifier) or BERT's frozen
// tanh(pooler), dropout, then classifier, with the loss over each
// question's choices. Its work is (B·C)×d², so both engines run it on the
// host (the GPU engine downloads the CLS rows and uploads their gradient).
type EncoderHead struct {
	m                *BERT
	t                map[string]*adapter.Dense
	cls              []float32 // (B·C)×d input rows
	pre, act, actD   []float32 // (B·C)×d: pre-activation (pre_classifier or pooler), relu/tanh, after dropout
	mask             adapter.Mask
	batch            EncoderBatch
	Logits           []float32 // B×C
	dlog, dact, dpre []float32
	dcls             []float32
}

// NewEncoderHead binds the Set's head tensors (model.NewHead) to m.
func NewEncoderHead(m *BERT, set *adapter.Set) (*EncoderHead, error) {
	h := &EncoderHead{m: m, t: map[string]*adapter.Dense{}}
	d := m.Cfg.Hidden
	names := []string{HeadClsW, HeadClsB}
	want := map[string][2]int{HeadClsW: {1, d}, HeadClsB: {1, 1}}
	if m.Cfg.ModelType == "distilbert" {
		names = append([]string{HeadPreW, HeadPreB}, names...)
		want[HeadPreW], want[HeadPreB] = [2]int{d, d}, [2]int{1, d}
	}
	if set != nil {
		for i := range set.Dense {
			t := &set.Dense[i]
			if s, ok := want[t.Name]; ok {
				if t.Rows != s[0] || t.Cols != s[1] {
					return nil, fmt.Errorf("head tensor %s is %d×%d, want %d×%d", t.Name, t.Rows, t.Cols, s[0], s[1])
				}
				h.t[t.Name] = t
			}
		}
	}
	for _, name := range names {
		if h.t[name] == nil {
			return nil, fmt.Errorf("adapter set lacks the multiple-choice head tensor %s (see model.NewHead)", name)
		}
	}
	return h, nil
}

type encoderActs struct {
	// x is the block's input (the previous block's out), out its output.
	x, out, q, k, v, attProbs, attStats, ctx, o, s1, mean1, rstd1, x1 []float32
	f1, gl, glGrad, f2, s2, mean2, rstd2                              []float32
	attMask, oMask, fMask                                             adapter.Mask
}

// NewRun binds a Set (adapters on the block linears, head tensors in Dense).
func (m *BERT) NewRun(set *adapter.Set) (*BERTRun, error) {
	lin, err := bindAdapters(m.Cfg, m.linears(), set)
	if err != nil {
		return nil, err
	}
	head, err := NewEncoderHead(m, set)
	if err != nil {
		return nil, err
	}
	return &BERTRun{m: m, lin: lin, blocks: make([]encoderActs, len(m.Blocks)), head: head}, nil
}

// Dropout is the frozen model's training-mode dropout of probability p
// drawing from base, or nil at inference (base nil) or when p is 0.
func Dropout(base *rand.Rand, p float32) *adapter.Dropout {
	if base == nil || p <= 0 {
		return nil
	}
	return &adapter.Dropout{P: p, Rng: base}
}

func (r *BERTRun) dropout(p float32) *adapter.Dropout { return Dropout(r.Base, p) }

// CheckBatch validates an encoder batch's sizes, token ids and token types
// against the model (both engines' Forward start with it).
func (m *BERT) CheckBatch(b EncoderBatch) error {
	c := m.Cfg
	N, T := b.B*b.C, b.T
	n := N * T
	switch {
	case b.B <= 0 || b.C <= 0 || T <= 0:
		return fmt.Errorf("encoder forward: empty batch %d×%d×%d", b.B, b.C, T)
	case T > c.MaxPositions:
		return fmt.Errorf("encoder forward: sequence of %d tokens exceeds the %d positions", T, c.MaxPositions)
	case len(b.IDs) != n || len(b.Mask) != n || (b.Types != nil && len(b.Types) != n):
		return fmt.Errorf("encoder forward: ids/mask/types lengths %d/%d/%d for %d×%d sequences of %d", len(b.IDs), len(b.Mask), len(b.Types), b.B, b.C, T)
	}
	for i, id := range b.IDs {
		if id < 0 || id >= c.Vocab {
			return fmt.Errorf("encoder forward: token %d at position %d is outside the vocabulary of %d", id, i, c.Vocab)
		}
		// DistilBERT has no token-type embedding and ignores the ids.
		if b.Types != nil && m.TypeEmb != nil && (b.Types[i] < 0 || b.Types[i] >= c.TypeVocab) {
			return fmt.Errorf("encoder forward: token type %d at position %d (want < %d)", b.Types[i], i, c.TypeVocab)
		}
	}
	return nil
}

// DropsAttentionOutput reports whether a block drops out its attention
// output before the residual (BERT does, DistilBERT does not).
func (m *BERT) DropsAttentionOutput() bool { return m.dropAfter }

// Forward scores every choice of the batch into Logits (B×C).
func (r *BERTRun) Forward(b EncoderBatch) error {
	c := r.m.Cfg
	N, T := b.B*b.C, b.T
	n, d, f := N*T, c.Hidden, c.Intermediate
	if err := r.m.CheckBatch(b); err != nil {
		return err
	}
	r.batch = b
	eps := float32(c.LayerNormEps)
	// Embeddings: word + position (+ type), LayerNorm, dropout.
	r.emb = grow(r.emb, n*d)
	e := r.emb
	for i, id := range b.IDs {
		row := e[i*d : (i+1)*d]
		copy(row, r.m.WordEmb[id*d:(id+1)*d])
		compute.Axpy(1, r.m.PosEmb[(i%T)*d:(i%T+1)*d], row)
		if r.m.TypeEmb != nil {
			tt := 0
			if b.Types != nil {
				tt = b.Types[i]
			}
			compute.Axpy(1, r.m.TypeEmb[tt*d:(tt+1)*d], row)
		}
	}
	r.x0 = grow(r.x0, n*d)
	x := r.x0
	mean, rstd := make([]float32, n), make([]float32, n)
	layernormForward(x, mean, rstd, e, r.m.EmbLNW, r.m.EmbLNB, n, d, eps)
	var embMask adapter.Mask
	r.dropout(c.HiddenDropout).Sample(&embMask, n*d)
	embMask.Apply(x, x)

	s := attentionShape{B: N, T: T, H: c.Heads, KV: c.Heads, HD: c.HeadDim}
	for l := range r.m.Blocks {
		w := &r.m.Blocks[l]
		a := &r.blocks[l]
		lin := r.lin[l*EncoderLinears : (l+1)*EncoderLinears]
		a.x = x
		a.q, a.k, a.v = grow(a.q, n*d), grow(a.k, n*d), grow(a.v, n*d)
		lin[EncQ].Forward(x, n, a.q, r.Drop)
		lin[EncK].Forward(x, n, a.k, r.Drop)
		lin[EncV].Forward(x, n, a.v, r.Drop)
		a.attStats, a.ctx = grow(a.attStats, N*c.Heads*T*2), grow(a.ctx, n*d)
		if keepAttention(len(r.blocks), N, c.Heads, T) {
			a.attProbs = grow(a.attProbs, N*c.Heads*T*T)
		} else {
			a.attProbs = nil // a longer batch than before: let the old buffer go
		}
		r.dropout(c.AttnDropout).Sample(&a.attMask, N*c.Heads*T*T)
		attentionForward(a.ctx, a.attStats, a.attProbs, a.q, a.k, a.v, b.Mask, s, &a.attMask)
		a.o = grow(a.o, n*d)
		lin[EncO].Forward(a.ctx, n, a.o, r.Drop)
		a.oMask = adapter.Mask{}
		if r.m.dropAfter {
			r.dropout(c.HiddenDropout).Sample(&a.oMask, n*d)
			a.oMask.Apply(a.o, a.o)
		}
		a.s1 = grow(a.s1, n*d)
		for i := range a.s1 {
			a.s1[i] = a.o[i] + x[i]
		}
		a.x1, a.mean1, a.rstd1 = grow(a.x1, n*d), grow(a.mean1, n), grow(a.rstd1, n)
		layernormForward(a.x1, a.mean1, a.rstd1, a.s1, w.LN1W, w.LN1B, n, d, eps)
		a.f1, a.gl, a.glGrad = grow(a.f1, n*f), grow(a.gl, n*f), grow(a.glGrad, n*f)
		lin[EncFF1].Forward(a.x1, n, a.f1, r.Drop)
		geluForward(a.gl, a.glGrad, a.f1)
		a.f2 = grow(a.f2, n*d)
		lin[EncFF2].Forward(a.gl, n, a.f2, r.Drop)
		r.dropout(c.HiddenDropout).Sample(&a.fMask, n*d)
		a.fMask.Apply(a.f2, a.f2)
		a.s2 = grow(a.s2, n*d)
		for i := range a.s2 {
			a.s2[i] = a.f2[i] + a.x1[i]
		}
		a.out = grow(a.out, n*d)
		x = a.out
		a.mean2, a.rstd2 = grow(a.mean2, n), grow(a.rstd2, n)
		layernormForward(x, a.mean2, a.rstd2, a.s2, w.LN2W, w.LN2B, n, d, eps)
	}
	r.hidden = x
	r.cls = grow(r.cls, N*d)
	for sq := 0; sq < N; sq++ {
		copy(r.cls[sq*d:(sq+1)*d], x[sq*T*d:(sq*T+1)*d])
	}
	r.head.Forward(r.cls, b, r.dropout(c.ClassifierDropout))
	r.Logits = r.head.Logits
	return nil
}

// Forward scores the batch's sequences from their [CLS] rows cls
// ((B·C)×d) into Logits (B×C); drop is the classifier dropout (nil at
// inference).
func (h *EncoderHead) Forward(cls []float32, b EncoderBatch, drop *adapter.Dropout) {
	d := h.m.Cfg.Hidden
	N := b.B * b.C
	h.batch, h.cls = b, cls
	h.pre, h.act, h.actD = grow(h.pre, N*d), grow(h.act, N*d), grow(h.actD, N*d)
	if h.m.Pooler != nil { // BERT: tanh(pooler)
		h.m.Pooler.Forward(cls, N, h.pre)
		for i, v := range h.pre {
			h.act[i] = float32(math.Tanh(float64(v)))
		}
	} else { // DistilBERT: relu(pre_classifier)
		pw, pb := h.t[HeadPreW], h.t[HeadPreB]
		compute.Gemm(compute.NoTrans, compute.Trans, N, d, d, 1, cls, d, pw.Data, d, 0, h.pre, d)
		for sq := 0; sq < N; sq++ {
			compute.Axpy(1, pb.Data, h.pre[sq*d:(sq+1)*d])
		}
		for i, v := range h.pre {
			h.act[i] = max(v, 0)
		}
	}
	drop.Sample(&h.mask, N*d)
	h.mask.Apply(h.actD, h.act)
	cw, cb := h.t[HeadClsW], h.t[HeadClsB]
	h.Logits = grow(h.Logits, N)
	for sq := 0; sq < N; sq++ {
		h.Logits[sq] = compute.Dot(h.actD[sq*d:(sq+1)*d], cw.Data) + cb.Data[0]
	}
}

// LossAndGrad is the mean cross-entropy of softmax over each question's
// choices against batch.Labels; it stores ∂loss/∂logits for Backward.
func (r *BERTRun) LossAndGrad() (float64, error) { return r.head.LossAndGrad() }

// LossAndGrad is BERTRun.LossAndGrad on the head's last Forward.
func (h *EncoderHead) LossAndGrad() (float64, error) {
	b := h.batch
	if len(b.Labels) != b.B {
		return 0, fmt.Errorf("loss: %d labels for %d questions", len(b.Labels), b.B)
	}
	h.dlog = grow(h.dlog, b.B*b.C)
	clear(h.dlog)
	lp := make([]float32, b.C)
	var loss float64
	for q, y := range b.Labels {
		nc := b.choices(q)
		if nc < 1 || nc > b.C {
			return 0, fmt.Errorf("loss: question %d has %d choices, batch allows 1…%d", q, nc, b.C)
		}
		if y < 0 || y >= nc {
			return 0, fmt.Errorf("loss: label %d of question %d is not one of %d choices", y, q, nc)
		}
		LogSoftmax(lp[:nc], h.Logits[q*b.C:q*b.C+nc])
		loss -= float64(lp[y])
		for c, l := range lp[:nc] {
			h.dlog[q*b.C+c] = float32(math.Exp(float64(l))) / float32(b.B)
		}
		h.dlog[q*b.C+y] -= 1 / float32(b.B)
	}
	return loss / float64(b.B), nil
}

// Backward accumulates the head tensors' and the adapters' gradients.
func (r *BERTRun) Backward() {
	c := r.m.Cfg
	b := r.batch
	N, T := b.B*b.C, b.T
	n, d, f := N*T, c.Hidden, c.Intermediate
	dcls := r.head.Backward()
	bw := &r.bw
	for _, p := range []*[]float32{&bw.dx, &bw.ds, &bw.df, &bw.dx1, &bw.dctx, &bw.dq, &bw.dk, &bw.dv} {
		*p = grow(*p, n*d)
	}
	bw.dgl, bw.df1 = grow(bw.dgl, n*f), grow(bw.df1, n*f)
	// Every buffer but dx is overwritten before it is read.
	dx, ds, df, dgl, df1, dx1 := bw.dx, bw.ds, bw.df, bw.dgl, bw.df1, bw.dx1
	dctx, dq, dk, dv := bw.dctx, bw.dq, bw.dk, bw.dv
	clear(dx)
	for sq := 0; sq < N; sq++ {
		copy(dx[sq*T*d:(sq*T+1)*d], dcls[sq*d:(sq+1)*d])
	}
	s := attentionShape{B: N, T: T, H: c.Heads, KV: c.Heads, HD: c.HeadDim}
	for l := len(r.m.Blocks) - 1; l >= 0; l-- {
		w := &r.m.Blocks[l]
		a := &r.blocks[l]
		lin := r.lin[l*EncoderLinears : (l+1)*EncoderLinears]
		// out = LN2(dropout(ff2(gelu(ff1(x1)))) + x1)
		// Each gradient buffer's first write overwrites it (layernormBackward,
		// Mask.Apply, BackwardInto, geluBackward): no clearing passes.
		layernormBackward(ds, dx, a.s2, w.LN2W, a.mean2, a.rstd2, n, d)
		copy(dx1, ds) // residual
		a.fMask.Apply(df, ds)
		lin[EncFF2].BackwardInto(df, n, dgl)
		geluBackward(df1, dgl, a.glGrad)
		lin[EncFF1].Backward(df1, n, dx1)
		// x1 = LN1(dropout?(o(attention(q(x), k(x), v(x)))) + x)
		layernormBackward(ds, dx1, a.s1, w.LN1W, a.mean1, a.rstd1, n, d)
		copy(dx, ds) // residual
		a.oMask.Apply(df, ds)
		lin[EncO].BackwardInto(df, n, dctx)
		clear(dq)
		clear(dk)
		clear(dv)
		attentionBackward(dq, dk, dv, dctx, a.attStats, a.attProbs, a.q, a.k, a.v, b.Mask, s, &a.attMask)
		// The first block's input is the frozen embeddings: nothing below needs
		// its gradient, so skip the three input-gradient GEMMs there.
		dIn := dx
		if l == 0 {
			dIn = nil
		}
		lin[EncQ].Backward(dq, n, dIn)
		lin[EncK].Backward(dk, n, dIn)
		lin[EncV].Backward(dv, n, dIn)
	}
}

// Backward accumulates the head tensors' gradients from the loss
// LossAndGrad kept and returns ∂L/∂cls ((B·C)×d; valid until the next
// call).
func (h *EncoderHead) Backward() []float32 {
	d := h.m.Cfg.Hidden
	N := h.batch.B * h.batch.C
	cw, cb := h.t[HeadClsW], h.t[HeadClsB]
	// logit = actD·w + b
	h.dact, h.dpre, h.dcls = grow(h.dact, N*d), grow(h.dpre, N*d), grow(h.dcls, N*d)
	dactD := make([]float32, N*d)
	for sq := 0; sq < N; sq++ {
		g := h.dlog[sq]
		cb.Grad[0] += g
		compute.Axpy(g, h.actD[sq*d:(sq+1)*d], cw.Grad)
		compute.Axpy(g, cw.Data, dactD[sq*d:(sq+1)*d])
	}
	clear(h.dact)
	h.mask.AddBackward(h.dact, dactD)
	clear(h.dpre)
	clear(h.dcls)
	if h.m.Pooler != nil {
		for i, a := range h.act {
			h.dpre[i] = h.dact[i] * (1 - a*a)
		}
		h.m.Pooler.BackwardInput(h.dpre, N, h.dcls)
	} else {
		for i, v := range h.pre {
			if v > 0 {
				h.dpre[i] = h.dact[i]
			}
		}
		pw, pb := h.t[HeadPreW], h.t[HeadPreB]
		compute.Gemm(compute.Trans, compute.NoTrans, d, d, N, 1, h.dpre, d, h.cls, d, 1, pw.Grad, d)
		for sq := 0; sq < N; sq++ {
			compute.Axpy(1, h.dpre[sq*d:(sq+1)*d], pb.Grad)
		}
		compute.Gemm(compute.NoTrans, compute.NoTrans, N, d, d, 1, h.dpre, d, pw.Data, d, 0, h.dcls, d)
	}
	return h.dcls
}
