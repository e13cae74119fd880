package kernels_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/kronfed/kronfed/gpu/kernels"
)

// attnRef is the dense float64 reference of attention forward and backward
// (model/layers.go's attentionForward/attentionBackward, in float64).
type attnRef struct {
	out, stats, dq, dk, dv []float64
}

func attentionReference(s kernels.AttentionShape, q, k, v, keyMask []float32, keep []uint64, dropScale float64,
	dout, dq0, dk0, dv0 []float32) attnRef {
	B, T, H, KV, HD := s.B, s.T, s.H, s.KV, s.HD
	qw, kw := H*HD, KV*HD
	scale := float64(float32(1 / math.Sqrt(float64(HD))))
	r := attnRef{out: make([]float64, B*T*qw), stats: make([]float64, B*H*T*2),
		dq: f64(dq0), dk: f64(dk0), dv: f64(dv0)}
	allowed := func(b, i, j int) bool {
		if s.Causal && j > i {
			return false
		}
		if s.Window > 0 && i-j >= s.Window {
			return false
		}
		return keyMask == nil || keyMask[b*T+j] != 0
	}
	p := make([]float64, T)
	pd := make([]float64, T)
	datt := make([]float64, T)
	for b := range B {
		for h := range H {
			kvh := h / (H / KV)
			for i := range T {
				qi := q[(b*T+i)*qw+h*HD:][:HD]
				gi := dout[(b*T+i)*qw+h*HD:][:HD]
				m := math.Inf(-1)
				for j := range T {
					p[j] = math.Inf(-1)
					if !allowed(b, i, j) {
						continue
					}
					kj := k[(b*T+j)*kw+kvh*HD:][:HD]
					var dot float64
					for c := range HD {
						dot += float64(qi[c]) * float64(kj[c])
					}
					p[j] = scale * dot
					m = math.Max(m, p[j])
				}
				st := r.stats[((b*H+h)*T+i)*2:]
				if math.IsInf(m, -1) { // every key masked: zeros, stats (−Inf, 0)
					st[0], st[1] = m, 0
					continue
				}
				var sum float64
				for j := range T {
					p[j] = math.Exp(p[j] - m)
					sum += p[j]
				}
				st[0], st[1] = m, 1/sum
				// Forward with dropout, and the backward's row.
				var D float64
				for j := range T {
					p[j] /= sum
					f := 1.0
					if keep != nil {
						e := ((b*H+h)*T+i)*T + j
						f = 0
						if keep[e>>6]>>(e&63)&1 != 0 {
							f = dropScale
						}
					}
					pd[j] = p[j] * f
					vj := v[(b*T+j)*kw+kvh*HD:][:HD]
					var dp float64
					for c := range HD {
						r.out[(b*T+i)*qw+h*HD+c] += pd[j] * float64(vj[c])
						dp += float64(gi[c]) * float64(vj[c])
					}
					datt[j] = dp * f
					D += p[j] * datt[j]
				}
				for j := range T {
					ds := p[j] * (datt[j] - D)
					kj := k[(b*T+j)*kw+kvh*HD:][:HD]
					for c := range HD {
						r.dq[(b*T+i)*qw+h*HD+c] += scale * ds * float64(kj[c])
						r.dk[(b*T+j)*kw+kvh*HD+c] += scale * ds * float64(qi[c])
						r.dv[(b*T+j)*kw+kvh*HD+c] += pd[j] * float64(gi[c])
					}
				}
			}
		}
	}
	return r
}

type attnCase struct {
	s          kernels.AttentionShape
	mask, drop bool
}

func (c attnCase) String() string {
	s := c.s
	name := fmt.Sprintf("B%d_T%d_H%d_KV%d_HD%d", s.B, s.T, s.H, s.KV, s.HD)
	if s.Causal {
		name += "_causal"
	}
	if s.Window > 0 {
		name += fmt.Sprintf("_window%d", s.Window)
	}
	if c.mask {
		name += "_mask"
	}
	if c.drop {
		name += "_dropout"
	}
	return name
}

func attentionCases(d device) []attnCase {
	T := sizes(d, 77, 300) // not a multiple of any tile
	sh := func(B, T, H, KV, HD int, causal bool, window int) kernels.AttentionShape {
		return kernels.AttentionShape{B: B, T: T, H: H, KV: KV, HD: HD, Causal: causal, Window: window}
	}
	cases := []attnCase{
		{sh(2, T, 4, 2, 8, true, 0), false, false},                   // stories260K-like: tiny heads, GQA
		{sh(2, T, 4, 2, 8, true, 0), true, true},                     // with padding and dropout
		{sh(2, T, 4, 4, 64, false, 0), true, true},                   // BERT: bidirectional, padding, attention dropout
		{sh(2, T, 4, 2, 64, true, 20), true, true},                   // causal + sliding window + padding + dropout
		{sh(1, T, 4, 1, 128, true, 33), false, false},                // Mistral-like: HD 128, window, 4 heads a KV head
		{sh(1, T, 2, 2, 128, true, 0), true, true},                   // HD 128 with everything
		{sh(2, 33, 2, 1, 30, true, 0), true, false},                  // HD not a multiple of the 8 threads a row
		{sh(1, 40, 2, 1, 256, false, 0), true, true},                 // the largest head dim
		{sh(1, 40, 2, 2, 256, true, 7), false, false},                // HD 256, window
		{sh(3, 5, 2, 1, 64, true, 0), true, false},                   // shorter than a tile
		{sh(1, 1, 1, 1, 2, true, 0), false, false},                   // one token, HD 2
		{sh(2, T, 6, 3, 96, true, 0), false, true},                   // HD 96 on the d128 tiles
		{sh(2, sizes(d, 65, 130), 4, 2, 64, false, 0), false, false}, // exact-ish tile edges
		// Windows ≡ 2 modulo the 32- and 16-row tiles put the first key a
		// query tile needs (and the last query a key tile serves) on a tile
		// boundary: an off-by-one in the tile ranges shows.
		{sh(2, T, 4, 2, 64, true, 34), true, false},
		{sh(1, T, 2, 1, 128, true, 34), false, true},
		{sh(1, T, 2, 1, 64, false, 34), false, false}, // a window without the causal mask
	}
	if !d.emulated() {
		cases = append(cases,
			attnCase{sh(2, 512, 8, 2, 128, true, 0), true, false},
			attnCase{sh(4, 128, 12, 12, 64, false, 0), true, true})
	}
	return cases
}

