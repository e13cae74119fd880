package model

import (
	"math"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/compute"
)

// The transformer's parameter-free and frozen-parameter layers, each forward
// beside its backward, in the spirit of llm.c. Activations are row-major
// (tokens × features); every function states its shapes. Backward functions
// accumulate (+=) into input gradients, so residual branches just add up.

// rmsnormForward: out[t] = x[t] / rms(x[t]) ⊙ w, rms = √(mean(x²) + eps).
// x, out: n×d; w: d; rstd (n) receives 1/rms for the backward.
func rmsnormForward(out, rstd, x, w []float32, n, d int, eps float32) {
	compute.ParallelRange(n, rowGrain(d), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			xt := x[t*d : (t+1)*d]
			var ss float64
			for _, v := range xt {
				ss += float64(v) * float64(v)
			}
			r := float32(1 / math.Sqrt(ss/float64(d)+float64(eps)))
			rstd[t] = r
			ot := out[t*d : (t+1)*d]
			for i, v := range xt {
				ot[i] = v * r * w[i]
			}
		}
	})
}

// rmsnormBackward adds ∂L/∂x to dx given dout (n×d). With x̂ = x·r:
// dx = r·(dout⊙w − x̂·mean(dout⊙w⊙x̂)). The weight w is frozen.
func rmsnormBackward(dx, dout, x, w, rstd []float32, n, d int) {
	compute.ParallelRange(n, rowGrain(d), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			xt, dot, dxt := x[t*d:(t+1)*d], dout[t*d:(t+1)*d], dx[t*d:(t+1)*d]
			r := rstd[t]
			var m float32
			for i := range xt {
				m += dot[i] * w[i] * xt[i] * r
			}
			m /= float32(d)
			for i := range xt {
				dxt[i] += r * (dot[i]*w[i] - xt[i]*r*m)
			}
		}
	})
}

// layernormForward: out[t] = (x[t] − μ)/σ ⊙ w + b, σ = √(var + eps).
// x, out: n×d; w, b: d; mean, rstd (n) are kept for the backward.
//
// In float32, two passes (the mean, then the centered sum of squares: no
// cancellation), each with eight running sums (compute.Sum8: AVX2 lanes);
// the float64 version this replaced spent 5% of a DistilBERT training step
// converting.
func layernormForward(out, mean, rstd, x, w, b []float32, n, d int, eps float32) {
	compute.ParallelRange(n, rowGrain(d), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			xt := x[t*d : (t+1)*d]
			mu := compute.Sum8(xt) / float32(d)
			vs := compute.CenteredSquares8(xt, mu)
			r := float32(1 / math.Sqrt(float64(vs/float32(d)+eps)))
			mean[t], rstd[t] = mu, r
			compute.NormApply(out[t*d:(t+1)*d], xt, w, b, mu, r)
		}
	})
}

// layernormBackward sets dx to ∂L/∂x (its old contents ignored): with x̂ = (x−μ)·r and g = dout⊙w,
// dx = r·(g − mean(g) − x̂·mean(g⊙x̂)). w and b are frozen.
func layernormBackward(dx, dout, x, w, mean, rstd []float32, n, d int) {
	compute.ParallelRange(n, rowGrain(d), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			xt, dot, dxt := x[t*d:(t+1)*d], dout[t*d:(t+1)*d], dx[t*d:(t+1)*d]
			mu, r := mean[t], rstd[t]
			var mg, mgx float32
			for i := range xt {
				g := dot[i] * w[i]
				mg += g
				mgx += g * (xt[i] - mu) * r
			}
			mg /= float32(d)
			mgx /= float32(d)
			for i := range xt {
				g := dot[i] * w[i]
				dxt[i] = r * (g - mg - (xt[i]-mu)*r*mgx)
			}
		}
	})
}

// RopeStyle says which elements of a head RoPE rotates together.
type RopeStyle int

const (
	// RopeInterleaved rotates pairs (2i, 2i+1): Meta's original layout, used
	// by llama2.c and by llama.cpp for GGUF Llama files.
	RopeInterleaved RopeStyle = iota
	// RopeHalf rotates pairs (i, i+hd/2): Hugging Face's rotate_half layout.
	RopeHalf
)

// RopeTable precomputes cos and sin of pos·θ_i, θ_i = base^(−2i/hd), for
// positions 0…maxPos−1 and i < hd/2: cos, sin are maxPos×(hd/2). The GPU
// engine uploads the same table.
func RopeTable(maxPos, hd int, base float64) (cos, sin []float32) {
	half := hd / 2
	cos, sin = make([]float32, maxPos*half), make([]float32, maxPos*half)
	for p := 0; p < maxPos; p++ {
		for i := 0; i < half; i++ {
			theta := float64(p) * math.Pow(base, -2*float64(i)/float64(hd))
			cos[p*half+i], sin[p*half+i] = float32(math.Cos(theta)), float32(math.Sin(theta))
		}
	}
	return cos, sin
}

