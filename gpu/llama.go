package gpu

import (
	"fmt"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/gpu/kernels"
	"github.com/kronfed/kronfed/model"
)

// Llama is model.Llama's frozen weights on the device: embeddings, norms,
// every linear (bf16 or fp32, Engine.Precision) and the RoPE table. Like the
// CPU model it is read-only after upload, so any number of LlamaRuns (one
// per simulated client) share one copy of the base.
type Llama struct {
	e      *Engine
	Cfg    *model.Config
	rope   model.RopeStyle
	embed  buf // vocab×d fp32 (gathered rows feed the fp32 residual stream)
	blocks []llamaBlock
	norm   buf // d
	lmHead *frozenLinear
	cos    buf // MaxPositions×(hd/2)
	sin    buf
}

type llamaBlock struct {
	attnNorm, ffnNorm buf // d
	q, k, v, o        *frozenLinear
	gate, up, down    *frozenLinear
}

// UploadLlama copies a loaded decoder's frozen weights to the device, or
// says how much memory they need when the device has not that much free.
func UploadLlama(e *Engine, m *model.Llama) (*Llama, error) {
	c := m.Cfg
	return uploadBase(e, c.ModelType+" decoder", func(s *weightUploader) *Llama {
		g := &Llama{e: e, Cfg: c, rope: m.Rope}
		s.vec(&g.embed, m.Embed)
		for i := range m.Blocks {
			b := &m.Blocks[i]
			var gb llamaBlock
			s.vec(&gb.attnNorm, b.AttnNorm)
			s.vec(&gb.ffnNorm, b.FFNNorm)
			gb.q, gb.k, gb.v, gb.o = s.linear(b.Q), s.linear(b.K), s.linear(b.V), s.linear(b.O)
			gb.gate, gb.up, gb.down = s.linear(b.Gate), s.linear(b.Up), s.linear(b.Down)
			g.blocks = append(g.blocks, gb)
		}
		s.vec(&g.norm, m.Norm)
		g.lmHead = s.linear(m.LMHead)
		cos, sin := model.RopeTable(c.MaxPositions, c.HeadDim, c.RopeTheta)
		s.vec(&g.cos, cos)
		s.vec(&g.sin, sin)
		return g
	})
}

// Free releases the device weights.
func (m *Llama) Free() {
	e := m.e
	for _, b := range []*buf{&m.embed, &m.norm, &m.cos, &m.sin} {
		e.release(b)
	}
	for i := range m.blocks {
		b := &m.blocks[i]
		e.release(&b.attnNorm)
		e.release(&b.ffnNorm)
		for _, l := range b.linears() {
			if l != nil {
				l.free(e)
			}
		}
	}
	if m.lmHead != nil {
		m.lmHead.free(e)
	}
}

func (b *llamaBlock) linears() []*frozenLinear {
	return []*frozenLinear{b.q, b.k, b.v, b.o, b.gate, b.up, b.down}
}

// linears lists the adaptable layers in Config.AdaptedLinears order.
func (m *Llama) linears() []*frozenLinear {
	var out []*frozenLinear
	for i := range m.blocks {
		out = append(out, m.blocks[i].linears()...)
	}
	return append(out, m.lmHead)
}

// LlamaRun is model.LlamaRun on the device: one client's adapters and the
// activations of its last batch. Method for method it mirrors the CPU run,
// so train's decoder learner drives either.
type LlamaRun struct {
	m    *Llama
	lin  []adaptedLinear
	ads  []*deviceAdapter
	Drop *adapter.Dropout // adapter input dropout; nil at inference
	// Masks says where dropout masks come from (the engine's Masks by default).
	Masks DropoutSource

	B, T    int
	pos     buf // n int32
	tokens  buf // n int32
	blocks  []llamaActs
	xL      buf // final residual stream (n×d)
	xf      buf
	rstdF   buf
	logits  buf // n×vocab
	dlog    buf
	rowLoss buf // n
	targets buf // n int32
	rowIdx  buf // LogitRows' positions (int32)
	rows    buf // LogitRows' gathered rows
	scr     scratch
	// backward scratch
	dx, dxf, dxn, dh, dg, du, dao, dq, dk, dv, attD buf
}

