package adapter

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"

	"github.com/kronfed/kronfed/compute"
)

// Kind names an adapter family.
type Kind string

const (
	KindKron Kind = "kron" // Kron-LoRA: ΔW = A ⊗ (B1·B2)
	KindLoRA Kind = "lora" // LoRA: ΔW = B·A
)

// ParseKind accepts "kron" (or "kron-lora") and "lora".
func ParseKind(s string) (Kind, error) {
	switch s {
	case "kron", "kron-lora", "kronlora":
		return KindKron, nil
	case "lora":
		return KindLoRA, nil
	}
	return "", fmt.Errorf("unknown adapter kind %q (want kron or lora)", s)
}

// Factor is one trainable matrix of an adapter with its gradient.
// Data and Grad are Rows×Cols, row-major, and alias the layer's own storage:
// writing through them changes the layer.
type Factor struct {
	Name       string // "A", "B1", "B2" for Kron-LoRA; "A", "B" for LoRA
	Rows, Cols int
	Data, Grad []float32
}

// Layer is an adapter on one frozen linear layer.
//
// Forward and Backward take token batches: x is n×DIn, y and dy are n×DOut, dx is
// n×DIn, all row-major with contiguous rows. The frozen W·x (and its gradient
// dy·W) is the caller's; the adapter only adds its own term.
type Layer interface {
	Kind() Kind
	Dims() (dOut, dIn int)
	Rank() int
	// Scale is alpha/r, the multiplier of ΔW.
	Scale() float32
	NumParams() int
	// Factors lists the trainable matrices in a fixed order.
	Factors() []Factor
	// Forward adds scale·ΔW·dropout(x) to each row of y and records in acts what
	// Backward needs. drop is nil at inference.
	Forward(x []float32, n int, y []float32, acts *Acts, drop *Dropout)
	// Backward accumulates the factor gradients for upstream gradient dy and,
	// when dx is non-nil, adds the adapter's part of ∂L/∂x to dx. acts must come
	// from the Forward of the same batch.
	Backward(dy []float32, acts *Acts, dx []float32)
	// MergeInto adds scale·ΔW to a d_out×d_in weight matrix (row-major), so the
	// adapted layer runs at the frozen layer's cost at inference. Subtracting
	// (sign −1) undoes it.
	MergeInto(w []float32, sign float32)
	// ZeroGrad clears the factor gradients.
	ZeroGrad()
}

// Dropout is inverted dropout, as PyTorch applies it: each element is kept
// with probability 1−P and scaled by 1/(1−P). It is the adapters' input
// dropout and, in package model, the frozen base's training-mode dropout.
type Dropout struct {
	P   float32
	Rng *rand.Rand // seeded by the trainer: training runs are reproducible
}

// Mask is one draw of a dropout pattern: a bit per element, kept elements
// scaled by Scale. The zero Mask (or a nil *Mask) keeps everything unscaled.
type Mask struct {
	keep  []uint64
	Scale float32
	on    bool
}

// Active reports whether the mask drops anything.
func (m *Mask) Active() bool { return m != nil && m.on }

// Sample draws a new mask for n elements, reusing m's storage. A nil
// Dropout or P ≤ 0 gives an inactive mask.
func (d *Dropout) Sample(m *Mask, n int) {
	if d == nil || d.P <= 0 {
		m.on = false
		return
	}
	if d.P >= 1 {
		panic(fmt.Sprintf("adapter: dropout probability %v must be < 1", d.P))
	}
	words := (n + 63) / 64
	if cap(m.keep) >= words {
		m.keep = m.keep[:words] // every word is overwritten below
	} else {
		m.keep = make([]uint64, words)
	}
	m.Scale, m.on = 1/(1-d.P), true
	// Each 64-bit draw gives four 16-bit uniforms; an element is dropped when
	// its uniform is below round(P·2¹⁶), a probability within 2⁻¹⁷ of P
	// (0.1 becomes 0.100006). Masks cover every hidden state and attention
	// probability of a training step, so the generator's cost matters.
	threshold := uint64(float64(d.P)*(1<<16) + 0.5)
	// The mask is drawn in chunks of maskChunkWords words, each from its own
	// PCG stream seeded by one draw of d.Rng and the chunk index: the pattern
	// depends only on the seed, not on how many cores draw it.
	seed := d.Rng.Uint64()
	chunks := (len(m.keep) + maskChunkWords - 1) / maskChunkWords
	compute.ParallelRange(chunks, 1, func(lo, hi int) {
		c := lo
		// Whole chunks, up to eight at a time, on AVX-512 lanes where the
		// CPU has them (the same words as the loop below).
		for whole := min(hi, n/(maskChunkWords*64)); c < whole; {
			g := min(8, whole-c)
			if !compute.KeepWords8(m.keep[c*maskChunkWords:], maskChunkWords, g, seed, uint64(c), threshold) {
				break
			}
			c += g
		}
		for ; c < hi; c++ {
			src := pcg{hi: seed, lo: uint64(c)}
			for w := c * maskChunkWords; w < min((c+1)*maskChunkWords, len(m.keep)); w++ {
				m.keep[w] = keepWord(&src, threshold, n-w*64)
			}
		}
	})
}

