package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// naiveAttention is the float64 reference: explicit loops, masks, softmax.
func naiveAttention(q, k, v []float32, s attentionShape) []float64 {
	return naiveAttention64(f64(q), f64(k), f64(v), nil, s)
}

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// naiveAttention64 is naiveAttention in float64 throughout, with an
// optional key mask (B×T, 0 = padding; a row with no key left is zero).
func naiveAttention64(q, k, v []float64, keyMask []float32, s attentionShape) []float64 {
	qw, kw := s.H*s.HD, s.KV*s.HD
	out := make([]float64, s.B*s.T*qw)
	for b := 0; b < s.B; b++ {
		for h := 0; h < s.H; h++ {
			kvh := h / (s.H / s.KV)
			for i := 0; i < s.T; i++ {
				sc := make([]float64, s.T)
				maxv := math.Inf(-1)
				for j := 0; j < s.T; j++ {
					if !s.allowed(i, j) || (keyMask != nil && keyMask[b*s.T+j] == 0) {
						sc[j] = math.Inf(-1)
						continue
					}
					var dot float64
					for c := 0; c < s.HD; c++ {
						dot += q[(b*s.T+i)*qw+h*s.HD+c] * k[(b*s.T+j)*kw+kvh*s.HD+c]
					}
					sc[j] = dot / math.Sqrt(float64(s.HD))
					maxv = math.Max(maxv, sc[j])
				}
				if math.IsInf(maxv, -1) {
					continue // no key to attend to
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - maxv)
					sum += sc[j]
				}
				for j := range sc {
					for c := 0; c < s.HD; c++ {
						out[(b*s.T+i)*qw+h*s.HD+c] += sc[j] / sum * v[(b*s.T+j)*kw+kvh*s.HD+c]
					}
				}
			}
		}
	}
	return out
}

// randNormal is n standard normal float32s.
func randNormal(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func TestAttentionForwardMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range []attentionShape{{B: 2, T: 7, H: 4, KV: 2, HD: 4, Causal: true}, {B: 1, T: 9, H: 2, KV: 2, HD: 8, Causal: true, Window: 3}, {B: 2, T: 5, H: 3, KV: 1, HD: 6}} {
		r := func(n int) []float32 { return randNormal(rng, n) }
		q, k, v := r(s.B*s.T*s.H*s.HD), r(s.B*s.T*s.KV*s.HD), r(s.B*s.T*s.KV*s.HD)
		out := make([]float32, len(q))
		attentionForward(out, nil, nil, q, k, v, nil, s, nil)
		want := naiveAttention(q, k, v, s)
		for i := range want {
			if math.Abs(float64(out[i])-want[i]) > 1e-5*(1+math.Abs(want[i])) {
				t.Fatalf("%+v: out[%d] = %v, want %v", s, i, out[i], want[i])
			}
		}
	}
}

// TestAttentionBackwardFiniteDifferences: the gradients attentionBackward
// computes from the forward's row statistics (probabilities rebuilt, not
// stored) match central differences of the float64 reference forward, for
// causal, sliding-window, grouped-query and padded (key-masked, one sequence
// entirely padding after its first token) attention.
func TestAttentionBackwardFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	cases := []struct {
		s    attentionShape
		mask bool
	}{
		{attentionShape{B: 2, T: 6, H: 4, KV: 2, HD: 4, Causal: true}, false},
		{attentionShape{B: 1, T: 7, H: 2, KV: 1, HD: 5, Causal: true, Window: 3}, false},
		{attentionShape{B: 2, T: 5, H: 2, KV: 2, HD: 4}, true},
	}
	for _, c := range cases {
		s := c.s
		r := func(n int) []float32 { return randNormal(rng, n) }
		q, k, v := r(s.B*s.T*s.H*s.HD), r(s.B*s.T*s.KV*s.HD), r(s.B*s.T*s.KV*s.HD)
		var keyMask []float32
		if c.mask {
			keyMask = make([]float32, s.B*s.T)
			for i := range keyMask {
				keyMask[i] = 1
			}
			keyMask[1], keyMask[3] = 0, 0 // padding inside sequence 0
			for j := 1; j < s.T; j++ {
				keyMask[s.T+j] = 0 // sequence 1: only its first token is real
			}
		}
		R := r(len(q)) // L = Σ out ⊙ R
		// Once rebuilding the probabilities from row statistics, once
		// keeping them: the gradients must agree bit for bit.
		var grads [2][3][]float32
		for mode := range grads {
			out := make([]float32, len(q))
			stats := make([]float32, s.B*s.H*s.T*2)
			var kept []float32
			if mode == 1 {
				kept = make([]float32, s.B*s.H*s.T*s.T)
			}
			attentionForward(out, stats, kept, q, k, v, keyMask, s, nil)
			dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
			attentionBackward(dq, dk, dv, R, stats, kept, q, k, v, keyMask, s, nil)
			grads[mode] = [3][]float32{dq, dk, dv}
		}
		for g := range 3 {
			for i := range grads[0][g] {
				if math.Float32bits(grads[0][g][i]) != math.Float32bits(grads[1][g][i]) {
					t.Fatalf("%+v: gradient %d[%d]: %v rebuilt, %v kept", s, g, i, grads[0][g][i], grads[1][g][i])
				}
			}
		}
		dq, dk, dv := grads[0][0], grads[0][1], grads[0][2]
		loss := func(q, k, v []float64) float64 {
			o := naiveAttention64(q, k, v, keyMask, s)
			var l float64
			for i := range o {
				l += o[i] * float64(R[i])
			}
			return l
		}
		q64, k64, v64 := f64(q), f64(k), f64(v)
		for _, g := range []struct {
			name string
			x    []float64
			grad []float32
		}{{"q", q64, dq}, {"k", k64, dk}, {"v", v64, dv}} {
			for i := range g.x {
				const eps = 1e-5
				x0 := g.x[i]
				g.x[i] = x0 + eps
				lp := loss(q64, k64, v64)
				g.x[i] = x0 - eps
				lm := loss(q64, k64, v64)
				g.x[i] = x0
				fd := (lp - lm) / (2 * eps)
				if math.Abs(float64(g.grad[i])-fd) > 1e-4*(1+math.Abs(fd)) {
					t.Fatalf("%+v mask=%v: d%s[%d] = %v, finite differences %v", s, c.mask, g.name, i, g.grad[i], fd)
				}
			}
		}
	}
}

// bothAttentionModes runs f once with the attention probabilities kept for
// the backward and once with them rebuilt from row statistics.
func bothAttentionModes(t *testing.T, f func(t *testing.T)) {
	saved := keepAttentionBytes
	defer func() { keepAttentionBytes = saved }()
	for _, mode := range []struct {
		name  string
		bytes int64
	}{{"kept", saved}, {"rebuilt", 0}} {
		keepAttentionBytes = mode.bytes
		t.Run(mode.name, f)
	}
}

func TestRopeStylesArePermutations(t *testing.T) {
	const heads, hd, T = 2, 8, 5
	cos, sin := RopeTable(16, hd, 10000)
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