// llamaActs are one block's saved activations: attention keeps only its
// per-row statistics (B·H·T·2), never the T×T probabilities.
type llamaActs struct {
	x, xn1, rstd1, q, k, v, attStats, ao, x2, xn2, rstd2, g, u, h buf
}

// NewRun binds a Set of adapters (or nil) to the device decoder. The Set
// stays on the host and remains the master copy (see deviceAdapter).
func (m *Llama) NewRun(set *adapter.Set) (*LlamaRun, error) {
	r := &LlamaRun{m: m, blocks: make([]llamaActs, len(m.blocks)), Masks: m.e.Masks}
	var err error
	if r.lin, r.ads, err = bindDeviceAdapters(m.e, m.Cfg, m.linears(), set); err != nil {
		return nil, err
	}
	return r, nil
}

// bindDeviceAdapters puts the Set's adapters (model.AdapterLayers) on the
// device beside the frozen layers, in Config.AdaptedLinears order; it
// returns every layer and the adapters among them.
func bindDeviceAdapters(e *Engine, cfg *model.Config, frozen []*frozenLinear, set *adapter.Set) ([]adaptedLinear, []*deviceAdapter, error) {
	layers, err := model.AdapterLayers(cfg, set)
	if err != nil {
		return nil, nil, err
	}
	if len(layers) != len(frozen) {
		return nil, nil, fmt.Errorf("internal: %d adapted linears for %d layers", len(layers), len(frozen))
	}
	lin := make([]adaptedLinear, len(frozen))
	var ads []*deviceAdapter
	for i, f := range frozen {
		lin[i].frozen = f
		if layers[i] == nil {
			continue
		}
		a, err := newDeviceAdapter(e, layers[i])
		if err != nil {
			for _, a := range ads {
				a.free(e)
			}
			return nil, nil, err
		}
		lin[i].adapter = a
		ads = append(ads, a)
	}
	return lin, ads, nil
}

// Free releases the run's device memory (not the shared weights).
func (r *LlamaRun) Free() {
	e := r.m.e
	for _, a := range r.ads {
		a.free(e)
	}
	for i := range r.blocks {
		a := &r.blocks[i]
		for _, b := range []*buf{&a.xn1, &a.rstd1, &a.q, &a.k, &a.v, &a.attStats, &a.ao, &a.x2, &a.xn2, &a.rstd2, &a.g, &a.u, &a.h, &a.x} {
			e.release(b)
		}
	}
	for _, b := range []*buf{&r.pos, &r.tokens, &r.xL, &r.xf, &r.rstdF, &r.logits, &r.dlog, &r.rowLoss, &r.targets, &r.rowIdx, &r.rows, &r.scr.act,
		&r.dx, &r.dxf, &r.dxn, &r.dh, &r.dg, &r.du, &r.dao, &r.dq, &r.dk, &r.dv, &r.attD} {
		e.release(b)
	}
}

func (r *LlamaRun) shape() kernels.AttentionShape {
	c := r.m.Cfg
	return kernels.AttentionShape{B: r.B, T: r.T, H: c.Heads, KV: c.KVHeads, HD: c.HeadDim, Causal: true, Window: c.SlidingWindow}
}