// maskChunkWords is the unit of parallel mask drawing: 64 Ki elements.
const maskChunkWords = 1024

// pcg is math/rand/v2's PCG (a 128-bit LCG with the DXSM output function),
// step for step, so that masks keep the bits rand.NewPCG(seed, chunk)
// gives (TestPCGMatchesRand) — without an allocation per chunk or a call
// per draw (rand.PCG's methods do not inline into keepWord).
type pcg struct{ hi, lo uint64 }

func (p *pcg) Uint64() uint64 {
	const (
		mulHi    = 2549297995355413924
		mulLo    = 4865540595714422341
		incHi    = 6364136223846793005
		incLo    = 1442695040888963407
		cheapMul = 0xda942042e4dd58b5
	)
	hi, lo := bits.Mul64(p.lo, mulLo)
	hi += p.hi*mulLo + p.lo*mulHi
	lo, c := bits.Add64(lo, incLo, 0)
	hi, _ = bits.Add64(hi, incHi, c)
	p.lo, p.hi = lo, hi
	hi ^= hi >> 32
	hi *= cheapMul
	hi ^= hi >> 48
	return hi * (lo | 1)
}

// keepWord draws one 64-element word of a mask (fewer when rem < 64; the
// bits past the end stay 0). Each 64-bit draw gives four 16-bit uniforms; an
// element is kept when its uniform is at least threshold = round(P·2¹⁶),
// so dropped with a probability within 2⁻¹⁷ of P (0.1 becomes 0.100006).
func keepWord(src *pcg, threshold uint64, rem int) uint64 {
	add := (1<<16 - threshold) * 0x0000000100000001
	var word uint64
	for q := 0; q < 64 && q < rem; q += 4 {
		word |= keepNibble(src.Uint64(), add) << q
	}
	if rem < 64 {
		word &= 1<<rem - 1
	}
	return word
}

// keepNibble turns one draw into the keep bits of four elements, all four
// comparisons at once (SWAR): uniforms 0 and 2 sit in the two 32-bit halves
// of e, 1 and 3 in those of o; adding add = 2¹⁶ − threshold to each half
// carries into its bit 16 exactly when the uniform is ≥ threshold (a half
// never exceeds 2¹⁷, so no carry crosses into the other), and the four
// bit-16s are gathered into a nibble.
func keepNibble(draw, add uint64) uint64 {
	const lanes = 0x0000FFFF0000FFFF
	e := ((draw & lanes) + add) >> 16 & 0x0000000100000001
	o := (((draw >> 16) & lanes) + add) >> 16 & 0x0000000100000001
	x := e | o<<1 // uniforms 0, 1 at bits 0, 1; 2, 3 at bits 32, 33
	return x&3 | x>>30&0xC
}

// Words is the mask's keep bits, element i at bit i&63 of word i>>6 (bits
// past the last element are 0), or nil when the mask is inactive. The GPU
// engine uploads them so that a device step drops exactly what the CPU
// engine would. The slice aliases the mask: read it, don't keep it.
func (m *Mask) Words() []uint64 {
	if !m.Active() {
		return nil
	}
	return m.keep
}

// Kept reports whether element i survives.
func (m *Mask) Kept(i int) bool { return !m.on || m.keep[i>>6]&(1<<(i&63)) != 0 }

// Apply sets dst = mask(x): dropped elements 0, kept ones times Scale. dst may
// be x.
func (m *Mask) Apply(dst, x []float32) {
	m.ApplyAt(dst, x, 0)
}

// ApplyAt is Apply for the window of the mask starting at element off:
// dst[i] = mask[off+i](x[i]).
func (m *Mask) ApplyAt(dst, x []float32, off int) {
	if !m.Active() {
		copy(dst, x)
		return
	}
	compute.ParallelRange(len(x), maskGrain, func(lo, hi int) { m.apply(dst, x, off, lo, hi, false) })
}

// apply sets dst[i] = mask[off+i](x[i]) for i in [lo, hi) — or, with
// accumulate, adds it to dst[i]. Whole 64-bit words of keep bits go through
// compute.MaskScale (AVX-512 opmasks where the GEMMs use zmm); the ragged
// ends, where the window does not start or end on a word, are done here by
// the same arithmetic (x·scale or x·0), so the bits do not depend on where
// a word boundary falls.
func (m *Mask) apply(dst, x []float32, off, lo, hi int, accumulate bool) {
	scale := [2]float32{0, m.Scale}        // indexed by the keep bit: no branch to mispredict
	ragged := func(i, end int, w uint64) { // w: element i's bit first
		d, s := dst[i:end], x[i:end]
		for k := range d {
			if accumulate {
				d[k] += s[k] * scale[w&1]
			} else {
				d[k] = s[k] * scale[w&1]
			}
			w >>= 1
		}
	}
	i := lo
	if j := (off + i) & 63; j != 0 && i < hi {
		end := min(hi, i+64-j)
		ragged(i, end, m.keep[(off+i)>>6]>>j)
		i = end
	}
	if words := (hi - i) / 64; words > 0 {
		w := (off + i) >> 6
		compute.MaskScale(dst[i:i+64*words], x[i:i+64*words], m.keep[w:w+words], m.Scale, accumulate)
		i += 64 * words
	}
	if i < hi {
		ragged(i, hi, m.keep[(off+i)>>6])
	}
}

