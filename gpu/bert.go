package gpu

import (
	"math/rand/v2"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/gpu/kernels"
	"github.com/kronfed/kronfed/model"
)

// BERT is model.BERT's frozen encoder on the device (embeddings, LayerNorms,
// every block linear). The multiple-choice head stays on the host
// (model.EncoderHead: (B·C)×d², a rounding error next to the blocks), so
// BERT's pooler is used from the CPU model. Read-only after upload: runs
// share it.
type BERT struct {
	e                *Engine
	Cfg              *model.Config
	host             *model.BERT
	wordEmb, posEmb  buf // vocab×d, MaxPositions×d
	typeEmb          buf // TypeVocab×d, BERT only
	embLNW, embLNB   buf // d
	blocks           []bertBlock
	dropAttentionOut bool
}

type bertBlock struct {
	q, k, v, o, ff1, ff2   *frozenLinear
	ln1w, ln1b, ln2w, ln2b buf // d
}

func (b *bertBlock) linears() []*frozenLinear {
	return []*frozenLinear{b.q, b.k, b.v, b.o, b.ff1, b.ff2}
}

// UploadBERT copies a loaded encoder's frozen weights to the device.
func UploadBERT(e *Engine, m *model.BERT) (*BERT, error) {
	return uploadBase(e, m.Cfg.ModelType+" encoder", func(s *weightUploader) *BERT {
		g := &BERT{e: e, Cfg: m.Cfg, host: m, dropAttentionOut: m.DropsAttentionOutput()}
		s.vec(&g.wordEmb, m.WordEmb)
		s.vec(&g.posEmb, m.PosEmb)
		if m.TypeEmb != nil {
			s.vec(&g.typeEmb, m.TypeEmb)
		}
		s.vec(&g.embLNW, m.EmbLNW)
		s.vec(&g.embLNB, m.EmbLNB)
		for i := range m.Blocks {
			b := &m.Blocks[i]
			var gb bertBlock
			gb.q, gb.k, gb.v, gb.o = s.linear(b.Q), s.linear(b.K), s.linear(b.V), s.linear(b.O)
			gb.ff1, gb.ff2 = s.linear(b.FF1), s.linear(b.FF2)
			s.vec(&gb.ln1w, b.LN1W)
			s.vec(&gb.ln1b, b.LN1B)
			s.vec(&gb.ln2w, b.LN2W)
			s.vec(&gb.ln2b, b.LN2B)
			g.blocks = append(g.blocks, gb)
		}
		return g
	})
}

// Free releases the device weights.
func (m *BERT) Free() {
	e := m.e
	for _, b := range []*buf{&m.wordEmb, &m.posEmb, &m.typeEmb, &m.embLNW, &m.embLNB} {
		e.release(b)
	}
	for i := range m.blocks {
		b := &m.blocks[i]
		for _, l := range b.linears() {
			if l != nil {
				l.free(e)
			}
		}
		for _, p := range []*buf{&b.ln1w, &b.ln1b, &b.ln2w, &b.ln2b} {
			e.release(p)
		}
	}
}

// BERTRun is model.BERTRun on the device: one client's adapters, the
// activations of its last batch, and its multiple-choice head (host).
type BERTRun struct {
	m    *BERT
	lin  []adaptedLinear
	ads  []*deviceAdapter
	head *model.EncoderHead
	// Drop is the adapter input dropout; Base the frozen model's own
	// training-mode dropout (hidden, attention, classifier). Both nil at
	// inference.
	Drop  *adapter.Dropout
	Base  *rand.Rand
	Masks DropoutSource

	batch                 model.EncoderBatch
	ids, pos, types, mask buf // n int32 ×3, n float
	clsIdx                buf // B·C int32: the [CLS] row of each sequence
	emb, x0, mean0, rstd0 buf
	embMask               buf
	blocks                []bertActs
	cls                   buf // (B·C)×d
	clsHost               []float32
	scr                   scratch
	// backward scratch
	dx, ds, df, dgl, df1, dx1, dctx, dq, dk, dv, attD buf
	embHost                                           adapter.Mask // the embedding dropout's host mask (HostDropout)
}

