package model

import (
	"fmt"
	"math/rand/v2"

	"github.com/kronfed/kronfed/adapter"
)

// NewTrainStepBench builds a dOut×dIn AdaptedLinear with random weights and
// returns a function running one training step on n tokens: forward with
// dropout 0.1, backward with the input gradient. kind is "frozen", "kron"
// (paper settings, dA2 = DefaultDA2(dIn)) or "loraQ" for LoRA of rank Q. It is
// the shared harness of the benchmark and of `client bench kernels`.
func NewTrainStepBench(kind string, dOut, dIn, n int, seed uint64) (func(), error) {
	rng := rand.New(rand.NewPCG(seed, 1))
	w := make([]float32, dOut*dIn)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.02)
	}
	frozen, err := NewFrozenLinear(dOut, dIn, w, nil)
	if err != nil {
		return nil, err
	}
	l := &AdaptedLinear{Frozen: frozen}
	switch {
	case kind == "frozen":
	case kind == "kron":
		c := adapter.DefaultConfig(adapter.KindKron).Resolve(dIn)
		if l.Adapter, err = c.NewLayer(dOut, dIn, rng); err != nil {
			return nil, err
		}
	default:
		var q int
		if _, err := fmt.Sscanf(kind, "lora%d", &q); err != nil {
			return nil, fmt.Errorf("bench layer kind %q: want frozen, kron or loraQ", kind)
		}
		c := adapter.DefaultConfig(adapter.KindLoRA)
		c.Rank = q
		if l.Adapter, err = c.NewLayer(dOut, dIn, rng); err != nil {
			return nil, err
		}
	}
	if l.Adapter != nil {
		// Non-zero factors, so no product is skipped as trivially zero.
		for _, f := range l.Adapter.Factors() {
			for i := range f.Data {
				f.Data[i] = float32(rng.NormFloat64() * 0.1)
			}
		}
	}
	x := make([]float32, n*dIn)
	dy := make([]float32, n*dOut)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := range dy {
		dy[i] = float32(rng.NormFloat64())
	}
	y := make([]float32, n*dOut)
	dx := make([]float32, n*dIn)
	drop := &adapter.Dropout{P: 0.1, Rng: rand.New(rand.NewPCG(seed, 2))}
	return func() {
		l.Forward(x, n, y, drop)
		clear(dx)
		l.Backward(dy, n, dx)
	}, nil
}
