package model

import (
	"fmt"

	"github.com/kronfed/kronfed/compute"
)

// UseBF16 switches every frozen linear of the base to bf16 packed copies
// (compute.PackBBF16): the frozen-path GEMMs then run on the VDPBF16PS
// kernel with fp32 accumulation, activations rounded to bf16 only as their
// inputs; adapters, their gradients and the optimizer stay fp32, as do the
// norms, attention and W itself (kept for merges, exports and the GPU
// upload). The packed copies take d_out·d_in·2 bytes each instead of ·4.
//
// Both copies are made now, so a CPU without AVX512_BF16 or a weight holding
// NaN/±Inf is an error naming the tensor before any work starts. Call it
// before the model is shared; later calls return the first call's result.
func (m *Model) UseBF16() error {
	m.bf16Mu.Lock()
	defer m.bf16Mu.Unlock()
	if m.bf16Done {
		return m.bf16Err
	}
	m.bf16Done = true
	switch {
	case m.Llama != nil:
		m.bf16Err = m.Llama.UseBF16()
	case m.BERT != nil:
		m.bf16Err = m.BERT.UseBF16()
	}
	return m.bf16Err
}

// BF16 reports whether UseBF16 switched the base to bf16.
func (m *Model) BF16() bool {
	m.bf16Mu.Lock()
	defer m.bf16Mu.Unlock()
	return m.bf16Done && m.bf16Err == nil
}

// UseBF16 switches the decoder's frozen linears to bf16 (see
// Model.UseBF16). Not safe while another goroutine runs the model.
func (m *Llama) UseBF16() error { return useBF16(m.Cfg, m.linears()) }

// UseBF16 switches the encoder's frozen linears, pooler included, to bf16
// (see Model.UseBF16). Not safe while another goroutine runs the model.
func (m *BERT) UseBF16() error {
	linears := m.linears()
	if m.Pooler != nil {
		linears = append(linears, m.Pooler)
	}
	return useBF16(m.Cfg, linears)
}

// useBF16 packs linears as bf16, naming the first that fails: the adapted
// linears in Config.AdaptedLinears order, then BERT's pooler.
func useBF16(cfg *Config, linears []*FrozenLinear) error {
	if !compute.HasBF16() {
		return errNoBF16
	}
	// Pack everything first and switch only when all of it packed: a
	// refused weight leaves the model as it was, all fp32.
	names := cfg.AdaptedLinears()
	packed := make([][2]*compute.PackedB, len(linears))
	for i, l := range linears {
		fwd, bwd, err := l.packBF16()
		if err != nil {
			name := "bert.pooler.dense"
			if i < len(names) {
				name = names[i].Name
			}
			return fmt.Errorf("bf16 weights: tensor %s.weight: %w", name, err)
		}
		packed[i] = [2]*compute.PackedB{fwd, bwd}
	}
	for i, l := range linears {
		l.setBF16(packed[i][0], packed[i][1])
	}
	return nil
}

var errNoBF16 = fmt.Errorf("bf16 frozen weights on the CPU need AVX512_BF16 (Zen 4 and later, Sapphire Rapids and later), which this CPU lacks: use --precision fp32")

// packBF16 makes the two bf16 packed copies of W: Wᵀ for x·Wᵀ, W for dy·W.
func (l *FrozenLinear) packBF16() (fwd, bwd *compute.PackedB, err error) {
	if fwd, err = compute.PackBBF16(compute.Trans, l.DIn, l.DOut, l.W, l.DIn); err != nil {
		return nil, nil, err
	}
	if bwd, err = compute.PackBBF16(compute.NoTrans, l.DOut, l.DIn, l.W, l.DIn); err != nil {
		return nil, nil, err
	}
	return fwd, bwd, nil
}