// bertActs are one block's saved activations and dropout masks.
type bertActs struct {
	x                          buf // the block's input (n×d): the previous block's output
	q, k, v, attStats, ctx, o  buf
	s1, mean1, rstd1, x1       buf
	f1, gl, glGrad, f2         buf
	s2, mean2, rstd2           buf
	attMask, oMask, fMask      buf
	attScale, oScale, fScale   float32
	out                        buf // LN2 output: the next block's input
	attHost, oHost, fHost      adapter.Mask
	hasAttDrop, hasO, hasFDrop bool
}

// NewRun binds a Set (adapters on the block linears, the head tensors in
// Dense) to the device encoder.
func (m *BERT) NewRun(set *adapter.Set) (*BERTRun, error) {
	head, err := model.NewEncoderHead(m.host, set)
	if err != nil {
		return nil, err
	}
	r := &BERTRun{m: m, head: head, blocks: make([]bertActs, len(m.blocks)), Masks: m.e.Masks}
	var frozen []*frozenLinear
	for i := range m.blocks {
		frozen = append(frozen, m.blocks[i].linears()...)
	}
	if r.lin, r.ads, err = bindDeviceAdapters(m.e, m.Cfg, frozen, set); err != nil {
		return nil, err
	}
	return r, nil
}

// Free releases the run's device memory (not the shared weights).
func (r *BERTRun) Free() {
	e := r.m.e
	for _, a := range r.ads {
		a.free(e)
	}
	for i := range r.blocks {
		a := &r.blocks[i]
		// s1 and s2 alias o and f2.
		for _, b := range []*buf{&a.q, &a.k, &a.v, &a.attStats, &a.ctx, &a.o, &a.mean1, &a.rstd1, &a.x1,
			&a.f1, &a.gl, &a.glGrad, &a.f2, &a.mean2, &a.rstd2, &a.attMask, &a.oMask, &a.fMask, &a.out} {
			e.release(b)
		}
	}
	for _, b := range []*buf{&r.ids, &r.pos, &r.types, &r.mask, &r.clsIdx, &r.emb, &r.x0, &r.mean0, &r.rstd0, &r.embMask, &r.cls,
		&r.scr.act, &r.dx, &r.ds, &r.df, &r.dgl, &r.df1, &r.dx1, &r.dctx, &r.dq, &r.dk, &r.dv, &r.attD} {
		e.release(b)
	}
}

// Logits are the choice scores (B×C) of the last Forward.
func (r *BERTRun) Logits() []float32 { return r.head.Logits }

