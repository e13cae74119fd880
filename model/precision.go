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
	names := cfg.AdaptedLinears()
	for i, l := range linears {
		if err := l.useBF16(); err != nil {
			name := "bert.pooler.dense"
			if i < len(names) {
				name = names[i].Name
			}
			return fmt.Errorf("bf16 weights: tensor %s.weight: %w", name, err)
		}
	}
	return nil
}

var errNoBF16 = fmt.Errorf("bf16 frozen weights on the CPU need AVX512_BF16 (Zen 4 and later, Sapphire Rapids and later), which this CPU lacks: use --precision fp32")

// useBF16 replaces the packed copies by bf16 ones (made now; see UseBF16).
func (l *FrozenLinear) useBF16() error {
	fwd, err := compute.PackBBF16(compute.Trans, l.DIn, l.DOut, l.W, l.DIn)
	if err != nil {
		return err
	}
	bwd, err := compute.PackBBF16(compute.NoTrans, l.DOut, l.DIn, l.W, l.DIn)
	if err != nil {
		return err
	}
	l.fwdOnce.Do(func() {})
	l.bwdOnce.Do(func() {})
	l.fwd, l.bwd, l.bf16 = fwd, bwd, true
	return nil
}
