package model

import (
	"fmt"

	"github.com/kronfed/kronfed/adapter"
)

// WithMerged returns a copy of the decoder m whose adapted linears carry
// the set's ΔW in their weights (W + scale·ΔW, float32): "task A's adapter
// folded into the base", so a fresh adapter can be trained on top of it and
// both tasks' changes act at once. Layers the set does not adapt, the
// embedding and the norms are shared with m, not copied. Encoders are
// refused: their multiple-choice head belongs to the adapter, not the base.
func (m *Model) WithMerged(set *adapter.Set) (*Model, error) {
	if m.Llama == nil {
		return nil, fmt.Errorf("merge adapters into %s: only decoders can take an adapter into their weights (an encoder's head stays with its adapter)", m.Name)
	}
	layers, err := AdapterLayers(m.Cfg, set)
	if err != nil {
		return nil, fmt.Errorf("merge adapters into %s: %w", m.Name, err)
	}
	src := m.Llama
	dst := *src
	dst.Blocks = append([]LlamaBlock(nil), src.Blocks...)
	var out []*FrozenLinear
	for i, l := range src.linears() {
		if layers[i] == nil {
			out = append(out, l)
			continue
		}
		if l.W == nil {
			return nil, errReleased("merging an adapter into the base (the reinit mitigation)")
		}
		w := append([]float32(nil), l.W...)
		layers[i].MergeInto(w, 1)
		nl, err := NewFrozenLinear(l.DOut, l.DIn, w, l.Bias)
		if err != nil {
			return nil, err
		}
		if l.bf16 { // a bf16 base's merge runs in bf16 too
			if err := nl.useBF16(); err != nil {
				return nil, fmt.Errorf("merge adapters into %s: %w", m.Name, err)
			}
		}
		out = append(out, nl)
	}
	for b := range dst.Blocks {
		lin := out[b*DecoderLinears : (b+1)*DecoderLinears]
		blk := &dst.Blocks[b]
		blk.Q, blk.K, blk.V, blk.O = lin[DecQ], lin[DecK], lin[DecV], lin[DecO]
		blk.Gate, blk.Up, blk.Down = lin[DecGate], lin[DecUp], lin[DecDown]
	}
	dst.LMHead = out[len(out)-1]
	// A new Model (not a copy: it holds a lock), in the precision of m.
	merged := &Model{Name: m.Name + "+merged", Path: m.Path, Cfg: m.Cfg, Llama: &dst, BERT: m.BERT, Tok: m.Tok}
	merged.bf16Done = m.BF16()
	return merged, nil
}