func testAttention(t *testing.T, d device) {
	for ci, c := range attentionCases(d) {
		t.Run(c.String(), func(t *testing.T) {
			rng := newRNG(100 + uint64(ci))
			s := c.s
			qn, kn := s.B*s.T*s.H*s.HD, s.B*s.T*s.KV*s.HD
			q, k, v := randn(rng, qn, 1), randn(rng, kn, 1), randn(rng, kn, 1)
			var keyMask []float32
			if c.mask {
				keyMask = make([]float32, s.B*s.T)
				for b := range s.B {
					for j := range s.T {
						keyMask[b*s.T+j] = 1
					}
				}
				// Sequence 0: trailing padding. Sequence 1 (if any): its first
				// keys padded, so with a causal mask its first queries see no
				// key at all (stats (−Inf, 0), zero output and gradients).
				for j := s.T - min(s.T/5, 9); j < s.T; j++ {
					keyMask[j] = 0
				}
				if s.B > 1 {
					for j := range min(3, s.T) {
						keyMask[s.T+j] = 0
					}
				}
			}
			var keep []uint64
			dropScale := float32(0)
			if c.drop {
				const p = 0.25
				n := s.B * s.H * s.T * s.T
				keep = make([]uint64, kernels.MaskWords(n))
				for i := range n {
					if rng.Float64() >= p {
						keep[i>>6] |= 1 << (i & 63)
					}
				}
				dropScale = 1 / (1 - p)
			}
			dout := randn(rng, qn, 1)
			dq0, dk0, dv0 := randn(rng, qn, 1), randn(rng, kn, 1), randn(rng, kn, 1)
			ref := attentionReference(s, q, k, v, keyMask, keep, float64(dropScale), dout, dq0, dk0, dv0)

			pq, pk, pv := put(t, d, q), put(t, d, k), put(t, d, v)
			var pmask, pkeep uintptr
			if c.mask {
				pmask = put(t, d, keyMask)
			}
			if c.drop {
				pkeep = put(t, d, keep)
			}
			pout, pstats := put(t, d, nanFilled(qn)), put(t, d, nanFilled(s.B*s.H*s.T*2))
			must(t, kernels.AttentionForward(d, pout, pstats, pq, pk, pv, pmask, pkeep, dropScale, s))
			out := get[float32](t, d, pout, qn)
			closeTo(t, "out", out, ref.out, 2e-5, 1e-4)
			stats := get[float32](t, d, pstats, s.B*s.H*s.T*2)
			mx, inv := make([]float32, len(stats)/2), make([]float32, len(stats)/2)
			wmx, winv := make([]float64, len(stats)/2), make([]float64, len(stats)/2)
			for i := range mx {
				mx[i], inv[i], wmx[i], winv[i] = stats[2*i], stats[2*i+1], ref.stats[2*i], ref.stats[2*i+1]
			}
			closeTo(t, "stats max", mx, wmx, 1e-5, 1e-5)
			closeTo(t, "stats 1/Σexp", inv, winv, 1e-7, 1e-4)

			// Without stats (inference) the output is the same.
			pout2 := put(t, d, nanFilled(qn))
			must(t, kernels.AttentionForward(d, pout2, 0, pq, pk, pv, pmask, pkeep, dropScale, s))
			sameBits(t, "out without stats", get[float32](t, d, pout2, qn), out)

			pdout, pD := put(t, d, dout), put(t, d, nanFilled(s.B*s.H*s.T))
			pdq, pdk, pdv := put(t, d, dq0), put(t, d, dk0), put(t, d, dv0)
			must(t, kernels.AttentionBackward(d, pdq, pdk, pdv, pdout, pout, pstats, pD, pq, pk, pv, pmask, pkeep, dropScale, s))
			closeTo(t, "dq", get[float32](t, d, pdq, qn), ref.dq, 1e-4, 1e-3)
			closeTo(t, "dk", get[float32](t, d, pdk, kn), ref.dk, 1e-4, 1e-3)
			closeTo(t, "dv", get[float32](t, d, pdv, kn), ref.dv, 1e-4, 1e-3)
		})
	}
}

func nanFilled(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(math.NaN())
	}
	return out
}