// Forward scores every choice of the batch, as model.BERTRun.Forward does.
func (r *BERTRun) Forward(b model.EncoderBatch) error {
	if err := r.m.host.CheckBatch(b); err != nil {
		return err
	}
	c := r.m.Cfg
	e := r.m.e
	N, T := b.B*b.C, b.T
	n, d, f := N*T, c.Hidden, c.Intermediate
	r.batch = b
	eps := float32(c.LayerNormEps)
	ids, pos, types, cls := make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, N)
	for i, id := range b.IDs {
		ids[i], pos[i] = int32(id), int32(i%T)
		if b.Types != nil {
			types[i] = int32(b.Types[i])
		}
	}
	for sq := range cls {
		cls[sq] = int32(sq * T)
	}
	var s errs
	grow := func(p *buf, n int) { s.do(e.grow(p, n, 4)) }
	s.do(r.pullAdapters())
	s.do(upload(e, &r.ids, ids))
	s.do(upload(e, &r.pos, pos))
	s.do(upload(e, &r.types, types))
	s.do(upload(e, &r.mask, b.Mask))
	s.do(upload(e, &r.clsIdx, cls))
	grow(&r.emb, n*d)
	grow(&r.x0, n*d)
	grow(&r.mean0, n)
	grow(&r.rstd0, n)
	if s.err != nil {
		return s.err
	}
	// Embeddings: word + position (+ type), LayerNorm, dropout.
	s.do(kernels.EmbedGatherF32(e, r.emb.p(), r.m.wordEmb.p(), r.ids.p(), n, d))
	s.do(kernels.AddRowsF32(e, r.emb.p(), r.m.posEmb.p(), r.pos.p(), n, d))
	if r.m.typeEmb.n > 0 {
		s.do(kernels.AddRowsF32(e, r.emb.p(), r.m.typeEmb.p(), r.types.p(), n, d))
	}
	s.do(kernels.LayerNormForward(e, r.x0.p(), r.mean0.p(), r.rstd0.p(), r.emb.p(), r.m.embLNW.p(), r.m.embLNB.p(), n, d, eps))
	s.do(r.dropInPlace(&r.embMask, &r.embHost, r.x0, c.HiddenDropout, n*d))
	sh := kernels.AttentionShape{B: N, T: T, H: c.Heads, KV: c.Heads, HD: c.HeadDim}
	x := r.x0
	for l := range r.m.blocks {
		w := &r.m.blocks[l]
		a := &r.blocks[l]
		lin := r.lin[l*model.EncoderLinears : (l+1)*model.EncoderLinears]
		a.x = x
		for _, p := range []*buf{&a.q, &a.k, &a.v, &a.ctx, &a.o, &a.x1, &a.f2, &a.out} {
			grow(p, n*d)
		}
		for _, p := range []*buf{&a.mean1, &a.rstd1, &a.mean2, &a.rstd2} {
			grow(p, n)
		}
		grow(&a.f1, n*f)
		grow(&a.gl, n*f)
		grow(&a.glGrad, n*f)
		grow(&a.attStats, N*c.Heads*T*2)
		if s.err != nil {
			return s.err
		}
		s.do(lin[model.EncQ].forward(e, &r.scr, x, n, a.q, r.Drop, r.Masks))
		s.do(lin[model.EncK].forward(e, &r.scr, x, n, a.k, r.Drop, r.Masks))
		s.do(lin[model.EncV].forward(e, &r.scr, x, n, a.v, r.Drop, r.Masks))
		var err error
		a.attScale, err = e.dropoutMask(&a.attMask, &a.attHost, model.Dropout(r.Base, c.AttnDropout), N*c.Heads*T*T, r.Masks)
		s.do(err)
		a.hasAttDrop = a.attScale != 0
		s.do(kernels.AttentionForward(e, a.ctx.p(), a.attStats.p(), a.q.p(), a.k.p(), a.v.p(), r.mask.p(), maskPtr(a.attMask, a.hasAttDrop), a.attScale, sh))
		s.do(lin[model.EncO].forward(e, &r.scr, a.ctx, n, a.o, r.Drop, r.Masks))
		a.hasO = false
		if r.m.dropAttentionOut {
			a.oScale, err = e.dropoutMask(&a.oMask, &a.oHost, model.Dropout(r.Base, c.HiddenDropout), n*d, r.Masks)
			s.do(err)
			if a.hasO = a.oScale != 0; a.hasO {
				s.do(kernels.DropoutApply(e, a.o.p(), a.o.p(), a.oMask.p(), a.oScale, n*d, 0))
			}
		}
		// s1 = o + x, in o's storage (the backward needs neither o nor x
		// apart from s1's LayerNorm statistics and x1).
		s.do(kernels.AddF32(e, a.o.p(), x.p(), n*d))
		a.s1 = a.o
		s.do(kernels.LayerNormForward(e, a.x1.p(), a.mean1.p(), a.rstd1.p(), a.s1.p(), w.ln1w.p(), w.ln1b.p(), n, d, eps))
		s.do(lin[model.EncFF1].forward(e, &r.scr, a.x1, n, a.f1, r.Drop, r.Masks))
		s.do(kernels.GELUForward(e, a.gl.p(), a.glGrad.p(), a.f1.p(), n*f))
		s.do(lin[model.EncFF2].forward(e, &r.scr, a.gl, n, a.f2, r.Drop, r.Masks))
		a.fScale, err = e.dropoutMask(&a.fMask, &a.fHost, model.Dropout(r.Base, c.HiddenDropout), n*d, r.Masks)
		s.do(err)
		if a.hasFDrop = a.fScale != 0; a.hasFDrop {
			s.do(kernels.DropoutApply(e, a.f2.p(), a.f2.p(), a.fMask.p(), a.fScale, n*d, 0))
		}
		// s2 = f2 + x1, in f2's storage.
		s.do(kernels.AddF32(e, a.f2.p(), a.x1.p(), n*d))
		a.s2 = a.f2
		s.do(kernels.LayerNormForward(e, a.out.p(), a.mean2.p(), a.rstd2.p(), a.s2.p(), w.ln2w.p(), w.ln2b.p(), n, d, eps))
		x = a.out
		if s.err != nil {
			return s.err
		}
	}
	// The head reads each sequence's first ([CLS]) row, on the host.
	grow(&r.cls, N*d)
	if s.err != nil {
		return s.err
	}
	s.do(kernels.EmbedGatherF32(e, r.cls.p(), x.p(), r.clsIdx.p(), N, d))
	if cap(r.clsHost) < N*d {
		r.clsHost = make([]float32, N*d)
	}
	r.clsHost = r.clsHost[:N*d]
	s.do(download(e, r.clsHost, r.cls))
	if s.err != nil {
		return s.err
	}
	r.head.Forward(r.clsHost, b, model.Dropout(r.Base, c.ClassifierDropout))
	return nil
}