// ropeApply rotates every head of x in place: x is n×(heads·hd), token t at
// position pos[t]. sign +1 is the forward rotation; −1 rotates back, which is
// the backward (a rotation's transpose is its inverse).
func ropeApply(x []float32, pos []int, heads, hd int, style RopeStyle, cos, sin []float32, sign float32) {
	half := hd / 2
	width := heads * hd
	for t, p := range pos {
		c, s := cos[p*half:(p+1)*half], sin[p*half:(p+1)*half]
		for h := 0; h < heads; h++ {
			v := x[t*width+h*hd : t*width+(h+1)*hd]
			for i := 0; i < half; i++ {
				a, b := 2*i, 2*i+1
				if style == RopeHalf {
					a, b = i, i+half
				}
				x0, x1 := v[a], v[b]
				si := sign * s[i]
				v[a] = x0*c[i] - x1*si
				v[b] = x0*si + x1*c[i]
			}
		}
	}
}

// attentionShape describes one attention call on a batch of B sequences of T
// tokens: q is (B·T)×(H·hd), k and v are (B·T)×(KV·hd), heads share K/V in
// groups of H/KV (grouped-query attention).
type attentionShape struct {
	B, T, H, KV, HD int
	Causal          bool
	Window          int // sliding window (Mistral): a query sees at most Window keys back, itself included; 0 = unlimited
}

// keyRange is the span [lo, hi) of key positions query i may attend to.
func (s attentionShape) keyRange(i int) (lo, hi int) {
	hi = s.T
	if s.Causal {
		hi = i + 1
	}
	if s.Window > 0 {
		lo = max(0, i-s.Window+1)
	}
	return lo, hi
}

// allowed reports whether query position i may attend to key position j.
func (s attentionShape) allowed(i, j int) bool {
	if s.Causal && j > i {
		return false
	}
	if s.Window > 0 && i-j >= s.Window {
		return false
	}
	return true
}

// attentionForward computes softmax(q·kᵀ/√hd + mask)·v per sequence and head.
// keyMask (B×T, or nil) is 1 for real tokens and 0 for padding keys; out is
// (B·T)×(H·hd). When drop is active (training an encoder) the probabilities
// are dropped out before multiplying v.
//
// The backward needs the T×T probabilities. With kept (B·H·T·T) they are
// kept there; with kept nil, stats (B·H·T·2) keeps only each query row's
// max score and 1/Σexp, from which attentionBackward rebuilds the row bit
// for bit, at the price of one more q·kᵀ GEMM and T² exponentials per head
// (see keepAttention for the choice). Both may be nil when no backward
// follows.
func attentionForward(out, stats, kept, q, k, v []float32, keyMask []float32, s attentionShape, drop *adapter.Mask) {
	// Sequences and key/value groups are independent: spread them over the
	// cores (each part writes only its own heads' rows of stats, kept and
	// out).
	compute.ParallelRange(s.B*s.KV, 1, func(lo, hi int) {
		var probs, dropped []float32
		if kept == nil {
			probs = make([]float32, s.T*s.T)
		}
		if drop.Active() {
			dropped = make([]float32, s.T*s.T)
		}
		for p := lo; p < hi; p++ {
			attentionForwardGroup(out, stats, kept, probs, dropped, q, k, v, keyMask, s, drop, p/s.KV, p%s.KV)
		}
	})
}

// keepAttentionBytes bounds the probabilities a training forward keeps for
// its backward, all layers together; above it they are rebuilt from row
// statistics. Keeping is faster (a DistilBERT-shaped step at 128 tokens
// takes 6–20% longer rebuilding), rebuilding bounds the memory at long
// contexts (a 5-layer decoder with 8 heads at 512 tokens would keep 0.3 GB
// per 8-sequence batch, twice that with attention dropout's copy).
var keepAttentionBytes int64 = 128 << 20 // a var so tests can take both paths

// keepAttention reports whether a model of the given layers keeps its
// attention probabilities for a forward of b sequences of t tokens and h
// heads.
func keepAttention(layers, b, h, t int) bool {
	return int64(layers)*int64(b)*int64(h)*int64(t)*int64(t)*4 <= keepAttentionBytes
}