// setBF16 makes fwd and bwd the layer's packed copies (the fp32 ones are
// never made afterwards).
func (l *FrozenLinear) setBF16(fwd, bwd *compute.PackedB) {
	l.fwdOnce.Do(func() {})
	l.bwdOnce.Do(func() {})
	l.fwd, l.bwd, l.bf16 = fwd, bwd, true
}

// useBF16 replaces the packed copies by bf16 ones made now.
func (l *FrozenLinear) useBF16() error {
	fwd, bwd, err := l.packBF16()
	if err != nil {
		return err
	}
	l.setBF16(fwd, bwd)
	return nil
}

// ReleaseFP32 drops the float32 W of every frozen linear that UseBF16
// switched to bf16, leaving only the two bf16 packed copies: 4 bytes per
// frozen weight instead of 12 (W plus two fp32 copies) — a Mistral-7B base
// 28 GB instead of 84. Training, evaluation and everything that only runs
// the model keep working; what reads W afterwards is refused with an error
// naming this call (WithMerged, a GPU upload) — so call it only where none
// will follow (a client that trains, a simulation without the reinit
// mitigation). A tied lm_head shares W with the embedding, which the model
// still reads, and keeps it. Before UseBF16 it is an error.
func (m *Model) ReleaseFP32() error {
	if !m.BF16() {
		return fmt.Errorf("release fp32 weights of %s: the base is not in bf16 (UseBF16 first)", m.Name)
	}
	for _, l := range m.frozenLinearsAll() {
		if l.bf16 && !m.sharesEmbedding(l) {
			l.W = nil
		}
	}
	return nil
}

// LeanBF16 keeps one bf16 copy of each frozen weight, Wᵀ packed for the
// forward x·Wᵀ, and drops the copy of W the input gradient dy·W used: that
// product then rebuilds W's layout from Wᵀ's into scratch on every call
// (compute.GemmPackedT, bit for bit the same result). With ReleaseFP32, 2
// bytes per frozen weight — a Mistral-7B base 14 GB — for a backward
// product ~13% slower (BENCHMARKS.md). Before UseBF16 it is an error.
func (m *Model) LeanBF16() error {
	if !m.BF16() {
		return fmt.Errorf("one bf16 copy of %s: the base is not in bf16 (UseBF16 first)", m.Name)
	}
	for _, l := range m.frozenLinearsAll() {
		if l.bf16 {
			l.bwd = nil
		}
	}
	return nil
}

// FrozenBytes is the memory the frozen linears hold: their W (where not
// released or shared with the embedding) and packed copies, and biases.
func (m *Model) FrozenBytes() int64 {
	var n int64
	for _, l := range m.frozenLinearsAll() {
		if !m.sharesEmbedding(l) {
			n += 4 * int64(len(l.W))
		}
		n += 4 * int64(len(l.Bias))
		for _, p := range []*compute.PackedB{l.fwd, l.bwd} {
			if p != nil {
				n += int64(p.Bytes())
			}
		}
	}
	return n
}

// frozenLinearsAll is every frozen linear of the base, adapted or not.
func (m *Model) frozenLinearsAll() []*FrozenLinear {
	switch {
	case m.Llama != nil:
		return m.Llama.linears()
	case m.BERT != nil:
		l := m.BERT.linears()
		if m.BERT.Pooler != nil {
			l = append(l, m.BERT.Pooler)
		}
		return l
	}
	return nil
}

// sharesEmbedding reports whether l is a tied lm_head, whose W is the
// embedding table itself.
func (m *Model) sharesEmbedding(l *FrozenLinear) bool {
	e := m.Llama
	return e != nil && l == e.LMHead && len(l.W) > 0 && len(e.Embed) > 0 && &l.W[0] == &e.Embed[0]
}

// errReleased is what readers of a released W get.
func errReleased(what string) error {
	return fmt.Errorf("%s needs the base's float32 weights, which ReleaseFP32 dropped (run without releasing them: they are kept unless a command knows nothing will read them)", what)
}