// maskPtr is a dropout mask's device pointer, or 0 when none is active.
func maskPtr(m buf, active bool) uintptr {
	if !active {
		return 0
	}
	return m.p()
}

// dropInPlace applies a fresh dropout of probability p to x (size
// elements) in place, recording the mask in mask (the embeddings' dropout
// is not backpropagated through: the embeddings are frozen).
func (r *BERTRun) dropInPlace(mask *buf, host *adapter.Mask, x buf, p float32, size int) error {
	e := r.m.e
	scale, err := e.dropoutMask(mask, host, model.Dropout(r.Base, p), size, r.Masks)
	if err != nil || scale == 0 {
		return err
	}
	return kernels.DropoutApply(e, x.p(), x.p(), mask.p(), scale, size, 0)
}

func (r *BERTRun) pullAdapters() error {
	for _, a := range r.ads {
		if err := a.pull(r.m.e); err != nil {
			return err
		}
	}
	return nil
}

// LossAndGrad is the mean cross-entropy over each question's choices (on
// the host, like the head).
func (r *BERTRun) LossAndGrad() (float64, error) { return r.head.LossAndGrad() }

// Backward accumulates the head tensors' gradients (host) and every
// adapter's (device, then added into the host Set), mirroring
// model.BERTRun.Backward.
func (r *BERTRun) Backward() error {
	c := r.m.Cfg
	e := r.m.e
	b := r.batch
	N, T := b.B*b.C, b.T
	n, d, f := N*T, c.Hidden, c.Intermediate
	dcls := r.head.Backward()
	var s errs
	grow := func(p *buf, n int) { s.do(e.grow(p, n, 4)) }
	for _, p := range []*buf{&r.dx, &r.ds, &r.df, &r.dx1, &r.dctx, &r.dq, &r.dk, &r.dv} {
		grow(p, n*d)
	}
	grow(&r.dgl, n*f)
	grow(&r.df1, n*f)
	grow(&r.attD, N*c.Heads*T)
	if s.err != nil {
		return s.err
	}
	// dx holds ∂L/∂(last hidden state): the head's gradient on the CLS rows.
	s.do(upload(e, &r.cls, dcls))
	s.do(e.zero(r.dx, 4))
	for sq := 0; sq < N; sq++ {
		s.do(e.b.copy(r.dx.ptr+ptrOffset(sq*T*d), r.cls.ptr+ptrOffset(sq*d), int64(d)*4))
	}
	sh := kernels.AttentionShape{B: N, T: T, H: c.Heads, KV: c.Heads, HD: c.HeadDim}
	clear := func(p buf) { s.do(e.zero(p, 4)) }
	for l := len(r.m.blocks) - 1; l >= 0 && s.err == nil; l-- {
		w := &r.m.blocks[l]
		a := &r.blocks[l]
		lin := r.lin[l*model.EncoderLinears : (l+1)*model.EncoderLinears]
		// out = LN2(dropout(ff2(gelu(ff1(x1)))) + x1)
		clear(r.ds)
		s.do(kernels.LayerNormBackward(e, r.ds.p(), r.dx.p(), a.s2.p(), w.ln2w.p(), a.mean2.p(), a.rstd2.p(), n, d))
		s.do(e.b.copy(r.dx1.ptr, r.ds.ptr, int64(n*d)*4)) // residual
		s.do(r.maskBackward(r.df, r.ds, a.fMask, a.fScale, a.hasFDrop, n*d))
		clear(r.dgl)
		s.do(lin[model.EncFF2].backward(e, &r.scr, r.df, n, r.dgl))
		clear(r.df1)
		s.do(kernels.GELUBackward(e, r.df1.p(), r.dgl.p(), a.glGrad.p(), n*f))
		s.do(lin[model.EncFF1].backward(e, &r.scr, r.df1, n, r.dx1))
		// x1 = LN1(dropout?(o(attention(q(x), k(x), v(x)))) + x)
		clear(r.ds)
		s.do(kernels.LayerNormBackward(e, r.ds.p(), r.dx1.p(), a.s1.p(), w.ln1w.p(), a.mean1.p(), a.rstd1.p(), n, d))
		s.do(e.b.copy(r.dx.ptr, r.ds.ptr, int64(n*d)*4)) // residual
		s.do(r.maskBackward(r.df, r.ds, a.oMask, a.oScale, a.hasO, n*d))
		clear(r.dctx)
		s.do(lin[model.EncO].backward(e, &r.scr, r.df, n, r.dctx))
		clear(r.dq)
		clear(r.dk)
		clear(r.dv)
		s.do(kernels.AttentionBackward(e, r.dq.p(), r.dk.p(), r.dv.p(), r.dctx.p(), a.ctx.p(), a.attStats.p(), r.attD.p(),
			a.q.p(), a.k.p(), a.v.p(), r.mask.p(), maskPtr(a.attMask, a.hasAttDrop), a.attScale, sh))
		// The first block's input is the frozen embeddings: nothing below
		// needs its gradient.
		dIn := r.dx
		if l == 0 {
			dIn = buf{}
		}
		s.do(lin[model.EncQ].backward(e, &r.scr, r.dq, n, dIn))
		s.do(lin[model.EncK].backward(e, &r.scr, r.dk, n, dIn))
		s.do(lin[model.EncV].backward(e, &r.scr, r.dv, n, dIn))
	}
	return pushGrads(e, r.ads, s.err)
}

// maskBackward sets dst = mask(g) (the backward of an in-place dropout),
// or dst = g when no mask was active.
func (r *BERTRun) maskBackward(dst, g, mask buf, scale float32, active bool, size int) error {
	e := r.m.e
	if !active {
		return e.b.copy(dst.ptr, g.ptr, int64(size)*4)
	}
	return kernels.DropoutApply(e, dst.p(), g.p(), mask.p(), scale, size, 0)
}