// attentionForwardGroup computes sequence b's heads that share key/value
// head kvh; probs (unless kept) and dropped (T×T) are its scratch.
func attentionForwardGroup(out, stats, kept, probs, dropped, q, k, v []float32, keyMask []float32, s attentionShape, drop *adapter.Mask, b, kvh int) {
	qw, kw := s.H*s.HD, s.KV*s.HD
	T := s.T
	for h := kvh * (s.H / s.KV); h < (kvh+1)*(s.H/s.KV); h++ {
		var st []float32
		if stats != nil {
			st = stats[(b*s.H+h)*T*2 : (b*s.H+h+1)*T*2]
		}
		a := probs
		if kept != nil {
			a = kept[(b*s.H+h)*T*T : (b*s.H+h+1)*T*T]
		}
		attentionProbs(a, st, false, q, k, keyMask, s, b, h)
		if drop.Active() {
			drop.ApplyAt(dropped, a, (b*s.H+h)*T*T)
			a = dropped
		}
		// out_h = att·v_h (T×hd) into the strided output.
		compute.Gemm(compute.NoTrans, compute.NoTrans, T, s.HD, T, 1, a, T, v[b*T*kw+kvh*s.HD:], kw, 0, out[b*T*qw+h*s.HD:], qw)
	}
}

// attentionProbs fills a (T×T) with sequence b's head-h attention
// probabilities. With rebuild false it computes each row's softmax and
// records the row's max score and 1/Σexp in st (2 per row; st may be nil);
// with rebuild true it reads them back and repeats exactly the forward's
// float32 operations, so the rows come out bit for bit the same. A row whose
// keys are all masked attends to nothing (max −Inf, all zeros).
func attentionProbs(a, st []float32, rebuild bool, q, k, keyMask []float32, s attentionShape, b, h int) {
	qw, kw := s.H*s.HD, s.KV*s.HD
	kvh := h / (s.H / s.KV)
	scale := float32(1 / math.Sqrt(float64(s.HD)))
	T := s.T
	// scores = q_h·k_hᵀ (T×T), strided views of the token matrices.
	compute.Gemm(compute.NoTrans, compute.Trans, T, T, s.HD, scale, q[b*T*qw+h*s.HD:], qw, k[b*T*kw+kvh*s.HD:], kw, 0, a, T)
	// The sequence's masked (padding) keys, found once for all its rows.
	var masked []int
	if keyMask != nil {
		for j, m := range keyMask[b*T : (b+1)*T] {
			if m == 0 {
				masked = append(masked, j)
			}
		}
	}
	for i := 0; i < T; i++ {
		row := a[i*T : (i+1)*T]
		lo, hi := s.keyRange(i)
		clear(row[:lo])
		clear(row[hi:])
		for _, j := range masked {
			if lo <= j && j < hi {
				row[j] = float32(math.Inf(-1)) // exp(−Inf − max) = 0 below
			}
		}
		maxv, inv := float32(math.Inf(-1)), float32(0)
		if rebuild {
			maxv, inv = st[2*i], st[2*i+1]
		} else {
			maxv = compute.Max(row[lo:hi])
		}
		if math.IsInf(float64(maxv), -1) { // every key masked: attend to nothing
			clear(row[lo:hi])
		} else {
			// Masked keys hold −Inf: exp(−Inf − max) = 0. The same kernel
			// in the forward and the rebuild gives the same bits.
			sum := compute.ExpShift(row[lo:hi], maxv)
			if !rebuild {
				inv = 1 / sum // sum ≥ 1: the max key contributes exp(0)
			}
			compute.Scale(inv, row[lo:hi])
		}
		if st != nil && !rebuild {
			st[2*i], st[2*i+1] = maxv, inv
		}
	}
}

// attentionBackward adds ∂L/∂q, ∂L/∂k, ∂L/∂v given dout ((B·T)×(H·hd)).
// stats, kept, keyMask and drop are the forward's; without kept
// probabilities they are rebuilt from stats (attentionProbs).
//
//	dv  += attDᵀ·dout_h                          (attD = dropout(att), or att)
//	datt = dropout-backward(dout_h·vᵀ)
//	ds   = att ⊙ (datt − rowsum(att ⊙ datt))     softmax backward
//	dq  += scale·ds·k,   dk += scale·dsᵀ·q
func attentionBackward(dq, dk, dv, dout, stats, kept, q, k, v, keyMask []float32, s attentionShape, drop *adapter.Mask) {
	T := s.T
	// Parallel over (sequence, key/value group): the heads of one group all
	// accumulate into the same dk and dv columns, so a group stays on one
	// goroutine.
	compute.ParallelRange(s.B*s.KV, 1, func(lo, hi int) {
		var probs, dropped []float32
		if kept == nil {
			probs = make([]float32, T*T)
		}
		if drop.Active() {
			dropped = make([]float32, T*T)
		}
		datt := make([]float32, T*T)
		for p := lo; p < hi; p++ {
			attentionBackwardGroup(dq, dk, dv, probs, dropped, datt, dout, stats, kept, q, k, v, keyMask, s, drop, p/s.KV, p%s.KV)
		}
	})
}