// Forward runs B sequences of T token ids (row-major B×T) and leaves the
// logits ((B·T)×vocab) on the device, as model.LlamaRun.Forward does.
func (r *LlamaRun) Forward(tokens []int, B, T int) error {
	c := r.m.Cfg
	e := r.m.e
	if len(tokens) != B*T {
		return fmt.Errorf("decoder forward: %d tokens for a %d×%d batch", len(tokens), B, T)
	}
	if T > c.MaxPositions {
		return fmt.Errorf("decoder forward: sequence of %d tokens exceeds the context of %d", T, c.MaxPositions)
	}
	ids := make([]int32, len(tokens))
	for i, id := range tokens {
		if id < 0 || id >= c.Vocab {
			return fmt.Errorf("decoder forward: token %d at position %d is outside the vocabulary of %d", id, i, c.Vocab)
		}
		ids[i] = int32(id)
	}
	r.B, r.T = B, T
	n, d, f := B*T, c.Hidden, c.Intermediate
	qw, kw := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = int32(i % T)
	}
	var s errs
	s.do(r.pullAdapters())
	s.do(upload(e, &r.tokens, ids))
	s.do(upload(e, &r.pos, pos))
	grow := func(b *buf, n int) { s.do(e.grow(b, n, 4)) }
	x := &r.blocks[0].x
	grow(x, n*d)
	if s.err != nil {
		return s.err
	}
	s.do(kernels.EmbedGatherF32(e, x.p(), r.m.embed.p(), r.tokens.p(), n, d))
	sh := r.shape()
	eps := float32(c.RMSNormEps)
	half := 0
	if r.m.rope == model.RopeHalf {
		half = 1
	}
	for l := range r.m.blocks {
		w := &r.m.blocks[l]
		a := &r.blocks[l]
		lin := r.lin[l*model.DecoderLinears : (l+1)*model.DecoderLinears]
		grow(&a.xn1, n*d)
		grow(&a.rstd1, n)
		grow(&a.q, n*qw)
		grow(&a.k, n*kw)
		grow(&a.v, n*kw)
		grow(&a.attStats, B*c.Heads*T*2)
		grow(&a.ao, n*qw)
		grow(&a.x2, n*d)
		grow(&a.xn2, n*d)
		grow(&a.rstd2, n)
		grow(&a.g, n*f)
		grow(&a.u, n*f)
		grow(&a.h, n*f)
		next := &r.xL
		if l+1 < len(r.blocks) {
			next = &r.blocks[l+1].x
		}
		grow(next, n*d)
		if s.err != nil {
			return s.err
		}
		s.do(kernels.RMSNormForward(e, a.xn1.p(), a.rstd1.p(), a.x.p(), w.attnNorm.p(), n, d, eps))
		s.do(lin[model.DecQ].forward(e, &r.scr, a.xn1, n, a.q, r.Drop, r.Masks))
		s.do(lin[model.DecK].forward(e, &r.scr, a.xn1, n, a.k, r.Drop, r.Masks))
		s.do(lin[model.DecV].forward(e, &r.scr, a.xn1, n, a.v, r.Drop, r.Masks))
		s.do(kernels.RopeApply(e, a.q.p(), r.pos.p(), r.m.cos.p(), r.m.sin.p(), n, c.Heads, c.HeadDim, half, 1))
		s.do(kernels.RopeApply(e, a.k.p(), r.pos.p(), r.m.cos.p(), r.m.sin.p(), n, c.KVHeads, c.HeadDim, half, 1))
		s.do(kernels.AttentionForward(e, a.ao.p(), a.attStats.p(), a.q.p(), a.k.p(), a.v.p(), 0, 0, 0, sh))
		s.do(lin[model.DecO].forward(e, &r.scr, a.ao, n, a.x2, r.Drop, r.Masks))
		s.do(kernels.AddF32(e, a.x2.p(), a.x.p(), n*d))
		s.do(kernels.RMSNormForward(e, a.xn2.p(), a.rstd2.p(), a.x2.p(), w.ffnNorm.p(), n, d, eps))
		s.do(lin[model.DecGate].forward(e, &r.scr, a.xn2, n, a.g, r.Drop, r.Masks))
		s.do(lin[model.DecUp].forward(e, &r.scr, a.xn2, n, a.u, r.Drop, r.Masks))
		s.do(kernels.SwiGLUForward(e, a.h.p(), a.g.p(), a.u.p(), n*f))
		s.do(lin[model.DecDown].forward(e, &r.scr, a.h, n, *next, r.Drop, r.Masks))
		s.do(kernels.AddF32(e, next.p(), a.x2.p(), n*d))
		if s.err != nil {
			return s.err
		}
	}
	grow(&r.xf, n*d)
	grow(&r.rstdF, n)
	grow(&r.logits, n*c.Vocab)
	if s.err != nil {
		return s.err
	}
	s.do(kernels.RMSNormForward(e, r.xf.p(), r.rstdF.p(), r.xL.p(), r.m.norm.p(), n, d, eps))
	s.do(r.lin[len(r.lin)-1].forward(e, &r.scr, r.xf, n, r.logits, r.Drop, r.Masks))
	return s.err
}

// pullAdapters uploads every adapter's current factors (the optimizer
// changed them on the host since the last step).
func (r *LlamaRun) pullAdapters() error {
	for _, a := range r.ads {
		if err := a.pull(r.m.e); err != nil {
			return err
		}
	}
	return nil
}

