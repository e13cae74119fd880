package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// naiveAttention is the float64 reference: explicit loops, masks, softmax.
func naiveAttention(q, k, v []float32, s attentionShape) []float64 {
	qw, kw := s.H*s.HD, s.KV*s.HD
	out := make([]float64, s.B*s.T*qw)
	for b := 0; b < s.B; b++ {
		for h := 0; h < s.H; h++ {
			kvh := h / (s.H / s.KV)
			for i := 0; i < s.T; i++ {
				sc := make([]float64, s.T)
				maxv := math.Inf(-1)
				for j := 0; j < s.T; j++ {
					if !s.allowed(i, j) {
						sc[j] = math.Inf(-1)
						continue
					}
					var dot float64
					for c := 0; c < s.HD; c++ {
						dot += float64(q[(b*s.T+i)*qw+h*s.HD+c]) * float64(k[(b*s.T+j)*kw+kvh*s.HD+c])
					}
					sc[j] = dot / math.Sqrt(float64(s.HD))
					maxv = math.Max(maxv, sc[j])
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - maxv)
					sum += sc[j]
				}
				for j := range sc {
					for c := 0; c < s.HD; c++ {
						out[(b*s.T+i)*qw+h*s.HD+c] += sc[j] / sum * float64(v[(b*s.T+j)*kw+kvh*s.HD+c])
					}
				}
			}
		}
	}
	return out
}

func TestAttentionForwardMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range []attentionShape{{B: 2, T: 7, H: 4, KV: 2, HD: 4, Causal: true}, {B: 1, T: 9, H: 2, KV: 2, HD: 8, Causal: true, Window: 3}, {B: 2, T: 5, H: 3, KV: 1, HD: 6}} {
		r := func(n int) []float32 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			return x
		}
		q, k, v := r(s.B*s.T*s.H*s.HD), r(s.B*s.T*s.KV*s.HD), r(s.B*s.T*s.KV*s.HD)
		out := make([]float32, len(q))
		att := make([]float32, s.B*s.H*s.T*s.T)
		attentionForward(out, att, nil, q, k, v, nil, s, nil)
		want := naiveAttention(q, k, v, s)
		for i := range want {
			if math.Abs(float64(out[i])-want[i]) > 1e-5*(1+math.Abs(want[i])) {
				t.Fatalf("%+v: out[%d] = %v, want %v", s, i, out[i], want[i])
			}
		}
	}
}

func TestRopeStylesArePermutations(t *testing.T) {
	const heads, hd, T = 2, 8, 5
	cos, sin := ropeTable(16, hd, 10000)
	rng := rand.New(rand.NewPCG(2, 2))
	x := make([]float32, T*heads*hd)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	// HF position of Meta element 2i+j is j·hd/2+i.
	perm := func(src []float32) []float32 {
		out := make([]float32, len(src))
		for t := 0; t < T; t++ {
			for h := 0; h < heads; h++ {
				for i := 0; i < hd/2; i++ {
					for j := 0; j < 2; j++ {
						out[t*heads*hd+h*hd+j*hd/2+i] = src[t*heads*hd+h*hd+2*i+j]
					}
				}
			}
		}
		return out
	}
	pos := []int{0, 1, 2, 3, 4}
	meta := append([]float32(nil), x...)
	ropeApply(meta, pos, heads, hd, RopeInterleaved, cos, sin, 1)
	hf := perm(x)
	ropeApply(hf, pos, heads, hd, RopeHalf, cos, sin, 1)
	want := perm(meta)
	for i := range want {
		if math.Abs(float64(hf[i]-want[i])) > 1e-5 {
			t.Fatalf("element %d: %v vs %v", i, hf[i], want[i])
		}
	}
	// Rotating back restores the input.
	ropeApply(meta, pos, heads, hd, RopeInterleaved, cos, sin, -1)
	for i := range x {
		if math.Abs(float64(meta[i]-x[i])) > 1e-5 {
			t.Fatalf("inverse rotation: element %d: %v vs %v", i, meta[i], x[i])
		}
	}
}