// attentionBackwardGroup is the backward of sequence b's heads that share
// key/value head kvh; probs (unless kept), dropped and datt (T×T) are its
// scratch.
func attentionBackwardGroup(dq, dk, dv, probs, dropped, datt, dout, stats, kept, q, k, v, keyMask []float32, s attentionShape, drop *adapter.Mask, b, kvh int) {
	qw, kw := s.H*s.HD, s.KV*s.HD
	scale := float32(1 / math.Sqrt(float64(s.HD)))
	T := s.T
	for h := kvh * (s.H / s.KV); h < (kvh+1)*(s.H/s.KV); h++ {
		a := probs
		if kept != nil {
			a = kept[(b*s.H+h)*T*T : (b*s.H+h+1)*T*T]
		} else {
			attentionProbs(a, stats[(b*s.H+h)*T*2:(b*s.H+h+1)*T*2], true, q, k, keyMask, s, b, h)
		}
		ad := a
		if drop.Active() {
			drop.ApplyAt(dropped, a, (b*s.H+h)*T*T)
			ad = dropped
		}
		do := dout[b*T*qw+h*s.HD:]
		compute.Gemm(compute.Trans, compute.NoTrans, T, s.HD, T, 1, ad, T, do, qw, 1, dv[b*T*kw+kvh*s.HD:], kw)
		compute.Gemm(compute.NoTrans, compute.Trans, T, T, s.HD, 1, do, qw, v[b*T*kw+kvh*s.HD:], kw, 0, datt, T)
		if drop.Active() {
			drop.ScaleAt(datt, (b*s.H+h)*T*T)
		}
		for i := 0; i < T; i++ {
			ar, dr := a[i*T:(i+1)*T], datt[i*T:(i+1)*T]
			var dotp float32
			for j := range ar {
				dotp += ar[j] * dr[j]
			}
			for j := range ar {
				dr[j] = ar[j] * (dr[j] - dotp)
			}
		}
		compute.Gemm(compute.NoTrans, compute.NoTrans, T, s.HD, T, scale, datt, T, k[b*T*kw+kvh*s.HD:], kw, 1, dq[b*T*qw+h*s.HD:], qw)
		compute.Gemm(compute.Trans, compute.NoTrans, T, s.HD, T, scale, datt, T, q[b*T*qw+h*s.HD:], qw, 1, dk[b*T*kw+kvh*s.HD:], kw)
	}
}

// rowGrain is how many rows of width d make a chunk worth a goroutine.
func rowGrain(d int) int { return max(1, elemGrain/d) }

// elemGrain is the smallest elementwise job worth splitting across cores.
const elemGrain = 1 << 14

// swigluForward: h = silu(g)⊙u with silu(x) = x·σ(x). g, u, h: n×f.
func swigluForward(h, g, u []float32) {
	compute.ParallelRange(len(g), elemGrain, func(lo, hi int) {
		compute.ExpNeg(h[lo:hi], g[lo:hi]) // h holds e^−g first (h aliases neither input)
		for i := lo; i < hi; i++ {
			h[i] = g[i] / (1 + h[i]) * u[i]
		}
	})
}

// swigluBackward sets dg and du (overwriting) from dh:
// du = dh⊙silu(g), dg = dh⊙u⊙σ(g)·(1 + g·(1−σ(g))). dg holds e^−g first,
// so it must alias none of the others.
func swigluBackward(dg, du, dh, g, u []float32) {
	compute.ParallelRange(len(g), elemGrain, func(lo, hi int) {
		compute.ExpNeg(dg[lo:hi], g[lo:hi])
		for i := lo; i < hi; i++ {
			x := g[i]
			sg := 1 / (1 + dg[i])
			du[i] = dh[i] * x * sg
			dg[i] = dh[i] * u[i] * sg * (1 + x*(1-sg))
		}
	})
}

// geluForward is BERT's exact (erf) GELU, out = x·Φ(x); when grad is
// non-nil (training) it also stores GELU'(x) for the backward, computed with
// the forward (see compute.GELU). x, out, grad: n.
func geluForward(out, grad, x []float32) { compute.GELU(out, grad, x) }

// geluBackward sets dx = dout ⊙ GELU'(x) (its old contents ignored), with grad = GELU'(x) from
// geluForward.
func geluBackward(dx, dout, grad []float32) {
	compute.ParallelRange(len(grad), elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dx[i] = dout[i] * grad[i]
		}
	})
}

// LogSoftmax writes the log-softmax of logits (one row of V) into out.
func LogSoftmax(out, logits []float32) {
	maxv := float32(math.Inf(-1))
	for _, x := range logits {
		maxv = max(maxv, x)
	}
	var sum float64
	for _, x := range logits {
		sum += math.Exp(float64(x - maxv))
	}
	lse := maxv + float32(math.Log(sum))
	for i, x := range logits {
		out[i] = x - lse
	}
}