// checkTargets validates next-token targets (B×T, −1 to ignore) and returns
// them as int32 with the number of positions counted.
func checkTargets(targets []int, n, vocab int) ([]int32, int, error) {
	if len(targets) != n {
		return nil, 0, fmt.Errorf("loss: %d targets for %d positions", len(targets), n)
	}
	out := make([]int32, n)
	count := 0
	for i, t := range targets {
		if t >= vocab {
			return nil, 0, fmt.Errorf("loss: target %d at position %d is outside the vocabulary of %d", t, i, vocab)
		}
		if t >= 0 {
			count++
		} else {
			t = -1
		}
		out[i] = int32(t)
	}
	return out, count, nil
}

// LossAndGrad computes the mean next-token cross-entropy over the positions
// whose target is ≥ 0 and keeps ∂loss/∂logits on the device for Backward,
// as model.LlamaRun.LossAndGrad does. It returns the loss and the number of
// positions counted.
func (r *LlamaRun) LossAndGrad(targets []int) (float64, int, error) {
	e := r.m.e
	V := r.m.Cfg.Vocab
	n := r.B * r.T
	t32, count, err := checkTargets(targets, n, V)
	if err != nil {
		return 0, 0, err
	}
	var s errs
	s.do(e.grow(&r.dlog, n*V, 4))
	s.do(e.grow(&r.rowLoss, n, 4))
	s.do(upload(e, &r.targets, t32))
	if s.err != nil {
		return 0, 0, s.err
	}
	if count == 0 {
		return 0, 0, e.zero(r.dlog, 4)
	}
	s.do(kernels.CrossEntropy(e, r.dlog.p(), r.rowLoss.p(), r.logits.p(), r.targets.p(), n, V, 1/float32(count)))
	rows := make([]float32, n)
	s.do(download(e, rows, r.rowLoss))
	if s.err != nil {
		return 0, 0, s.err
	}
	var loss float64
	for _, l := range rows {
		loss += float64(l)
	}
	return loss / float64(count), count, nil
}

// TargetLogProbs returns, for every position of the last forward, the
// log-probability of its target token (0 where the target is < 0): what
// scoring a continuation needs, without copying the logits to the host.
func (r *LlamaRun) TargetLogProbs(targets []int) ([]float32, error) {
	e := r.m.e
	n := r.B * r.T
	t32, _, err := checkTargets(targets, n, r.m.Cfg.Vocab)
	if err != nil {
		return nil, err
	}
	var s errs
	s.do(e.grow(&r.rowLoss, n, 4))
	s.do(upload(e, &r.targets, t32))
	if s.err != nil {
		return nil, s.err
	}
	s.do(kernels.TargetLogProb(e, r.rowLoss.p(), r.logits.p(), r.targets.p(), n, r.m.Cfg.Vocab))
	out := make([]float32, n)
	s.do(download(e, out, r.rowLoss))
	return out, s.err
}

// LogitRows copies the logits of the given positions of the last forward
// (len(pos)×vocab) to the host: a gather on the device first, so scoring a
// few positions does not move the whole (B·T)×vocab matrix.
func (r *LlamaRun) LogitRows(pos []int) ([]float32, error) {
	e := r.m.e
	V, n := r.m.Cfg.Vocab, r.B*r.T
	if len(pos) == 0 {
		return nil, nil
	}
	idx := make([]int32, len(pos))
	for i, p := range pos {
		if p < 0 || p >= n {
			return nil, fmt.Errorf("logit rows: position %d outside the %d of the last forward", p, n)
		}
		idx[i] = int32(p)
	}
	var s errs
	s.do(upload(e, &r.rowIdx, idx))
	s.do(e.grow(&r.rows, len(pos)*V, 4))
	if s.err != nil {
		return nil, s.err
	}
	s.do(kernels.EmbedGatherF32(e, r.rows.p(), r.logits.p(), r.rowIdx.p(), len(pos), V))
	out := make([]float32, len(pos)*V)
	s.do(download(e, out, r.rows))
	return out, s.err
}

// Logits copies the last forward's logits ((B·T)×vocab) to the host.
func (r *LlamaRun) Logits() ([]float32, error) {
	out := make([]float32, r.B*r.T*r.m.Cfg.Vocab)
	return out, download(r.m.e, out, r.logits)
}

