package model

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kronfed/kronfed/internal/gradcheck"
)

// TestLlamaWeightGradients checks the base's own weight gradients (embedding,
// every linear, every RMSNorm weight; tied and untied lm_head) against
// central finite differences of the loss along random directions, tensor by
// tensor, so a wrong gradient in any one tensor shows by name.
func TestLlamaWeightGradients(t *testing.T) { bothAttentionModes(t, testLlamaWeightGradients) }

func testLlamaWeightGradients(t *testing.T) {
	for _, tied := range []bool{false, true} {
		t.Run(fmt.Sprintf("tied=%v", tied), func(t *testing.T) {
			cfg := tinyLlamaConfig()
			cfg.TieWordEmbeddings = tied
			m, err := NewLlama(cfg, RopeHalf, newRandomSource(1).get)
			if err != nil {
				t.Fatal(err)
			}
			run, err := m.NewRun(nil)
			if err != nil {
				t.Fatal(err)
			}
			run.Grads = m.NewGrads()
			rng := rand.New(rand.NewPCG(7, 7))
			const B, T = 2, 6
			tokens, targets := randomBatch(rng, cfg.Vocab, B*T, 5)
			loss := func() float64 {
				m.Repack() // the finite differences move the weights in place
				if err := run.Forward(tokens, B, T); err != nil {
					t.Fatal(err)
				}
				l, _, err := run.LossAndGrad(targets)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			loss()
			run.Backward()
			params := m.Params(run.Grads)
			want := 2 + 9*cfg.Layers
			if !tied {
				want++
			}
			if len(params) != want {
				t.Fatalf("%d parameter tensors, want %d", len(params), want)
			}
			for i := range params {
				p := params[i : i+1]
				var norm float64
				for _, g := range p[0].Grad {
					norm += float64(g) * float64(g)
				}
				if norm == 0 {
					t.Errorf("%s: zero gradient", p[0].Name)
					continue
				}
				t.Run(p[0].Name, func(t *testing.T) { gradcheck.Directional(t, p, loss, rng, gradcheck.Options{Richardson: true}) })
			}
			// Zero clears every gradient.
			run.Grads.Zero()
			for _, p := range m.Params(run.Grads) {
				for _, g := range p.Grad {
					if g != 0 {
						t.Fatalf("%s: gradient %v after Zero", p.Name, g)
					}
				}
			}
		})
	}
}

// TestRepack: after W changes in place, Repack makes the packed products
// (forward and input gradient) follow it.
func TestRepack(t *testing.T) {
	const dOut, dIn, n = 5, 7, 3
	rng := rand.New(rand.NewPCG(1, 1))
	w := make([]float32, dOut*dIn)
	x := make([]float32, n*dIn)
	dy := make([]float32, n*dOut)
	for _, s := range [][]float32{w, x, dy} {
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
	}
	l, err := NewFrozenLinear(dOut, dIn, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, n*dOut)
	dx := make([]float32, n*dIn)
	l.Forward(x, n, y) // packs both copies
	l.BackwardInput(dy, n, dx)
	for i := range w {
		w[i] *= -2
	}
	l.Repack()
	clear(dx)
	l.Forward(x, n, y)
	l.BackwardInput(dy, n, dx)
	for t0 := 0; t0 < n; t0++ {
		for o := 0; o < dOut; o++ {
			var want float64
			for i := 0; i < dIn; i++ {
				want += float64(x[t0*dIn+i]) * float64(w[o*dIn+i])
			}
			if d := float64(y[t0*dOut+o]) - want; d > 1e-4 || d < -1e-4 {
				t.Fatalf("y[%d,%d] = %v after Repack, want %v", t0, o, y[t0*dOut+o], want)
			}
		}
		for i := 0; i < dIn; i++ {
			var want float64
			for o := 0; o < dOut; o++ {
				want += float64(dy[t0*dOut+o]) * float64(w[o*dIn+i])
			}
			if d := float64(dx[t0*dIn+i]) - want; d > 1e-4 || d < -1e-4 {
				t.Fatalf("dx[%d,%d] = %v after Repack, want %v", t0, i, dx[t0*dIn+i], want)
			}
		}
	}
}