// maskGrain is the smallest mask application worth splitting across cores.
const maskGrain = 1 << 15

// ScaleAt applies the window of the mask starting at off to g in place: the
// backward of ApplyAt.
func (m *Mask) ScaleAt(g []float32, off int) { m.ApplyAt(g, g, off) }

// AddBackward adds mask(g) to dx: the backward of Apply.
func (m *Mask) AddBackward(dx, g []float32) {
	dx = dx[:len(g)]
	compute.ParallelRange(len(g), maskGrain, func(lo, hi int) {
		if !m.Active() {
			for i := lo; i < hi; i++ {
				dx[i] += g[i]
			}
			return
		}
		m.apply(dx, g, 0, lo, hi, true)
	})
}

// Acts holds what one Forward keeps for its Backward, and the layer's scratch
// space; reuse one Acts per layer across batches to avoid allocation.
type Acts struct {
	N    int       // tokens in the batch
	X    []float32 // n×DIn adapter input after dropout (aliases the caller's x when no dropout was applied)
	mask Mask
	// H and U are the layer's intermediates: Kron-LoRA T = X·B2ᵀ ((n·dA1)×r) and
	// M = A·T per token ((n·dA2)×r); LoRA H = X·Aᵀ (n×q).
	H, U []float32
	// scratch for Backward: dH, dU (gradients of H and U), and dX before the
	// dropout mask.
	dH, dU, dX []float32
	xbuf       []float32
}

// grow returns s resized to n elements, reusing its storage when it can.
func grow(s []float32, n int) []float32 {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]float32, n)
}

// input applies dropout to x (n×d) and returns the adapter's input.
func (a *Acts) input(x []float32, n, d int, drop *Dropout) []float32 {
	a.N = n
	x = x[:n*d]
	drop.Sample(&a.mask, len(x))
	if !a.mask.Active() {
		a.X = x
		return x
	}
	a.xbuf = grow(a.xbuf, len(x))
	a.mask.Apply(a.xbuf, x)
	a.X = a.xbuf
	return a.X
}

// inputGrad adds the gradient w.r.t. the adapter input, g (n×d), to dx through
// the dropout mask.
func (a *Acts) inputGrad(g, dx []float32) { a.mask.AddBackward(dx, g) }

// kaimingUniform fills w with PyTorch's kaiming_uniform_(a=√5) for a tensor
// whose fan-in is fanIn: U(−b, b) with b = gain·√(3/fanIn), gain = √(2/(1+a²)),
// which simplifies to b = 1/√fanIn.
func kaimingUniform(w []float32, fanIn int, rng *rand.Rand) {
	bound := 1 / math.Sqrt(float64(fanIn))
	for i := range w {
		w[i] = float32((2*rng.Float64() - 1) * bound)
	}
}

// CheckFinite returns an error naming the first factor holding NaN or ±Inf.
func CheckFinite(l Layer) error {
	for _, f := range l.Factors() {
		if i := firstNonFinite(f.Data); i >= 0 {
			return fmt.Errorf("factor %s[%d,%d] is %v", f.Name, i/f.Cols, i%f.Cols, f.Data[i])
		}
	}
	return nil
}

// firstNonFinite returns the index of the first NaN or ±Inf in x, or −1.
func firstNonFinite(x []float32) int {
	// A float32 is NaN or ±Inf exactly when its exponent bits are all ones,
	// which is when adding one to the exponent field carries into bit 31.
	// Chunks are ORed without a branch per value (the aggregator checks
	// every update: 66 M values for 100 LoRA-8 DistilBERT clients) and only
	// a chunk with a carry is searched.
	const chunk = 256
	for c := 0; c < len(x); c += chunk {
		var carry uint32
		for _, v := range x[c:min(c+chunk, len(x))] {
			carry |= math.Float32bits(v)&0x7f800000 + 0x00800000
		}
		if carry&0x80000000 == 0 {
			continue
		}
		for i, v := range x[c:min(c+chunk, len(x))] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return c + i
			}
		}
	}
	return -1
}

func checkBatch(name string, buf []float32, n, d int) {
	if len(buf) < n*d {
		panic(fmt.Sprintf("adapter: %s has %d elements, batch of %d×%d needs %d", name, len(buf), n, d, n*d))
	}
}