// Backward propagates the gradient LossAndGrad kept and adds every bound
// adapter's factor gradients into the host Set's gradients, mirroring
// model.LlamaRun.Backward layer for layer.
func (r *LlamaRun) Backward() error {
	c := r.m.Cfg
	e := r.m.e
	n, d, f := r.B*r.T, c.Hidden, c.Intermediate
	qw, kw := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	sh := r.shape()
	half := 0
	if r.m.rope == model.RopeHalf {
		half = 1
	}
	var s errs
	grow := func(b *buf, n int) { s.do(e.grow(b, n, 4)) }
	grow(&r.dxf, n*d)
	grow(&r.dx, n*d)
	grow(&r.dh, n*f)
	grow(&r.dg, n*f)
	grow(&r.du, n*f)
	grow(&r.dxn, n*d)
	grow(&r.dao, n*qw)
	grow(&r.dq, n*qw)
	grow(&r.dk, n*kw)
	grow(&r.dv, n*kw)
	grow(&r.attD, r.B*c.Heads*r.T)
	if s.err != nil {
		return s.err
	}
	clear := func(b buf) { s.do(e.zero(b, 4)) }
	clear(r.dxf)
	s.do(r.lin[len(r.lin)-1].backward(e, &r.scr, r.dlog, n, r.dxf))
	clear(r.dx)
	s.do(kernels.RMSNormBackward(e, r.dx.p(), r.dxf.p(), r.xL.p(), r.m.norm.p(), r.rstdF.p(), n, d))
	for l := len(r.m.blocks) - 1; l >= 0 && s.err == nil; l-- {
		w := &r.m.blocks[l]
		a := &r.blocks[l]
		lin := r.lin[l*model.DecoderLinears : (l+1)*model.DecoderLinears]
		// x3 = x2 + down(swiglu(gate(xn2), up(xn2)))
		clear(r.dh)
		s.do(lin[model.DecDown].backward(e, &r.scr, r.dx, n, r.dh))
		s.do(kernels.SwiGLUBackward(e, r.dg.p(), r.du.p(), r.dh.p(), a.g.p(), a.u.p(), n*f))
		clear(r.dxn)
		s.do(lin[model.DecGate].backward(e, &r.scr, r.dg, n, r.dxn))
		s.do(lin[model.DecUp].backward(e, &r.scr, r.du, n, r.dxn))
		s.do(kernels.RMSNormBackward(e, r.dx.p(), r.dxn.p(), a.x2.p(), w.ffnNorm.p(), a.rstd2.p(), n, d))
		// x2 = x + o(attention(rope(q(xn1)), rope(k(xn1)), v(xn1)))
		clear(r.dao)
		s.do(lin[model.DecO].backward(e, &r.scr, r.dx, n, r.dao))
		clear(r.dq)
		clear(r.dk)
		clear(r.dv)
		s.do(kernels.AttentionBackward(e, r.dq.p(), r.dk.p(), r.dv.p(), r.dao.p(), a.ao.p(), a.attStats.p(), r.attD.p(),
			a.q.p(), a.k.p(), a.v.p(), 0, 0, 0, sh))
		s.do(kernels.RopeApply(e, r.dq.p(), r.pos.p(), r.m.cos.p(), r.m.sin.p(), n, c.Heads, c.HeadDim, half, -1))
		s.do(kernels.RopeApply(e, r.dk.p(), r.pos.p(), r.m.cos.p(), r.m.sin.p(), n, c.KVHeads, c.HeadDim, half, -1))
		if l == 0 {
			// The embeddings are frozen: only the adapters' gradients are
			// needed from the first block's projections.
			s.do(lin[model.DecQ].backward(e, &r.scr, r.dq, n, buf{}))
			s.do(lin[model.DecK].backward(e, &r.scr, r.dk, n, buf{}))
			s.do(lin[model.DecV].backward(e, &r.scr, r.dv, n, buf{}))
			break
		}
		clear(r.dxn)
		s.do(lin[model.DecQ].backward(e, &r.scr, r.dq, n, r.dxn))
		s.do(lin[model.DecK].backward(e, &r.scr, r.dk, n, r.dxn))
		s.do(lin[model.DecV].backward(e, &r.scr, r.dv, n, r.dxn))
		s.do(kernels.RMSNormBackward(e, r.dx.p(), r.dxn.p(), a.x.p(), w.attnNorm.p(), a.rstd1.p(), n, d))
	}
	return pushGrads(e, r.ads, s.err)
}
